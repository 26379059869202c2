r"""norse dialect: LSNN / adaptive LIF steps as ``discretize(ALIF, dt, method="euler")``.

norse 1.1.0 (``norse/torch/functional/lsnn.py``), one forward-Euler step of length ``dt`` (s):

``lsnn_step`` / ``lsnn_feed_forward_step`` (threshold adaptation)::

    v' = v + dt/tau_mem (v_leak - v + i)
    i' = i - dt/tau_syn i
    b' = b + dt/tau_adapt (v_th - b)          # b relaxes to v_th, it IS the threshold
    z  = H(v' - b')                          # the code; the docs say H(v - v_th + b)
    v  = (1 - z) v' + z v_reset               # reset to value
    b  = b' + beta z
    i  = i' + input                           # (recurrent: W_in x + W_rec z_prev)

With ``b_c = b - v_th`` this is the Euler step of ctsnn's ``ALIF(adaptation="threshold",
tau_syn=..., r=1, reset="to_value", adapt_jump=beta)``::

    tau_mem dv/dt = v_leak - v + i,   tau_syn di/dt = -i,   tau_adapt db_c/dt = -b_c,
    spike when v = v_th + b_c;  v -> v_reset, b_c -> b_c + beta

with ``input="impulse"`` into ``i`` (the input is added to ``i`` after the Euler step; neither
the spike test nor the jumps read ``i``, so adding it before or after the spike is the same).
``lsnn_step`` detaches the spike in the reset and the ``b`` jump (``detach_reset=True``);
``lsnn_feed_forward_step`` does not.

``ada_lif_step`` (adaptation current)::

    v' = v + dt/tau_mem (v_leak - v + i - b),  i' = i - dt/tau_syn i,  b' = b - dt/tau_adapt b
    z = H(v' - v_th);  v = v' - z (v_th - v_reset);  b = b' + beta z;  i = i' + W_in x + W_rec z_prev

is the Euler step of ``ALIF(adaptation="current", reset="subtract", tau_syn=...)`` (no detach).

The spike is ``H(g) = [g > 0]`` with norse's surrogate ``p.method``: ``"super"`` ->
``surrogate.superspike(beta=1)`` (norse's SuperSpike ignores ``alpha``), ``"triangle"``,
``"tanh"``, ``"circ"``, ``"heavi_erfc"``, ``"heaviside"`` -> the ctsnn surrogates of the same
backward.  The parameters are given as norse's inverse time constants and converted to the model's
``tau = 1 / tau_inv`` (gradients flow back to the given tensors).  Only the linear input / recurrent
weight maps are applied here; the neuron dynamics are ``DiscreteLayer.step``.
"""
from __future__ import annotations

from functools import reduce
from typing import NamedTuple, Tuple

import torch
from torch import Tensor, nn

from .. import validate as _v
from ..discrete import discretize
from ..models import ALIF
from ..models.base import check_param

__all__ = ["LSNNParameters", "LSNNState", "LSNNFeedForwardState", "lsnn_step", "ada_lif_step",
           "lsnn_feed_forward_step", "LSNNCell", "LSNNRecurrentCell", "LSNN", "LSNNRecurrent"]


class _LSNNParameters(NamedTuple):
    """norse's LSNN parameters (same fields and defaults): inverse time constants in 1/s."""

    tau_syn_inv: torch.Tensor = torch.as_tensor(1.0 / 5e-3)
    tau_mem_inv: torch.Tensor = torch.as_tensor(1.0 / 1e-2)
    tau_adapt_inv: torch.Tensor = torch.as_tensor(1.0 / 800)
    v_leak: torch.Tensor = torch.as_tensor(0.0)
    v_th: torch.Tensor = torch.as_tensor(1.0)
    v_reset: torch.Tensor = torch.as_tensor(0.0)
    beta: torch.Tensor = torch.as_tensor(1.8)
    method: str = "super"
    alpha: float = 100.0


