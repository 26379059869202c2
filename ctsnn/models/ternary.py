"""Ternary (positive / negative spike) integrate-and-fire models: LIT and its dual-trace form.

LIT:      tau_mem dv/dt = -v + r I(t)   [+ r i, tau_syn di/dt = -i, when tau_syn is given]
          positive event: v + bias crosses  pos_th upward   -> v -= pos_th, output +pos_scale
          negative event: v + bias crosses -neg_th downward -> v += neg_th, output -neg_scale

DualLIT:  two sign-specific compartments with their own time constants,
          tau_pos dv_pos/dt = -v_pos + r max(I, 0),  tau_neg dv_neg/dt = -v_neg + r min(I, 0);
          the thresholds act on v = v_pos + v_neg and every reset is split equally between them.

Traced:   LIT or DualLIT whose membrane is driven through low-pass traces (tracetorch's S/R variants),
          one trace per input channel k of the membrane (k = the one channel of LIT; [.]_+ and [.]_-
          of DualLIT):
          tau_syn_k di_k/dt = -i_k + [I]_k        synaptic trace of the input current I
          tau_rec_k dr_k/dt = -r_k + [o]_k        recurrent trace of the neuron's own output o(t)
          membrane: the base dynamics plus the drive (per unit time, unit gain)
                    route(sum_k i_k) + rec_weight_k * route(sum_k r_k)_k,
          where route is the base's input routing of a charge (``spike_input``: v for LIT,
          [.]_+ to v_pos and [.]_- to v_neg for DualLIT).  Without a synapse I drives the membrane
          as in the base model.  Each output event of signed size s jumps r_k by [s]_k / tau_rec_k.
          The sums are rectified per channel, so with DualLIT the coupling is piecewise linear
          (``drift``; ``linear_part`` only for LIT).
"""
from __future__ import annotations

import torch

from .base import NeuronModel, Param, State

__all__ = ["LIT", "DualLIT", "Traced"]


def _split_sign(u):
    """``[u]_+`` and ``[u]_-`` stacked on a new last axis; at ``u = 0`` both pass the gradient
    (a subgradient 1 each, tracetorch's ``where(u >= 0, u, 0)`` / ``where(u <= 0, u, 0)``;
    ``clamp`` would pass none, which matters where ``u`` is exactly 0, e.g. a silent output)."""
    zero = torch.zeros((), dtype=u.dtype, device=u.device)
    return torch.stack([torch.where(u >= 0, u, zero), torch.where(u <= 0, u, zero)], dim=-1)


class _Ternary(NeuronModel):
    event_names = ("positive", "negative")
    event_signs = (1, -1)
    _v_states: tuple[str, ...] = ("v",)
    PARAMS = {
        "r": Param("ohm", "positive", doc="input gain (current -> voltage)"),
        "pos_th": Param("V", "positive", doc="positive threshold"),
        "neg_th": Param("V", "positive", doc="magnitude of the negative threshold"),
        "bias": Param("V", doc="added to v in both event functions"),
        "pos_scale": Param("", doc="size of a positive output event"),
        "neg_scale": Param("", doc="size of a negative output event"),
    }
    STATES = {"v": State("V", "membrane potential"), "i": State("A", "synaptic current"),
              "v_pos": State("V", "positive compartment of the membrane"),
              "v_neg": State("V", "negative compartment of the membrane")}

    def _ternary_params(self, pos_th, neg_th, bias, pos_scale, neg_scale, dtype):
        for name, val in (("pos_th", pos_th), ("neg_th", neg_th), ("bias", bias), ("pos_scale", pos_scale),
                          ("neg_scale", neg_scale)):
            self._set_param(name, val, dtype=dtype)

    def event_matrix(self, dtype=None, device=None):
        G = torch.zeros(2, self.n_states, dtype=dtype or self.param_dtype(), device=device)
        for name in self._v_states:
            G[0, self.state_index(name)] = 1.0
            G[1, self.state_index(name)] = -1.0
        return G

    def event_offset(self, dtype=None, device=None):
        pos, neg, bias = (self.p(k, dtype, device) for k in ("pos_th", "neg_th", "bias"))
        pos, neg, bias = torch.broadcast_tensors(pos, neg, bias)
        return torch.stack([pos - bias, neg + bias], dim=-1)

    def jump_map(self, e, dtype=None, device=None):
        dtype = dtype or self.param_dtype()
        step = -self.p("pos_th", dtype, device) if e == 0 else self.p("neg_th", dtype, device)
        share = step / len(self._v_states)
        k = [torch.zeros_like(share) for _ in self.state_names]
        for name in self._v_states:
            k[self.state_index(name)] = share
        return torch.eye(self.n_states, dtype=dtype, device=device), torch.stack(k, dim=-1)

    def output_scale(self, e, dtype=None, device=None):
        return self.p("pos_scale" if e == 0 else "neg_scale", dtype, device)


