"""``simulate``: the one loop. Integrate, locate events, apply jumps, resume.

Time is cut into grid steps ``[t_k, t_k + dt]`` (``t_k = k dt``, computed from ``k``, never
accumulated); the injected current is held over each step. Inside a step the loop stops at every
input spike (applied at its exact time) and runs the event loop between them:

1. the solver takes a step and returns its dense output (``ctsnn.solvers.base.Segment``);
2. ``ctsnn.events.locate`` finds the first event of every element on it;
3. the loop here applies the jumps (the model's ``jump_map``) at the event times, with their
   gradients (implicit function theorem), records them, starts refractory periods (and releases
   them at their exact times), re-arms the event functions, delivers feedback of a recurrent
   population, guards against endless event loops, and asks the solver to continue from the
   event time: each element from its own event time for solvers that step elements
   (``per_element``, e.g. exact), the whole population from the earliest one otherwise.

All times are SI seconds.
"""
from __future__ import annotations

import math
import time as _time
from typing import Any, Callable

import torch
from torch import Tensor

from . import validate as _v
from .errors import SimulationError
from . import events as _events
from .events import EventLoopGuard, attach_event_time, rearm
from .models.base import NeuronModel
from .progress import Progress
from .solvers import get_solver
from .solvers.base import Hold, Problem, drift_rows
from .trace import Trace

__all__ = ["simulate", "SimulationError"]


