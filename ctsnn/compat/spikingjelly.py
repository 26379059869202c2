"""spikingjelly dialect (``LIFNode``/``IFNode``, single- and multi-step) as ``discretize(..., method="euler")``.

spikingjelly 2.0.0: charge ``v += (x - (v - v_reset))/tau`` (``decay_input=True``) or
``v += x - (v - v_reset)/tau`` (``decay_input=False``; ``v_reset=None`` uses 0 here), then
``s = H(v - th)`` (fires on ``>= 0``), then hard reset ``v = (1-s) v + s v_reset`` or soft
reset ``v -= s th`` (``v_reset=None``).  This is the forward-Euler step (dt = 1 step) of the LIF ODE
with ``tau_mem = tau`` steps, ``v_leak = v_reset`` (0 for soft reset), input held over the step
(``decay_input=True``, gain 1/tau) or an impulse at the end of the step (``decay_input=False``,
gain 1); ``IFNode`` is the Euler (= exact) step of ``dv/dt = x``.

``MultiStepLIFNode`` / ``MultiStepIFNode`` (the names of spikingjelly's older C++ extension) are
the same nodes with ``step_mode="m"``: ``x [T, ...]`` -> spikes ``[T, ...]``.
``surrogate_function``: ``"ATan"`` / ``"Sigmoid"`` (any case), or a spikingjelly surrogate
object (its class name and ``alpha`` are read). ``detach_input=True`` (an argument of the older
C++ extension, not of spikingjelly 2.0.0, so no peer to compare with): the input enters the
charge without a gradient (``x.detach()``); the forward pass is unchanged.

With spikingjelly installed the nodes are its ``BaseNode`` (a ``MemoryModule``): the membrane ``v`` is
a registered memory (0.0, or ``v_reset``, on a fresh node and after ``reset()`` /
``functional.reset_net``), seen by ``named_memories``, ``extract_memories`` / ``load_memories``,
``to_functional_forward``, ``detach_net``, ``set_step_mode``; ``store_v_seq`` records ``v_seq``; the
node implements spikingjelly's ``single_step_functional_forward`` / ``multi_step_functional_forward``
with ``discretize``'s layer (rebuilt when ``tau``, ``v_threshold``, ``v_reset``, ``decay_input``,
``surrogate_function`` or ``detach_reset`` change; ``node.layer``).  Without spikingjelly a small
stand-in base gives the same attributes and methods.  No parameters or buffers: ``state_dict()`` is
empty, as spikingjelly's.
"""
from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from .. import validate as _v
from ..discrete import discretize
from ..models import IF, LIF
from ._copying import DetachedCopies

try:  # spikingjelly's own node base, so that its functional helpers see the nodes
    from spikingjelly.activation_based import surrogate as _sj_surrogate
    from spikingjelly.activation_based.neuron import BaseNode as _NodeBase
