"""Nonlinear integrate-and-fire models: AdEx, QIF and Izhikevich.

They have no exact propagator (``linear_part`` is None): ``method="exact"`` refuses them;
``"euler"`` and the torchdiffeq methods (``"dopri5"``, ...) integrate them. Events and jumps are
affine, as for every ctsnn model: the spike is the upward crossing of ``v = v_peak`` and the
reset is ``v -> v_reset`` (plus an adaptation increment).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .base import NeuronModel, Param, State

__all__ = ["AdEx", "QIF", "Izhikevich"]


class _Nonlinear(NeuronModel):
    def _pp(self, name, y):
        """Parameter ``name`` in ``y``'s dtype and device. The drift asks for every parameter at
        every evaluation, so the converted tensor is kept while the stored one is the same object
        at the same version (a reassigned or in-place changed parameter is converted again), per
        grad mode (a tensor converted without autograd must not stand in for one with it)."""
        src = getattr(self, name)
        cache = self.__dict__.setdefault("_pp_cache", {})
        key = (name, y.dtype, y.device, torch.is_grad_enabled())
        hit = cache.get(key)
        if hit is not None and hit[0] is src and hit[1] == src._version:
            return hit[2]
        t = self.p(name, y.dtype, y.device)
        cache[key] = (src, src._version, t)
        return t

    def __getstate__(self):
        """Copies and pickles leave out the drift's converted parameters (rebuilt on use; a
        converted tensor with autograd history cannot be deep-copied)."""
        state = dict(super().__getstate__())
        state.pop("_pp_cache", None)
        return state

    def event_matrix(self, dtype=None, device=None) -> Tensor:
        G = torch.zeros(1, self.n_states, dtype=dtype or self.param_dtype(), device=device)
        G[0, 0] = 1.0
        return G

    def event_offset(self, dtype=None, device=None) -> Tensor:
        return self.p("v_peak", dtype, device)[:, None]


class AdEx(_Nonlinear):
    """Adaptive exponential integrate-and-fire (Brette & Gerstner 2005), SI units.

        C dv/dt     = -g_L (v - E_L) + g_L Delta_T exp((v - V_T)/Delta_T) - w + I(t)
        tau_w dw/dt = a (v - E_L) - w

    Spike on the upward crossing of ``v = v_peak``; jump ``v -> v_reset``, ``w -> w + b``.
    States ``(v, w)`` in V and A; input spikes jump ``v`` by their weight (V). The exponent's
    argument is clamped at ``exp_cap`` (default 50) so the drift stays finite (the solver then
    reaches ``v_peak`` in finite time instead of overflowing).

    Defaults: the regular-spiking cell of Brette & Gerstner (C = 281 pF, g_L = 30 nS,
    E_L = -70.6 mV, V_T = -50.4 mV, Delta_T = 2 mV, tau_w = 144 ms, a = 4 nS, b = 80.5 pA,
    v_reset = E_L) with ``v_peak = V_T + 5 Delta_T``.
    """

    state_names = ("v", "w")
    STATES = {"v": State("V", "membrane potential"), "w": State("A", "adaptation current")}
    PARAMS = {
        "C": Param("F", "positive", doc="membrane capacitance"),
        "g_L": Param("S", "positive", doc="leak conductance"),
        "E_L": Param("V", doc="leak reversal potential"),
        "V_T": Param("V", doc="threshold slope factor's midpoint"),
        "Delta_T": Param("V", "positive", doc="slope factor"),
        "tau_w": Param("s", "positive", time_constant=True, doc="adaptation time constant"),
        "a": Param("S", doc="subthreshold adaptation conductance"),
        "b": Param("A", doc="spike-triggered adaptation current"),
        "v_reset": Param("V", below="v_peak", doc="reset potential"),
        "v_peak": Param("V", doc="spike cut-off"),
    }

    def __init__(self, C=281e-12, g_L=30e-9, E_L=-70.6e-3, V_T=-50.4e-3, Delta_T=2e-3, tau_w=144e-3,
                 a=4e-9, b=80.5e-12, v_reset=-70.6e-3, v_peak=-40.4e-3, exp_cap=50.0, *, n=None,
                 dtype=None):
        super().__init__(n=n, exp_cap=exp_cap)
        for name, val in (("C", C), ("g_L", g_L), ("E_L", E_L), ("V_T", V_T), ("Delta_T", Delta_T),
                          ("tau_w", tau_w), ("a", a), ("b", b), ("v_reset", v_reset), ("v_peak", v_peak)):
            self._set_param(name, val, dtype=dtype)
        from ..validate import number
        self.exp_cap = number("exp_cap", exp_cap, positive=True)
        self.validate()

    def drift(self, t, y, u):
        p = lambda k: self._pp(k, y)  # noqa: E731
        v, w, I = y[..., 0], y[..., 1], u[..., 0]
        arg = torch.clamp((v - p("V_T")) / p("Delta_T"), max=self.exp_cap)
        dv = (-p("g_L") * (v - p("E_L")) + p("g_L") * p("Delta_T") * torch.exp(arg) - w + I) / p("C")
        dw = (p("a") * (v - p("E_L")) - w) / p("tau_w")
        return torch.stack([dv, dw], -1)

    def jump_map(self, e, dtype=None, device=None):
        dtype = dtype or self.param_dtype()
        J = torch.tensor([[0.0, 0.0], [0.0, 1.0]], dtype=dtype, device=device)
        vr, b = torch.broadcast_tensors(self.p("v_reset", dtype, device), self.p("b", dtype, device))
        return J, torch.stack([vr, b], -1)

    def init_state(self, shape, dtype, device=None):
        y = super().init_state(shape, dtype, device)
        y[..., 0] = self.p("E_L", dtype, device).detach()
        return y


class QIF(_Nonlinear):
    """Quadratic integrate-and-fire (Latham et al. 2000; Ermentrout-Kopell normal form).

        tau_mem dv/dt = (v - v_rest)(v - v_c) / (v_c - v_rest) + r I(t)

    with ``v_c > v_rest`` the critical voltage (unstable fixed point at I = 0); normalised so
    that the slope at ``v_rest`` is -1 (a leaky membrane near rest). Spike on the upward
    crossing of ``v = v_peak``; jump ``v -> v_reset``. State ``(v,)``. Under DC with
    ``v_rest = 0``, ``v_c = 1`` and ``c = r I - 1/4 > 0`` the time from ``v0`` to ``v_peak`` is
    ``tau (atan((v_peak - 1/2)/sqrt c) - atan((v0 - 1/2)/sqrt c)) / sqrt c``.
    """

    state_names = ("v",)
    STATES = {"v": State("V", "membrane potential")}
    PARAMS = {
        "tau_mem": Param("s", "positive", time_constant=True, doc="membrane time constant"),
        "v_rest": Param("V", below="v_c", doc="resting potential (stable fixed point)"),
        "v_c": Param("V", doc="critical potential (unstable fixed point)"),
        "r": Param("ohm", "positive", doc="membrane resistance"),
        "v_reset": Param("V", below="v_peak", doc="reset potential"),
        "v_peak": Param("V", doc="spike cut-off"),
    }

    def __init__(self, tau_mem, v_rest=0.0, v_c=1.0, r=1.0, v_reset=0.0, v_peak=10.0, *, n=None,
                 dtype=None):
        super().__init__(n=n)
        for name, val in (("tau_mem", tau_mem), ("v_rest", v_rest), ("v_c", v_c), ("r", r),
                          ("v_reset", v_reset), ("v_peak", v_peak)):
            self._set_param(name, val, dtype=dtype)
        self.validate()

    def drift(self, t, y, u):
        p = lambda k: self._pp(k, y)  # noqa: E731
        v = y[..., 0]
        dv = ((v - p("v_rest")) * (v - p("v_c")) / (p("v_c") - p("v_rest")) + p("r") * u[..., 0]) / p("tau_mem")
        return dv.unsqueeze(-1)

    def jump_map(self, e, dtype=None, device=None):
        dtype = dtype or self.param_dtype()
        J = torch.zeros(1, 1, dtype=dtype, device=device)
        return J, self.p("v_reset", dtype, device)[:, None]

    def init_state(self, shape, dtype, device=None):
        y = super().init_state(shape, dtype, device)
        y[..., 0] = self.p("v_rest", dtype, device).detach()
        return y


class Izhikevich(_Nonlinear):
    """Izhikevich (2003) simple model. Voltages in mV, current in the model's units, time in s.

    Izhikevich's equations are written per millisecond; ctsnn keeps his numbers and states
    (``v``, ``u`` in mV, ``I`` in his dimensionless current units) and converts only time to
    seconds, with ``k = 1000 /s`` (ms per s):

        dv/dt = k (0.04 v^2 + 5 v + 140 - u + I(t))
        du/dt = k a (b v - u)

    so ``a`` is the recovery rate per ms as in the paper (a = 0.02 means 1/(50 ms)). Spike on the
    upward crossing of ``v = v_peak`` (30 mV); jump ``v -> c``, ``u -> u + d``. Defaults: regular
    spiking (a, b, c, d) = (0.02, 0.2, -65, 8). Resting start ``v = c``, ``u = b c``.
    """

    state_names = ("v", "u")
    STATES = {"v": State("mV", "membrane potential"), "u": State("mV", "recovery variable")}
    # Izhikevich's own units: voltages in mV, rates per ms, a dimensionless current
    PARAMS = {
        "a": Param("1/ms", "positive", doc="recovery rate"),
        "b": Param("", doc="sensitivity of u to v"),
        "c": Param("mV", below="v_peak", doc="reset voltage"),
        "d": Param("mV", doc="increment of u at each spike"),
        "v_peak": Param("mV", doc="spike cut-off"),
    }
    voltage_unit = "mV"
    current_unit = ""
    K = 1000.0

    def __init__(self, a=0.02, b=0.2, c=-65.0, d=8.0, v_peak=30.0, *, n=None, dtype=None):
        super().__init__(n=n)
        for name, val in (("a", a), ("b", b), ("c", c), ("d", d), ("v_peak", v_peak)):
            self._set_param(name, val, dtype=dtype)
        self.validate()

    def drift(self, t, y, u_in):
        p = lambda k: self._pp(k, y)  # noqa: E731
        v, u = y[..., 0], y[..., 1]
        dv = self.K * (0.04 * v * v + 5.0 * v + 140.0 - u + u_in[..., 0])
        du = self.K * p("a") * (p("b") * v - u)
        return torch.stack([dv, du], -1)

    def jump_map(self, e, dtype=None, device=None):
        dtype = dtype or self.param_dtype()
        J = torch.tensor([[0.0, 0.0], [0.0, 1.0]], dtype=dtype, device=device)
        c, d = torch.broadcast_tensors(self.p("c", dtype, device), self.p("d", dtype, device))
        return J, torch.stack([c, d], -1)

    def init_state(self, shape, dtype, device=None):
        y = super().init_state(shape, dtype, device)
        c = self.p("c", dtype, device).detach()
        y[..., 0] = c
        y[..., 1] = self.p("b", dtype, device).detach() * c
        return y
