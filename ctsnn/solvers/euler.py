"""Forward Euler on the dt grid, events checked at step ends (what the discrete libraries do).

    y(t + h) = y(t) + h f(t, y(t), u)

Order 1. An event fires when its event function is >= 0 at the end of a step (at most one event
per neuron and step); its time is the step end, and its jump is applied there. Refractory
neurons (``t_ref > 0``) keep their clamped state while ``t < t_spike + t_ref`` at a step start.
"""
from __future__ import annotations

import torch

from .base import Solver, linear_drift

__all__ = ["Euler"]


class Euler(Solver):
    """Forward Euler, order 1, events at step ends."""

    name = "euler"
    order = 1

    def __init__(self, sim):
        super().__init__(sim)
        m = sim.model
        self.lin = m.linear_part(sim.dtype, sim.device)
        self.G = m.event_matrix(sim.dtype, sim.device)
        self.theta = m.event_offset(sim.dtype, sim.device)

    def advance(self, sim, a, b):
        y, h = sim.y, b - a
        if self.lin is not None:
            f = linear_drift(*self.lin, y, sim.u)
        else:
            f = sim.model.drift(sim.t0 + a, y, sim.u)
        y1 = y + h * f
        in_ref = sim.in_refractory(a)
        if in_ref is not None:
            y1 = sim.clamp(y1, in_ref)
        with torch.no_grad():
            g1 = y1 @ self.G.T - self.theta
            fire = g1 >= 0
            if in_ref is not None:
                fire &= ~in_ref.unsqueeze(-1)
            anyfire = fire.any(-1)
        sim.y = y1
        if bool(anyfire.any()):
            idx = anyfire.reshape(-1).nonzero().squeeze(-1)
            e = torch.where(fire, g1, torch.full_like(g1, -torch.inf)).reshape(-1, g1.shape[-1])[idx].argmax(-1)
            off = torch.full((idx.shape[0],), b, dtype=sim.dtype, device=sim.device)
            pre = sim.y.reshape(-1, sim.S)[idx]
            sim.fire(idx, off, e, pre)
        return b
