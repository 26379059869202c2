"""The solver contract.

A solver advances the whole population over one sub-interval ``[a, b]`` of the current step
(offsets in seconds from the step start ``sim.t0``), locates the output events in it, applies
their jumps through ``sim.fire`` and returns how far it got:

1. ``__init__(sim)`` reads what it needs from the model once (linear part, event matrix).
2. ``begin_step(sim)`` is called at the start of every grid step, after ``sim.u`` (the input
   channels held over the step) is set.
3. ``advance(sim, a, b) -> float`` integrates from ``a`` to ``b`` and returns ``b``, or an earlier
   time when the population is coupled (all-to-all or delayed feedback) and an event at that time
   must be delivered before going on; ``simulate`` then calls it again from there.

Solvers never change parameters; they read the model's drift, events and jumps, so each
equation lives only in the model.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:  # pragma: no cover
    from ..simulate import _Sim

__all__ = ["Solver", "linear_drift"]


def linear_drift(A: Tensor, B: Tensor, c: Tensor, y: Tensor, u: Tensor) -> Tensor:
    """``A y + B u + c`` for ``y`` ``[..., n, S]``, ``u`` ``[..., n, U]`` (A, B, c per neuron)."""
    return (A @ y.unsqueeze(-1)).squeeze(-1) + (B @ u.unsqueeze(-1)).squeeze(-1) + c


class Solver:
    """Abstract solver; see the module docstring for the contract."""

    name = "abstract"
    order = 0

    def __init__(self, sim: "_Sim") -> None:
        self.sim = sim

    def begin_step(self, sim: "_Sim") -> None:
        pass

    def advance(self, sim: "_Sim", a: float, b: float) -> float:  # pragma: no cover - abstract
        raise NotImplementedError
