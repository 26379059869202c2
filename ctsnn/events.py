"""Event location: bracketed root finding and differentiable event times.

``bracketed_root`` finds, for every element at once, the zero crossing of a function that is
negative at ``lo`` and non-negative at ``hi`` (Illinois variant of regula falsi, with a
bisection safeguard): superlinear, never leaves the bracket, and needs no derivative.

``attach_event_time`` re-attaches the gradient of an event time found without autograd, by the
implicit function theorem at the crossing g(t*, p) = 0:

    dt*/dp = -(dg/dp) / (dg/dt).

``|dg/dt|`` is clamped below by ``GRAZING_EPS`` (in units of g per second) so that a grazing
crossing yields a large but finite gradient, never NaN or Inf.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

__all__ = ["bracketed_root", "attach_event_time", "GRAZING_EPS"]

GRAZING_EPS = 1e-9


def bracketed_root(f: Callable[[Tensor], Tensor], lo: Tensor, hi: Tensor, f_lo: Tensor,
                   f_hi: Tensor, *, xtol: Tensor | float, max_iter: int = 200) -> Tensor:
    """Smallest bracket end ``x`` with ``f(x) >= 0`` after shrinking ``[lo, hi]`` below ``xtol``.

    Requires ``f_lo < 0 <= f_hi`` elementwise. All arguments are tensors of one shape ``[m]``;
    ``f`` maps ``[m]`` points to ``[m]`` values. Runs without autograd.
    """
    with torch.no_grad():
        lo, hi, f_lo, f_hi = lo.clone(), hi.clone(), f_lo.clone(), f_hi.clone()
        side = torch.zeros_like(lo, dtype=torch.int8)  # +1: hi moved last, -1: lo moved last
        for _ in range(max_iter):
            active = (hi - lo) > xtol
            if not bool(active.any()):
                break
            denom = f_hi - f_lo
            x = hi - f_hi * (hi - lo) / torch.where(denom > 0, denom, torch.ones_like(denom))
            mid = 0.5 * (lo + hi)
            x = torch.where((x > lo) & (x < hi) & (denom > 0), x, mid)
            fx = f(x)
            up = (fx >= 0) & active
            down = (fx < 0) & active
            # Illinois: when the same end moves twice in a row, halve the other end's value
            f_lo = torch.where(up & (side == 1), 0.5 * f_lo, f_lo)
            f_hi = torch.where(down & (side == -1), 0.5 * f_hi, f_hi)
            hi = torch.where(up, x, hi)
            f_hi = torch.where(up, fx, f_hi)
            lo = torch.where(down, x, lo)
            f_lo = torch.where(down, fx, f_lo)
            side = torch.where(up, torch.ones_like(side), torch.where(down, -torch.ones_like(side), side))
            # an exact zero ends the search for that element
            hit = (fx == 0) & active
            lo = torch.where(hit, x, lo)
            hi = torch.where(hit, x, hi)
        return hi


def attach_event_time(t_star: Tensor, g_at_t: Tensor, gdot_at_t: Tensor) -> Tensor:
    """Event time with gradient by the implicit function theorem.

    ``t_star``: event times found without gradient; ``g_at_t``: the event function evaluated at
    ``t_star`` *with* gradient (its value is ~0); ``gdot_at_t``: dg/dt there (detached inside).
    The returned value equals ``t_star``; its gradient is ``-(dg/dp) / (dg/dt)``.
    """
    gd = gdot_at_t.detach()
    gd = torch.where(gd.abs() < GRAZING_EPS, torch.full_like(gd, GRAZING_EPS), gd)
    return t_star.detach() - (g_at_t - g_at_t.detach()) / gd
