"""torchdiffeq solvers with per-element event location (``method="dopri5"``, ``"rk4"``, ...).

torchdiffeq does the stepping; ctsnn does the events. Over a sub-interval ``[a, b]`` of a grid
step (input held, no input spike inside: ``simulate`` splits there, so input discontinuities
are always stepped to exactly) the whole population ``y`` ``[Bt, n, S]`` is integrated as one
ODE ``dy/dt = f(t, y, u)`` (the model's ``drift``):

1. torchdiffeq takes one accepted step ``[t0, t1]`` (adaptive methods: error control with
   ``rtol``/``atol``; fixed-grid methods: ``step_size``, default ``dt``), which provides a dense
   solution on the step: the solver's own 4th-order interpolant for dopri5, dopri8 and
   adaptive_heun, the cubic Hermite interpolant through ``(y0, f0, y1, f1)`` for bosh3 and
   fehlberg2 (whose torchdiffeq midpoint is only a first-order estimate) and for the fixed-grid
   methods.
2. Every event function of every element is checked at the step end: an upward crossing
   ``g(t0) < 0 <= g(t1)`` is located on the dense solution by ``bracketed_root`` (Illinois), each
   element on its own.
3. The earliest crossing time ``t*`` over the population becomes a restart point: every element
   is evaluated on the dense solution at ``t*``, the elements crossing at ``t*`` jump, and
   integration restarts from ``t*`` for everyone. The other elements are not disturbed (their
   state at ``t*`` lies on their own solution; only a step boundary is added), so one neuron's
   spike never stops or distorts the others. Cost: one restart (a fresh initial step size
   selection and ~one extra step) per distinct spike time in the population.
4. Coupled populations (all-to-all or delayed feedback) return at ``t*`` so ``simulate``
   delivers the feedback in order.

Crossings that enter and leave the threshold region inside one accepted step (``g < 0`` at both
ends) are found on the dense solution: where the slope of ``g`` is positive at the step start and
negative at its end, the maximum of ``g`` is located (bracketed root of the slope) and, if it
reaches 0, ``[t0, t_max]`` brackets the crossing. (Two separate excursions inside one step are
still seen as at most one.)

Gradients: the Runge-Kutta stages are ordinary autograd operations, so states carry gradients
w.r.t. parameters and inputs. Step sizes are detached (no spurious gradients through error
control). An event time gets its gradient by the implicit function theorem at the crossing,
``dt*/dp = -(dg/dp)/(dg/dt)`` (``attach_event_time``); with ``delta = t*_att - t*`` (value 0) the
pre-jump state is ``y(t*) + f(y-) delta`` and the state that integration restarts from is
``y+ - f(y+) delta`` (the saltation correction), so later states carry the effect of the shifted
jump too.

Refractory periods (``t_ref > 0``): an element's clamped state (``v``) has zero drift and its
events are disarmed until its release time ``t_spike + t_ref``; releases are discontinuities of
the drift, so integration stops exactly at each one (as at an input spike) and restarts there.

Input: a callable current ``I(t)`` is evaluated at every Runge-Kutta stage time (continuous
input); a tabulated current is held over each grid step, its jumps at the step boundaries
stepped to exactly.
"""
from __future__ import annotations

import inspect
import math

import torch

from ..events import attach_event_time, bracketed_root, hidden, immediate, upward
from .base import Solver

__all__ = ["Adaptive", "ADAPTIVE_METHODS", "FIXED_METHODS", "make_solver_class", "torchdiffeq_internals",
           "TESTED_TORCHDIFFEQ"]

#: adaptive torchdiffeq methods (error-controlled step size)
ADAPTIVE_METHODS = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun")
#: fixed-grid torchdiffeq methods, by ctsnn name -> torchdiffeq name ("euler" is ctsnn's own)
FIXED_METHODS = {"rk4": "rk4", "midpoint": "midpoint", "heun2": "heun2", "heun3": "heun3",
                 "torchdiffeq_euler": "euler"}
