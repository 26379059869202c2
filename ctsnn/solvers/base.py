"""The solver contract: a solver integrates, ``ctsnn.events`` locates, ``simulate`` applies.

The three roles (as in scipy's ``solve_ivp`` and diffrax's ``diffeqsolve``)::

    solver.step(t0, y0, t1, hold)     -> Segment: y1 and the dense output y(s) on [t0, t1']
    events.locate(seg, G, theta, ...) -> first event per element in [t0, t1'] and its index
    simulate                          -> jump maps, refractory clamps and releases, input spikes,
                                         feedback, the event-loop guard; resumes the solver
                                         from the event time

A solver never sees the simulation: it gets a read-only :class:`Problem` once and a state to
advance in each call, and returns a :class:`Segment`; it writes no simulation state, calls no
callback and never imports ``ctsnn.simulate``.

Guide for implementers (a subclass of :class:`Solver`):

1. Set ``name`` (the ``method=`` string), ``order`` (``math.inf`` for exact) and the two
   capabilities ``per_element`` (``step`` accepts a subset of elements, ``rows``, each with its
   own start offset: the event loop then continues every element from its own event time without
   touching the others) and ``events_at_end`` (the solver resolves no time inside a step: an
   element fires at the step end when its event function is >= 0 there, as the discrete
   libraries do).
2. ``__init__(problem, **options)`` reads what it needs from ``problem.model`` once
   (``linear_part``, ``event_matrix``, ``event_offset``, or ``drift`` for nonlinear models), in
   ``problem.dtype`` on ``problem.device``. Options it does not know must raise ``TypeError``
   (``simulate`` turns that into a ``ValueError`` naming the method). Refuse models it cannot
   integrate with ``ValueError``.
3. ``begin_step(t0, u)`` runs at the start of every grid step (absolute start ``t0`` in s, input
   channels ``u`` ``[Bt, n, U]`` held over the step). Cache per-step quantities here.
4. ``step(t0, y0, t1, hold=None, rows=None) -> Segment`` integrates from offset ``t0`` (seconds
   from the grid-step start) towards ``t1``; the returned segment may end earlier (an adaptive
   solver returns one accepted step). Population call (``rows=None``): ``y0`` ``[Bt, n, S]`` and
   a float ``t0``. Element call (``per_element`` solvers only): ``rows`` the flat element indices
   ``[m]``, ``y0`` ``[m, S]``, ``t0`` ``[m]`` offsets (which may carry gradients: event times).
   ``hold`` (:class:`Hold`) freezes the refractory clamp state of some elements over the whole
   interval (``simulate`` ends intervals at every release).
5. ``drift(t, y, hold=None)``: the vector field of the population at offset ``t`` (the model's
   ``drift`` with the held states frozen); the event loop uses it for event-time gradients.
6. Optional fast path: ``advance_steps(y0, U, K, hold) -> Steps`` for up to ``K`` whole grid
   steps without an event (see ``Exact``); ``simulate`` checks them for events.
7. Write each equation once: read the model's drift, events and jumps; never restate them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import Tensor

from ..models.base import NeuronModel

__all__ = ["Solver", "Problem", "Segment", "Hold", "Steps", "linear_drift", "drift_rows"]


@dataclass(frozen=True)
class Problem:
    """What a solver may read (fixed for a run): the model, the dtype and device, the grid step
    ``dt`` (s), the sizes ``n`` (neurons), ``Bt`` (batch elements), ``S`` (states), ``E`` (events),
    ``M = Bt n`` (elements), the index of the refractory clamp state, whether any neuron has a
    refractory period, ``stats`` (a dict solvers
    may add counters to) and ``current_fn`` (input channels as a function of absolute time, when
    the current is a callable; None otherwise)."""

    model: NeuronModel
    dtype: torch.dtype
    device: torch.device
    dt: float
    n: int
    Bt: int
    S: int
    E: int
    M: int
    clamp_index: int
    refractory: bool
    stats: dict
    current_fn: Optional[Callable[[float], Tensor]] = None


@dataclass(frozen=True)
class Hold:
    """The refractory clamp over an interval: state ``index`` of the elements in ``mask``
    (shaped like the states without their last axis) stays at ``value`` (same shape).

    A solver that propagates the clamped state sets it to ``value`` (exact when the clamped state
    drives no other state, which ``Exact`` checks); one that integrates the drift sets the clamped
    state's drift to zero instead (then it keeps the value it starts with)."""

    mask: Tensor
    index: int
    value: Tensor

    def apply(self, y: Tensor) -> Tensor:
        """``y`` with the held elements' clamp state at its value."""
        y = y.clone()
        y[..., self.index] = torch.where(self.mask, self.value, y[..., self.index])
        return y

    def freeze(self, f: Tensor) -> Tensor:
        """The drift ``f`` with the held elements' clamp state not moving (zero drift)."""
        f = f.clone()
        f[..., self.index] = torch.where(self.mask, torch.zeros_like(f[..., self.index]), f[..., self.index])
        return f

    def rows(self, rows: Tensor) -> "Hold":
        """The hold of flat elements ``rows`` (of a population hold)."""
        return Hold(self.mask.reshape(-1)[rows], self.index, self.value.reshape(-1)[rows])


