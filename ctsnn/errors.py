"""Exceptions of ctsnn, in a module that imports nothing from the package (so every layer,
solvers and kernels included, can raise them without importing upwards)."""
from __future__ import annotations

__all__ = ["SimulationError", "unexpected_keywords"]


class SimulationError(RuntimeError):
    """The simulation cannot go on: an endless event loop (a reset that does not bring the
    neuron below threshold, zero-delay feedback that re-excites a population without end), or
    more events than ``max_events_per_step`` allows."""


def unexpected_keywords(func: str, names, known, tail: str = "") -> str:
    """The message for keyword arguments ``names`` that ``func`` does not take: the function's
    name, each argument with its closest known name, and ``tail`` (what it does take)."""
    import difflib
    parts = []
    for nm in names:
        close = difflib.get_close_matches(nm, list(known), n=1)
        parts.append(f"{nm!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    s = "s" if len(parts) > 1 else ""
    return f"{func}() got unexpected keyword argument{s} {', '.join(parts)}" + (f"; {tail}" if tail else "")