class _LSNNState(NamedTuple):
    """State of a recurrent LSNN neuron: spikes ``z``, membrane ``v``, current ``i``, threshold ``b``."""

    z: torch.Tensor
    v: torch.Tensor
    i: torch.Tensor
    b: torch.Tensor


class _LSNNFeedForwardState(NamedTuple):
    """State of a feed-forward LSNN neuron: membrane ``v``, current ``i``, threshold ``b``."""

    v: torch.Tensor
    i: torch.Tensor
    b: torch.Tensor


class _SNNCell(nn.Module):
    """norse's ``SNNCell`` (used when norse is not installed): ``activation(x, state, p, dt)``,
    ``state_fallback(x)`` for a missing state, ``activation_sparse`` for sparse inputs."""

    def __init__(self, activation, state_fallback, p, dt: float = 0.001, activation_sparse=None) -> None:
        super().__init__()
        self.activation, self.activation_sparse = activation, activation_sparse
        self.state_fallback, self.p, self.dt = state_fallback, p, dt

    def extra_repr(self) -> str:
        return f"p={self.p}, dt={self.dt}"

    def forward(self, input_tensor: Tensor, state=None):
        state = state if state is not None else self.state_fallback(input_tensor)
        act = self.activation_sparse if self.activation_sparse is not None and input_tensor.is_sparse \
            else self.activation
        return act(input_tensor, state, self.p, self.dt)


class _SNNRecurrentCell(nn.Module):
    """norse's ``SNNRecurrentCell`` (used when norse is not installed)."""

    def forward(self, input_tensor: Tensor, state=None):
        state = state if state is not None else self.state_fallback(input_tensor)
        act = self.activation_sparse if self.activation_sparse is not None and input_tensor.is_sparse \
            else self.activation
        return act(input_tensor, state, self.input_weights, self.recurrent_weights, self.p, self.dt)


_SNN = _SNNRecurrent = nn.Module  # the sequence modules define their own forward

try:  # norse's own state types and base classes, so that isinstance checks against norse pass
    from norse.torch.functional.lsnn import LSNNFeedForwardState, LSNNParameters, LSNNState
    from norse.torch.module.snn import SNN as _SNNBase
    from norse.torch.module.snn import SNNCell as _SNNCellBase
    from norse.torch.module.snn import SNNRecurrent as _SNNRecurrentBase
    from norse.torch.module.snn import SNNRecurrentCell as _SNNRecurrentCellBase
except ImportError:  # the dialect runs without norse
    LSNNParameters, LSNNState, LSNNFeedForwardState = _LSNNParameters, _LSNNState, _LSNNFeedForwardState
    _SNNCellBase, _SNNRecurrentCellBase, _SNNBase, _SNNRecurrentBase = _SNNCell, _SNNRecurrentCell, _SNN, _SNNRecurrent


# norse threshold method -> (ctsnn surrogate, name of its parameter fed with p.alpha)
_METHODS = {"super": ("superspike", None), "heaviside": ("heaviside", None),
            "triangle": ("triangle", "alpha"), "tanh": ("heavi_tanh", "k"),
            "circ": ("heavi_circ", "alpha"), "heavi_erfc": ("heavi_erfc", "k")}

_FIELDS = ("tau_syn_inv", "tau_mem_inv", "tau_adapt_inv", "v_leak", "v_th", "v_reset", "beta")


def _dtype(*ts) -> torch.dtype:
    ds = [t.dtype for t in ts if isinstance(t, Tensor) and t.is_floating_point()]
    return reduce(torch.promote_types, ds) if ds else torch.get_default_dtype()


def _put(module: nn.Module, name: str, value: Tensor) -> None:
    """Point the model's parameter slot ``name`` at ``value`` (no copy, no validation)."""
    module._parameters.pop(name, None)
    module._buffers[name] = value


