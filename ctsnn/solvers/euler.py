"""Forward Euler on the dt grid, with events at step ends (the default) or located inside steps.

    y(t + h) = y(t) + h f(t, y(t), u)

Order 1. Its dense output is the straight line between the step's ends, ``y(s) = y(t) + (s - t)
f(t, y(t), u)``.

``events="end"`` (default; what the discrete libraries do): the solver resolves no time inside a
step (``events_at_end``): an event fires when its event function is >= 0 at the end of a step (at
most one event per neuron and step, the largest), at the step end, where its jump is applied.
Spike times lie on the grid, so they carry no gradient.

``events="in_step"``: an event is located where the dense output (the straight line) crosses
threshold, the jump is applied there, and the neuron takes a partial Euler step from the event
time to the step's end, ``y(t + h) = y+ + (t + h - t*) f(y+)``; several events of one neuron in
one step are taken in order (``per_element``: each neuron on its own clock, the others are not
disturbed). The event time is then a smooth function of the parameters away from grid
boundaries, and gets its gradient by the implicit function theorem on the line, ``dt*/dp =
-(dg/dp)/(dg/dt)``, so spike-time losses can be fitted through Euler. Under a held input the
event times converge to the exact ones at order 1 in dt.

Refractory neurons (``t_ref > 0``) keep their clamped state while ``t < t_spike + t_ref`` (at a
step start for ``"end"``; ``"in_step"`` stops at each release inside the step).
"""
from __future__ import annotations

import torch

from .base import Hold, Problem, Segment, Solver, drift_rows, linear_drift

__all__ = ["Euler"]

EVENT_MODES = ("end", "in_step")


class Euler(Solver):
    """Forward Euler, order 1; events at step ends (``events="end"``) or inside steps
    (``events="in_step"``, differentiable event times)."""

    name = "euler"
    order = 1
    events_at_end = True

    def __init__(self, problem: Problem, events: str = "end"):
        super().__init__(problem)
        if events not in EVENT_MODES:
            raise ValueError(f"method='euler': events must be one of {EVENT_MODES}, got {events!r}")
        self.events_at_end = events == "end"
        self.per_element = events == "in_step"
        self.lin = problem.model.linear_part(problem.dtype, problem.device)

    def drift(self, t, y, hold=None):
        """The model's drift with held clamp states frozen (``y`` the population's shape)."""
        if self.lin is not None:
            f = linear_drift(*self.lin, y, self.u)
        else:
            f = self.problem.model.drift(self.t0 + t, y, self.u)
        return f if hold is None else hold.freeze(f)

    def _drift_rows(self, y, rows, hold):
        """Drift of flat elements ``rows`` (states ``y`` ``[m, S]``) at the step's input, each
        with its own neuron's parameters."""
        p = self.problem
        nid = rows % p.n
        u = self.u.reshape(-1, self.u.shape[-1])[rows]
        if self.lin is not None:
            A, B, c = (x[nid] if x.shape[0] > 1 else x.expand(rows.shape[0], *x.shape[1:]) for x in self.lin)
            f = linear_drift(A, B, c, y, u)
        else:
            f = drift_rows(p.model, self.t0, y, u, nid, p.n)
        return f if hold is None else hold.freeze(f)

    def step(self, t0, y0, t1, hold: Hold | None = None, rows=None) -> Segment:
        p = self.problem
        if rows is None:
            h = t1 - t0
            f = self.drift(t0, y0, hold)
            y1 = y0 + h * f
            s0 = torch.full((p.M,), t0, dtype=torch.float64, device=p.device)
            y0f, d = y0.reshape(-1, p.S), f.reshape(-1, p.S)
        else:
            if not self.per_element:
                raise ValueError("Euler with events='end' steps the whole population (per_element is False)")
            s0 = t0
            d = self._drift_rows(y0, rows, hold)
            y1 = y0 + (t1 - t0).to(y0.dtype)[:, None] * d
            y0f = y0
        if hold is not None:
            y1 = hold.apply(y1)

        def at(i, s):
            return y0f[i] + (s - s0[i]).to(y0f.dtype)[:, None] * d[i]

        def slope(i, s):
            return d[i]

        return Segment(t0=s0, t1=t1, y0=y0, y1=y1, at=at, slope=slope, turns=False,
                       tol=4 * torch.finfo(torch.float64).eps * max(abs(t1), p.dt),
                       events_at_end=self.events_at_end)