class LIT(_Ternary):
    r"""Leaky integrate-and-ternary-fire neuron (tracetorch's LIT family in continuous time).

    .. math::
        \tau_{mem} \dot v = -v + r\,(i + I(t)), \qquad \tau_{syn} \dot i = -i \;\text{(if tau\_syn)}

    Two events: ``v + bias`` crossing ``pos_th`` upward (v -= pos_th, output event
    +``pos_scale``), and ``v + bias`` crossing ``-neg_th`` downward (v += neg_th, output event
    -``neg_scale``). Input spikes of weight w jump i (with a synapse) or v by w.
    """

    PARAMS = {"tau_mem": Param("s", "positive", time_constant=True, doc="membrane time constant"),
              "tau_syn": Param("s", "positive", time_constant=True, doc="synaptic time constant")}

    def __init__(self, tau_mem, pos_th=1.0, neg_th=1.0, bias=0.0, pos_scale=1.0, neg_scale=1.0,
                 r=1.0, tau_syn=None, *, n=None, dtype=None):
        super().__init__(n=n)
        self._set_param("tau_mem", tau_mem, dtype=dtype)
        if tau_syn is not None:
            self._set_param("tau_syn", tau_syn, dtype=dtype)
        self._set_param("r", r, dtype=dtype)
        self._ternary_params(pos_th, neg_th, bias, pos_scale, neg_scale, dtype)
        self.state_names = ("v", "i") if tau_syn is not None else ("v",)
        self.input_state = "i" if tau_syn is not None else "v"
        self.validate()

    def linear_part(self, dtype=None, device=None):
        dtype = dtype or self.param_dtype()
        tau, r = self.p("tau_mem", dtype, device), self.p("r", dtype, device)
        syn = "tau_syn" in self._param_keys
        ts = self.p("tau_syn", dtype, device) if syn else tau
        tau, r, ts = torch.broadcast_tensors(tau, r, ts)
        m, S = tau.shape[0], self.n_states
        A = torch.zeros(m, S, S, dtype=dtype, device=device)
        B = torch.zeros(m, S, 1, dtype=dtype, device=device)
        A[:, 0, 0] = -1.0 / tau
        B[:, 0, 0] = r / tau
        if syn:
            A[:, 0, 1] = r / tau
            A[:, 1, 1] = -1.0 / ts
        return A, B, torch.zeros(m, S, dtype=dtype, device=device)


class DualLIT(_Ternary):
    r"""Dual sign-specific membrane traces with ternary output (tracetorch's D-variants).

    .. math::
        \tau_{pos} \dot v_{pos} = -v_{pos} + r\,[I]_+, \qquad
        \tau_{neg} \dot v_{neg} = -v_{neg} + r\,[I]_-

    The events of :class:`LIT` act on ``v = v_pos + v_neg``; each reset (``-pos_th`` or
    ``+neg_th``) is split equally between the two compartments. Input spikes with positive
    weight jump v_pos, with negative weight v_neg.
    """

    _v_states = ("v_pos", "v_neg")
    state_names = ("v_pos", "v_neg")
    input_state = "v_pos"
    clamp_state = "v_pos"
    PARAMS = {"tau_pos": Param("s", "positive", time_constant=True, doc="time constant of v_pos"),
              "tau_neg": Param("s", "positive", time_constant=True, doc="time constant of v_neg")}

    def __init__(self, tau_pos, tau_neg, pos_th=1.0, neg_th=1.0, bias=0.0, pos_scale=1.0,
                 neg_scale=1.0, r=1.0, *, n=None, dtype=None):
        super().__init__(n=n)
        self._set_param("tau_pos", tau_pos, dtype=dtype)
        self._set_param("tau_neg", tau_neg, dtype=dtype)
        self._set_param("r", r, dtype=dtype)
        self._ternary_params(pos_th, neg_th, bias, pos_scale, neg_scale, dtype)
        self.validate()

    @property
    def n_inputs(self) -> int:
        return 2

    def input_channels(self, u):
        return _split_sign(u)

    def spike_input(self, w):
        return _split_sign(w)

    def linear_part(self, dtype=None, device=None):
        dtype = dtype or self.param_dtype()
        tp, tn, r = torch.broadcast_tensors(*(self.p(k, dtype, device) for k in ("tau_pos", "tau_neg", "r")))
        m = tp.shape[0]
        A = torch.zeros(m, 2, 2, dtype=dtype, device=device)
        B = torch.zeros(m, 2, 2, dtype=dtype, device=device)
        A[:, 0, 0], A[:, 1, 1] = -1.0 / tp, -1.0 / tn
        B[:, 0, 0], B[:, 1, 1] = r / tp, r / tn
        return A, B, torch.zeros(m, 2, dtype=dtype, device=device)


