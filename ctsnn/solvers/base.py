"""The solver contract.

A solver advances the whole population over one sub-interval ``[a, b]`` of the current grid step
(offsets in seconds from the step start) and locates the output events in it with the rules of
``ctsnn.events`` (``candidates``, ``bracketed_root``, ``attach_event_time``); the jumps, their
recording, refractory clamps, re-arming, feedback and the guard against endless event loops
belong to the simulation (``SolverContext.fire``). Solvers never import ``ctsnn.simulate``:
everything they may read or call is listed in :class:`SolverContext`.

Guide for implementers (a subclass of :class:`Solver`):

1. Set ``name`` (the ``method=`` string) and ``order`` (``math.inf`` for exact).
2. ``__init__(ctx, **options)`` reads what it needs from ``ctx.model`` once (``linear_part``,
   ``event_matrix``, ``event_offset``, or ``drift`` for nonlinear models), in ``ctx.dtype`` on
   ``ctx.device``. Options it does not know must raise ``TypeError`` (``simulate`` turns that into
   a ``ValueError`` naming the method). Refuse models it cannot integrate with ``ValueError``.
3. ``begin_step(ctx)`` runs at the start of every grid step, after ``ctx.u`` (the input
   channels held over the step, ``[Bt, n, U]``) is set. Cache per-step quantities here.
4. ``advance(ctx, a, b) -> float`` integrates ``ctx.y`` from offset ``a`` to ``b``. For every
   element with an event in ``(a, b]``: locate its time (a few ulps of ``dt``), set the state to
   its left limit there and call ``ctx.fire(elements, offsets, events, pre)``, which applies the
   jumps and returns the right limits; continue from them to ``b``. Elements that are
   refractory (``ctx.in_refractory``) keep their clamped state (``ctx.clamp``) and have no events
   until their release time. Return ``b``; when ``ctx.coupled`` (all-to-all or delayed feedback),
   return the time of the first event instead, after firing it, so that ``simulate`` delivers
   its feedback before going on (it calls ``advance`` again from there).
5. Optional fast path: ``advance_steps(ctx, U, K) -> (m, Y)`` for whole event-free grid steps
   (see ``Exact``).
6. Write each equation once: read the model's drift, events and jumps; never restate them.
"""
from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from ..models.base import NeuronModel

__all__ = ["Solver", "SolverContext", "linear_drift"]


class SolverContext(Protocol):
    """What a solver may read and call (implemented by the simulation's state object).

    Read-only: ``model``, ``dtype``, ``device``, ``dt``, the sizes ``n`` (neurons), ``Bt``
    (batch elements), ``S`` (states), ``E`` (events), ``M = Bt n`` (elements), ``t0`` (absolute
    start of the current step, s), ``u`` (input channels held over the step, ``[Bt, n, U]``),
    ``t_ref`` (``[n|1]`` refractory periods or None), ``ref_until`` (``[Bt, n]`` float64 absolute
    release times), ``clamp_index``, ``clamp_val``, ``coupled``, ``max_events_per_step`` and
    ``current_fn`` (present when the current is a callable of time).

    Read-write: ``y`` (the population state ``[Bt, n, S]``; a solver replaces it by the state at
    the end of its sub-interval) and ``armed`` (``[Bt, n, E]`` bool; set where an element's event
    function is below zero at a point the solver has passed, see ``ctsnn.events.rearm``).
    """

    model: NeuronModel
    dtype: torch.dtype
    device: torch.device
    dt: float
    n: int
    Bt: int
    S: int
    E: int
    M: int
    t0: float
    u: Tensor
    t_ref: Tensor | None
    ref_until: Tensor
    clamp_index: int
    clamp_val: Tensor
    coupled: bool
    max_events_per_step: int
    y: Tensor
    armed: Tensor

    def in_refractory(self, a: float) -> Tensor | None:
        """``[Bt, n]`` mask of elements held at offset ``a`` (None without refractory periods)."""

    def in_refractory_at(self, gidx: Tensor, s: Tensor) -> Tensor | None:
        """Mask of elements ``gidx`` held at their own offsets ``s``."""

    def clamp(self, y: Tensor, mask: Tensor) -> Tensor:
        """``y`` with the clamped state of ``mask``-ed elements at its held value."""

    def fire(self, gidx: Tensor, offsets: Tensor, e: Tensor, pre: Tensor, write: bool = True) -> Tensor:
        """Apply event ``e`` to flat elements ``gidx`` at step ``offsets`` from left limits ``pre``
        ``[m, S]``; returns the right limits (and writes them into ``y`` when ``write``)."""

    def too_many_events(self, gidx: Tensor, a: float) -> None:
        """Raise ``SimulationError``: more than ``max_events_per_step`` events of ``gidx[0]``."""

    def count_coupled_event(self, a: float) -> None:
        """Count one stop for feedback delivery; raises ``SimulationError`` past the bound."""


def linear_drift(A: Tensor, B: Tensor, c: Tensor, y: Tensor, u: Tensor) -> Tensor:
    """``A y + B u + c`` for ``y`` ``[..., n, S]``, ``u`` ``[..., n, U]`` (A, B, c per neuron)."""
    return (A @ y.unsqueeze(-1)).squeeze(-1) + (B @ u.unsqueeze(-1)).squeeze(-1) + c


class Solver:
    """Abstract solver; the module docstring is the guide for implementers."""

    name = "abstract"
    order = 0

    def __init__(self, sim: SolverContext) -> None:
        self.sim = sim

    def begin_step(self, sim: SolverContext) -> None:
        pass

    def advance(self, sim: SolverContext, a: float, b: float) -> float:  # pragma: no cover - abstract
        raise NotImplementedError
