"""Running a ``DiscreteLayer``: one step (``forward``), a sequence (``run``) and a long stream in
bounded memory (``stream``).

Each call checks its input and initial state once, takes the step constants from the layer's
cache, decides whether a gradient is needed, and then runs either the fused kernel
(``ctsnn.kernels.fused``, when ``ctsnn.discrete.options.FUSED_TORCH_ONLY`` allows the layer's
options; ``fused.plan`` reads that table) or the torch loop over the layer's ``step``
(``grid.step``, or ``in_step`` for ``events="in_step"``).  Both give the same results; the layer's
``last_backend`` (and ``RunResult.backend``) says which ran.  None of this changes the arithmetic
of a step; the layer (``ctsnn.discrete.layer``) keeps the parameters and the step.
"""
from __future__ import annotations

import math
import sys
import time

import torch
from torch import Tensor

from .. import validate as _v
from . import grid as _grid
from . import in_step as _in_step
from . import options as _options
from .result import Growing, RunResult, Spikes


def check_input(layer, x, min_dim: int) -> Tensor:
    """``x`` checked: a real tensor (integer / bool converted to the model's dtype), at least
    ``min_dim`` axes, last axis the neuron axis, finite (one vectorised pass)."""
    x = _v.float_input("x", x, layer.model.param_dtype())
    if x.dim() < min_dim:
        raise ValueError(f"x: needs {'[T, *batch, n]' if min_dim == 2 else '[*batch, n]'}, got shape "
                         f"{tuple(x.shape)}")
    check_layout(layer, x, "x")
    _v.bounded_tensor("x", x, fix="the discrete layer has no meaning for NaN or Inf input")
    return x


def check_layout(layer, x: Tensor, name: str) -> None:
    """The layer's options, and ``x``'s last axis as the model's (non-empty) neuron axis."""
    _v.layer_options(layer, _options.CHOICES)
    _v.shape_last(name, x, layer.model.n)
    if x.shape[-1] == 0:
        raise ValueError(f"{name}: the neuron axis (last) is empty, shape {tuple(x.shape)}; give at least one neuron")


def initial_state(layer, state, shape, x: Tensor, mats) -> Tensor:
    """The initial state: rest when None, else checked (finite, ``S`` trailing columns; a
    refractory layer appends the time left in the refractory period, 0 when not given)."""
    model = layer.model
    S = model.n_states
    ref = mats.t_ref is not None
    if state is None:
        state = model.init_state(tuple(shape), x.dtype, x.device)
    else:
        state = _v.float_input("state", state, x.dtype)
        width = (S, S + 1) if ref else (S,)
        if state.dim() == 0 or state.shape[-1] not in width:
            raise ValueError(f"state: needs a trailing axis of {' or '.join(map(str, width))} "
                             f"({model.state_names}{' + time left refractory' if ref else ''}), "
                             f"got shape {tuple(state.shape)}")
        _v.bounded_tensor("state", state, fix="start from rest with state=None")
        try:
            # torch's under compile (traceable; sympy is loaded then anyway), else plain arithmetic
            bshape = torch.broadcast_shapes if torch.compiler.is_compiling() else _v.broadcast_shapes
            fits = bshape(tuple(state.shape[:-1]), tuple(shape)) == tuple(shape)
        except RuntimeError:
            fits = False
        if not fits:
            raise ValueError(f"state: shape {tuple(state.shape)} does not fit the input's batch and neurons "
                             f"{tuple(shape)}: give [*batch, n, {state.shape[-1]}] (or broadcastable to it)")
        if state.shape[-1] == S + 1:
            return state
    if ref:
        state = torch.cat([state, torch.zeros_like(state[..., :1])], -1)
    return state


def needs_grad(x: Tensor, state: Tensor, ts: list[Tensor]) -> bool:
    """Whether the call must keep a graph: grad mode on and an input, state or parameter requires it."""
    return torch.is_grad_enabled() and (x.requires_grad or state.requires_grad
                                        or any(t.requires_grad for t in ts))


def _refuse_in_step_grad() -> None:
    raise ValueError("events='in_step' runs without gradients (its spikes have no surrogate); for "
                     "gradients through in-step spike times use ctsnn.simulate(method='exact')")