except ImportError:  # spikingjelly not installed: the dialect runs on its own
    _sj_surrogate = None

    class _NodeBase(nn.Module):
        """Stand-in for spikingjelly's ``BaseNode``/``MemoryModule``: memories (``v``) kept outside
        the parameters, reset to their registered values, step modes, functional forwards."""

        def __init__(self, v_threshold=1.0, v_reset=0.0, surrogate_function=None, detach_reset=False,
                     step_mode="s", store_v_seq=False) -> None:
            super().__init__()
            self._memories, self._memories_rv = {}, {}
            self.register_memory("v", 0.0 if v_reset is None else v_reset)
            self.v_threshold, self.v_reset, self.detach_reset = v_threshold, v_reset, detach_reset
            self.surrogate_function, self.step_mode, self.store_v_seq = surrogate_function, step_mode, store_v_seq
            self._neuron_precision = None

        def register_memory(self, name, value):
            self._memories[name] = value
            self._memories_rv[name] = copy.deepcopy(value)

        def __getattr__(self, name):
            mem = self.__dict__.get("_memories")
            if mem is not None and name in mem:
                return mem[name]
            return super().__getattr__(name)

        def __setattr__(self, name, value):
            mem = self.__dict__.get("_memories")
            if mem is not None and name in mem:
                mem[name] = value
            else:
                super().__setattr__(name, value)

        @property
        def store_v_seq(self):
            return self._store_v_seq

        @store_v_seq.setter
        def store_v_seq(self, value):
            self._store_v_seq, self.v_seq = bool(value), None

        def memories(self):
            yield from self._memories.values()

        def named_memories(self):
            yield from self._memories.items()

        def reset(self):
            for k, rv in self._memories_rv.items():
                self._memories[k] = copy.deepcopy(rv)
            self.v_seq = None

        def detach(self):
            for k, t in self._memories.items():
                if isinstance(t, Tensor):
                    self._memories[k] = t.detach()
            if isinstance(self.v_seq, Tensor):
                self.v_seq = self.v_seq.detach()

        def _apply(self, fn, *args, **kwargs):
            for k, t in self._memories.items():
                if isinstance(t, Tensor):
                    self._memories[k] = fn(t)
            return super()._apply(fn, *args, **kwargs)

        def materialize_states(self, inputs, states, step_mode):
            x = inputs[0][0] if step_mode == "m" else inputs[0]
            v = states[0]
            if not isinstance(v, Tensor) or v.shape != x.shape:
                v = torch.full_like(x, float(v) if not isinstance(v, Tensor)
                                    else (0.0 if self.v_reset is None else self.v_reset))
            elif v.dtype != x.dtype or v.device != x.device:
                v = v.to(dtype=x.dtype, device=x.device)
            return (v,) + tuple(states[1:])

        def functional_forward(self, inputs, states, **kw):
            states = self.materialize_states(inputs, states, self.step_mode)
            fwd = self.single_step_functional_forward if self.step_mode == "s" else self.multi_step_functional_forward
            return fwd(inputs, states, **kw)

        def _commit(self, states):
            for k, v in zip(self._memories, states):
                self._memories[k] = v

        def single_step_forward(self, x, *args):
            inputs = (x,) + args
            outs, states = self.single_step_functional_forward(
                inputs, self.materialize_states(inputs, tuple(self._memories.values()), "s"))
            self._commit(states)
            if self.store_v_seq:
                v = self.v.unsqueeze(0)
                same = isinstance(self.v_seq, Tensor) and self.v_seq.shape[1:] == v.shape[1:]
                self.v_seq = torch.cat((self.v_seq, v)) if same else v.clone()
            return outs[0]

        def multi_step_forward(self, x_seq, *args):
            inputs = (x_seq,) + args
            states = self.materialize_states(inputs, tuple(self._memories.values()), "m")
            if not self.store_v_seq:
                outs, states = self.multi_step_functional_forward(inputs, states)
                self._commit(states)
                return outs[0]
            outs, vs = [], []
            for t in range(x_seq.shape[0]):
                o, states = self.single_step_functional_forward(tuple(a[t] for a in inputs), states)
                outs.append(o[0])
                vs.append(states[0])
            self._commit(states)
            self.v_seq = torch.stack(vs)
            return torch.stack(outs)

        def forward(self, *args, **kw):
            if self.step_mode == "s":
                return self.single_step_forward(*args, **kw)
            if self.step_mode == "m":
                return self.multi_step_forward(*args, **kw)
            raise ValueError(f"step_mode must be 's' or 'm', got {self.step_mode!r}")


_DEFAULT_ALPHA = {"sigmoid": 4.0, "atan": 2.0}  # spikingjelly's surrogate.Sigmoid() / surrogate.ATan()
_SJ_NAME = {"sigmoid": "Sigmoid", "atan": "ATan"}


