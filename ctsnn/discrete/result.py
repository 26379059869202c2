"""What a discrete run returns: ``RunResult`` (named fields) and ``Spikes`` (sparse events).

``Spikes`` names its events as ``ctsnn.Trace`` does: ``spike_times`` (s), ``spike_neurons`` (flat
index into the element shape), ``spike_values`` (1, a spike count, or a signed scale); a grid
layer adds ``spike_steps`` (the grid step of each event) and, for in-step events,
``spike_offsets`` (the time inside that step).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Spikes:
    """Sparse output of a discrete run (``run(..., output="sparse")``, ``stream``): event ``k`` is the
    nonzero output ``spike_values[k]`` (1, a spike count, or a signed scale) of element
    ``spike_neurons[k]`` (flat over ``shape[1:]``) at grid step ``spike_steps[k]``, i.e. in
    ``(step dt, (step + 1) dt]``; ``spike_offsets[k]`` is its time inside the step for in-step
    events (``events="in_step"``), else None.  ``spike_times``, ``spike_neurons``, ``spike_values``,
    ``n_spikes`` and ``spike_counts()`` mean what they mean on ``ctsnn.Trace``.

    The names of earlier versions, ``step``, ``index``, ``value``, ``offset`` and ``times``, are
    read-only aliases."""

    spike_steps: Tensor
    spike_neurons: Tensor
    spike_values: Tensor
    shape: tuple
    dt: float
    spike_offsets: Tensor | None = None

    def __len__(self) -> int:
        return int(self.spike_steps.numel())

    @property
    def n_spikes(self) -> int:
        return len(self)

    @property
    def spike_times(self) -> Tensor:
        """Event times in seconds (float64): ``step dt + offset`` for in-step events, else the end
        of the event's step (where a grid layer reports its spikes)."""
        if self.spike_offsets is not None:
            return self.spike_steps.to(torch.float64) * self.dt + self.spike_offsets.to(torch.float64)
        return (self.spike_steps + 1).to(torch.float64) * self.dt

    def spike_counts(self) -> Tensor:
        """Number of events per element, shaped like ``shape[1:]`` (as ``Trace.spike_counts``)."""
        n = math.prod(self.shape[1:])
        return torch.bincount(self.spike_neurons.long(), minlength=n).reshape(tuple(self.shape[1:]))

    def dense(self) -> Tensor:
        """The dense output ``[T, *shape[1:]]`` (events of one element in one step summed)."""
        out = torch.zeros(self.shape[0], math.prod(self.shape[1:]), dtype=self.spike_values.dtype)
        out.index_put_((self.spike_steps.long(), self.spike_neurons.long()), self.spike_values,
                       accumulate=True)  # in-step: several
        return out.reshape(self.shape)

    @staticmethod
    def from_dense(out: Tensor, dt: float) -> "Spikes":
        flat = out.reshape(out.shape[0], -1)
        step, index = torch.nonzero(flat, as_tuple=True)
        return Spikes(step, index, flat[step, index], tuple(out.shape), dt)

    @staticmethod
    def empty(shape, dt: float, dtype, in_step: bool = False) -> "Spikes":
        e = torch.zeros(0, dtype=torch.int64)
        return Spikes(e, e, torch.zeros(0, dtype=dtype), tuple(shape), dt,
                      torch.zeros(0, dtype=dtype) if in_step else None)

    # the names of earlier versions (read-only)
    step = property(lambda self: self.spike_steps, doc="``spike_steps`` (earlier name)")
    index = property(lambda self: self.spike_neurons, doc="``spike_neurons`` (earlier name)")
    value = property(lambda self: self.spike_values, doc="``spike_values`` (earlier name)")
    offset = property(lambda self: self.spike_offsets, doc="``spike_offsets`` (earlier name)")
    times = property(lambda self: self.spike_times, doc="``spike_times`` (earlier name)")


@dataclass(frozen=True)
class RunResult:
    """What ``DiscreteLayer.run`` and ``stream`` return.

    * ``out``: the dense output ``[T, *batch, n]`` (None with ``output="sparse"`` and for ``stream``);
    * ``state``: the final state ``[*batch, n, S]`` (``S + 1`` with a refractory period: the time
      left in it), to continue with ``run(x, result.state)``;
    * ``states``: every step's state ``[T, *batch, n, S]`` with ``record_states=True``, else None;
    * ``spikes``: the nonzero outputs as ``Spikes`` with ``output="sparse"`` and for ``stream``,
      else None;
    * ``backend``: ``"fused"`` or ``"torch"``, the path that ran.

    Unpacking it as a tuple (``out, state = layer.run(x)``, the return value of earlier versions:
    ``(out, state[, states])``, or ``(spikes, state)`` for sparse output) still works for this
    release with a ``DeprecationWarning``."""

    out: Tensor | None
    state: Tensor
    states: Tensor | None = None
    spikes: Spikes | None = None
    backend: str = "torch"

    def _legacy(self) -> tuple:
        if self.spikes is not None:
            return self.spikes, self.state
        return (self.out, self.state) + (() if self.states is None else (self.states,))

    def __iter__(self):
        warnings.warn("unpacking DiscreteLayer.run()/stream() as a tuple is deprecated; use the named fields "
                      "result.out, result.state, result.states, result.spikes", DeprecationWarning, stacklevel=2)
        return iter(self._legacy())

    def __getitem__(self, i):
        warnings.warn("indexing DiscreteLayer.run()/stream() as a tuple is deprecated; use the named fields "
                      "result.out, result.state, result.states, result.spikes", DeprecationWarning, stacklevel=2)
        return self._legacy()[i]


class Growing:
    """Spike events appended chunk by chunk into buffers that double when full (few, large
    allocations: the memory kept is the events', not the allocator's fragments)."""

    def __init__(self):
        self.n, self.bufs = 0, None

    def __len__(self):
        return self.n

    def append(self, sp: Spikes) -> None:
        cols = [sp.spike_steps, sp.spike_neurons, sp.spike_values] + (
            [] if sp.spike_offsets is None else [sp.spike_offsets])
        k = cols[0].numel()
        if self.bufs is None:
            self.bufs = [torch.empty(max(k, 1 << 16), dtype=c.dtype) for c in cols]
        if self.n + k > self.bufs[0].numel():
            cap = max(2 * self.bufs[0].numel(), self.n + k)
            self.bufs = [torch.cat([b[:self.n], b.new_empty(cap - self.n)]) for b in self.bufs]
        for b, c in zip(self.bufs, cols):
            b[self.n:self.n + k] = c
        self.n += k

    def spikes(self, shape, dt) -> Spikes:
        cols = [b[:self.n].clone() for b in self.bufs]
        return Spikes(cols[0], cols[1], cols[2], tuple(shape), dt, cols[3] if len(cols) > 3 else None)