class _Stepper:
    """ctsnn layer for one structure of norse parameters (method, shapes, dt, dtype), plus the
    norse <-> ctsnn state maps.  The model is built once; ``bind(p)`` points its parameters at
    values derived from ``p`` (``tau = 1 / tau_inv``, gradients flow back to ``p``)."""

    def __init__(self, p, dt, adaptation: str, detach: bool, shapes) -> None:
        name, key = _METHODS[p.method]
        kw = {} if key is None else {key: float(p.alpha)}
        self.threshold = adaptation == "threshold"
        with torch.no_grad():
            one = {f: torch.ones(sh, dtype=torch.float64) for f, sh in zip(_FIELDS, shapes)}
            model = ALIF(tau_mem=one["tau_mem_inv"], tau_syn=one["tau_syn_inv"], tau_adapt=one["tau_adapt_inv"],
                         adapt_jump=one["beta"], r=1.0, v_leak=one["v_leak"], v_th=one["v_th"],
                         v_reset=one["v_reset"] - 1, reset="to_value" if self.threshold else "subtract",
                         adaptation=adaptation)
        self.layer = discretize(model, dt, method="euler", input="impulse", surrogate=name,
                                detach_reset=detach, **kw)
        self.n = model.n
        self.bound = None

    def bind(self, p, validate: bool, dtype, device) -> None:
        self.dtype, self.device = dtype, device
        q = {}
        for f in _FIELDS:
            v = getattr(p, f)
            t = v if isinstance(v, Tensor) else torch.as_tensor(v, dtype=torch.float64)
            t = t.to(dtype=self.dtype, device=self.device)
            q[f] = check_param(f, t, positive=f.endswith("_inv")) if validate else t
        if validate:
            with torch.no_grad():
                if self.threshold and bool((q["v_reset"] >= q["v_th"]).any()):
                    raise ValueError(f"v_reset must be below v_th (reset to a value), got v_reset={q['v_reset']}, "
                                     f"v_th={q['v_th']}")
        m = self.layer.model
        for name, val in (("tau_mem", 1.0 / q["tau_mem_inv"]), ("tau_syn", 1.0 / q["tau_syn_inv"]),
                          ("tau_adapt", 1.0 / q["tau_adapt_inv"]), ("adapt_jump", q["beta"]),
                          ("v_leak", q["v_leak"]), ("v_th", q["v_th"]), ("v_reset", q["v_reset"])):
            _put(m, name, val)
        self.mats = self.layer.step_constants(self.dtype, self.device)
        self.offset = q["v_th"] if self.threshold else None  # norse b = ctsnn b + v_th

    def to_y(self, x: Tensor, v, i, b) -> tuple[Tensor, Tensor]:
        if self.n != 1 and (x.dim() == 0 or x.shape[-1] != self.n):
            raise ValueError(f"input_tensor: shape {tuple(x.shape)} does not end in the {self.n} "
                             "neurons of the per-neuron parameters")
        cast = lambda t: torch.as_tensor(t).to(dtype=self.dtype, device=self.device)  # noqa: E731
        v, i, b = cast(v), cast(i), cast(b)
        if self.offset is not None:
            b = b - self.offset
        try:
            x, v, i, b = torch.broadcast_tensors(x.to(self.dtype), v, i, b)
        except RuntimeError as exc:
            raise ValueError(f"state: shapes v {tuple(v.shape)}, i {tuple(i.shape)}, b {tuple(b.shape)} "
                             f"do not broadcast with input_tensor {tuple(x.shape)}") from exc
        return x, torch.stack((v, i, b), dim=-1)

    def from_y(self, y: Tensor):
        b = y[..., 2] if self.offset is None else y[..., 2] + self.offset
        return y[..., 0], y[..., 1], b

    def step(self, x: Tensor, y: Tensor):
        """One Euler step; a 0-d input with 0-d states (one neuron, no batch) keeps its shape, as in
        norse (the layer's step works on ``[..., n]``)."""
        if x.dim() == 0:
            z, y = self.layer.step(x.unsqueeze(0), y.unsqueeze(0), self.mats)
            return z[0], y[0]
        return self.layer.step(x, y, self.mats)


