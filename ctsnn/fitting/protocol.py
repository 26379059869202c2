r"""``fit_protocol``: a fitting recipe for cells recorded with a current-step protocol.

The recipe is meant to predict sweeps it has not seen (another step amplitude of the same cell),
not to draw the ones it was fitted to. It uses the whole step of every training sweep and
fits what a step protocol measures:

1. **Each sweep** (:func:`step_sweep`): the step (onset, offset, amplitude above the holding
   current) is read from the recorded current; the resting level is the median membrane
   potential before the step; action potentials are found by their shape
   (:func:`~ctsnn.fitting.metrics.detect_action_potentials`), not by a fixed level. Every model
   potential is taken relative to the sweep's own resting level and the current relative to
   its holding current, so a baseline that drifts between sweeps costs no parameter.
2. **Passive membrane** (:func:`ctsnn.fit`, gradients through the exact propagator, float64):
   ``tau_mem``, ``r`` and the electrode's ``r_series`` from the pre-step baseline and the
   charging after the onset up to 3 ms before the first spike (the first millisecond after the
   onset, the electrode's transient, left out), on every training sweep.
3. **Spiking**: for each candidate model, the parameters below and ``tau_mem`` (within a
   factor ``tau_factor`` = 2 of the passive fit, with ``r = tau_mem / C`` and the capacitance
   ``C`` of the passive fit: the charging right after the onset pins C even where the first
   spike comes too early to separate tau_mem from r, and the rheobase depends on r) by
   differential evolution (``scipy.optimize.differential_evolution``, deterministic seed) on

   .. math::

      L = \frac{1}{K}\sum_k \Big[\Big(\frac{n^{model}_k - n^{data}_k}{c\,\max(n^{data}_k, 5)}\Big)^2
          + \Big(\frac{l^{model}_k - l^{data}_k}{\lambda}\Big)^2
          + \frac{1}{J_k}\sum_{j<J_k}\Big(\frac{\ln(\mathrm{isi}^{model}_{kj}
          / \mathrm{isi}^{data}_{kj})}{\rho}\Big)^2\Big]

   over the K training sweeps: the spike count of the whole step (the f-I curve, scale
   ``c`` = 10%), the first-spike latency ``l`` from the onset (scale ``lambda`` = 3 ms; a
   train without spikes has the step's duration as latency) and the rank-matched inter-spike
   intervals (adaptation, scale ``rho`` = 10%). These features are piecewise constant in the
   parameters (a spike appears or not), so the search is gradient-free; every generation of
   candidates times every sweep is one batched simulation on the compiled event engine (exact,
   in-step spike times). AdEx, which the engine cannot run (it is not linear below threshold),
   is fitted by gradients instead (:func:`_fit_adex`): from the fitted current-adaptation ALIF
   (its limit Delta_T -> 0), Adam on the rank-matched spike times through forward Euler with
   in-step, differentiable spike times (``simulate(method="euler", events="in_step")``); of its
   iterates the one with the lowest ``L`` is kept.
4. **Model choice on a held-out sweep**: each candidate model is fitted again with the training
   sweep of the highest step left out (the end of the f-I curve where a wrong model shows
   first: a linear f-I curve overshoots there) and scored on it with the same ``L``; the model
   with the lowest held-out score is taken, with its fit on all training sweeps; a model whose
   training loss is over ``prune`` (3) times the best one's is no contender (no refit). (With fewer
   than three spiking training sweeps, or ``select="train"``, the lowest training loss decides.)

Candidate models (potentials relative to rest): ``"lif"`` (v_th, v_reset, t_ref), ``"alif_threshold"``
(+ tau_adapt, adapt_jump: the threshold rises by adapt_jump at each spike),
``"alif_current"`` (+ tau_adapt, adapt_jump: a hyperpolarising adaptation of the membrane),
``"mnlif"`` (:class:`~ctsnn.models.MNLIF`: theta_inf, v_reset, a = a_ratio * b, b, theta_jump, tau_w,
w_jump: a threshold that follows the membrane, so a cell may fire at a step's onset and then stop;
no refractory period); the first three are the default; ``"adex"`` (V_T, Delta_T, v_reset, tau_w, a, b and
tau_mem; C = tau_mem / r with the passive stage's capacitance, g_L = 1 / r; v_peak = V_T + 5 Delta_T).

:func:`evaluate` reports, per sweep: spike count error, first-spike latency error, ISI error
(:func:`~ctsnn.fitting.metrics.isi_error`), the coincidence factor Gamma(4 ms) and the
subthreshold explained variance (samples more than 1 ms before and 5 ms after every recorded
and model spike); :func:`summarize` gives their means over sweeps with percentile bootstrap
confidence intervals; :func:`leave_one_out` runs the whole recipe once per held-out sweep.
See docs/fitting.md, "Step protocols".
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
import torch

from ..io import Recording
from ..models import ALIF, LIF, MNLIF, AdEx
from ..errors import SimulationError
from ..simulate import simulate
from .core import FitResult
from .metrics import bootstrap_ci, detect_action_potentials, explained_variance, gamma_factor, isi_error

__all__ = ["Recipe", "StepSweep", "ProtocolFit", "step_sweep", "fit_protocol", "evaluate", "summarize",
           "leave_one_out", "MODEL_KINDS"]

MODEL_KINDS = ("lif", "alif_threshold", "alif_current", "mnlif", "adex")


@dataclass(frozen=True)
class Recipe:
    """The choices of :func:`fit_protocol` (the defaults are the documented recipe).

    models : candidate models, from ``MODEL_KINDS`` (default: LIF and both ALIFs; ``"mnlif"`` and
        ``"adex"`` are offered); one model skips the selection.
    count_scale, latency_scale, isi_scale : the scales of the loss terms (relative count error,
        s, relative ISI error): an error of one scale costs 1.
    isi_weight : weight of the ISI term.
    prominence, max_width, min_width : action potential detection (V, s, s; see
        :func:`~ctsnn.fitting.metrics.detect_action_potentials`).
    pre : s of baseline before the onset kept in the simulated window.
    artefact : s after the onset left out of the passive fit (the electrode's transient).
    passive_max : the longest charging window used by the passive fit (s after the onset).
    tau_factor : above 1, the spiking stage searches tau_mem too, within this factor of the
        passive fit, with r = tau_mem / C and the capacitance C from the passive fit (which the
        charging after the onset pins even where it is too short to separate tau_mem from r).
    popsize, maxiter, seed : differential evolution (``popsize`` times the number of
        parameters candidates per generation, at most ``maxiter`` generations).
    adex_iter, adex_lr : AdEx's gradient stage (Adam steps and step size in log coordinates).
    prune : a model whose training loss exceeds ``prune`` times the best model's is not
        considered for the held-out choice (it cannot win it; this saves its refit).
    select : ``"holdout"`` (the model choice on a left-out training sweep, described in the
        module docstring) or ``"train"`` (the lowest training loss; cheaper, favours the
        model with more parameters).
    """

    models: tuple[str, ...] = ("lif", "alif_threshold", "alif_current")
    count_scale: float = 0.1
    latency_scale: float = 3e-3
    isi_scale: float = 0.1
    isi_weight: float = 1.0
    prominence: float = 0.03
    max_width: float = 3e-3
    min_width: float = 0.15e-3
    pre: float = 0.02
    artefact: float = 1e-3
    passive_max: float = 0.1
    tau_factor: float = 2.0
    popsize: int = 12
    maxiter: int = 100
    adex_iter: int = 40
    adex_lr: float = 0.03
    prune: float = 3.0
    seed: int = 0
    select: str = "holdout"

    def __post_init__(self):
        models = tuple(self.models) if not isinstance(self.models, str) else (self.models,)
        object.__setattr__(self, "models", models)
        if not models:
            raise ValueError("Recipe.models is empty: name at least one of " + ", ".join(MODEL_KINDS))
        for m in models:
            if m not in MODEL_KINDS:
                raise ValueError(f"Recipe.models: unknown model {m!r}; choose from {MODEL_KINDS}")
        for name in ("count_scale", "latency_scale", "isi_scale", "prominence", "max_width", "min_width", "passive_max",
                     "adex_lr"):
            x = getattr(self, name)
            if not (isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0):
                raise ValueError(f"Recipe.{name} must be a number > 0, got {x!r}")
        for name in ("isi_weight", "pre", "artefact"):
            x = getattr(self, name)
            if not (isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0):
                raise ValueError(f"Recipe.{name} must be a number >= 0, got {x!r}")
        if not (isinstance(self.tau_factor, (int, float)) and not isinstance(self.tau_factor, bool)
                and 1 <= self.tau_factor < math.inf):
            raise ValueError(f"Recipe.tau_factor must be a number >= 1, got {self.tau_factor!r}")
        if not (isinstance(self.prune, (int, float)) and not isinstance(self.prune, bool) and self.prune >= 1):
            raise ValueError(f"Recipe.prune must be a number >= 1, got {self.prune!r}")
        for name in ("popsize", "maxiter", "adex_iter"):
            x = getattr(self, name)
            if isinstance(x, bool) or not isinstance(x, int) or x < 1:
                raise ValueError(f"Recipe.{name} must be an integer >= 1, got {x!r}")
        if self.select not in ("holdout", "train"):
            raise ValueError(f"Recipe.select must be 'holdout' or 'train', got {self.select!r}")


RECIPES = {"step": Recipe()}


@dataclass
class StepSweep:
    """One sweep of a step protocol, cut to ``pre`` s before the onset up to the offset.

    ``t`` (s, from the onset: negative before it), ``v`` (V, relative to ``baseline``), ``i``
    (A, relative to ``holding``) on that window; ``onset``/``offset`` on the recording's clock;
    ``amplitude`` the step above the holding current; ``spikes`` the action potentials in
    ``[onset, offset)``, s from the onset.
    """

    name: str
    dt: float
    onset: float
    offset: float
    amplitude: float
    holding: float
    baseline: float
    spikes: np.ndarray
    t: np.ndarray
    v: np.ndarray
    i: np.ndarray

    @property
    def duration(self) -> float:
        return self.offset - self.onset

    @property
    def latency(self) -> float:
        """First-spike latency (s from the onset); the step's duration when there is no spike."""
        return float(self.spikes[0]) if self.spikes.size else self.duration


def _find_step(rec: Recording) -> tuple[int, int, float, float] | None:
    """(onset index, offset index, amplitude, holding) of the largest current step in ``rec``,
    or None when the current has no step standing out of its noise."""
    from scipy.ndimage import median_filter

    i = median_filter(rec.current, size=5, mode="nearest")
    n = i.size
    head = i[: max(5, n // 40)]
    hold = float(np.median(head))
    noise = float(np.median(np.abs(head - hold))) * 1.4826
    dev = i - hold
    big = float(np.quantile(np.abs(dev), 0.99))
    if not big > max(5 * noise, 1e-13):
        return None
    sign = np.sign(dev[np.argmax(np.abs(dev))])
    on = np.flatnonzero(sign * dev > 0.5 * big)
    if on.size < 3:
        return None
    i0, i1 = int(on[0]), int(on[-1]) + 1
    amp = float(np.median(i[i0:i1])) - hold
    return i0, i1, amp, hold


def step_sweep(rec: Recording, *, recipe: Recipe | None = None, step: tuple[float, float] | None = None) -> StepSweep:
    """The step, resting level and action potentials of ``rec`` (see :class:`StepSweep`).

    ``step=(onset, offset)`` (s, the recording's clock) gives the step's times where the
    current has none to read (a zero-amplitude sweep); otherwise they are read from the current.
    """
    if not isinstance(rec, Recording):
        raise ValueError(f"step_sweep needs a ctsnn.Recording, got {type(rec).__name__}")
    recipe = recipe or Recipe()
    dt = rec.dt
    found = _find_step(rec)
    if found is not None:
        i0, i1, amp, hold = found
    elif step is not None:
        i0 = int(np.searchsorted(rec.t, float(step[0])))
        i1 = int(np.searchsorted(rec.t, float(step[1])))
        hold = float(np.median(rec.current[: max(1, i0)]))
        amp = float(np.median(rec.current[i0:i1])) - hold if i1 > i0 else 0.0
    else:
        raise ValueError(f"recording {rec.name!r}: no current step found (the current stays within its "
                         f"noise); give step=(onset, offset) or leave the sweep out")
    if i0 < 2 or i1 <= i0 + 2:
        raise ValueError(f"recording {rec.name!r}: the step starts at sample {i0} and ends at {i1}: a step "
                         f"protocol needs a baseline before the step and a step of several samples")
    v = rec.v if rec.mask is None else np.where(rec.mask, rec.v, np.nan)
    baseline = float(np.nanmedian(v[:i0]))
    onset, offset = float(rec.t[i0]), float(rec.t[i1 - 1] + dt)
    spikes = detect_action_potentials(rec.t, np.nan_to_num(v, nan=baseline), recipe.prominence, recipe.max_width,
                                      recipe.min_width)
    spikes = spikes[(spikes >= onset) & (spikes < offset)] - onset
    j0 = max(0, i0 - int(round(recipe.pre / dt)))
    j1 = min(len(rec), i1 + 1)
    return StepSweep(name=rec.name, dt=dt, onset=onset, offset=offset, amplitude=amp, holding=hold,
                     baseline=baseline, spikes=spikes, t=rec.t[j0:j1] - onset, v=v[j0:j1] - baseline,
                     i=rec.current[j0:j1] - hold)


def _sweeps(recordings, recipe: Recipe) -> list[StepSweep]:
    if isinstance(recordings, Recording):
        recordings = [recordings]
    recs = list(recordings)
    if not recs:
        raise ValueError("no recordings given")
    for r in recs:
        if not isinstance(r, Recording):
            raise ValueError(f"recordings must be ctsnn.Recording objects, got {type(r).__name__}")
    steps = {}
    for k, r in enumerate(recs):
        f = _find_step(r)
        if f is not None:
            steps[k] = (r.t[f[0]], r.t[f[1] - 1] + r.dt, abs(f[2]))
    if not steps:
        raise ValueError("none of the recordings has a current step: fit_protocol is for step protocols")
    ref = max(steps.values(), key=lambda s: s[2])[:2]
    return [step_sweep(r, recipe=recipe, step=ref) for r in recs]


# ---------------------------------------------------------------------------------------------
# models and their search spaces (potentials relative to rest, current relative to holding)

def _space(kind: str, passive: dict, sweeps: Sequence[StepSweep], tau_factor: float = 1.0
           ) -> list[tuple[str, str, float, float]]:
    """(name, scale, lo, hi) of each searched parameter; scale "lin" or "log"."""
    r = passive["r"] * tau_factor
    drive = max([abs(s.amplitude) for s in sweeps] + [1e-12]) * r
    v_hi = float(np.clip(1.2 * drive, 5e-3, 0.1))
    lif = [("v_th", "lin", 1e-3, v_hi), ("gap", "log", 1e-3, 0.04), ("t_ref", "lin", 0.5e-3, 5e-3)]
    if tau_factor > 1:     # tau_mem searched too, the capacitance tau_mem / r kept from the passive stage
        tau = passive["tau_mem"]
        lif = [("tau_mem", "log", tau / tau_factor, tau * tau_factor)] + lif
    adapt = [("tau_adapt", "log", 10e-3, 2.0), ("adapt_jump", "log", 0.1e-3, 20e-3)]
    if kind == "lif":
        return lif
    if kind in ("alif_threshold", "alif_current"):
        return lif + adapt
    if kind == "mnlif":                  # threshold theta_inf (as v_th), a = a_ratio * b, no t_ref
        return lif[:-2] + [("gap", "log", 1e-3, 0.04), ("a_ratio", "lin", 0.0, 3.0), ("b", "log", 1.0, 1000.0),
                           ("theta_jump", "log", 0.1e-3, 20e-3), ("tau_w", "log", 10e-3, 2.0),
                           ("w_jump", "log", 0.01e-3, 20e-3)]
    raise ValueError(f"no search space for {kind!r} (AdEx is fitted by gradients from an ALIF, see _fit_adex)")


def _from_unit(space, x: np.ndarray) -> dict[str, np.ndarray]:
    """DE coordinates (columns of ``x`` in [0, 1]) -> parameter arrays."""
    out = {}
    for j, (name, scale, lo, hi) in enumerate(space):
        u = np.clip(x[:, j], 0.0, 1.0)
        out[name] = np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo))) if scale == "log" else lo + u * (hi - lo)
    return out