def _float(name: str, value: Any, *, positive=False, nonneg=False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of seconds, got {value!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and x <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if nonneg and x < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return x


#: the largest magnitude of an injected current (as for model parameters, ``models.base.PARAM_MAX``)
_CURRENT_MAX = 1e100


class _Current:
    """The injected current as a function of the step index (held over each step)."""

    def __init__(self, current, n_steps: int, dtype, device):
        self.fn: Callable[[int, float], Tensor] | None = None
        self.const: Tensor | None = None
        self.table: Tensor | None = None
        self.shape: tuple[int, ...] = ()
        if current is None:
            self.const = torch.zeros((), dtype=dtype, device=device)
        elif callable(current) and not isinstance(current, Tensor):
            self.fn = current
            probe = self._call(0.0, dtype, device)
            self.shape = tuple(probe.shape)
        else:
            # numbers and arrays go straight to dtype (no float32 detour for Python floats); bools,
            # complex numbers and strings are refused, and so are magnitudes that would overflow
            t = _v.real_values("current", current, dtype, device, limit=_CURRENT_MAX)
            if t.dim() == 0:
                self.const = t
            else:
                if t.shape[0] not in (n_steps, 1):
                    raise ValueError(f"current has {t.shape[0]} time rows but the simulation has "
                                     f"{n_steps} steps (t_end/dt): give a time-major tensor [T, ..., n] "
                                     f"with T = {n_steps}, a number, or a callable I(t)")
                if t.dim() == 1:
                    t = t.unsqueeze(-1)
                self.shape = tuple(t.shape[1:])
                if t.shape[0] == 1:
                    self.const = t[0]
                else:
                    self.table = t

    @staticmethod
    def _check(t: Tensor) -> None:
        with torch.no_grad():
            if not bool(torch.isfinite(t).all()):
                raise ValueError("current contains NaN or Inf")

    def at(self, k: int, t0: float, dtype, device) -> Tensor:
        if self.table is not None:
            return self.table[k]
        if self.const is not None:
            return self.const
        return self._call(t0, dtype, device)

    def _call(self, t0: float, dtype, device) -> Tensor:
        v = _v.call_user("current", self.fn, t0)
        try:
            return _v.real_values("current", v, dtype, device, limit=_CURRENT_MAX)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"the callable current(t) at t={t0!r}: {exc}") from None


class _Sim:
    """Mutable simulation state of ``simulate`` and its event loop (solvers never see it: they
    get a read-only :class:`~ctsnn.solvers.base.Problem` and return segments)."""

    def __init__(self, model: NeuronModel, shape, dtype, device, dt, max_events_per_step):
        self.model, self.shape, self.dtype, self.device, self.dt = model, shape, dtype, device, dt
        self.n = shape[-1]
        self.Bt = int(math.prod(shape[:-1])) if len(shape) > 1 else 1
        self.S, self.E = model.n_states, model.n_events
        self.M = self.Bt * self.n
        self.max_events_per_step = int(max_events_per_step)
        self.t0, self.k = 0.0, 0
        tr = model.refractory_period(dtype, device)
        self.t_ref = tr if (tr is not None and bool((tr > 0).any())) else None
        self.clamp_index = model.state_index(model.clamp_state)
        self.ref_until = torch.full((self.Bt, self.n), -math.inf, dtype=torch.float64, device=device)
        self.clamp_val = torch.zeros((self.Bt, self.n), dtype=dtype, device=device)
        self.armed = torch.ones((self.Bt, self.n, self.E), dtype=torch.bool, device=device)
        self.feedback = getattr(model, "feedback", None)
        if self.feedback is not None and not isinstance(self.feedback.weight, torch.Tensor):
            raise ValueError("Recurrent feedback through a module (e.g. nn.Linear, nn.Conv2d) is only "
                             "supported on a grid: use ctsnn.discretize")
        self.coupled = self.feedback is not None
        self.pending: list = []         # delayed feedback events (times, flat idx, increments)
        self.spk: list = []             # (k, offsets, flat idx, event, pre, post)
        self.coupled_events = 0
        self.signs = torch.tensor(model.event_signs, dtype=torch.int8, device=device)
        self.jumps = [model.jump_map(e, dtype, device) for e in range(self.E)]
        self.scales = [model.output_scale(e, dtype, device) for e in range(self.E)]
        self.stats = {"steps": 0, "fast_steps": 0, "events": 0}
        self.guard = EventLoopGuard(self.M, self.S, self.max_events_per_step, dtype, device, dt)
        self.seg_end = 0.0              # absolute end of the sub-interval being integrated
        self.G = model.event_matrix(dtype, device)
        self.theta = model.event_offset(dtype, device)                      # [n|1, E]
        self.theta_el = self._theta(torch.arange(self.M, device=device))    # [M, E]
        self.current_fn = None
        self.solver = None

    def problem(self) -> Problem:
        """The read-only description of the run that solvers are built from."""
        return Problem(model=self.model, dtype=self.dtype, device=self.device, dt=self.dt, n=self.n,
                       Bt=self.Bt, S=self.S, E=self.E, M=self.M, clamp_index=self.clamp_index,
                       refractory=self.t_ref is not None, stats=self.stats, current_fn=self.current_fn)

    def _theta(self, gidx: Tensor) -> Tensor:
        th = self.theta
        return th[gidx % self.n] if th.shape[0] > 1 else th.expand(gidx.shape[0], -1)

    def describe(self, j: int) -> str:
        """Name flat element ``j`` for an error message."""
        where = f"neuron {j % self.n}"
        if self.Bt > 1:
            where += f" of batch element {j // self.n}"
        return where

    # refractoriness ------------------------------------------------------
    def in_refractory(self, a: float) -> Tensor | None:
        if self.t_ref is None:
            return None
        return self.ref_until > self.t0 + a

    def in_refractory_at(self, gidx: Tensor, s: Tensor) -> Tensor | None:
        if self.t_ref is None:
            return None
        # compare step offsets in the working dtype, rounded exactly as the release time is in
        # the solver (``(ref_until - t0).to(dtype)``), so a released neuron is never still held
        return (self.ref_until.reshape(-1)[gidx] - self.t0).to(s.dtype) > s.detach()

    def hold(self, a: float) -> Hold | None:
        """The refractory clamp of the population over an interval starting at offset ``a``."""
        mask = self.in_refractory(a)
        if mask is None or not bool(mask.any()):
            return None
        return Hold(mask, self.clamp_index, self.clamp_val)

    def _held_offset(self, t_off: float) -> Tensor | None:
        """``[Bt, n]`` mask of the elements refractory at step offset ``t_off`` (compared in
        offsets, as the release times are), or None."""
        if self.t_ref is None:
            return None
        held = (self.ref_until - self.t0) > t_off
        return held if bool(held.any()) else None

    def _next_release(self, t: float, b: float) -> float:
        """The earliest refractory release in ``(t, b)`` (step offsets), or ``b``."""
        if self.t_ref is None:
            return b
        rel = self.ref_until - self.t0
        pending = rel[(rel > t) & (rel < b)]
        return float(pending.min()) if pending.numel() else b

    # events --------------------------------------------------------------
    def fire(self, gidx: Tensor, offsets: Tensor, e: Tensor, pre: Tensor, write: bool = True) -> Tensor:
        """Apply event ``e`` to flat elements ``gidx`` at step offsets ``offsets``; record them."""
        nid = gidx % self.n
        post = pre
        for ev in range(self.E):
            mask = e == ev
            if not bool(mask.any()):
                continue
            J, kk = self.jumps[ev]
            kk = kk[nid] if kk.shape[0] > 1 else kk.expand(gidx.shape[0], -1)
            post = torch.where(mask[:, None], pre @ J.T + kk, post)
        self.spk.append((self.k, offsets, gidx, e, pre, post))
        self.stats["events"] += int(gidx.shape[0])
        flat_ref = self.ref_until.reshape(-1)
        if self.t_ref is not None:
            tr = self.t_ref[nid] if self.t_ref.shape[0] > 1 else self.t_ref.expand(gidx.shape[0])
            flat_ref[gidx] = self.t0 + offsets.detach().to(torch.float64) + tr.detach().to(torch.float64)
            self.clamp_val.reshape(-1)[gidx] = post[:, self.clamp_index].detach()
        with torch.no_grad():   # the event rows built once per run (__init__), not per event
            G, th = self.G, self._theta(gidx)
            g_pre, g_post = pre @ G.T - th, post @ G.T - th
            self.armed.reshape(-1, self.E)[gidx] = rearm(g_pre, g_post)
            self.guard.check(self.k, self.t0, self.seg_end, gidx, self.t0 + offsets.detach().to(torch.float64),
                             e, g_pre.gather(1, e[:, None]).squeeze(1), pre, post, self.describe)
        if write:
            self.y = self.y.reshape(-1, self.S).index_put((gidx,), post).reshape(self.y.shape)
        if self.feedback is not None:
            self._feedback(gidx, offsets, e)
        return post

    def _feedback(self, gidx, offsets, e):
        fb = self.feedback
        values = torch.zeros(gidx.shape[0], dtype=self.dtype, device=self.device)
        nid = gidx % self.n
        for ev in range(self.E):
            sc = self.scales[ev]
            sc = sc[nid] if sc.shape[0] > 1 else sc.expand(gidx.shape[0])
            values = torch.where(e == ev, self.model.event_signs[ev] * sc, values)
        W = fb.weight.to(self.dtype)
        if fb.all_to_all:
            inc_w = W[:, nid].T * values[:, None]                        # [m, n] to every post neuron
            post_idx = (gidx - nid)[:, None] + torch.arange(self.n, device=self.device)[None, :]
        else:
            Wv = W.reshape(-1)
            wj = Wv[nid] if Wv.shape[0] > 1 else Wv.expand(gidx.shape[0])
            inc_w = (wj * values)[:, None]
            post_idx = gidx[:, None]
        if fb.delay == 0:
            flat = self.y.reshape(-1, self.S)
            add = torch.zeros_like(flat)
            add = add.index_put((post_idx.reshape(-1), torch.full_like(post_idx.reshape(-1), fb.target)),
                                inc_w.reshape(-1), accumulate=True)
            self.y = (flat + add).reshape(self.y.shape)
        else:
            times = self.t0 + offsets.detach().to(torch.float64)[:, None] + fb.delay
            times = times.expand_as(post_idx).reshape(-1)
            inc = torch.zeros(post_idx.numel(), self.S, dtype=self.dtype, device=self.device)
            inc[:, fb.target] = inc_w.reshape(-1)
            self.pending.append((times, post_idx.reshape(-1), inc))

    # the event loop --------------------------------------------------------
    def advance(self, a: float, b: float) -> float:
        """Integrate from step offset ``a`` to ``b`` with every event in between applied; returns
        ``b``, or for coupled populations the time of the first event (after applying it), so
        that its feedback is delivered before going on."""
        if self.solver.events_at_end:
            return self._advance_end(a, b)
        if self.solver.per_element:
            return self._advance_elements(a, b)
        return self._advance_population(a, b)

    def _armed_flat(self) -> Tensor:
        return self.armed.view(-1, self.E)

    def _advance_end(self, a, b):
        """Solvers that check events at step ends only (``events_at_end``)."""
        hold = self.hold(a)
        seg = self.solver.step(a, self.y, b, hold)
        skip = None if hold is None else hold.mask.reshape(-1)
        tev, eev = _events.locate(seg, self.G, self.theta_el, None, skip)
        self.y = seg.y1
        fire = eev >= 0
        if bool(fire.any()):
            idx = fire.nonzero().squeeze(-1)
            off = torch.full((idx.shape[0],), b, dtype=self.dtype, device=self.device)
            self.fire(idx, off, eev[idx], seg.y1.reshape(-1, self.S)[idx])
        return b

    def _advance_elements(self, a, b):
        """Solvers that step single elements: the population goes to ``b`` in one step; only the
        elements that may have an event (or are refractory) are then handled one event at a time,
        each on its own clock, so several events of one element in one step are found in order."""
        hold = self.hold(a)
        seg = self.solver.step(a, self.y, b, hold)
        cand, _g0, g1 = _events.screen(seg, self.G, self.theta, self.armed)
        with torch.no_grad():
            special = cand.any(-1)
            if hold is not None:
                special |= hold.mask
            self.armed |= (g1 < 0) & ~special.unsqueeze(-1)
            idx = special.reshape(-1).nonzero().squeeze(-1)
        y1 = seg.y1
        if idx.numel() == 0:
            self.y = y1
            return b
        if self.coupled:
            return self._advance_coupled(idx, a, b, y1)
        res = self._elements(idx, a, b)
        self.y = y1.reshape(-1, self.S).index_put((idx,), res).reshape(y1.shape)
        return b

    def _first_events(self, gidx, y0, s, b):
        """One element step of ``gidx`` from offsets ``s`` to ``b``, and the first event of each:
        ``(segment, time, index)``; index -2 is a refractory release, time ``inf`` none."""
        held = self.in_refractory_at(gidx, s)
        hold = None
        if held is not None and bool(held.any()):
            hold = Hold(held, self.clamp_index, self.clamp_val.reshape(-1)[gidx])
        else:
            held = None
        seg = self.solver.step(s, y0, b, hold, rows=gidx)
        tev, eev = _events.locate(seg, self.G, self._theta(gidx), self._armed_flat()[gidx], held)
        if held is not None:
            rel = (self.ref_until.reshape(-1)[gidx] - self.t0).to(tev.dtype)
            release = held & (rel <= b)
            tev = torch.where(release, rel, tev)
            eev = torch.where(release, torch.full_like(eev, -2), eev)
        return seg, tev, eev

    def _fire_elements(self, seg, sel, gidx, s, tev, eev):
        """Elements ``sel`` of ``seg`` (flat ``gidx``) to their event times, the jumps applied;
        returns their new states and clocks. An event time gets its gradient by the implicit
        function theorem, and the state it is taken at moves with it (the dense output is
        differentiable in time)."""
        y_at = seg.at(sel, tev.detach())
        ev = eev >= 0
        if not bool(ev.any()):
            return y_at, tev.detach()
        t_att = tev.detach()
        th = self._theta(gidx)
        if torch.is_grad_enabled() and (y_at.requires_grad or th.requires_grad or s.requires_grad):
            imm = tev.detach() <= s.detach()
            t_ift = _events.event_time(seg, sel, tev, eev, self.G, th)
            t_att = torch.where(ev & ~imm, t_ift, torch.where(imm, s, tev.detach()))
            y_at = torch.where((ev & ~imm)[:, None], seg.at(sel, t_att),
                               torch.where(imm[:, None], seg.y0[sel], y_at))
        k = ev.nonzero().squeeze(-1)
        post = self.fire(gidx[k], t_att[k], eev[k], y_at[k], write=False)
        return y_at.index_put((k,), post), t_att

    def _elements(self, idx, a, b):
        """Elements ``idx`` from ``a`` to ``b``, one event at a time on their own clocks."""
        y0 = self.y.reshape(-1, self.S)[idx]
        s = torch.full((idx.shape[0],), a, dtype=self.dtype, device=self.device)
        out = y0.new_zeros(y0.shape)
        alive = torch.arange(idx.shape[0], device=self.device)
        for _ in range(self.max_events_per_step):
            if alive.numel() == 0:
                return out
            gi = idx[alive]
            seg, tev, eev = self._first_events(gi, y0, s, b)
            done = torch.isinf(tev)
            if bool(done.any()):
                d = done.nonzero().squeeze(-1)
                yb = seg.y1[d]
                out = out.index_put((alive[d],), yb)
                with torch.no_grad():
                    ar = self._armed_flat()
                    ar[gi[d]] |= (yb @ self.G.T - self._theta(gi[d])) < 0
            go = ~done
            if not bool(go.any()):
                return out
            g_ = go.nonzero().squeeze(-1)
            y_new, t_new = self._fire_elements(seg, g_, gi[g_], s[g_], tev[g_], eev[g_])
            alive, y0, s = alive[g_], y_new, t_new
        self.too_many_events(idx[alive], a)

    def _advance_coupled(self, idx, a, b, y1):
        """Coupled populations: stop at the earliest event so feedback is delivered in order."""
        y0 = self.y.reshape(-1, self.S)[idx]
        s = torch.full((idx.shape[0],), a, dtype=self.dtype, device=self.device)
        _seg, tev, eev = self._first_events(idx, y0, s, b)
        tmin = float(tev.min())
        if math.isinf(tmin):
            res = self._elements(idx, a, b)
            self.y = y1.reshape(-1, self.S).index_put((idx,), res).reshape(y1.shape)
            return b
        # everyone to tmin (refractory ones held), then the events at tmin
        seg = self.solver.step(a, self.y, tmin, self.hold(a))
        self.y = seg.y1
        with torch.no_grad():
            self.armed |= (self.y @ self.G.T - self.theta) < 0
        at = (tev == tmin).nonzero().squeeze(-1)
        ev = at[eev[at] >= 0]
        if ev.numel():
            gi = idx[ev]
            pre = self.y.reshape(-1, self.S)[gi]
            off = torch.full((gi.shape[0],), tmin, dtype=self.dtype, device=self.device)
            self.fire(gi, off, eev[ev], pre)
        self.count_coupled_event(a)
        return tmin

    def _advance_population(self, a, b):
        """Solvers that step the whole population at one time: the earliest event in the
        population becomes a restart point for all (the others are evaluated on the dense output
        there, undisturbed); refractory releases are restart points too."""
        t = a
        n_events = 0
        limit = self.max_events_per_step * max(self.M, 1)
        E = self.E
        while True:
            # an armed element already at or above threshold fires now (after an input jump,
            # or a reset that lands above threshold)
            with torch.no_grad():
                g = self.y @ self.G.T - self.theta
                now = _events.immediate(self.armed, g)
                held = self._held_offset(t)
                if held is not None:
                    now &= ~held.unsqueeze(-1)
            if bool(now.any()):
                idx = now.any(-1).reshape(-1).nonzero().squeeze(-1)
                e = torch.where(now, g, torch.full_like(g, -math.inf)).reshape(-1, E)[idx].argmax(-1)
                off = torch.full((idx.shape[0],), t, dtype=self.dtype, device=self.device)
                self.fire(idx, off, e, self.y.reshape(-1, self.S)[idx])
                n_events += idx.shape[0]
                if n_events > limit:
                    self.too_many_events(idx, a)
                if self.coupled:
                    self.count_coupled_event(a)
                    return t
                continue
            if t >= b:
                return b
            stop = self._next_release(t, b)
            t_new = self._integrate(t, stop)
            if t_new is None:
                if stop >= b:
                    return b
                t = stop          # a release: the drift changes here; restart
                continue
            t = t_new
            n_events += 1
            if n_events > limit:
                self.too_many_events(torch.zeros(1, dtype=torch.long), a)
            if self.coupled:
                self.count_coupled_event(a)
                return t

    def _integrate(self, t, stop):
        """Step the population from ``t`` to ``stop`` (no release inside); at the first event,
        apply it and return its time, else None."""
        held = self._held_offset(t)
        hold = None if held is None else Hold(held, self.clamp_index, self.clamp_val)
        skip = None if held is None else held.reshape(-1)
        y = self.y
        while True:
            seg = self.solver.step(t, y, stop, hold)
            tev, eev = _events.locate(seg, self.G, self.theta_el, None, skip)
            if not bool((eev >= 0).any()):
                with torch.no_grad():
                    ar = self._armed_flat()
                    ar |= (seg.y1.reshape(-1, self.S) @ self.G.T - self.theta_el) < 0
                y = seg.y1
                if seg.t1 >= stop:
                    self.y = y
                    return None
                t = seg.t1
                continue
            return self._population_event(seg, tev, eev)

    def _population_event(self, seg, tev, eev):
        """Apply the earliest events of a population segment; everyone restarts from there.
        With gradients, ``delta = t*_att - t*`` (value 0) carries dt*/dp: the pre-jump state is
        ``y(t*) + f(y-) delta`` and the restart state ``y+ - f(y+) delta`` (saltation)."""
        S, M = self.S, self.M
        tmin = tev.min()
        ts = float(tmin)
        fire = (tev <= tmin).nonzero().squeeze(-1)
        gidx, ev = fire, eev[fire]
        rows = torch.arange(M, device=self.device)
        y_star = seg.at(rows, torch.full((M,), ts, dtype=seg.t0.dtype, device=self.device))   # [M, S]
        ys = y_star[gidx]
        shape = (self.Bt, self.n, S)
        f_pre_all = self.solver.drift(ts, y_star.view(shape), self._hold_at(ts)).reshape(-1, S)
        f_pre = f_pre_all[gidx]
        gval = (ys @ self.G.T - self._theta(gidx)).gather(1, ev[:, None]).squeeze(1)
        gdot = (f_pre @ self.G.T).gather(1, ev[:, None]).squeeze(1)
        t_det = torch.full((gidx.shape[0],), ts, dtype=torch.float64, device=self.device)
        if torch.is_grad_enabled() and (ys.requires_grad or gval.requires_grad):
            t_att = attach_event_time(t_det.to(gval.dtype), gval, gdot)
            delta = t_att - t_att.detach()                       # value 0, carries dt*/dp
        else:
            t_att = t_det.to(self.dtype)
            delta = None
        with torch.no_grad():
            self.armed |= (y_star.view(shape) @ self.G.T - self.theta) < 0
        if delta is None:
            self.y = y_star.view(shape)
            self.fire(gidx, t_att, ev, ys)
        elif not self.coupled:
            pre = ys + f_pre * delta[:, None]
            self.y = y_star.view(shape)
            post = self.fire(gidx, t_att, ev, pre, write=False)
            f_post = self.solver.drift(ts, y_star.index_put((gidx,), post).view(shape),
                                       self._hold_at(ts)).reshape(-1, S)[gidx]
            post = post - f_post * delta[:, None]
            self.y = y_star.index_put((gidx,), post).view(shape)
        else:
            # coupled: the feedback of the event at t* reaches other elements at t*, so every
            # element's restart state shifts with t*; firing elements by their own delta, the
            # others by the first firing element's (exact unless simultaneous events differ)
            dl = delta[0].expand(M).clone().index_put((gidx,), delta)[:, None]
            yp = y_star + f_pre_all * dl
            self.y = yp.view(shape)
            self.fire(gidx, t_att, ev, yp[gidx])
            yq = self.y.reshape(-1, S)
            f_post = self.solver.drift(ts, self.y, self._hold_at(ts)).reshape(-1, S)
            self.y = (yq - f_post * dl).view(shape)
        self.stats["restarts"] = self.stats.get("restarts", 0) + 1
        return ts

    def _hold_at(self, t_off):
        held = self._held_offset(t_off)
        return None if held is None else Hold(held, self.clamp_index, self.clamp_val)

    def advance_steps(self, fast, U, K):
        """Up to ``K`` whole event-free grid steps by the solver's fast path: the steps before
        the first one with an event candidate anywhere in the population (ordinary, hidden and
        armed-immediate crossings, as in :func:`ctsnn.events.candidates`) are accepted. Neurons
        refractory over the whole chunk (``simulate`` ends it before the first release) are held
        and have no candidates. Returns ``(m, Y)``, the ``m`` accepted step-end states."""
        hold = self.hold(0.0)
        y0 = self.y
        st = fast(y0, U, K, hold)
        Y = st.Y
        with torch.no_grad():
            gY = Y @ self.G.T - self.theta                                  # [K, Bt, n, E]
            g0 = y0 @ self.G.T - self.theta
            gp = torch.cat([g0[None], gY[:-1]])
            armed = torch.zeros_like(gY, dtype=torch.bool)
            armed[0] = self.armed
            if st.slope0 is not None:
                cand = _events.candidates(gp, gY, armed, st.slope0 @ self.G.T, st.slope1 @ self.G.T)
            else:
                cand = _events.candidates(gp, gY, armed)
            if hold is not None:
                cand &= ~hold.mask.unsqueeze(-1)
            hit = cand.reshape(K, -1).any(1)
            m = int(hit.to(torch.int8).argmax()) if bool(hit.any()) else K
            if m:
                self.armed |= (gY[:m] < 0).any(0)
        if m:
            self.y = Y[m - 1]
        return m, Y[:m]

    def too_many_events(self, gidx: Tensor, a: float) -> None:
        j = int(gidx[0])
        raise SimulationError(
            f"neuron {j} (flat index) produced more than {self.max_events_per_step} events in the step "
            f"starting at t={self.t0:.9g} s: the reset lands at or above threshold, or the input drives it "
            f"faster than it can reset. Reduce the input, set t_ref > 0, or raise "
            f"max_events_per_step.")

    def count_coupled_event(self, a: float) -> None:
        self.coupled_events += 1
        if self.coupled_events > self.max_events_per_step * max(self.M, 1):
            raise SimulationError(f"more than {self.max_events_per_step * self.M} coupled events in the step "
                                  f"starting at t={self.t0:.9g} s: the recurrent feedback re-excites the "
                                  f"population without end (check the weights and resets)")


class _Inputs:
    """Input spikes (external and delayed feedback) in time order, as state increments."""

    def __init__(self, times: Tensor, idx: Tensor, inc: Tensor, dt: float):
        self.dt = dt
        self._set(times, idx, inc)

    def _set(self, times, idx, inc):
        order = torch.argsort(times, stable=True)
        self.times, self.idx, self.inc = times[order], idx[order], inc[order]
        self._tf = self.times.detach()
        self.ptr = 0

    def add(self, times, idx, inc):
        p = self.ptr
        self._set(torch.cat([self.times[p:], times.to(self._tf)]), torch.cat([self.idx[p:], idx]),
                  torch.cat([self.inc[p:], inc]))

    def next_time(self) -> float:
        return float(self._tf[self.ptr]) if self.ptr < self.times.shape[0] else math.inf

    def pop_until(self, t: float):
        j = self.ptr
        n = self.times.shape[0]
        while j < n and float(self._tf[j]) <= t:
            j += 1
        sl = slice(self.ptr, j)
        self.ptr = j
        return self.idx[sl], self.inc[sl], self.times[sl]


def _apply_inputs(sim: _Sim, idx: Tensor, incs: Tensor, times: Tensor | None = None) -> None:
    """Add the input jumps ``incs`` to elements ``idx``. When the input times carry gradients,
    the jump's time shift ``delta = t_s - t_s.detach()`` (value 0) enters the state as
    ``(f(y-) - f(y-+inc)) delta``: moving a jump later by delta keeps the pre-jump flow that much
    longer (exact for linear drift; per input for several simultaneous inputs)."""
    if not idx.numel():
        return
    flat = sim.y.reshape(-1, sim.S)
    new = flat.index_add(0, idx, incs)
    if times is not None and times.requires_grad and torch.is_grad_enabled() and hasattr(sim, "u"):
        nid = idx % sim.n
        u = sim.u.expand(sim.Bt, sim.n, sim.u.shape[-1]).reshape(-1, sim.u.shape[-1])[idx]
        pre = flat[idx]
        t = float(times.detach()[0])
        f_pre = drift_rows(sim.model, t, pre, u, nid, sim.n)
        f_post = drift_rows(sim.model, t, pre + incs, u, nid, sim.n)
        delta = (times - times.detach()).to(sim.dtype)
        new = new.index_add(0, idx, (f_pre - f_post) * delta[:, None])
    sim.y = new.reshape(sim.y.shape)


def _parse_spikes(spikes, model: NeuronModel, M: int, dtype, device) -> tuple[Tensor, Tensor, Tensor]:
    if isinstance(spikes, Trace):
        times, neurons, weights = spikes.spike_times, spikes.spike_neurons, spikes.spike_values
    elif isinstance(spikes, dict):
        unknown = set(spikes) - {"times", "neurons", "weights"}
        if unknown:
            raise ValueError(f"spikes has unknown keys {sorted(unknown)}; use times, neurons, weights")
        missing = [k for k in ("times", "neurons") if k not in spikes]
        if missing:
            raise ValueError(f"spikes: the dict lacks {missing}; give times, neurons (and weights)")
        times, neurons, weights = spikes.get("times"), spikes.get("neurons"), spikes.get("weights", 1.0)
    elif isinstance(spikes, (tuple, list)) and len(spikes) in (2, 3):
        times, neurons = spikes[0], spikes[1]
        weights = spikes[2] if len(spikes) == 3 else 1.0
    else:
        raise ValueError("spikes must be (times, neurons[, weights]), a dict with those keys, or a Trace")
    times = torch.as_tensor(times, dtype=torch.float64).reshape(-1).to(device)
    neurons = torch.as_tensor(neurons).reshape(-1).to(device)
    if neurons.is_floating_point():
        if bool((neurons != neurons.round()).any()):
            raise ValueError("spikes: neuron indices must be integers")
        neurons = neurons.long()
    neurons = neurons.long()
    weights = torch.as_tensor(weights, dtype=dtype, device=device)
    if weights.dim() > 1:
        raise ValueError(f"spikes: weights must be a number or 1-D (one per spike), got shape "
                         f"{tuple(weights.shape)}; flatten it, e.g. weights.reshape(-1)")
    if weights.dim() == 0:
        weights = weights.expand(times.shape[0])
    if not (times.shape[0] == neurons.shape[0] == weights.shape[0]):
        raise ValueError(f"spikes: times ({times.shape[0]}), neurons ({neurons.shape[0]}) and weights "
                         f"({weights.shape[0]}) must have the same length")
    if times.numel():
        if not bool(torch.isfinite(times).all()):
            raise ValueError("spikes: times must be finite")
        if bool((times < 0).any()):
            raise ValueError("spikes: times must be >= 0")
        if bool((times[1:] < times[:-1]).any()):
            raise ValueError("spikes: times must be sorted (non-decreasing)")
        if bool(((neurons < 0) | (neurons >= M)).any()):
            raise ValueError(f"spikes: neuron indices must be in [0, {M}) (flat index over the "
                             f"population), got values from {int(neurons.min())} to {int(neurons.max())}")
        with torch.no_grad():
            if not bool(torch.isfinite(weights).all()):
                raise ValueError("spikes: weights must be finite")
    return times, neurons, model.spike_input(weights)


def _population_shape(model: NeuronModel, cur: "_Current", initial) -> tuple:
    """The population shape: the model's neurons, the current's shape per step and the initial
    values broadcast together (at least one axis, the last the neuron axis)."""
    shapes = [(model.n,), cur.shape]
    if initial is not None:
        if not isinstance(initial, dict):
            raise ValueError("initial must be a dict of state name -> value")
        for k, v in initial.items():
            model.state_index(k)
            shapes.append(tuple(torch.as_tensor(v).shape))
    try:
        shape = _v.broadcast_shapes(*shapes)
    except RuntimeError:
        raise ValueError(f"shape mismatch: the model has {model.n} neuron(s) but the current has shape "
                         f"{cur.shape} per step (and initial values {shapes[2:]}); the last axis is the "
                         f"neuron axis") from None
    return shape if len(shape) else (1,)


def simulate(model: NeuronModel, current=None, spikes=None, *, t_end, dt, method: str = "exact",
             initial: dict | None = None, record=("v",), record_every=None, dtype=None, device=None,
             max_events_per_step: int = 1000, progress: bool | None = None, chunk: int = 256,
             max_work: float | None = None, backend: str = "auto", **solver_options) -> Trace:
    """Simulate ``model`` from t = 0 to ``t_end`` on a grid of step ``dt`` (seconds).

    Parameters
    ----------
    model : a :class:`ctsnn.NeuronModel` (LIF, CubaLIF, ALIF, ...).
    current : injected current: a number (DC), a callable ``I(t)`` (sampled at each step start),
        or a time-major tensor ``[T, n]`` / ``[T, *batch, n]`` held constant over each step
        (``T = ceil(t_end / dt)``; a first axis of 1 means constant).
    spikes : input events ``(times, neurons[, weights])`` (flat neuron indices), a dict with those
        keys, or a Trace; each jumps the model's ``input_state`` by its weight at its exact time.
    method : ``"exact"`` (exact propagator, in-step event times), ``"euler"`` (forward Euler,
        events at step ends), or a torchdiffeq method name when the adaptive solvers are installed.
    initial : starting values by state name (numbers or tensors broadcastable to the population).
    record : state names to record on the grid (``"all"`` for every state, ``()`` for none).
    record_every : recording interval in seconds (a multiple of dt; default every step).
    dtype, device : default to the current tensor's, else the model parameters'.
    max_events_per_step : per neuron; more raises :class:`SimulationError` (an endless event loop).
    progress : a progress line with an ETA on stderr: True always, False never, None (default)
        only for a run expected to last more than a few seconds.
    max_work : the largest number of steps x neurons to run (default ``ctsnn.validate.MAX_WORK``,
        1e10, or the environment variable ``CTSNN_MAX_WORK``); a larger run is refused before it
        starts, with the estimate.
    chunk : the exact method solves stretches of up to ``chunk`` event-free grid steps at once
        (tabulated or constant current, no input spike and no end of a refractory period in the
        stretch); the results equal the step-by-step ones to rounding. ``0`` turns the fast path
        off.
    backend : ``"auto"`` (default): ``method="exact"`` runs on the compiled event engine
        (``ctsnn.engine``) when no gradient is needed and the model is linear below threshold,
        else on torch; ``"engine"`` insists on the engine (ValueError saying why it cannot);
        ``"torch"`` always uses torch. ``trace.stats["backend"]`` says which ran.

    Returns
    -------
    Trace with recorded states, exact spike times, pre/post-reset values and solver statistics.
    """
    if not isinstance(model, NeuronModel):
        raise ValueError(f"model must be a ctsnn NeuronModel, got {type(model).__name__}")
    if backend not in ("auto", "engine", "torch"):
        raise ValueError(f"backend must be 'auto', 'engine' or 'torch', got {backend!r}")
    dt = _float("dt", dt, positive=True)
    t_end = _float("t_end", t_end, nonneg=True)
    if 0 < t_end < dt:   # one step, [0, t_end]: its length is t_end (a huge dt would cost the root finder
        dt = t_end       # its precision, relative to the step); the grid and the trace are the same
    max_events_per_step = _v.positive_int("max_events_per_step", max_events_per_step)
    chunk = _v.positive_int("chunk", chunk, minimum=0, fix="chunk=0 turns the event-free fast path off")
    dtype = _v.dtype_arg("dtype", dtype)
    _v.work_bound("simulate", t_end / dt, model.n, max_work)      # before anything is allocated
    if method == "euler":
        _v.euler_stability(model, dt, "simulate(method='euler')")
    n_steps = _v.n_steps(t_end, dt)
    if isinstance(current, Tensor):
        current = _v.float_input("current", current, dtype or model.param_dtype())
        if current.dim() and current.shape[-1] == 0:
            raise ValueError(f"current: the neuron axis (last) is empty, shape {tuple(current.shape)}; "
                             f"give at least one neuron")
    if backend != "torch":   # the compiled engine when no gradient is needed
        from .engine import simulate_exact
        trace = simulate_exact(model, current, spikes, t_end=t_end, dt=dt, initial=initial, record=record,
                               record_every=record_every, dtype=dtype, device=device,
                               max_events_per_step=max_events_per_step, method=method,
                               solver_options=solver_options, required=backend == "engine",
                               max_work=max_work)
        if trace is not None:
            return _finite(trace, current)
    if isinstance(current, Tensor):
        dtype = dtype or (current.dtype if current.is_floating_point() else None)
        device = device or current.device
    dtype = dtype or model.param_dtype()
    if device is None:
        ps = list(model.params().values())
        device = ps[0].device if ps else torch.device("cpu")
    n_model = model.n
    cur = _Current(current, n_steps, dtype, device)

    shape = _population_shape(model, cur, initial)
    _v.work_bound("simulate", n_steps, math.prod(shape), max_work)
    if n_model != 1 and shape[-1] != n_model:
        raise ValueError(f"shape mismatch: the model has {n_model} neurons but the input's neuron axis "
                         f"has {shape[-1]}")

    solver_cls = get_solver(method)
    sim = _Sim(model, shape, dtype, device, dt, max_events_per_step)
    if cur.fn is not None:   # continuous-time input for solvers that evaluate it inside a step
        sim.current_fn = lambda t: model.input_channels(
            torch.broadcast_to(cur.at(0, t, dtype, device), shape).reshape(sim.Bt, sim.n))
    y = model.init_state(shape, dtype, device).reshape(sim.Bt, sim.n, sim.S)
    if initial is not None:
        y = y.clone()
        for k, v in initial.items():
            v = torch.as_tensor(v, dtype=dtype, device=device)
            with torch.no_grad():
                if not bool(torch.isfinite(v).all()):
                    raise ValueError(f"initial value of {k!r} contains NaN or Inf")
            y[..., model.state_index(k)] = torch.broadcast_to(v, shape).reshape(sim.Bt, sim.n)
    sim.y = y
    try:
        solver = solver_cls(sim.problem(), **solver_options)
    except TypeError as exc:
        if solver_options and "unexpected keyword" in str(exc):
            import inspect
            from .errors import unexpected_keywords
            known = list(inspect.signature(simulate).parameters) + ["rtol", "atol", "step_size", "events"]
            raise ValueError(unexpected_keywords(
                "simulate", sorted(solver_options), known,
                f"method={method!r} takes no option(s) {sorted(solver_options)} (rtol/atol apply to the "
                f"adaptive torchdiffeq methods such as 'dopri5', step_size to the fixed-grid ones such as "
                f"'rk4', events to 'euler')")) from None
        raise
    sim.solver = solver

    # inputs
    if spikes is not None:
        times, neurons, inc = _parse_spikes(spikes, model, sim.M, dtype, device)
    else:
        times = torch.zeros(0, dtype=torch.float64, device=device)
        neurons = torch.zeros(0, dtype=torch.long, device=device)
        inc = torch.zeros(0, sim.S, dtype=dtype, device=device)
    inputs = _Inputs(times, neurons, inc, dt)
    _apply_inputs(sim, *inputs.pop_until(0.0))      # recorded states are right limits, also at t = 0

    # recording
    if record in ("all", None):
        record = model.state_names
    if isinstance(record, str):
        record = (record,)
    rec_idx = [model.state_index(r) for r in record]
    stride = 1
    if record_every is not None:
        re = _float("record_every", record_every, positive=True)
        stride = round(re / dt)
        if stride < 1 or abs(stride * dt - re) > 1e-9 * max(re, dt):
            raise ValueError(f"record_every={re!r} must be a positive multiple of dt={dt!r}")
    rec_t, rec_y = [0.0], [sim.y[None, ..., rec_idx]] if rec_idx else []   # blocks [r, Bt, n, R]

    wall = _time.perf_counter()
    prog = Progress(n_steps, "simulate", progress)
    fast = getattr(solver, "advance_steps", None) if chunk and cur.fn is None else None
    n_full = min(n_steps, math.floor(t_end / dt + 1e-9))     # steps of full length dt
    # memory bound of the fast path: the chunk's states and its Toeplitz block
    k_cap = max(2, min(int(chunk), (1 << 22) // max(1, sim.M * sim.S),
                       math.isqrt((1 << 22) // max(1, model.n * sim.S * sim.S))))
    k_try, wait, backoff = k_cap, 0, 1
    k = 0
    while k < n_steps:
        prog.update(k)
        t0 = k * dt
        if fast is not None and wait == 0 and not sim.pending and k < n_full:
            K = _chunk_len(sim, inputs, k, dt, n_full, k_try)
            if K >= 2:
                sim.k, sim.t0 = k, t0
                Useq = cur.table[k:k + K] if cur.table is not None else cur.const[None]
                Useq = model.input_channels(torch.broadcast_to(Useq, (Useq.shape[0],) + shape)
                                            .reshape(Useq.shape[0], sim.Bt, sim.n))
                m, Y = sim.advance_steps(fast, Useq, K)
                if rec_idx:
                    first = (-(k + 1)) % stride                 # first j with (k + j + 1) % stride == 0
                    if first < m:
                        rec_t.extend(min((k + j + 1) * dt, t_end) for j in range(first, m, stride))
                        rec_y.append(Y[first:m:stride][..., rec_idx])
                sim.stats["steps"] += m
                sim.stats["fast_steps"] += m
                k += m
                # the next chunk: as long as the last event-free stretch, within the cap
                k_try = k_cap if m == K else min(k_cap, max(4, 2 * m))
                if m == 0:                      # an event in the very next step: step normally
                    wait, backoff = backoff, min(64, 2 * backoff)
                else:
                    backoff = 1
                if m:
                    continue
        wait = max(0, wait - 1)
        h = min(dt, t_end - t0)
        sim.k, sim.t0, sim.coupled_events = k, t0, 0
        sim.u = model.input_channels(torch.broadcast_to(cur.at(k, t0, dtype, device), shape)
                                     .reshape(sim.Bt, sim.n))
        solver.begin_step(t0, sim.u)
        a = 0.0
        while True:
            if sim.pending:
                for p in sim.pending:
                    inputs.add(*p)
                sim.pending = []
            _apply_inputs(sim, *inputs.pop_until(t0 + a))
            if a >= h:
                break
            nt = inputs.next_time()
            b = min(h, nt - t0)
            if b <= a:  # an input at (numerically) the current time
                _apply_inputs(sim, *inputs.pop_until(nt))
                continue
            sim.seg_end = t0 + b
            a = sim.advance(a, b)
        sim.stats["steps"] += 1
        if rec_idx and (k + 1) % stride == 0:
            rec_t.append(min((k + 1) * dt, t_end))
            rec_y.append(sim.y[None, ..., rec_idx])
        k += 1
    prog.close()
    sim.stats["wall_time_s"] = _time.perf_counter() - wall
    sim.stats["backend"] = "torch"

    return _finite(_make_trace(sim, model, rec_t, rec_y, record, t_end, dt, solver.name), current)


def _finite(trace, current):
    """The trace, or a :class:`SimulationError` when a state or a spike time left the floating-point
    range (a current or parameter so large that ``A y + B u`` overflows): never a silent NaN."""
    with torch.no_grad():
        bad = [k for k, y in trace.states.items() if y.is_floating_point() and not bool(torch.isfinite(y).all())]
        if not bool(torch.isfinite(trace.spike_times).all()):
            bad.append("spike times")
    if bad:
        size = ""
        if isinstance(current, (int, float, Tensor)) and not callable(current):
            size = f" (largest |current| = {float(torch.as_tensor(current, dtype=torch.float64).abs().max()):.3g})"
        raise SimulationError(f"the simulation overflowed: {', '.join(bad)} became NaN or Inf{size}; the "
                              f"current or the model's parameters are too large for the dtype "
                              f"({trace.states[next(iter(trace.states))].dtype if trace.states else 'float'}); "
                              f"rescale the units (e.g. volts and amperes, or mV and pA)")
    return trace


def _chunk_len(sim: _Sim, inputs: _Inputs, k: int, dt: float, n_full: int, K: int) -> int:
    """How many whole steps from step ``k`` the fast path may take: none may hold an input
    event (external or delayed feedback) or the release of a refractory neuron (a neuron
    refractory over whole steps is held by the fast path; its release time ends the chunk)."""
    K = min(K, n_full - k)
    nt = inputs.next_time()
    if math.isfinite(nt):
        K = min(K, math.floor(nt / dt) - k)              # stop before the step receiving it
        while K > 0 and (k + K) * dt >= nt:
            K -= 1
    if sim.t_ref is not None:
        held = sim.ref_until[sim.ref_until > k * dt]
        if held.numel():
            rel = float(held.min())                       # the first release
            K = min(K, math.floor(rel / dt) - k)
            while K > 0 and (k + K) * dt > rel:           # a release at a step end is still held
                K -= 1
    return K


def _make_trace(sim: _Sim, model, rec_t, rec_y, record, t_end, dt, method) -> Trace:
    dev, S = sim.device, sim.S
    if sim.spk:
        times = torch.cat([k * dt + off.to(torch.float64) for (k, off, *_rest) in sim.spk])
        neurons = torch.cat([g for (_k, _o, g, *_r) in sim.spk])
        events = torch.cat([e for (_k, _o, _g, e, *_r) in sim.spk])
        pre = torch.cat([p for (*_a, p, _q) in sim.spk])
        post = torch.cat([q for (*_a, q) in sim.spk])
        order = torch.argsort(times.detach(), stable=True)
        times, neurons, events, pre, post = times[order], neurons[order], events[order], pre[order], post[order]
    else:
        times = torch.zeros(0, dtype=torch.float64, device=dev)
        neurons = torch.zeros(0, dtype=torch.long, device=dev)
        events = torch.zeros(0, dtype=torch.long, device=dev)
        pre = torch.zeros(0, S, dtype=sim.dtype, device=dev)
        post = torch.zeros(0, S, dtype=sim.dtype, device=dev)
    signs = sim.signs[events] if events.numel() else torch.zeros(0, dtype=torch.int8, device=dev)
    values = torch.zeros(events.shape[0], dtype=sim.dtype, device=dev)
    nid = neurons % sim.n
    for ev in range(sim.E):
        sc = sim.scales[ev]
        sc = sc[nid] if sc.shape[0] > 1 else sc.expand(events.shape[0])
        values = torch.where(events == ev, model.event_signs[ev] * sc, values)
    states = {}
    if rec_y:
        stacked = torch.cat(rec_y)  # [R, Bt, n, len(record)]
        for j, name in enumerate(record):
            states[name] = stacked[..., j].reshape((len(rec_t),) + tuple(sim.shape))
    thresholds = model.event_geometry()   # the event functions and resets, from the model
    return Trace(t=torch.tensor(rec_t, dtype=torch.float64), states=states,
                 state_names=tuple(model.state_names), shape=tuple(sim.shape), spike_times=times,
                 spike_neurons=neurons, spike_signs=signs, spike_values=values, spike_events=events,
                 spike_pre=pre, spike_post=post, dt=dt, t_end=t_end, method=method,
                 model=type(model).__name__, stats=dict(sim.stats),
                 event_names=tuple(model.event_names), thresholds=thresholds)
