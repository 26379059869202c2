"""Quantities with units for the command line ("10ms", "0.1ms", "2nA", "-70mV", "100Mohm").

The Python API takes SI numbers (seconds, volts, amperes, ohms); only the CLI parses units, here.
A bare number is taken as SI. ``parse_quantity("10ms", "time") == 0.01``.
"""
from __future__ import annotations

import math
import re

__all__ = ["parse_quantity", "parse_step", "parse_unit", "format_quantity", "unit_dimension",
           "plausibility_warning", "display_unit", "UNITS", "SI_UNITS", "DIMENSIONS"]

_PREFIX = {"G": 1e9, "M": 1e6, "k": 1e3, "": 1.0, "m": 1e-3, "u": 1e-6, "µ": 1e-6, "n": 1e-9, "p": 1e-12,
           "f": 1e-15}
_BASE = {"s": "time", "A": "current", "V": "voltage", "ohm": "resistance", "Ohm": "resistance",
         "Ω": "resistance", "F": "capacitance", "S": "conductance", "Hz": "frequency"}

UNITS: dict[str, tuple[float, str]] = {}
for _b, _dim in _BASE.items():
    for _p, _f in _PREFIX.items():
        UNITS[_p + _b] = (_f, _dim)
UNITS["min"] = (60.0, "time")
DIMENSIONS = sorted(set(_BASE.values()))

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_QTY = re.compile(rf"^\s*({_NUM})\s*([^\d\s.+-][^\s]*)?\s*$")


def parse_unit(text: str, dimension: str | None = None, *, name: str = "unit") -> float:
    """The SI factor of a unit or a quantity: ``"mV"`` -> 1e-3, ``"A"`` -> 1, ``"10pA"`` -> 1e-11."""
    unit = str(text).strip()
    if unit in UNITS:
        factor, dim = UNITS[unit]
        if dimension is not None and dim != dimension:
            raise ValueError(f"{name}: {text!r} is a unit of {dim}, expected a unit of {dimension}")
        return factor
    return parse_quantity(unit, dimension, name=name)


def parse_quantity(text: str | float, dimension: str | None = None, *, name: str = "value") -> float:
    """Parse ``text`` ("10ms", "-70 mV", "2e-9") to an SI float; check its ``dimension``."""
    if isinstance(text, (int, float)):
        x = float(text)
    else:
        m = _QTY.match(str(text))
        if not m:
            raise ValueError(f"{name}: cannot read {text!r} as a number with an optional unit "
                             f"(e.g. 10ms, -70mV, 2nA, 100Mohm)")
        x = float(m.group(1))
        unit = m.group(2)
        if unit:
            if unit not in UNITS:
                raise ValueError(f"{name}: unknown unit {unit!r} in {text!r}; known units are SI "
                                 f"base units {sorted(_BASE)} with prefixes {sorted(p for p in _PREFIX if p)}")
            factor, dim = UNITS[unit]
            if dimension is not None and dim != dimension:
                raise ValueError(f"{name}: {text!r} is a {dim}, expected a {dimension}")
            x *= factor
    if not math.isfinite(x):
        raise ValueError(f"{name}: {text!r} is not finite")
    return x


def parse_step(text: str, *, name: str = "current", dimension: str | None = "current") -> tuple[float, float, float]:
    """Parse a step ``"AMP@START..STOP"`` (e.g. "1.5nA@20ms..120ms") to SI (amp, start, stop).

    A bare ``"AMP"`` is a step over the whole simulation: (amp, 0, inf). ``dimension``: that of
    the amplitude (None for a model with a dimensionless current).
    """
    if "@" not in text:
        return parse_quantity(text, dimension, name=name), 0.0, math.inf
    amp, _, window = text.partition("@")
    if ".." not in window:
        raise ValueError(f"{name}: a step is AMP@START..STOP, e.g. 1.5nA@20ms..120ms; got {text!r}")
    start, _, stop = window.partition("..")
    a = parse_quantity(amp, dimension, name=name)
    t0 = parse_quantity(start, "time", name=f"{name} start")
    t1 = parse_quantity(stop, "time", name=f"{name} stop") if stop.strip() else math.inf
    if t1 <= t0:
        raise ValueError(f"{name}: the step must end after it starts, got {text!r}")
    return a, t0, t1


def unit_dimension(unit: str) -> str | None:
    """The dimension of an SI unit without prefix (``"s"`` -> ``"time"``, ``"ohm"`` ->
    ``"resistance"``); None for anything else (``"mV"``, ``"1/ms"``, ``""``): a quantity stored in
    such a unit is a bare number, and a model parameter's unit (``ctsnn.models.Param``) says which."""
    return _BASE.get(unit) if unit != "Hz" else "frequency"


# the unit a reader expects for each dimension (and its SI factor)
_DISPLAY = {"time": ("ms", 1e-3), "voltage": ("mV", 1e-3), "current": ("pA", 1e-12),
            "resistance": ("MOhm", 1e6), "capacitance": ("pF", 1e-12), "conductance": ("nS", 1e-9),
            "frequency": ("Hz", 1.0)}


def display_unit(dimension: str | None) -> tuple[str, float]:
    """(unit, SI factor) in which values of ``dimension`` are shown: ms, mV, pA, MOhm, pF, nS."""
    return _DISPLAY.get(dimension, ("", 1.0))


def format_quantity(value: float, dimension: str | None, digits: int = 6) -> str:
    """``0.01, "time"`` -> ``"10 ms"``; dimensionless values as plain numbers."""
    unit, f = display_unit(dimension)
    x = float(value) / f
    return f"{x:.{digits}g} {unit}".rstrip()


# plausible magnitudes of neuron-model parameters given as bare (SI) numbers
_PLAUSIBLE = {"time": (1e-6, 2.0), "voltage": (0.0, 0.5), "resistance": (1e5, 1e11),
              "current": (0.0, 1e-6), "capacitance": (1e-15, 1e-6), "conductance": (1e-12, 1e-5)}
_SUGGEST = {"time": "ms", "voltage": "mV", "resistance": "Mohm", "current": "nA", "capacitance": "pF",
            "conductance": "nS"}


def plausibility_warning(name: str, text: str | float, dimension: str | None) -> str | None:
    """A warning when ``text`` is a bare number (read as SI) whose magnitude is implausible for a
    neuron-model parameter of ``dimension``, e.g. ``tau_mem=10`` (10 s); None otherwise."""
    if dimension not in _PLAUSIBLE or isinstance(text, (int, float)):
        return None
    m = _QTY.match(str(text))
    if not m or m.group(2):
        return None
    x = abs(float(m.group(1)))
    lo, hi = _PLAUSIBLE[dimension]
    if x == 0 or lo <= x <= hi:
        return None
    base = {"time": "s", "voltage": "V", "resistance": "ohm", "current": "A", "capacitance": "F",
            "conductance": "S"}[dimension]
    return (f"{name}={text} was read as {m.group(1)} {base} (a bare number is SI); "
            f"did you mean {m.group(1)}{_SUGGEST[dimension]}?")

# SI unit of each dimension (what the Python API and the JSON outputs use)
SI_UNITS = {"time": "s", "voltage": "V", "current": "A", "resistance": "ohm", "capacitance": "F",
            "conductance": "S", "frequency": "Hz"}