def _build(kind: str, passive: dict, p: dict[str, np.ndarray], n: int):
    """The model of ``kind`` with per-neuron parameter arrays ``p`` (length n; tensors keep their
    gradients)."""
    tt = lambda a: a if torch.is_tensor(a) else torch.as_tensor(np.asarray(a, dtype=np.float64))  # noqa: E731
    tau, r = passive["tau_mem"], passive["r"]
    if "tau_mem" in p:                 # searched: the passive stage's capacitance is kept
        cap = tau / r
        tau = tt(p["tau_mem"])
        r = tau / cap
    if kind == "adex":
        vt = tt(p["V_T"])
        dT = tt(p["Delta_T"])
        return AdEx(C=tau / r, g_L=1.0 / r, E_L=0.0, V_T=vt, Delta_T=dT, tau_w=tt(p["tau_w"]), a=tt(p["a"]),
                    b=tt(p["b"]), v_reset=vt - tt(p["gap"]), v_peak=vt + 5 * dT, n=n, dtype=torch.float64)
    vth = tt(p["v_th"])
    if kind == "mnlif":
        return MNLIF(tau_mem=tau, r=r, v_leak=0.0, theta_inf=vth, v_reset=vth - tt(p["gap"]), a=tt(p["a_ratio"]) * tt(p["b"]),
                     b=tt(p["b"]), theta_jump=tt(p["theta_jump"]), tau_w=tt(p["tau_w"]), w_jump=tt(p["w_jump"]), n=n,
                     dtype=torch.float64)
    common = dict(tau_mem=tau, r=r, v_leak=0.0, v_th=vth, v_reset=vth - tt(p["gap"]), t_ref=tt(p["t_ref"]),
                  n=n, dtype=torch.float64)
    if kind == "lif":
        return LIF(**common)
    return ALIF(tau_adapt=tt(p["tau_adapt"]), adapt_jump=tt(p["adapt_jump"]),
                adaptation="threshold" if kind == "alif_threshold" else "current", **common)


