"""``fit_many``: one :func:`ctsnn.fit` per cell, in parallel on a Dask cluster or in sequence.

A cell is a name and its sweeps (:class:`ctsnn.Recording` objects). Every cell is fitted on its
own, with the same model, parameters and options; on ``dask.distributed`` each fit is one task
(torch on one thread inside it: a one-neuron fit is a chain of tiny tensor operations, so the
parallelism is across cells). A cell whose fit raises is reported with its error message and
the others go on. Dask is the optional extra ``dask`` (``pip install 'ctsnn[dask]'``), imported
only when ``client=`` or ``workers=`` asks for it. See docs/fitting.md, "Many cells".
"""
from __future__ import annotations

import copy
import csv
import io as _io
import logging
import math
import sys
import time
import uuid
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..models.base import NeuronModel
from ..validate import names as _names
from ..validate import positive_int
from .core import OBSERVATION, FitResult

__all__ = ["fit_many", "ManyFitResult"]

_DASK_HINT = "pip install 'ctsnn[dask]' (dask[distributed])"


def _distributed():
    """The ``distributed`` module, or an ImportError that names the extra."""
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(f"fitting on a Dask cluster (client= or workers=; --workers or --scheduler "
                          f"from the shell) needs dask.distributed, the 'dask' extra: {_DASK_HINT}") from exc
    return distributed


@dataclass
class ManyFitResult:
    """What :func:`fit_many` found, cell by cell.

    ``cells``: the cell names in the order given; ``results``: cell -> :class:`FitResult` for the
    fits that ran (converged or not: see each ``success``); ``errors``: cell -> the error message
    of a cell that could not be fitted; ``n_sweeps`` and ``spike_counts`` per cell (recorded and
    model spike totals over the sweeps, where the loss is ``"spikes"``); ``where`` the process
    (host:pid) that fitted each cell; ``timing`` its ``(wall, cpu)`` seconds inside the task
    (the fit alone, without scheduling or transfers; cpu: the fitting thread's CPU time, so
    wall - cpu is time spent waiting for a core); ``warnings`` the warnings each cell's fit gave (also
    re-issued here, named by cell, wherever the fit ran); ``wall_time_s`` of the
    whole run. ``rows()`` is the summary table, ``to_csv(path)`` writes it.
    """

    cells: list[str]
    results: dict[str, FitResult] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    n_sweeps: dict[str, int] = field(default_factory=dict)
    spike_counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)
    timing: dict[str, tuple[float, float]] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    wall_time_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Every cell fitted and converged."""
        return not self.errors and all(r.success for r in self.results.values())

    def rows(self) -> list[dict[str, Any]]:
        """One dict per cell: cell, n_sweeps, success, loss, rmse_V, each fitted parameter (SI;
        its column named ``NAME [UNIT]``) and its standard error, spike counts (model and
        recorded, loss "spikes" only), error (empty for a cell that was fitted). With a recipe
        (``fit_many(..., recipe="step")``) also ``model`` (the chosen one) and the means over the
        cell's sweeps of the per-sweep report (``train_abs_count_error``, ``train_abs_latency_error
        [s]``, ``train_isi_error``, ``train_gamma``, ``train_ev``)."""
        out = []
        for name in self.cells:
            row: dict[str, Any] = {"cell": name, "n_sweeps": self.n_sweeps.get(name, "")}
            res = self.results.get(name)
            if res is not None:
                units = res.to_dict()["units"]
                row.update(success=res.success, loss=res.loss, rmse_V=res.rmse)
                if res.loss_kind == "protocol":     # the chosen model and its per-sweep metrics' means
                    from .protocol import summarize
                    row["model"] = res.kind
                    for k, (mean, _lo, _hi) in summarize(res.train).items():
                        row[f"train_{k}" + (" [s]" if "latency" in k else "")] = mean
                for k, v in res.values.items():
                    row[_column(k, units.get(k, ""))] = v
                    row[_column(k, units.get(k, ""), "stderr")] = res.stderr.get(k, math.nan)
            else:
                row.update(success=False)
            if name in self.spike_counts:
                row["spikes_model"], row["spikes_recorded"] = self.spike_counts[name]
            row["error"] = self.errors.get(name, "")
            out.append(row)
        return out

    def csv(self) -> str:
        """The summary table as CSV text (columns: the union over the cells; a cell without a
        column leaves it empty)."""
        rows = self.rows()
        head = ["cell", "n_sweeps", "success", "loss", "rmse_V"]
        for r in rows:
            head += [k for k in r if k not in head and k not in ("spikes_model", "spikes_recorded", "error")]
        if any("spikes_model" in r for r in rows):
            head += ["spikes_model", "spikes_recorded"]
        head.append("error")
        buf = _io.StringIO()
        w = csv.DictWriter(buf, fieldnames=head, restval="", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
        return buf.getvalue()

    def to_csv(self, path) -> None:
        with open(path, "w", newline="") as fh:
            fh.write(self.csv())

    def summary(self) -> str:
        n_ok = sum(r.success for r in self.results.values())
        lines = [f"fit_many: {len(self.cells)} cell(s) in {self.wall_time_s:.1f} s: {n_ok} converged, "
                 f"{len(self.results) - n_ok} did not converge, {len(self.errors)} failed"]
        for name in self.cells:
            if name in self.errors:
                lines.append(f"  {name}: FAILED: {self.errors[name]}")
            elif name in self.results:
                r = self.results[name]
                spk = ""
                if name in self.spike_counts:
                    spk = " spikes (model/recorded) {}/{}".format(*self.spike_counts[name])
                lines.append(f"  {name}: {'converged' if r.success else 'DID NOT CONVERGE'}, loss {r.loss:.4g}, "
                             f"rmse {r.rmse * 1e3:.3g} mV{spk}")
        return "\n".join(lines)


def _column(name: str, unit: str, what: str = "") -> str:
    base = f"{name}_{what}" if what else name
    return f"{base} [{unit}]" if unit else base


def _fit_cell(name: str, recordings, model, params, fit_kwargs) -> tuple:
    """One cell's fit (a Dask task, or a call in-process): ``(name, result, None, where,
    warnings, timing)`` or ``(name, None, error message, where, warnings, timing)``, ``where``
    the process (host:pid) that ran it, ``warnings`` the texts of the warnings the fit gave,
    ``timing`` (wall, CPU of the calling thread) seconds of the fit. Torch runs on one thread inside it."""
    import os
    import socket

    import torch

    from .core import fit

    where = f"{socket.gethostname()}:{os.getpid()}"
    w0, c0 = time.perf_counter(), time.thread_time()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with warnings.catch_warnings(record=True) as caught:   # returned with the result: a worker's
        warnings.simplefilter("always")                     # warnings would not reach the user
        try:
            if "recipe" in fit_kwargs:       # the step-protocol recipe: no model or params of its own
                from .protocol import fit_protocol
                res, err = fit_protocol(recordings, fit_kwargs["recipe"]), None
            else:
                m = model(name) if callable(model) and not isinstance(model, torch.nn.Module) else copy.deepcopy(model)
                res, err = fit(m, recordings, params, **fit_kwargs), None
        except Exception as exc:  # a failed cell is reported; the others go on
            res, err = None, _message(exc)
        finally:
            torch.set_num_threads(threads)
    seen = list(dict.fromkeys(" ".join(str(w.message).split()) for w in caught))
    return name, res, err, where, seen, (time.perf_counter() - w0, time.thread_time() - c0)


def _message(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


class _Progress:
    """``fit_many: 3/8 cells (1 failed), 12 s, about 20 s left`` on one stderr line."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.done, self.failed = total, enabled, 0, 0
        self.t0 = time.perf_counter()
        self.show()

    def step(self, failed: bool) -> None:
        self.done += 1
        self.failed += bool(failed)
        self.show()

    def show(self) -> None:
        if not self.enabled:
            return
        el = time.perf_counter() - self.t0
        eta = "" if not self.done else f", about {el / self.done * (self.total - self.done):.0f} s left"
        bar = "#" * int(20 * self.done / max(self.total, 1))
        fail = f" ({self.failed} failed)" if self.failed else ""
        print(f"\rfit_many: [{bar:20s}] {self.done}/{self.total} cells{fail}, {el:.0f} s{eta}   ",
              end="\n" if self.done == self.total else "", file=sys.stderr, flush=True)