_STEPPERS: dict = {}  # structure -> _Stepper (a few entries: one per parameter structure in use)


def _stepper(p, dt, adaptation: str, detach: bool, dtype, device) -> _Stepper:
    """``_Stepper`` for ``p``, its model built once per structure; re-bound (and ``p`` validated)
    when the parameter tensors changed (identity or in-place version) or need gradients.  Under
    ``torch.compile`` it is bound on every call, without the value checks (data-dependent)."""
    for f in _FIELDS + ("method", "alpha"):
        if not hasattr(p, f):
            raise ValueError(f"p must be an LSNNParameters (missing field {f!r}), got {type(p).__name__}")
    if p.method not in _METHODS:
        raise ValueError(f"p.method: unknown threshold method {p.method!r}; known: {sorted(_METHODS)}")
    if not float(dt) > 0:
        raise ValueError(f"dt must be > 0 (seconds), got {dt}")
    vals = [getattr(p, f) for f in _FIELDS]
    shapes = tuple(tuple(v.shape) if isinstance(v, Tensor) else () for v in vals)
    for f, sh in zip(_FIELDS, shapes):
        if len(sh) > 1:
            raise ValueError(f"parameter {f!r} must be a scalar or a 1-D per-neuron tensor, got shape {sh}")
    skey = (p.method, float(p.alpha), float(dt), adaptation, detach, shapes)
    st = _STEPPERS.get(skey)
    if st is None:  # (modules build theirs at construction: a compiled forward finds it here)
        if len(_STEPPERS) >= 16:
            _STEPPERS.clear()
        st = _STEPPERS[skey] = _Stepper(p, dt, adaptation, detach, shapes)
    if dtype is None:
        return st
    if torch.compiler.is_compiling():
        st.bind(p, False, dtype, device)
        return st
    if any(isinstance(v, Tensor) and v.requires_grad for v in vals):
        st.bind(p, True, dtype, device)
        st.bound = None
        return st
    vkey = (tuple((id(v), v._version) if isinstance(v, Tensor) else v for v in vals), dtype, str(device))
    if st.bound is None or st.bound[0] != vkey:
        st.bind(p, True, dtype, device)
        st.bound = (vkey, vals)  # the tensors kept alive so their ids stay theirs
    return st


def _check_weights(input_tensor, state, input_weights, recurrent_weights):
    if not isinstance(state, tuple) or not all(hasattr(state, f) for f in ("z", "v", "i", "b")):
        raise ValueError(f"state must be an LSNNState (z, v, i, b), got {type(state).__name__}")
    if input_tensor.dim() < 1:
        raise ValueError(f"input_tensor must be [..., input_size] (at least 1 axis, as norse's linear input "
                         f"map needs), got shape {tuple(input_tensor.shape)}")
    if input_weights.dim() != 2 or input_weights.shape[1] != input_tensor.shape[-1]:
        raise ValueError(f"input_weights: shape {tuple(input_weights.shape)} must be [hidden, "
                         f"{input_tensor.shape[-1]}] for input_tensor of last axis {input_tensor.shape[-1]}")
    h = input_weights.shape[0]
    if tuple(recurrent_weights.shape) != (h, h):
        raise ValueError(f"recurrent_weights: shape {tuple(recurrent_weights.shape)} must be [{h}, {h}]")


def _recurrent_step(input_tensor, state, input_weights, recurrent_weights, p, dt, adaptation, detach):
    input_tensor = _v.tensor_input("input_tensor", input_tensor)
    _check_weights(input_tensor, state, input_weights, recurrent_weights)
    drive = (nn.functional.linear(input_tensor, input_weights)
             + nn.functional.linear(state.z.to(input_tensor.dtype), recurrent_weights))
    dtype = _dtype(drive, state.v, state.i, state.b, *[getattr(p, f, None) for f in _FIELDS])
    st = _stepper(p, dt, adaptation, detach, dtype, drive.device)
    x, y = st.to_y(drive, state.v, state.i, state.b)
    z, y = st.step(x, y)
    v, i, b = st.from_y(y)
    return z, LSNNState(z, v, i, b)