def _method(kind: str) -> dict:
    """How each candidate is simulated: the exact propagator (on the compiled engine) for the
    models linear below threshold, forward Euler with in-step event times for AdEx (the
    discretisation its gradient fit differentiates)."""
    return {"method": "euler", "events": "in_step"} if kind == "adex" else {"method": "exact"}


def _simulate(kind: str, passive: dict, p: dict[str, np.ndarray], sweeps: Sequence[StepSweep],
              record_v: bool = False):
    """Simulate every parameter set of ``p`` (P of them) on every sweep (K) in one batch.

    Returns ``spikes[p][k]`` (s from the onset, inside the step) and, with ``record_v``, the
    membranes ``v[p][k]`` on each sweep's window (relative to rest). Parameters given as tensors
    that require gradients give spike times as tensors with their gradients (AdEx's fit)."""
    grad = any(torch.is_tensor(a) and a.requires_grad for a in p.values())
    P = len(next(iter(p.values())))
    K = len(sweeps)
    spikes: list[list[np.ndarray]] = [[np.zeros(0)] * K for _ in range(P)]
    vs: list[list[np.ndarray | None]] = [[None] * K for _ in range(P)]
    groups: dict[float, list[int]] = {}
    for k, s in enumerate(sweeps):
        groups.setdefault(round(s.dt, 12), []).append(k)
    for _dt, ks in groups.items():
        dt = sweeps[ks[0]].dt
        T = max(sweeps[k].t.size for k in ks)
        one = np.zeros((T - 1, len(ks)))
        for c, k in enumerate(ks):
            i = sweeps[k].i[:-1]
            one[: i.size, c] = i
        cur = np.tile(one, (1, P))            # neuron p * K + c: candidate p on sweep c
        rep = {name: a.repeat_interleave(len(ks)) if torch.is_tensor(a)
               else np.repeat(np.asarray(a, dtype=np.float64), len(ks)) for name, a in p.items()}
        model = _build(kind, passive, rep, P * len(ks))
        with torch.set_grad_enabled(grad):
            tr = simulate(model, torch.as_tensor(cur), t_end=(T - 1) * dt, dt=dt, initial={"v": 0.0},
                          record=("v",) if record_v else (), dtype=torch.float64, progress=False,
                          max_events_per_step=50, **_method(kind))
        times = tr.spike_times if grad else tr.spike_times.numpy()
        neurons = tr.spike_neurons.numpy()
        order = np.argsort(neurons, kind="stable")
        counts = np.bincount(neurons, minlength=P * len(ks))
        split = [times[torch.as_tensor(ix)] if grad else times[ix] for ix in np.split(order, np.cumsum(counts)[:-1])]
        V = tr["v"].numpy() if record_v else None
        for j in range(P * len(ks)):
            q, c = divmod(j, len(ks))
            s = sweeps[ks[c]]
            t0 = -s.t[0]                       # the onset, on the simulation's clock
            x = split[j] - t0
            xd = x.detach().numpy() if grad else x
            inside = (xd >= 0) & (xd < s.duration)
            spikes[q][ks[c]] = x[torch.as_tensor(inside)] if grad else x[inside]
            if V is not None:
                vs[q][ks[c]] = V[: s.t.size, j]
    return (spikes, vs) if record_v else spikes


