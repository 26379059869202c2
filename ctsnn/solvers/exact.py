"""Exact integration of linear subthreshold dynamics with in-step event location.

Over a sub-interval of length L with the input held, ``y(L) = E(L) y + F(L) b`` (see
``propagator``). After propagating the population, every neuron is checked for an event in the
interval:

* an ordinary crossing: ``g < 0`` at the start and ``g >= 0`` at the end;
* a crossing that returns below threshold before the end (possible when g depends on two or more
  states): ``g < 0`` at both ends, ``dg/dt > 0`` at the start and ``< 0`` at the end; the maximum
  of g is located (root of dg/dt) and, if ``g >= 0`` there, the crossing lies before it;
* an armed neuron already at or above threshold (after an input jump or a multi-spike reset).

Only those neurons are then handled one event at a time, each on its own clock: the crossing is
located on the exact solution by ``bracketed_root`` (to a few ulps of dt), the state is
propagated to it, the jump applied, and integration resumes from there to the interval end, so
several spikes of one neuron inside one step are all found in order. Event times carry gradients
through the implicit function theorem (``attach_event_time``).
"""
from __future__ import annotations

import math

import torch

from ..events import attach_event_time, bracketed_root, candidates, hidden, immediate, upward
from .base import Solver
from .propagator import propagate, propagator

__all__ = ["Exact"]