def _fused_or_why(layer, xs: Tensor, grad: bool, mats):
    """The fused kernel module when it runs this call (None otherwise); ``backend="fused"`` that
    cannot run it is an error naming why (``fused.plan``, from ``options.FUSED_TORCH_ONLY``)."""
    if layer.backend == "torch" or torch.compiler.is_compiling():   # the kernel is opaque to tracing
        return None
    from ..kernels import fused
    why = fused.plan(layer, xs, grad, mats)
    if why is None:
        layer.last_backend = "fused"
        return fused
    if layer.backend == "fused":
        raise ValueError(f"backend='fused' cannot run this layer: {why}")
    return None


def forward(layer, x: Tensor, state: Tensor | None = None,
            prev_out: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """One step (``DiscreteLayer.forward``): ``(out, state)``."""
    return forward_checked(layer, check_input(layer, x, 1), state, prev_out)


def forward_checked(layer, x: Tensor, state: Tensor | None = None,
                    prev_out: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """:func:`forward` for an input a caller has already checked as :func:`check_input` does
    (a dialect whose own input check ran first: one pass over ``x`` per step)."""
    ts = layer._tensors()  # once per call: the constants' cache key and the gradient test
    mats = layer._constants(x.dtype, x.device, ts)
    state = initial_state(layer, state, x.shape, x, mats)
    grad = needs_grad(x, state, ts)
    if layer.feedback is None and not grad:
        xs = x.unsqueeze(0)
        fused = _fused_or_why(layer, xs, False, mats)
        if fused is not None:
            out, y = fused.run(layer, xs, state, mats)
            return out[0], y
    layer.last_backend = "torch"
    if layer.events == "in_step":
        if grad:
            _refuse_in_step_grad()
        with torch.no_grad():
            return _in_step.step(layer, x, state, mats)
    return _grid.step(layer, x, state, mats, prev_out)


def _empty_run(layer, x, state, record_states, out, sparse) -> RunResult:
    """``run`` of zero steps: empty output, the initial state (broadcast to the batch)."""
    layer.last_backend = "torch"
    y = torch.broadcast_to(state, tuple(x.shape[1:]) + (state.shape[-1],)).clone()
    if sparse:
        return RunResult(None, y, spikes=Spikes.empty(x.shape, layer.dt, x.dtype, layer.events == "in_step"))
    return RunResult(torch.zeros_like(x) if out is None else out, y,
                     x.new_zeros((0,) + tuple(y.shape)) if record_states else None)


def run(layer, x: Tensor, state: Tensor | None = None, record_states: bool = False,
        prev_out: Tensor | None = None, out: Tensor | None = None, output: str = "dense") -> RunResult:
    """A time-major sequence (``DiscreteLayer.run``; see its docstring)."""
    if output not in ("dense", "sparse"):
        raise ValueError(f"output must be 'dense' or 'sparse', got {output!r}")
    sparse = output == "sparse"
    x = check_input(layer, x, 2)
    ts = layer._tensors()  # once per call: the constants' cache key and the gradient test
    mats = layer._constants(x.dtype, x.device, ts)
    state = initial_state(layer, state, x.shape[1:], x, mats)
    if out is not None and (not isinstance(out, Tensor) or out.shape != x.shape or out.dtype != x.dtype
                            or not out.is_contiguous() or out.requires_grad):
        raise ValueError(f"out: needs a contiguous {x.dtype} tensor of shape {tuple(x.shape)} that does not "
                         f"require grad, got " + (f"{out.dtype} {tuple(out.shape)}" if isinstance(out, Tensor)
                                                  else type(out).__name__))
    if x.shape[0] == 0:  # no steps: the same answer from every backend
        return _empty_run(layer, x, state, record_states, out, sparse)
    grad = needs_grad(x, state, ts)
    if out is not None and grad:
        raise ValueError("run(out=...) is for runs without gradients (torch.no_grad(), or no input or "
                         "parameter that requires grad)")
    if layer.events == "in_step" and grad and not sparse:
        _refuse_in_step_grad()
    if sparse:
        if record_states or out is not None:
            raise ValueError("output='sparse' records no states and takes no out= buffer")
        grad = False
    fused = _fused_or_why(layer, x, grad, mats)
    if fused is not None:
        if sparse:
            step, index, value, offset, y = fused.run_sparse(layer, x, state, mats)
            return RunResult(None, y, spikes=Spikes(step, index, value, tuple(x.shape), layer.dt,
                                                    offset if layer.events == "in_step" else None),
                             backend="fused")
        res = fused.run(layer, x, state, mats, record_states, out)
        return RunResult(res[0], res[1], res[2] if record_states else None, backend="fused")
    layer.last_backend = "torch"
    if layer.events == "in_step":
        res = _in_step.run(layer, x, state, mats, record_states, out, sparse)
        if sparse:
            return RunResult(None, res[1], spikes=res[0])
        return RunResult(*res)
    outs, states = [], []
    o = prev_out
    for t in range(x.shape[0]):
        o, state = _grid.step(layer, x[t], state, mats, o)
        outs.append(o)
        if record_states:
            states.append(state)
    if sparse:
        with torch.no_grad():
            return RunResult(None, state.detach(), spikes=Spikes.from_dense(torch.stack(outs), layer.dt))
    return RunResult(torch.stack(outs) if out is None else torch.stack(outs, out=out), state,
                     torch.stack(states) if record_states else None)


def _chunk_source(source, steps):
    """``(get, total)``: ``get(t0, t1)`` the input of steps ``t0..t1`` from a tensor (a first axis
    of 1 held for ``steps`` steps) or a callable ``source(t0, t1)``; ``total`` the number of steps."""
    if isinstance(source, Tensor):
        if source.dim() < 2:
            raise ValueError(f"source: needs [T, *batch, n], got shape {tuple(source.shape)}")
        held = source.shape[0] == 1
        total = int(steps) if steps is not None else source.shape[0]
        if not held and total > source.shape[0]:
            raise ValueError(f"steps = {total} but the source has {source.shape[0]} steps")

        def get(t0, t1):
            return source.expand((t1 - t0,) + tuple(source.shape[1:])) if held else source[t0:t1]
        return get, total
    if callable(source):
        if steps is None:
            raise ValueError("steps is required when source is a callable")

        def get(t0, t1):
            x = _v.call_user("source", source, t0, t1)
            if not isinstance(x, Tensor):
                raise TypeError(f"source({t0}, {t1}) must return a tensor [t1 - t0, *batch, n], got "
                                f"{type(x).__name__}")
            return x
        return get, steps
    raise ValueError(f"source must be a tensor or a callable (t0, t1) -> x, got {type(source).__name__}")


def stream(layer, source, steps: int | None = None, chunk: int = 1000, state: Tensor | None = None,
           progress: bool = False, callback=None, max_work: float | None = None) -> RunResult:
    """A long run in bounded memory (``DiscreteLayer.stream``; see its docstring): ``run`` with
    ``output="sparse"`` chunk by chunk, the spikes' steps shifted to count from the start."""
    chunk = _v.positive_int("chunk", chunk)
    if steps is not None:
        steps = _v.positive_int("steps", steps, minimum=0)
    _v.callable_or_none("callback", callback)
    get, total = _chunk_source(source, steps)
    if total < 0:
        raise ValueError(f"steps must be >= 0, got {total}")
    kept, shape, t0, n_events, started = Growing(), None, 0, 0, time.perf_counter()
    with torch.no_grad():
        while t0 < total:
            t1 = min(total, t0 + chunk)
            x = get(t0, t1)
            if x.shape[0] != t1 - t0:
                raise ValueError(f"source({t0}, {t1}) returned {x.shape[0]} steps, expected {t1 - t0}")
            if shape is None:
                shape = tuple(x.shape[1:])
                _v.work_bound("DiscreteLayer.stream", total, math.prod(shape), max_work, hint="check steps")
            elif tuple(x.shape[1:]) != shape:
                raise ValueError(f"source({t0}, {t1}) returned shape {tuple(x.shape[1:])}, expected {shape}")
            res = layer.run(x, state, output="sparse")
            sp, state = res.spikes, res.state
            small = total < 2**31 and math.prod(shape) < 2**31
            itype = torch.int32 if small else torch.int64
            part = Spikes((sp.spike_steps + t0).to(itype), sp.spike_neurons.to(itype), sp.spike_values,
                          (total,) + shape, layer.dt, sp.spike_offsets)
            n_events += len(part)
            if callback is not None:
                callback(part)
            else:
                kept.append(part)
            t0 = t1
            if progress:
                el = time.perf_counter() - started
                print(f"\rstream: step {t0}/{total} ({100 * t0 / max(total, 1):.0f}%), "
                      f"{n_events} events, {el:.1f} s", end="", file=sys.stderr)
    if progress:
        print(file=sys.stderr)
    if shape is None:
        raise ValueError("stream: no steps to run")
    if not len(kept):
        spikes = Spikes.empty((total,) + shape, layer.dt, state.dtype)
    else:
        spikes = kept.spikes((total,) + shape, layer.dt)
    return RunResult(None, state, spikes=spikes, backend=layer.last_backend)