def _sweep_loss(model_spikes: np.ndarray, s: StepSweep, recipe: Recipe) -> float:
    nd, nm = s.spikes.size, model_spikes.size
    count = ((nm - nd) / (recipe.count_scale * max(nd, 5))) ** 2
    lat_m = float(model_spikes[0]) if nm else s.duration
    lat = ((lat_m - s.latency) / recipe.latency_scale) ** 2
    isi = 0.0
    a, b = np.diff(model_spikes), np.diff(s.spikes)
    k = min(a.size, b.size)
    if k:
        isi = float(np.mean((np.log(np.maximum(a[:k], 1e-6) / b[:k]) / recipe.isi_scale) ** 2))
    return float(count + lat + recipe.isi_weight * isi)


def _loss(spikes_k: Sequence[np.ndarray], sweeps: Sequence[StepSweep], recipe: Recipe) -> float:
    return float(np.mean([_sweep_loss(m, s, recipe) for m, s in zip(spikes_k, sweeps)]))


# ---------------------------------------------------------------------------------------------
# stages

def _passive(sweeps: Sequence[StepSweep], recipe: Recipe) -> tuple[dict, Any]:
    """Stage 2 of the recipe: tau_mem, r, r_series by ``ctsnn.fit`` (membrane MSE)."""
    from .core import fit

    windows, r_est = [], []
    ends = [min(s.spikes[0] - 3e-3 if s.spikes.size else s.duration, recipe.passive_max) for s in sweeps]
    # sweeps that charge for at least 5 ms past the artefact before their first spike; where none
    # does, every sweep with any subthreshold stretch (tau is then poorly determined)
    enough = recipe.artefact + 5e-3
    least = enough if any(e >= enough for e in ends) else 0.0
    for s, end in zip(sweeps, ends):
        if end < max(least, recipe.artefact + 4 * s.dt):
            continue
        keep = s.t <= end
        rec = Recording(s.t[keep], s.v[keep], s.i[keep], name=s.name)
        windows.append(rec.exclude(0.0, recipe.artefact) if recipe.artefact > 0 else rec)
        tail = (s.t > end - 2e-3) & keep
        if abs(s.amplitude) > 0:
            r_est.append(float(np.nanmean(s.v[tail])) / s.amplitude)
    if not windows:
        raise ValueError("no training sweep has a subthreshold stretch after its step onset (every one spikes "
                         "within a few ms): the passive membrane cannot be fitted; add a subthreshold sweep")
    r0 = float(np.median(r_est)) if r_est else 1e8
    r0 = r0 if math.isfinite(r0) and r0 > 1e6 else 1e8
    start = LIF(tau_mem=20e-3, r=r0, v_leak=0.0, v_th=10.0, v_reset=0.0, dtype=torch.float64)
    res = fit(start, windows, params=("tau_mem", "r", "r_series"), max_iter=60, tol=1e-9, stderr=True)
    vals = {k: res.values[k] for k in ("tau_mem", "r", "r_series")}
    return vals, res


