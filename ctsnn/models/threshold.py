r"""A leaky integrate-and-fire neuron whose threshold follows the membrane (Mihalas-Niebur style).

.. math::
    \tau_{mem} \dot v = (v_{leak} - v) + r I(t) - w, \qquad
    \dot\theta = a (v - v_{leak}) - b (\theta - \theta_\infty), \qquad
    \tau_w \dot w = -w

Spike on the upward crossing of ``v - theta = 0``; then ``v -> v_reset``,
``theta -> theta + theta_jump`` and ``w -> w + w_jump``.

Below threshold the system is linear (states ``v``, ``theta``, ``w``; ``w`` is a hyperpolarising
adaptation in volts, as in :class:`~ctsnn.models.ALIF` with ``adaptation="current"``), so the
exact propagator, the compiled event engine and ``discretize`` run it like every other linear
model. The threshold tracking the membrane (``a > 0``) is what no LIF, ALIF or AdEx has: under a
slowly rising or sustained depolarisation ``theta`` rises with ``v`` (by ``a / b`` per volt in
the steady state), so a cell can fire at a step's onset, when ``v`` outruns ``theta`` (which lags
it by about ``1 / b``), and then fall silent (threshold accommodation, a depolarisation block);
``theta_jump`` and ``w_jump`` give spike-triggered adaptation of the threshold and of the
membrane. Mihalas & Niebur (2009) reset the threshold to ``max(theta_reset, theta)``; the jump
here is additive (affine, as the engine needs), as in the Allen Institute's GLIF models.
"""
from __future__ import annotations

import torch

from .base import NeuronModel, Param, State

__all__ = ["MNLIF"]


class MNLIF(NeuronModel):
    r"""Leaky integrate-and-fire neuron with a voltage-dependent, spike-adapting threshold.

    .. math::
        \tau_{mem} \dot v = (v_{leak} - v) + r I(t) - w, \qquad
        \dot\theta = a (v - v_{leak}) - b (\theta - \theta_\infty), \qquad
        \tau_w \dot w = -w

    Spike when ``v`` crosses ``theta`` upward; then ``v -> v_reset``, ``theta -> theta +
    theta_jump``, ``w -> w + w_jump``. At rest (no current) ``v = v_leak``, ``theta =
    theta_inf``, ``w = 0``. ``a`` (1/s) couples the threshold to the membrane (0: a threshold
    that only adapts to spikes, decaying at rate ``b`` back to ``theta_inf``); ``b`` (1/s) is
    the threshold's relaxation rate. Input spikes of weight w jump v by w. No refractory period:
    ``theta_jump`` keeps the membrane below the threshold after a spike.
    """

    PARAMS = {
        "tau_mem": Param("s", "positive", time_constant=True, doc="membrane time constant"),
        "r": Param("ohm", "positive", doc="membrane resistance (current -> voltage)"),
        "v_leak": Param("V", doc="resting potential"),
        "theta_inf": Param("V", doc="resting threshold"),
        "v_reset": Param("V", below="theta_inf", doc="reset potential (below theta_inf)"),
        "a": Param("1/s", "nonneg", scale=1.0, doc="threshold's dependence on v: dtheta/dt += a (v - v_leak)"),
        "b": Param("1/s", "positive", scale=1.0, doc="threshold's relaxation rate to theta_inf"),
        "theta_jump": Param("V", "nonneg", scale=1e-3, doc="threshold increment at each spike"),
        "tau_w": Param("s", "positive", time_constant=True, doc="adaptation time constant"),
        "w_jump": Param("V", "nonneg", scale=1e-3, doc="increment of the adaptation w at each spike"),
    }

    STATES = {
        "v": State("V", "membrane potential"),
        "theta": State("V", "threshold"),
        "w": State("V", "adaptation: r times the adaptation current, subtracted in tau_mem dv/dt"),
    }

    state_names = ("v", "theta", "w")

    def __init__(self, tau_mem, r=1.0, v_leak=0.0, theta_inf=1.0, v_reset=0.0, a=0.0, b=10.0,
                 theta_jump=0.0, tau_w=0.1, w_jump=0.0, *, n=None, dtype=None):
        super().__init__(n=n)
        for name, value in (("tau_mem", tau_mem), ("r", r), ("v_leak", v_leak), ("theta_inf", theta_inf),
                            ("v_reset", v_reset), ("a", a), ("b", b), ("theta_jump", theta_jump),
                            ("tau_w", tau_w), ("w_jump", w_jump)):
            self._set_param(name, value, dtype=dtype)
        self.validate()

    def init_state(self, shape, dtype, device=None):
        y = super().init_state(shape, dtype, device).clone()
        y[..., 0] = self.p("v_leak", dtype, device)       # at rest; keeps the parameters' graph
        y[..., 1] = self.p("theta_inf", dtype, device)
        return y

    def linear_part(self, dtype=None, device=None):
        dtype = dtype or self.param_dtype()
        p = lambda name: self.p(name, dtype, device)  # noqa: E731
        tau, a, b = p("tau_mem"), p("a"), p("b")
        m = max(x.shape[0] for x in (tau, p("r"), p("v_leak"), p("theta_inf"), a, b, p("tau_w")))
        A = torch.zeros(m, 3, 3, dtype=dtype, device=device)
        B = torch.zeros(m, 3, 1, dtype=dtype, device=device)
        c = torch.zeros(m, 3, dtype=dtype, device=device)
        A[:, 0, 0] = -1.0 / tau
        A[:, 0, 2] = -1.0 / tau
        A[:, 1, 0] = a
        A[:, 1, 1] = -b
        A[:, 2, 2] = -1.0 / p("tau_w")
        B[:, 0, 0] = p("r") / tau
        c[:, 0] = p("v_leak") / tau
        c[:, 1] = b * p("theta_inf") - a * p("v_leak")
        return A, B, c

    def event_matrix(self, dtype=None, device=None):
        return torch.tensor([[1.0, -1.0, 0.0]], dtype=dtype or self.param_dtype(), device=device)

    def event_offset(self, dtype=None, device=None):
        return torch.zeros(1, 1, dtype=dtype or self.param_dtype(), device=device)

    def jump_map(self, e, dtype=None, device=None):
        dtype = dtype or self.param_dtype()
        vr, tj, wj = (self.p(k, dtype, device) for k in ("v_reset", "theta_jump", "w_jump"))
        m = max(vr.shape[0], tj.shape[0], wj.shape[0])
        J = torch.eye(3, dtype=dtype, device=device)
        J[0, 0] = 0.0
        k = torch.stack([vr.expand(m), tj.expand(m), wj.expand(m)], dim=-1)
        return J, k
