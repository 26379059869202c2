"""Recordings: current-clamp sweeps read from arrays, NPZ, CSV and NWB files, in SI units.

A :class:`Recording` is one sweep: sample times (s), membrane potential (V) and injected current
(A), converted from the units they were stored in. Readers:

* :func:`load_arrays` (arrays in memory), :func:`load_npz`, :func:`load_csv` (named columns), and
  :func:`load_nwb` (NWB 2 current-clamp sweeps through pynwb, the ``nwb`` extra; stored values are
  converted with each dataset's own ``conversion`` and ``offset`` attributes);
* :func:`detect_spikes`: upward threshold crossings with a refractory window, timed by linear
  interpolation between samples (used for spike-time losses and for reporting).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import validate as _v
from .units import UNITS

__all__ = ["Recording", "load_arrays", "load_npz", "load_csv", "load_nwb", "nwb_sweeps", "nwb_cells",
           "detect_spikes"]


def _scale(unit: str | None, dimension: str, what: str) -> float:
    if unit is None:
        raise ValueError(f"the unit of {what} is missing: give it (e.g. {_EXAMPLE[dimension]!r})")
    u = str(unit).strip()
    u = {"volts": "V", "volt": "V", "amperes": "A", "ampere": "A", "amps": "A", "seconds": "s",
         "second": "s", "sec": "s"}.get(u, u)
    if u not in UNITS or UNITS[u][1] != dimension:
        raise ValueError(f"unit {unit!r} of {what} is not a {dimension} unit (e.g. {_EXAMPLE[dimension]!r})")
    return UNITS[u][0]


_EXAMPLE = {"voltage": "mV", "current": "pA", "time": "s"}


@dataclass
class Recording:
    """One current-clamp sweep in SI units: ``t`` (s), ``v`` (V), ``current`` (A), float64.

    Parameters
    ----------
    t, v, current : 1-D arrays of one length (``current`` may be a scalar: a constant current).
    v_unit, current_unit, time_unit : the units the arrays are given in (converted to SI).
    name, meta : a label and free-form metadata.
    mask_nan : NaNs in ``v`` are an error unless this is True; then they are masked out of
        losses (``mask``), and the current must still be finite.
    input_spikes : optional synaptic input events ``(times, weights)`` (s, model units) that the
        neuron received during the sweep (times on the recording's clock); fits pass them to
        ``simulate``.
    """

    t: np.ndarray
    v: np.ndarray
    current: np.ndarray
    name: str = ""
    meta: dict = field(default_factory=dict)
    mask: np.ndarray | None = None

    def __init__(self, t, v, current, *, v_unit: str = "V", current_unit: str = "A",
                 time_unit: str = "s", name: str | None = None, meta: dict | None = None,
                 mask_nan: bool = False, input_spikes=None):
        t = _real_array("t", t).ravel() * _scale(time_unit, "time", "t")
        v = _real_array("v", v).ravel() * _scale(v_unit, "voltage", "v")
        cur = _real_array("current", current) * _scale(current_unit, "current", "current")
        cur = np.full(t.shape, float(cur)) if cur.ndim == 0 else cur.ravel()
        if not (t.size == v.size == cur.size):
            raise ValueError(f"recording arrays have different lengths: t {t.size}, v {v.size}, "
                             f"current {cur.size}")
        if t.size < 2:
            raise ValueError("a recording needs at least 2 samples")
        if not np.all(np.isfinite(t)):
            raise ValueError("recording time t contains NaN or Inf")
        if np.any(np.diff(t) <= 0):
            raise ValueError("recording time t must be strictly increasing")
        if not np.all(np.isfinite(cur)):
            raise ValueError("recording current contains NaN or Inf")
        bad = ~np.isfinite(v)
        if bad.any() and not mask_nan:
            raise ValueError(f"recording v contains {int(bad.sum())} NaN/Inf samples (first at "
                             f"t={t[np.argmax(bad)]:.6g} s); pass mask_nan=True to leave them out of fits")
        self.t, self.v, self.current = t, v, cur
        self.mask = ~bad if bad.any() else None
        self.name = name or ""
        self.meta = dict(meta or {})
        self.input_spikes = None
        if input_spikes is not None:
            ts, w = (np.asarray(x, dtype=np.float64).ravel() for x in input_spikes)
            if ts.size != w.size:
                raise ValueError(f"input_spikes: {ts.size} times but {w.size} weights")
            if ts.size and (ts.min() < t[0] or ts.max() > t[-1]):
                raise ValueError("input_spikes: times must lie inside the recording")
            self.input_spikes = (ts, w)

    # -------------------------------------------------------------- properties
    def __len__(self) -> int:
        return self.t.size

    @property
    def dt(self) -> float:
        """The sampling interval (s); an error if the sampling is not uniform."""
        d = np.diff(self.t)
        step = float(np.median(d))
        if np.max(np.abs(d - step)) > 1e-6 * step:
            raise ValueError(f"recording {self.name!r} is not uniformly sampled (intervals from "
                             f"{d.min():.6g} to {d.max():.6g} s); resample it first")
        return step

    @property
    def duration(self) -> float:
        return float(self.t[-1] - self.t[0])

    def window(self, t0: float | None = None, t1: float | None = None) -> "Recording":
        """The samples with ``t0 <= t <= t1`` (seconds, the recording's own clock)."""
        lo = self.t[0] if t0 is None else float(t0)
        hi = self.t[-1] if t1 is None else float(t1)
        if not (self.t[0] - 1e-12 <= lo < hi <= self.t[-1] + 1e-12):
            raise ValueError(f"window {lo:g}..{hi:g} s is outside the recording {self.name!r} "
                             f"({self.t[0]:g}..{self.t[-1]:g} s) or empty")
        sel = (self.t >= lo - 1e-12) & (self.t <= hi + 1e-12)
        out = Recording.__new__(Recording)
        out.t, out.v, out.current = self.t[sel], self.v[sel], self.current[sel]
        out.mask = None if self.mask is None else self.mask[sel]
        out.name, out.meta = self.name, dict(self.meta, window=(lo, hi))
        out.input_spikes = None
        if self.input_spikes is not None:
            ts, w = self.input_spikes
            keep = (ts >= lo) & (ts <= hi)
            out.input_spikes = (ts[keep], w[keep])
        return out

    def exclude(self, t0: float, t1: float) -> "Recording":
        """A copy with the samples ``t0 <= t <= t1`` masked out of losses (e.g. an electrode
        artefact at a current step); the simulation still runs through them."""
        t0, t1 = float(t0), float(t1)
        if not t0 <= t1:
            raise ValueError(f"exclude: t0={t0:g} s is after t1={t1:g} s")
        out = Recording.__new__(Recording)
        out.__dict__.update(self.__dict__)
        drop = (self.t >= t0 - 1e-12) & (self.t <= t1 + 1e-12)
        if not drop.any():
            raise ValueError(f"exclude: no samples of {self.name!r} lie in {t0:g}..{t1:g} s "
                             f"(the recording spans {self.t[0]:g}..{self.t[-1]:g} s)")
        out.mask = ~drop if self.mask is None else (self.mask & ~drop)
        if not out.mask.any():
            raise ValueError(f"exclude: {t0:g}..{t1:g} s leaves no sample of {self.name!r} "
                             f"({self.t[0]:g}..{self.t[-1]:g} s) to fit")
        out.meta = dict(self.meta, excluded=list(self.meta.get("excluded", [])) + [(t0, t1)])
        return out

    def spikes(self, threshold: float = -0.02, refractory: float = 2e-3) -> np.ndarray:
        """Spike times (s) in this recording; see :func:`detect_spikes`."""
        v = self.v if self.mask is None else np.where(self.mask, self.v, -np.inf)
        return detect_spikes(self.t, v, threshold=threshold, refractory=refractory)

    def __repr__(self) -> str:
        return (f"Recording({self.name!r}, {self.t.size} samples, {self.t[0]:g}..{self.t[-1]:g} s, "
                f"v {np.nanmin(self.v) * 1e3:.1f}..{np.nanmax(self.v) * 1e3:.1f} mV, current "
                f"{self.current.min() * 1e12:.1f}..{self.current.max() * 1e12:.1f} pA)")


def _real_array(name: str, x) -> np.ndarray:
    """``x`` as a float64 array of real numbers: bool, complex, string and object arrays are refused."""
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"recording {name} must hold real numbers, got an array of dtype {a.dtype}"
                        + ("; convert it (e.g. x.real, or parse the strings) first" if a.dtype.kind in "cOUS" else ""))
    return a.astype(np.float64)


def detect_spikes(t, v, threshold: float = -0.02, refractory: float = 2e-3) -> np.ndarray:
    """Times of upward crossings of ``threshold`` by ``v``, at least ``refractory`` s apart.

    Each crossing between samples k and k+1 is timed by linear interpolation,
    ``t_k + (threshold - v_k)/(v_{k+1} - v_k) (t_{k+1} - t_k)``. A crossing less than
    ``refractory`` after the previous accepted one is ignored (noise on the spike's flank).
    """
    t = np.asarray(t, dtype=np.float64).ravel()
    v = np.asarray(v, dtype=np.float64).ravel()
    if t.size != v.size:
        raise ValueError(f"detect_spikes: t has {t.size} samples but v has {v.size}")
    refractory = _v.number("refractory", refractory, nonneg=True, unit="seconds",
                           fix="the shortest interval between two detected spikes, e.g. 2e-3")
    threshold = _v.number("threshold", threshold, fix="the detection level in volts, e.g. -0.02")
    k = np.nonzero((v[:-1] < threshold) & (v[1:] >= threshold))[0]
    tc = t[k] + (threshold - v[k]) / (v[k + 1] - v[k]) * (t[k + 1] - t[k])
    out, last = [], -np.inf
    for x in tc:
        if x - last >= refractory:
            out.append(x)
            last = x
    return np.asarray(out, dtype=np.float64)


# ------------------------------------------------------------------ readers
def load_arrays(t, v, current, **kw) -> Recording:
    """A :class:`Recording` from arrays (keywords as in its constructor)."""
    return Recording(t, v, current, **kw)


def load_npz(path, *, t: str = "t", v: str = "v", current: str = "i", units: dict | None = None,
             name: str | None = None, **kw) -> Recording:
    """One sweep from an ``.npz`` file with arrays named ``t``, ``v``, ``current``.

    Units come from ``units={"t": "s", "v": "mV", "i": "pA"}`` (keyed by array name) or, failing
    that, from a JSON ``meta`` entry with a ``units`` mapping (as in the B6 IDRest files).
    """
    import zipfile

    path = _v.existing_file("path", path)
    if units is not None and not isinstance(units, dict):
        raise TypeError(f"units must be a dict such as {{'v': 'mV'}}, got {type(units).__name__}")
    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise ValueError(f"{path.name} holds one array, not named arrays (.npz)")
            missing = [k for k in (t, v, current) if k not in z.files]
            if missing:
                raise ValueError(f"{path.name} has no array(s) {missing}; it has {z.files}")
            meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
            arrays = {k: z[k] for k in (t, v, current)}
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path.name}: its 'meta' entry is not JSON ({exc})") from None
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, ValueError) as exc:
        if isinstance(exc, ValueError) and str(exc).startswith(path.name):
            raise
        raise ValueError(f"{str(path)!r} is not a readable .npz file: {type(exc).__name__}: {exc}") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path.name}: its 'meta' entry is not a JSON object")
    u = dict(meta.get("units", {}))
    u.update(units or {})
    for k in (t, v, current):
        if k not in u:
            raise ValueError(f"{path.name}: the unit of array {k!r} is missing; pass units={{{k!r}: ...}}")
    return Recording(arrays[t], arrays[v], arrays[current], time_unit=u[t], v_unit=u[v],
                     current_unit=u[current], name=name or path.stem, meta=meta, **kw)