def _fit_kind(kind: str, passive: dict, sweeps: Sequence[StepSweep], recipe: Recipe) -> dict:
    """Stage 3 for one model: differential evolution over the model's space."""
    from scipy.optimize import differential_evolution

    space = _space(kind, passive, sweeps, recipe.tau_factor)
    n_eval = [0]

    def f(x):                      # x: [n_params, S] (scipy's vectorized convention)
        p = _from_unit(space, np.atleast_2d(x.T))
        n_eval[0] += p[space[0][0]].size
        try:
            spk = _simulate(kind, passive, p, sweeps)
        except SimulationError:    # a runaway event loop somewhere in the batch: one at a time
            out = []
            for j in range(p[space[0][0]].size):
                one = {k: v[j:j + 1] for k, v in p.items()}
                try:
                    out.append(_loss(_simulate(kind, passive, one, sweeps)[0], sweeps, recipe))
                except SimulationError:
                    out.append(1e6)
            return np.asarray(out)
        return np.asarray([_loss(s, sweeps, recipe) for s in spk])

    t0 = time.perf_counter()
    sol = differential_evolution(f, [(0.0, 1.0)] * len(space), popsize=recipe.popsize, maxiter=recipe.maxiter,
                                 seed=recipe.seed, init="sobol", polish=False, vectorized=True,
                                 updating="deferred", tol=1e-3, atol=1e-3)
    best = {k: float(v[0]) for k, v in _from_unit(space, sol.x[None, :]).items()}
    return {"kind": kind, "params": best, "loss": float(sol.fun), "n_eval": n_eval[0], "generations": int(sol.nit),
            "wall_time_s": time.perf_counter() - t0, "message": str(sol.message)}


def _adex_start(passive: dict, alif: dict, delta_t: float = 0.2e-3) -> dict:
    """AdEx parameters (relative to rest) at a fitted ALIF with current adaptation, of which the
    AdEx is the limit Delta_T -> 0 with a = 0: the same membrane (tau_mem, and C = tau_mem / r
    from the passive stage), the same rheobase (the AdEx's is ``V_T - Delta_T`` in units of
    r I, so V_T = v_th + Delta_T), the same reset gap below v_th, ``w = b / r`` (tau_w =
    tau_adapt, jump adapt_jump / r), a sharp spike initiation (``delta_t``) and no subthreshold
    adaptation (a = 0). The ALIF's refractory period has no AdEx counterpart and is dropped."""
    tau = alif.get("tau_mem", passive["tau_mem"])
    r = tau * passive["r"] / passive["tau_mem"]
    out = {"V_T": alif["v_th"] + delta_t, "Delta_T": delta_t, "gap": alif["gap"] + delta_t,
           "tau_w": alif["tau_adapt"], "a": 0.0, "b": max(alif["adapt_jump"] / r, 1e-15)}
    if "tau_mem" in alif:
        out["tau_mem"] = tau
    return out


