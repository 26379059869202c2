"""Quantities with units for the command line ("10ms", "0.1ms", "2nA", "-70mV", "100Mohm").

The Python API takes SI numbers (seconds, volts, amperes, ohms); only the CLI parses units, here.
A bare number is taken as SI. ``parse_quantity("10ms", "time") == 0.01``.
"""
from __future__ import annotations

import math
import re

__all__ = ["parse_quantity", "parse_step", "UNITS", "DIMENSIONS"]

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


def parse_step(text: str, *, name: str = "current") -> tuple[float, float, float]:
    """Parse a step ``"AMP@START..STOP"`` (e.g. "1.5nA@20ms..120ms") to SI (amp, start, stop).

    A bare ``"AMP"`` is a step over the whole simulation: (amp, 0, inf).
    """
    if "@" not in text:
        return parse_quantity(text, "current", name=name), 0.0, math.inf
    amp, _, window = text.partition("@")
    if ".." not in window:
        raise ValueError(f"{name}: a step is AMP@START..STOP, e.g. 1.5nA@20ms..120ms; got {text!r}")
    start, _, stop = window.partition("..")
    a = parse_quantity(amp, "current", name=name)
    t0 = parse_quantity(start, "time", name=f"{name} start")
    t1 = parse_quantity(stop, "time", name=f"{name} stop") if stop.strip() else math.inf
    if t1 <= t0:
        raise ValueError(f"{name}: the step must end after it starts, got {text!r}")
    return a, t0, t1