#: order of each torchdiffeq method (by torchdiffeq name); checked against torchdiffeq's own
ORDERS = {"dopri5": 5, "dopri8": 8, "bosh3": 3, "fehlberg2": 2, "adaptive_heun": 2, "rk4": 4,
          "midpoint": 2, "heun2": 2, "heun3": 3, "euler": 1}

#: the torchdiffeq release whose private step interface (below) this module was tested with;
#: heun2 and heun3 first appear in 0.2.5
TESTED_TORCHDIFFEQ = "0.2.5"

# torchdiffeq's public ``odeint`` integrates to given output times and stops the whole batch at
# the first event; ctsnn needs each accepted step with its dense output, so it drives the
# solvers' private step interface. What it uses, and the signatures it calls:
_PRIVATE = {"misc": ("_PerturbFunc", "_rms_norm"), "odeint": ("SOLVERS",)}
_RK_STATE_FIELDS = ("y1", "f1", "t0", "t1", "dt", "interp_coeff")
_ADAPTIVE_CALLS = {"__init__": ("func", "y0", "rtol", "atol"), "_before_integrate": ("t",),
                   "_adaptive_step": ("rk_state",)}
_ADAPTIVE_INIT_KW = ("norm", "step_t")
_FIXED_CALLS = {"__init__": ("func", "y0"), "_step_func": ("func", "t0", "dt", "t1", "y0")}
_INTERNALS: dict = {}


def torchdiffeq_internals() -> dict:
    """torchdiffeq's private pieces that the adaptive solvers drive (``PerturbFunc``,
    ``rms_norm``, ``SOLVERS``), after checking that each is there with the signature ctsnn calls.

    Raises ``ImportError`` naming what is missing or changed, the installed version and the
    tested one (:data:`TESTED_TORCHDIFFEQ`), instead of an ``AttributeError`` deep in a run."""
    if _INTERNALS:
        return _INTERNALS
    import importlib
    try:
        import torchdiffeq
    except ImportError as exc:   # pragma: no cover (a dependency)
        raise ImportError(f"the torchdiffeq methods need torchdiffeq=={TESTED_TORCHDIFFEQ}: {exc}") from None
    have = getattr(torchdiffeq, "__version__", "?")
    problems = []
    mods = {}
    for mod, names in _PRIVATE.items():
        try:
            mods[mod] = importlib.import_module(f"torchdiffeq._impl.{mod}")
        except ImportError:
            problems.append(f"module torchdiffeq._impl.{mod}")
            continue
        problems += [f"torchdiffeq._impl.{mod}.{n}" for n in names if not hasattr(mods[mod], n)]
    try:
        fields = importlib.import_module("torchdiffeq._impl.rk_common")._RungeKuttaState._fields
        problems += [f"_RungeKuttaState.{f}" for f in _RK_STATE_FIELDS if f not in fields]
    except (ImportError, AttributeError):
        problems.append("torchdiffeq._impl.rk_common._RungeKuttaState")
    solvers = getattr(mods.get("odeint"), "SOLVERS", {})
    for name in ADAPTIVE_METHODS + tuple(FIXED_METHODS.values()):
        cls = solvers.get(name)
        if cls is None:
            problems.append(f"method {name!r}")
            continue
        calls = _ADAPTIVE_CALLS if name in ADAPTIVE_METHODS else _FIXED_CALLS
        for meth, args in calls.items():
            fn = getattr(cls, meth, None)
            params = list(inspect.signature(fn).parameters) if callable(fn) else []
            if params[1:1 + len(args)] != list(args):
                problems.append(f"{cls.__name__}.{meth}{tuple(args)} (found {tuple(params[1:]) if fn else 'none'})")
        if name in ADAPTIVE_METHODS:
            init = inspect.signature(cls.__init__).parameters
            kw_ok = any(p.kind == p.VAR_KEYWORD for p in init.values())
            problems += [f"{cls.__name__}(..., {k}=)" for k in _ADAPTIVE_INIT_KW if k not in init and not kw_ok]
    if problems:
        raise ImportError(f"ctsnn's torchdiffeq methods drive torchdiffeq's private step interface, tested with "
                          f"torchdiffeq {TESTED_TORCHDIFFEQ}; the installed torchdiffeq {have} lacks or changed: "
                          f"{'; '.join(problems)}. Install torchdiffeq=={TESTED_TORCHDIFFEQ}, or use "
                          f"method='exact' or 'euler'")
    _INTERNALS.update(PerturbFunc=mods["misc"]._PerturbFunc, rms_norm=mods["misc"]._rms_norm, SOLVERS=solvers)
    return _INTERNALS