def fit_many(cells: Mapping[str, Any], model_factory_or_model=None, *, params: Sequence[str] = (),
             recipe=None, client=None, workers: int | None = None, progress: bool = True,
             **fit_kwargs) -> ManyFitResult:
    """Fit every cell of ``cells`` on its own with :func:`ctsnn.fit`.

    Parameters
    ----------
    cells : ``{cell name: Recording or list of Recordings}`` (the sweeps of each cell).
    model_factory_or_model : a one-neuron model (copied for each cell; its parameter values are
        the start) or a callable ``factory(cell_name) -> model``.
    params : the parameters to fit (as for ``fit``); every other keyword (``per_sweep``,
        ``loss``, ``init``, ``bounds``, ``max_iter``, ...) is passed to ``fit`` unchanged.
    recipe : instead of a model and params: a :class:`ctsnn.fitting.Recipe` or the name of one
        (``"step"``: the step-protocol recipe, :func:`ctsnn.fitting.fit_protocol`), applied to
        each cell's sweeps; the table then holds the chosen model and the per-sweep metrics'
        means over each cell's sweeps.
    client : a ``dask.distributed.Client``; the fits run as its tasks, and the client is used
        unchanged (neither closed nor reconfigured).
    workers : without ``client``: start a ``LocalCluster`` of this many single-threaded worker
        processes on 127.0.0.1 for this call, and close it afterwards.
        Neither: the cells are fitted here, one after the other.
    progress : a progress line over cells on stderr (count, failures, time left).

    Returns a :class:`ManyFitResult`. A cell whose fit raises (bad data, an invalid parameter, a
    worker lost) is in ``errors`` with its message; the other cells go on.
    """
    t0 = time.perf_counter()
    if not isinstance(cells, Mapping):
        raise ValueError(f"cells must map a cell name to its recordings, got {type(cells).__name__}")
    if not cells:
        raise ValueError("cells is empty: no cell to fit")
    names = [str(k) for k in cells]
    if len(set(names)) != len(names):
        raise ValueError(f"cell names must be distinct as strings, got {list(cells)}")
    params = _names("params", params)
    if recipe is not None:
        from .protocol import RECIPES, Recipe
        if isinstance(recipe, str):
            if recipe not in RECIPES:
                raise ValueError(f"recipe={recipe!r}: the named recipes are {sorted(RECIPES)}")
            recipe = RECIPES[recipe]
        if not isinstance(recipe, Recipe):
            raise ValueError(f"recipe must be a ctsnn.fitting.Recipe or a name in {sorted(RECIPES)}, got "
                             f"{type(recipe).__name__}")
        if model_factory_or_model is not None or params or fit_kwargs:
            given = (["a model"] if model_factory_or_model is not None else []) + (["params"] if params else []) \
                + sorted(fit_kwargs)
            raise ValueError(f"recipe= chooses the models and parameters itself; {', '.join(given)} cannot be "
                             f"given with it")
        fit_kwargs = {"recipe": recipe}
    elif model_factory_or_model is None:
        raise ValueError("fit_many needs a model (or a factory cell_name -> model) and params, or recipe=")
    elif not params:
        raise ValueError("params is empty: name the parameters to fit, e.g. params=('tau_mem', 'r', 'v_leak'), "
                         "or give recipe= instead of a model")
    elif isinstance(model_factory_or_model, NeuronModel):   # a name the model lacks fails every cell: say so once
        have = set(dict(model_factory_or_model.params())) | set(OBSERVATION)
        for p in params + tuple(fit_kwargs.get("per_sweep", ())):
            if p not in have:
                raise ValueError(f"params: {type(model_factory_or_model).__name__} has no parameter {p!r}; it has "
                                 f"{sorted(have)}")
    elif not callable(model_factory_or_model):
        raise ValueError(f"model_factory_or_model must be a ctsnn model or a callable cell_name -> model, got "
                         f"{type(model_factory_or_model).__name__}")
    for bad in ("progress", "callback"):
        if bad in fit_kwargs:
            raise ValueError(f"{bad}= is not passed to the per-cell fits of fit_many (use progress= for "
                             f"the progress over cells)")
    if workers is not None:
        if client is not None:
            raise ValueError("give client= (an existing cluster) or workers= (a local one), not both")
        workers = positive_int("workers", workers)
    from ..io import Recording

    jobs = {}
    out = ManyFitResult(cells=names)
    for key, name in zip(cells, names):
        recs = cells[key]
        if isinstance(recs, Recording):
            recs = [recs]
        elif isinstance(recs, (list, tuple)):
            recs = list(recs)
        else:
            raise ValueError(f"cells[{name!r}] must be a Recording or a list of Recordings, got "
                             f"{type(recs).__name__}")
        out.n_sweeps[name] = len(recs)
        jobs[name] = recs
    kwargs = dict(fit_kwargs, progress=False)
    bar = _Progress(len(names), progress)
    fitted: dict[str, tuple] = {}

    def collect(name, res, err, where="", caught=(), timing=None):
        fitted[name] = (res, err)
        out.where[name] = where
        if timing is not None:
            out.timing[name] = (float(timing[0]), float(timing[1]))
        if caught:
            out.warnings[name] = list(caught)
            for text in caught:
                warnings.warn(f"cell {name}: {text}", UserWarning, stacklevel=3)
        bar.step(err is not None or res is None)

    if client is None and workers is None:
        for name in names:
            collect(*_fit_cell(name, jobs[name], model_factory_or_model, params, kwargs))
    else:
        dd = _distributed()
        own, run = None, uuid.uuid4().hex
        if client is None:
            cluster = dd.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                      host="127.0.0.1", dashboard_address=None,
                                      silence_logs=logging.ERROR)
            client = own = dd.Client(cluster)
        try:
            futures = {client.submit(_fit_cell, name, jobs[name], model_factory_or_model, params, kwargs,
                                     key=f"ctsnn-fit-{name}-{run}", pure=False): name for name in names}
            for fut in dd.as_completed(list(futures)):
                name = futures[fut]
                if fut.status == "finished":
                    collect(*fut.result())
                else:   # the task itself failed (a worker lost, a result that cannot travel)
                    collect(name, None, _message(fut.exception()))
        finally:
            if own is not None:
                cluster = own.cluster
                own.close()
                cluster.close()
    threshold = fit_kwargs.get("spike_threshold", -0.02)
    for name in names:
        res, err = fitted[name]
        if err is not None:
            out.errors[name] = err
            continue
        out.results[name] = res
        if res.loss_kind == "protocol":
            out.spike_counts[name] = (sum(r["n_model"] for r in res.train), sum(r["n_data"] for r in res.train))
        elif res.loss_kind == "spikes":
            out.spike_counts[name] = (sum(int(tr.n_spikes) for tr in res.traces),
                                      sum(int(r.spikes(threshold).size) for r in res.recordings))
    out.wall_time_s = time.perf_counter() - t0
    return out