class Exact(Solver):
    """Exact propagator of the linear part; event times located inside the step."""

    name = "exact"
    order = math.inf

    def __init__(self, sim):
        super().__init__(sim)
        m = sim.model
        lin = m.linear_part(sim.dtype, sim.device)
        if lin is None:
            raise ValueError(f"method='exact' needs a model with a linear subthreshold part; "
                             f"{type(m).__name__} is nonlinear: use method='euler' or an adaptive "
                             f"torchdiffeq method such as 'dopri5'")
        self.A, self.B, self.c = lin
        self.G = m.event_matrix(sim.dtype, sim.device)
        self.theta = m.event_offset(sim.dtype, sim.device)
        self.hidden = self.A.shape[-1] > 1
        self._cache: dict[float, tuple] = {}
        if sim.t_ref is not None:
            ic = sim.clamp_index
            others = [j for j in range(sim.S) if j != ic]
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

    def begin_step(self, sim):
        self.bvec = (self.B @ sim.u.unsqueeze(-1)).squeeze(-1) + self.c   # [Bt, n, S]

    # ------------------------------------------------------------------ fast path
    def advance_steps(self, sim, U, K):
        """Up to ``K`` whole grid steps at once, stopping before the first step with an event.

        ``U`` holds the input channels of the next ``K`` steps, ``[K, Bt, n, U]`` (or ``[1, ...]``
        when constant). With ``w_i = F(dt) (B u_i + c)`` the linear recurrence
        ``y_{j+1} = E y_j + w_j`` is solved in closed form over the chunk,
        ``y_j = E^j y_0 + sum_{i<j} E^{j-1-i} w_i``, with the powers of ``E`` by doubling and
        the sum as one Toeplitz contraction (a cumulative sum when the input is constant). The
        event candidates of every step (ordinary, hidden and armed-immediate crossings, exactly as
        in :meth:`advance`) are checked at once; the steps before the first candidate anywhere in
        the population are accepted. Neurons refractory over the whole chunk (``simulate`` ends
        the chunk before the first release) have their clamped state held at its value and no
        candidates; the clamped state drives no other state (checked in ``__init__``), so the
        others follow the recurrence unchanged. Returns ``(m, Y)`` with ``Y`` the ``m`` accepted step-end
        states ``[m, Bt, n, S]``; ``sim.y`` is left at the last of them.
        """
        E, F = self._EF(sim.dt)
        N, S = E.shape[0], sim.S
        eye = torch.eye(S, dtype=E.dtype, device=E.device).expand(N, S, S)
        P, Ep = torch.stack([eye, E]), E                     # P[j] = E^j
        while P.shape[0] < K + 1:
            Ep = Ep @ Ep
            P = torch.cat([P, P @ Ep])
        P = P[:K + 1]
        bvec = (self.B @ U.unsqueeze(-1)).squeeze(-1) + self.c          # [K|1, Bt, n, S]
        w = (F @ bvec.unsqueeze(-1)).squeeze(-1)
        y0 = sim.y
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
        in_ref = sim.in_refractory(0.0)
        if in_ref is not None and bool(in_ref.any()):
            Y = sim.clamp(Y, in_ref.expand(Y.shape[:-1]))
        else:
            in_ref = None
        with torch.no_grad():
            gY = self._g(Y, self.theta)                                   # [K, Bt, n, E]
            g0 = self._g(y0, self.theta)
            gp = torch.cat([g0[None], gY[:-1]])
            armed = torch.zeros_like(gY, dtype=torch.bool)
            armed[0] = sim.armed
            if self.hidden:
                Yp = torch.cat([y0[None], Y[:-1]])
                cand = candidates(gp, gY, armed, self._gdot(Yp, bvec, self.A), self._gdot(Y, bvec, self.A))
            else:
                cand = candidates(gp, gY, armed)
            if in_ref is not None:
                cand &= ~in_ref.unsqueeze(-1)
            hit = cand.reshape(K, -1).any(1)
            m = int(hit.to(torch.int8).argmax()) if bool(hit.any()) else K
            if m:
                sim.armed |= (gY[:m] < 0).any(0)
        if m:
            sim.y = Y[m - 1]
        return m, Y[:m]

    # ------------------------------------------------------------------ helpers
    def _g(self, y, theta):
        return y @ self.G.T - theta

    def _gdot(self, y, b, A):
        """dg/dt = G (A y + b): the event functions' time derivative along the linear flow."""
        return ((A @ y.unsqueeze(-1)).squeeze(-1) + b) @ self.G.T

    def _gather(self, sim, gidx):
        nid = gidx % sim.n
        bflat = self.bvec.expand(sim.Bt, sim.n, sim.S).reshape(-1, sim.S)
        A = self.A[nid] if self.A.shape[0] > 1 else self.A.expand(gidx.shape[0], -1, -1)
        th = self.theta[nid] if self.theta.shape[0] > 1 else self.theta.expand(gidx.shape[0], -1)
        return bflat[gidx], A, th

    # ------------------------------------------------------------------ main
    def advance(self, sim, a, b):
        L = b - a
        E, F = self._EF(L)
        y = sim.y
        y1 = propagate(E, F, y, self.bvec)
        with torch.no_grad():
            g0, g1 = self._g(y, self.theta), self._g(y1, self.theta)
            if self.hidden:
                cand = candidates(g0, g1, sim.armed, self._gdot(y, self.bvec, self.A),
                                  self._gdot(y1, self.bvec, self.A))
            else:
                cand = candidates(g0, g1, sim.armed)
            special = cand.any(-1)
            in_ref = sim.in_refractory(a)
            if in_ref is not None:
                special |= in_ref
            sim.armed |= (g1 < 0) & ~special.unsqueeze(-1)
            idx = special.reshape(-1).nonzero().squeeze(-1)
        if idx.numel() == 0:
            sim.y = y1
            return b
        if sim.coupled:
            return self._advance_coupled(sim, idx, a, b, y1)
        res = self._elements(sim, idx, a, b)
        sim.y = y1.reshape(-1, sim.S).index_put((idx,), res).reshape(y1.shape)
        return b

    def _propagate_elements(self, sim, gidx, y0, bs, A, s, t, in_ref=None):
        """States of elements ``gidx`` propagated from offsets ``s`` to ``t`` (tensors [m])."""
        E, F = propagator(A, t - s)
        y = propagate(E, F, y0, bs)
        if in_ref is not None and bool(in_ref.any()):
            ic = sim.clamp_index
            held = sim.clamp_val.reshape(-1)[gidx]
            y = y.clone()
            y[:, ic] = torch.where(in_ref, held, y[:, ic])
        return y

    def _first_events(self, sim, gidx, y0, bs, A, th, s, b):
        """Earliest event time (offset) and index per element in (s, b]; -1: refractory release."""
        m, dtype = gidx.shape[0], sim.dtype
        inf = torch.full((m,), math.inf, dtype=dtype, device=sim.device)
        tev, eev = inf.clone(), torch.full((m,), -2, dtype=torch.long, device=sim.device)
        in_ref = sim.in_refractory_at(gidx, s)
        if in_ref is not None:
            rel = (sim.ref_until.reshape(-1)[gidx] - sim.t0).to(dtype)
            release = in_ref & (rel <= b)
            tev = torch.where(release, rel, tev)
            eev = torch.where(release, torch.full_like(eev, -1), eev)
            free = ~in_ref
        else:
            free = torch.ones(m, dtype=torch.bool, device=sim.device)
        if not bool(free.any()):
            return tev, eev
        f = free.nonzero().squeeze(-1)
        y0f, bf, Af, thf, sf = y0[f], bs[f], A[f], th[f], s[f]
        with torch.no_grad():
            bt = torch.full_like(sf, b)
            yb = self._propagate_elements(sim, gidx[f], y0f, bf, Af, sf, bt)
            g0, gb = self._g(y0f, thf), self._g(yb, thf)
            armed = sim.armed.reshape(-1, g0.shape[-1])[gidx[f]]
            now = immediate(armed, g0)
            up = upward(g0, gb)
            if self.hidden:
                gd0, gdb = self._gdot(y0f, bf, Af), self._gdot(yb, bf, Af)
                hid = hidden(g0, gb, gd0, gdb)
            xtol = 4 * torch.finfo(dtype).eps * max(abs(b), sim.dt)
            best_t = torch.full_like(sf, math.inf)
            best_e = torch.full((f.shape[0],), -2, dtype=torch.long, device=sim.device)
            for e in range(g0.shape[-1]):
                te = torch.where(now[:, e], sf, torch.full_like(sf, math.inf))
                hi_end = bt.clone()
                mask_up = up[:, e].clone()
                if self.hidden and bool(hid[:, e].any()):
                    h = hid[:, e].nonzero().squeeze(-1)

                    def neg_gdot(x, h=h):
                        yx = propagate(*propagator(Af[h], x - sf[h]), y0f[h], bf[h])
                        return -self._gdot(yx, bf[h], Af[h])[:, e]

                    tm = bracketed_root(neg_gdot, sf[h], bt[h], -gd0[h, e], -gdb[h, e], xtol=xtol)
                    ym = propagate(*propagator(Af[h], tm - sf[h]), y0f[h], bf[h])
                    crosses = self._g(ym, thf[h])[:, e] >= 0
                    hi_end[h] = torch.where(crosses, tm, hi_end[h])
                    mask_up[h] = crosses
                if bool(mask_up.any()):
                    u = mask_up.nonzero().squeeze(-1)

                    def gfun(x, u=u):
                        yx = propagate(*propagator(Af[u], x - sf[u]), y0f[u], bf[u])
                        return self._g(yx, thf[u])[:, e]

                    yhi = propagate(*propagator(Af[u], hi_end[u] - sf[u]), y0f[u], bf[u])
                    root = bracketed_root(gfun, sf[u], hi_end[u], g0[u, e],
                                          self._g(yhi, thf[u])[:, e], xtol=xtol)
                    te[u] = torch.minimum(te[u], root)
                better = te < best_t
                best_t = torch.where(better, te, best_t)
                best_e = torch.where(better, torch.full_like(best_e, e), best_e)
        tev[f] = best_t
        eev[f] = best_e
        return tev, eev

    def _fire_elements(self, sim, gidx, y0, bs, A, th, s, tev, eev):
        """Propagate elements to their event times, apply the jumps; returns new states."""
        in_ref = sim.in_refractory_at(gidx, s)
        rel = eev < 0
        y_at = self._propagate_elements(sim, gidx, y0, bs, A, s, tev.detach(), in_ref)
        ev = ~rel
        if not bool(ev.any()):
            return y_at, tev.detach()
        t_att = tev.detach()
        if torch.is_grad_enabled() and (y0.requires_grad or bs.requires_grad or A.requires_grad
                                        or th.requires_grad or s.requires_grad):
            immediate = tev.detach() <= s.detach()
            e_safe = eev.clamp(min=0)
            g = self._g(y_at, th).gather(1, e_safe[:, None]).squeeze(1)
            gd = self._gdot(y_at, bs, A).gather(1, e_safe[:, None]).squeeze(1)
            t_ift = attach_event_time(tev, g, gd)
            t_att = torch.where(ev & ~immediate, t_ift, torch.where(immediate, s, tev.detach()))
            y_at = torch.where((ev & ~immediate)[:, None],
                               self._propagate_elements(sim, gidx, y0, bs, A, s, t_att, in_ref),
                               torch.where(immediate[:, None], y0, y_at))
        k = ev.nonzero().squeeze(-1)
        post = sim.fire(gidx[k], t_att[k], eev[k], y_at[k], write=False)
        y_new = y_at.index_put((k,), post)
        return y_new, t_att

    def _elements(self, sim, idx, a, b):
        """Handle the special elements ``idx`` one event at a time on their own clocks."""
        y0 = sim.y.reshape(-1, sim.S)[idx]
        bs, A, th = self._gather(sim, idx)
        s = torch.full((idx.shape[0],), a, dtype=sim.dtype, device=sim.device)
        out = y0.new_zeros(y0.shape)
        alive = torch.arange(idx.shape[0], device=sim.device)
        for _ in range(sim.max_events_per_step):
            if alive.numel() == 0:
                return out
            gi = idx[alive]
            tev, eev = self._first_events(sim, gi, y0, bs[alive], A[alive], th[alive], s, b)
            done = torch.isinf(tev)
            if bool(done.any()):
                d = done.nonzero().squeeze(-1)
                bt = torch.full((d.shape[0],), b, dtype=sim.dtype, device=sim.device)
                yb = self._propagate_elements(sim, gi[d], y0[d], bs[alive][d], A[alive][d], s[d], bt,
                                              sim.in_refractory_at(gi[d], s[d]))
                out = out.index_put((alive[d],), yb)
                with torch.no_grad():
                    g = self._g(yb, th[alive][d])
                    ar = sim.armed.reshape(-1, g.shape[-1])
                    ar[gi[d]] |= g < 0
            go = ~done
            if not bool(go.any()):
                return out
            g_ = go.nonzero().squeeze(-1)
            y_new, t_new = self._fire_elements(sim, gi[g_], y0[g_], bs[alive][g_], A[alive][g_],
                                               th[alive][g_], s[g_], tev[g_], eev[g_])
            alive, y0, s = alive[g_], y_new, t_new
        sim.too_many_events(idx[alive], a)

    def _advance_coupled(self, sim, idx, a, b, y1):
        """Coupled populations: stop at the earliest event so feedback is delivered in order."""
        y0 = sim.y.reshape(-1, sim.S)[idx]
        bs, A, th = self._gather(sim, idx)
        s = torch.full((idx.shape[0],), a, dtype=sim.dtype, device=sim.device)
        tev, eev = self._first_events(sim, idx, y0, bs, A, th, s, b)
        tmin = float(tev.min())
        if math.isinf(tmin):
            res = self._elements(sim, idx, a, b)
            sim.y = y1.reshape(-1, sim.S).index_put((idx,), res).reshape(y1.shape)
            return b
        # everyone to tmin (refractory ones held), then the events at tmin
        E, F = propagator(self.A, tmin - a)
        y = propagate(E, F, sim.y, self.bvec)
        in_ref = sim.in_refractory(a)
        if in_ref is not None:
            y = sim.clamp(y, in_ref)
        sim.y = y
        with torch.no_grad():
            sim.armed |= self._g(y, self.theta) < 0
        at = (tev == tmin).nonzero().squeeze(-1)
        ev = at[eev[at] >= 0]
        if ev.numel():
            gi = idx[ev]
            pre = sim.y.reshape(-1, sim.S)[gi]
            off = torch.full((gi.shape[0],), tmin, dtype=sim.dtype, device=sim.device)
            sim.fire(gi, off, eev[ev], pre)
        sim.count_coupled_event(a)
        return tmin