#: methods whose torchdiffeq midpoint estimate is only first order (y0 + h/2 k1): their dense
#: output is the cubic Hermite interpolant through (y0, f0, y1, f1) instead of torchdiffeq's
_CRUDE_MID = ("bosh3", "fehlberg2")


def _noop(*_args):
    return None


def _hermite(y0, f0, y1, f1, h):
    """Coefficients (in x = (t - t0)/h) of the cubic Hermite interpolant."""
    d = h * f0
    c = -3 * y0 + 3 * y1 - 2 * h * f0 - h * f1
    bb = 2 * y0 - 2 * y1 + h * f0 + h * f1
    return [y0, d, c, bb]


class Adaptive(Solver):
    """A torchdiffeq method with ctsnn's per-element event location (see module docstring).

    Options (keywords of ``simulate``): ``rtol`` (default 1e-7), ``atol`` (default 1e-9) for the
    adaptive methods; ``step_size`` in s (default ``dt``) for the fixed-grid ones.
    """

    name = "adaptive"
    td_name = "dopri5"
    adaptive = True
    order = 5

    def __init__(self, sim, rtol=None, atol=None, step_size=None):
        super().__init__(sim)
        torchdiffeq_internals()          # a torchdiffeq whose private interface changed: refused now
        m = sim.model
        if self.adaptive:
            if step_size is not None:
                raise ValueError(f"step_size applies to the fixed-grid methods {sorted(FIXED_METHODS)}, "
                                 f"not to the adaptive method {self.name!r} (use rtol/atol)")
            self.rtol = self._tol("rtol", 1e-7 if rtol is None else rtol)
            self.atol = self._tol("atol", 1e-9 if atol is None else atol)
        else:
            if rtol is not None or atol is not None:
                raise ValueError(f"rtol/atol apply to the adaptive methods {list(ADAPTIVE_METHODS)}; "
                                 f"{self.name!r} is a fixed-grid method (use step_size)")
            h = sim.dt if step_size is None else step_size
            try:
                h = float(h)
            except (TypeError, ValueError):
                raise ValueError(f"step_size must be a number of seconds, got {step_size!r}") from None
            if not (math.isfinite(h) and h > 0):
                raise ValueError(f"step_size must be > 0 and finite, got {step_size!r}")
            self.h = h
        self.G = m.event_matrix(sim.dtype, sim.device)
        self.theta = m.event_offset(sim.dtype, sim.device)
        self.stats = sim.stats
        #: a callable current I(t) is evaluated at every stage time (continuous input)
        self.current_fn = getattr(sim, "current_fn", None)
        self._hold, self._stepping = None, False
        self.stats.setdefault("solver_steps", 0)
        self.stats.setdefault("restarts", 0)

    @staticmethod
    def _tol(name, x):
        try:
            v = float(x)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a positive number, got {x!r}") from None
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be > 0 and finite, got {x!r}")
        return v

    # ------------------------------------------------------------------ pieces
    def _f(self, t, y):
        """Drift of the population; ``t`` is the offset from the step start."""
        sim = self.sim
        tt = sim.t0 + float(t.detach() if torch.is_tensor(t) else t)
        u = sim.u if self.current_fn is None else self.current_fn(tt)
        f = self.sim.model.drift(tt, y, u)
        # refractory: the clamped state does not move. While stepping, the mask is the one of the
        # interval being integrated (constant: it ends at the next release), so a stage evaluated
        # exactly at the release (rk4's last stage) still sees the left limit.
        held = self._hold if self._stepping else self._held(float(t.detach() if torch.is_tensor(t) else t))
        if held is not None:
            f = f.clone()
            f[..., sim.clamp_index] = torch.where(held, torch.zeros_like(f[..., sim.clamp_index]),
                                                  f[..., sim.clamp_index])
        return f

    def _held(self, t_off):
        """``[Bt, n]`` mask of the elements in their refractory period at step offset ``t_off``
        (None without t_ref); the comparison is in offsets, as the release times are computed."""
        sim = self.sim
        if sim.t_ref is None:
            return None
        held = (sim.ref_until - sim.t0) > t_off
        return held if bool(held.any()) else None

    def _next_release(self, t, b):
        """The earliest refractory release in ``(t, b)`` (step offsets), or ``b``."""
        sim = self.sim
        if sim.t_ref is None:
            return b
        rel = sim.ref_until - sim.t0
        pending = rel[(rel > t) & (rel < b)]
        return float(pending.min()) if pending.numel() else b

    def _g(self, y):
        return y @ self.G.T - self.theta

    def _theta_of(self, gidx):
        nid = gidx % self.sim.n
        return self.theta[nid] if self.theta.shape[0] > 1 else self.theta.expand(gidx.shape[0], -1)

    @staticmethod
    def _poly(coeff, x):
        """Evaluate sum_j coeff[j] x^j; coeff[j] ``[m, S]``, x ``[m]``."""
        x = x[:, None]
        tot = coeff[-1]
        for c in reversed(coeff[:-1]):
            tot = c + x * tot
        return tot

    def _steps(self, y0, t, b):
        """Generator of accepted steps ``(t0, t1, y1, coeff)`` from offset ``t`` to ``b``;
        ``coeff``: polynomial coefficients in ``x = (s - t0)/(t1 - t0)``, each ``[Bt, n, S]``."""
        sim = self.sim
        shape = y0.shape
        td = torchdiffeq_internals()
        func = td["PerturbFunc"](lambda tt, yy: self._f(tt, yy.view(shape)).reshape(-1))
        for cb in ("callback_step", "callback_accept_step", "callback_reject_step"):
            setattr(func, cb, _noop)
        yf = y0.reshape(-1)
        tdt = torch.float64
        if self.adaptive:
            solver = td["SOLVERS"][self.td_name](func=func, y0=yf, rtol=self.rtol, atol=self.atol,
                                                 norm=td["rms_norm"], step_t=torch.tensor([b], dtype=tdt))
            solver._before_integrate(torch.tensor([t, b], dtype=tdt))
            st = solver.rk_state
            st = st._replace(dt=st.dt.detach())
            n_try = 0
            while float(st.t1) < b:
                new = solver._adaptive_step(st)
                new = new._replace(t0=new.t0.detach(), t1=new.t1.detach(), dt=new.dt.detach())
                n_try += 1
                if n_try > 10_000_000:  # pragma: no cover
                    raise RuntimeError("adaptive solver: too many steps")
                if float(new.t1) > float(st.t1):
                    self.stats["solver_steps"] += 1
                    t0, t1 = float(new.t0), min(float(new.t1), b)
                    if self.td_name in _CRUDE_MID:
                        cf = _hermite(st.y1, st.f1, new.y1, new.f1, float(new.t1) - float(new.t0))
                    else:
                        cf = new.interp_coeff
                    coeff = [c.view(shape) for c in cf]
                    yield t0, t1, new.y1.view(shape), coeff
                st = new
        else:
            solver = td["SOLVERS"][self.td_name](func=func, y0=yf, atol=0.0)
            f0 = None
            while t < b:
                t1 = min(t + self.h, b)
                if b - t1 < 1e-12 * self.h:
                    t1 = b
                h = t1 - t
                tt0 = torch.tensor(t, dtype=tdt)
                dy, f0_ = solver._step_func(func, tt0, torch.tensor(h, dtype=tdt),
                                            torch.tensor(t1, dtype=tdt), yf)
                f0 = f0_ if f0 is None else f0
                y1 = yf + dy
                f1 = func(torch.tensor(t1, dtype=tdt), y1)
                self.stats["solver_steps"] += 1
                coeff = [c.view(shape) for c in _hermite(yf, f0, y1, f1, h)]
                yield t, t1, y1.view(shape), coeff
                t, yf, f0 = t1, y1, f1

    # ------------------------------------------------------------------ main
    def advance(self, sim, a, b):
        t = a
        n_events = 0
        limit = sim.max_events_per_step * max(sim.M, 1)
        while True:
            y = sim.y
            # an armed element already at or above threshold fires now (after an input jump,
            # or a reset that lands above threshold)
            with torch.no_grad():
                g = self._g(y)
                now = immediate(sim.armed, g)
                held = self._held(t)
                if held is not None:
                    now &= ~held.unsqueeze(-1)
            if bool(now.any()):
                anyn = now.any(-1).reshape(-1)
                idx = anyn.nonzero().squeeze(-1)
                e = torch.where(now, g, torch.full_like(g, -math.inf)).reshape(-1, g.shape[-1])[idx].argmax(-1)
                off = torch.full((idx.shape[0],), t, dtype=sim.dtype, device=sim.device)
                sim.fire(idx, off, e, sim.y.reshape(-1, sim.S)[idx])
                n_events += idx.shape[0]
                if n_events > limit:
                    sim.too_many_events(idx, a)
                if sim.coupled:
                    sim.count_coupled_event(a)
                    return t
                continue
            if t >= b:
                return b
            stop = self._next_release(t, b)
            t_new = self._integrate(sim, t, stop)
            if t_new is None:
                if stop >= b:
                    return b
                t = stop          # a release: the drift changes here; restart
                continue
            t = t_new
            n_events += 1
            if n_events > limit:
                sim.too_many_events(torch.zeros(1, dtype=torch.long), a)
            if sim.coupled:
                sim.count_coupled_event(a)
                return t

    def _integrate(self, sim, t, b):
        """Integrate from ``t`` to ``b``; stop at the first event time (returned), or None."""
        y0 = sim.y
        held = self._held(t)     # constant on [t, b]: b is at most the next release
        self._hold, self._stepping = held, True
        try:
            return self._integrate_held(sim, t, b, y0, held)
        finally:
            self._stepping = False

    def _integrate_held(self, sim, t, b, y0, held):
        with torch.no_grad():
            g_prev = self._g(y0)
        for t0, t1, y1, coeff in self._steps(y0, t, b):
            with torch.no_grad():
                g1 = self._g(y1)
                cand = upward(g_prev, g1)
                if held is not None:
                    cand &= ~held.unsqueeze(-1)
                hi_x, g_hi = self._hidden(coeff, g_prev, g1, cand, held)
                if hi_x is not None:
                    cand |= hi_x < 1
            if not bool(cand.any()):
                with torch.no_grad():
                    sim.armed |= g1 < 0
                g_prev = g1
                if t1 >= b:
                    sim.y = y1
                    return None
                continue
            self._stepping = False   # the event's drifts see the refractory state they create
            if hi_x is not None:     # hidden crossings: bracket [0, x_max]
                g1 = torch.where(hi_x < 1, g_hi, g1)
            return self._events(sim, t0, t1, coeff, g_prev, g1, cand, hi_x)
        sim.y = y0  # pragma: no cover - empty interval
        return None

    def _hidden(self, coeff, g0, g1, cand, held):
        """Crossings inside the step with ``g < 0`` at both ends: where the event function's slope
        on the dense solution goes from positive (x = 0) to negative (x = 1), its maximum
        ``x_max`` is found (bracketed root of the slope) and, if ``g(x_max) >= 0``, ``[0, x_max]``
        brackets the crossing. Returns ``(hi_x, g_hi)`` ``[Bt, n, E]`` (``hi_x = 1`` elsewhere) or
        ``(None, None)`` when there is none."""
        both = ~cand
        if held is not None:
            both &= ~held.unsqueeze(-1)
        if not bool((both & (g0 < 0) & (g1 < 0)).any()) or len(coeff) < 3:
            return None, None                       # (a linear interpolant has no interior maximum)
        S, E = self.sim.S, g0.shape[-1]
        cflat = [c.reshape(-1, S) for c in coeff]
        dcoef = [j * cflat[j] for j in range(1, len(cflat))]          # d/dx of the polynomial
        gd0 = dcoef[0] @ self.G.T
        gd1 = sum(dcoef) @ self.G.T
        hid = both.reshape(-1, E) & hidden(g0.reshape(-1, E), g1.reshape(-1, E), gd0, gd1)
        if not bool(hid.any()):
            return None, None
        hi_x = torch.ones_like(g0, dtype=torch.float64).reshape(-1, E)
        g_hi = g1.clone().reshape(-1, E)
        with torch.no_grad():
            for e in range(E):
                u = hid[:, e].nonzero().squeeze(-1)
                if u.numel() == 0:
                    continue
                du = [c[u] for c in dcoef]
                cu = [c[u] for c in cflat]
                th = self._theta_of(u)[:, e]

                def neg_slope(x, du=du):
                    return -(self._poly(du, x.to(du[0].dtype)) @ self.G[e])

                lo = torch.zeros(u.shape[0], dtype=torch.float64, device=g0.device)
                xm = bracketed_root(neg_slope, lo, torch.ones_like(lo), -gd0[u, e].to(torch.float64),
                                    -gd1[u, e].to(torch.float64), xtol=1e-12)
                gm = self._poly(cu, xm.to(cu[0].dtype)) @ self.G[e] - th
                crosses = gm >= 0
                hi_x[u, e] = torch.where(crosses, xm, hi_x[u, e])
                g_hi[u, e] = torch.where(crosses, gm, g_hi[u, e])
        if not bool((hi_x < 1).any()):
            return None, None
        return hi_x.view(g0.shape), g_hi.view(g0.shape)

    def _events(self, sim, t0, t1, coeff, g0, g1, cand, hi_x=None):
        S, E = sim.S, g0.shape[-1]
        span = t1 - t0
        cflat = [c.reshape(-1, S) for c in coeff]
        flat_c = cand.reshape(-1, E)
        el = flat_c.any(-1).nonzero().squeeze(-1)                        # candidate elements
        th = self._theta_of(el)
        xtol = 4 * torch.finfo(torch.float64).eps * max(abs(t1), sim.dt) / span   # in x units
        best = torch.full((el.shape[0],), math.inf, dtype=torch.float64, device=sim.device)
        best_e = torch.zeros(el.shape[0], dtype=torch.long, device=sim.device)
        with torch.no_grad():
            ce = [c[el] for c in cflat]
            g0e, g1e = g0.reshape(-1, E)[el], g1.reshape(-1, E)[el]
            for e in range(E):
                u = flat_c[el, e].nonzero().squeeze(-1)
                if u.numel() == 0:
                    continue
                cu = [c[u] for c in ce]

                def gfun(x, cu=cu, u=u, e=e):
                    return (self._poly(cu, x.to(cu[0].dtype)) @ self.G[e]) - th[u, e]

                lo = torch.zeros(u.shape[0], dtype=torch.float64, device=sim.device)
                hi = torch.ones_like(lo) if hi_x is None else hi_x.reshape(-1, E)[el][u, e]
                r = bracketed_root(gfun, lo, hi, g0e[u, e].to(torch.float64), g1e[u, e].to(torch.float64),
                                   xtol=xtol)
                better = r < best[u]
                best[u] = torch.where(better, r, best[u])
                best_e[u] = torch.where(better, torch.full_like(u, e), best_e[u])
        xmin = float(best.min())
        ts = t0 + xmin * span                                  # restart offset
        fire = (best <= xmin).nonzero().squeeze(-1)
        gidx, ev = el[fire], best_e[fire]
        x = torch.full((sim.M,), xmin, dtype=cflat[0].dtype, device=sim.device)
        y_star = self._poly(cflat, x)                          # [M, S] everyone at ts
        # event times with IFT gradients
        ys = y_star[gidx]
        f_pre_all = self._f(ts, y_star.view(sim.Bt, sim.n, S)).reshape(-1, S)
        f_pre = f_pre_all[gidx]
        gval = (ys @ self.G.T - self._theta_of(gidx)).gather(1, ev[:, None]).squeeze(1)
        gdot = (f_pre @ self.G.T).gather(1, ev[:, None]).squeeze(1)
        t_det = torch.full((gidx.shape[0],), ts, dtype=torch.float64, device=sim.device)
        grad = torch.is_grad_enabled() and (ys.requires_grad or gval.requires_grad)
        if grad:
            t_att = attach_event_time(t_det.to(gval.dtype), gval, gdot)
            delta = t_att - t_att.detach()                       # value 0, carries dt*/dp
        else:
            t_att = t_det.to(sim.dtype)
            delta = None
        with torch.no_grad():
            sim.armed |= (y_star.view(sim.Bt, sim.n, S) @ self.G.T - self.theta) < 0
        if delta is None:
            sim.y = y_star.view(sim.Bt, sim.n, S)
            sim.fire(gidx, t_att, ev, ys)
        elif not sim.coupled:
            pre = ys + f_pre * delta[:, None]
            sim.y = y_star.view(sim.Bt, sim.n, S)
            post = sim.fire(gidx, t_att, ev, pre, write=False)
            f_post = self._f(ts, self._scatter(y_star, gidx, post, sim)).reshape(-1, S)[gidx]
            post = post - f_post * delta[:, None]
            sim.y = self._scatter(y_star, gidx, post, sim)
        else:
            # coupled: the feedback of the event at t* reaches other elements at t*, so every
            # element's restart state shifts with t*; firing elements by their own delta, the
            # others by the first firing element's (exact unless simultaneous events differ)
            dl = delta[0].expand(sim.M).clone().index_put((gidx,), delta)[:, None]
            yp = y_star + f_pre_all * dl
            sim.y = yp.view(sim.Bt, sim.n, S)
            sim.fire(gidx, t_att, ev, yp[gidx])
            yq = sim.y.reshape(-1, S)
            f_post = self._f(ts, sim.y).reshape(-1, S)
            sim.y = (yq - f_post * dl).view(sim.Bt, sim.n, S)
        self.stats["restarts"] += 1
        return ts

    @staticmethod
    def _scatter(y_flat, gidx, rows, sim):
        return y_flat.index_put((gidx,), rows).view(sim.Bt, sim.n, sim.S)


def make_solver_class(name: str) -> type[Adaptive]:
    """The solver class for ctsnn method ``name`` (a torchdiffeq method)."""
    if name in ADAPTIVE_METHODS:
        td, adaptive = name, True
    elif name in FIXED_METHODS:
        td, adaptive = FIXED_METHODS[name], False
    else:
        raise ValueError(f"{name!r} is not a torchdiffeq method known to ctsnn")
    order = ORDERS[td]
    return type(f"Adaptive_{name}", (Adaptive,), {"name": name, "td_name": td, "adaptive": adaptive,
                                                   "order": order,
                                                   "__doc__": f"torchdiffeq {td!r} (order {order}) "
                                                              f"with ctsnn event location."})