def lsnn_step(input_tensor: Tensor, state: LSNNState, input_weights: Tensor, recurrent_weights: Tensor,
              p: LSNNParameters = LSNNParameters(), dt: float = 0.001) -> Tuple[Tensor, LSNNState]:
    """norse ``lsnn_step``: Euler step of ``ALIF(adaptation="threshold")`` with a synaptic current
    driven by ``W_in x + W_rec z_prev``; reset and ``b`` jump use the detached spike. Returns
    ``(z, LSNNState(z, v, i, b))`` with ``b`` the full threshold (``v_th`` + adaptation)."""
    return _recurrent_step(input_tensor, state, input_weights, recurrent_weights, p, dt, "threshold", True)


def ada_lif_step(input_tensor: Tensor, state: LSNNState, input_weights: Tensor, recurrent_weights: Tensor,
                 p: LSNNParameters = LSNNParameters(), dt: float = 0.001) -> Tuple[Tensor, LSNNState]:
    """norse ``ada_lif_step``: Euler step of ``ALIF(adaptation="current", reset="subtract")``
    (``tau_mem dv/dt = v_leak - v + i - b``, spike at ``v = v_th``, ``b += beta``)."""
    return _recurrent_step(input_tensor, state, input_weights, recurrent_weights, p, dt, "current", False)


def lsnn_feed_forward_step(input_tensor: Tensor, state: LSNNFeedForwardState,
                           p: LSNNParameters = LSNNParameters(),
                           dt: float = 0.001) -> Tuple[Tensor, LSNNFeedForwardState]:
    """norse ``lsnn_feed_forward_step``: as ``lsnn_step`` with ``i += input_tensor`` and no detach."""
    input_tensor = _v.tensor_input("input_tensor", input_tensor)
    if not isinstance(state, tuple) or not all(hasattr(state, f) for f in ("v", "i", "b")):
        raise ValueError(f"state must be an LSNNFeedForwardState (v, i, b), got {type(state).__name__}")
    dtype = _dtype(input_tensor, state.v, state.i, state.b, *[getattr(p, f, None) for f in _FIELDS])
    st = _stepper(p, dt, "threshold", False, dtype, input_tensor.device)
    x, y = st.to_y(input_tensor, state.v, state.i, state.b)
    z, y = st.step(x, y)
    return z, LSNNFeedForwardState(*st.from_y(y))


# ---------------------------------------------------------------------------------- modules
def _no_adjoint(adjoint):
    if adjoint:
        raise ValueError("adjoint=True is not supported by ctsnn.compat.norse (gradients are by autograd)")


def _full(dims, value: Tensor, like: Tensor) -> Tensor:
    return value.detach().to(dtype=like.dtype, device=like.device).expand(dims).clone()


def _zeros(dims, like: Tensor) -> Tensor:
    """Dense zeros (also for a sparse input, as norse's initial states)."""
    return torch.zeros(tuple(dims), dtype=like.dtype, device=like.device)


def _need_axes(x: Tensor, n: int, what: str) -> None:
    """Without a state, norse builds the initial state from the input's shape and fails below
    ``n`` axes; refuse the same inputs with a message."""
    if x.dim() < n:
        raise ValueError(f"input_tensor must be {what}: at least {n} axes when no state is given, got shape "
                         f"{tuple(x.shape)}")


def _zero_diagonal(grad: Tensor) -> Tensor:
    """norse's autapse hook: no gradient on the recurrent diagonal (a module-level function, so the
    weights stay picklable)."""
    return grad.clone().fill_diagonal_(0.0)