def _fit_adex(passive: dict, sweeps: Sequence[StepSweep], recipe: Recipe, alif: dict) -> dict:
    r"""Stage 3 for AdEx: gradients through forward Euler with in-step spike times.

    From :func:`_adex_start` (the fitted current-adaptation ALIF), Adam (``recipe.adex_lr``,
    ``recipe.adex_iter`` steps) on the rank-matched spike times of every training sweep,
    :math:`\frac{1}{K}\sum_k \sum_j (t^{model}_{kj} - t^{data}_{kj})^2 / (\max(n^{data}_k, 1)
    \lambda^2)` (the shorter train padded with the step's end; :func:`~ctsnn.fitting.metrics.matched_spike_times`),
    whose gradient flows through the spike times (implicit function theorem on Euler's dense
    output) and the membrane between them. Positive parameters move in log coordinates, ``a`` in
    units of g_L. The result is the iterate with the lowest recipe loss ``L`` (the one every
    candidate is judged by), the start included."""
    from .metrics import matched_spike_times

    t0 = time.perf_counter()
    x0 = _adex_start(passive, alif)
    names = list(x0)
    g_l = passive["tau_mem"] / (x0.get("tau_mem", passive["tau_mem"]) * passive["r"])
    z = torch.zeros(len(names), dtype=torch.float64, requires_grad=True)

    def natural(zz):
        return {k: (x0[k] + zz[j] * g_l if k == "a" else x0[k] * torch.exp(zz[j])).reshape(1)
                for j, k in enumerate(names)}

    opt = torch.optim.Adam([z], lr=recipe.adex_lr)
    data = [torch.as_tensor(sw.spikes, dtype=torch.float64) for sw in sweeps]
    best_loss, best, best_z = math.inf, {k: float(v) for k, v in x0.items()}, torch.zeros(len(names), dtype=torch.float64)
    n_eval, n_fail, history = 0, 0, []
    for _ in range(recipe.adex_iter + 1):
        p = natural(z)
        try:
            spk = _simulate("adex", passive, p, sweeps)[0]
        except SimulationError:          # a runaway spike loop: back to the best point, smaller steps
            n_fail += 1
            with torch.no_grad():
                z.copy_(best_z)
            for g in opt.param_groups:
                g["lr"] *= 0.5
            continue
        n_eval += 1
        score = _loss([x.detach().numpy() for x in spk], sweeps, recipe)
        history.append(score)
        if score < best_loss:
            best_loss, best, best_z = score, {k: float(v.detach()) for k, v in p.items()}, z.detach().clone()
        dist = sum(matched_spike_times(m, d, sw.duration) / (max(d.numel(), 1) * recipe.latency_scale ** 2)
                   for m, d, sw in zip(spk, data, sweeps)) / len(sweeps)
        if not (torch.is_tensor(dist) and dist.requires_grad):
            break                        # no spike anywhere: nothing to move
        opt.zero_grad()
        dist.backward()
        if not bool(torch.isfinite(z.grad).all()):
            break
        opt.step()
    return {"kind": "adex", "params": best, "loss": float(best_loss), "n_eval": n_eval,
            "generations": len(history), "wall_time_s": time.perf_counter() - t0, "start": "alif_current",
            "start_loss": history[0] if history else math.nan,
            "message": f"Adam through Euler (in-step events): {len(history)} evaluations, recipe loss "
                       f"{history[0] if history else math.nan:.4g} at the ALIF start, {best_loss:.4g} at the best"
                       + (f"; {n_fail} runaway step(s) stepped back" if n_fail else "")}


def _fit_kinds(kinds: Sequence[str], passive: dict, sweeps: Sequence[StepSweep], recipe: Recipe) -> dict:
    """Stage 3 for the models ``kinds``; AdEx starts from the current-adaptation ALIF (fitted here
    for it when that is not a candidate itself)."""
    out: dict[str, dict] = {}
    for k in sorted(kinds, key=lambda k: k == "adex"):
        if k == "adex":
            alif = out.get("alif_current") or _fit_kind("alif_current", passive, sweeps, recipe)
            out[k] = _fit_adex(passive, sweeps, recipe, alif["params"])
        else:
            out[k] = _fit_kind(k, passive, sweeps, recipe)
    return {k: out[k] for k in kinds}


# ---------------------------------------------------------------------------------------------
# the result