@dataclass
class Segment:
    """One solver step with its dense output.

    ``m`` elements (the population flattened, or the ``rows`` of an element call) go from
    offsets ``t0`` to ``t1`` (seconds from the grid-step start): ``t0`` ``[m]`` (the dtype of
    ``t0`` is the clock in which event times are located), ``t1`` a float shared by all.

    * ``y0``, ``y1``: states at ``t0`` (right limits) and at ``t1`` (left limits), in the shape
      of the call (``[Bt, n, S]`` for the population, ``[m, S]`` for an element call; flattened,
      row ``j`` is segment row ``j``); ``y1`` is the endpoint ``at(all, t1)`` (to rounding).
    * ``at(i, s)``: the dense output: states ``[k, S]`` of segment rows ``i`` ``[k]`` at offsets
      ``s`` ``[k]`` in ``[t0[i], t1]``; differentiable in ``s`` and in the parameters (for a linear
      model it is the exact propagator, for a Runge-Kutta method its interpolant).
    * ``slope(i, s)``: ``d/ds at(i, s)`` (used to find interior maxima of an event function).
    * ``turns``: whether an event function can rise and fall back inside the segment (False for
      one state under a linear flow, or a linear interpolant): ``locate`` then skips that search.
    * ``slope0``, ``slope1``: the slopes at ``t0`` and ``t1`` (shaped like ``y0``) when ``turns``
      (else None), without gradient: they only guide the event search.
    * ``tol``: the time resolution to which event times are located (s).
    * ``events_at_end``: events are checked at ``t1`` only (see ``Solver``).
    """

    t0: Tensor
    t1: float
    y0: Tensor
    y1: Tensor
    at: Callable[[Tensor, Tensor], Tensor]
    slope: Callable[[Tensor, Tensor], Tensor]
    turns: bool
    tol: float
    slope0: Optional[Tensor] = None
    slope1: Optional[Tensor] = None
    events_at_end: bool = False


@dataclass
class Steps:
    """``K`` whole grid steps from ``advance_steps``: ``Y`` ``[K, Bt, n, S]`` step-end states and,
    where an event function can turn inside a step, ``slope0``/``slope1`` ``[K, Bt, n, S]``: the
    time derivatives at each step's start and end (else None)."""

    Y: Tensor
    slope0: Optional[Tensor] = None
    slope1: Optional[Tensor] = None


def linear_drift(A: Tensor, B: Tensor, c: Tensor, y: Tensor, u: Tensor) -> Tensor:
    """``A y + B u + c`` for ``y`` ``[..., n, S]``, ``u`` ``[..., n, U]`` (A, B, c per neuron)."""
    return (A @ y.unsqueeze(-1)).squeeze(-1) + (B @ u.unsqueeze(-1)).squeeze(-1) + c


def drift_rows(model: NeuronModel, t, y: Tensor, u: Tensor, nid: Tensor, n: int) -> Tensor:
    """The model's drift for single elements: states ``y`` ``[m, S]`` and inputs ``u`` ``[m, U]``
    of neurons ``nid`` ``[m]`` (of a population of ``n``), evaluated on a full population tensor
    so that per-neuron parameters line up."""
    m = y.shape[0]
    ar = torch.arange(m, device=y.device)
    Y = torch.zeros(m, n, y.shape[-1], dtype=y.dtype, device=y.device).index_put((ar, nid), y)
    U = torch.zeros(m, n, u.shape[-1], dtype=u.dtype, device=u.device).index_put((ar, nid), u)
    return model.drift(t, Y, U)[ar, nid]


class Solver:
    """Abstract solver; the module docstring is the guide for implementers."""

    name = "abstract"
    order = 0
    per_element = False
    events_at_end = False

    def __init__(self, problem: Problem) -> None:
        self.problem = problem

    def begin_step(self, t0: float, u: Tensor) -> None:
        self.t0, self.u = t0, u

    def step(self, t0, y0: Tensor, t1: float, hold: Hold | None = None,
             rows: Tensor | None = None) -> Segment:  # pragma: no cover - abstract
        raise NotImplementedError

    def drift(self, t: float, y: Tensor, hold: Hold | None = None) -> Tensor:  # pragma: no cover
        raise NotImplementedError
