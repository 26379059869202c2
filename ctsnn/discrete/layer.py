"""``DiscreteLayer``: the torch module that holds a model, its grid step ``dt`` and its options,
caches the step constants, and runs steps (``forward``), sequences (``run``) and long streams
(``stream``) on the fused kernel or the torch loop.  The arithmetic of a step lives in
``grid`` (the core step), ``firing`` (the reset variants), ``cascade`` and ``in_step``; which
options combine, in ``options``."""
from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor, nn

from .. import surrogate as _surrogate
from .. import validate as _v
from ..models.base import NeuronModel
from ..solvers.propagator import tau_from_decay
from . import cascade as _cascade
from . import constants as _constants
from . import firing as _firing
from . import grid as _grid
from . import in_step as _in_step
from . import options as _options
from .constants import StepConstants
from .options import Options
from .result import Growing, RunResult, Spikes


class DiscreteLayer(nn.Module):
    """Model stepped on a fixed ``dt`` grid; see ``ctsnn.discrete`` for the equations.

    ``DiscreteLayer(model, dt, options=None, **options)``: ``options`` an ``Options``, and/or its
    fields as keywords (``method="euler"``, ``surrogate_kw={"alpha": 3.0}``, ...); an unknown
    keyword is a ``TypeError`` naming it.  ``discretize(model, dt, **options)`` is the usual way in
    (it also takes a named surrogate's parameters as keywords)."""

    def __init__(self, model: NeuronModel, dt: float, options: Options | None = None, **kw) -> None:
        super().__init__()
        unknown = [k for k in kw if k not in _options.OPTION_NAMES]
        if unknown:
            raise TypeError(_options.unexpected("DiscreteLayer", unknown, _options.OPTION_NAMES,
                                                f"its options are {', '.join(_options.OPTION_NAMES)} (a "
                                                "named surrogate's parameters go in surrogate_kw)"))
        if options is not None and not isinstance(options, Options):
            raise TypeError(f"options must be a ctsnn.discrete.Options or None, got {type(options).__name__}")
        o = dataclasses.replace(options, **kw) if options is not None else Options(**kw)
        if not isinstance(model, NeuronModel):
            raise ValueError(f"model must be a ctsnn NeuronModel, got {type(model).__name__}")
        dt = _v.number("dt", dt, positive=True, unit="seconds", fix="give the grid step in seconds, e.g. dt=1e-3")
        if o.cascade:
            _cascade.check_model(model)
        elif model.linear_part() is None:
            raise ValueError(f"discretize needs a model with a linear part; {type(model).__name__} is nonlinear")
        self.events, self.backend, self.last_backend = o.events, o.backend, None
        self.simultaneous_events, self.cascade = bool(o.simultaneous_events), bool(o.cascade)
        self.reset_delay, self.reset_order = bool(o.reset_delay), o.reset_order
        self.feedback = getattr(model, "feedback", None)
        self.model, self.dt, self.method, self.input = model, dt, o.method, o.input
        self.state_map = o.state_map
        self.spike_fn = _surrogate.get(o.surrogate, **o.surrogate_kw)
        if isinstance(o.surrogate, str):  # rebuilt from its name when the layer is unpickled
            self.__dict__["_surrogate_spec"] = (o.surrogate, dict(o.surrogate_kw), self.spike_fn)
        # detach_reset: bool, or the names of the states whose jump is detached
        if isinstance(o.detach_reset, (bool, int)):
            self.detach_reset, self._detach_states = bool(o.detach_reset), None
        else:
            names = (o.detach_reset,) if isinstance(o.detach_reset, str) else tuple(o.detach_reset)
            for nm in names:
                if nm not in model.state_names:
                    raise ValueError(f"detach_reset: {type(model).__name__} has no state {nm!r}; "
                                     f"its states are {model.state_names}")
            self.detach_reset, self._detach_states = False, names
        self.multi_spike, self.threshold_grad = bool(o.multi_spike), bool(o.threshold_grad)
        self.state_min = dict(o.state_min or {})
        for nm in self.state_min:
            if nm not in model.state_names:
                raise ValueError(f"state_min: {type(model).__name__} has no state {nm!r}; "
                                 f"its states are {model.state_names}")
        self.learn_decay = bool(o.learn_decay)
        tr0 = model.refractory_period(torch.float64)
        self.__dict__["_has_t_ref"] = tr0 is not None and bool((tr0 > 0).any())
        self._check_options()
        if o.method == "euler":
            _v.euler_stability(model, dt, "discretize(method='euler')", cascade=self.cascade)
        if self.learn_decay:
            with torch.no_grad():
                E = _constants.model_matrices(self, torch.float64)[0]
            d = torch.diagonal(E, dim1=-2, dim2=-1)
            if not torch.equal(torch.diag_embed(d), E):
                raise ValueError("learn_decay needs a model with uncoupled states (diagonal A); "
                                 f"{type(model).__name__} couples its states")
            self.decay = nn.Parameter(d.to(model.param_dtype()).clone())

    # ------------------------------------------------------------------ settings
    @property
    def dt(self) -> float:
        """The grid step (s); setting it re-derives the step matrices on the next call."""
        return self.__dict__["_dt"]

    @dt.setter
    def dt(self, value) -> None:
        value = _v.number("dt", value, positive=True, unit="seconds",
                          fix="give the grid step in seconds, e.g. dt=1e-3")
        fb = getattr(self, "feedback", None)
        if fb is not None and not (fb.delay == 0 or abs(fb.delay - value) <= 1e-9 * value):
            raise ValueError(f"discretize delivers recurrent feedback one step later: the Recurrent delay "
                             f"must be 0 or dt = {value}, got {fb.delay}")
        self.__dict__["_dt"] = value

    @property
    def _split(self) -> bool:
        """Whether events are tested with the membrane / level split (``firing.split_fire``)."""
        return self.multi_spike or not self.threshold_grad or bool(getattr(self.spike_fn, "uses_level", False))

    def features(self) -> frozenset[str]:
        """What this layer uses, as ``ctsnn.discrete.options`` names it (its rules read this)."""
        return _options.features(self)

    def torch_only(self, grad: bool, t_ref_positive: bool) -> str | None:
        """Why the fused kernel cannot run this layer's options (``options.FUSED_TORCH_ONLY``), or
        None; ``ctsnn.kernels.fused.plan`` asks this before what the kernel is compiled for."""
        return _options.torch_only(_options.features(self, t_ref_positive), grad)

    def _check_options(self) -> None:
        """Refuse the options that cannot be combined (``options.LAYER_RULES``)."""
        _options.check(self.features(), type(self.model).__name__)

    # ------------------------------------------------------------------ copies
    def __getstate__(self):
        """Copies and pickles leave out the cached step constants (they hold compiled-kernel
        handles; rebuilt on use) and a surrogate made from its name (made again from the name)."""
        state = self.__dict__.copy()
        state.pop("_const_cache", None)
        spec = state.get("_surrogate_spec")
        if spec is not None:
            if state.get("spike_fn") is spec[2]:
                state["spike_fn"] = None
            state["_surrogate_spec"] = spec[:2] + (None,)
        return state

    def __setstate__(self, state) -> None:
        super().__setstate__(state)
        spec = self.__dict__.get("_surrogate_spec")
        if spec is not None and spec[2] is None:
            fn = _surrogate.get(spec[0], **spec[1])
            self.__dict__["_surrogate_spec"] = spec[:2] + (fn,)
            if self.__dict__.get("spike_fn") is None:
                self.spike_fn = fn

    # ------------------------------------------------------------------ the model and its constants
    def to_model(self) -> NeuronModel:
        """The continuous model; with ``learn_decay`` a LIF-like model gets ``tau_mem = -dt/ln(d)``."""
        if not self.learn_decay:
            return self.model
        if "tau_mem" not in self.model.params() or self.decay.shape[-1] != 1:
            raise ValueError(f"to_model: learned decay factors have no {type(self.model).__name__} parameter "
                             "to go back to (only single-state models with tau_mem)")
        d = self.decay.detach()[:, 0].clamp(0, 1)
        if not bool(((d > 0) & (d < 1)).all()):
            raise ValueError("to_model: a learned decay of 0 or 1 has no finite tau_mem")
        tau = tau_from_decay(d, self.dt)
        return self.model.replace(tau_mem=tau.squeeze(0) if d.shape[0] == 1 else tau)

    def matrices(self, dtype, device=None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(E [n|1,S,S], F [n|1,S,S], B, c)`` of one step, derived from ``model.linear_part``
        (or from the learned ``decay`` with ``learn_decay``)."""
        fn = _constants.learned_matrices if self.learn_decay else _constants.model_matrices
        return fn(self, dtype, device)[:4]

    def step_constants(self, dtype, device=None) -> StepConstants:
        """What ``step`` needs (``ctsnn.discrete.constants``), computed once per parameter change."""
        return _constants.step_constants(self, dtype, device)

    def init_state(self, batch_shape, dtype=torch.float32, device=None) -> Tensor:
        """Resting state ``[*batch_shape, n, S]`` (``S + 1`` with a refractory period: the last
        column is the time left in it, 0)."""
        y = self.model.init_state(tuple(batch_shape) + (self.model.n,), dtype, device)
        tr = self.model.refractory_period(torch.float64)
        if tr is not None and bool((tr > 0).any()):
            y = torch.cat([y, torch.zeros_like(y[..., :1])], -1)
        return y

    def _tensors(self) -> list[Tensor]:
        """The tensors the step constants are made from (parameters, buffers, model parameters)."""
        return list(self.parameters()) + list(self.buffers()) + list(self.model.params().values())

    def _config_key(self) -> tuple:
        """The plain settings the step constants depend on besides tensors: ``dt``, ``method``,
        ``input``, the model's ``reset`` / ``adaptation`` / ... (every str, number or bool attribute
        of the layer, its model and their submodules), so that changing one after a run re-derives
        the constants."""
        plain = (str, int, float, bool, type(None))
        return tuple(tuple(sorted((k, v) for k, v in vars(mod).items()
                                  if isinstance(v, plain) and k not in ("last_backend", "training")))
                     for mod in self.modules())

    def _constants(self, dtype, device, ts: list[Tensor]) -> StepConstants:
        """``step_constants``, reused between calls while no parameter needs a gradient and none
        changed (keyed by identity and in-place version counter); ``ts``: ``_tensors()``."""
        if torch.compiler.is_compiling() or any(t.requires_grad for t in ts):  # traced: no cache
            return self.step_constants(dtype, device)
        key = (dtype, str(device), tuple(t._version for t in ts), self._config_key())
        cache = self.__dict__.get("_const_cache")  # (key, tensors held so their ids stay theirs, consts)
        if (cache is None or cache[0] != key or len(cache[1]) != len(ts)
                or any(a is not b for a, b in zip(cache[1], ts))):
            cache = (key, ts, self.step_constants(dtype, device))
            self.__dict__["_const_cache"] = cache
        return cache[2]

    # ------------------------------------------------------------------ stepping
    def step(self, x: Tensor, y: Tensor, mats: StepConstants,
             prev_out: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One grid step: ``x [*batch, n]``, ``y [*batch, n, S]`` -> ``(out, y)``; ``mats`` from
        ``step_constants``; ``prev_out`` is the previous step's output (recurrent feedback; None =
        no spikes).  ``ctsnn.discrete.grid.step`` (or ``in_step.step``) does the arithmetic."""
        if self.events == "in_step":
            return _in_step.step(self, x, y, mats)
        return _grid.step(self, x, y, mats, prev_out)

    _jumps = staticmethod(_firing.apply_jumps)  # soft affine jumps (the snntorch dialect's same-step reset)

    def _refuse_in_step_grad(self) -> None:
        raise ValueError("events='in_step' runs without gradients (its spikes have no surrogate); for "
                         "gradients through in-step spike times use ctsnn.simulate(method='exact')")

    def forward(self, x: Tensor, state: Tensor | None = None,
                prev_out: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One step: ``layer(x, state, prev_out=None) -> (out, state)``; ``state=None`` starts at
        rest; ``prev_out`` (the previous step's ``out``) feeds a recurrent model's feedback."""
        x = self._input(x, 1)
        ts = self._tensors()  # once per call: the constants' cache key and the gradient test
        mats = self._constants(x.dtype, x.device, ts)
        state = self._state(state, x.shape, x, mats)
        grad = self._needs_grad(x, state, ts)
        if self.backend != "torch" and self.feedback is None and not grad and not torch.compiler.is_compiling():
            from ..kernels import fused  # one step through the fused kernel (no gradient)
            xs = x.unsqueeze(0)
            why = fused.plan(self, xs, False, mats)
            if why is None:
                self.last_backend = "fused"
                out, y = fused.run(self, xs, state, mats)
                return out[0], y
            if self.backend == "fused":
                raise ValueError(f"backend='fused' cannot run this layer: {why}")
        self.last_backend = "torch"
        if self.events == "in_step":
            if grad:
                self._refuse_in_step_grad()
            with torch.no_grad():
                return _in_step.step(self, x, state, mats)
        return _grid.step(self, x, state, mats, prev_out)

    def _input(self, x, min_dim: int) -> Tensor:
        """``x`` checked: a real tensor (integer / bool converted to the model's dtype), at least
        ``min_dim`` axes, last axis the neuron axis, finite (one vectorised pass)."""
        _v.layer_options(self, _options.CHOICES)
        x = _v.float_input("x", x, self.model.param_dtype())
        if x.dim() < min_dim:
            raise ValueError(f"x: needs {'[T, *batch, n]' if min_dim == 2 else '[*batch, n]'}, got shape "
                             f"{tuple(x.shape)}")
        _v.shape_last("x", x, self.model.n)
        if x.shape[-1] == 0:
            raise ValueError(f"x: the neuron axis (last) is empty, shape {tuple(x.shape)}; give at least one neuron")
        _v.bounded_tensor("x", x, fix="the discrete layer has no meaning for NaN or Inf input")
        return x

    def _state(self, state, shape, x: Tensor, mats) -> Tensor:
        """The initial state: rest when None, else checked (finite, ``S`` trailing columns; a
        refractory layer appends the time left in the refractory period, 0 when not given)."""
        S = self.model.n_states
        ref = mats.t_ref is not None
        if state is None:
            state = self.model.init_state(tuple(shape), x.dtype, x.device)
        else:
            state = _v.float_input("state", state, x.dtype)
            width = (S, S + 1) if ref else (S,)
            if state.dim() == 0 or state.shape[-1] not in width:
                raise ValueError(f"state: needs a trailing axis of {' or '.join(map(str, width))} "
                                 f"({self.model.state_names}{' + time left refractory' if ref else ''}), "
                                 f"got shape {tuple(state.shape)}")
            _v.bounded_tensor("state", state, fix="start from rest with state=None")
            try:
                fits = torch.broadcast_shapes(tuple(state.shape[:-1]), tuple(shape)) == tuple(shape)
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

    def _empty_run(self, x, state, record_states, out, sparse) -> RunResult:
        """``run`` of zero steps: empty output, the initial state (broadcast to the batch)."""
        self.last_backend = "torch"
        y = torch.broadcast_to(state, tuple(x.shape[1:]) + (state.shape[-1],)).clone()
        if sparse:
            return RunResult(None, y, spikes=Spikes.empty(x.shape, self.dt, x.dtype, self.events == "in_step"))
        return RunResult(torch.zeros_like(x) if out is None else out, y,
                         x.new_zeros((0,) + tuple(y.shape)) if record_states else None)

    @staticmethod
    def _needs_grad(x: Tensor, state: Tensor, ts: list[Tensor]) -> bool:
        return torch.is_grad_enabled() and (x.requires_grad or state.requires_grad
                                            or any(t.requires_grad for t in ts))

    def run(self, x: Tensor, state: Tensor | None = None, record_states: bool = False,
            prev_out: Tensor | None = None, out: Tensor | None = None, output: str = "dense") -> RunResult:
        """Time-major sequence ``x [T, *batch, n]`` -> ``RunResult`` (``ctsnn.discrete.RunResult``):
        ``.out [T, ...]``, ``.state`` (final), ``.states [T, ..., S]`` with ``record_states=True``,
        ``.backend``.  ``prev_out`` is the output of the step before ``x[0]`` (recurrent feedback;
        to continue a run pass the last ``out``); ``out`` (optional, ``x``'s shape and dtype)
        receives the output, to reuse one buffer over many calls (runs without gradients).
        ``output="sparse"``: ``.spikes`` (``Spikes``, only the nonzero outputs; no gradient; no dense
        ``[T, ...]`` tensor is made on the fused path) and ``.out`` None.

        The whole loop runs in the fused kernel (``ctsnn.kernels``) when the layer and the call
        allow it (``backend="auto"``, the default; ``.backend`` and ``last_backend`` say which ran),
        else in torch step by step; both give the same results."""
        if output not in ("dense", "sparse"):
            raise ValueError(f"output must be 'dense' or 'sparse', got {output!r}")
        sparse = output == "sparse"
        x = self._input(x, 2)
        ts = self._tensors()  # once per call: the constants' cache key and the gradient test
        mats = self._constants(x.dtype, x.device, ts)
        state = self._state(state, x.shape[1:], x, mats)
        if out is not None and (not isinstance(out, Tensor) or out.shape != x.shape or out.dtype != x.dtype
                                or not out.is_contiguous() or out.requires_grad):
            raise ValueError(f"out: needs a contiguous {x.dtype} tensor of shape {tuple(x.shape)} that does not "
                             f"require grad, got " + (f"{out.dtype} {tuple(out.shape)}" if isinstance(out, Tensor)
                                                      else type(out).__name__))
        if x.shape[0] == 0:  # no steps: the same answer from every backend
            return self._empty_run(x, state, record_states, out, sparse)
        grad = self._needs_grad(x, state, ts)
        if out is not None and grad:
            raise ValueError("run(out=...) is for runs without gradients (torch.no_grad(), or no input or "
                             "parameter that requires grad)")
        if self.events == "in_step" and grad and not sparse:
            self._refuse_in_step_grad()
        if sparse:
            if record_states or out is not None:
                raise ValueError("output='sparse' records no states and takes no out= buffer")
            grad = False
        if self.backend != "torch" and not torch.compiler.is_compiling():  # the kernel is opaque to it
            from ..kernels import fused
            why = fused.plan(self, x, grad, mats)
            if why is None:
                self.last_backend = "fused"
                if sparse:
                    step, index, value, offset, y = fused.run_sparse(self, x, state, mats)
                    return RunResult(None, y, spikes=Spikes(step, index, value, tuple(x.shape), self.dt,
                                                            offset if self.events == "in_step" else None),
                                     backend="fused")
                res = fused.run(self, x, state, mats, record_states, out)
                return RunResult(res[0], res[1], res[2] if record_states else None, backend="fused")
            if self.backend == "fused":
                raise ValueError(f"backend='fused' cannot run this layer: {why}")
        self.last_backend = "torch"
        if self.events == "in_step":
            res = _in_step.run(self, x, state, mats, record_states, out, sparse)
            if sparse:
                return RunResult(None, res[1], spikes=res[0])
            return RunResult(*res)
        outs, states = [], []
        o = prev_out
        for t in range(x.shape[0]):
            o, state = _grid.step(self, x[t], state, mats, o)
            outs.append(o)
            if record_states:
                states.append(state)
        if sparse:
            with torch.no_grad():
                return RunResult(None, state.detach(), spikes=Spikes.from_dense(torch.stack(outs), self.dt))
        return RunResult(torch.stack(outs) if out is None else torch.stack(outs, out=out), state,
                         torch.stack(states) if record_states else None)

    def stream(self, source, steps: int | None = None, chunk: int = 1000, state: Tensor | None = None,
               progress: bool = False, callback=None, max_work: float | None = None) -> RunResult:
        """Run a long simulation in bounded memory: the input is taken ``chunk`` steps at a time and
        only the sparse spikes and the state are kept -> ``RunResult`` with ``.spikes`` and ``.state``
        (no gradient; steps and indices stored as int32 where they fit: 12 bytes per spike in float32).

        ``source``: a tensor ``[T, *batch, n]`` (read chunk by chunk; a first axis of 1 is held
        for ``steps`` steps), or a callable ``source(t0, t1) -> x [t1 - t0, *batch, n]`` (then
        ``steps`` is required).  ``callback(spikes)``, if given, receives each chunk's ``Spikes``
        (steps counted from the start) and nothing is kept: memory stays bounded by the chunk
        whatever the number of spikes (the returned ``Spikes`` is then empty).  ``progress``
        prints a progress line to stderr.  A stream of more than ``max_work`` neuron-steps (steps
        times the neurons of each step, batch included; default ``ctsnn.validate.MAX_WORK`` = 1e10
        or the environment variable ``CTSNN_MAX_WORK``) is refused before it starts, as in
        ``simulate``."""
        import sys
        import time
        chunk = _v.positive_int("chunk", chunk)
        if steps is not None:
            steps = _v.positive_int("steps", steps, minimum=0)
        _v.callable_or_none("callback", callback)
        if isinstance(source, Tensor):
            if source.dim() < 2:
                raise ValueError(f"source: needs [T, *batch, n], got shape {tuple(source.shape)}")
            held = source.shape[0] == 1
            total = int(steps) if steps is not None else source.shape[0]
            if not held and total > source.shape[0]:
                raise ValueError(f"steps = {total} but the source has {source.shape[0]} steps")

            def get(t0, t1):
                return source.expand((t1 - t0,) + tuple(source.shape[1:])) if held else source[t0:t1]
        elif callable(source):
            if steps is None:
                raise ValueError("steps is required when source is a callable")
            total = steps

            def get(t0, t1):
                x = _v.call_user("source", source, t0, t1)
                if not isinstance(x, Tensor):
                    raise TypeError(f"source({t0}, {t1}) must return a tensor [t1 - t0, *batch, n], got "
                                    f"{type(x).__name__}")
                return x
        else:
            raise ValueError(f"source must be a tensor or a callable (t0, t1) -> x, got {type(source).__name__}")
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
                res = self.run(x, state, output="sparse")
                sp, state = res.spikes, res.state
                small = total < 2**31 and math.prod(shape) < 2**31
                itype = torch.int32 if small else torch.int64
                part = Spikes((sp.spike_steps + t0).to(itype), sp.spike_neurons.to(itype), sp.spike_values,
                              (total,) + shape, self.dt, sp.spike_offsets)
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
            spikes = Spikes.empty((total,) + shape, self.dt, state.dtype)
        else:
            spikes = kept.spikes((total,) + shape, self.dt)
        return RunResult(None, state, spikes=spikes, backend=self.last_backend)


def discretize(model: NeuronModel, dt: float, **options) -> DiscreteLayer:
    """``DiscreteLayer`` stepping ``model`` on a ``dt`` grid (seconds); see ``ctsnn.discrete``.

    ``options`` are the fields of ``ctsnn.discrete.Options`` (``method``, ``input``, ``surrogate``,
    ``reset_delay``, ``reset_order``, ``detach_reset``, ``multi_spike``, ``threshold_grad``,
    ``state_min``, ``state_map``, ``learn_decay``, ``simultaneous_events``, ``cascade``,
    ``backend``, ``events``) and the parameters of a named surrogate (``discretize(m, dt,
    surrogate="atan", alpha=3.0)``, or ``surrogate_kw={...}``).  Any other keyword is a
    ``TypeError`` naming ``discretize`` and the closest option."""
    opts, surrogate_kw = _options.split_kwargs("discretize", options, options.get("surrogate", "atan"))
    if surrogate_kw:
        opts["surrogate_kw"] = {**opts.get("surrogate_kw", {}), **surrogate_kw}
    return DiscreteLayer(model, dt, **opts)
