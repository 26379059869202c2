r"""``fit``: model parameters from recordings, by gradients through ``simulate``.

For each sweep the model is simulated on the recording's own grid (``dt`` = the sampling
interval, the recorded current held over each sample interval, input spikes at their times,
``v(0)`` at the steady state ``v_leak + r I(0)``), and compared with the recording:

* ``loss="mse"``: :math:`L = \frac{1}{N}\sum_k (v_{sim}(t_k) - v_{rec}(t_k))^2 / \sigma^2` over all
  (unmasked) samples of all sweeps, with :math:`\sigma` the data's standard deviation (a scale,
  so that the optimiser sees O(1) numbers);
* ``loss="spikes"``: the same MSE outside windows around the recorded spikes (the part of a
  real action potential no integrate-and-fire model draws) plus ``spike_weight`` times the
  squared van Rossum distance between simulated and recorded spike trains; the simulated spike
  times are differentiable (implicit function theorem), so the gradient sees them move.

Parameters are optimised in unconstrained coordinates (``transforms``); shared across sweeps
unless listed in ``per_sweep``. Pairs a model needs in order (``model.orders()``, declared by
its parameters: v_reset below v_th, ...) stay in order while the optimiser moves them, and a parameter point that cannot be
simulated counts as a high loss, so line searches step back instead of failing.
Optimisers: L-BFGS (default, strong Wolfe line search), Adam,
or ``scipy.optimize.least_squares`` (trust region on the residual vector). Standard errors come
from the Jacobian of the membrane residuals in the natural parameters at the optimum
(central differences): :math:`\mathrm{cov} = s^2 (J^T J)^{-1}`, :math:`s^2 = RSS/(N - P)`.
"""
from __future__ import annotations

import json
import math
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..io import Recording
from ..models.base import NeuronModel, Param
from ..errors import SimulationError
from ..simulate import simulate
from ..units import SI_UNITS, format_quantity
from ..validate import names as _names
from ..validate import number as _number
from ..validate import positive_int
from .metrics import matched_spike_times, van_rossum
from .transforms import Transform, transform_for

__all__ = ["fit", "FitResult"]

# parameters of the measurement, not of the neuron (name: default start value):
# r_series (Ohm): the electrode's uncompensated series resistance; the amplifier records
# v + r_series * I, an instantaneous step at every current step (a bridge-balance error).
# name: (default start value, declaration)
OBSERVATION = {"r_series": (0.0, Param("ohm", scale=1e7, doc="electrode series resistance (signed: the bridge "
                                                         "may be over-compensated)"))}

# (upper, lower): parameters a model needs in this order (e.g. a reset below the threshold). While
# an optimiser moves one of them, the fitted one is kept on its side of the other by a soft floor
# (or ceiling) ``lower + s softplus((upper - lower) / s)`` with ``s`` a thousandth of the starting
# gap: the identity to rounding unless the step would cross, a valid model always.
# a fit simulates on the recording's sampling grid, where no neuron fires more than once or twice a
# step; far more events in one step means a parameter point with a runaway event loop, refused early
FIT_MAX_EVENTS_PER_STEP = 50