def _surrogate(surrogate_function, alpha):
    """(name, alpha) from "ATan"/"Sigmoid" (any case) or a spikingjelly surrogate object; ``alpha``
    None: the object's alpha, or spikingjelly's default for the name (Sigmoid 4, ATan 2)."""
    if not isinstance(surrogate_function, str):
        name = type(surrogate_function).__name__
        alpha = getattr(surrogate_function, "alpha", alpha)
    else:
        name = surrogate_function
    key = name.lower()
    if key not in ("sigmoid", "atan"):
        raise ValueError(f"surrogate_function must be 'ATan' or 'Sigmoid', got {surrogate_function!r}")
    alpha = _DEFAULT_ALPHA[key] if alpha is None else float(alpha)
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    return key, float(alpha)


class _Node(DetachedCopies, _NodeBase):
    """Common part of ``LIFNode``/``IFNode``: spikingjelly's attributes, the layer made from them."""

    def __init__(self, v_threshold, v_reset, surrogate, alpha, detach_reset, step_mode="s",
                 detach_input=False, store_v_seq=False):
        if step_mode not in ("s", "m"):
            raise ValueError(f"step_mode must be 's' or 'm', got {step_mode!r}")
        key, alpha = _surrogate(surrogate, alpha)
        if isinstance(surrogate, str) and _sj_surrogate is not None:  # spikingjelly's own object, as its nodes hold
            surrogate = getattr(_sj_surrogate, _SJ_NAME[key])(alpha=alpha)
        v_reset = None if v_reset is None else _v.number("v_reset", v_reset)
        v_threshold = _v.number("v_threshold", v_threshold)
        if v_threshold <= (0.0 if v_reset is None else v_reset):
            raise ValueError(f"v_threshold={v_threshold!r} must be above v_reset={v_reset!r} (0 for the soft "
                             f"reset): the reset would land on or above threshold")
        super().__init__(v_threshold, v_reset, surrogate, bool(detach_reset), step_mode=step_mode,
                         store_v_seq=bool(store_v_seq))
        self._alpha = alpha
        self.detach_input = bool(detach_input)
        self.layer  # made now (torch.compile then finds it ready)

    def _model(self):
        raise NotImplementedError

    def _input(self) -> str:
        return "impulse"

    def _layer_key(self) -> tuple:
        return (self.v_threshold, self.v_reset, self.detach_reset, _surrogate(self.surrogate_function, self._alpha),
                getattr(self, "tau", None), getattr(self, "decay_input", None))

    @property
    def layer(self):
        """``discretize``'s layer for the current attributes (made again when one of them changed)."""
        key = self._layer_key()
        cache = self.__dict__.get("_layer_cache")
        if cache is None or cache[0] != key:
            sname, alpha = key[3]
            layer = discretize(self._model(), 1.0, method="euler", input=self._input(), surrogate=sname,
                               alpha=alpha, fire_at_zero=True, detach_reset=self.detach_reset)
            cache = self.__dict__["_layer_cache"] = (key, layer)
        return cache[1]

    @property
    def v0(self) -> float:
        return 0.0 if self.v_reset is None else self.v_reset

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_layer_cache", None)  # its surrogate is a closure: made again by __setstate__
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self.layer  # ready before any torch.compile of the copy

    def single_step_forward(self, x, *args, **kw):
        return super().single_step_forward(_v.tensor_input("x", x), *args, **kw)

    def multi_step_forward(self, x_seq, *args, **kw):
        x_seq = _v.tensor_input("x_seq", x_seq, min_dim=1)
        if x_seq.shape[0] == 0:
            raise ValueError(f"x_seq: no time steps (shape {tuple(x_seq.shape)}); give [T, ...] with T >= 1")
        return super().multi_step_forward(x_seq, *args, **kw)

    def single_step_functional_forward(self, inputs, states, **kwargs):
        x, v = _v.tensor_input("x", inputs[0]), states[0]
        if self.detach_input:
            x = x.detach()
        s, y = self.layer(x, v.unsqueeze(-1))
        return (s,), (y[..., 0].clone(),) + tuple(states[1:])  # own storage: spikingjelly detaches it in place

    def multi_step_functional_forward(self, inputs, states, **kwargs):
        x, v = _v.tensor_input("x_seq", inputs[0], min_dim=1), states[0]
        if x.shape[0] == 0:
            raise ValueError(f"x_seq: no time steps (shape {tuple(x.shape)}); give [T, ...] with T >= 1")
        if self.detach_input:
            x = x.detach()
        ran = self.layer.run(x, v.unsqueeze(-1))
        s, y = ran.out, ran.state
        return (s,), (y[..., 0].clone(),) + tuple(states[1:])

    def extra_repr(self) -> str:
        return (f"v_threshold={self.v_threshold}, v_reset={self.v_reset}, detach_reset={self.detach_reset}, "
                f"step_mode={self.step_mode}")