class LSNNCell(_SNNCellBase):
    """norse ``LSNNCell``: ``activation = lsnn_feed_forward_step`` per call; ``forward(x, state=None)
    -> (z, LSNNFeedForwardState)`` (norse's ``SNNCell`` forward: ``state_fallback`` for a missing
    state, ``activation_sparse`` for sparse inputs)."""

    def __init__(self, p: LSNNParameters = LSNNParameters(), adjoint: bool = False, **kwargs) -> None:
        _no_adjoint(adjoint)
        super().__init__(activation=lsnn_feed_forward_step, state_fallback=self.initial_state, p=p, **kwargs)
        _stepper(p, self.dt, "threshold", False, None, None)  # the model, built outside any trace

    def initial_state(self, input_tensor: Tensor) -> LSNNFeedForwardState:
        input_tensor = _v.float_input("input_tensor", input_tensor)
        _need_axes(input_tensor, 1, "[..., neurons] (a 0-d input has no neuron axis; norse refuses it too)")
        v = _full(input_tensor.shape, torch.as_tensor(self.p.v_leak), input_tensor)
        state = LSNNFeedForwardState(v=v, i=_zeros(input_tensor.shape, input_tensor),
                                      b=torch.as_tensor(self.p.v_th).detach())
        if not torch.compiler.is_compiling():  # (a traced graph cannot make a leaf)
            state.v.requires_grad = True
        return state


class _RecurrentWeights:
    """norse's recurrent-module attributes and weight initialisation (same random-number order);
    norse's constructor is not called (its autapse hook is a closure, which cannot be pickled)."""

    def _setup(self, activation, input_size, hidden_size, p, input_weights, recurrent_weights, autapses,
               dt, activation_sparse, record_states=None) -> None:
        nn.Module.__init__(self)
        if int(input_size) < 1 or int(hidden_size) < 1:
            raise ValueError(f"input_size and hidden_size must be >= 1, got {input_size}, {hidden_size}")
        self.activation, self.activation_sparse = activation, activation_sparse
        self.autapses, self.state_fallback = autapses, self.initial_state
        self.p, self.dt = p, dt
        self.input_size = torch.as_tensor(input_size)
        self.hidden_size = torch.as_tensor(hidden_size)
        if record_states is not None:
            self.record_states = record_states
        if input_weights is not None:
            self.input_weights = input_weights
        else:
            self.input_weights = nn.Parameter(torch.randn(self.hidden_size, self.input_size)
                                              * torch.sqrt(2.0 / self.hidden_size))
        if recurrent_weights is not None:
            self.recurrent_weights = recurrent_weights
        else:
            self.recurrent_weights = nn.Parameter(torch.randn(self.hidden_size, self.hidden_size)
                                                  * torch.sqrt(2.0 / self.hidden_size))
        if not autapses:
            with torch.no_grad():
                self.recurrent_weights.fill_diagonal_(0.0)
            self.recurrent_weights.requires_grad = True
            self.recurrent_weights.register_hook(_zero_diagonal)
        _stepper(p, dt, "threshold", True, None, None)  # the model, built outside any trace

    def extra_repr(self) -> str:
        return (f"input_size={self.input_size}, hidden_size={self.hidden_size}, p={self.p}, "
                f"autapses={self.autapses}, dt={self.dt}")

    def __setstate__(self, state) -> None:
        """Copies (deepcopy, pickle) keep the autapse hook (torch does not copy tensor hooks)."""
        super().__setstate__(state)
        w = self.__dict__.get("_parameters", {}).get("recurrent_weights")
        if not self.autapses and w is not None and w.requires_grad and \
                _zero_diagonal not in (getattr(w, "_backward_hooks", None) or {}).values():
            w.register_hook(_zero_diagonal)

    def _initial(self, dims, like: Tensor, full_b: bool) -> LSNNState:
        v_th = torch.as_tensor(self.p.v_th)
        state = LSNNState(z=_zeros(dims, like), v=_full(dims, torch.as_tensor(self.p.v_leak), like),
                          i=_zeros(dims, like), b=_full(dims, v_th, like) if full_b else v_th.detach())
        if not torch.compiler.is_compiling():  # (a traced graph cannot make a leaf)
            state.v.requires_grad = True
        return state


