"""Leaky (and non-leaky) integrate-and-fire models with optional synapse and adaptation.

All four public classes are one linear system, written once in ``_Membrane.linear_part``:

    tau_mem dv/dt   = (v_leak - v) + r (i + I(t)) [- b]     (IF: dv/dt = r I(t))
    tau_syn di/dt   = -i                                   (CubaLIF, ALIF with tau_syn)
    tau_adapt db/dt = -b                                   (ALIF)

Event (spike) on the upward crossing of  v = v_th  (ALIF "threshold": v = v_th + b).
Jump at a spike:  v -> v_reset ("to_value"), v -> v - (v_th - v_reset) ("subtract") or
unchanged ("none"); b -> b + adapt_jump.  ALIF with ``subtract="threshold"`` subtracts the
current threshold instead: v -> v - (v_th + b - v_reset), b taken before its own jump (the same
as "to_value" at an exact crossing; differs on a time grid, sinabs' MembraneSubtract).  With ``t_ref > 0`` v is then held at its post-reset
value for t_ref seconds while the other states keep evolving.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .base import NeuronModel, Option, Param, State

__all__ = ["LIF", "IF", "CubaLIF", "ALIF"]

RESETS = ("to_value", "subtract", "none")


class _Membrane(NeuronModel):
    """Shared linear structure of LIF, IF, CubaLIF and ALIF (not public)."""

    _leaky = True
    _syn = False
    _adapt = False

    PARAMS = {
        "tau_mem": Param("s", "positive", time_constant=True, doc="membrane time constant"),
        "tau_syn": Param("s", "positive", time_constant=True, doc="synaptic time constant"),
        "r": Param("ohm", "positive", doc="membrane resistance (current -> voltage)"),
        "v_leak": Param("V", doc="resting potential"),
        "v_th": Param("V", doc="threshold"),
        "v_reset": Param("V", below="v_th", doc="reset potential (below v_th unless reset='none')"),
        "t_ref": Param("s", "nonneg", scale=1e-3, doc="refractory period"),
        "tau_adapt": Param("s", "positive", time_constant=True, doc="adaptation time constant"),
        "adapt_jump": Param("V", "nonneg", scale=1e-3, doc="increment of b at each spike"),
    }
    OPTIONS = {"reset": Option(RESETS, "what a spike does to v")}
    STATES = {
        "v": State("V", "membrane potential"),
        "i": State("A", "synaptic current"),
        # tau_mem dv/dt = ... - b with adaptation="current": b is r times an adaptation current,
        # a voltage in both modes (as adapt_jump)
        "b": State("V", "adaptation: the threshold's increment (adaptation='threshold') or the "
                        "drive r I_adapt subtracted in tau_mem dv/dt (adaptation='current')"),
    }

    def __init__(self, *, tau_mem=None, r=1.0, v_leak=0.0, v_th=1.0, v_reset=0.0,
                 reset="to_value", t_ref=0.0, tau_syn=None, tau_adapt=None, adapt_jump=None,
                 adaptation="threshold", subtract="v_th", n=None, dtype=None, **options):
        super().__init__(n=n, reset=reset, **options)
        self.reset = reset
        if self._adapt:
            self.adaptation = adaptation
            self.subtract = subtract
        else:   # LIF, IF, CubaLIF have neither option
            object.__setattr__(self, "adaptation", None)
            object.__setattr__(self, "subtract", "v_th")
        states = ["v"]
        if self._leaky:
            self._set_param("tau_mem", tau_mem, dtype=dtype)
        if self._syn:
            self._set_param("tau_syn", tau_syn, dtype=dtype)
            states.append("i")
        self._set_param("r", r, dtype=dtype)
        if self._leaky:
            self._set_param("v_leak", v_leak, dtype=dtype)
        self._set_param("v_th", v_th, dtype=dtype)
        self._set_param("v_reset", v_reset, dtype=dtype)
        self._set_param("t_ref", t_ref, dtype=dtype)
        if self._adapt:
            self._set_param("tau_adapt", tau_adapt, dtype=dtype)
            self._set_param("adapt_jump", adapt_jump, dtype=dtype)
            states.append("b")
        self.state_names = tuple(states)
        self.input_state = "i" if self._syn else "v"
        self.validate()

    def orders(self):
        # with reset="none" v is never reset: v_reset is unused and may lie anywhere
        return () if self.reset == "none" else super().orders()

    def validate(self) -> None:
        super().validate()
        if self.subtract == "threshold" and self.adaptation != "threshold":
            raise ValueError("subtract='threshold' needs ALIF with adaptation='threshold'")

    def init_state(self, shape, dtype, device=None):
        y = super().init_state(shape, dtype, device)
        if self._leaky:
            y = y.clone()
            y[..., 0] = self.p("v_leak", dtype, device)  # at rest; keeps v_leak's graph
        return y

    def linear_part(self, dtype=None, device=None):
        dtype = dtype or self.param_dtype()
        S = self.n_states
        p = lambda name: self.p(name, dtype, device)  # noqa: E731
        terms = [p("r")]
        if self._leaky:
            terms += [p("tau_mem"), p("v_leak")]
        if self._syn:
            terms.append(p("tau_syn"))
        if self._adapt:
            terms.append(p("tau_adapt"))
        m = max(t.shape[0] for t in terms)
        A = torch.zeros(m, S, S, dtype=dtype, device=device)
        B = torch.zeros(m, S, 1, dtype=dtype, device=device)
        c = torch.zeros(m, S, dtype=dtype, device=device)
        iv = 0
        gain = p("r") / p("tau_mem") if self._leaky else p("r")  # coefficient of the current in dv/dt
        if self._leaky:
            A[:, iv, iv] = -1.0 / p("tau_mem")
            c[:, iv] = p("v_leak") / p("tau_mem")
        B[:, iv, 0] = gain
        if self._syn:
            ii = self.state_index("i")
            A[:, iv, ii] = gain
            A[:, ii, ii] = -1.0 / p("tau_syn")
        if self._adapt:
            ib = self.state_index("b")
            A[:, ib, ib] = -1.0 / p("tau_adapt")
            if self.adaptation == "current":
                A[:, iv, ib] = -1.0 / p("tau_mem")
        return A, B, c

    def event_matrix(self, dtype=None, device=None):
        G = torch.zeros(1, self.n_states, dtype=dtype or self.param_dtype(), device=device)
        G[0, 0] = 1.0
        if self._adapt and self.adaptation == "threshold":
            G[0, self.state_index("b")] = -1.0
        return G

    def event_offset(self, dtype=None, device=None):
        return self.p("v_th", dtype, device).unsqueeze(-1)

    def jump_map(self, e, dtype=None, device=None):
        dtype = dtype or self.param_dtype()
        v_th, v_reset = self.p("v_th", dtype, device), self.p("v_reset", dtype, device)
        aj = self.p("adapt_jump", dtype, device) if self._adapt else v_th.new_zeros(1)
        m = max(v_th.shape[0], v_reset.shape[0], aj.shape[0])
        J = torch.eye(self.n_states, dtype=dtype, device=device)
        k = [v_th.new_zeros(m) for _ in self.state_names]
        if self.reset == "to_value":
            J[0, 0] = 0.0
            k[0] = v_reset.expand(m)
        elif self.reset == "subtract":
            k[0] = -(v_th - v_reset).expand(m)
            if self.subtract == "threshold":
                J[0, self.state_index("b")] = -1.0
        if self._adapt:
            k[self.state_index("b")] = aj.expand(m)
        return J, torch.stack(k, dim=-1)


class LIF(_Membrane):
    r"""Leaky integrate-and-fire neuron.

    .. math::
        \tau_{mem} \dot v = (v_{leak} - v) + r I(t)

    Spike when v crosses ``v_th`` upward; then v -> ``v_reset`` (``reset="to_value"``),
    v -> v - (v_th - v_reset) (``"subtract"``) or nothing (``"none"``); with ``t_ref > 0``, v is
    held at its post-reset value for ``t_ref`` seconds. Input spikes of weight w jump v by w.
    Times in seconds; v, v_leak, v_th, v_reset share one unit; r converts current to that unit.
    """

    def __init__(self, tau_mem, r=1.0, v_leak=0.0, v_th=1.0, v_reset=0.0, reset="to_value",
                 t_ref=0.0, *, n=None, dtype=None):
        super().__init__(tau_mem=tau_mem, r=r, v_leak=v_leak, v_th=v_th, v_reset=v_reset,
                         reset=reset, t_ref=t_ref, n=n, dtype=dtype)


class IF(_Membrane):
    r"""Non-leaky integrate-and-fire neuron: :math:`\dot v = r I(t)`.

    Same threshold, resets and refractoriness as :class:`LIF`; ``r`` has units of
    voltage per charge (1/C for a capacitor). Input spikes of weight w jump v by w.
    """

    _leaky = False
    PARAMS = {"r": Param("V/(A s)", "positive", doc="1/C: dv/dt per unit current")}

    def __init__(self, r=1.0, v_th=1.0, v_reset=0.0, reset="to_value", t_ref=0.0, *, n=None,
                 dtype=None):
        super().__init__(r=r, v_th=v_th, v_reset=v_reset, reset=reset, t_ref=t_ref, n=n, dtype=dtype)


class CubaLIF(_Membrane):
    r"""Current-based LIF: an exponential synaptic current feeding a leaky membrane.

    .. math::
        \tau_{syn} \dot i = -i, \qquad \tau_{mem} \dot v = (v_{leak} - v) + r (i + I(t))

    Input spikes of weight w jump i by w (units of current). Threshold, resets and refractory
    period as in :class:`LIF`. The exact propagator stays exact when tau_syn == tau_mem.
    """

    _syn = True

    def __init__(self, tau_syn, tau_mem, r=1.0, v_leak=0.0, v_th=1.0, v_reset=0.0,
                 reset="to_value", t_ref=0.0, *, n=None, dtype=None):
        super().__init__(tau_mem=tau_mem, tau_syn=tau_syn, r=r, v_leak=v_leak, v_th=v_th,
                         v_reset=v_reset, reset=reset, t_ref=t_ref, n=n, dtype=dtype)


class ALIF(_Membrane):
    r"""Adaptive LIF: a spike-triggered adaptation variable b.

    .. math::
        \tau_{adapt} \dot b = -b, \qquad
        \tau_{mem} \dot v = (v_{leak} - v) + r (i + I(t)) \;[- b \text{ if adaptation="current"}]

    ``adaptation="threshold"`` (LSNN / sinabs style): spike when v crosses ``v_th + b``.
    ``adaptation="current"`` (norse ada_lif style): b is subtracted in the membrane equation and
    the threshold is ``v_th``. At each spike b -> b + ``adapt_jump`` and v is reset as in
    :class:`LIF`. With ``tau_syn`` given, an exponential synaptic current i is added
    (``tau_syn di/dt = -i``; input spikes then jump i, otherwise v).
    ``reset="subtract"`` subtracts ``v_th - v_reset`` (``subtract="v_th"``) or, with threshold
    adaptation, the current threshold ``v_th + b - v_reset`` (``subtract="threshold"``).
    """

    _adapt = True
    OPTIONS = {"adaptation": Option(("threshold", "current"), "b raises the threshold or is subtracted from v"),
               "subtract": Option(("v_th", "threshold"), "what reset='subtract' subtracts")}

    def __init__(self, tau_mem, tau_adapt, adapt_jump, r=1.0, v_leak=0.0, v_th=1.0, v_reset=0.0,
                 reset="to_value", t_ref=0.0, adaptation="threshold", tau_syn=None,
                 subtract="v_th", *, n=None, dtype=None):
        self._syn = tau_syn is not None
        super().__init__(tau_mem=tau_mem, tau_adapt=tau_adapt, adapt_jump=adapt_jump, r=r,
                         v_leak=v_leak, v_th=v_th, v_reset=v_reset, reset=reset, t_ref=t_ref,
                         adaptation=adaptation, tau_syn=tau_syn, subtract=subtract, n=n,
                         dtype=dtype)
        self._options["adaptation"] = adaptation
        self._options["subtract"] = subtract