_SUFFIX_UNIT = re.compile(r"^(.*?)[_\[( ]+([A-Za-zµ]+)[\])]?$")


def load_csv(path, *, columns: dict | None = None, units: dict | None = None,
             name: str | None = None, **kw) -> Recording:
    """One sweep from a CSV file with a header row.

    ``columns`` maps ``t``, ``v``, ``current`` to column names (default: the columns whose names
    start with t, v and i, e.g. ``t_s,v_V,i_A``). Units come from ``units`` (keyed by t, v,
    current) or from a unit suffix in the column name (``v_mV``, ``i [pA]``); without either it
    is an error.
    """
    import csv

    path = _v.existing_file("path", path)
    try:
        return _load_csv(path, columns, units, name, csv, **kw)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{str(path)!r} is not a text (UTF-8) CSV file: {exc}") from None
    except csv.Error as exc:
        raise ValueError(f"{str(path)!r} is not a readable CSV file: {exc}") from None


def _load_csv(path, columns, units, name, csv, **kw) -> Recording:
    if columns is not None and not isinstance(columns, dict):
        raise TypeError(f"columns must be a dict such as {{'v': 'Vm'}}, got {type(columns).__name__}")
    if units is not None and not isinstance(units, dict):
        raise TypeError(f"units must be a dict such as {{'v': 'mV'}}, got {type(units).__name__}")
    # utf-8-sig: a byte-order mark (spreadsheet exports) is not part of the first name; csv: quoted names
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = csv.reader(fh)
        header = [h.strip().strip("\"'").strip() for h in next(rows, [])]
        if not header or not any(header):
            raise ValueError(f"{path.name}: no header row (names of the columns, e.g. t_s,v_mV,i_pA)")
        body = [r for r in rows if r and any(c.strip() for c in r)]
        for j, r in enumerate(body):
            if len(r) != len(header):
                raise ValueError(f"{path.name}: data row {j + 1} has {len(r)} values but the header names "
                                 f"{len(header)} columns")
        try:
            data = np.array([[float(x) for x in r] for r in body], dtype=np.float64).reshape(len(body), len(header))
        except ValueError as exc:
            raise ValueError(f"{path.name}: a data row is not all numbers ({exc})") from None
    if data.ndim != 2 or data.shape[0] == 0:
        raise ValueError(f"{path.name}: no data rows under the header")
    if data.shape[1] != len(header):
        raise ValueError(f"{path.name}: {len(header)} header names but {data.shape[1]} columns")
    cols = dict(columns or {})
    for role, prefix in (("t", "t"), ("v", "v"), ("current", "i")):
        if role not in cols:
            cand = [h for h in header if h.lower().startswith(prefix)]
            if len(cand) != 1:
                raise ValueError(f"{path.name}: cannot tell which column is {role!r} among {header}; "
                                 f"pass columns={{'{role}': NAME}}")
            cols[role] = cand[0]
        if cols[role] not in header:
            raise ValueError(f"{path.name}: no column {cols[role]!r}; columns are {header}")
    u = dict(units or {})
    for role in ("t", "v", "current"):
        if role not in u:
            m = _SUFFIX_UNIT.match(cols[role])
            if m is None:
                raise ValueError(f"{path.name}: the unit of column {cols[role]!r} is missing; pass "
                                 f"units={{'{role}': ...}} or name the column like 'v_mV'")
            u[role] = m.group(2)
    arr = {role: data[:, header.index(cols[role])] for role in ("t", "v", "current")}
    return Recording(arr["t"], arr["v"], arr["current"], time_unit=u["t"], v_unit=u["v"],
                     current_unit=u["current"], name=name or path.stem, **kw)