class LSNNRecurrentCell(_RecurrentWeights, _SNNRecurrentCellBase):
    """norse ``LSNNRecurrentCell``: ``activation = lsnn_step`` per call with its own weights."""

    def __init__(self, input_size: int, hidden_size: int, p: LSNNParameters = LSNNParameters(),
                 adjoint: bool = False, input_weights=None, recurrent_weights=None, autapses: bool = False,
                 dt: float = 0.001, activation_sparse=None) -> None:
        _no_adjoint(adjoint)
        self._setup(lsnn_step, input_size, hidden_size, p, input_weights, recurrent_weights, autapses, dt,
                    activation_sparse)

    def initial_state(self, input_tensor: Tensor) -> LSNNState:
        input_tensor = _v.float_input("input_tensor", input_tensor)
        _need_axes(input_tensor, 1, "[..., input_size]")
        return self._initial((*input_tensor.shape[:-1], int(self.hidden_size)), input_tensor, False)


def _stack_states(cls, states):
    return cls(*[torch.stack([getattr(s, f) for s in states]) for f in cls._fields])


def _loop(mod, input_tensor, state, args):
    """norse's ``SNN``/``SNNRecurrent`` forward: the activation step by step over the first axis."""
    act = mod.activation_sparse if mod.activation_sparse is not None and input_tensor.is_sparse \
        else mod.activation
    outs, states = [], []
    for t in range(input_tensor.shape[0]):
        out, state = act(input_tensor[t], state, *args, mod.p, mod.dt)
        outs.append(out)
        if mod.record_states:
            states.append(state)
    return torch.stack(outs), (_stack_states(type(states[0]), states) if mod.record_states else state)


class LSNN(_SNNBase):
    """norse ``LSNN``: ``lsnn_feed_forward_step`` over the leading time axis of ``x [T, ...]``;
    returns ``(z [T, ...], final state)`` or, with ``record_states=True``, the stacked states.
    With the default ``activation`` one model is bound for the whole sequence; a replaced
    ``activation`` (or a sparse input with ``activation_sparse``) runs step by step as norse."""

    def __init__(self, p: LSNNParameters = LSNNParameters(), adjoint: bool = False, dt: float = 0.001,
                 activation_sparse=None, record_states: bool = False) -> None:
        _no_adjoint(adjoint)
        nn.Module.__init__(self)
        self.activation, self.activation_sparse = lsnn_feed_forward_step, activation_sparse
        self.state_fallback, self.p, self.dt, self.record_states = self.initial_state, p, dt, record_states
        _stepper(p, dt, "threshold", False, None, None)  # the model, built outside any trace

    def extra_repr(self) -> str:
        return f"p={self.p}, dt={self.dt}"

    def initial_state(self, input_tensor: Tensor) -> LSNNFeedForwardState:
        input_tensor = _v.float_input("input_tensor", input_tensor)
        _need_axes(input_tensor, 2, "[T, ..., neurons] (time first; a 1-D input has no neuron axis, norse "
                   "refuses it too; give [T, 1] for one neuron)")
        dims = input_tensor.shape[1:]
        state = LSNNFeedForwardState(v=_full(dims, torch.as_tensor(self.p.v_leak), input_tensor),
                                     i=_zeros(dims, input_tensor),
                                     b=_full(dims, torch.as_tensor(self.p.v_th), input_tensor))
        if not torch.compiler.is_compiling():  # (a traced graph cannot make a leaf)
            state.v.requires_grad = True
        return state

    def forward(self, input_tensor: Tensor, state=None):
        input_tensor = _v.tensor_input("input_tensor", input_tensor, min_dim=1)
        if input_tensor.dim() < 1 or input_tensor.shape[0] == 0:
            raise ValueError(f"input_tensor must have a leading time axis [T, ...] with T >= 1, got shape "
                             f"{tuple(input_tensor.shape)}")
        state = state if state is not None else self.state_fallback(input_tensor)
        if self.activation is not lsnn_feed_forward_step or (self.activation_sparse is not None
                                                              and input_tensor.is_sparse):
            return _loop(self, input_tensor, state, ())
        if not isinstance(state, tuple) or not all(hasattr(state, f) for f in ("v", "i", "b")):
            raise ValueError(f"state must be an LSNNFeedForwardState (v, i, b), got {type(state).__name__}")
        dtype = _dtype(input_tensor, state.v, state.i, state.b, *[getattr(self.p, f, None) for f in _FIELDS])
        st = _stepper(self.p, self.dt, "threshold", False, dtype, input_tensor.device)
        x0, y = st.to_y(input_tensor[0], state.v, state.i, state.b)  # one step against the state, as norse
        x = input_tensor.to(dtype)
        outs, states = [], []
        for t in range(x.shape[0]):
            z, y = st.step(torch.broadcast_to(x[t], x0.shape), y)
            outs.append(z)
            if self.record_states:
                states.append(LSNNFeedForwardState(*st.from_y(y)))
        final = _stack_states(LSNNFeedForwardState, states) if self.record_states else \
            LSNNFeedForwardState(*st.from_y(y))
        return torch.stack(outs), final


