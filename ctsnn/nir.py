r"""NIR (Neuromorphic Intermediate Representation) graphs in and out of ctsnn, with physical units.

``write(obj, path)`` stores a model, a :class:`Graph` or a :class:`ctsnn.Network` as a NIR file;
``read(path, source=None, dt=None)`` returns a :class:`Graph`: populations of ctsnn models
(:class:`ctsnn.Population`), the synaptic paths between them (dense weights, per-synapse delays)
and the graph's inputs and outputs.  A graph runs

* exactly, with in-step spike times (:meth:`Graph.run`: each strongly connected group of
  populations is one :class:`ctsnn.Network` on the compiled event engine, in causal order), and
* on a grid (:meth:`Graph.discretize`: one :func:`ctsnn.discretize` layer per population, any
  options, i.e. any library's discretisation).

What a NIR graph means (nir 1.0.8's node definitions), and how ctsnn reads it:

* ``LIF``:  ``tau dv/dt = (v_leak - v) + r I``, spike when v crosses ``v_threshold``, then
  ``v -> v_reset``: :class:`ctsnn.LIF` ``(tau_mem=tau, r, v_leak, v_th, v_reset)``;
  ``LI``: the same without threshold (ctsnn: ``reset="none"`` and an unreachable threshold,
  or the threshold of a ``Threshold`` node that follows it);
* ``IF``: ``dv/dt = r I`` (:class:`ctsnn.IF`); ``I``: the same without threshold;
* ``CubaLIF``: ``tau_syn dI/dt = -I + w_in S``, ``tau_mem dv/dt = (v_leak - v) + r I``
  (:class:`ctsnn.CubaLIF`, its ``i`` is NIR's ``I``); ``CubaLI`` without threshold;
* ``Affine`` ``W x + b``, ``Linear`` ``W x``, ``Scale`` ``s x``, ``Flatten``, ``Conv1d``,
  ``Conv2d``, ``SumPool2d``, ``AvgPool2d``: linear maps between populations (made dense);
  ``Delay`` ``y(t) = x(t - d)``: the synapses' delays.

Signals between nodes are spike trains of Dirac impulses: a spike of neuron j reaching neuron i
through weight ``W[i, j]`` is a current impulse of area ``W[i, j]``, which jumps v by
``r W / tau`` (LIF, LI), ``r W`` (IF, I) or I by ``w_in W / tau_syn`` (CubaLIF); ctsnn stores
these jumps as the graph's weights (``Edge.weight``: the jump of the target's input state per
spike).  A constant term ``b`` (Affine's bias) is a constant current: ``Population.current``.
An edge on a cycle needs a delay (the graph is causal only then); a cycle without one gets the
delay ``dt`` when ``read`` is given ``dt`` (every library delivers a recurrent spike one step
later) and is refused otherwise.

The libraries' exporters write their discrete layers with time constants of their own
conventions; ``read(path, source="snntorch" | "norse" | "sinabs" | "spikingjelly", dt=...)``
undoes each one, and the graph then reproduces the library's own forward pass
(:meth:`Graph.discretize` with the library's options).  What each exporter gets wrong, and how it
is repaired: docs/nir.md.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .models import IF, LIF, CubaLIF
from .models.base import PARAM_MAX, NeuronModel
from .network import Network, Population, Projection
from .solvers.propagator import tau_from_decay

__all__ = ["read", "write", "Graph", "GraphRun", "Edge", "GraphLayers", "SOURCES"]

#: the libraries whose exports ``read(source=...)`` repairs
SOURCES = ("snntorch", "norse", "sinabs", "spikingjelly")
_NEURONS = ("LIF", "LI", "IF", "I", "CubaLIF", "CubaLI")
_LINEAR = ("Affine", "Linear", "Scale", "Flatten", "Conv1d", "Conv2d", "SumPool2d", "AvgPool2d", "Delay")
_KNOWN = _NEURONS + _LINEAR + ("Input", "Output", "Threshold", "NIRGraph")
#: the threshold of a node without one (LI, I, CubaLI): never reached
_NO_THRESHOLD = PARAM_MAX


def _nir():
    try:
        import nir
    except ImportError as exc:  # pragma: no cover - the extra is missing
        raise ImportError("ctsnn.nir needs the nir package: pip install 'ctsnn[nir]' (or pip install nir)") from exc
    return nir


# ----------------------------------------------------------------------------- the graph
class GraphRun(dict):
    """What :meth:`Graph.run` returns: ``{population: (spike times [K], neurons [K])}``, plus
    ``t`` (the recording grid, s), ``states[population][name]`` ``[len(t), k]`` and
    ``recorded[population]`` (the ``k`` neuron indices of those columns) for the populations
    recorded (empty when none)."""

    def __init__(self) -> None:
        super().__init__()
        self.t = np.zeros(0)
        self.states: dict[str, dict[str, np.ndarray]] = {}
        self.recorded: dict[str, np.ndarray] = {}


@dataclass(eq=False)
class Edge:
    """Synapses from ``src`` (a population or an input) to population ``dst``: ``weight``
    ``[n_dst, n_src]`` is the jump of ``dst``'s input state per spike (0: no synapse), ``delay``
    ``[n_dst, n_src]`` in seconds."""

    src: str
    dst: str
    weight: np.ndarray
    delay: np.ndarray


@dataclass(eq=False)
class Graph:
    """Populations of ctsnn models joined by edges, with named inputs and outputs.

    ``inputs``: input name -> number of channels; ``populations``: name -> :class:`ctsnn.Population`
    (its ``current`` is the constant drive, e.g. an Affine's bias); ``edges``; ``outputs``: output
    name -> population name; ``gain``: population -> ``[n]`` the jump of its input state per unit
    of NIR signal (to write the graph back); ``layer_options``: the :func:`ctsnn.discretize`
    options that reproduce the source library (``{}``: the exact propagator, impulse input);
    ``dt``: the step the graph was read for (None: none given)."""

    inputs: dict[str, int]
    populations: dict[str, Population]
    edges: list[Edge]
    outputs: dict[str, str] = field(default_factory=dict)
    gain: dict[str, np.ndarray] = field(default_factory=dict)
    layer_options: dict[str, Any] = field(default_factory=dict)
    dt: float | None = None
    source: str | None = None

    # ------------------------------------------------------------------ structure
    def order(self) -> list[list[str]]:
        """The populations grouped into strongly connected components, in causal order (every
        edge between two groups goes from an earlier to a later one)."""
        names = list(self.populations)
        succ = {n: [] for n in names}
        for e in self.edges:
            if e.src in self.populations and np.any(e.weight != 0):
                succ[e.src].append(e.dst)
        index, low, on, stack, comps = {}, {}, set(), [], []

        def visit(v):  # Tarjan; graphs here are small
            index[v] = low[v] = len(index)
            stack.append(v)
            on.add(v)
            for w in succ[v]:
                if w not in index:
                    visit(w)
                    low[v] = min(low[v], low[w])
                elif w in on:
                    low[v] = min(low[v], index[w])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                comps.append(sorted(comp, key=names.index))

        for v in names:
            if v not in index:
                visit(v)
        return comps[::-1]

    def _cyclic(self, comp: list[str]) -> bool:
        return len(comp) > 1 or any(e.src == e.dst == comp[0] and np.any(e.weight != 0) for e in self.edges)

    def _check_delays(self, dt: float) -> None:
        """Every edge inside a cycle must have delays >= dt (multiples of dt on a grid)."""
        for comp in self.order():
            if not self._cyclic(comp):
                continue
            for e in self.edges:
                if e.src in comp and e.dst in comp:
                    d = e.delay[e.weight != 0]
                    if d.size and d.min() < dt * (1 - 1e-9):
                        raise ValueError(f"edge {e.src!r} -> {e.dst!r} lies on a cycle and has delay "
                                         f"{float(d.min())!r} s "
                                         f"< dt = {dt!r} s: a spike on a cycle must arrive at least one step later "
                                         f"(give the graph a Delay node, or read it with dt=...)")

    def _spike_value(self, pop: str) -> float:
        m = self.populations[pop].model
        return float(m.event_signs[0]) * float(m.output_scale(0, torch.float64).reshape(-1)[0])

    # ------------------------------------------------------------------ exact
    def run(self, inputs=None, *, t_end: float, dt: float, max_events_per_step: int = 1000,
            record=("v",), record_neurons=None, record_every: float | None = None) -> "GraphRun":
        """Exact spike times: ``{population: (times [K], neurons [K])}`` in time order (a
        :class:`GraphRun`, a dict that also holds the recorded states).

        ``inputs``: ``{input name: (times, channels[, values])}`` (a bare tuple for a graph with
        one input): each event is an impulse of area ``value`` (default 1) on that input channel
        at its exact time.  Each strongly connected group of populations runs as one
        :class:`ctsnn.Network` on the event engine (``dt``: its grid step; delays on cycles must be
        >= dt), fed by the spikes of the groups before it at their exact arrival times
        (``t_spike + delay``).

        Recording, as :meth:`ctsnn.Network.run`: ``record`` the state names (each recorded
        population's model must have them), ``record_neurons`` None (none), ``"all"``, or
        ``{population: neuron indices or "all"}``, ``record_every`` a multiple of ``dt`` (default
        ``dt``).  The states are sampled on the grid ``t = 0, k dt, ..., t_end`` (after the events
        at that time) into ``result.states[population][name]`` ``[len(result.t), k]``, columns in
        the order of ``result.recorded[population]``."""
        dt, t_end = float(dt), float(t_end)
        self._check_delays(dt)
        events = self._input_events(inputs)
        wanted = self._record_neurons(record_neurons)
        record = (record,) if isinstance(record, str) else tuple(record)
        for pop in wanted:
            names = self.populations[pop].model.state_names
            bad = [r for r in record if r not in names]
            if bad:
                raise ValueError(f"record: population {pop!r} ({type(self.populations[pop].model).__name__}) has no "
                                 f"state {bad[0]!r}; its states are {names}")
        spikes = GraphRun()
        for comp in self.order():
            ts, ps, ns, ws = [], [], [], []
            for e in self.edges:
                if e.dst not in comp or e.src in comp:
                    continue
                if e.src in self.populations:
                    st, sn = spikes[e.src]
                    sv = np.full(st.shape, self._spike_value(e.src))
                else:
                    st, sn, sv = events.get(e.src, (np.zeros(0), np.zeros(0, np.int64), np.zeros(0)))
                post, pre = np.nonzero(e.weight)
                order = np.argsort(pre, kind="stable")
                post, pre = post[order], pre[order]
                ptr = np.searchsorted(pre, np.arange(e.weight.shape[1] + 1))
                cnt = ptr[sn + 1] - ptr[sn]  # synapses of each source event's neuron
                ev = np.repeat(np.arange(st.shape[0]), cnt)
                syn = np.repeat(ptr[sn], cnt) + np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
                i, j = post[syn], pre[syn]
                tt = st[ev] + e.delay[i, j]
                keep = tt <= t_end
                ts.append(tt[keep])
                ps.append(np.full(int(keep.sum()), comp.index(e.dst)))
                ns.append(i[keep])
                ws.append(e.weight[i, j][keep] * sv[ev][keep])
            pops = [self.populations[c] for c in comp]
            projs = []
            for e in self.edges:
                if e.src in comp and e.dst in comp:
                    post, pre = np.nonzero(e.weight)
                    if post.size:
                        projs.append(Projection(self.populations[e.src], self.populations[e.dst], pre, post,
                                                e.weight[post, pre] * self._spike_value(e.src),
                                                e.delay[post, pre]))
            net = Network(pops, projs)
            inp = None
            if ts:
                inp = (np.concatenate(ts), np.concatenate(ps), np.concatenate(ns), np.concatenate(ws))
            pairs = [(i, int(j)) for i, c in enumerate(comp) if c in wanted for j in wanted[c]]
            res = net.run(t_end, dt, record=record if pairs and record else (), max_events_per_step=max_events_per_step,
                          input_spikes=inp, record_neurons=pairs or None, record_every=record_every)
            spikes.t = res.t
            for i, c in enumerate(comp):
                sel = res.spike_population == i
                spikes[c] = (res.spike_times[sel], res.spike_neuron[sel])
                if c in wanted and record:
                    cols = res.recorded[:, 0] == i
                    spikes.recorded[c] = res.recorded[cols, 1]
                    spikes.states[c] = {name: res.states[name][:, cols] for name in record}
        return spikes

    def _record_neurons(self, record_neurons) -> dict[str, np.ndarray]:
        """``record_neurons`` of :meth:`run` as ``{population: neuron indices}``."""
        if record_neurons is None:
            return {}
        if isinstance(record_neurons, str):
            if record_neurons != "all":
                raise ValueError(f"record_neurons must be None, 'all' or {{population: neurons}}, got "
                                 f"{record_neurons!r}")
            record_neurons = {name: "all" for name in self.populations}
        if not isinstance(record_neurons, dict):
            raise ValueError(f"record_neurons must be None, 'all' or {{population: neuron indices}}, got "
                             f"{type(record_neurons).__name__}")
        out = {}
        for name, idx in record_neurons.items():
            if name not in self.populations:
                raise ValueError(f"record_neurons: the graph has no population {name!r}; its populations are "
                                 f"{sorted(self.populations)}")
            n = self.populations[name].n
            idx = np.arange(n) if isinstance(idx, str) and idx == "all" else np.asarray(idx).reshape(-1)
            if idx.size and (idx.dtype.kind not in "iu" or idx.min() < 0 or idx.max() >= n):
                raise ValueError(f"record_neurons[{name!r}]: neuron indices must be integers in 0..{n - 1}, got "
                                 f"{idx.tolist()}")
            out[name] = idx.astype(np.int64)
        return out

    def network(self) -> Network:
        """The populations and the edges between them as one :class:`ctsnn.Network` (the
        inputs' edges are left out: feed the network with ``Network.run(input_spikes=...)``,
        ``PoissonSource``s or the populations' currents). Every delay must then be >= the run's
        ``dt`` (the engine's rule; :meth:`run` needs that only on cycles)."""
        projs = []
        for e in self.edges:
            if e.src in self.populations:
                post, pre = np.nonzero(e.weight)
                if post.size:
                    projs.append(Projection(self.populations[e.src], self.populations[e.dst], pre, post,
                                            e.weight[post, pre] * self._spike_value(e.src), e.delay[post, pre]))
        return Network(list(self.populations.values()), projs)

    def _input_events(self, inputs) -> dict:
        if inputs is None:
            return {}
        if not isinstance(inputs, dict):
            if len(self.inputs) != 1:
                raise ValueError(f"inputs: this graph has inputs {sorted(self.inputs)}; give a dict by name")
            inputs = {next(iter(self.inputs)): inputs}
        out = {}
        for name, ev in inputs.items():
            if name not in self.inputs:
                raise ValueError(f"inputs: the graph has no input {name!r}; its inputs are {sorted(self.inputs)}")
            t = np.asarray(ev[0], dtype=np.float64).reshape(-1)
            ch = np.asarray(ev[1]).reshape(-1).astype(np.int64)
            val = np.ones_like(t) if len(ev) < 3 else np.asarray(ev[2], dtype=np.float64).reshape(-1)
            if not (t.shape == ch.shape == val.shape) or np.any(ch < 0) or np.any(ch >= self.inputs[name]):
                raise ValueError(f"inputs[{name!r}]: give (times, channels[, values]) of equal length with channels "
                                 f"in 0..{self.inputs[name] - 1}")
            out[name] = (t, ch, val)
        return out

    # ------------------------------------------------------------------ grid
    def discretize(self, dt: float | None = None, **layer_options) -> "GraphLayers":
        """A layer stack on a grid of step ``dt`` (default: the ``dt`` the graph was read for):
        one ``ctsnn.discretize(model, dt, **options)`` per population, ``options`` =
        ``layer_options`` updated by the keywords given here.  See :class:`GraphLayers`."""
        dt = self.dt if dt is None else dt
        if dt is None:
            raise ValueError("discretize: give dt (the graph was read without one)")
        opts = dict(self.layer_options)
        opts.update(layer_options)
        return GraphLayers(self, float(dt), opts)


class GraphLayers(nn.Module):
    """The graph on a grid: one :class:`ctsnn.DiscreteLayer` per population.

    Step ``t``: the populations in causal order; each receives, as an impulse at the end of the
    step (``input="impulse"``), ``sum_edges W out_src[t - k]`` with ``k = delay / dt`` steps (an
    input's value ``x[t - k]``, a population's spikes), and its constant current: exactly the
    zero-order hold of ``Population.current`` (folded into ``v_leak``; for IF the step's
    increment ``dt r I``).  A spike at the end of step t (time ``(t+1) dt``) crossing an edge of
    delay ``k dt`` arrives at the end of step ``t + k``, as in :meth:`Graph.run`: with inputs on
    the grid and models that cannot cross threshold between impulses (no constant drive above
    threshold), the spikes are the same, provided the arrival times are exactly the grid times
    (``dt`` and the delays binary fractions such as ``2**-10`` s: then impulses that arrive
    together are applied together, as the grid sums them).  ``input="zoh"``: ``x`` and the
    spikes are held over the step as currents (NIR signal units, ``weight / gain``; one-state
    models), the libraries' importers' reading."""

    def __init__(self, graph: Graph, dt: float, options: dict):
        super().__init__()
        self.graph, self.dt = graph, dt
        self.order = [p for comp in graph.order() for p in comp]
        graph._check_delays(dt)
        opts = dict(options)
        self.zoh = opts.get("input", "impulse") == "zoh"
        from .discrete import discretize
        self.layers = nn.ModuleDict()
        self._ramp, self._start = {}, {}
        for name in self.order:
            pop = graph.populations[name]
            m = pop.model
            cur = np.asarray(pop.current, dtype=np.float64)
            self._ramp[name] = None
            if np.any(cur != 0):
                if "v_leak" in m.params():
                    m = m.replace(v_leak=m.p("v_leak", torch.float64) + m.p("r", torch.float64) * torch.from_numpy(cur))
                elif self.zoh:  # IF, input held as a current: add the constant current to it
                    self._ramp[name] = torch.from_numpy(cur.copy())
                else:  # IF, impulse input: the step's increment of the held current
                    self._ramp[name] = torch.from_numpy(dt * cur) * m.p("r", torch.float64)
            self._start[name] = pop.model
            self.layers[self._key(name)] = discretize(m, dt, **opts)
        self.links = []  # (dst, src, k, W_k [n_dst, n_src] float64)
        for e in graph.edges:
            W = e.weight / graph.gain[e.dst][:, None] if self.zoh else e.weight
            if e.src in graph.populations:
                W = W * graph._spike_value(e.src)
            ks = np.rint(e.delay / dt).astype(np.int64)
            bad = (e.weight != 0) & (np.abs(ks * dt - e.delay) > 1e-9 * max(dt, 1.0))
            if np.any(bad):
                raise ValueError(f"edge {e.src!r} -> {e.dst!r}: delay {float(e.delay[bad][0])!r} s is not a multiple "
                                 f"of dt = {dt!r} s")
            for k in np.unique(ks[e.weight != 0]):
                self.links.append((e.dst, e.src, int(k), torch.from_numpy(np.where(ks == k, W, 0.0))))

    def _key(self, name: str) -> str:
        return f"p{self.order.index(name)}"  # module names cannot hold "."

    def layer(self, name: str):
        """The :class:`ctsnn.DiscreteLayer` of population ``name``."""
        return self.layers[self._key(name)]

    def forward(self, x=None, steps: int | None = None, record_states: bool = False):
        """``x``: ``[T, *batch, n_in]`` (one input) or ``{input: tensor}`` (``steps`` without
        input); returns ``{population: out [T, *batch, n]}`` (spikes), and with
        ``record_states`` also ``{population: states [T, *batch, n, S]}`` (after each step; the
        membrane of an LI node is its output)."""
        g = self.graph
        if x is not None and not isinstance(x, dict):
            if len(g.inputs) != 1:
                raise ValueError(f"x: this graph has inputs {sorted(g.inputs)}; give a dict by name")
            x = {next(iter(g.inputs)): x}
        x = dict(x or {})
        for k, v in x.items():
            if k not in g.inputs:
                raise ValueError(f"x: the graph has no input {k!r}; its inputs are {sorted(g.inputs)}")
            if v.shape[-1] != g.inputs[k]:
                raise ValueError(f"x[{k!r}]: last axis must be {g.inputs[k]}, got shape {tuple(v.shape)}")
        if x:
            ref = next(iter(x.values()))
            T, batch, dtype = ref.shape[0], tuple(ref.shape[1:-1]), ref.dtype
        else:
            if steps is None:
                raise ValueError("give x or steps")
            T, batch, dtype = int(steps), (), torch.get_default_dtype()
        states, outs, rec = {}, {n: [] for n in self.order}, {n: [] for n in self.order}
        for name in self.order:
            layer = self.layers[self._key(name)]
            y = layer.init_state(batch, dtype)
            S = self._start[name].n_states
            y[..., :S] = self._start[name].init_state(batch + (g.populations[name].n,), dtype)
            states[name] = y
        zeros = {n: torch.zeros(batch + (g.populations[n].n,), dtype=dtype) for n in self.order}
        for t in range(T):
            for name in self.order:
                inp = zeros[name].clone()
                for dst, src, k, W in self.links:
                    if dst != name or t - k < 0:
                        continue
                    s = x[src][t - k] if src in x else (outs[src][t - k] if src in outs else None)
                    if s is not None:
                        inp = inp + s.to(dtype) @ W.to(dtype).T
                if self._ramp[name] is not None:
                    inp = inp + self._ramp[name].to(dtype)
                o, states[name] = self.layers[self._key(name)](inp, states[name])
                outs[name].append(o)
                if record_states:
                    rec[name].append(states[name][..., :self._start[name].n_states])
        spikes = {n: torch.stack(v) if v else torch.zeros((0,) + batch + (g.populations[n].n,), dtype=dtype)
                  for n, v in outs.items()}
        if not record_states:
            return spikes
        return spikes, {n: torch.stack(v) if v else torch.zeros((0,) + batch + (g.populations[n].n,
                                                                               self._start[n].n_states), dtype=dtype)
                        for n, v in rec.items()}


# ----------------------------------------------------------------------------- read
def _arr(node, name: str, key: str, n: int | None = None) -> np.ndarray:
    v = getattr(node, key)
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    a = np.asarray(v, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"node {name!r} ({type(node).__name__}): {key} must be finite, got {a!r}")
    return a.reshape(-1) if a.ndim else a.reshape(1)


def _flatten(graph, prefix: str = "") -> tuple[dict, list]:
    """Nodes and edges with nested NIRGraph nodes inlined (their Input/Output become pass-through
    nodes named ``outer.inner``)."""
    nir = _nir()
    nodes, edges = {}, []
    rename_in, rename_out = {}, {}
    for k, nd in graph.nodes.items():
        name = prefix + k
        if isinstance(nd, nir.NIRGraph):
            sub_nodes, sub_edges = _flatten(nd, name + ".")
            ins = [name + "." + s for s, v in nd.nodes.items() if isinstance(v, nir.Input)]
            outs = [name + "." + s for s, v in nd.nodes.items() if isinstance(v, nir.Output)]
            if len(ins) != 1 or len(outs) != 1:
                raise ValueError(f"node {name!r}: a nested graph needs one Input and one Output node")
            for s in ins + outs:
                sub_nodes[s] = ("pass", sub_nodes[s])
            nodes.update(sub_nodes)
            edges += sub_edges
            rename_in[name], rename_out[name] = ins[0], outs[0]
        else:
            nodes[name] = nd
    for a, b in graph.edges:
        a, b = prefix + a, prefix + b
        edges.append((rename_out.get(a, a), rename_in.get(b, b)))
    return nodes, edges


def _check_structure(nodes: dict, edges: list) -> None:
    for name, nd in nodes.items():
        t = type(nd[1] if isinstance(nd, tuple) else nd).__name__
        if t not in _KNOWN:
            raise ValueError(f"node {name!r} has type {t!r}, which ctsnn cannot express; known node types: "
                             f"{', '.join(sorted(_KNOWN))}")
    for a, b in edges:
        for end in (a, b):
            if end not in nodes:
                raise ValueError(f"edge ({a!r}, {b!r}) refers to node {end!r}, which is not in the graph "
                                 f"(nodes: {sorted(nodes)})")


def _load(path_or_graph):
    """The NIR graph of a file (or a nir.NIRGraph), its structure checked before nir reads it."""
    nir = _nir()
    if isinstance(path_or_graph, nir.NIRGraph):
        return path_or_graph
    p = Path(path_or_graph)
    if not p.is_file():
        raise ValueError(f"read: no NIR file at {str(p)!r}")
    import h5py
    try:
        with h5py.File(p, "r") as f:
            def scan(grp, prefix=""):
                names = set(grp["nodes"].keys())
                for k in names:
                    t = grp["nodes"][k]["type"][()]
                    t = t.decode() if isinstance(t, bytes) else str(t)
                    if t not in _KNOWN:
                        raise ValueError(f"node {prefix + k!r} has type {t!r}, which ctsnn cannot express; known "
                                         f"node types: {', '.join(sorted(_KNOWN))}")
                    if t == "NIRGraph":
                        scan(grp["nodes"][k], prefix + k + ".")
                for a, b in grp["edges"][()]:
                    for end in (a, b):
                        end = end.decode() if isinstance(end, bytes) else str(end)
                        if end not in names:
                            raise ValueError(f"edge ({a!r}, {b!r}) refers to node {prefix + end!r}, which is not in "
                                             f"the graph (nodes: {sorted(names)})")
            scan(f["node"] if "node" in f else f)
    except OSError as exc:
        raise ValueError(f"read: {str(p)!r} is not a NIR (HDF5) file: {exc}") from None
    try:
        return nir.read(p, type_check=False)  # ctsnn checks the shapes itself and names the node
    except Exception as exc:  # nir's own checks (shapes, ...) name what they found
        raise ValueError(f"read: nir could not read {str(p)!r}: {exc}") from exc


def _linear_fn(name: str, nd, shape_in):
    """``(f, out_shape, bias, delay)``: the node as a linear map on ``[B, *shape_in]`` (bias
    separate) and its delays (Delay)."""
    import torch.nn.functional as Fn
    t = type(nd).__name__
    tens = lambda v: torch.as_tensor(np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v,  # noqa: E731
                                                dtype=np.float64))
    n_in = int(np.prod(shape_in))
    if t in ("Affine", "Linear"):
        W = tens(nd.weight)
        if W.dim() != 2:
            raise ValueError(f"node {name!r} ({t}): only 2-D weights are supported, got shape {tuple(W.shape)}")
        if W.shape[1] != n_in:
            raise ValueError(f"node {name!r} ({t}): weight {tuple(W.shape)} takes {W.shape[1]} inputs but receives "
                             f"{n_in} (shape {tuple(shape_in)})")
        b = tens(nd.bias).reshape(-1) if t == "Affine" else None
        return (lambda x: x.reshape(x.shape[0], -1) @ W.T), (W.shape[0],), b, None
    if t == "Scale":
        s = tens(nd.scale).reshape(-1)
        if s.numel() not in (1, n_in):
            raise ValueError(f"node {name!r} (Scale): {s.numel()} scales for {n_in} inputs")
        return (lambda x: x.reshape(x.shape[0], -1) * s), (n_in,), None, None
    if t == "Delay":
        d = tens(nd.delay).reshape(-1)
        if d.numel() not in (1, n_in) or bool((d < 0).any()):
            raise ValueError(f"node {name!r} (Delay): delay must be >= 0 with one value or {n_in}, got {d.tolist()}")
        return (lambda x: x.reshape(x.shape[0], -1)), (n_in,), None, d.expand(n_in).numpy()
    if t == "Flatten":
        return (lambda x: x.reshape(x.shape[0], -1)), (n_in,), None, None
    if t in ("Conv1d", "Conv2d"):
        W, b = tens(nd.weight), tens(nd.bias).reshape(-1)
        conv = Fn.conv1d if t == "Conv1d" else Fn.conv2d
        pad = nd.padding
        pad = pad if isinstance(pad, str) else tuple(int(p) for p in np.atleast_1d(pad))
        kw = dict(stride=tuple(int(s) for s in np.atleast_1d(nd.stride)), padding=pad,
                  dilation=tuple(int(s) for s in np.atleast_1d(nd.dilation)), groups=int(nd.groups))
        if t == "Conv1d":
            kw = {k: (v[0] if isinstance(v, tuple) else v) for k, v in kw.items()}
        shp = tuple(int(s) for s in shape_in)
        if len(shp) != W.dim() - 1 or shp[0] != W.shape[1] * kw["groups"]:
            raise ValueError(f"node {name!r} ({t}): weight {tuple(W.shape)} does not fit input shape {shp}")
        f = lambda x: conv(x.reshape((x.shape[0],) + shp), W, None, **kw)  # noqa: E731
        out = tuple(f(torch.zeros((1,) + shp, dtype=torch.float64)).shape[1:])
        bias = b.reshape(-1, *([1] * (len(out) - 1))).expand(out).reshape(-1)
        return f, out, bias, None
    if t in ("SumPool2d", "AvgPool2d"):
        k = tuple(int(s) for s in np.atleast_1d(nd.kernel_size))
        st = tuple(int(s) for s in np.atleast_1d(nd.stride))
        pd = tuple(int(s) for s in np.atleast_1d(nd.padding))
        shp = tuple(int(s) for s in shape_in)
        scale = 1.0 if t == "AvgPool2d" else float(np.prod(k))
        f = lambda x: scale * Fn.avg_pool2d(x.reshape((x.shape[0],) + shp), k, st, pd)  # noqa: E731
        out = tuple(f(torch.zeros((1,) + shp, dtype=torch.float64)).shape[1:])
        return f, out, None, None
    raise ValueError(f"node {name!r}: unsupported type {t!r}")  # pragma: no cover


def _scalar(nd) -> bool:
    """Whether every parameter of a neuron node is a single value."""
    return all(np.asarray(getattr(nd, k).detach().cpu() if isinstance(getattr(nd, k), torch.Tensor)
                          else getattr(nd, k)).size == 1
               for k in ("tau", "tau_mem", "tau_syn", "r", "v_leak", "v_threshold", "v_reset")
               if getattr(nd, k, None) is not None)


def _neuron(name: str, nd, thr, n_hint: int = 1) -> tuple[NeuronModel, np.ndarray, str]:
    """NIR neuron node -> (ctsnn model with the node's own parameters, gain [n], kind)."""
    t = type(nd).__name__
    g = lambda k: _arr(nd, name, k)  # noqa: E731

    def pos(k):
        a = g(k)
        if np.any(a <= 0):
            raise ValueError(f"node {name!r} ({t}): {k} must be > 0 (a time constant in seconds), got "
                             f"{a[a <= 0][0]!r}")
        return a

    sizes = {k: g(k).size for k in ("tau", "tau_mem", "tau_syn", "r", "v_leak", "v_threshold", "v_reset", "w_in")
             if hasattr(nd, k) and getattr(nd, k) is not None}
    n = max(max(sizes.values()), n_hint)
    try:  # parameters given as scalars (shape ()): the node's size is its output type's
        n = max(n, int(np.prod(np.asarray(nd.output_type["output"]).reshape(-1))))
    except Exception:
        pass
    bad = {k: s for k, s in sizes.items() if s not in (1, n)}
    if bad:
        raise ValueError(f"node {name!r} ({t}): parameter shapes disagree: {sizes}")
    bc = lambda a: torch.from_numpy(np.broadcast_to(a, (n,)).copy())  # noqa: E731
    reset = str((getattr(nd, "metadata", None) or {}).get("ctsnn_reset", "to_value"))
    if reset not in ("to_value", "subtract", "none"):
        reset = "to_value"
    if t in ("LIF", "CubaLIF", "IF"):
        vth, vr = g("v_threshold"), (g("v_reset") if getattr(nd, "v_reset", None) is not None else np.zeros(1))
    else:
        vth, vr, reset = (np.full(1, _NO_THRESHOLD) if thr is None else thr), np.zeros(1), "none"
    if t in ("LIF", "LI"):
        tau, r = pos("tau"), g("r")
        m = LIF(tau_mem=bc(tau), r=bc(r), v_leak=bc(g("v_leak")), v_th=bc(vth), v_reset=bc(vr), reset=reset)
        gain = np.broadcast_to(r / tau, (n,))
    elif t in ("IF", "I"):
        r = g("r")
        m = IF(r=bc(r), v_th=bc(vth), v_reset=bc(vr), reset=reset)
        gain = np.broadcast_to(r, (n,))
    else:  # CubaLIF, CubaLI
        ts = pos("tau_syn")
        w_in = g("w_in") if getattr(nd, "w_in", None) is not None else np.ones(1)
        m = CubaLIF(tau_syn=bc(ts), tau_mem=bc(pos("tau_mem")), r=bc(g("r")), v_leak=bc(g("v_leak")),
                    v_th=bc(vth), v_reset=bc(vr), reset=reset)
        gain = np.broadcast_to(w_in / ts, (n,))
    t_ref = (getattr(nd, "metadata", None) or {}).get("ctsnn_t_ref")
    if t_ref is not None:
        m = m.replace(t_ref=bc(np.asarray(t_ref, dtype=np.float64)))
    return m, np.array(gain, dtype=np.float64), t


def read(path, source: str | None = None, dt: float | None = None, *, export_dt: float | None = None,
         reset: str | None = None) -> Graph:
    """Read a NIR file (or a ``nir.NIRGraph``) into a :class:`Graph`.

    ``source=None``: the graph means what NIR's equations say (module docstring).
    ``source="snntorch" | "norse" | "sinabs" | "spikingjelly"``: the file was written by that
    library's exporter; its time constants are converted back to the library's per-step decay and
    then to physical ones for the step ``dt`` (s) the library's network runs at, and the graph's
    ``layer_options`` are that library's discretisation (docs/nir.md).  ``export_dt``: the ``dt``
    given to the exporter (norse: default ``dt``; spikingjelly: 1e-4; snntorch writes 1e-4 always).
    ``reset`` (snntorch, sinabs): the layers' reset mechanism, which their exporters do not write
    (default: the library's default, ``"subtract"``; ``"zero"`` for ``reset_mechanism="zero"``).
    ``dt`` also gives a cycle without a Delay node the delay of one step.
    """
    if source is not None and source not in SOURCES:
        raise ValueError(f"read: source must be None or one of {SOURCES}, got {source!r}")
    if dt is not None:
        dt = float(dt)
        if not (math.isfinite(dt) and dt > 0):
            raise ValueError(f"read: dt must be a positive number of seconds, got {dt!r}")
    if source is not None and dt is None:
        raise ValueError(f"read: source={source!r} needs dt, the step (s) the library's network runs at")
    g = _load(path)
    nodes, edges = _flatten(g)
    _check_structure(nodes, edges)
    kind = {k: ("pass" if isinstance(v, tuple) else type(v).__name__) for k, v in nodes.items()}
    nodes = {k: (v[1] if isinstance(v, tuple) else v) for k, v in nodes.items()}
    succ = {k: [] for k in nodes}
    pred = {k: [] for k in nodes}
    for a, b in edges:
        succ[a].append(b)
        pred[b].append(a)
    # Threshold after a node without threshold (LI, I, CubaLI): its threshold
    thr_of = {}
    for k, t in kind.items():
        if t == "Threshold":
            src = pred[k]
            if len(src) != 1 or kind[src[0]] not in ("LI", "I", "CubaLI"):
                raise ValueError(f"node {k!r} (Threshold): ctsnn reads a Threshold only right after one LI, I or "
                                 f"CubaLI node (it is then that node's threshold)")
            thr_of[src[0]] = _arr(nodes[k], k, "threshold")
    neurons = [k for k, t in kind.items() if t in _NEURONS]
    if not neurons:
        raise ValueError("read: the graph has no neuron node (LIF, LI, IF, I, CubaLIF, CubaLI)")
    inputs = {}
    for k, t in kind.items():
        if t == "Input":
            it = nodes[k].input_type
            shp = np.asarray(next(iter(it.values())) if isinstance(it, dict) else it).reshape(-1)
            inputs[k] = tuple(int(s) for s in shp)
    pops, gains, kinds = {}, {}, {}
    for k in neurons:
        m, gain, t = _neuron(k, nodes[k], thr_of.get(k))
        pops[k], gains[k], kinds[k] = m, gain, t
    # follow every path from a source (input, neuron) through linear nodes to neurons / outputs
    W_acc: dict[tuple[str, str], np.ndarray] = {}
    D_acc: dict[tuple[str, str], np.ndarray] = {}
    bias: dict[str, np.ndarray] = {k: np.zeros(pops[k].n) for k in neurons}
    outputs = {}

    resized = set()

    def walk(src, node, M, D, shape, path):
        """M [n_node, n_src]: the weights from ``src`` so far; D their delays [n_node, n_src]."""
        for nxt in succ[node]:
            t = kind[nxt]
            if nxt in path and t not in _NEURONS:
                raise ValueError(f"node {nxt!r}: a cycle of linear nodes without a neuron "
                                 f"({' -> '.join(path + [nxt])})")
            if t in _NEURONS:
                n = pops[nxt].n
                if n == 1 and M.shape[0] != 1 and nxt not in resized and _scalar(nodes[nxt]):
                    # parameters written as scalars (shape ()): the layer's size is what reaches it
                    pops[nxt], gains[nxt], kinds[nxt] = _neuron(nxt, nodes[nxt], thr_of.get(nxt), M.shape[0])
                    bias[nxt] = np.zeros(M.shape[0])
                    n = M.shape[0]
                resized.add(nxt)
                if src in pops and kinds[src] in ("LI", "I", "CubaLI") and src not in thr_of:
                    raise ValueError(f"node {src!r} ({kinds[src]}) drives {nxt!r} with its membrane (a continuous "
                                     f"signal); ctsnn's populations exchange spikes: put a Threshold node after "
                                     f"{src!r}, or end the graph there (an Output)")
                if M.shape[0] != n:
                    raise ValueError(f"node {nxt!r} ({t}) has {n} neurons but receives {M.shape[0]} values from "
                                     f"{node!r} (shape {tuple(shape)})")
                key = (src, nxt)
                if key in W_acc:
                    if np.any((W_acc[key] != 0) & (M != 0) & (D_acc[key] != D)):
                        raise ValueError(f"node {nxt!r}: two paths from {src!r} reach it with different delays")
                    D_acc[key] = np.where(M != 0, D, D_acc[key])
                    W_acc[key] = W_acc[key] + M
                else:
                    W_acc[key], D_acc[key] = M.copy(), D.copy()
            elif t == "Output":
                if src in pops:
                    outputs[nxt] = src
            elif t == "Threshold":
                walk(src, nxt, M, D, shape, path + [nxt])
            elif t == "Input":
                raise ValueError(f"node {nxt!r} (Input) has an incoming edge from {node!r}")
            else:  # a linear node, or the pass-through Input/Output of a nested graph
                if t == "pass":
                    f, out, dd = (lambda x: x), tuple(shape), None
                else:
                    try:
                        f, out, _, dd = _linear_fn(nxt, nodes[nxt], shape)
                    except ValueError:
                        raise
                    except Exception as exc:
                        raise ValueError(f"node {nxt!r} ({t}) cannot take the input of shape {tuple(shape)} "
                                         f"from {node!r}: {exc}") from None
                size = int(np.prod(shape))
                Mn = f(torch.from_numpy(np.ascontiguousarray(M.T).reshape((M.shape[1],) + tuple(shape)))
                       ).reshape(M.shape[1], -1).T.numpy()
                # delays: each output channel takes the delay of the inputs that reach it
                nz = np.abs(f(torch.eye(size, dtype=torch.float64).reshape((size,) + tuple(shape))
                              ).reshape(size, -1).T.numpy()) > 0
                Dn = np.zeros_like(Mn)
                for o in range(Mn.shape[0]):
                    ins = np.nonzero(nz[o])[0]
                    if ins.size:
                        live = M[ins] != 0
                        dmax = np.where(live, D[ins], -np.inf).max(0)
                        dmin = np.where(live, D[ins], np.inf).min(0)
                        ok = np.isfinite(dmax)
                        if np.any(ok & (dmax != dmin)):
                            raise ValueError(f"node {nxt!r} ({t}): it sums inputs that arrive with different "
                                             f"delays; put the Delay after it")
                        Dn[o] = np.where(ok, dmax, 0.0)
                if dd is not None:
                    Dn = Dn + dd[:, None]
                walk(src, nxt, Mn, Dn, out, path + [nxt])

    for k in list(inputs) + neurons:
        n = int(np.prod(inputs[k])) if k in inputs else pops[k].n
        walk(k, k, np.eye(n), np.zeros((n, n)), inputs.get(k, (n,)), [k])
    _bias_once(nodes, kind, succ, pops, kinds, bias, _shapes(nodes, kind, pred, inputs, pops))
    layer_options: dict[str, Any] = {}
    jump = dict(gains)  # the jump per unit of the file's signal
    cur_gain = {k: np.ones(pops[k].n) for k in neurons}  # Population.current per unit of bias
    if source is not None:
        for k in neurons:
            pops[k], jump[k], cur_gain[k], layer_options = _adapt(source, k, kinds[k], nodes[k], pops[k], dt,
                                                                  export_dt, reset)
    # recurrent edges without a delay: one step
    pop_list = [Population(pops[k], name=k, current=bias[k] * cur_gain[k]) for k in neurons]
    P = dict(zip(neurons, pop_list))
    E = [Edge(s, d, W_acc[(s, d)] * jump[d][:, None], D_acc[(s, d)]) for (s, d) in W_acc]
    graph = Graph({k: int(np.prod(v)) for k, v in inputs.items()}, P, E, outputs,
                  gain={k: np.asarray(v, dtype=np.float64) for k, v in jump.items()},
                  layer_options=layer_options, dt=dt, source=source)
    for comp in graph.order():
        if not graph._cyclic(comp):
            continue
        for e in graph.edges:
            if e.src in comp and e.dst in comp:
                zero = (e.weight != 0) & (e.delay == 0)
                if np.any(zero):
                    if dt is None:
                        raise ValueError(f"edge {e.src!r} -> {e.dst!r} lies on a cycle without a Delay node: give "
                                         f"read(..., dt=...) to deliver its spikes one step later (the libraries' "
                                         f"convention), or add a Delay node")
                    e.delay = np.where(zero, dt, e.delay)
    return graph


def _shapes(nodes, kind, pred, inputs, pops) -> dict:
    """The output shape of every node (from its sources), for the bias walk."""
    shapes = {k: inputs[k] for k in inputs}
    shapes.update({k: (pops[k].n,) for k in pops})
    biases = {}
    changed = True
    while changed:
        changed = False
        for k, t in kind.items():
            if k in shapes or t in _NEURONS or t in ("Input", "Output"):
                continue
            src = [s for s in pred[k] if s in shapes]
            if not src:
                continue
            if t in ("pass", "Threshold"):
                shapes[k] = shapes[src[0]]
            else:
                try:
                    _, shapes[k], b, _ = _linear_fn(k, nodes[k], shapes[src[0]])
                except Exception:
                    continue
                if b is not None:
                    biases[k] = b.numpy()
            changed = True
    return shapes, biases


def _bias_once(nodes, kind, succ, pops, kinds, bias, walk_shapes) -> None:
    """Add each biased node's bias (Affine, Conv) once, carried through the linear nodes after it."""
    def carry(node, b, shape, path):
        for nxt in succ[node]:
            t = kind[nxt]
            if t in _NEURONS:
                if b.shape[0] != pops[nxt].n:
                    continue  # reported by the weight walk
                if np.any(b != 0) and kinds[nxt] in ("CubaLIF", "CubaLI"):
                    raise ValueError(f"node {nxt!r} ({kinds[nxt]}): a constant input (bias) into the synaptic "
                                     f"current cannot be expressed by ctsnn's CubaLIF (its i has no drive)")
                bias[nxt] += b
            elif t in _LINEAR or t == "pass":
                if nxt in path:
                    continue
                if t == "pass":
                    f, out = (lambda x: x), shape
                else:
                    f, out = _linear_fn(nxt, nodes[nxt], shape)[:2]
                carry(nxt, f(torch.from_numpy(b.reshape((1,) + tuple(shape)))).reshape(-1).numpy(), out, path + [nxt])

    shapes, biases = walk_shapes
    for k, b in biases.items():
        if np.any(b != 0):
            carry(k, np.broadcast_to(b, (int(np.prod(shapes[k])),)).astype(np.float64), shapes[k], [k])


# ----------------------------------------------------------------------------- library adapters
def _adapt(source, name, kind, nd, model, dt, export_dt, reset):
    """(model, jump per unit of the file's weight [n], Population.current per unit of bias [n],
    layer options) reproducing ``source``'s own layer, for the step ``dt``."""
    n = model.n
    f = lambda k: np.broadcast_to(_arr(nd, name, k), (n,)).astype(np.float64)  # noqa: E731
    T = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    one = np.ones(n)
    if source == "snntorch":
        if kind not in ("LIF", "CubaLIF"):
            raise ValueError(f"node {name!r} ({kind}): snntorch exports Leaky as LIF (and Synaptic as CubaLIF)")
        if kind == "CubaLIF":
            raise ValueError(f"node {name!r}: snntorch's Synaptic (CubaLIF) is not supported by this adapter")
        mech = reset or "subtract"
        if mech not in ("subtract", "zero"):
            raise ValueError(f"read: reset must be 'subtract' or 'zero' for snntorch, got {reset!r}")
        d0 = 1e-4  # snntorch's exporter writes tau = 1e-4 / (1 - beta) whatever the step
        beta = 1.0 - d0 / f("tau")
        if np.any((beta <= 0) | (beta >= 1)):
            raise ValueError(f"node {name!r}: tau = {f('tau')} gives beta = 1 - 1e-4/tau outside (0, 1)")
        m = LIF(tau_mem=tau_from_decay(T(beta), dt), r=1.0, v_leak=0.0, v_th=T(f("v_threshold")), v_reset=0.0,
                reset="subtract" if mech == "subtract" else "to_value")
        order = "after_decay" if mech == "subtract" else "before_decay"
        return m, one, 1.0 / (1.0 - beta), dict(reset_delay=True, detach_reset=True, reset_order=order)
    if source == "norse":
        d0 = export_dt or dt  # norse writes tau = dt / tau_inv = dt * tau
        if kind == "CubaLIF":
            m = CubaLIF(tau_syn=T(f("tau_syn") / d0), tau_mem=T(f("tau_mem") / d0), r=T(f("r")),
                        v_leak=T(f("v_leak")), v_th=T(f("v_threshold")), v_reset=0.0)
            return m, one, one, dict(method="euler", input="impulse_start")  # i += x, then v and i step
        if kind in ("LIF", "LI"):
            tau = f("tau") / d0
            m = LIF(tau_mem=T(tau), r=T(f("r")), v_leak=T(f("v_leak")),
                    v_th=T(f("v_threshold")) if kind == "LIF" else _NO_THRESHOLD, v_reset=0.0,
                    reset="to_value" if kind == "LIF" else "none")
            return m, dt * f("r") / tau, one, dict(method="euler")
        if kind == "IF":
            return IF(r=1.0, v_th=T(f("v_threshold")), v_reset=0.0), one, one / dt, dict(method="euler")
        raise ValueError(f"node {name!r} ({kind}): norse's exporter writes LIFCell, LIFBoxCell, LIBoxCell, IAFCell")
    if source == "sinabs":
        mech = reset or "subtract"
        r_mode = "subtract" if mech == "subtract" else "to_value"
        opts = dict(multi_spike=mech == "subtract", threshold_grad=False)
        if kind == "LIF":  # tau in steps; norm_input: x (1 - alpha)
            tau_s = f("tau")
            m = LIF(tau_mem=T(tau_s * dt), r=1.0, v_leak=0.0, v_th=T(f("v_threshold")), v_reset=0.0, reset=r_mode)
            return m, -np.expm1(-1.0 / tau_s), one, opts
        if kind == "IF":
            m = IF(r=1.0, v_th=T(f("v_threshold")), v_reset=0.0, reset=r_mode)
            return m, one, one / dt, opts
        raise ValueError(f"node {name!r} ({kind}): sinabs' exporter writes IAF as IF and LIF as LIF")
    # spikingjelly: tau = tau_steps * export_dt, r = 1 (decay_input) or tau_steps, IF r = 1/export_dt
    d0 = export_dt or 1e-4
    opts = dict(method="euler", surrogate="sigmoid", fire_at_zero=True)
    if kind == "LIF":
        tau_s = f("tau") / d0
        m = LIF(tau_mem=T(tau_s * dt), r=1.0, v_leak=T(f("v_leak")), v_th=T(f("v_threshold")),
                v_reset=T(f("v_reset")))
        return m, f("r") / tau_s, f("r"), opts
    if kind == "IF":
        m = IF(r=1.0, v_th=T(f("v_threshold")), v_reset=T(f("v_reset")))
        return m, f("r") * d0, f("r") * d0 / dt, opts
    raise ValueError(f"node {name!r} ({kind}): spikingjelly's exporter writes LIFNode as LIF and IFNode as IF")


# ----------------------------------------------------------------------------- write
def _gain(model: NeuronModel, n: int | None = None) -> np.ndarray:
    """The jump of the input state per unit of NIR signal, as ``write`` states the model
    (LIF: r / tau, IF: r, CubaLIF: 1, written with ``w_in = tau_syn``)."""
    n = n or model.n
    p = lambda k: np.broadcast_to(model.p(k, torch.float64).detach().numpy(), (n,))  # noqa: E731
    if isinstance(model, CubaLIF):
        return np.ones(n)
    if isinstance(model, IF):
        return p("r").copy()
    if isinstance(model, LIF):
        return p("r") / p("tau_mem")
    raise ValueError(f"write: NIR has no node for {type(model).__name__}; ctsnn writes LIF, IF and CubaLIF")


def _node(model: NeuronModel, n: int | None = None):
    nir = _nir()
    if type(model) not in (LIF, IF, CubaLIF):
        raise ValueError(f"write: NIR has no node for {type(model).__name__}; ctsnn writes LIF, IF and CubaLIF "
                         f"(with reset 'to_value', 'subtract' or 'none')")
    n = n or model.n
    p = lambda k: np.broadcast_to(model.p(k, torch.float64).detach().numpy(), (n,)).copy()  # noqa: E731
    meta = {}
    if model.reset != "to_value":
        meta["ctsnn_reset"] = model.reset
    if np.any(p("t_ref") > 0):
        meta["ctsnn_t_ref"] = p("t_ref")
    silent = model.reset == "none" and bool(np.all(p("v_th") >= _NO_THRESHOLD))  # read from LI / I / CubaLI
    if silent:
        meta.pop("ctsnn_reset", None)
    if isinstance(model, CubaLIF):
        if silent:
            return nir.CubaLI(tau_syn=p("tau_syn"), tau_mem=p("tau_mem"), r=p("r"), v_leak=p("v_leak"),
                              w_in=p("tau_syn"), metadata=meta)
        return nir.CubaLIF(tau_syn=p("tau_syn"), tau_mem=p("tau_mem"), r=p("r"), v_leak=p("v_leak"),
                           v_threshold=p("v_th"), v_reset=p("v_reset"), w_in=p("tau_syn"), metadata=meta)
    if isinstance(model, IF):
        if silent:
            return nir.I(r=p("r"), metadata=meta)
        return nir.IF(r=p("r"), v_threshold=p("v_th"), v_reset=p("v_reset"), metadata=meta)
    if silent:
        return nir.LI(tau=p("tau_mem"), r=p("r"), v_leak=p("v_leak"), metadata=meta)
    return nir.LIF(tau=p("tau_mem"), r=p("r"), v_leak=p("v_leak"), v_threshold=p("v_th"), v_reset=p("v_reset"),
                   metadata=meta)


def _as_graph(obj) -> Graph:
    if isinstance(obj, Graph):
        return obj
    if isinstance(obj, NeuronModel):
        n = obj.n
        return Graph({"input": n}, {"neuron": Population(obj)},
                     [Edge("input", "neuron", np.diag(_gain(obj)), np.zeros((n, n)))], {"output": "neuron"},
                     gain={"neuron": _gain(obj)})
    if isinstance(obj, Network):
        if obj.sources:
            raise ValueError("write: NIR has no Poisson source; write the network without its PoissonSources")
        names = [p.name or f"pop{i}" for i, p in enumerate(obj.populations)]
        if len(set(names)) != len(names):
            raise ValueError(f"write: population names must be unique, got {names}")
        pops = dict(zip(names, obj.populations))
        edges: dict[tuple[str, str], Edge] = {}
        for pr in obj.projections:
            s, d = names[obj._pop_index(pr.pre)], names[obj._pop_index(pr.post)]
            if pr.target != pr.post.model.input_state:
                raise ValueError(f"write: a projection into state {pr.target!r} of {d!r}: NIR edges feed the "
                                 f"input ({pr.post.model.input_state!r})")
            e = edges.setdefault((s, d), Edge(s, d, np.zeros((pr.post.n, pr.pre.n)), np.zeros((pr.post.n, pr.pre.n))))
            np.add.at(e.weight, (pr.post_idx, pr.pre_idx), pr.weight)
            e.delay[pr.post_idx, pr.pre_idx] = pr.delay
        return Graph({}, pops, list(edges.values()), {f"output_{k}": k for k in names},
                     gain={k: _gain(p.model, p.n) for k, p in pops.items()})
    raise ValueError(f"write: expected a ctsnn model (LIF, IF, CubaLIF), a ctsnn.nir.Graph or a ctsnn.Network, "
                     f"got {type(obj).__name__}")


def write(obj, path, dt: float | None = None) -> None:
    """Write ``obj`` (a LIF / IF / CubaLIF model, a :class:`Graph` or a :class:`ctsnn.Network`)
    as a NIR file.  Weights are written in NIR's units (the jump divided by the target's gain:
    ``r / tau`` for LIF, ``r`` for IF; CubaLIF gets ``w_in = tau_syn``, so its weights are the
    jumps of i); delays as Delay nodes after each edge's Linear (per target neuron); a population's
    constant current as the bias of an Affine; ``reset="subtract"`` / ``"none"`` and ``t_ref`` in
    the node's metadata (``ctsnn_reset``, ``ctsnn_t_ref``), which other tools ignore.  With
    ``dt``: an edge on a cycle whose delays all equal ``dt`` is written without a Delay node, as
    the libraries write their recurrent layers (their importers then recognise them, and
    ``read(path, dt=dt)`` restores the delay)."""
    nir = _nir()
    g = _as_graph(obj)
    implicit = set()
    if dt is not None:
        for comp in g.order():
            if g._cyclic(comp):
                for i, e in enumerate(g.edges):
                    live = e.weight != 0
                    if e.src in comp and e.dst in comp and np.allclose(e.delay[live], dt, rtol=1e-12, atol=0):
                        implicit.add(i)
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    for k, n in g.inputs.items():
        nodes[k] = nir.Input(input_type=np.array([n]))
    for k, p in g.populations.items():
        nodes[k] = _node(p.model, p.n)
    biased = {k for k, p in g.populations.items() if np.any(np.asarray(p.current) != 0)}
    for k in biased:
        if isinstance(g.populations[k].model, CubaLIF):
            raise ValueError(f"write: population {k!r} (CubaLIF) has a constant current, which drives its v; NIR's "
                             f"CubaLIF takes a constant input (an Affine bias) into its synaptic current only")
    for i, e in enumerate(g.edges):
        gain = _gain(g.populations[e.dst].model, g.populations[e.dst].n)
        if np.any(gain == 0):
            raise ValueError(f"write: population {e.dst!r} has r = 0: no NIR weight gives its jumps")
        W = e.weight / gain[:, None]
        if e.src in g.populations:
            W = W / g._spike_value(e.src)
        lin = f"w_{i}_{e.src}_{e.dst}"
        if e.dst in biased:
            nodes[lin] = nir.Affine(weight=W, bias=np.asarray(g.populations[e.dst].current, dtype=np.float64).copy())
            biased.discard(e.dst)
        else:
            nodes[lin] = nir.Linear(weight=W)
        edges.append((e.src, lin))
        live = e.weight != 0
        D = np.where(live, e.delay, np.nan)
        if np.any(live & (e.delay != 0)) and i not in implicit:
            rows = np.nanmax(np.where(live, D, -np.inf), axis=1)
            rmin = np.nanmin(np.where(live, D, np.inf), axis=1)
            if np.any(np.isfinite(rows) & (rows != rmin)):
                raise ValueError(f"write: edge {e.src!r} -> {e.dst!r} has delays that differ between the synapses "
                                 f"of one target neuron; NIR's Delay node delays a whole channel")
            dl = f"d_{i}_{e.src}_{e.dst}"
            nodes[dl] = nir.Delay(delay=np.where(np.isfinite(rows), rows, 0.0))
            edges += [(lin, dl), (dl, e.dst)]
        else:
            edges.append((lin, e.dst))
    if biased:
        raise ValueError(f"write: population(s) {sorted(biased)} have a constant current but no incoming edge to "
                         f"carry it as an Affine bias")
    for k, pop in g.outputs.items():
        nodes[k] = nir.Output(output_type=np.array([g.populations[pop].n]))
        edges.append((pop, k))
    nir.write(str(path), nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))
