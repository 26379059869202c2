"""Forward Euler on the dt grid, events checked at step ends (what the discrete libraries do).

    y(t + h) = y(t) + h f(t, y(t), u)

Order 1. Its dense output is the straight line between the step's ends, but it resolves no
time inside a step (``events_at_end``): an event fires when its event function is >= 0 at the
end of a step (at most one event per neuron and step, the largest), at the step end, where its
jump is applied. Refractory neurons (``t_ref > 0``) keep their clamped state while
``t < t_spike + t_ref`` at a step start.
"""
from __future__ import annotations

import torch

from .base import Hold, Problem, Segment, Solver, linear_drift

__all__ = ["Euler"]


class Euler(Solver):
    """Forward Euler, order 1, events at step ends."""

    name = "euler"
    order = 1
    events_at_end = True

    def __init__(self, problem: Problem):
        super().__init__(problem)
        self.lin = problem.model.linear_part(problem.dtype, problem.device)

    def drift(self, t, y, hold=None):
        if self.lin is not None:
            f = linear_drift(*self.lin, y, self.u)
        else:
            f = self.problem.model.drift(self.t0 + t, y, self.u)
        if hold is not None:
            f = f.clone()
            f[..., hold.index] = torch.where(hold.mask, torch.zeros_like(hold.value), f[..., hold.index])
        return f

    def step(self, t0, y0, t1, hold: Hold | None = None, rows=None) -> Segment:
        if rows is not None:
            raise ValueError("Euler steps the whole population (per_element is False)")
        p = self.problem
        h = t1 - t0
        y1 = y0 + h * self.drift(t0, y0)
        if hold is not None:
            y1 = hold.apply(y1)
        y0f, y1f = y0.reshape(-1, p.S), y1.reshape(-1, p.S)
        s0 = torch.full((p.M,), t0, dtype=torch.float64, device=p.device)
        d = (y1f - y0f) / h if h > 0 else torch.zeros_like(y0f)

        def at(i, s):
            return y0f[i] + (s - s0[i]).to(y0f.dtype)[:, None] * d[i]

        def slope(i, s):
            return d[i]

        return Segment(t0=s0, t1=t1, y0=y0, y1=y1, at=at, slope=slope, turns=False,
                       tol=4 * torch.finfo(torch.float64).eps * max(abs(t1), p.dt), events_at_end=True)
