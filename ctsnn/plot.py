"""Figures of simulated neurons that do not lie at spikes.

Every function draws with matplotlib's object API (no ``pyplot``, so it works headless and never
opens a window), accepts ``ax=`` (or ``axes=``) to draw into an existing figure, and returns what
it drew on. matplotlib is imported only when a function is called.

* :func:`membrane` draws the membrane potential through every spike: at each spike time the line
  rises to the pre-reset value (the state's left limit) and drops to the post-reset value (its
  right limit), both taken from the Trace, whatever the recording grid; the threshold (moving
  with ``b`` for threshold-adapting models) and the reset level are drawn as well.
* :func:`raster` draws spike times as exact floats, one marker collection per sign.
* :func:`states` stacks every recorded state, :func:`compare` overlays one neuron under several
  dt or methods and shows the spike-time differences (spikes matched one to one by
  :func:`match_spikes`), :func:`fi_curve` draws rate against current, :func:`fit` a fitted
  model over the recordings it was fitted to, with the residuals.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

__all__ = ["membrane", "raster", "states", "compare", "fi_curve", "fit", "membrane_polyline",
           "match_spikes", "save"]

POS_COLOR, NEG_COLOR = "#1f4e9c", "#c0392b"


def _new_axes(ax, nrows=1, sharex=True, height_ratios=None, figsize=None):
    """``ax`` if given, else new axes on a new (pyplot-free) Figure."""
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize or (7.0, 2.2 + 1.6 * nrows), layout="constrained")
    axes = fig.subplots(nrows, 1, sharex=sharex, squeeze=False,
                        gridspec_kw={"height_ratios": height_ratios} if height_ratios else None)[:, 0]
    return axes[0] if nrows == 1 else list(axes)


def save(fig_or_ax, path, dpi: int = 120):
    """Write the figure holding ``fig_or_ax`` to ``path`` (PNG, PDF, SVG by suffix; no suffix:
    matplotlib's default format is appended) and return the path actually written.  The folder
    must exist (it is not created); an existing directory is an error."""
    from pathlib import Path

    import matplotlib

    from .validate import output_path
    p = output_path("path", path)
    if not p.suffix:
        p = p.with_name(p.name + "." + matplotlib.rcParams["savefig.format"])
        output_path("path", p)
    obj = fig_or_ax[0] if isinstance(fig_or_ax, (list, tuple)) else fig_or_ax
    fig = getattr(obj, "figure", None) or obj
    fig.savefig(p, dpi=dpi)
    return Path(p)


def _time_unit(t_end: float) -> tuple[float, str]:
    return (1e3, "ms") if t_end <= 2.0 else (1.0, "s")


def _state_unit(trace, state: str) -> str | None:
    """The unit the model declares for ``state`` (``NeuronModel.declared_states``, kept in
    ``trace.thresholds["state_units"]``); None when the trace does not say (saved without it)."""
    return trace.thresholds.get("state_units", {}).get(state)


def _axis_unit(trace, state: str, values) -> tuple[float, str]:
    """(factor, unit name) in which ``state`` is drawn, from its declared unit: volts as mV for
    physiological values (|values| and the thresholds of the events that involve the state below
    ~0.5), else V; amperes as pA, nA or A by magnitude; any other unit (a model's own ``"mV"``,
    ``"1/s"``, ``""``) as stored. A trace without declared units is drawn as stored, unlabelled."""
    unit = _state_unit(trace, state)
    if unit == "V":
        ref = [abs(float(x)) for x in np.ravel(values) if np.isfinite(x)]
        for ev in trace.thresholds.get("events", ()):
            if state in ev.get("coef", {}):
                ref.extend(abs(float(x)) for x in ev["offset"])
        return (1e3, "mV") if ref and max(ref) < 0.5 else (1.0, "V")
    if unit == "A":
        return _current_unit(values)
    return 1.0, unit or ""


def _axis_label(state: str, unit: str) -> str:
    return f"{state} ({unit})" if unit else state


def _trace_arg(name: str, trace) -> None:
    """``trace`` must be a :class:`ctsnn.Trace` (what ``simulate`` returns or ``Trace.load`` reads)."""
    from .trace import Trace
    if not isinstance(trace, Trace):
        hint = ("; a Recording is data: draw it with matplotlib (rec.t, rec.v), or fit it and use plot.fit"
                if type(trace).__name__ == "Recording" else "")
        raise TypeError(f"{name} must be a ctsnn.Trace (from simulate or Trace.load), got "
                        f"{type(trace).__name__}{hint}")


def _state_series(trace, name: str, neuron: int) -> np.ndarray:
    x = trace[name].detach().cpu()
    return x.reshape(x.shape[0], -1)[:, neuron].double().numpy()


def membrane_polyline(trace, neuron: int = 0, state: str = "v") -> tuple[np.ndarray, np.ndarray]:
    """Times and values of ``state`` for one (flat) neuron with both limits at each of its events.

    The grid samples are merged with ``(t_k, pre_k)`` and ``(t_k, post_k)`` for every event ``k``
    of that neuron, in time order (pre before post before a grid sample at the same time, since
    grid samples are right limits).
    """
    _trace_arg("trace", trace)
    if state not in trace.states:
        raise ValueError(f"state {state!r} was not recorded (recorded: {sorted(trace.states)}); "
                         f"simulate with record=({state!r}, ...)")
    if not 0 <= int(neuron) < trace.n_neurons:
        raise ValueError(f"neuron {neuron} out of range: the trace has {trace.n_neurons} neurons")
    t = trace.t.detach().cpu().double().numpy()
    v = _state_series(trace, state, neuron)
    sel = (trace.spike_neurons == int(neuron)).cpu()
    ts = trace.spike_times.detach().cpu()[sel].double().numpy()
    if ts.size == 0:
        return t, v
    i = trace.state_names.index(state)
    pre = trace.spike_pre.detach().cpu()[sel][:, i].double().numpy()
    post = trace.spike_post.detach().cpu()[sel][:, i].double().numpy()
    times = np.concatenate([t, ts, ts])
    vals = np.concatenate([v, pre, post])
    rank = np.concatenate([np.full(t.size, 2), np.zeros(ts.size), np.ones(ts.size)])
    seq = np.concatenate([np.arange(t.size), np.arange(ts.size), np.arange(ts.size)])
    order = np.lexsort((seq, rank, times))
    return times[order], vals[order]


def _per_neuron(value, neuron: int):
    if value is None:
        return None
    arr = np.ravel(np.asarray(value, dtype=float))
    return float(arr[neuron] if arr.size > 1 else arr[0])


def membrane(trace, neurons: int | Sequence[int] = 0, state: str = "v", *, ax=None,
             threshold: bool = True, reset: bool = True, markers: bool = True, t_unit=None,
             v_unit=None, label: str | None = None, color=None):
    """Membrane potential of ``neurons`` (flat indices) against time, drawn through every spike.

    The threshold is drawn where each event function of the model fires (read from its
    ``event_matrix`` / ``event_offset``: ``v_th``, ``v_th + b(t)`` for threshold adaptation,
    ``pos_th - bias`` and ``-(neg_th + bias)`` for ternary models, the cut-off ``v_peak`` of the
    nonlinear models), the reset level where the jump sets the state to a fixed value (reset to
    ``v_reset``), and a marker at each exact spike time on the pre-reset value.
    Returns the Axes.
    """
    _trace_arg("trace", trace)
    if state not in trace.states:
        raise ValueError(f"state {state!r} was not recorded (recorded: {sorted(trace.states)}); "
                         f"simulate with record=({state!r}, ...)")
    if isinstance(neurons, torch.Tensor):
        neurons = neurons.detach().cpu().numpy()
    arr = np.ravel(np.asarray(neurons))
    if arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"neurons must be one or more integer (flat) neuron indices, got {neurons!r}")
    neurons = [int(j) for j in arr]
    for j in neurons:
        if not 0 <= int(j) < trace.n_neurons:
            raise ValueError(f"neuron {j} out of range: the trace has {trace.n_neurons} neurons")
    ax = _new_axes(ax)
    ts_scale, ts_name = t_unit if t_unit else _time_unit(trace.t_end)
    vs_scale, vs_name = v_unit if v_unit else _axis_unit(trace, state, trace[state].detach().cpu().numpy())
    i_state = trace.state_names.index(state)
    th = trace.thresholds
    for n_i, j in enumerate(neurons):
        t, v = membrane_polyline(trace, j, state)
        c = color or f"C{n_i % 10}"
        lab = label if label is not None else (f"{state} neuron {j}" if len(neurons) > 1 else state)
        ax.plot(t * ts_scale, v * vs_scale, color=c, lw=1.2, label=lab, gid=f"membrane-{j}")
        if threshold:
            _draw_threshold(ax, trace, j, state, ts_scale, vs_scale, c)
        if reset:   # a jump that sets the state to a fixed value (reset to v_reset, to c, ...)
            for lvl in sorted({_per_neuron(ev["reset"][state], j) for ev in th.get("events", ())
                               if state in ev["reset"]}):
                ax.axhline(lvl * vs_scale, color=c, ls=":", lw=0.9, alpha=0.7, label="reset", gid=f"reset-{j}")
        if markers:
            sel = (trace.spike_neurons == int(j)).cpu()
            st = trace.spike_times.detach().cpu()[sel].double().numpy()
            pre = trace.spike_pre.detach().cpu()[sel][:, i_state].double().numpy()
            if st.size:
                ax.plot(st * ts_scale, pre * vs_scale, ls="none", marker="v", ms=4, color=c,
                        label="spikes", gid=f"spikes-{j}")
    ax.set_xlabel(f"time ({ts_name})")
    ax.set_ylabel(_axis_label(state, vs_name))
    ax.set_xlim(0, trace.t_end * ts_scale)
    _dedupe_legend(ax)
    return ax


def _draw_threshold(ax, trace, j, state, ts_scale, vs_scale, c):
    """For each event function ``g_e = sum_k G[e, k] y_k - theta_e`` that involves ``state``
    (``trace.thresholds``, from the model's ``event_matrix`` / ``event_offset``), the level of
    ``state`` at which it fires: ``(theta_e - sum_{k != state} G[e, k] y_k) / G[e, state]``: a
    flat line when no other state enters (``v_th``, ``v_peak``, ``pos_th - bias``), a line through
    time when the others were recorded (``v_th + b``), else its values at the events only."""
    sel = (trace.spike_neurons == int(j)).cpu()
    for ev in trace.thresholds.get("events", ()):
        coef = ev["coef"]
        if state not in coef:
            continue
        theta, cs = _per_neuron(ev["offset"], j), coef[state]
        others = {k: g for k, g in coef.items() if k != state}
        if not others:
            ax.axhline(theta / cs * vs_scale, color=c, ls="--", lw=0.9, label="threshold", gid=f"threshold-{j}")
        elif all(k in trace.states for k in others):
            t, _ = membrane_polyline(trace, j, state)
            level = theta - sum(g * membrane_polyline(trace, j, k)[1] for k, g in others.items())
            ax.plot(t * ts_scale, level / cs * vs_scale, color=c, ls="--", lw=0.9, label="threshold",
                    gid=f"threshold-{j}")
        else:
            # another state of the event function was not recorded: the level is known only at the
            # events (left and right limits), so draw it there instead of a line wrong in between
            ts = trace.spike_times.detach().cpu()[sel].double().numpy()
            lim = [sum(g * (trace.spike_pre if side == 0 else trace.spike_post).detach().cpu()[sel][
                :, trace.state_names.index(k)].double().numpy() for k, g in others.items()) for side in (0, 1)]
            ax.plot(np.repeat(ts, 2) * ts_scale, (theta - np.stack(lim, 1).ravel()) / cs * vs_scale,
                    ls="none", marker="_", ms=7, color=c, label=f"threshold at spikes (record {', '.join(others)} "
                    "for the line)", gid=f"threshold-{j}")


def _dedupe_legend(ax, fontsize="small", ncols=1):
    handles, labels = ax.get_legend_handles_labels()
    seen = {}
    for h, lab in zip(handles, labels):
        seen.setdefault(lab, h)
    if seen:
        ax.legend(seen.values(), seen.keys(), fontsize=fontsize, loc="best", ncols=ncols)


def _spike_arrays(trace_or_spikes):
    """(times, neurons, signs, t_end, n) from a Trace, a dict or a (times, neurons[, signs]) tuple."""
    if hasattr(trace_or_spikes, "spike_times"):
        tr = trace_or_spikes
        return (tr.spike_times.detach().cpu().double().numpy(), tr.spike_neurons.cpu().numpy(),
                tr.spike_signs.cpu().numpy().astype(int), tr.t_end, tr.n_neurons)
    if isinstance(trace_or_spikes, dict):
        times, neurons = trace_or_spikes["times"], trace_or_spikes["neurons"]
        signs = trace_or_spikes.get("signs")
    else:
        times, neurons = trace_or_spikes[0], trace_or_spikes[1]
        signs = trace_or_spikes[2] if len(trace_or_spikes) > 2 else None
    times = np.asarray(torch.as_tensor(times).detach().cpu(), dtype=float).ravel()
    neurons = np.asarray(torch.as_tensor(neurons).cpu()).ravel()
    if times.shape != neurons.shape:
        raise ValueError(f"raster: {times.size} times but {neurons.size} neuron indices")
    signs = np.ones(times.size, dtype=int) if signs is None else np.asarray(signs).astype(int).ravel()
    if signs.shape != times.shape or not np.all(np.abs(signs) == 1):
        raise ValueError(f"raster: signs must be +1 or -1, one per spike (got {signs[:5]!r}); give a Trace, "
                         f"a dict with times and neurons, or a tuple (times, neurons[, signs])")
    if neurons.size and (not np.issubdtype(neurons.dtype, np.integer) or neurons.min() < 0):
        raise ValueError("raster: neurons must be integer indices >= 0")
    t_end = float(times.max()) if times.size else 1.0
    n = int(neurons.max()) + 1 if neurons.size else 1
    return times, neurons, signs, t_end, n


def raster(trace_or_spikes, *, ax=None, groups: dict[str, Sequence[int]] | None = None,
           rate: bool = False, rate_bin: float | None = None, t_unit=None, marker_size: float = 2.0,
           t_end: float | None = None, n_neurons: int | None = None):
    """Spike raster: exact spike times against neuron index.

    Ternary events are drawn in two colours (positive blue, negative red). ``groups`` maps a
    label to neuron indices; groups are drawn in order, separated by a line, and labelled.
    ``rate=True`` adds the population rate (Hz per neuron, bins of ``rate_bin`` s) below.
    Each sign is ONE Line2D of markers (no per-spike artists), so 1e6 spikes draw in seconds.
    For spikes given as arrays, ``t_end`` (s) and ``n_neurons`` default to the last spike time
    and the largest index + 1; give them when the run was longer or some neurons were silent, so
    the rate is per neuron of the population. Returns the raster Axes, or
    ``[raster_ax, rate_ax]`` with ``rate=True``.
    """
    times, neurons, signs, t_end_, n_ = _spike_arrays(trace_or_spikes)
    if t_end is not None and not float(t_end) > 0:
        raise ValueError(f"t_end must be > 0 (seconds), got {t_end!r}")
    if n_neurons is not None and (int(n_neurons) < n_ or int(n_neurons) < 1):
        raise ValueError(f"n_neurons={n_neurons!r} is smaller than the largest neuron index + 1 ({n_})")
    if rate_bin is not None and not float(rate_bin) > 0:
        raise ValueError(f"rate_bin must be > 0 (seconds), got {rate_bin!r}")
    t_end = float(t_end) if t_end is not None else t_end_
    n = int(n_neurons) if n_neurons is not None else n_
    if ax is None:
        axes = _new_axes(None, nrows=2 if rate else 1, height_ratios=[3, 1] if rate else None)
    else:
        axes = ax
    rax = axes[0] if isinstance(axes, list) else axes
    ts_scale, ts_name = t_unit if t_unit else _time_unit(t_end)
    ypos = neurons.astype(float)
    if groups:
        order, ticks, labels, start = {}, [], [], 0
        for lab, members in groups.items():
            members = list(members)
            bad = [m for m in members if not 0 <= int(m) < n]
            if bad:
                raise ValueError(f"raster: groups[{lab!r}] names neuron {bad[0]}, but there are {n} neurons "
                                 f"(0..{n - 1})")
            for r_, m in enumerate(members):
                order[int(m)] = start + r_
            ticks.append(start + (len(members) - 1) / 2)
            labels.append(lab)
            start += len(members)
            rax.axhline(start - 0.5, color="0.7", lw=0.6)
        lut = np.full(max(n, max(order) + 1), np.nan)
        for m, r_ in order.items():
            lut[m] = r_
        ypos = lut[neurons]
        rax.set_yticks(ticks, labels)
    for sgn, color, lab in ((1, POS_COLOR, "positive"), (-1, NEG_COLOR, "negative")):
        sel = signs == sgn
        if sel.any() or sgn == 1:
            rax.plot(times[sel] * ts_scale, ypos[sel], ls="none", marker="|", ms=marker_size * 2,
                     mew=0.8, color=color, label=lab, gid=f"raster-{lab}", rasterized=times.size > 20000)
    if (signs == -1).any():
        rax.legend(fontsize="small", loc="upper right")
    rax.set_ylabel("neuron" if not groups else "group")
    rax.set_xlim(0, t_end * ts_scale)
    if not groups:
        rax.set_ylim(-0.5, n - 0.5)
    if rate:
        pax = axes[1]
        width = rate_bin or max(t_end / 100, 1e-9)
        edges = np.arange(max(1, math.ceil(t_end / width - 1e-9)) + 1) * width
        counts, _ = np.histogram(times, bins=edges)
        hz = counts / width / max(n, 1)
        pax.stairs(hz, edges * ts_scale, fill=True, color="0.4", gid="rate")
        pax.set_ylabel("rate (Hz)")
        pax.set_xlabel(f"time ({ts_name})")
        return [rax, pax]
    rax.set_xlabel(f"time ({ts_name})")
    return rax


def states(trace, neuron: int = 0, *, axes=None, t_unit=None):
    """Every recorded state of one neuron in stacked panels sharing the time axis, each labelled
    and scaled by its declared unit (the model's ``STATES``). A state that leads an event function
    (the first state with a nonzero coefficient in ``event_matrix``: ``v``, ``v_pos``) is drawn
    as in :func:`membrane`, with its threshold, reset level and spike markers."""
    _trace_arg("trace", trace)
    names = [s for s in trace.state_names if s in trace.states]
    if not names:
        raise ValueError("the trace recorded no state; simulate with record='all'")
    axes = axes if axes is not None else _new_axes(None, nrows=len(names))
    axes = axes if isinstance(axes, list) else [axes]
    if len(axes) != len(names):
        raise ValueError(f"states: {len(names)} recorded states need {len(names)} axes, got {len(axes)}")
    ts_scale, ts_name = t_unit if t_unit else _time_unit(trace.t_end)
    leading = {next(iter(ev["coef"]), None) for ev in trace.thresholds.get("events", ()) if ev.get("coef")}
    for a, name in zip(axes, names):
        if name in leading:
            membrane(trace, neuron, name, ax=a, t_unit=(ts_scale, ts_name), reset=False)
            a.set_xlabel("")
        else:
            t, y = membrane_polyline(trace, neuron, name)
            scale, unit = _axis_unit(trace, name, y)
            a.plot(t * ts_scale, y * scale, color="C1", lw=1.1, label=name, gid=f"state-{name}")
            a.set_ylabel(_axis_label(name, unit))
    axes[-1].set_xlabel(f"time ({ts_name})")
    return axes


def match_spikes(ref, other) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of two sorted spike trains: indices ``(i_ref, i_other)`` of the pairs
    that are mutual nearest neighbours in time. A spike missed (or added) early in one train
    therefore does not shift every later pair, as matching by index would."""
    ref = np.asarray(ref, dtype=float).ravel()
    other = np.asarray(other, dtype=float).ravel()
    if ref.size == 0 or other.size == 0:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)

    def nearest(x, y):                      # index in sorted y of the element nearest to each x
        k = np.clip(np.searchsorted(y, x), 1, max(y.size - 1, 1))
        lo = np.clip(k - 1, 0, y.size - 1)
        hi = np.clip(k, 0, y.size - 1)
        return np.where(np.abs(x - y[lo]) <= np.abs(y[hi] - x), lo, hi)

    to_other = nearest(ref, other)
    to_ref = nearest(other, ref)
    i_ref = np.nonzero(to_ref[to_other] == np.arange(ref.size))[0]
    return i_ref, to_other[i_ref]


def compare(traces: Sequence, labels: Sequence[str] | None = None, neuron: int = 0, *, axes=None,
            state: str = "v", t_unit=None, diff_scale: str = "linear"):
    """One neuron under several dt or methods: the membranes overlaid (top) and each trace's spike
    times minus the first trace's, matched spike by spike with :func:`match_spikes` (bottom; the
    legend counts missed and extra spikes). ``diff_scale="log"`` draws ``|difference|`` on a log
    axis instead, for differences spanning many decades (1e-12 ms next to 1 ms); exactly equal
    spike times (zero difference) have no place there and are left out. Returns ``[top, bottom]``."""
    if diff_scale not in ("linear", "log"):
        raise ValueError(f"diff_scale must be 'linear' or 'log', got {diff_scale!r}")
    traces = list(traces)
    if not traces:
        raise ValueError("compare needs at least one trace")
    labels = list(labels) if labels is not None else [f"dt={tr.dt:g} s, {tr.method}" for tr in traces]
    if len(labels) != len(traces):
        raise ValueError(f"{len(traces)} traces but {len(labels)} labels")
    axes = axes if axes is not None else _new_axes(None, nrows=2, height_ratios=[3, 2])
    top, bot = axes
    t_end = max(tr.t_end for tr in traces)
    ts_scale, ts_name = t_unit if t_unit else _time_unit(t_end)
    vs = _axis_unit(traces[0], state, traces[0][state].detach().cpu().numpy())
    ref = traces[0].spikes(neuron).detach().cpu().double().numpy()
    for c, (tr, lab) in enumerate(zip(traces, labels)):
        membrane(tr, neuron, state, ax=top, label=lab, color=f"C{c % 10}", threshold=c == 0,
                 reset=False, markers=True, t_unit=(ts_scale, ts_name), v_unit=vs)
        s = tr.spikes(neuron).detach().cpu().double().numpy()
        i_ref, i_s = match_spikes(ref, s)
        missing, extra = ref.size - i_ref.size, s.size - i_s.size
        note = f"{s.size} spikes" + (f", {missing} missed" if missing else "") + (f", {extra} extra" if extra else "")
        diff_ms = (s[i_s] - ref[i_ref]) * 1e3
        t_at = ref[i_ref] * ts_scale
        if diff_scale == "log":
            keep = diff_ms != 0
            t_at, diff_ms = t_at[keep], np.abs(diff_ms[keep])
            if c == 0:
                continue                            # the reference against itself: all zero
        bot.plot(t_at, diff_ms, marker="o", ms=3, lw=0.8,
                 color=f"C{c % 10}", label=f"{lab} ({note})", gid=f"difference-{c}")
    top.set_xlabel("")
    if len(traces) > 3:
        _dedupe_legend(top, fontsize="x-small", ncols=2)
    if diff_scale == "log":
        bot.set_yscale("log")
        bot.set_ylabel(f"|spike time − {labels[0]}| (ms)")
    else:
        bot.axhline(0, color="0.6", lw=0.6)
        bot.set_ylabel(f"spike time − {labels[0]} (ms)")
    bot.set_xlabel(f"time ({ts_name})")
    bot.legend(fontsize="small" if len(traces) <= 3 else "x-small")
    return [top, bot]


def fi_curve(model, currents, *, t_end: float = 1.0, dt: float = 1e-4, method: str = "exact",
             data=None, ax=None, i_unit=None):
    """Firing rate (Hz) against a constant input current, for ``model`` (simulated, one neuron per
    current) and optionally ``data = (currents, rates)``. Returns the Axes."""
    from .simulate import simulate

    from . import validate as _v
    cur = _v.real_values("currents", currents, torch.float64).reshape(1, -1)
    if cur.numel() == 0:
        raise ValueError("fi_curve: currents is empty; give the currents to simulate")
    _v.number("t_end", t_end, positive=True, unit="seconds", fix="the duration of each run over which the rate is taken")
    if model.n not in (1, cur.shape[1]):
        raise ValueError(f"fi_curve: the model has {model.n} neurons but {cur.shape[1]} currents")
    tr = simulate(model, cur, t_end=t_end, dt=dt, method=method, record=(), dtype=torch.float64)
    rates = tr.rates().reshape(-1).numpy()
    ax = _new_axes(ax)
    scale, name = i_unit if i_unit else _current_unit(cur.numpy())
    ax.plot(cur.numpy().ravel() * scale, rates, marker="o", ms=3, label=f"{type(model).__name__} ({method})",
            gid="fi-model")
    if data is not None:
        di, dr = (np.asarray(x, dtype=float).ravel() for x in data)
        ax.plot(di * scale, dr, ls="none", marker="s", ms=4, color="k", label="data", gid="fi-data")
    ax.set_xlabel(f"input current ({name})")
    ax.set_ylabel("firing rate (Hz)")
    ax.legend(fontsize="small")
    return ax


def fit(result, sweeps: Sequence[int] | None = None, *, axes=None, max_sweeps: int = 6):
    """A :class:`ctsnn.fitting.FitResult` over its data: for each sweep (up to ``max_sweeps``, or
    those listed in ``sweeps``) the recording (black; samples left out of the loss in grey) and the
    fitted model (coloured, through its spikes, plus ``r_series * I`` when that was fitted), all
    on one axes, and the residuals (model - data, fitted samples only) below. The title lists the
    fitted values with their standard errors. Returns ``[top, bottom]``."""
    if not hasattr(result, "recordings") or not hasattr(result, "traces"):
        raise TypeError(f"result must be a ctsnn.FitResult (from ctsnn.fit), got {type(result).__name__}")
    recs, traces = list(result.recordings), list(result.traces)
    if not recs or len(traces) != len(recs):
        raise ValueError("fit: the result holds no recordings/traces to draw (was it loaded from JSON?)")
    idx = list(range(min(len(recs), max_sweeps))) if sweeps is None else [int(k) for k in sweeps]
    for k in idx:
        if not 0 <= k < len(recs):
            raise ValueError(f"fit: sweep {k} is not in the result (it has {len(recs)} sweeps)")
    axes = axes if axes is not None else _new_axes(None, nrows=2, height_ratios=[3, 1.4])
    top, bot = axes
    t_end = max(r.duration for r in recs)
    ts, tname = _time_unit(t_end)
    vs, vname = 1e3, "mV"
    for c, k in enumerate(idx):
        rec, tr = recs[k], traces[k]
        t_rel = rec.t - rec.t[0]
        keep = np.ones(len(rec), dtype=bool) if rec.mask is None else rec.mask.astype(bool)
        label = rec.name or f"sweep {k}"
        top.plot(t_rel * ts, np.where(keep, rec.v, np.nan) * vs, color="k", lw=0.6,
                 label="data" if c == 0 else None, gid=f"fit-data-{k}")
        if not keep.all():
            top.plot(t_rel * ts, np.where(keep, np.nan, rec.v) * vs, color="0.7", lw=0.6,
                     label="left out of the fit" if c == 0 else None, gid=f"fit-excluded-{k}")
        tm, vm = membrane_polyline(tr, 0, "v")
        rs = result.values.get("r_series", result.values.get(f"r_series[{k}]", 0.0))
        if rs:
            j = np.clip(np.searchsorted(t_rel, tm, side="right") - 1, 0, len(rec) - 1)
            vm = vm + rs * rec.current[j]
        top.plot(tm * ts, vm * vs, color=f"C{c % 10}", lw=1.0, label=f"model, {label}", gid=f"fit-model-{k}")
        v_grid = tr["v"][:, 0].detach().cpu().double().numpy()[: len(rec)]
        if rs:
            v_grid = v_grid + rs * rec.current[: v_grid.size]
        res = np.where(keep[: v_grid.size], v_grid - rec.v[: v_grid.size], np.nan)
        bot.plot(t_rel[: v_grid.size] * ts, res * vs, color=f"C{c % 10}", lw=0.5, gid=f"fit-residual-{k}")
    shown = ", ".join(f"{n} = {v:.4g} ± {result.stderr.get(n, float('nan')):.2g}"
                      for n, v in result.values.items() if "[" not in n)
    top.set_title(f"{type(result.model).__name__} fit ({result.loss_kind}): {shown}; "
                  f"RMSE {result.rmse * 1e3:.3g} mV", fontsize="small", wrap=True)
    top.set_ylabel(f"membrane ({vname})")
    top.legend(fontsize="x-small", ncols=2)
    bot.axhline(0, color="0.6", lw=0.6)
    bot.set_ylabel(f"residual ({vname})")
    bot.set_xlabel(f"time from the first sample ({tname})")
    return [top, bot]


def _current_unit(values) -> tuple[float, str]:
    m = float(np.max(np.abs(values))) if np.size(values) else 0.0
    if 0 < m < 1e-9:
        return 1e12, "pA"
    if 0 < m < 1e-6:
        return 1e9, "nA"
    return 1.0, "A"
