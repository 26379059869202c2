"""torchdiffeq solvers with per-element event location (``method="dopri5"``, ``"rk4"``, ...).

torchdiffeq does the stepping (``step`` returns one accepted step as a ``Segment`` with its dense
output); ctsnn does the events (``ctsnn.events.locate`` and the event loop of ``simulate``, the
same for every solver). Over a sub-interval ``[a, b]`` of a grid
step (input held, no input spike inside: ``simulate`` splits there, so input discontinuities
are always stepped to exactly) the whole population ``y`` ``[Bt, n, S]`` is integrated as one
ODE ``dy/dt = f(t, y, u)`` (the model's ``drift``):

1. torchdiffeq takes one accepted step ``[t0, t1]`` (adaptive methods: error control with
   ``rtol``/``atol``; fixed-grid methods: ``step_size``, default ``dt``), which provides a dense
   solution on the step: the solver's own 4th-order interpolant for dopri5, dopri8 and
   adaptive_heun, the cubic Hermite interpolant through ``(y0, f0, y1, f1)`` for bosh3 and
   fehlberg2 (whose torchdiffeq midpoint is only a first-order estimate) and for the fixed-grid
   methods.
2. (``events.locate``) Every event function of every element is checked at the step end: an upward crossing
   ``g(t0) < 0 <= g(t1)`` is located on the dense solution by ``bracketed_root`` (Illinois), each
   element on its own.
3. (``simulate``) The earliest crossing time ``t*`` over the population becomes a restart point: every element
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

from .base import Hold, Problem, Segment, Solver

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

    def __init__(self, problem: Problem, rtol=None, atol=None, step_size=None):
        super().__init__(problem)
        torchdiffeq_internals()          # a torchdiffeq whose private interface changed: refused now
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
            h = problem.dt if step_size is None else step_size
            try:
                h = float(h)
            except (TypeError, ValueError):
                raise ValueError(f"step_size must be a number of seconds, got {step_size!r}") from None
            if not (math.isfinite(h) and h > 0):
                raise ValueError(f"step_size must be > 0 and finite, got {step_size!r}")
            self.h = h
        self.stats = problem.stats
        #: a callable current I(t) is evaluated at every stage time (continuous input)
        self.current_fn = problem.current_fn
        self.stats.setdefault("solver_steps", 0)
        self.stats.setdefault("restarts", 0)
        self._run = None     # the accepted steps being taken: (generator, its hold, its end, last end, last y)

    @staticmethod
    def _tol(name, x):
        try:
            v = float(x)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a positive number, got {x!r}") from None
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be > 0 and finite, got {x!r}")
        return v

    def begin_step(self, t0, u):
        super().begin_step(t0, u)
        self._run = None

    # ------------------------------------------------------------------ pieces
    def drift(self, t, y, hold=None):
        """Drift of the population at offset ``t``; held clamp states do not move."""
        tt = self.t0 + float(t.detach() if torch.is_tensor(t) else t)
        u = self.u if self.current_fn is None else self.current_fn(tt)
        f = self.problem.model.drift(tt, y, u)
        return f if hold is None else hold.freeze(f)

    @staticmethod
    def _poly(coeff, x):
        """Evaluate sum_j coeff[j] x^j; coeff[j] ``[m, S]``, x ``[m]``."""
        x = x[:, None]
        tot = coeff[-1]
        for c in reversed(coeff[:-1]):
            tot = c + x * tot
        return tot

    def _steps(self, y0, t, b, hold):
        """Generator of accepted steps ``(t0, t1, y1, coeff)`` from offset ``t`` to ``b``;
        ``coeff``: polynomial coefficients in ``x = (s - t0)/(t1 - t0)``, each ``[Bt, n, S]``.
        The interval holds no refractory release (``simulate`` ends it there), so the mask of
        held clamp states is constant over it (a stage evaluated exactly at the release, such as
        rk4's last one, still sees the left limit)."""
        shape = y0.shape
        td = torchdiffeq_internals()
        func = td["PerturbFunc"](lambda tt, yy: self.drift(tt, yy.view(shape), hold).reshape(-1))
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

    # ------------------------------------------------------------------ step
    def step(self, t0, y0, t1, hold: Hold | None = None, rows=None) -> Segment:
        """One accepted step from offset ``t0`` towards ``t1`` (the segment ends at most at
        ``t1``). A call that continues the previous segment (same end, same state object, same
        hold) continues torchdiffeq's step-size sequence; any other call (after a jump, an input
        spike or a release) restarts it there."""
        if rows is not None:
            raise ValueError(f"{self.name!r} steps the whole population (per_element is False)")
        p = self.problem
        run = self._run
        if (run is None or run[1] is not hold or run[2] != t1 or run[3] != t0
                or y0.data_ptr() != run[4].data_ptr() or y0.shape != run[4].shape):
            run = [self._steps(y0, t0, t1, hold), hold, t1, t0, y0]
            self._run = run
        try:
            s0, s1, y1, coeff = next(run[0])
        except StopIteration:  # pragma: no cover - an empty interval
            self._run = None
            s0, s1, y1, coeff = t0, t0, y0, [y0]
        run[3], run[4] = s1, y1
        S = p.S
        cflat = [c.reshape(-1, S) for c in coeff]
        span = s1 - s0
        dcoef = [j * cflat[j] for j in range(1, len(cflat))]
        t0v = torch.full((p.M,), s0, dtype=torch.float64, device=p.device)

        def x_of(s):
            return ((s - s0) / span).to(cflat[0].dtype) if span > 0 else torch.zeros_like(s, dtype=cflat[0].dtype)

        def at(i, s):
            return self._poly([c[i] for c in cflat], x_of(s))

        def slope(i, s):
            if not dcoef:
                return torch.zeros_like(cflat[0][i])
            return self._poly([c[i] for c in dcoef], x_of(s)) / span

        turns = len(cflat) >= 3
        sl0 = sl1 = None
        if turns:
            with torch.no_grad():
                sl0, sl1 = (dcoef[0] / span).view(y1.shape), (sum(dcoef) / span).view(y1.shape)
        return Segment(t0=t0v, t1=s1, y0=coeff[0], y1=y1, at=at, slope=slope, turns=turns,
                       tol=4 * torch.finfo(torch.float64).eps * max(abs(s1), p.dt), slope0=sl0, slope1=sl1)


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
