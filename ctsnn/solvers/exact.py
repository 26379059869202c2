"""Exact integration of linear subthreshold dynamics: the propagator as the dense output.

Over a sub-interval with the input held, ``y(s) = E(s - t0) y(t0) + F(s - t0) b`` with
``b = B u + c`` (see ``propagator``), exactly, for every ``s`` in ``[t0, t1]``: a step of this
solver returns that formula as its dense output (:class:`~ctsnn.solvers.base.Segment`), so events
are located on the exact solution (``ctsnn.events.locate``, to a few ulps of ``dt``) and the state
at an event time is the exact left limit there. The population is propagated with one
``(E, F)`` per step length (cached); an element call (``rows``) propagates a few elements, each
from its own start offset, which the event loop uses to continue an element from its own event
time while the others are untouched. The dense output is differentiable in its time argument
(``dy/ds = A y + b``), so event times with gradients (implicit function theorem) move the state
they are evaluated at. Refractory elements (``hold``) have their clamped state set to the held
value; that state must drive no other state (checked), so the others follow the propagator.

Order: exact (``math.inf``).
"""
from __future__ import annotations

import math

import torch

from .base import Hold, Problem, Segment, Solver, Steps
from .propagator import propagate, propagator

__all__ = ["Exact"]


class Exact(Solver):
    """Exact propagator of the linear part; its dense output is exact too."""

    name = "exact"
    order = math.inf
    per_element = True

    def __init__(self, problem: Problem):
        super().__init__(problem)
        m, p = problem.model, problem
        lin = m.linear_part(p.dtype, p.device)
        if lin is None:
            raise ValueError(f"method='exact' needs a model with a linear subthreshold part; "
                             f"{type(m).__name__} is nonlinear: use method='euler' or an adaptive "
                             f"torchdiffeq method such as 'dopri5'")
        self.A, self.B, self.c = lin
        self.hidden = self.A.shape[-1] > 1
        self._cache: dict[float, tuple] = {}
        self._clocks: dict[float, torch.Tensor] = {}
        self.tol_unit = 4 * torch.finfo(p.dtype).eps
        if p.refractory:
            ic = p.clamp_index
            others = [j for j in range(p.S) if j != ic]
            if others and bool((self.A[:, others, ic] != 0).any()):
                raise ValueError("t_ref > 0 with method='exact' needs the clamped state to drive no "
                                 "other state; this model couples it")

    def _EF(self, L: float):
        EF = self._cache.get(L)
        if EF is None:
            EF = propagator(self.A, L)
            if len(self._cache) < 8:
                self._cache[L] = EF
        return EF

    def begin_step(self, t0, u):
        super().begin_step(t0, u)
        self.bvec = (self.B @ u.unsqueeze(-1)).squeeze(-1) + self.c   # [Bt, n, S]

    def drift(self, t, y, hold=None):
        f = (self.A @ y.unsqueeze(-1)).squeeze(-1) + self.bvec
        return f if hold is None else hold.freeze(f)

    def _clock(self, t0):
        """``[M]`` start offsets ``t0`` (cached: most sub-intervals start at 0)."""
        c = self._clocks.get(t0)
        if c is None:
            c = torch.full((self.problem.M,), t0, dtype=self.problem.dtype, device=self.problem.device)
            if len(self._clocks) < 4:
                self._clocks[t0] = c
        return c

    def _rows(self, rows):
        """Drive ``b`` and matrix ``A`` of flat elements ``rows``."""
        p = self.problem
        nid = rows % p.n
        bflat = self.bvec.expand(p.Bt, p.n, p.S).reshape(-1, p.S)
        A = self.A[nid] if self.A.shape[0] > 1 else self.A.expand(rows.shape[0], -1, -1)
        return bflat[rows], A

    def step(self, t0, y0, t1, hold: Hold | None = None, rows=None) -> Segment:
        p = self.problem
        S = p.S
        if rows is None:
            E, F = self._EF(t1 - t0)
            y1 = propagate(E, F, y0, self.bvec)
            if hold is not None:
                y1 = hold.apply(y1)
            s0 = self._clock(t0)
            y0f = y0.reshape(-1, S)
            hold_f = None if hold is None else hold.rows(torch.arange(p.M, device=p.device))
            sl0 = sl1 = None
            if self.hidden:                 # values for the event search (no gradient needed)
                with torch.no_grad():
                    sl0, sl1 = self.drift(t0, y0), self.drift(t1, y1)
            lazy = {}

            def gathered(i):
                if "b" not in lazy:
                    lazy["b"], lazy["A"] = self._rows(torch.arange(p.M, device=p.device))
                return lazy["b"][i], lazy["A"][i]
        else:
            bs, As = self._rows(rows)
            s0 = t0
            y0f = y0
            hold_f = hold
            y1 = propagate(*propagator(As, t1 - s0), y0, bs)
            if hold is not None:
                y1 = hold.apply(y1)
            sl0 = sl1 = None
            if self.hidden:
                with torch.no_grad():
                    sl0 = (As @ y0.unsqueeze(-1)).squeeze(-1) + bs
                    sl1 = (As @ y1.unsqueeze(-1)).squeeze(-1) + bs

            def gathered(i):
                return bs[i], As[i]

        def at(i, s):
            b, A = gathered(i)
            y = propagate(*propagator(A, s - s0[i]), y0f[i], b)
            if hold_f is not None:
                y = hold_f.rows(i).apply(y)
            return y

        def slope(i, s):
            b, A = gathered(i)
            return (A @ at(i, s).unsqueeze(-1)).squeeze(-1) + b

        return Segment(t0=s0, t1=t1, y0=y0, y1=y1, at=at, slope=slope, turns=self.hidden,
                       tol=self.tol_unit * max(abs(t1), p.dt), slope0=sl0, slope1=sl1)

    # ------------------------------------------------------------------ fast path
    def advance_steps(self, y0, U, K, hold: Hold | None = None) -> Steps:
        """``K`` whole grid steps at once from ``y0`` ``[Bt, n, S]``, no event applied.

        ``U`` holds the input channels of the ``K`` steps, ``[K, Bt, n, U]`` (or ``[1, ...]``
        when constant). With ``w_i = F(dt) (B u_i + c)`` the linear recurrence
        ``y_{j+1} = E y_j + w_j`` is solved in closed form over the chunk,
        ``y_j = E^j y_0 + sum_{i<j} E^{j-1-i} w_i``, with the powers of ``E`` by doubling and
        the sum as one Toeplitz contraction (a cumulative sum when the input is constant).
        ``hold``: elements refractory over the whole chunk keep their clamped state (it drives no
        other state, checked in ``__init__``, so the others follow the recurrence unchanged).
        Returns the step-end states and, for more than one state, the slopes ``A y + B u_i + c``
        at each step's start and end (``simulate`` checks the steps for events and accepts
        those before the first).
        """
        p = self.problem
        E, F = self._EF(p.dt)
        N, S = E.shape[0], p.S
        eye = torch.eye(S, dtype=E.dtype, device=E.device).expand(N, S, S)
        P, Ep = torch.stack([eye, E]), E                     # P[j] = E^j
        while P.shape[0] < K + 1:
            Ep = Ep @ Ep
            P = torch.cat([P, P @ Ep])
        P = P[:K + 1]
        bvec = (self.B @ U.unsqueeze(-1)).squeeze(-1) + self.c          # [K|1, Bt, n, S]
        w = (F @ bvec.unsqueeze(-1)).squeeze(-1)
        Y = (P[1:, None] @ y0.unsqueeze(-1)).squeeze(-1)                # [K, Bt, n, S]
        if w.shape[0] == 1:
            Q = torch.cumsum(P[:-1], 0)                                  # sum_{i<j} E^i
            Y = Y + (Q[:, None] @ w.unsqueeze(-1)).squeeze(-1)
        else:
            r = torch.arange(K, device=E.device)
            lag = r[:, None] - r[None, :]
            T = P[lag.clamp(min=0)] * (lag >= 0).to(E.dtype)[:, :, None, None, None]   # [K, K, N, S, S]
            if N == 1:
                Y = Y + torch.einsum("riab,icnb->rcna", T[:, :, 0], w)
            else:
                Y = Y + torch.einsum("rinab,icnb->rcna", T, w)
        if hold is not None:
            Y = Hold(hold.mask.expand(Y.shape[:-1]), hold.index, hold.value.expand(Y.shape[:-1])).apply(Y)
        if not self.hidden:
            return Steps(Y)
        with torch.no_grad():
            Yp = torch.cat([y0[None], Y[:-1]])
            return Steps(Y, (self.A @ Yp.unsqueeze(-1)).squeeze(-1) + bvec,
                         (self.A @ Y.unsqueeze(-1)).squeeze(-1) + bvec)
