"""Event location: which elements may have an event, where the first one lies on a solver's
dense output (:func:`locate`), bracketed root finding, differentiable event times, and the guard
against endless event loops. The event loop of ``simulate`` uses these rules for every solver;
no solver writes its own.

``locate(seg, G, theta, armed)`` takes a :class:`~ctsnn.solvers.base.Segment` (a solver step
with its dense output ``y(s)`` on ``[t0, t1]``) and the affine event functions
``g(s) = G y(s) - theta`` and returns, per element, the time and index of its first event in the
segment: an armed element at or above threshold at ``t0`` fires at ``t0``; otherwise the earliest
crossing from below, including one that returns below threshold before ``t1`` (its maximum is
located first on the dense output); ties go to the lower event index.

Candidates on an interval ``[a, b]`` of one element's smooth solution, with event functions
``g0 = g(a)``, ``g1 = g(b)`` (``[..., E]``) and their time derivatives ``gd0``, ``gd1``:

* ``upward``:    ``g0 < 0 <= g1``, an ordinary crossing;
* ``immediate``: ``g0 >= 0`` while *armed* (below threshold since its last event): an input jump
  over threshold, or a reset that leaves the element above it;
* ``hidden``:    ``g0 < 0``, ``g1 < 0``, ``gd0 > 0 > gd1``: g rises and falls back inside the
  interval; its maximum must be located to know whether it reached 0;
* ``rearm``:     after a jump from ``g_pre`` to ``g_post``, the element is armed when it is below
  threshold, or still above but lowered by the jump (it fires again at once).

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

import math
from typing import Callable

import torch
from torch import Tensor

from .errors import SimulationError

__all__ = ["bracketed_root", "attach_event_time", "GRAZING_EPS", "EventLoopGuard", "upward",
           "immediate", "hidden", "candidates", "rearm", "locate", "screen", "event_time",
           "crossing_time", "crossing_decay"]

GRAZING_EPS = 1e-9


def upward(g0: Tensor, g1: Tensor) -> Tensor:
    """An ordinary upward crossing in the interval: ``g0 < 0 <= g1``."""
    return (g0 < 0) & (g1 >= 0)


def immediate(armed: Tensor, g0: Tensor) -> Tensor:
    """An armed element already at or above threshold at the interval start fires there."""
    return armed & (g0 >= 0)


def hidden(g0: Tensor, g1: Tensor, gd0: Tensor, gd1: Tensor) -> Tensor:
    """Below threshold at both ends, rising at the start and falling at the end: a maximum
    inside that may reach threshold (to be located)."""
    return (g0 < 0) & (g1 < 0) & (gd0 > 0) & (gd1 < 0)


def candidates(g0: Tensor, g1: Tensor, armed: Tensor | None = None, gd0: Tensor | None = None,
               gd1: Tensor | None = None) -> Tensor:
    """Every element and event that may fire in the interval: upward, immediate (when ``armed``
    is given) and hidden (when the slopes are given) candidates together."""
    cand = upward(g0, g1)
    if armed is not None:
        cand = cand | immediate(armed, g0)
    if gd0 is not None:
        cand = cand | hidden(g0, g1, gd0, gd1)
    return cand


def screen(seg, G: Tensor, theta: Tensor, armed: Tensor | None = None,
           skip: Tensor | None = None, flat: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """Cheap test of a segment: ``(cand, g0, g1)``, where ``cand`` ``[..., E]`` marks the elements
    and events that may fire in it (upward, immediate when ``armed`` is given, hidden when the
    segment ``turns``), no root finding. Shapes follow the segment's states (``[..., S]`` ->
    ``[..., E]``; ``theta``, ``armed``, ``skip`` broadcast with them), or its rows ``[m, E]`` when
    ``flat``; ``skip`` marks elements without events (refractory). For an ``events_at_end``
    segment: ``g(t1) >= 0``."""
    with torch.no_grad():
        y0, y1, sl0, sl1 = seg.y0, seg.y1, seg.slope0, seg.slope1
        if flat:
            S = y0.shape[-1]
            y0, y1 = y0.reshape(-1, S), y1.reshape(-1, S)
            if seg.turns:
                sl0, sl1 = sl0.reshape(-1, S), sl1.reshape(-1, S)
        g0 = y0 @ G.T - theta
        g1 = y1 @ G.T - theta
        if seg.events_at_end:
            cand = g1 >= 0
        elif seg.turns:
            cand = candidates(g0, g1, armed, sl0 @ G.T, sl1 @ G.T)
        else:
            cand = candidates(g0, g1, armed)
        if skip is not None:
            cand &= ~skip.unsqueeze(-1)
    return cand, g0, g1


def locate(seg, G: Tensor, theta: Tensor, armed: Tensor | None = None,
           skip: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """First event per element of a segment: ``(t, e)``, ``t`` ``[m]`` offsets in the dtype of
    ``seg.t0`` (``inf`` where none), ``e`` ``[m]`` event indices (``-1`` where none).

    ``G`` ``[E, S]``, ``theta`` ``[m|1, E]``: event functions ``g = G y - theta``; ``armed``
    ``[m, E]``: below threshold since the element's last event (an armed element at or above
    threshold at ``t0`` fires at ``t0``); ``skip`` ``[m]``: elements that cannot fire (refractory).
    Crossings are located on ``seg.at`` by :func:`bracketed_root` to ``seg.tol``; a crossing that
    returns below threshold inside the segment is found by locating the maximum of ``g`` first
    (root of its slope), and if ``g >= 0`` there, the crossing between ``t0`` and the maximum. Of
    two crossings in one segment the first is returned. Runs without autograd (the event loop
    re-attaches the gradient with :func:`attach_event_time`). For an ``events_at_end`` segment an
    element fires at ``t1`` when an event function is ``>= 0`` there (the largest one).
    """
    cand, g0, g1 = screen(seg, G, theta, armed, skip, flat=True)
    m, E = g0.shape
    with torch.no_grad():
        s0 = seg.t0.detach()
        clock = s0.dtype
        t_best = torch.full((m,), math.inf, dtype=clock, device=g0.device)
        e_best = torch.full((m,), -1, dtype=torch.long, device=g0.device)
        if not bool(cand.any()):
            return t_best, e_best
        if seg.events_at_end:
            fire = cand.any(-1)
            e = torch.where(cand, g1, torch.full_like(g1, -math.inf)).argmax(-1)
            return torch.where(fire, torch.full_like(t_best, seg.t1), t_best), torch.where(fire, e, e_best)
        th = theta.expand(m, E)
        now = immediate(armed, g0) & cand if armed is not None else torch.zeros_like(cand)
        t1 = torch.full_like(s0, seg.t1)
        for e in range(E):
            te = torch.where(now[:, e], s0, torch.full_like(s0, math.inf))
            ce = cand[:, e] & ~now[:, e]
            if bool(ce.any()):
                hi = t1.clone()
                g_hi = g1[:, e].clone()
                up = ce & (g1[:, e] >= 0)
                hid = ce & ~up                       # g < 0 at both ends: a hidden candidate
                if bool(hid.any()):
                    h = hid.nonzero().squeeze(-1)

                    def neg_slope(x, h=h):
                        return -(seg.slope(h, x) @ G[e])

                    S = seg.y0.shape[-1]
                    tm = bracketed_root(neg_slope, s0[h], t1[h], -(seg.slope0.reshape(-1, S)[h] @ G[e]),
                                        -(seg.slope1.reshape(-1, S)[h] @ G[e]), xtol=seg.tol)
                    gm = seg.at(h, tm) @ G[e] - th[h, e]
                    crosses = gm >= 0
                    hi[h] = torch.where(crosses, tm, hi[h])
                    g_hi[h] = torch.where(crosses, gm, g_hi[h])
                    up[h] = crosses
                if bool(up.any()):
                    u = up.nonzero().squeeze(-1)

                    def gfun(x, u=u):
                        return seg.at(u, x) @ G[e] - th[u, e]

                    root = bracketed_root(gfun, s0[u], hi[u], g0[u, e], g_hi[u], xtol=seg.tol)
                    te[u] = torch.minimum(te[u], root)
            better = te < t_best
            t_best = torch.where(better, te, t_best)
            e_best = torch.where(better, torch.full_like(e_best, e), e_best)
    return t_best, e_best


def event_time(seg, rows: Tensor, t: Tensor, e: Tensor, G: Tensor, theta: Tensor) -> Tensor:
    """The located times ``t`` ``[k]`` of events ``e`` of segment rows ``rows`` with their gradient
    (:func:`attach_event_time` on the segment's dense output): ``g = G_e y(t) - theta_e`` with
    gradient, ``dg/dt = G_e slope(t)``. ``theta`` ``[k, E]``. The value equals ``t``."""
    td = t.detach()
    e_ = e.clamp(min=0)[:, None]
    g = (seg.at(rows, td) @ G.T - theta).gather(1, e_).squeeze(1)
    gd = (seg.slope(rows, td) @ G.T).gather(1, e_).squeeze(1)
    return attach_event_time(t, g, gd)


def crossing_time(v0: Tensor, vth: Tensor, vinf: Tensor, A: Tensor, d: Tensor) -> Tensor:
    """The threshold crossing of one state under a held drive, in closed form.

    With ``dv/ds = A v + d`` the exact solution from ``v0`` is ``v(s) = v_inf + (v0 - v_inf)
    e^{A s}`` (``v_inf = -d / A``), or ``v0 + d s`` for ``A = 0``, so ``v`` reaches ``v_th`` after

        tau = log1p((v_th - v0) / (v0 - v_inf)) / A        (A != 0)
        tau = (v_th - v0) / d                              (A == 0).

    The one place this formula is written in Python (``discretize(events="in_step")``); the
    compiled code (the fused in-step kernel and the engine's first guess) uses its C++ mirror,
    ``kernels/crossing.h``. The result is only meaningful where ``v`` does reach ``v_th``."""
    lin = A != 0
    q = (vth - v0) / (v0 - vinf)
    return torch.where(lin, torch.log1p(q) / torch.where(lin, A, torch.ones_like(A)), (vth - v0) / d)


def crossing_decay(v0: Tensor, vth: Tensor, vinf: Tensor) -> Tensor:
    """``e^{-A tau}`` of :func:`crossing_time`'s crossing without an exponential:
    ``(v0 - v_inf) / (v_th - v_inf)``; a propagation factor ``e^{A s}`` started at 0 becomes
    ``e^{A (s - tau)}`` when multiplied by it."""
    return (v0 - vinf) / (vth - vinf)


def rearm(g_pre: Tensor, g_post: Tensor) -> Tensor:
    """Armed after a jump: below threshold, or lowered by the jump but still above (fires again)."""
    return (g_post < 0) | ((g_post >= 0) & (g_post < g_pre))


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


class EventLoopGuard:
    """Stops endless event loops by their structure, not by a clock.

    Every applied event is shown to :meth:`check` with its element, absolute time, event index,
    event-function value just before the jump (``g_pre``) and state just after it. Per element it
    remembers the previous event and counts the events of the current grid step; it raises
    :class:`~ctsnn.errors.SimulationError` as soon as the loop is certain to exceed
    ``max_events_per_step``:

    1. **no progress at one instant**: the same event of the same element fires again at the
       same time with ``g_pre`` at least as high as before, for the ``REEXCITE_MAX + 1``-th time
       at that instant. Each time zero-delay input (recurrent feedback) pushed it back above
       threshold at least as far as its jump took it down: a cascade that cycles (resets to a
       value) or grows (subtracted resets under strong excitation). A finite cascade re-excites
       a neuron once or twice (tested with random all-to-all weights); a runaway one does it
       in every round, so it is stopped after a few rounds instead of after
       ``max_events_per_step`` events per neuron.
    2. **a chain at one instant that will not fit**: the same event fires again at the same time
       with ``g_pre`` lower by ``d`` (a subtract reset under an input jump of many thresholds):
       about ``g_pre / d`` more events follow at that instant; raise if they exceed the budget.
    3. **a periodic train that will not fit**: an event at a new instant leaves the element in the
       state (to 1e-6 of each state's size, taken from the states before and after the jump) that
       the first event of the previous instant of this step left it in; with the input held the
       train then repeats, ``p`` events every ``T`` seconds (``p > 1`` when each instant holds a
       chain as in 2, e.g. a float32 crossing located a few ulps late). Raise if
       ``p (horizon - t) / T`` more events, up to ``horizon`` (the next input time or the step
       end), exceed the budget. The same projection is made without the state comparison when
       ``T`` is at the time resolution of the step (``16 eps dt``, where located crossings are
       only known to a few ulps of ``dt``): such a train cannot be resolved in the dtype at all.

    The count of events per step (``max_events_per_step``) remains the final bound for trains
    that are not periodic.
    """

    PERIODIC_RTOL = 1e-6
    REEXCITE_MAX = 8

    def __init__(self, M: int, S: int, max_events: int, dtype, device, dt: float) -> None:
        self.max = int(max_events)
        self.resolution = 16 * torch.finfo(dtype).eps * dt
        self.k = -1
        self.count = torch.zeros(M, dtype=torch.long, device=device)
        self.last_t = torch.full((M,), -math.inf, dtype=torch.float64, device=device)
        self.last_e = torch.full((M,), -1, dtype=torch.long, device=device)
        self.last_g = torch.zeros(M, dtype=dtype, device=device)
        self.reexcited = torch.zeros(M, dtype=torch.long, device=device)
        # the first event of the element's latest instant: time, count before it, state after it
        self.first_t = torch.full((M,), -math.inf, dtype=torch.float64, device=device)
        self.first_n = torch.zeros(M, dtype=torch.long, device=device)
        self.first_post = torch.zeros(M, S, dtype=dtype, device=device)

    def check(self, k: int, t0: float, horizon: float, gidx: Tensor, t_abs: Tensor, e: Tensor,
              g_pre: Tensor, pre: Tensor, post: Tensor, describe: Callable[[int], str]) -> None:
        """Record events of elements ``gidx`` (distinct) in step ``k`` starting at ``t0``; raise
        if one of the rules above says the loop cannot finish. ``describe(j)`` names element j."""
        with torch.no_grad():
            if k != self.k:
                self.count.zero_()
                self.k = k
            t_abs, g_pre, pre, post = t_abs.detach().to(torch.float64), g_pre.detach(), pre.detach(), post.detach()
            n0 = self.count[gidx]
            cnt = n0 + 1
            lt, le, lg = self.last_t[gidx], self.last_e[gidx], self.last_g[gidx]
            same = (t_abs == lt) & (e == le)
            up = same & (g_pre >= lg)
            reex = torch.where(same, self.reexcited[gidx] + up.to(torch.long), torch.zeros_like(n0))
            stuck = reex > self.REEXCITE_MAX
            if bool(stuck.any()):
                j = int(stuck.nonzero()[0, 0])
                raise SimulationError(
                    f"endless event loop: {describe(int(gidx[j]))} fired event {int(e[j])} again at "
                    f"t={float(t_abs[j]):.12g} s, re-excited {int(reex[j])} times at that one instant to "
                    f"at least as far above threshold as before (event function {float(g_pre[j]):.6g} "
                    f"after {float(lg[j]):.6g}): zero-delay input (feedback) undoes its reset at once, "
                    f"round after round. Give the model a refractory period (t_ref > 0), the feedback "
                    f"a delay > 0, or weaker positive weights.")
            d = lg - g_pre
            chain = same & (d > 0)
            need = cnt.to(torch.float64) + torch.where(chain, g_pre.to(torch.float64) / torch.where(
                chain, d, torch.ones_like(d)).to(torch.float64), torch.zeros_like(t_abs))
            over = chain & (need > self.max)
            new = ~same
            ft, fn, fp = self.first_t[gidx], self.first_n[gidx], self.first_post[gidx]
            unresolved = torch.zeros_like(same)
            if not bool(over.any()):
                size = torch.maximum(torch.maximum(post.abs(), fp.abs()), pre.abs())
                close = ((post - fp).abs() <= self.PERIODIC_RTOL * size).all(-1)
                unresolved = (t_abs - ft) <= self.resolution
                periodic = new & (e == le) & (ft >= t0) & (t_abs > ft) & (close | unresolved)
                if bool(periodic.any()):
                    T = torch.where(periodic, t_abs - ft, torch.ones_like(t_abs))
                    p = (n0 - fn).to(torch.float64)
                    need = cnt.to(torch.float64) + torch.where(
                        periodic, p * torch.floor((horizon - t_abs) / T), torch.zeros_like(t_abs))
                    over = periodic & (need > self.max)
            if bool(over.any()):
                j = int(over.nonzero()[0, 0])
                if bool(chain[j]):
                    what = f"at one instant, each event lowering it by only {float(d[j]):.6g}"
                else:
                    what = (f"{int(n0[j] - fn[j])} event(s) every {float(t_abs[j] - ft[j]):.6g} s" +
                            (", faster than the dtype resolves inside a step" if bool(unresolved[j])
                             else ", periodically"))
                raise SimulationError(
                    f"too many events: {describe(int(gidx[j]))} fires {what} (t={float(t_abs[j]):.12g} s), "
                    f"about {float(need[j]):.4g} events in the step starting at t={t0:.9g} s, more than "
                    f"max_events_per_step={self.max}: the reset lands at or above threshold, or the input "
                    f"drives it faster than it can reset. Reduce the input, set t_ref > 0, or raise "
                    f"max_events_per_step.")
            self.count[gidx] = cnt
            self.reexcited[gidx] = reex
            self.last_t[gidx] = t_abs
            self.last_e[gidx] = e
            self.last_g[gidx] = g_pre.to(self.last_g.dtype)
            ni = gidx[new]
            self.first_t[ni] = t_abs[new]
            self.first_n[ni] = n0[new]
            self.first_post[ni] = post[new].to(self.first_post.dtype)