def _sweep_number(name: str) -> int | None:
    m = re.search(r"(\d+)$", name)
    return int(m.group(1)) if m else None


def nwb_sweeps(path) -> list[dict[str, Any]]:
    """The current-clamp sweeps of an NWB file: name, number, stimulus name and description,
    start time, rate and mean current during the middle half of the sweep (A)."""
    out = []
    for rec in load_nwb(path):
        c = rec.current
        out.append({"name": rec.name, "number": rec.meta["number"], "stimulus": rec.meta["stimulus"],
                    "description": rec.meta["stimulus_description"], "start": rec.meta["starting_time"],
                    "rate": rec.meta["rate"], "current": float(np.median(c[c.size // 4: 3 * c.size // 4]))})
    return out


def nwb_cells(path) -> list[dict[str, Any]]:
    """The current-clamp sweeps of an NWB file with the cell each was recorded from: ``name``,
    ``number`` and ``cell_id`` (the ``cell_id`` of the sweep's intracellular electrode, NWB 2.5
    and later; None where the file does not state it). Reads metadata only."""
    try:
        from pynwb import NWBHDF5IO
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("reading NWB needs pynwb: pip install 'ctsnn[nwb]'") from exc
    import warnings

    path = _nwb_path(path)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with NWBHDF5IO(str(path), "r", load_namespaces=True) as io:
            nwb = io.read()
            for k, acq in nwb.acquisition.items():
                if type(acq).__name__ != "CurrentClampSeries":
                    continue
                cell = getattr(getattr(acq, "electrode", None), "cell_id", None)
                out.append({"name": k, "number": _sweep_number(k), "cell_id": str(cell) if cell else None})
    out.sort(key=lambda d: (d["number"] is None, d["number"] or 0, d["name"]))
    return out


def load_nwb(path, sweeps: Sequence[int | str] | None = None, *,
             stimulus_type: str | None = None) -> list[Recording]:
    """Current-clamp sweeps of an NWB 2 file as Recordings (needs the ``nwb`` extra: pynwb).

    Each ``CurrentClampSeries`` in ``acquisition`` is paired with the stimulus series that
    ``general/intracellular_ephys`` (or the name, ``ic__X`` -> ``ics__X``) links to it. Values are
    converted to SI with the datasets' own ``conversion`` (and ``offset``) attributes; times are
    ``starting_time + k / rate`` (the recording's own clock starts at 0 for each sweep).

    ``sweeps`` selects by sweep number (the trailing integer of the series name) or name;
    ``stimulus_type`` keeps the sweeps whose stimulus description contains it.
    """
    try:
        from pynwb import NWBHDF5IO
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("reading NWB needs pynwb: pip install 'ctsnn[nwb]'") from exc
    import warnings

    path = _nwb_path(path)
    if isinstance(sweeps, (str, int)):
        sweeps = [sweeps]
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with NWBHDF5IO(str(path), "r", load_namespaces=True) as io:
            nwb = io.read()
            stim_of = _stimulus_links(nwb)
            names = [k for k, s in nwb.acquisition.items() if type(s).__name__ == "CurrentClampSeries"]
            names.sort(key=lambda k: (_sweep_number(k) is None, _sweep_number(k) or 0, k))
            if sweeps is not None:
                want = {str(s) for s in sweeps}
                unknown = want - {str(_sweep_number(k)) for k in names} - set(names)
                if unknown:
                    raise ValueError(f"{path.name}: no sweep(s) {sorted(unknown)}; sweeps are "
                                     f"{[_sweep_number(k) for k in names]}")
                names = [k for k in names if str(_sweep_number(k)) in want or k in want]
            for k in names:
                acq = nwb.acquisition[k]
                stim = stim_of.get(k) or nwb.stimulus.get(k.replace("ic__", "ics__", 1))
                if stim is None:
                    raise ValueError(f"{path.name}: no stimulus series found for sweep {k!r}")
                desc = getattr(acq, "stimulus_description", "") or ""
                if stimulus_type is not None and stimulus_type.lower() not in desc.lower():
                    continue
                for series, what in ((acq, "response"), (stim, "stimulus")):
                    if series.rate is None:
                        raise ValueError(f"{path.name}: the {what} {series.name!r} of sweep {k!r} has explicit "
                                         "timestamps, not a rate; read it with load_arrays")
                v, v_unit, v_conv = _nwb_values(series=acq, dimension="voltage", where=f"{path.name}: {k}")
                i, i_unit, i_conv = _nwb_values(series=stim, dimension="current", where=f"{path.name}: {stim.name}")
                t = np.arange(v.size, dtype=np.float64) / acq.rate
                t0_v, t0_i = float(acq.starting_time or 0.0), float(stim.starting_time or 0.0)
                resampled = not (float(stim.rate) == float(acq.rate) and t0_i == t0_v and i.size == v.size)
                if resampled:
                    i = _hold_on(i, float(stim.rate), t0_i - t0_v, t, where=f"{path.name}: sweep {k!r}")
                meta = {"file": path.name, "number": _sweep_number(k), "stimulus": stim.name,
                        "stimulus_description": desc, "starting_time": t0_v,
                        "rate": float(acq.rate), "v_unit_stored": v_unit, "i_unit_stored": i_unit,
                        "v_conversion": v_conv, "i_conversion": i_conv,
                        "stimulus_rate": float(stim.rate), "stimulus_resampled": resampled}
                out.append(Recording(t, v, i, name=k, meta=meta))
    if not out:
        raise ValueError(f"{path.name}: no current-clamp sweep"
                         + (f" whose stimulus description contains {stimulus_type!r}" if stimulus_type else "")
                         + "; nwb_sweeps(path) lists the sweeps")
    return out


def _nwb_path(path) -> Path:
    """An existing HDF5 file (the container of NWB 2), else a ``ValueError`` naming it."""
    path = _v.existing_file("path", path)
    try:
        import h5py
        with h5py.File(path, "r"):
            pass
    except OSError as exc:
        raise ValueError(f"{str(path)!r} is not a readable NWB (HDF5) file: {exc}") from None
    return path


def _nwb_values(series, dimension: str, where: str):
    """A series' values in SI: ``(data * conversion + offset) * unit``, with the unit stored in the
    file (the dataset's own ``unit`` attribute: pynwb reports 'volts' / 'amperes' for every
    current-clamp series whatever the file says, e.g. data written in mV with unit 'mV')."""
    data = series.data
    stored = None
    attrs = getattr(data, "attrs", None)
    if attrs is not None and "unit" in attrs:
        stored = attrs["unit"]
        stored = stored.decode() if isinstance(stored, bytes) else str(stored)
    unit = stored or series.unit
    conv = float(series.conversion if series.conversion is not None else 1.0)
    off = float(getattr(series, "offset", 0.0) or 0.0)
    try:
        scale = _scale(unit, dimension, f"{where} (NWB unit)")
    except ValueError:
        raise ValueError(f"{where}: NWB unit {unit!r} is not a {dimension} unit") from None
    vals = (np.asarray(data[:], dtype=np.float64) * conv + off) * scale
    return vals, unit, conv


def _hold_on(i: np.ndarray, rate: float, start: float, t: np.ndarray, where: str) -> np.ndarray:
    """Stimulus samples ``i`` (``rate`` Hz, first at ``start`` s on the response's clock ``t``), each
    held until the next one (a DAC's zero-order hold), read at the response's times ``t``."""
    pos = (t - start) * rate
    k = np.floor(pos + 1e-9).astype(np.int64)
    if k.min() < 0 or k.max() >= i.size:
        raise ValueError(f"{where}: the stimulus ({i.size} samples at {rate:g} Hz from {start:g} s) does not "
                         f"cover the response ({t.size} samples, {t[0]:g}..{t[-1]:g} s); cannot put them on one "
                         "clock")
    return i[k]


def _stimulus_links(nwb) -> dict:
    """acquisition name -> stimulus series, from the intracellular recordings table if present."""
    links = {}
    try:
        table = nwb.intracellular_recordings
        if table is None:
            return links
        df_resp = table.responses["response"].data
        df_stim = table.stimuli["stimulus"].data
        for r, s in zip(df_resp, df_stim):
            links[r[2].name] = s[2]
    except Exception:  # the table is optional in NWB; fall back to names
        return {}
    return links


def read_table(path, option: str) -> dict:
    """Named arrays of a ``.npy`` (one array, named ``""``) or ``.npz`` file, for the command line's
    input options: a file that numpy cannot read as arrays (pickled objects, garbage, a truncated
    archive) gives one ``ValueError`` naming ``option`` and the file."""
    import zipfile

    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            return {"": np.load(path, allow_pickle=False)}
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise ValueError("it holds one array, not named arrays (.npz)")
            return {k: np.asarray(z[k]) for k in z.files}
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, ValueError) as exc:
        raise ValueError(f"{option}: {str(path)!r} is not a readable {path.suffix or 'numpy'} file: "
                         f"{type(exc).__name__}: {exc}") from None