@dataclass
class ProtocolFit:
    """What :func:`fit_protocol` found.

    ``kind``: the chosen model; ``params``: its fitted parameters (potentials relative to rest,
    ``gap`` = threshold minus reset); ``passive``: tau_mem, r, r_series; ``values``: all of
    them in SI with the potentials made absolute by the mean resting level of the training
    sweeps (``v_rest``); ``candidates``: every model's fit (training loss, held-out scores);
    ``train``: the per-sweep report on the training sweeps (:func:`evaluate`).
    """

    kind: str
    params: dict[str, float]
    passive: dict[str, float]
    v_rest: float
    candidates: dict[str, dict]
    selection: dict[str, float]
    recipe: Recipe
    train: list[dict] = field(default_factory=list)
    wall_time_s: float = 0.0
    passive_fit: Any = None
    sweeps: list = field(default_factory=list)
    recordings: list = field(default_factory=list)
    # what fit_many's table reads
    loss_kind: str = "protocol"
    success: bool = True
    message: str = ""

    @property
    def loss(self) -> float:
        return float(self.candidates[self.kind]["loss"])

    @property
    def rmse(self) -> float:
        return float(self.passive_fit.rmse) if self.passive_fit is not None else float("nan")

    @property
    def values(self) -> dict[str, float]:
        out = {"tau_mem": self.passive["tau_mem"], "r": self.passive["r"], "r_series": self.passive["r_series"],
               "v_rest": self.v_rest}
        for k, v in self.params.items():
            if k in ("v_th", "V_T"):
                out[k] = v + self.v_rest
            elif k != "gap":
                out[k] = v
        if "tau_mem" in self.params:
            out["r"] = self.params["tau_mem"] * self.passive["r"] / self.passive["tau_mem"]
        base = self.params.get("v_th", self.params.get("V_T"))
        out["v_reset"] = base - self.params["gap"] + self.v_rest
        if self.kind == "mnlif":        # the model's own names: theta_inf, a (1/s)
            out["theta_inf"] = out.pop("v_th")
            out["a"] = out.pop("a_ratio") * self.params["b"]
        return out

    @property
    def stderr(self) -> dict[str, float]:
        se = {k: float("nan") for k in self.values}
        if self.passive_fit is not None:
            se.update({k: self.passive_fit.stderr.get(k, float("nan")) for k in self.passive})
        return se

    @property
    def traces(self) -> list:
        return []

    def model(self, n: int = 1):
        """The fitted model with potentials relative to rest (v_leak or E_L = 0)."""
        return _build(self.kind, self.passive, {k: np.full(n, v) for k, v in self.params.items()}, n)

    def predict(self, recording: Recording) -> dict:
        """Simulate ``recording``'s step (its own resting level and holding current): spike times
        (s from the onset), the model membrane (V, absolute, on the sweep's window, plus
        ``r_series`` times the current as the electrode records it) and the sweep's features."""
        s = _sweeps([recording], self.recipe)[0] if not isinstance(recording, StepSweep) else recording
        (spk,), (vv,) = _simulate(self.kind, self.passive, {k: np.array([v]) for k, v in self.params.items()},
                                  [s], record_v=True)
        v = vv[0] + self.passive["r_series"] * s.i + s.baseline
        return {"spikes": spk[0], "v": v, "sweep": s}

    def evaluate(self, recordings) -> list[dict]:
        """The per-sweep report of :func:`evaluate` for this fit."""
        return evaluate(self, recordings)

    def to_dict(self) -> dict[str, Any]:
        units = {"tau_mem": "s", "r": "ohm", "r_series": "ohm", "v_rest": "V", "v_th": "V", "v_reset": "V",
                 "t_ref": "s", "tau_adapt": "s", "adapt_jump": "V", "V_T": "V", "Delta_T": "V", "tau_w": "s",
                 "a": "S", "b": "A", "theta_inf": "V", "theta_jump": "V", "w_jump": "V"}
        if self.kind == "mnlif":
            units.update(a="1/s", b="1/s")
        d = {"kind": self.kind, "values": self.values, "units": {k: units.get(k, "") for k in self.values},
             "params_relative_to_rest": self.params, "passive": self.passive, "v_rest": self.v_rest,
             "selection": self.selection, "candidates": self.candidates, "train": self.train,
             "recipe": self.recipe.__dict__, "wall_time_s": self.wall_time_s, "success": self.success,
             "message": self.message, "loss": self.loss, "rmse": self.rmse, "loss_kind": self.loss_kind,
             "recordings": [s.name for s in self.sweeps],
             "spike_counts": {"model": [r["n_model"] for r in self.train],
                              "recorded": [r["n_data"] for r in self.train]}}
        return _finite(json.loads(json.dumps(d, default=_jsonable)))

    to_json = FitResult.to_json   # the same JSON writer as a single fit's (over to_dict)

    def summary(self) -> str:
        lines = [f"fit_protocol: {self.kind} chosen from {', '.join(self.candidates)} on {len(self.sweeps)} "
                 f"sweep(s), {self.wall_time_s:.1f} s"]
        for k, sc in self.selection.items():
            c = self.candidates[k]
            lines.append(f"  {k:15s} training loss {c['loss']:8.3f}   held-out score {sc:8.3f}"
                         + ("   <- chosen" if k == self.kind else ""))
        for k, v in self.values.items():
            lines.append(f"  {k} = {v:.5g}")
        return "\n".join(lines)