class LIFNode(_Node):
    """``LIFNode(tau=2., decay_input=True, v_threshold=1., v_reset=0., surrogate_function='Sigmoid',
    alpha=None, detach_reset=False, step_mode='s', detach_input=False, store_v_seq=False)``; ``tau`` in
    steps (> 1 for a stable Euler step is not required by spikingjelly; tau <= 0 is an error);
    ``alpha`` None: the surrogate object's, or spikingjelly's default for a name (Sigmoid 4, ATan 2)."""

    def __init__(self, tau: float = 2.0, decay_input: bool = True, v_threshold: float = 1.0,
                 v_reset: float | None = 0.0, surrogate_function="Sigmoid", alpha: float | None = None,
                 detach_reset: bool = False, step_mode: str = "s", detach_input: bool = False,
                 store_v_seq: bool = False) -> None:
        if not _v.number("tau", tau, unit="steps") > 0:
            raise ValueError(f"tau must be > 0 (steps), got {tau}")
        self.__dict__["tau"], self.__dict__["decay_input"] = float(tau), bool(decay_input)
        super().__init__(v_threshold, v_reset, surrogate_function, alpha, detach_reset, step_mode, detach_input,
                         store_v_seq)

    def _model(self):
        if not float(self.tau) > 0:
            raise ValueError(f"tau must be > 0 (steps), got {self.tau}")
        vl = self.v0
        return LIF(tau_mem=float(self.tau), r=1.0 if self.decay_input else float(self.tau), v_leak=vl,
                   v_th=self.v_threshold, v_reset=vl, reset="subtract" if self.v_reset is None else "to_value")

    def _input(self) -> str:
        return "zoh" if self.decay_input else "impulse"

    def extra_repr(self) -> str:
        return super().extra_repr() + f", tau={self.tau}"


class IFNode(_Node):
    """``IFNode(v_threshold=1., v_reset=0., surrogate_function='Sigmoid', alpha=None, detach_reset=False,
    step_mode='s', detach_input=False, store_v_seq=False)``."""

    def __init__(self, v_threshold: float = 1.0, v_reset: float | None = 0.0, surrogate_function="Sigmoid",
                 alpha: float | None = None, detach_reset: bool = False, step_mode: str = "s",
                 detach_input: bool = False, store_v_seq: bool = False) -> None:
        super().__init__(v_threshold, v_reset, surrogate_function, alpha, detach_reset, step_mode, detach_input,
                         store_v_seq)

    def _model(self):
        return IF(v_th=self.v_threshold, v_reset=self.v0, reset="subtract" if self.v_reset is None else "to_value")


class MultiStepLIFNode(LIFNode):
    """``LIFNode`` with ``step_mode='m'``: ``x [T, ...]`` -> spikes ``[T, ...]``."""

    def __init__(self, *args, **kw) -> None:
        if kw.pop("step_mode", "m") != "m":
            raise ValueError("MultiStepLIFNode is multi-step: step_mode must be 'm'")
        super().__init__(*args, step_mode="m", **kw)


class MultiStepIFNode(IFNode):
    """``IFNode`` with ``step_mode='m'``: ``x [T, ...]`` -> spikes ``[T, ...]``."""

    def __init__(self, *args, **kw) -> None:
        if kw.pop("step_mode", "m") != "m":
            raise ValueError("MultiStepIFNode is multi-step: step_mode must be 'm'")
        super().__init__(*args, step_mode="m", **kw)