class Traced(NeuronModel):
    r"""``base`` (:class:`LIT` without ``tau_syn``, or :class:`DualLIT`) driven through synaptic
    and/or recurrent low-pass traces; see the module docstring for the equations.

    ``tau_syn``, ``tau_rec``, ``rec_weight``: one value per input channel of ``base`` (LIT: a
    scalar or per-neuron tensor; DualLIT: a pair ``(pos, neg)``, or one value for both).
    ``tau_syn=None``: no synapse (the input drives the membrane directly); ``tau_rec=None``: no
    recurrent trace.  States: the base's, then ``i`` (``i_pos, i_neg``), then ``r``
    (``r_pos, r_neg``).

    On a time grid this model is stepped with ``discretize(..., cascade=True)`` (the traces first,
    then the membrane driven by the updated traces; see ``ctsnn.discrete``).
    """

    PARAMS = {
        **{"tau_syn" + ch: Param("s", "positive", time_constant=True, doc="synaptic trace time constant")
           for ch in ("", "_pos", "_neg")},
        **{"tau_rec" + ch: Param("s", "positive", time_constant=True, doc="recurrent trace time constant")
           for ch in ("", "_pos", "_neg")},
        **{"rec_weight" + ch: Param("", doc="gain of the recurrent trace") for ch in ("", "_pos", "_neg")},
    }
    # the base's states keep their declarations (``declared_states``)
    STATES = {
        **{"i" + ch: State("A", "synaptic trace of the input current") for ch in ("", "_pos", "_neg")},
        **{"r" + ch: State("1/s", "recurrent trace of the output events (rate)") for ch in ("", "_pos", "_neg")},
    }

    def __init__(self, base: NeuronModel, tau_syn=None, tau_rec=None, rec_weight=None):
        super().__init__()
        if not isinstance(base, (LIT, DualLIT)):
            raise ValueError(f"Traced: base must be a LIT or DualLIT, got {type(base).__name__}")
        if isinstance(base, LIT) and "tau_syn" in base._param_keys:
            raise ValueError("Traced: base LIT must not have its own tau_syn (give tau_syn to Traced)")
        if tau_syn is None and tau_rec is None:
            raise ValueError("Traced needs tau_syn and/or tau_rec")
        if tau_rec is None and rec_weight is not None:
            raise ValueError("rec_weight belongs to the recurrent trace; pass tau_rec too")
        self.base = base
        self.voltage_unit, self.current_unit = base.voltage_unit, base.current_unit
        self.event_names, self.event_signs = base.event_names, base.event_signs
        self.input_state, self.clamp_state = base.input_state, base.clamp_state
        self._v = tuple(base._v_states)
        K = len(self._v)
        self.channels = ("",) if K == 1 else ("_pos", "_neg")
        self.has_syn, self.has_rec = tau_syn is not None, tau_rec is not None
        dtype = base.param_dtype()

        def per_channel(name, value):
            vals = tuple(value) if isinstance(value, (tuple, list)) else (value,) * K
            if len(vals) != K:
                raise ValueError(f"{name}: give one value per channel ({K}), got {len(vals)}")
            for ch, v in zip(self.channels, vals):
                self._set_param(name + ch, v, dtype=dtype if not isinstance(v, torch.Tensor) else None)

        names = list(base.state_names)
        if self.has_syn:
            per_channel("tau_syn", tau_syn)
            names += ["i" + ch for ch in self.channels]
        if self.has_rec:
            per_channel("tau_rec", tau_rec)
            per_channel("rec_weight", 0.0 if rec_weight is None else rec_weight)
            names += ["r" + ch for ch in self.channels]
        self.state_names = tuple(names)
        self.trace_states = tuple(names[base.n_states:])
        self.validate()

    # ------------------------------------------------------------ structure / delegation
    def param_dtype(self):
        return self.base.param_dtype()

    def params(self):
        out = {f"base.{k}": v for k, v in self.base.params().items()}
        out.update({k: getattr(self, k) for k in self._param_keys})
        return out

    @property
    def n(self) -> int:
        sizes = {int(p.shape[0]) for p in self.params().values() if p.dim() == 1 and p.shape[0] != 1}
        if len(sizes) > 1:
            raise ValueError(f"Traced: per-neuron parameters disagree on the number of neurons: "
                             f"sizes {sorted(sizes)}")
        return sizes.pop() if sizes else 1

    def config(self):
        raise NotImplementedError("build a new Traced(base.replace(...), ...) to change it")

    @property
    def n_inputs(self) -> int:
        return len(self._v) if self.has_syn else self.base.n_inputs

    def input_channels(self, u):
        return self.base.input_channels(u)

    def _pad(self, y_base):
        return torch.cat([y_base, y_base.new_zeros(y_base.shape[:-1] + (len(self.trace_states),))], dim=-1)

    def spike_input(self, w):
        """An input spike of weight ``w`` jumps the membrane as in the base model (no synapse) or
        the synaptic traces by ``[w]_k / tau_syn_k`` (a delta current into the synapse)."""
        if not self.has_syn:
            return self._pad(self.base.spike_input(w))
        inc = torch.zeros(w.shape + (self.n_states,), dtype=w.dtype, device=w.device)
        ch = self.base.input_channels(w) if len(self._v) == 2 else w.unsqueeze(-1)
        for k, c in enumerate(self.channels):
            inc[..., self.state_index("i" + c)] = ch[..., k] / self.p("tau_syn" + c, w.dtype, w.device)
        return inc

    def init_state(self, shape, dtype, device=None):
        return self._pad(self.base.init_state(shape, dtype, device))

    def output_scale(self, e, dtype=None, device=None):
        return self.base.output_scale(e, dtype, device)

    # ------------------------------------------------------------ dynamics
    def cascade_linear_part(self, dtype=None, device=None):
        """``(A, B, c)`` WITHOUT the trace -> membrane coupling (block diagonal): the base's linear
        part and ``-1/tau`` for each trace.  ``B`` ``[m, S, U]`` maps the zero-order-hold inputs of
        the traces (``cascade_inputs``): the input channels into ``i_k`` (gain ``1/tau_syn_k``),
        then the output channels into ``r_k`` (gain ``1/tau_rec_k``); the base's own input
        columns are not in it (``input_part``)."""
        dtype = dtype or self.param_dtype()
        A0, B0, c0 = self.base.linear_part(dtype, device)
        S0, S, K = A0.shape[-1], self.n_states, len(self._v)
        taus = []  # (trace state, its tau parameter, its input column in B)
        col = K if self.has_syn else 0
        if self.has_syn:
            taus += [("i" + c, "tau_syn" + c, k) for k, c in enumerate(self.channels)]
        if self.has_rec:
            taus += [("r" + c, "tau_rec" + c, col + k) for k, c in enumerate(self.channels)]
        m = max([A0.shape[0]] + [self.p(t, dtype, device).shape[0] for _, t, _ in taus])
        U = col + (K if self.has_rec else 0)
        A = torch.zeros(m, S, S, dtype=dtype, device=device)
        B = torch.zeros(m, S, U, dtype=dtype, device=device)
        A[:, :S0, :S0] = A0
        for name, t, j_col in taus:
            j = self.state_index(name)
            inv = 1.0 / self.p(t, dtype, device)
            A[:, j, j] = -inv
            B[:, j, j_col] = inv
        c = torch.cat([c0.expand(m, -1), c0.new_zeros(m, S - S0)], dim=-1)
        return A, B, c

    def cascade_inputs(self, x, prev_out=None):
        """``(u, impulse)`` of one grid step: ``u [..., n, U]`` the zero-order-hold inputs of the
        traces (input channels of ``x`` with a synapse, then the channels of the previous step's
        output), ``impulse [..., n, S]`` the end-of-step jump of ``x`` into the membrane (no
        synapse)."""
        K = len(self._v)
        chans = (lambda a: self.base.input_channels(a)) if K == 2 else (lambda a: a.unsqueeze(-1))
        parts = []
        if self.has_syn:
            parts.append(chans(x))
            imp = torch.zeros(x.shape + (self.n_states,), dtype=x.dtype, device=x.device)
        else:
            imp = self._pad(self.base.spike_input(x))
        if self.has_rec:
            parts.append(chans(torch.zeros_like(x) if prev_out is None else prev_out))
        u = torch.cat(parts, dim=-1) if parts else x.new_zeros(x.shape + (0,))
        return u, imp

    def cascade_drive(self, y):
        """Rate of change of the membrane states caused by the traces in state ``y``:
        ``route(sum_k i_k) + rec_weight_k * route(sum_k r_k)_k`` (zero on the trace states)."""
        S0 = self.base.n_states
        d = y.new_zeros(y.shape[:-1] + (S0,))
        if self.has_syn:
            isum = sum(y[..., self.state_index("i" + c)] for c in self.channels)
            d = d + self.base.spike_input(isum)
        if self.has_rec:
            rsum = sum(y[..., self.state_index("r" + c)] for c in self.channels)
            rin = self.base.spike_input(rsum)
            cols = []
            for j, nm in enumerate(self.base.state_names):
                if nm in self._v:
                    w = self.p("rec_weight" + self.channels[self._v.index(nm)], y.dtype, y.device)
                    cols.append(rin[..., j] * w)
                else:
                    cols.append(torch.zeros_like(rin[..., j]))
            d = d + torch.stack(cols, dim=-1)
        return self._pad(d)

    def linear_part(self, dtype=None, device=None):
        """Full linear part with the coupling (LIT base only: DualLIT's rectified coupling is
        piecewise linear, see ``drift``)."""
        if len(self._v) != 1:
            return None
        A, B, c = self.cascade_linear_part(dtype, device)
        dtype = A.dtype
        iv = self.state_index(self._v[0])
        if self.has_syn:
            A[:, iv, self.state_index("i")] = 1.0
        if self.has_rec:
            w = self.p("rec_weight", dtype, device)
            if w.shape[0] != A.shape[0]:
                A = A.expand(max(A.shape[0], w.shape[0]), -1, -1).clone()
                B = B.expand(A.shape[0], -1, -1)
                c = c.expand(A.shape[0], -1)
            A[:, iv, self.state_index("r")] = w
        return A, self.input_part(B, dtype, device), c

    def input_part(self, B_cascade, dtype, device=None):
        """``B`` of the continuous input current (``input_channels``): the synaptic columns of
        ``B_cascade``, or the base's own ``B`` without a synapse (the output channels are
        delivered by the jumps)."""
        if self.has_syn:
            return B_cascade[..., :len(self._v)]
        B0 = self.base.linear_part(dtype, device)[1]
        m = max(B0.shape[0], B_cascade.shape[0])
        return torch.cat([B0.expand(m, -1, -1),
                          B0.new_zeros(m, self.n_states - B0.shape[1], B0.shape[-1])], dim=1)

    def drift(self, t, y, u):
        A, B, c = self.cascade_linear_part(y.dtype, y.device)
        B = self.input_part(B, y.dtype, y.device)
        f = torch.einsum("nij,...nj->...ni", A, y) + torch.einsum("niu,...nu->...ni", B, u) + c
        return f + self.cascade_drive(y)

    def event_matrix(self, dtype=None, device=None):
        G = self.base.event_matrix(dtype, device)
        return torch.cat([G, G.new_zeros(G.shape[0], len(self.trace_states))], dim=1)

    def event_offset(self, dtype=None, device=None):
        return self.base.event_offset(dtype, device)

    def jump_map(self, e, dtype=None, device=None):
        J0, k0 = self.base.jump_map(e, dtype, device)
        dtype = J0.dtype
        S0, S = J0.shape[0], self.n_states
        J = torch.eye(S, dtype=dtype, device=device)
        J[:S0, :S0] = J0
        k = [k0[:, j] for j in range(S0)] + [torch.zeros_like(k0[:, 0]) for _ in self.trace_states]
        if self.has_rec:
            s = self.event_signs[e] * self.output_scale(e, dtype, device)
            parts = (s,) if len(self._v) == 1 else _split_sign(s).unbind(-1)
            for c, sk in zip(self.channels, parts):
                k[self.state_index("r" + c)] = sk / self.p("tau_rec" + c, dtype, device)
        m = max(t.shape[0] for t in k)
        return J, torch.stack([t.expand(m) for t in k], dim=-1)
