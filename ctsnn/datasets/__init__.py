"""Sample recordings shipped with ctsnn: real whole-cell current-clamp sweeps for fitting.

Two sets (see ``PROVENANCE.md`` beside this file for their sources and terms):

* ``"b6"``: cell B6, IDRest protocol (Blue Brain Project), sweeps 181-185: 4 kHz, 3 s each, a
  2 s current step (0.70-2.70 s) of about 106, 162, 225, 284 and 341 pA on a -12.5 pA holding
  current; every sweep fires (26 to 89 spikes). NPZ files (arrays ``t``, ``v``, ``i`` in SI, a
  JSON ``meta``); sweep 183 also as CSV (``t_s,v_V,i_A``).
* ``"ca1"``: a rat CA1 pyramidal cell (1999, Hippocampus Hub), one NWB 2 file with 16 sweeps at
  10 kHz, a 400 ms step from 31.2 ms, -2.0 to +1.0 nA in 0.2 nA steps. Reading it needs the
  ``nwb`` extra (pynwb).

Usage::

    import ctsnn.datasets as datasets
    datasets.list()                          # ['b6', 'ca1']
    datasets.path("b6", sweep=183)           # the file, e.g. for the command line
    datasets.path("b6", sweep=183, format="csv")
    datasets.path("ca1")                     # the NWB file
    recs = datasets.load_b6()                # five ctsnn.Recording, sweeps 181..185
    rec = datasets.load_b6(183)              # one Recording
    ca1 = datasets.load_ca1(sweeps=[6, 7])   # Recordings of the NWB sweeps asked for

The files are package data: they are installed with ctsnn and found from this module's location,
so nothing outside the installed package (or the repository) is read.
"""
from __future__ import annotations

import builtins
from pathlib import Path
from typing import Iterable

from ..io import Recording, load_csv, load_npz, load_nwb

__all__ = ["list", "describe", "path", "load", "load_b6", "load_ca1", "ROOT"]

ROOT = Path(__file__).resolve().parent

B6_SWEEPS = (181, 182, 183, 184, 185)

_INFO = {
    "b6": {
        "folder": "bbp_idrest",
        "formats": ("npz", "csv"),
        "description": "cell B6, IDRest (Blue Brain Project; bluepyefe 2.3.63 test data, BSD): five "
                       "spiking sweeps 181-185, 4 kHz, 3 s, a 2 s step of 106-341 pA",
    },
    "ca1": {
        "folder": "hippocampus_ca1",
        "formats": ("nwb",),
        "description": "rat CA1 pyramidal cell, 1999 (Hippocampus Hub): one NWB file, 16 sweeps, "
                       "10 kHz, a 400 ms step of -2.0..+1.0 nA; needs the nwb extra (pynwb)",
    },
}


def list() -> builtins.list[str]:  # noqa: A001 - the module's documented name
    """The names of the bundled data sets: ``['b6', 'ca1']``."""
    return sorted(_INFO)


def describe(name: str) -> str:
    """One line on data set ``name`` (source, size, protocol)."""
    return _INFO[_check(name)]["description"]


def _check(name: str) -> str:
    if not isinstance(name, str) or name.lower() not in _INFO:
        raise ValueError(f"unknown data set {name!r}; the bundled ones are {list()}")
    return name.lower()


def path(name: str, sweep: int | None = None, *, format: str | None = None) -> Path:
    """The file of data set ``name``.

    ``"b6"`` needs ``sweep`` (181..185) and takes ``format="npz"`` (default) or ``"csv"`` (sweep 183
    only). ``"ca1"`` is one NWB file holding every sweep: ``sweep`` is not taken (select sweeps
    when loading: ``load_ca1(sweeps=...)`` or ``ctsnn fit ... --sweeps``).
    """
    name = _check(name)
    info = _INFO[name]
    fmt = info["formats"][0] if format is None else str(format).lower().lstrip(".")
    if fmt not in info["formats"]:
        raise ValueError(f"format={format!r}: data set {name!r} comes as {builtins.list(info['formats'])}")
    folder = ROOT / info["folder"]
    if name == "ca1":
        if sweep is not None:
            raise ValueError(f"sweep={sweep!r}: the ca1 data set is one NWB file holding all 16 sweeps; "
                             "select sweeps when loading (load_ca1(sweeps=[...]))")
        p = folder / "99111002.nwb"
    else:
        if sweep is None:
            raise ValueError(f"data set 'b6' needs sweep= one of {builtins.list(B6_SWEEPS)}")
        if sweep not in B6_SWEEPS:
            raise ValueError(f"sweep={sweep!r}: data set 'b6' has sweeps {builtins.list(B6_SWEEPS)}")
        p = folder / f"B6_IDRest_{int(sweep)}.{fmt}"
        if fmt == "csv" and not p.exists():
            raise ValueError(f"sweep={sweep!r}: data set 'b6' has sweep 183 only as CSV; use format='npz'")
    if not p.exists():  # pragma: no cover - an incomplete installation
        raise FileNotFoundError(f"{p} is missing: the installation of ctsnn lacks its package data "
                                "(reinstall ctsnn)")
    return p


def load_b6(sweeps: int | Iterable[int] | None = None, *, format: str = "npz"):
    """Sweeps of cell B6 as :class:`ctsnn.Recording` (SI units).

    ``sweeps``: one sweep number (returns one Recording), several (returns a list, in the order
    given), or None (all five, 181..185).
    """
    if sweeps is None:
        sweeps = B6_SWEEPS
    if isinstance(sweeps, int):
        return _load_b6_one(sweeps, format)
    return [_load_b6_one(s, format) for s in sweeps]


def _load_b6_one(sweep: int, format: str) -> Recording:
    p = path("b6", sweep=sweep, format=format)
    return load_csv(p) if p.suffix == ".csv" else load_npz(p)


def load_ca1(sweeps: Iterable[int | str] | None = None) -> builtins.list[Recording]:
    """Sweeps of the CA1 cell's NWB file as :class:`ctsnn.Recording` (SI units), by sweep number
    (1..16) or name; all 16 by default. Needs pynwb (the ``nwb`` extra)."""
    return load_nwb(path("ca1"), sweeps=None if sweeps is None else builtins.list(sweeps))


def load(name: str, sweeps=None):
    """``load_b6(sweeps)`` or ``load_ca1(sweeps)`` by name."""
    return {"b6": load_b6, "ca1": load_ca1}[_check(name)](sweeps)