def _finite(x):
    """``x`` with every non-finite float as None (strict JSON has no inf or NaN)."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _jsonable(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def fit_protocol(recordings, recipe: Recipe | None = None, *, progress: bool = False) -> ProtocolFit:
    """Fit a cell from the sweeps of a current-step protocol with the recipe of this module.

    Parameters
    ----------
    recordings : the training sweeps (``ctsnn.Recording``), all of one cell; each has a current
        step on a baseline (a zero-amplitude sweep takes the step times of the largest one).
    recipe : a :class:`Recipe` (default: LIF and both ALIFs, model choice on held-out sweeps).
    progress : one line per stage on stderr.

    Returns a :class:`ProtocolFit` (``predict``, ``evaluate``, ``values``, ``summary``).
    """
    import sys

    recipe = recipe or Recipe()
    if not isinstance(recipe, Recipe):
        raise ValueError(f"recipe must be a ctsnn.fitting.Recipe, got {type(recipe).__name__}")
    t0 = time.perf_counter()
    recordings = [recordings] if isinstance(recordings, Recording) else list(recordings)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sweeps = _sweeps(recordings, recipe)
        passive, pres = _passive(sweeps, recipe)
        say = (lambda m: print(f"fit_protocol: {m} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr,
                               flush=True)) if progress else (lambda m: None)
        say(f"passive tau_mem {passive['tau_mem'] * 1e3:.3g} ms, r {passive['r'] / 1e6:.4g} MOhm")
        candidates = _fit_kinds(recipe.models, passive, sweeps, recipe)
        for k, c in candidates.items():
            say(f"{k}: training loss {c['loss']:.4g}")
        selection = {k: c["loss"] for k, c in candidates.items()}
        spiking = [j for j, s in enumerate(sweeps) if s.spikes.size]
        if recipe.select == "holdout" and len(recipe.models) > 1 and len(spiking) >= 3:
            held = [max(spiking, key=lambda j: sweeps[j].amplitude)]
            best = min(c["loss"] for c in candidates.values())
            contenders = [k for k in recipe.models if candidates[k]["loss"] <= recipe.prune * best + 1e-12]
            selection = {k: (0.0 if k in contenders else math.inf) for k in recipe.models}
            for j in held:
                rest = [s for i, s in enumerate(sweeps) if i != j]
                for k, c in _fit_kinds(contenders, passive, rest, recipe).items():
                    spk = _simulate(k, passive, {q: np.array([v]) for q, v in c["params"].items()}, [sweeps[j]])[0]
                    selection[k] += _loss(spk, [sweeps[j]], recipe)
            say("held-out scores " + ", ".join(f"{k} {v:.4g}" for k, v in selection.items()))
        kind = min(selection, key=lambda k: (selection[k], recipe.models.index(k)))
        res = ProtocolFit(kind=kind, params=candidates[kind]["params"], passive=passive,
                          v_rest=float(np.mean([s.baseline for s in sweeps])), candidates=candidates,
                          selection=selection, recipe=recipe, passive_fit=pres, sweeps=sweeps,
                          recordings=recordings)
        res.train = evaluate(res, sweeps)
        res.message = (f"{kind} chosen ({'held-out' if recipe.select == 'holdout' else 'training'} score "
                       f"{selection[kind]:.4g})")
        res.wall_time_s = time.perf_counter() - t0
        return res
    finally:
        torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------------
# reports

def evaluate(result: ProtocolFit, recordings) -> list[dict]:
    """Per sweep: ``n_data``, ``n_model``, ``count_error`` ((model - data) / data; NaN for a
    sweep without recorded spikes, whose ``count_diff`` is still given), ``latency_error`` (s,
    model - data, first spike from the onset; NaN unless both fire), ``isi_error``,
    ``gamma`` (Gamma at 4 ms over the step) and ``ev`` (subthreshold explained variance)."""
    if isinstance(recordings, (Recording, StepSweep)):
        recordings = [recordings]
    recordings = list(recordings)
    if all(isinstance(r, StepSweep) for r in recordings):
        sweeps = recordings
    else:
        sweeps = _sweeps(recordings, result.recipe)
    spk, vs = _simulate(result.kind, result.passive, {k: np.array([v]) for k, v in result.params.items()},
                        sweeps, record_v=True)
    rows = []
    for k, s in enumerate(sweeps):
        m = spk[0][k]
        nd, nm = s.spikes.size, m.size
        v_model = vs[0][k] + result.passive["r_series"] * s.i
        keep = np.ones(s.t.size, dtype=bool)
        for x in np.concatenate([s.spikes, m]):
            keep &= ~((s.t >= x - 1e-3) & (s.t <= x + 5e-3))
        keep &= np.isfinite(s.v)
        rows.append({"sweep": s.name, "amplitude": s.amplitude, "n_data": int(nd), "n_model": int(nm),
                     "count_diff": int(nm - nd), "count_error": (nm - nd) / nd if nd else float("nan"),
                     "latency_error": float(m[0] - s.spikes[0]) if nd and nm else float("nan"),
                     "isi_error": isi_error(m, s.spikes),
                     "gamma": gamma_factor(m, s.spikes, window=4e-3, duration=s.duration) if nd else float("nan"),
                     "ev": explained_variance(v_model[keep], s.v[keep])})
    return rows


def summarize(rows: Sequence[dict], *, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> dict:
    """Means over sweeps with percentile bootstrap CIs: ``{metric: (mean, lo, hi)}`` for
    ``abs_count_error``, ``abs_latency_error`` (s), ``isi_error``, ``gamma``, ``ev``."""
    cols = {"abs_count_error": [abs(r["count_error"]) for r in rows],
            "abs_latency_error": [abs(r["latency_error"]) for r in rows],
            "isi_error": [r["isi_error"] for r in rows], "gamma": [r["gamma"] for r in rows],
            "ev": [r["ev"] for r in rows]}
    out = {}
    for k, x in cols.items():
        x = np.asarray(x, dtype=float)
        x = x[np.isfinite(x)]
        mean = float(x.mean()) if x.size else float("nan")
        out[k] = (mean, *bootstrap_ci(x, level=level, n_boot=n_boot, seed=seed))
    return out


def leave_one_out(recordings, recipe: Recipe | None = None, *, held_out: Sequence[int] | None = None,
                  progress: bool = False) -> list[dict]:
    """Leave-one-sweep-out: for each index in ``held_out`` (default: every sweep with recorded
    spikes during a depolarising step), fit on the other sweeps and evaluate on the one left out. Returns one
    :func:`evaluate` row per held-out sweep, with the chosen model (``kind``), the fit's wall time,
    its report on the training sweeps (``train``), ``values``, ``passive``, every candidate's
    parameters and training loss (``candidates``), the held-out selection scores and every
    candidate's own prediction of the held-out sweep (``by_model``) added."""
    recipe = recipe or Recipe()
    recs = list(recordings)
    sweeps = _sweeps(recs, recipe)
    if held_out is None:
        top = max(abs(s.amplitude) for s in sweeps)
        held_out = [j for j, s in enumerate(sweeps) if s.spikes.size and s.amplitude > 0.01 * top]
    rows = []
    for j in held_out:
        train = [r for i, r in enumerate(recs) if i != j]
        res = fit_protocol(train, recipe, progress=progress)
        row = evaluate(res, [sweeps[j]])[0]
        by_model = {}
        for k, c in res.candidates.items():     # every candidate's prediction of the held-out sweep
            other = evaluate(replace(res, kind=k, params=c["params"]), [sweeps[j]])[0]
            by_model[k] = {q: other[q] for q in ("n_model", "count_error", "latency_error", "isi_error", "gamma")}
        row.update(kind=res.kind, wall_time_s=res.wall_time_s, train=res.train, values=res.values,
                   selection=dict(res.selection), passive=dict(res.passive), by_model=by_model,
                   candidates={k: {"params": c["params"], "loss": c["loss"]} for k, c in res.candidates.items()})
        rows.append(row)
    return rows


def _replace(recipe: Recipe, **kw) -> Recipe:
    return replace(recipe, **kw)