@dataclass
class FitResult:
    """What :func:`fit` found.

    ``values`` / ``stderr`` / ``init`` by parameter name (per-sweep ones as ``name[k]``), in SI
    units; ``rmse`` the membrane residual RMSE (V) over the fitted samples; ``loss_history`` one
    value per loss evaluation; ``n_iter`` optimiser iterations; ``model`` the fitted model (the
    one of sweep 0 when parameters are per sweep); ``traces`` its simulation of each sweep;
    ``recordings`` the data.
    """

    values: dict[str, float]
    stderr: dict[str, float]
    init: dict[str, float]
    rmse: float
    loss: float
    loss_history: list[float]
    n_iter: int
    n_eval: int
    optimizer: str
    loss_kind: str
    success: bool
    message: str
    wall_time_s: float
    model: NeuronModel | None = None
    models: list = field(default_factory=list)
    traces: list = field(default_factory=list)
    recordings: list = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the model, traces and data, as plain Python (JSON-ready), with the SI
        unit of each value under ``units``."""
        keys = ("values", "stderr", "init", "rmse", "loss", "loss_history", "n_iter", "n_eval",
                "optimizer", "loss_kind", "success", "message", "wall_time_s")
        d = {k: getattr(self, k) for k in keys}
        d["model"] = type(self.model).__name__ if self.model is not None else None
        d["units"] = {k: SI_UNITS.get(self._dimension(k), "") for k in self.values}
        d["recordings"] = [r.name for r in self.recordings]
        d["spike_counts"] = {"model": [int(tr.n_spikes) for tr in self.traces]}
        return json.loads(json.dumps(d, default=float))

    def to_json(self, path=None, indent: int = 2) -> str:
        text = json.dumps(self.to_dict(), indent=indent)
        if path is not None:
            with open(path, "w") as fh:
                fh.write(text + "\n")
        return text

    def _dimension(self, label: str) -> str | None:
        return _spec(self.model, label).dimension if self.model is not None else None

    def summary(self) -> str:
        """The result as a reader wants it: values in ms, mV, MOhm, pA (``values`` stay SI)."""
        lines = [f"fit of {type(self.model).__name__} to {len(self.recordings)} sweep(s) "
                 f"({self.optimizer}, loss {self.loss_kind}): {self.n_iter} iterations, "
                 f"{self.n_eval} evaluations, {self.wall_time_s:.2f} s",
                 f"  {'converged' if self.success else 'DID NOT CONVERGE'}: {self.message}"]
        width = max([14] + [len(k) for k in self.values])
        for k, v in self.values.items():
            dim = self._dimension(k)
            se = self.stderr.get(k, float("nan"))
            val = format_quantity(v, dim, 5)
            unit = val.split(" ")[1] if " " in val else ""
            err = format_quantity(se, dim, 2).split(" ")[0] if math.isfinite(se) else "nan"
            lines.append(f"  {k:{width}s} = {val.split(' ')[0]} ± {err} {unit}".rstrip()
                         + f"   (start {format_quantity(self.init[k], dim, 5)})")
        lines.append(f"  residual RMSE = {self.rmse * 1e3:.4g} mV")
        return "\n".join(lines)


class _Problem:
    """Parameters <-> models <-> simulations <-> residuals for a set of sweeps."""

    def __init__(self, model, recordings, params, per_sweep, init, bounds, loss, spike_threshold,
                 spike_window, spike_weight, vr_tau, method, dtype, spike_metric="van_rossum", mse_weight=1.0):
        self.model, self.recs, self.method, self.dtype = model, recordings, method, dtype
        available = dict(model.params())
        names = list(params)
        for p in list(names) + list(per_sweep):
            if p not in available and p not in OBSERVATION:
                raise ValueError(f"{type(model).__name__} has no parameter {p!r}; it has "
                                 f"{sorted(available)} (and the recording's {sorted(OBSERVATION)})")
        available.update({p: torch.tensor(v, dtype=torch.float64) for p, (v, _spec) in OBSERVATION.items()})
        for p in per_sweep:
            if p not in names:
                names.append(p)
        if len(set(names)) != len(names):
            raise ValueError(f"parameters listed twice: {params}")
        if not names:
            raise ValueError("params is empty: no parameters to fit; name at least one, e.g. params=('tau_mem',)")
        init = dict(init or {})
        unknown = set(init) - set(names)
        if unknown:
            raise ValueError(f"init has values for parameters that are not fitted: {sorted(unknown)}")
        for k, v in init.items():
            _number(f"init[{k!r}]", v)
        bounds = dict(bounds or {})
        for k, b in bounds.items():
            try:
                lo, hi = b
            except (TypeError, ValueError):
                raise ValueError(f"bounds[{k!r}] must be a pair (lo, hi), got {b!r}") from None
            bounds[k] = (_number(f"bounds[{k!r}] lo", lo), _number(f"bounds[{k!r}] hi", hi))
        unknown = set(bounds) - set(names)
        if unknown:
            raise ValueError(f"bounds given for parameters that are not fitted: {sorted(unknown)}")
        self.slots: list[tuple[str, int | None, Transform]] = []
        for p in names:
            v = available[p].detach()
            if v.numel() != 1:
                raise ValueError(f"parameter {p!r} is per-neuron ({v.numel()} values); fit a "
                                 f"one-neuron model")
            p0 = float(init.get(p, float(v)))
            tr = transform_for(p, p0, bounds.get(p), spec=_spec(model, p))
            if p in per_sweep:
                self.slots += [(p, k, tr) for k in range(len(recordings))]
            else:
                self.slots.append((p, None, tr))
        self._orders(model, available, per_sweep, len(recordings))
        self.loss_kind = loss
        self.spike_weight, self.vr_tau = float(spike_weight), float(vr_tau)
        self.spike_metric, self.mse_weight = spike_metric, float(mse_weight)
        # data on the simulation grid
        self.data = []
        allv = np.concatenate([r.v[r.mask] if r.mask is not None else r.v for r in recordings])
        self.sigma = float(np.std(allv)) or 1e-3
        for r in recordings:
            dt = r.dt
            v = torch.tensor(np.nan_to_num(r.v), dtype=dtype)
            mask = torch.ones(len(r), dtype=torch.bool) if r.mask is None else torch.tensor(r.mask)
            with np.errstate(invalid="ignore", divide="ignore"):   # masked samples enter as -inf
                rec_spikes = r.spikes(spike_threshold) if loss == "spikes" else np.zeros(0)
            if loss == "spikes":
                t_rel = r.t - r.t[0]
                for ts in rec_spikes - r.t[0]:
                    mask &= ~torch.tensor((t_rel >= ts - spike_window[0]) & (t_rel <= ts + spike_window[1]))
            spikes = None
            if r.input_spikes is not None and r.input_spikes[0].size:
                ts, w = r.input_spikes
                spikes = (torch.tensor(ts - r.t[0]), torch.zeros(ts.size, dtype=torch.long),
                          torch.tensor(w, dtype=dtype))
            self.data.append({"dt": dt, "T": len(r), "v": v, "mask": mask, "spikes": spikes,
                              "i_obs": torch.tensor(r.current, dtype=dtype),
                              "current": torch.tensor(r.current[:-1], dtype=dtype)[:, None],
                              "rec_spikes": torch.tensor(rec_spikes - r.t[0], dtype=torch.float64)})
        self.N = int(sum(int(d["mask"].sum()) for d in self.data))
        if self.N <= len(self.slots):
            raise ValueError(f"{self.N} data points for {len(self.slots)} parameters: not enough data")
        self.n_eval = 0

    def _orders(self, model, available, per_sweep, n_sweeps) -> None:
        """The ordered pairs (``model.orders()``, from the declarations) touched by the fit, per
        sweep, as ``(slot of upper or None, slot of lower or None, fixed upper, fixed lower, scale)``."""
        self.orders = []

        def slot(p, k):
            for j, (q, kk, _tr) in enumerate(self.slots):
                if q == p and (kk is None or kk == k):
                    return j
            return None

        seen = set()
        for up, lo in model.orders():
            for k in range(n_sweeps):
                ju, jl = slot(up, k), slot(lo, k)
                if (ju is None and jl is None) or (ju, jl) in seen:
                    continue
                seen.add((ju, jl))
                u0 = self.slots[ju][2].p0 if ju is not None else float(available[up])
                l0 = self.slots[jl][2].p0 if jl is not None else float(available[lo])
                if not u0 > l0:
                    raise ValueError(f"{type(model).__name__} needs {lo} below {up}; the start has "
                                     f"{up}={u0:g}, {lo}={l0:g}: change init or the model")
                self.orders.append((ju, jl, float(available[up]), float(available[lo]), 1e-3 * (u0 - l0)))

    def dimension(self, label: str) -> str | None:
        return _spec(self.model, label).dimension

    @property
    def labels(self) -> list[str]:
        return [p if k is None else f"{p}[{k}]" for p, k, _ in self.slots]

    def natural(self, z: torch.Tensor) -> list[torch.Tensor]:
        vals = [tr(z[j]) for j, (_p, _k, tr) in enumerate(self.slots)]
        def sp(x):   # softplus, kept > 0 where it would underflow (the model stays valid)
            return torch.clamp(torch.nn.functional.softplus(x), min=1e-3)
        for ju, jl, u_fixed, l_fixed, s in self.orders:
            u = vals[ju] if ju is not None else u_fixed
            lo = vals[jl] if jl is not None else l_fixed
            if ju is not None:          # the upper one moves: soft floor at the lower one
                vals[ju] = lo + s * sp((u - lo) / s)
            else:                       # only the lower one moves: soft ceiling at the upper one
                vals[jl] = u - s * sp((u - lo) / s)
        return vals

    def models(self, nat: Sequence[torch.Tensor]) -> list[NeuronModel]:
        out = []
        for k in range(len(self.recs)):
            kw = {p: nat[j] for j, (p, kk, _) in enumerate(self.slots)
                  if (kk is None or kk == k) and p not in OBSERVATION}
            out.append(self.model.replace(**kw))
        self._obs = [{p: nat[j] for j, (p, kk, _) in enumerate(self.slots)
                      if (kk is None or kk == k) and p in OBSERVATION} for k in range(len(self.recs))]
        return out

    def simulate(self, models) -> list:
        traces = []
        for m, d in zip(models, self.data):
            initial = _steady_state(m, d["current"][0, 0])
            traces.append(simulate(m, d["current"], d["spikes"], t_end=(d["T"] - 1) * d["dt"], dt=d["dt"],
                                   method=self.method, initial=initial, dtype=self.dtype,
                                   max_events_per_step=FIT_MAX_EVENTS_PER_STEP))
        self.n_eval += 1
        return traces

    def residuals(self, traces) -> list[torch.Tensor]:
        """Membrane residuals (V) of every sweep, masked samples dropped; the recorded value is
        modelled as ``v + r_series I`` when ``r_series`` is fitted (a bridge-balance error)."""
        out = []
        for k, (tr, d) in enumerate(zip(traces, self.data)):
            v = tr["v"][:, 0]
            rs = self._obs[k].get("r_series")
            if rs is not None:
                v = v + rs * d["i_obs"]
            out.append((v - d["v"])[d["mask"]])
        return out

    def loss(self, traces) -> torch.Tensor:
        res = torch.cat(self.residuals(traces))
        total = self.mse_weight * (res ** 2).sum() / (self.N * self.sigma ** 2)
        if self.loss_kind == "spikes":
            for tr, d in zip(traces, self.data):
                if self.spike_metric == "matched":  # in units of vr_tau^2 per recorded spike
                    dist = matched_spike_times(tr.spike_times, d["rec_spikes"], (d["T"] - 1) * d["dt"]) \
                        / self.vr_tau ** 2
                else:
                    dist = van_rossum(tr.spike_times, d["rec_spikes"], self.vr_tau)
                total = total + self.spike_weight * dist / max(1, d["rec_spikes"].numel())
        return total


def fit(model: NeuronModel, recordings: Recording | Sequence[Recording],
        params: Sequence[str] = ("tau_mem", "r", "v_leak"), *, per_sweep: Sequence[str] = (),
        init: dict | None = None, bounds: dict | None = None, loss: str = "mse",
        optimizer: str = "lbfgs", max_iter: int = 100, lr: float = 0.05, tol: float = 1e-12,
        spike_threshold: float = -0.02, spike_window: tuple[float, float] = (1e-3, 4e-3),
        spike_weight: float = 1.0, vr_tau: float = 10e-3, spike_metric: str = "van_rossum",
        mse_weight: float = 1.0, method: str = "exact",
        dtype: torch.dtype = torch.float64, stderr: bool = True, progress: bool = False,
        callback: Callable[[int, float, dict], None] | None = None, single_thread: bool = True) -> FitResult:
    """Fit the parameters ``params`` of ``model`` to one or several recordings.

    Parameters
    ----------
    model : a one-neuron ctsnn model; its current parameter values are the starting point
        (override with ``init``). Fitted values are in SI units.
    recordings : :class:`ctsnn.Recording` (or a list; select sweeps and windows beforehand with
        ``ctsnn.io`` readers and ``Recording.window``); each must be uniformly sampled.
    params : parameter names (shared by all sweeps); ``per_sweep``: names fitted per sweep (e.g.
        ``("v_leak",)`` for a drifting baseline).
    bounds : ``{name: (lo, hi)}``; otherwise positivity is kept by log coordinates.
    loss : ``"mse"`` (membrane) or ``"spikes"`` (``mse_weight`` times the membrane MSE outside
        spike windows + ``spike_weight`` times a spike-train distance per recorded spike; recorded
        spikes are upward crossings of ``spike_threshold`` V). ``spike_metric``: ``"van_rossum"``
        (kernel ``vr_tau``) or ``"matched"`` (k-th spike against k-th spike, the shorter train
        padded with the window's end, in units of ``vr_tau``: continuous as spikes enter or leave
        the window, the better choice when the model starts far from the data's spike count).
    optimizer : ``"lbfgs"``, ``"adam"`` (``lr``, ``max_iter`` steps) or ``"least_squares"``.
    progress : print one line per iteration to stderr; ``callback(iteration, loss, values)``.
    single_thread : run torch on one thread during the fit (restored afterwards). A one-neuron
        simulation is a long chain of tiny tensor operations that intra-op threads cannot speed
        up; on a busy 2-core machine their spin-waiting made fits 10-50x slower (measured: a
        2200-step ALIF sweep, 0.09 s on one thread against 1.5-7 s on two under load).
    """
    threads = torch.get_num_threads()
    if threads > 1 and single_thread:
        torch.set_num_threads(1)
    try:
        return _fit(model, recordings, params, per_sweep, init, bounds, loss, optimizer, max_iter, lr, tol,
                    spike_threshold, spike_window, spike_weight, vr_tau, spike_metric, mse_weight, method,
                    dtype, stderr, progress, callback)
    finally:
        torch.set_num_threads(threads)


def _fit(model, recordings, params, per_sweep, init, bounds, loss, optimizer, max_iter, lr, tol,
         spike_threshold, spike_window, spike_weight, vr_tau, spike_metric, mse_weight, method,
         dtype, stderr, progress, callback) -> FitResult:
    t_start = time.perf_counter()
    from .. import validate as _v
    if isinstance(recordings, Recording):
        recordings = [recordings]
    if recordings is None or isinstance(recordings, (str, bytes)) or not hasattr(recordings, "__iter__"):
        raise TypeError(f"recordings must be a ctsnn.Recording or a list of them (read files with ctsnn.io), "
                        f"got {type(recordings).__name__}")
    recordings = list(recordings)
    if not recordings:
        raise ValueError("recordings is empty: fit needs at least one recording")
    dtype = _v.dtype_arg("dtype", dtype)
    _v.callable_or_none("callback", callback)
    for r in recordings:
        if not isinstance(r, Recording):
            raise ValueError(f"recordings must be ctsnn.Recording objects, got {type(r).__name__}")
        r.dt  # uniform sampling is required  # noqa: B018
    if not isinstance(model, NeuronModel):
        raise ValueError(f"model must be a ctsnn NeuronModel, got {type(model).__name__}")
    if model.n != 1:
        raise ValueError(f"fit needs a one-neuron model, got n={model.n}")
    # fit's own arguments, each checked here so that an error names it (not a model parameter)
    params, per_sweep = _names("params", params), _names("per_sweep", per_sweep)
    if loss not in ("mse", "spikes"):
        raise ValueError(f"loss must be 'mse' or 'spikes', got {loss!r}")
    if spike_metric not in ("van_rossum", "matched"):
        raise ValueError(f"spike_metric must be 'van_rossum' or 'matched', got {spike_metric!r}")
    if optimizer not in ("lbfgs", "adam", "least_squares"):
        raise ValueError(f"optimizer must be 'lbfgs', 'adam' or 'least_squares', got {optimizer!r}")
    max_iter = positive_int("max_iter", max_iter)
    lr = _number("lr", lr, positive=True)
    tol = _number("tol", tol, nonneg=True)
    spike_threshold = _number("spike_threshold", spike_threshold)
    try:
        before, after = spike_window
    except (TypeError, ValueError):
        raise ValueError(f"spike_window must be a pair (before, after) in s, got {spike_window!r}") from None
    spike_window = (_number("spike_window[0]", before, nonneg=True), _number("spike_window[1]", after, nonneg=True))
    spike_weight = _number("spike_weight", spike_weight, nonneg=True)
    vr_tau = _number("vr_tau", vr_tau, positive=True)
    mse_weight = _number("mse_weight", mse_weight, nonneg=True)
    if loss == "spikes" and spike_weight == 0 and mse_weight == 0:
        raise ValueError("spike_weight and mse_weight are both 0: the loss would be 0 everywhere")
    if loss == "mse":
        spiking = {r.name: _action_potentials(r, spike_threshold) for r in recordings}
        spiking = {k: n for k, n in spiking.items() if n}
        if spiking:
            warnings.warn(
                f"loss='mse' on recordings that spike ({sum(spiking.values())} action potentials (crossings "
                f"of spike_threshold={spike_threshold * 1e3:g} mV rising 20 mV within 2 ms) in "
                f"{', '.join(spiking)}): the model's "
                f"membrane is compared with action potentials it does not draw, which bends every "
                f"parameter; use loss='spikes', or a window or exclude that leaves the spikes out",
                UserWarning, stacklevel=3)
    prob = _Problem(model, recordings, params, per_sweep, init, bounds, loss, spike_threshold,
                    spike_window, spike_weight, vr_tau, method, dtype, spike_metric, mse_weight)
    P = len(prob.slots)
    z = torch.zeros(P, dtype=dtype, requires_grad=True)
    history: list[float] = []
    it = [0]
    # the most loss evaluations each optimiser may use (for the progress line's estimate)
    max_eval = {"lbfgs": 3 * max_iter, "adam": max_iter,
                "least_squares": max_iter * (2 * P + 1) * (2 * P + 1)}[optimizer]
    last_print, t_first = [0.0], [0.0]

    def report(value):
        history.append(value)
        if progress or callback:
            with torch.no_grad():
                vals = {lab: float(v) for lab, v in zip(prob.labels, prob.natural(z.detach()))}
            now = time.perf_counter()
            if progress and (now - last_print[0] > 0.25 or prob.n_eval == 1):
                last_print[0] = now
                elapsed = now - t_start
                if prob.n_eval == 1:
                    t_first[0] = now
                per_eval = (now - t_first[0]) / max(prob.n_eval - 1, 1) if prob.n_eval > 1 else elapsed
                left = per_eval * max(max_eval - prob.n_eval, 0)
                shown = ", ".join(f"{k}={format_quantity(v, prob.dimension(k), 5).replace(' ', '')}"
                                  for k, v in vals.items())
                print(f"\rfit: eval {prob.n_eval:4d} (at most {max_eval}), {elapsed:5.1f} s, at most "
                      f"{_duration(left)} left; loss {value:.6e}  {shown}", end="", file=sys.stderr,
                      flush=True)
            if callback:
                callback(it[0], value, vals)

    failed: list[str] = []

    def penalty(exc) -> float:
        """A point the model cannot be simulated at (a runaway event loop, an invalid parameter
        combination) is, for the optimiser, a high loss: its line search steps back."""
        if not history:
            raise ValueError(f"the starting parameters cannot be simulated: {exc}") from None
        failed.append(" ".join(str(exc).split())[:200])
        return 10.0 * max(abs(h) for h in history[:1] if math.isfinite(h)) + 1.0

    def closure():
        if torch.is_grad_enabled():
            opt.zero_grad()
        try:
            L = prob.loss(prob.simulate(prob.models(prob.natural(z))))
        except (SimulationError, ValueError) as exc:
            L = torch.tensor(penalty(exc), dtype=dtype)
        if L.requires_grad:
            L.backward()
        report(float(L.detach()))
        return L

    success, message = True, ""
    if optimizer == "lbfgs":
        opt = torch.optim.LBFGS([z], lr=1.0, max_iter=max_iter, max_eval=max_eval,
                                tolerance_grad=tol, tolerance_change=tol * 1e-3, history_size=20,
                                line_search_fn="strong_wolfe")
        opt.step(closure)
        state = opt.state[opt._params[0]]
        it[0] = int(state.get("n_iter", 0))
        evals = int(state.get("func_evals", prob.n_eval))
        if it[0] >= max_iter:
            success, message = False, f"reached max_iter ({max_iter} iterations) before a tolerance was met"
        elif evals >= max_eval:
            success, message = False, f"reached the evaluation limit ({max_eval}) before a tolerance was met"
        else:
            message = None   # decided below, from the gradient at the result
    elif optimizer == "adam":
        opt = torch.optim.Adam([z], lr=lr)
        best = (math.inf, z.detach().clone(), 0)
        for it[0] in range(1, max_iter + 1):
            L = float(closure().detach())
            if L < best[0]:
                best = (L, z.detach().clone(), it[0])
            opt.step()
        window = history[-min(10, len(history)):]
        change = (max(window) - min(window)) / max(abs(window[-1]), 1e-300)
        if best[2] != it[0]:   # the last step was not the best: return the best point seen
            with torch.no_grad():
                z.copy_(best[1])
        success = change <= 1e-4 and history[-1] <= history[0]
        rose = (f"the loss rose from {history[0]:.4g} to {history[-1]:.4g} (lower lr); "
                if history[-1] > history[0] else "")
        message = rose + (f"Adam ran {max_iter} steps; the loss changed by {change:.2g} (relative) over the last "
                   f"{len(window)}" + (" (below 1e-4)" if success else ", still moving: raise max_iter or lower lr")
                   + (f"; the best point seen (step {best[2]}) is returned" if best[2] != it[0] else ""))
    else:
        from scipy.optimize import least_squares

        def fun(x):
            with torch.no_grad():
                nat = prob.natural(torch.as_tensor(x, dtype=dtype))
                try:
                    res = torch.cat(prob.residuals(prob.simulate(prob.models(nat)))) / prob.sigma
                except (SimulationError, ValueError) as exc:
                    res = torch.full((prob.N,), math.sqrt(penalty(exc)), dtype=dtype)
            report(float((res ** 2).sum() / prob.N))
            return res.numpy()

        sol = least_squares(fun, np.zeros(P), jac="3-point", xtol=max(tol, 1e-15), ftol=max(tol, 1e-15),
                            gtol=max(tol, 1e-15), max_nfev=max_iter * (2 * P + 1), x_scale=1.0)
        with torch.no_grad():
            z.copy_(torch.as_tensor(sol.x, dtype=dtype))
        it[0], success = int(sol.nfev), bool(sol.status > 0)
        message = {0: "reached the evaluation limit (max_iter) before a tolerance was met",
                   1: "gradient below gtol", 2: "cost change below ftol", 3: "step below xtol",
                   4: "cost change below ftol and step below xtol"}.get(sol.status, str(sol.message))
    if progress:
        print(file=sys.stderr)

    # the result, and the gradient there (the honest test of convergence)
    zf = z.detach().clone().requires_grad_(True)
    nat = prob.natural(zf)
    models = prob.models(nat)
    traces = prob.simulate(models)
    L = prob.loss(traces)
    grad = torch.autograd.grad(L, zf, allow_unused=True)[0] if L.requires_grad else None
    gmax = float(grad.abs().max()) if grad is not None else 0.0
    final = float(L.detach())
    nat = [v.detach() for v in nat]
    models = prob.models(nat)
    traces = [tr.detach() for tr in traces]
    with torch.no_grad():
        res = torch.cat(prob.residuals(traces))
    if message is None:                # L-BFGS stopped by a tolerance: which one
        if gmax <= tol and final > 0 and gmax == 0:
            success, message = False, (f"the gradient is exactly 0 at a loss of {final:.4g}: a flat region "
                                       f"(for a spike loss: no simulated spike moves with these parameters); "
                                       f"start elsewhere or use spike_metric='matched'")
        elif gmax <= max(tol, 1e-12):
            message = f"gradient below tolerance (max |dL/dz| = {gmax:.2g})"
        elif loss == "mse" or gmax <= 1e-6 * max(1.0, abs(final)):
            message = (f"the loss stopped changing (change below {tol * 1e-3:.2g}) with the gradient at "
                       f"{gmax:.2g}: a minimum to this tolerance")
        else:
            message = (f"the loss stopped changing (change below {tol * 1e-3:.2g}) while the gradient is "
                       f"{gmax:.2g}: a kink of the loss (e.g. a spike entering or leaving the window) or a "
                       f"parameter at its bound; a local minimum of a non-smooth loss")
    if failed:
        message += (f"; {len(failed)} evaluation(s) could not be simulated and counted as a high loss "
                    f"(first: {failed[0]})")
    start_loss = history[0] if history else final
    if not math.isfinite(final):
        success, message = False, f"the loss at the result is {final} ({message})"
    elif final > start_loss * (1 + 1e-9) + 1e-300:
        success, message = False, f"the loss rose from {start_loss:.6g} to {final:.6g} ({message})"
    rss = float((res ** 2).sum())
    values = {lab: float(v) for lab, v in zip(prob.labels, nat)}
    errors = _stderr(prob, nat, rss) if stderr else {lab: float("nan") for lab in prob.labels}
    return FitResult(values=values, stderr=errors, init={lab: tr.p0 for lab, (_p, _k, tr) in
                                                         zip(prob.labels, prob.slots)},
                     rmse=math.sqrt(rss / prob.N), loss=final, loss_history=history, n_iter=int(it[0]),
                     n_eval=prob.n_eval, optimizer=optimizer, loss_kind=loss, success=success,
                     message=message, wall_time_s=time.perf_counter() - t_start, model=models[0],
                     models=models, traces=traces, recordings=recordings)


def _steady_state(model: NeuronModel, current0: torch.Tensor) -> dict[str, torch.Tensor] | None:
    """The state at which ``model`` rests under the constant current ``I(0)``, by state name: the
    fixed point of its linear part, ``A y* + B u + c = 0`` with ``u = input_channels(I(0))``
    (``v_leak + r I(0)`` and every other state 0 for LIF, CubaLIF, ALIF), differentiable in the
    parameters; None (the model's own ``init_state``) for a nonlinear model or a singular ``A``
    (IF: no rest under a current)."""
    lin = model.linear_part(current0.dtype, current0.device)
    if lin is None:
        return None
    A, B, c = lin
    u = model.input_channels(current0.reshape(1))                   # [1, U]
    rhs = -(torch.einsum("niu,nu->ni", B, u.expand(B.shape[0], -1)) + c)
    y, info = torch.linalg.solve_ex(A, rhs.unsqueeze(-1))
    if bool((info != 0).any()) or not bool(torch.isfinite(y).all()):
        return None
    return {name: y[:, j, 0] for j, name in enumerate(model.state_names)}


def _spec(model: NeuronModel, label: str) -> Param:
    """The declaration of fitted parameter ``label`` (``name`` or ``name[k]``): the model's, or
    the recording's for ``OBSERVATION``."""
    name = label.split("[")[0]
    return OBSERVATION[name][1] if name in OBSERVATION else model.param_spec(name)


def _action_potentials(rec: Recording, threshold: float) -> int:
    """How many crossings of ``threshold`` in ``rec`` look like action potentials: the membrane
    rises by at least 20 mV from its minimum over the 5 ms before the crossing to its maximum over
    the 2 ms after (noise around a threshold near the baseline does not)."""
    t, v = rec.t, np.where(rec.mask, rec.v, np.nan) if rec.mask is not None else rec.v
    n = 0
    with np.errstate(invalid="ignore", divide="ignore"):   # masked samples enter as -inf
        crossings = rec.spikes(threshold)
    for ts in crossings:
        before = v[(t >= ts - 5e-3) & (t <= ts)]
        after = v[(t >= ts) & (t <= ts + 2e-3)]
        if before.size and after.size and np.nanmax(after) - np.nanmin(before) >= 0.02:
            n += 1
    return n


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _stderr(prob: _Problem, nat: list[torch.Tensor], rss: float) -> dict[str, float]:
    """Standard errors from the Jacobian of the membrane residuals (central differences)."""
    P = len(nat)
    cols = []
    with torch.no_grad():
        for j in range(P):
            h = 1e-6 * max(abs(float(nat[j])), prob.slots[j][2].scale if prob.slots[j][2].kind != "log" else 0.0,
                           1e-12)
            rs = []
            for sgn in (1, -1):
                pert = list(nat)
                pert[j] = nat[j] + sgn * h
                rs.append(torch.cat(prob.residuals(prob.simulate(prob.models(pert)))))
            cols.append((rs[0] - rs[1]) / (2 * h))
    J = torch.stack(cols, dim=1).double()
    dof = max(1, prob.N - P)
    s2 = rss / dof
    try:
        cov = s2 * torch.linalg.inv(J.T @ J)
        se = torch.sqrt(torch.clamp(torch.diagonal(cov), min=0))
    except RuntimeError:
        se = torch.full((P,), float("nan"), dtype=torch.float64)
    return {lab: float(s) for lab, s in zip(prob.labels, se)}
