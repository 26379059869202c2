"""Exceptions of ctsnn, in a module that imports nothing from the package (so every layer,
solvers and kernels included, can raise them without importing upwards)."""
from __future__ import annotations

__all__ = ["SimulationError"]


class SimulationError(RuntimeError):
    """The simulation cannot go on: an endless event loop (a reset that does not bring the
    neuron below threshold, zero-delay feedback that re-excites a population without end), or
    more events than ``max_events_per_step`` allows."""
