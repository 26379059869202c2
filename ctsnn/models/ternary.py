"""Ternary (positive / negative spike) integrate-and-fire models: LIT and its dual-trace form.

LIT:      tau_mem dv/dt = -v + r I(t)   [+ r i, tau_syn di/dt = -i, when tau_syn is given]
          positive event: v + bias crosses  pos_th upward   -> v -= pos_th, output +pos_scale
          negative event: v + bias crosses -neg_th downward -> v += neg_th, output -neg_scale

DualLIT:  two sign-specific compartments with their own time constants,
          tau_pos dv_pos/dt = -v_pos + r max(I, 0),  tau_neg dv_neg/dt = -v_neg + r min(I, 0);
          the thresholds act on v = v_pos + v_neg and every reset is split equally between them.
"""
from __future__ import annotations

import torch

from .base import NeuronModel

__all__ = ["LIT", "DualLIT"]


class _Ternary(NeuronModel):
    event_names = ("positive", "negative")
    event_signs = (1, -1)
    _v_states: tuple[str, ...] = ("v",)

    def _ternary_params(self, pos_th, neg_th, bias, pos_scale, neg_scale, dtype):
        self._set_param("pos_th", pos_th, positive=True, dtype=dtype)
        self._set_param("neg_th", neg_th, positive=True, dtype=dtype)
        self._set_param("bias", bias, dtype=dtype)
        self._set_param("pos_scale", pos_scale, dtype=dtype)
        self._set_param("neg_scale", neg_scale, dtype=dtype)

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

    def __init__(self, tau_mem, pos_th=1.0, neg_th=1.0, bias=0.0, pos_scale=1.0, neg_scale=1.0,
                 r=1.0, tau_syn=None, *, n=None, dtype=None):
        super().__init__(n=n)
        self._set_param("tau_mem", tau_mem, positive=True, dtype=dtype)
        if tau_syn is not None:
            self._set_param("tau_syn", tau_syn, positive=True, dtype=dtype)
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

    def __init__(self, tau_pos, tau_neg, pos_th=1.0, neg_th=1.0, bias=0.0, pos_scale=1.0,
                 neg_scale=1.0, r=1.0, *, n=None, dtype=None):
        super().__init__(n=n)
        self._set_param("tau_pos", tau_pos, positive=True, dtype=dtype)
        self._set_param("tau_neg", tau_neg, positive=True, dtype=dtype)
        self._set_param("r", r, dtype=dtype)
        self._ternary_params(pos_th, neg_th, bias, pos_scale, neg_scale, dtype)
        self.validate()

    @property
    def n_inputs(self) -> int:
        return 2

    def input_channels(self, u):
        return torch.stack([u.clamp(min=0), u.clamp(max=0)], dim=-1)

    def spike_input(self, w):
        return torch.stack([w.clamp(min=0), w.clamp(max=0)], dim=-1)

    def linear_part(self, dtype=None, device=None):
        dtype = dtype or self.param_dtype()
        tp, tn, r = torch.broadcast_tensors(*(self.p(k, dtype, device) for k in ("tau_pos", "tau_neg", "r")))
        m = tp.shape[0]
        A = torch.zeros(m, 2, 2, dtype=dtype, device=device)
        B = torch.zeros(m, 2, 2, dtype=dtype, device=device)
        A[:, 0, 0], A[:, 1, 1] = -1.0 / tp, -1.0 / tn
        B[:, 0, 0], B[:, 1, 1] = r / tp, r / tn
        return A, B, torch.zeros(m, 2, dtype=dtype, device=device)
