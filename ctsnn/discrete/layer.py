"""``DiscreteLayer``: the torch module that holds a model, its grid step ``dt`` and its options,
its step constants (``constants``) and one step (``step``).  The arithmetic of a step lives in
``grid`` (the core step), ``firing`` (the reset variants), ``cascade`` and ``in_step``; which
options combine, in ``options``; running steps (``forward``), sequences (``run``) and long
streams (``stream``) on the fused kernel or the torch loop, in ``run``."""
from __future__ import annotations

import dataclasses

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
from . import run as _run
from .constants import StepConstants
from .options import Options
from .result import RunResult


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

    def _constants(self, dtype, device, ts: list[Tensor]) -> StepConstants:
        """``step_constants``, cached while no parameter changed or needs a gradient
        (``constants.cached``); ``ts``: ``_tensors()``."""
        return _constants.cached(self, dtype, device, ts)

    def _tensors(self) -> list[Tensor]:
        """The tensors the step constants are made from (parameters, buffers, model parameters)."""
        return list(self.parameters()) + list(self.buffers()) + list(self.model.params().values())

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

    def _state(self, state, shape, x: Tensor, mats) -> Tensor:
        """The initial state of a call, checked (``run.initial_state``)."""
        return _run.initial_state(self, state, shape, x, mats)

    # ------------------------------------------------------------------ running (``ctsnn.discrete.run``)
    def forward(self, x: Tensor, state: Tensor | None = None,
                prev_out: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One step: ``layer(x, state, prev_out=None) -> (out, state)``; ``state=None`` starts at
        rest; ``prev_out`` (the previous step's ``out``) feeds a recurrent model's feedback."""
        return _run.forward(self, x, state, prev_out)

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
        return _run.run(self, x, state, record_states, prev_out, out, output)

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
        return _run.stream(self, source, steps, chunk, state, progress, callback, max_work)



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
