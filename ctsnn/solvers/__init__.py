"""Solvers behind one contract (see ``base``): each steps the population (or single elements) over
a sub-interval and returns a ``Segment`` with its dense output; ``ctsnn.events.locate`` finds the
events on it and ``simulate`` applies them. ``get_solver(name)`` looks one up by method name."""
from __future__ import annotations

from .adaptive import ADAPTIVE_METHODS, FIXED_METHODS, Adaptive, make_solver_class
from .base import Hold, Problem, Segment, Solver, Steps, linear_drift
from .euler import Euler
from .exact import Exact
from .propagator import propagate, propagator

__all__ = ["Solver", "Problem", "Segment", "Hold", "Steps", "Euler", "Exact", "SOLVERS", "get_solver", "register", "propagator",
           "propagate", "linear_drift", "Adaptive", "ADAPTIVE_METHODS", "FIXED_METHODS"]

SOLVERS: dict[str, type[Solver]] = {"exact": Exact, "euler": Euler}
for _name in ADAPTIVE_METHODS + tuple(FIXED_METHODS):
    SOLVERS[_name] = make_solver_class(_name)


def register(name: str, cls: type[Solver]) -> None:
    """Make ``cls`` available as ``simulate(..., method=name)``."""
    SOLVERS[name] = cls


def get_solver(name: str) -> type[Solver]:
    if not isinstance(name, str) or name not in SOLVERS:
        raise ValueError(f"unknown method {name!r}; valid methods: {sorted(SOLVERS)}")
    return SOLVERS[name]
