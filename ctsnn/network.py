"""Networks: populations of one neuron model joined by sparse projections, with Poisson sources.

* :class:`Population` ``(model, n, current, initial)``: ``n`` neurons of ``model`` (scalar or
  per-neuron parameters), a constant injected current per neuron (``current``, held for the whole
  run), start values of chosen states (``initial``, e.g. ``{"v": v0}``; the others start at the
  model's ``init_state``);
* :class:`Projection` ``(pre, post, pre_idx, post_idx, weight, delay, target)``: synapse ``s``
  adds ``weight[s] * value`` to state ``target`` of neuron ``post_idx[s]`` of ``post``,
  ``delay[s]`` seconds after neuron ``pre_idx[s]`` of ``pre`` emits an event of value ``value``
  (its sign times its output scale: 1 for a spike of LIF); dense (all-to-all) and one-to-one
  projections are the same object with other index arrays (:meth:`Projection.all_to_all`,
  :meth:`Projection.one_to_one`);
* :class:`PoissonSource` ``(post, rate, weight, target, seed)``: an independent Poisson train of
  ``rate`` Hz into every neuron of ``post`` (each arrival adds ``weight`` to ``target``), drawn
  from a counter-based stream (splitmix64) so that :meth:`PoissonSource.sample` gives the same
  times as the engine;
* :class:`Network` ``(populations, projections, sources)``: :meth:`Network.run` simulates it on the
  compiled engine (``ctsnn.engine``): exact in-step spike times, each spike delivered after its
  delay through a ring buffer of ``ceil(max_delay / dt) + 2`` slots (every delay must be >= dt,
  so all neurons advance one step in parallel), recording of chosen states of chosen neurons
  every ``record_every`` seconds; the spikes come back as compact arrays.

All times are SI seconds. The populations of one network share the model's state layout and
event structure (``state_names``, ``event_matrix``, ``jump_map``'s J); their parameters may
differ.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from . import validate as _v
from .models.base import NeuronModel

__all__ = ["Population", "Projection", "PoissonSource", "Network", "NetworkResult"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix(state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One splitmix64 draw per stream: (new state, output), uint64 arithmetic modulo 2^64."""
    with np.errstate(over="ignore"):
        s = state + _GOLDEN
        z = (s ^ (s >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return s, z ^ (z >> np.uint64(31))


def _intervals(state: np.ndarray, rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exponential intervals ``-ln(u) / rate`` with ``u = (x >> 11 + 1) 2^-53`` in (0, 1]."""
    s, x = _splitmix(state)
    u = ((x >> np.uint64(11)) + np.uint64(1)).astype(np.float64) * 2.0 ** -53
    return s, -np.log(u) / rate


@dataclass(eq=False)
class Population:
    """``n`` neurons of ``model``; ``current`` a constant injected current (number or ``[n]``);
    ``initial`` the start values of chosen states (``{state name: number or [n] values}``, in the
    model's units; the other states start at the model's ``init_state``)."""

    model: NeuronModel
    n: int | None = None
    current: Any = 0.0
    name: str = ""
    initial: dict | None = None

    def __post_init__(self):
        if not isinstance(self.model, NeuronModel):
            raise ValueError(f"Population: model must be a ctsnn NeuronModel, got {type(self.model).__name__}")
        mn = self.model.n
        n = mn if self.n is None else _v.positive_int("Population: n", self.n)
        if n < 1 or (mn != 1 and n != mn):
            raise ValueError(f"Population: n={self.n!r} but the model has per-neuron parameters for {mn} "
                             f"neurons")
        self.n = n
        cur = _f64(self.current)
        if cur.ndim > 1 or (cur.ndim == 1 and cur.shape[0] not in (1, n)):
            raise ValueError(f"Population: current must be a number or [n={n}] values, got shape {cur.shape}")
        if not np.all(np.isfinite(cur)):
            raise ValueError("Population: current contains NaN or Inf")
        self.current = np.broadcast_to(cur.reshape(-1) if cur.ndim else cur, (n,)).copy()
        init = {}
        if self.initial is not None:
            if not isinstance(self.initial, dict):
                raise ValueError(f"Population: initial must be a dict {{state name: values}}, got "
                                 f"{type(self.initial).__name__}")
            for k, v in self.initial.items():
                if k not in self.model.state_names:
                    raise ValueError(f"Population: initial names {k!r}, which is not a state of "
                                     f"{type(self.model).__name__}; its states are {self.model.state_names}")
                a = _f64(v)
                if a.ndim > 1 or (a.ndim == 1 and a.shape[0] not in (1, n)):
                    raise ValueError(f"Population: initial[{k!r}] must be a number or [n={n}] values, got shape "
                                     f"{a.shape}")
                if not np.all(np.isfinite(a)):
                    raise ValueError(f"Population: initial[{k!r}] contains NaN or Inf")
                init[k] = np.broadcast_to(a.reshape(-1) if a.ndim else a, (n,)).copy()
        self.initial = init


def _target(what: str, target, model) -> str:
    """The state a projection or source jumps: ``target`` (default the model's ``input_state``)."""
    target = target or model.input_state
    if target not in model.state_names:
        raise ValueError(f"{what}: target {target!r} is not a state of {type(model).__name__}; its states are "
                         f"{model.state_names}")
    return target


def _f64(x) -> np.ndarray:
    """``x`` (number, sequence, array or tensor) as a float64 array, never through float32."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().to(torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def _index_array(name: str, x, size: int, what: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"Projection: {name} must be a 1-D array of {what} indices, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
            raise ValueError(f"Projection: {name} must hold integer indices")
    a = a.astype(np.int64)
    if a.size and (a.min() < 0 or a.max() >= size):
        bad = a[(a < 0) | (a >= size)][0]
        raise ValueError(f"Projection: {name} has index {int(bad)} out of range: the {what} population has "
                         f"{size} neurons (valid 0..{size - 1})")
    return a


@dataclass(eq=False)
class Projection:
    """Synapses ``pre_idx[s] -> post_idx[s]`` of weight ``weight[s]`` and delay ``delay[s]`` (s)
    onto state ``target`` of ``post`` (default: the post model's ``input_state``). ``weight`` and
    ``delay`` are numbers or one value per synapse."""

    pre: Population
    post: Population
    pre_idx: Any
    post_idx: Any
    weight: Any = 1.0
    delay: Any = 1e-3
    target: str | None = None

    def __post_init__(self):
        for nm in ("pre", "post"):
            if not isinstance(getattr(self, nm), Population):
                raise ValueError(f"Projection: {nm} must be a Population, got {type(getattr(self, nm)).__name__}")
        self.pre_idx = _index_array("pre_idx", self.pre_idx, self.pre.n, "pre")
        self.post_idx = _index_array("post_idx", self.post_idx, self.post.n, "post")
        m = self.pre_idx.shape[0]
        if self.post_idx.shape[0] != m:
            raise ValueError(f"Projection: pre_idx has {m} entries but post_idx has {self.post_idx.shape[0]}: "
                             f"give one pre and one post index per synapse")
        for nm in ("weight", "delay"):
            try:
                v = _f64(getattr(self, nm))
            except (TypeError, ValueError):
                raise TypeError(f"Projection: {nm} must be a number or one number per synapse (SI units), got "
                                f"{getattr(self, nm)!r}") from None
            if v.ndim > 1 or (v.ndim == 1 and v.shape[0] not in (1, m)):
                raise ValueError(f"Projection: {nm} has {v.shape[0] if v.ndim else 1} entries but there are "
                                 f"{m} synapses (give a number or one value per synapse)")
            if not np.all(np.isfinite(v)):
                bad = v[~np.isfinite(v)].reshape(-1)[0]
                raise ValueError(f"Projection: {nm} must be finite, got {float(bad)!r}")
            setattr(self, nm, np.broadcast_to(v.reshape(-1) if v.ndim else v, (m,)).copy())
        if m and self.delay.min() < 0:
            raise ValueError(f"Projection: delay must be >= dt (and never negative), got {float(self.delay.min())!r} s")
        self.target = _target("Projection", self.target, self.post.model)

    @classmethod
    def all_to_all(cls, pre: Population, post: Population, weight, delay=1e-3, target=None) -> "Projection":
        """Every pre neuron to every post neuron; ``weight`` a number or ``[post.n, pre.n]``."""
        W = _f64(weight)
        if W.ndim == 2 and W.shape != (post.n, pre.n):
            raise ValueError(f"Projection.all_to_all: weight must be [post.n, pre.n] = [{post.n}, {pre.n}], "
                             f"got {W.shape}")
        pi, qi = np.meshgrid(np.arange(pre.n), np.arange(post.n), indexing="ij")
        w = W.T.reshape(-1) if W.ndim == 2 else W
        return cls(pre, post, pi.reshape(-1), qi.reshape(-1), w, delay, target)

    @classmethod
    def one_to_one(cls, pre: Population, post: Population, weight, delay=1e-3, target=None) -> "Projection":
        if pre.n != post.n:
            raise ValueError(f"Projection.one_to_one: pre has {pre.n} neurons but post has {post.n}")
        return cls(pre, post, np.arange(pre.n), np.arange(pre.n), weight, delay, target)

    @classmethod
    def fixed_indegree(cls, pre: Population, post: Population, indegree: int, weight, delay=1e-3,
                       target=None, seed: int = 0) -> "Projection":
        """Each post neuron receives ``indegree`` synapses from pre neurons drawn uniformly (with
        repetition, NEST's ``fixed_indegree`` default)."""
        indegree = _v.positive_int("Projection.fixed_indegree: indegree", indegree, minimum=0)
        rng = np.random.default_rng(_v.positive_int("Projection.fixed_indegree: seed", seed, minimum=0))
        pre_idx = rng.integers(0, pre.n, size=(post.n, indegree)).reshape(-1)
        post_idx = np.repeat(np.arange(post.n), indegree)
        return cls(pre, post, pre_idx, post_idx, weight, delay, target)


@dataclass(eq=False)
class PoissonSource:
    """Independent Poisson trains of ``rate`` Hz (number or ``[post.n]``) into every neuron of
    ``post``; each arrival adds ``weight`` to ``target`` (default the model's ``input_state``)."""

    post: Population
    rate: Any
    weight: float = 1.0
    target: str | None = None
    seed: int = 0

    def __post_init__(self):
        if not isinstance(self.post, Population):
            raise ValueError(f"PoissonSource: post must be a Population, got {type(self.post).__name__}")
        r = _f64(self.rate)
        if not np.all(np.isfinite(r)) or np.any(r <= 0):
            raise ValueError(f"PoissonSource: rate must be finite and > 0 Hz, got {self.rate!r}")
        if r.ndim > 1 or (r.ndim == 1 and r.shape[0] not in (1, self.post.n)):
            raise ValueError(f"PoissonSource: rate must be a number or [{self.post.n}] values")
        self.rate = np.broadcast_to(r.reshape(-1) if r.ndim else r, (self.post.n,)).copy()
        self.weight = _v.number("PoissonSource: weight", self.weight)
        self.seed = _v.positive_int("PoissonSource: seed", self.seed, minimum=-2**63)
        self.target = _target("PoissonSource", self.target, self.post.model)

    def streams(self) -> np.ndarray:
        """The start state of each neuron's random stream (uint64): the splitmix64 output of
        ``seed * C + j * golden + 1``. (Start states one ``golden`` apart would make neighbouring
        neurons' streams the same sequence shifted by one draw, i.e. strongly correlated trains;
        mixed start states are scattered over 2^64, so the streams do not overlap.)"""
        with np.errstate(over="ignore"):
            base = np.uint64(int(self.seed) & (2 ** 64 - 1)) * np.uint64(0xD1B54A32D192ED03)
            return _splitmix(base + np.arange(self.post.n, dtype=np.uint64) * _GOLDEN + np.uint64(1))[1]

    def sample(self, t_end: float) -> tuple[np.ndarray, np.ndarray]:
        """``(times, neurons)`` of every arrival in ``[0, t_end]``, in time order: the arrivals
        the engine delivers (the same stream)."""
        state, t = _intervals(self.streams(), self.rate)
        times, neurons = [], []
        alive = np.arange(self.post.n)
        while alive.size:
            ok = t[alive] <= t_end
            alive = alive[ok]
            times.append(t[alive].copy())
            neurons.append(alive.copy())
            s2, dti = _intervals(state[alive], self.rate[alive])
            state[alive] = s2
            t[alive] = t[alive] + dti
        times, neurons = np.concatenate(times), np.concatenate(neurons)
        order = np.argsort(times, kind="stable")
        return times[order], neurons[order]


@dataclass
class NetworkResult:
    """Spikes as compact arrays (time order) and the recorded states.

    ``spike_times`` (s), ``spike_population`` (index into ``Network.populations``),
    ``spike_neuron`` (index within the population), ``spike_events`` (event function);
    ``t`` the recorded times, ``states[name]`` ``[len(t), len(record_neurons)]`` in the order of
    ``recorded`` (pairs (population, neuron)); ``stats``: ``wall_time_s`` and ``cpu_time_s`` of
    the engine call, ``setup_s`` the preparation before it (projections to CSR order, sources,
    model arrays), ``thread_cpu_s`` the CPU seconds of each of the engine's threads (their balance),
    ``steps``, ``events``, ``backend``."""

    spike_times: np.ndarray
    spike_population: np.ndarray
    spike_neuron: np.ndarray
    spike_events: np.ndarray
    t: np.ndarray
    states: dict[str, np.ndarray]
    recorded: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)

    def rates(self, population: int, n: int, t_end: float) -> np.ndarray:
        """Mean rate (Hz) of each neuron of one population of ``n`` neurons."""
        sel = self.spike_population == population
        return np.bincount(self.spike_neuron[sel], minlength=n) / t_end


class Network:
    """Populations, projections and Poisson sources; :meth:`run` simulates them on the engine."""

    def __init__(self, populations: Sequence[Population], projections: Sequence[Projection] = (),
                 sources: Sequence[PoissonSource] = ()):
        self.populations = list(populations)
        if not self.populations:
            raise ValueError("Network needs at least one Population")
        for what, items, cls in (("populations", self.populations, Population),
                                 ("projections", projections, Projection), ("sources", sources, PoissonSource)):
            for j, p in enumerate(items):
                if not isinstance(p, cls):
                    raise ValueError(f"Network: {what}[{j}] must be a {cls.__name__}, got {type(p).__name__}")
        self.projections = list(projections)
        self.sources = list(sources)
        ids = {id(p) for p in self.populations}
        for pr in self.projections:
            if id(pr.pre) not in ids or id(pr.post) not in ids:
                raise ValueError("Network: a projection joins a population that is not in populations")
        for s in self.sources:
            if id(s.post) not in ids:
                raise ValueError("Network: a PoissonSource feeds a population that is not in populations")
        first = self.populations[0].model
        for p in self.populations[1:]:
            if tuple(p.model.state_names) != tuple(first.state_names) or p.model.n_events != first.n_events:
                raise ValueError("Network: every population must have the same state layout and events "
                                 f"({type(first).__name__} {first.state_names} vs {type(p.model).__name__} "
                                 f"{p.model.state_names})")
        self.offsets = np.cumsum([0] + [p.n for p in self.populations])

    @property
    def n(self) -> int:
        return int(self.offsets[-1])

    def _pop_index(self, pop: Population) -> int:
        return next(i for i, p in enumerate(self.populations) if p is pop)

    def run(self, t_end: float, dt: float, *, record=("v",), record_every: float | None = None,
            record_neurons=None, max_events_per_step: int = 1000, threads: int | None = None,
            input_spikes=None, max_work: float | None = None) -> NetworkResult:
        """Simulate ``[0, t_end]`` on a grid of step ``dt`` (s) on the compiled engine.

        ``record``: state names; ``record_neurons``: None (none), ``"all"``, or a list of
        ``(population index, neuron index)`` pairs; ``record_every`` a multiple of dt (default dt);
        ``input_spikes``: external events ``(times, population index, neuron index, weight)``, each
        adding ``weight`` to the population's ``input_state`` at its exact time.
        A run above ``max_work`` neuron-steps (or Poisson arrivals) is refused before it starts, as
        in ``simulate`` (default 1e10, or the environment variable ``CTSNN_MAX_WORK``).
        """
        from .engine import _model_arrays, run_engine, unsupported_reason
        from .errors import SimulationError

        import time as _time
        setup = _time.perf_counter()
        dt = _v.number("dt", dt, positive=True, unit="seconds")
        t_end = _v.number("t_end", t_end, nonneg=True, unit="seconds")
        max_events_per_step = _v.positive_int("max_events_per_step", max_events_per_step)
        if threads is not None:
            threads = _v.positive_int("threads", threads)
        _v.work_bound("Network.run", _v.n_steps(t_end, dt), self.n, max_work)
        # Poisson arrivals are generated one by one: bound their expected number as well
        arrivals = sum(float(np.sum(s.rate)) for s in self.sources) * t_end
        _v.work_bound("Network.run (Poisson arrivals)", arrivals, 1, max_work, hint="check the sources' rates and t_end")
        for j, pr in enumerate(self.projections):
            if pr.delay.size and pr.delay.min() < dt * (1 - 1e-12):
                raise ValueError(f"projections[{j}]: delay {float(pr.delay.min())!r} s is below the step dt={dt!r} s; "
                                 f"the minimum delay is dt (spikes cross projections from one step to a later "
                                 f"one)")
        for p in self.populations:
            why = unsupported_reason(p.model)
            if why is not None:
                raise ValueError(f"Network: population of {type(p.model).__name__} cannot run on the engine: {why}")
        n_steps = _v.n_steps(t_end, dt)
        stride = 1
        if record_every is not None:
            stride = round(float(record_every) / dt)
            if stride < 1 or abs(stride * dt - record_every) > 1e-9 * max(record_every, dt):
                raise ValueError(f"record_every={record_every!r} must be a positive multiple of dt={dt!r}")
        # the model data of every population, concatenated per neuron
        mds = [_model_arrays(p.model, p.n, dt) for p in self.populations]
        keys_group = ("A", "B", "c", "theta", "k", "val")
        md = dict(mds[0])
        for kk in ("G", "J"):
            if any(not np.array_equal(m[kk] / 1.0, mds[0][kk]) for m in mds[1:]):
                raise ValueError("Network: the populations' event rows G and jump matrices J must agree")
        d = mds[0]["d"]
        if any(not np.array_equal(m["d"], d) for m in mds[1:]):
            raise ValueError("Network: the populations' linear parts are scaled differently; use one unit system")
        N = self.n
        for kk in keys_group:
            md[kk] = np.ascontiguousarray(np.concatenate(
                [np.broadcast_to(m[kk], (p.n,) + m[kk].shape[1:]) for m, p in zip(mds, self.populations)]))
        if any(m["tref"] is not None for m in mds):
            md["tref"] = np.concatenate([np.zeros(p.n) if m["tref"] is None else np.broadcast_to(m["tref"], (p.n,))
                                         for m, p in zip(mds, self.populations)])
        md["ng"] = N
        S, U = md["S"], md["U"]
        # state and input
        ys = []
        for p in self.populations:
            yp = p.model.init_state((p.n,), torch.float64).detach().numpy().reshape(p.n, S).copy()
            for k, v in p.initial.items():
                yp[:, p.model.state_index(k)] = v
            ys.append(yp)
        y = np.concatenate(ys)
        u = np.concatenate([p.model.input_channels(torch.from_numpy(p.current)).detach().numpy().reshape(p.n, U)
                            for p in self.populations])[None]
        # projections -> one CSR over global indices
        syn = None
        if self.projections:
            pre = np.concatenate([pr.pre_idx + self.offsets[self._pop_index(pr.pre)] for pr in self.projections])
            post = np.concatenate([pr.post_idx + self.offsets[self._pop_index(pr.post)] for pr in self.projections])
            w = np.concatenate([pr.weight for pr in self.projections])
            dl = np.concatenate([pr.delay for pr in self.projections])
            tg = np.concatenate([np.full(pr.pre_idx.shape[0], pr.post.model.state_index(pr.target))
                                 for pr in self.projections])
            from .engine import _csr
            syn = _csr(pre, post, w, dl, tg, N)
        ps = None
        if self.sources:
            el, rate, wt, tgt, st, nx = [], [], [], [], [], []
            for s in self.sources:
                off = self.offsets[self._pop_index(s.post)]
                st0 = s.streams()
                st1, first = _intervals(st0, s.rate)
                el.append(np.arange(s.post.n) + off)
                rate.append(s.rate)
                wt.append(np.full(s.post.n, s.weight))
                tgt.append(np.full(s.post.n, s.post.model.state_index(s.target)))
                st.append(st1)
                nx.append(first)
            el = np.concatenate(el)
            order = np.argsort(el, kind="stable")
            ptr = np.zeros(N + 1, dtype=np.int64)
            np.cumsum(np.bincount(el, minlength=N), out=ptr[1:])
            ps = dict(ptr=ptr, rate=np.ascontiguousarray(np.concatenate(rate)[order]),
                      w=np.ascontiguousarray(np.concatenate(wt)[order]),
                      target=np.ascontiguousarray(np.concatenate(tgt)[order], dtype=np.int32),
                      rng=np.ascontiguousarray(np.concatenate(st)[order]),
                      next=np.ascontiguousarray(np.concatenate(nx)[order]))
        if record_neurons is None or not record:
            rec_pairs = np.zeros((0, 2), dtype=np.int64)
        elif isinstance(record_neurons, str) and record_neurons == "all":
            rec_pairs = np.array([(i, j) for i, p in enumerate(self.populations) for j in range(p.n)], dtype=np.int64)
        else:
            rec_pairs = np.asarray(record_neurons, dtype=np.int64).reshape(-1, 2)
            for i, j in rec_pairs:
                if not (0 <= i < len(self.populations) and 0 <= j < self.populations[i].n):
                    raise ValueError(f"record_neurons: ({i}, {j}) is not a (population, neuron) of this network")
        rec_elems = self.offsets[rec_pairs[:, 0]] + rec_pairs[:, 1] if rec_pairs.size else np.zeros(0, np.int64)
        if isinstance(record, str):
            record = (record,)
        names = self.populations[0].model.state_names
        bad = [r for r in record if r not in names]
        if bad:
            raise ValueError(f"record: {type(self.populations[0].model).__name__} has no state {bad[0]!r}; its "
                             f"states are {names}")
        rec_states = [self.populations[0].model.state_index(r) for r in record] if rec_pairs.size else []
        in_elem = in_t = in_inc = None
        if input_spikes is not None:
            ti, pi, ni, wi = (np.asarray(a).reshape(-1) for a in input_spikes)
            pi, ni = pi.astype(np.int64), ni.astype(np.int64)
            sizes = np.array([p.n for p in self.populations])
            if not (ti.shape == pi.shape == ni.shape == wi.shape) or np.any(pi < 0) or np.any(pi >= len(sizes)) \
                    or np.any(ni < 0) or np.any(ni >= sizes[np.clip(pi, 0, len(sizes) - 1)]) \
                    or not np.all(np.isfinite(ti)) or not np.all(np.isfinite(wi)) or np.any(ti < 0):
                raise ValueError("input_spikes: give (times, population index, neuron index, weight) of equal "
                                 "length, with valid indices, times >= 0 s and finite weights")
            in_elem, in_t = self.offsets[pi] + ni, ti.astype(np.float64)
            in_inc = np.zeros((ti.shape[0], S))
            for i, p in enumerate(self.populations):
                sel = pi == i
                in_inc[sel] = p.model.spike_input(torch.from_numpy(wi[sel].astype(np.float64))).numpy()
        setup = _time.perf_counter() - setup
        wall, cpu = _time.perf_counter(), _time.process_time()
        out = run_engine(md, M=N, n=N, dt=dt, t_end=t_end, n_steps=n_steps, y=y, u=u, syn=syn, poisson=ps,
                         in_elem=in_elem, in_t=in_t, in_inc=in_inc,
                         record_elems=rec_elems, record_states=rec_states, stride=stride,
                         max_events=int(max_events_per_step), threads=threads)
        wall, cpu = _time.perf_counter() - wall, _time.process_time() - cpu
        if out["status"] == 1:
            raise SimulationError(f"neuron {out['bad_elem']} (global index) produced more than "
                                  f"{int(max_events_per_step)} events in the step starting at t={out['bad_t']:.9g} s")
        pop = np.searchsorted(self.offsets, out["elems"], side="right") - 1
        rec_t = np.concatenate([[0.0], np.minimum(np.arange(stride, n_steps + 1, stride) * dt, t_end)])
        states = {}
        if out["rec"] is not None:
            for j, name in enumerate(record):
                states[name] = out["rec"][..., j]
        return NetworkResult(spike_times=out["times"], spike_population=pop,
                             spike_neuron=out["elems"] - self.offsets[pop], spike_events=out["events"],
                             t=rec_t, states=states, recorded=rec_pairs,
                             stats={"wall_time_s": wall, "cpu_time_s": cpu, "setup_s": setup, "steps": n_steps,
                                    "events": int(out["times"].shape[0]),
                                    "thread_cpu_s": out["thread_cpu"].tolist(), "backend": "engine"})
