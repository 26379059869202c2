"""snntorch dialect: ``Leaky`` and ``RLeaky`` as ``discretize(LIF | Recurrent(LIF))`` with time
counted in steps (dt = 1).

snntorch 1.0.0 ``Leaky`` (default ``reset_delay=True``)::

    reset = H(mem_prev - th)                      (detached)
    mem   = beta*mem_prev + x - reset*th          (subtract)
    mem   = beta*(1 - reset)*mem_prev + x         (zero)
    mem   = beta*mem_prev + x                     (none)
    spk   = H(mem - th) * graded_spikes_factor    (fires on mem - th > 0)

and returns ``(spk, mem)`` with ``mem`` pre-reset.  This is the LIF ODE ``tau dv/dt = -v`` with
``tau = -1/ln(beta)`` steps (IF for ``beta = 1``), impulse input at the end of the step
(gain 1), threshold ``th`` and a delayed reset: zero reset before the decay (the ODE's order),
subtract reset after the decay (``discretize(..., reset_delay=True, reset_order=...)``).

``RLeaky`` adds the previous step's output spikes through ``V`` (one-to-one), an ``nn.Linear``
or an ``nn.Conv2d`` (``all_to_all=True``; their bias is added every step)::

    mem = beta*mem_prev + x + rec(spk_prev) - reset*th      (subtract)
    mem = (1 - reset) * (beta*mem_prev + x + rec(spk_prev))  (zero: reset after the decay)

which is ``discretize(Recurrent(LIF, weight=V | module, delay=1))``: the feedback of step t-1's
spikes is an impulse at the end of step t.  ``spk_prev`` keeps its surrogate gradient.

With ``reset_delay=False`` the reset is applied in the same step, ``mem -= spk*th`` or
``mem -= spk*mem`` (not detached): the non-delayed path of ``discretize``.  (snntorch then also
applies a delayed reset when the post-reset ``mem`` is still above ``th``, i.e. ``mem > 2*th``
before the reset; that double-threshold case is not reproduced, see docs/derivations.md.)

``learn_beta=True`` learns the continuous ``tau`` (beta = exp(-1/tau)); ``learn_decay=True``
learns ``beta`` itself, clamped to [0, 1] as in snntorch (``discretize(..., learn_decay=True)``).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..discrete import discretize
from ..models import IF, LIF
from ..models.recurrent import Recurrent

__all__ = ["Leaky", "RLeaky"]

_RESETS = {"subtract": "subtract", "zero": "to_value", "none": "none"}


def _as_tensor(name: str, value, learn: bool) -> Tensor:
    t = value if isinstance(value, Tensor) else torch.as_tensor(value)
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    if t.dim() > 1:
        raise ValueError(f"{name} must be a scalar or a 1-D per-neuron tensor, got shape {tuple(t.shape)}")
    with torch.no_grad():
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} must be finite, got {value!r}")
    t = t.detach().clone()
    return nn.Parameter(t) if learn else t


class _SnnNeuron(nn.Module):
    """Shared construction of Leaky and RLeaky (not public)."""

    def _build(self, beta, threshold, spike_grad, surrogate_disable, init_hidden, inhibition,
               learn_beta, learn_threshold, reset_mechanism, state_quant, output,
               graded_spikes_factor, learn_graded_spikes_factor, reset_delay, learn_decay,
               zero_reset_order, recurrence=None):
        if reset_mechanism not in _RESETS:
            raise ValueError(f"reset_mechanism must be 'subtract', 'zero' or 'none', got {reset_mechanism!r}")
        b = _as_tensor("beta", beta, False)
        with torch.no_grad():
            if bool((b <= 0).any()) or bool((b > 1).any()):
                raise ValueError(f"beta must be in (0, 1] (beta = exp(-dt/tau); 0 has no continuous time "
                                 f"constant), got {beta!r}")
        if inhibition and not reset_delay:
            raise ValueError("inhibition with reset_delay=False is not supported (snntorch then resets "
                             "only the winning neuron)")
        if state_quant and not callable(state_quant):
            raise ValueError(f"state_quant must be a quantisation function or False, got {state_quant!r}")
        self._beta_shape = b.shape
        learn_decay = bool(learn_decay) and bool(learn_beta)
        bf = b.reshape(-1).to(torch.float64)
        all_one, any_one = bool((bf == 1).all()), bool((bf == 1).any())
        if any_one and not all_one and not learn_decay:
            raise ValueError("beta: a mix of 1 and < 1 values needs learn_beta=True, learn_decay=True "
                             "(no single continuous model)")
        if all_one and learn_beta and not learn_decay:
            raise ValueError("learn_beta with beta = 1 (no leak, tau = inf): pass learn_decay=True to "
                             "learn beta itself")
        th = _as_tensor("threshold", threshold, learn_threshold)
        reset = _RESETS[reset_mechanism]
        if all_one:
            model = IF(v_th=th, reset=reset)
        else:
            tau = torch.where(bf < 1, -1.0 / torch.log(torch.where(bf < 1, bf, torch.full_like(bf, 0.5))),
                              torch.ones_like(bf))
            tau = tau if b.dim() == 1 else tau.reshape(())
            if learn_beta and not learn_decay:
                tau = nn.Parameter(tau.to(b.dtype))  # snntorch's beta dtype
            else:  # float64 numbers: exp(-1/tau) reproduces beta to 1e-16 in every dtype
                tau = tau.tolist()
            model = LIF(tau_mem=tau, v_th=th, reset=reset)
        if recurrence is not None:
            model = Recurrent(model, weight=recurrence, delay=1.0)
        order = "after_decay" if reset_mechanism == "subtract" else zero_reset_order
        sq = state_quant if state_quant else None
        self.layer = discretize(model, 1.0, input="impulse",
                                surrogate="heaviside" if surrogate_disable else (spike_grad or "atan"),
                                reset_delay=bool(reset_delay), detach_reset=bool(reset_delay),
                                reset_order=order, learn_decay=learn_decay,
                                state_map=None if sq is None else (lambda y: sq(y)))
        if learn_decay:  # beta itself, in snntorch's dtype (also covers a mix of 1 and < 1)
            self.layer.decay = nn.Parameter(bf.reshape(-1, 1).to(b.dtype))
        self.init_hidden, self.inhibition, self.output = bool(init_hidden), bool(inhibition), bool(output)
        self.reset_delay, self.reset_mechanism = bool(reset_delay), reset_mechanism
        self.state_quant = state_quant
        gsf = _as_tensor("graded_spikes_factor", graded_spikes_factor, learn_graded_spikes_factor)
        if isinstance(gsf, nn.Parameter):
            self.graded_spikes_factor = gsf
        else:
            self.register_buffer("graded_spikes_factor", gsf)
        self.register_buffer("mem", torch.zeros(0), persistent=False)

    # ------------------------------------------------------------------ parameters
    @property
    def _lif(self):
        m = self.layer.model
        return m.base if isinstance(m, Recurrent) else m

    @property
    def beta(self) -> Tensor:
        """Decay per step: ``exp(-1/tau)`` (or the learned decay with ``learn_decay``)."""
        if self.layer.learn_decay:
            return self.layer.decay[:, 0].clamp(0, 1).reshape(self._beta_shape)
        if isinstance(self._lif, IF):
            return torch.ones(self._beta_shape)
        return torch.exp(-1.0 / self._lif.tau_mem).reshape(self._beta_shape)

    @property
    def tau(self) -> Tensor:
        """The continuous membrane time constant in steps (the learnable one by default)."""
        return self._lif.tau_mem

    @property
    def threshold(self) -> Tensor:
        return self._lif.v_th

    def _fire_post(self, spk: Tensor) -> Tensor:
        if self.inhibition:  # only the largest mem - th along dim 1 may spike (as snntorch)
            g = self.mem - self.threshold.to(self.mem.dtype)
            mask = torch.zeros_like(spk)
            mask[torch.arange(g.shape[0]), torch.argmax(g, dim=1)] = 1
            return spk * mask
        f = self.graded_spikes_factor
        if not f.requires_grad and f.numel() == 1 and float(f) == 1.0:
            return spk  # spk * 1 is spk: skip the copy
        return spk * f

    def _state(self, input_: Tensor, mem: Tensor | None) -> Tensor:
        if mem is not None:
            self.mem = mem
        if self.mem.shape != input_.shape:
            self.mem = torch.zeros_like(input_)
        return self.mem.unsqueeze(-1)

    def reset_mem(self):
        self.mem = torch.zeros_like(self.mem)
        return self.mem

    def detach_hidden(self) -> None:
        """Cut the graph of the stored state (truncated BPTT with ``init_hidden=True``)."""
        self.mem = self.mem.detach()

    def to_model(self):
        """The continuous ctsnn model (time in steps)."""
        return self.layer.to_model()


class Leaky(_SnnNeuron):
    """snntorch.Leaky (1.0.0): ``beta, threshold=1, spike_grad=None (atan), surrogate_disable,
    init_hidden, inhibition, learn_beta, learn_threshold, reset_mechanism ('subtract' | 'zero' |
    'none'), state_quant, output, graded_spikes_factor, learn_graded_spikes_factor,
    reset_delay=True`` plus ``learn_decay`` (learn beta instead of tau).

    ``forward(input_, mem=None) -> (spk, mem)`` (``spk`` only with ``init_hidden=True`` unless
    ``output=True``); the state is also kept in ``self.mem`` as in snntorch.  Equations: see the
    module docstring (LIF, exact step, impulse input, delayed reset)."""

    def __init__(self, beta, threshold=1.0, spike_grad=None, surrogate_disable=False, init_hidden=False,
                 inhibition=False, learn_beta=False, learn_threshold=False, reset_mechanism="subtract",
                 state_quant=False, output=False, graded_spikes_factor=1.0,
                 learn_graded_spikes_factor=False, reset_delay=True, learn_decay=False) -> None:
        super().__init__()
        self._build(beta, threshold, spike_grad, surrogate_disable, init_hidden, inhibition, learn_beta,
                    learn_threshold, reset_mechanism, state_quant, output, graded_spikes_factor,
                    learn_graded_spikes_factor, reset_delay, learn_decay, zero_reset_order="before_decay")

    def init_leaky(self):
        """Deprecated in snntorch; same as ``reset_mem``."""
        return self.reset_mem()

    def forward(self, input_: Tensor, mem: Tensor | None = None):
        if self.init_hidden and mem is not None:
            raise TypeError("`mem` should not be passed as an argument while `init_hidden=True`")
        spk, y = self.layer(input_, self._state(input_, mem))
        self.mem = y[..., 0]
        spk = self._fire_post(spk)
        if self.init_hidden and not self.output:
            return spk
        return spk, self.mem


class RLeaky(_SnnNeuron):
    """snntorch.RLeaky (1.0.0): ``beta, V=1, all_to_all=True, linear_features, conv2d_channels,
    kernel_size, threshold, spike_grad, surrogate_disable, init_hidden, inhibition, learn_beta,
    learn_threshold, learn_recurrent=True, reset_mechanism, state_quant, output, reset_delay``
    plus ``learn_decay``.

    Recurrence ``rec``: ``V * spk`` (``all_to_all=False``), ``nn.Linear(linear_features,
    linear_features)`` or ``nn.Conv2d(conv2d_channels, conv2d_channels, kernel_size,
    padding=kernel_size//2)``, exposed as ``self.recurrent`` (and ``self.V``).
    ``forward(input_, spk=None, mem=None) -> (spk, mem)``; equations in the module docstring
    (``Recurrent(LIF, delay=1 step)``, exact step, impulse input, delayed reset after the decay)."""

    def __init__(self, beta, V=1.0, all_to_all=True, linear_features=None, conv2d_channels=None,
                 kernel_size=None, threshold=1.0, spike_grad=None, surrogate_disable=False,
                 init_hidden=False, inhibition=False, learn_beta=False, learn_threshold=False,
                 learn_recurrent=True, reset_mechanism="subtract", state_quant=False, output=False,
                 reset_delay=True, learn_decay=False) -> None:
        super().__init__()
        conv, ks = bool(conv2d_channels), bool(kernel_size)
        if all_to_all:
            if not linear_features:
                if not (conv or ks):
                    raise TypeError("RLeaky: all_to_all=True needs linear_features or both conv2d_channels "
                                    "and kernel_size")
                if conv ^ ks:
                    raise TypeError("RLeaky: conv2d_channels and kernel_size must both be given")
            elif conv or ks:
                raise TypeError("RLeaky: linear_features cannot be given together with conv2d_channels or "
                                "kernel_size (a Linear and a Conv2d recurrence at once)")
            if linear_features:
                rec = nn.Linear(linear_features, linear_features)
            else:
                pad = (kernel_size // 2, kernel_size // 2) if isinstance(kernel_size, int) else \
                    (kernel_size[0] // 2, kernel_size[1] // 2)
                rec = nn.Conv2d(conv2d_channels, conv2d_channels, kernel_size, padding=pad)
            if not learn_recurrent:
                rec.requires_grad_(False)
        else:
            if linear_features or conv or ks:
                raise TypeError("RLeaky: with all_to_all=False none of linear_features, conv2d_channels, "
                                "kernel_size may be given (V is the one-to-one weight)")
            rec = _as_tensor("V", V, learn_recurrent)
        self.all_to_all = bool(all_to_all)
        self._build(beta, threshold, spike_grad, surrogate_disable, init_hidden, inhibition, learn_beta,
                    learn_threshold, reset_mechanism, state_quant, output, 1.0, False, reset_delay,
                    learn_decay, zero_reset_order="after_decay", recurrence=rec)
        self.register_buffer("spk", torch.zeros(0), persistent=False)

    @property
    def recurrent(self):
        """The recurrent map: the ``nn.Linear`` / ``nn.Conv2d`` module, or ``V`` (one-to-one)."""
        return self.layer.model.weight

    @property
    def V(self):
        if self.all_to_all:
            raise AttributeError("RLeaky.V exists only with all_to_all=False")
        return self.layer.model.weight

    def reset_mem(self):
        self.spk = torch.zeros_like(self.spk)
        self.mem = torch.zeros_like(self.mem)
        return self.spk, self.mem

    init_rleaky = reset_mem

    def detach_hidden(self) -> None:
        self.mem, self.spk = self.mem.detach(), self.spk.detach()

    def forward(self, input_: Tensor, spk: Tensor | None = None, mem: Tensor | None = None):
        if self.init_hidden and (mem is not None or spk is not None):
            raise TypeError("When `init_hidden=True`, RLeaky expects 1 input argument.")
        if spk is not None:
            self.spk = spk
        if self.spk.shape != input_.shape:
            self.spk = torch.zeros_like(input_)
        out, y = self.layer(input_, self._state(input_, mem), prev_out=self.spk)
        self.mem = y[..., 0]
        self.spk = self._fire_post(out)
        if self.init_hidden and not self.output:
            return self.spk
        return self.spk, self.mem