class LSNNRecurrent(_RecurrentWeights, _SNNRecurrentBase):
    """norse ``LSNNRecurrent``: ``lsnn_step`` over the leading time axis with its own weights (one
    model bound for the sequence with the default ``activation``, else step by step as norse)."""

    def __init__(self, input_size: int, hidden_size: int, p: LSNNParameters = LSNNParameters(),
                 adjoint: bool = False, input_weights=None, recurrent_weights=None, autapses: bool = False,
                 dt: float = 0.001, activation_sparse=None, record_states: bool = False) -> None:
        _no_adjoint(adjoint)
        self._setup(lsnn_step, input_size, hidden_size, p, input_weights, recurrent_weights, autapses, dt,
                    activation_sparse, record_states)

    def initial_state(self, input_tensor: Tensor) -> LSNNState:
        input_tensor = _v.float_input("input_tensor", input_tensor)
        _need_axes(input_tensor, 2, "[T, ..., input_size]")
        return self._initial((*input_tensor.shape[1:-1], int(self.hidden_size)), input_tensor, True)

    def forward(self, input_tensor: Tensor, state=None):
        if input_tensor.dim() < 2 or input_tensor.shape[0] == 0:
            raise ValueError(f"input_tensor must be [T, ..., input_size] with T >= 1, got shape "
                             f"{tuple(input_tensor.shape)}")
        state = state if state is not None else self.state_fallback(input_tensor)
        if self.activation is not lsnn_step or (self.activation_sparse is not None and input_tensor.is_sparse):
            return _loop(self, input_tensor, state, (self.input_weights, self.recurrent_weights))
        _check_weights(input_tensor, state, self.input_weights, self.recurrent_weights)
        W_in, W_rec = self.input_weights, self.recurrent_weights
        dtype = _dtype(input_tensor, W_in, state.v, state.i, state.b,
                       *[getattr(self.p, f, None) for f in _FIELDS])
        st = _stepper(self.p, self.dt, "threshold", True, dtype, input_tensor.device)
        z = state.z
        _, y = st.to_y(nn.functional.linear(input_tensor[0], W_in), state.v, state.i, state.b)
        outs, states = [], []
        for t in range(input_tensor.shape[0]):
            drive = nn.functional.linear(input_tensor[t], W_in) + nn.functional.linear(z.to(W_in.dtype), W_rec)
            z, y = st.step(torch.broadcast_to(drive.to(dtype), y.shape[:-1]), y)
            outs.append(z)
            if self.record_states:
                states.append(LSNNState(z, *st.from_y(y)))
        final = _stack_states(LSNNState, states) if self.record_states else LSNNState(z, *st.from_y(y))
        return torch.stack(outs), final
