"""sinabs dialect: ``ALIF`` as ``discretize(ctsnn.ALIF, 1.0, method="exact")``, time in steps.

sinabs 3.1.3 ``layers.ALIF`` (``layers/functional/alif.py``), one step with ``alpha = exp(-1/tau)``:

    i   = alpha_syn (i + x)                 (with tau_syn; else i = x)
    i   = (1 - alpha_mem) i                 (norm_input; this rescaled i is what is stored)
    v   = alpha_mem v + i
    B   = b0 + adapt_scale b                (b of the previous step: not yet decayed)
    s   = [v >= B]  (SingleSpike)  or  trunc(v/B) [v > 0]  (MultiSpike)
    v   = v - s B   (MembraneSubtract: the CURRENT threshold, not b0 as the docstring says)
          or  v (s == 0) + reset_value  (MembraneReset)
    b   = alpha_adapt b + (1 - alpha_adapt) s
    v   = max(v, min_v_mem)                 (if given)

The spike function's backward is ``surrogate_grad_fn(v, B)`` w.r.t. ``v`` only.

Continuous model (see docs/derivations.md, "sinabs"): ``ctsnn.ALIF(adaptation="threshold")``
with ``tau_mem``, ``tau_adapt`` in steps, ``v_th = b0``, exact propagator with dt = 1:

* without ``tau_syn``: ``norm_input`` = input current held over the step (``input="zoh"``,
  ``r = 1``, gain ``1 - alpha_mem``); no ``norm_input`` = impulse at the end of the step (gain 1);
* with ``tau_syn``: ``CubaLIF``-type synapse fed by impulses at the START of the step
  (``input="impulse_start"``) with ``tau_syn' = -1/ln(alpha_syn')``,
  ``alpha_syn' = alpha_syn (1 - alpha_mem)`` (``norm_input``: sinabs stores the rescaled i, so the
  rescaling compounds into the synaptic decay) or ``alpha_syn``, and ``r`` such that the
  propagator's v <- i entry equals ``alpha_syn'`` (``r = alpha_syn' tau_mem / (alpha_mem phi1(k))``,
  ``k = 1/tau_mem - 1/tau_syn'``, ``phi1(k) = expm1(k)/k``);
* adaptation: ctsnn's ``b`` (threshold units, decayed BEFORE the spike test) is
  ``adapt_scale * b_sinabs / alpha_adapt``; a spike jumps it by
  ``adapt_jump = adapt_scale (1 - alpha_adapt) / alpha_adapt``;
* ``MembraneSubtract()``: ``reset="subtract", subtract="threshold"`` (``v -= v_th + b``);
  ``MembraneSubtract(subtract_value=d)``: ``reset="subtract"``, ``v_reset = b0 - d``;
  ``MembraneReset()``: ``reset="to_value"``, ``v_reset = 0``, the v jump detached
  (``detach_reset=("v",)``; sinabs' ``v * (s == 0)`` has no gradient through ``s``);
* ``threshold_grad=False`` (the surrogate gradient reaches v only), ``multi_spike`` for
  ``MultiSpike``, ``state_min={"v": min_v_mem}``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn

from .. import surrogate as _surrogate
from .. import validate as _v
from ..discrete import discretize
from ..models import ALIF as _ALIFModel
from ..solvers.propagator import phi1, tau_from_decay
from ._copying import DetachedCopies

try:  # sinabs' own base class, so that its helpers (utils.reset_states, Network) see the layer
    from sinabs.layers import StatefulLayer as _StatefulBase
except ImportError:  # sinabs not installed: the dialect runs on its own
    class _StatefulBase(nn.Module):
        """Stand-in for sinabs' ``StatefulLayer``: the states as empty buffers."""

        def __init__(self, state_names) -> None:
            super().__init__()
            for name in state_names:
                self.register_buffer(name, torch.zeros(0))

__all__ = ["ALIF", "SingleSpike", "MultiSpike", "MembraneSubtract", "MembraneReset",
           "SingleExponential", "PeriodicExponential", "Heaviside", "Gaussian"]


class SingleSpike:
    """Marker: at most one spike per step (sinabs ``SingleSpike``; pass the class)."""


class MultiSpike:
    """Marker: ``trunc(v/B)`` spikes per step (sinabs ``MultiSpike``; pass the class)."""


@dataclass
class MembraneSubtract:
    subtract_value: Optional[float] = None


@dataclass
class MembraneReset:
    reset_value: float = 0.0


@dataclass
class SingleExponential:
    grad_width: float = 0.5
    grad_scale: float = 1.0


@dataclass
class PeriodicExponential:
    grad_width: float = 0.5
    grad_scale: float = 1.0


@dataclass
class Heaviside:
    window: float = 1.0


@dataclass
class Gaussian:
    mu: float = 0.0
    sigma: float = 0.5
    grad_scale: float = 1.0


def _surrogate_from(fn):
    """ctsnn surrogate for a sinabs (or this module's) surrogate object, by class name."""
    name = type(fn).__name__
    if name == "SingleExponential":
        return _surrogate.single_exponential(fn.grad_width, fn.grad_scale)
    if name == "PeriodicExponential":
        return _surrogate.periodic_exponential(fn.grad_width, fn.grad_scale)
    if name == "Heaviside":
        return _surrogate.heaviside_window(fn.window)
    if name == "Gaussian":
        return _surrogate.gaussian(fn.mu, fn.sigma, fn.grad_scale)
    if callable(fn) and getattr(fn, "uses_level", False):
        return fn  # a ctsnn level surrogate
    if callable(fn):  # any other sinabs-style fn(v_mem, spike_threshold) -> ds/dv
        return _surrogate.threshold_fn(fn)
    raise ValueError(f"surrogate_grad_fn: unsupported {fn!r}; use a sinabs surrogate object "
                     "(SingleExponential, ...) or a callable fn(v_mem, spike_threshold)")


def _tensor(name: str, value, positive: bool = False) -> Tensor:
    # numbers stay float64 (as in sinabs' Python-float arithmetic); tensors keep their dtype
    t = _v.real_values(name, value, value.dtype if isinstance(value, Tensor) and value.is_floating_point()
                       else torch.float64)
    with torch.no_grad():
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} must be finite, got {value!r}")
        if positive and not bool((t > 0).all()):
            raise ValueError(f"{name} must be > 0, got {value!r}")
    return t


def _per_neuron(name: str, t: Tensor, trail: tuple[int, ...]) -> Tensor:
    """Scalar, or broadcast to the trailing (neuron) shape and flattened to ``[N]``."""
    if t.numel() == 1:
        return t.reshape(())
    try:
        return torch.broadcast_to(t, trail).reshape(-1)
    except RuntimeError:
        raise ValueError(f"{name}: shape {tuple(t.shape)} does not broadcast to the neuron shape "
                         f"{trail} (input [batch, time, *neurons])") from None


def _plain(d: dict) -> tuple:
    """A comparable key of a dict of settings (numbers, strings, tuples, dicts of numbers; anything
    else by identity)."""
    plain = (str, int, float, bool, type(None), tuple)
    return tuple((k, v if isinstance(v, plain) else _plain(v) if isinstance(v, dict) else id(v))
                 for k, v in sorted(d.items()))


class _Run(nn.Module):
    """``layer.run(x, y0, record_states)`` as a module's ``forward`` (for ``functional_call``)."""

    def __init__(self, layer) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor, y0: Tensor, record_states: bool):
        res = self.layer.run(x, y0, record_states=record_states)
        return res.out, res.state, res.states


def _check_adapt_scale(value) -> Tensor:
    t = _tensor("adapt_scale", value)
    if bool((t < 0).any()):
        raise ValueError(f"adapt_scale must be > 0 (a spike raises the threshold), got {value!r}")
    if bool((t == 0).any()):
        raise ValueError("adapt_scale must be nonzero (with 0 the layer is a LIF; b would "
                         "not be recoverable from the threshold state)")
    return t


def _check_spike_fn(value):
    if getattr(value, "__name__", type(value).__name__) not in ("SingleSpike", "MultiSpike"):
        raise ValueError(f"spike_fn must be SingleSpike or MultiSpike (the class), got {value!r}")
    return value


def _check_reset_fn(value):
    rname = type(value).__name__
    if rname == "MembraneSubtract":
        sv = value.subtract_value
        if sv is not None and not float(sv) > 0:
            raise ValueError(f"reset_fn: subtract_value must be > 0, got {sv}")
    elif rname == "MembraneReset":
        if float(value.reset_value) != 0.0:
            raise ValueError("reset_fn: reset_value must be 0 (sinabs 3.1.3 adds reset_value to "
                             f"v_mem at EVERY step, spiking or not), got {value.reset_value}")
    else:
        raise ValueError(f"reset_fn must be MembraneSubtract or MembraneReset, got {value!r}")
    return value


def _check_surrogate(value):
    _surrogate_from(value)  # checked here, made again by build: a closure, not kept (the layer pickles)
    return value


def _check_min_v_mem(value):
    if value is not None and not math.isfinite(_v.number("min_v_mem", value, finite=False)):
        raise ValueError(f"min_v_mem must be finite or None, got {value}")
    return value


def _check_norm_input(value) -> bool:
    if not isinstance(value, (bool, int)) and not hasattr(value, "__bool__"):
        raise TypeError(f"norm_input must be True or False, got {value!r}")
    return bool(value)


def _setting(name: str, check):
    """A setting of the layer as a property: a new value is checked as the constructor checks it
    and the cached ``discretize`` layer is made again at once (eagerly, outside any
    ``torch.compile`` trace; the compiled module's guards on the setting then retrace the forward
    with the new layer).  A value changed in place (``layer.reset_fn.subtract_value = ...``) is
    found by ``_cached`` at the next call."""
    slot = "_setting_" + name

    def fget(self):
        return self.__dict__[slot]

    def fset(self, value) -> None:
        self.__dict__[slot] = check(value)
        if "_layer_cache" in self.__dict__:
            self._cached()

    return property(fget, fset, doc=f"``{name}`` (checked on assignment; the layer is rebuilt for it)")


class ALIF(DetachedCopies, _StatefulBase):
    """sinabs-compatible ``ALIF(tau_mem, tau_adapt, tau_syn=None, adapt_scale=1.8,
    spike_threshold=1.0, spike_fn=SingleSpike, reset_fn=MembraneSubtract(),
    surrogate_grad_fn=SingleExponential(), min_v_mem=None, shape=None, train_alphas=False,
    norm_input=True, record_states=False)``; input ``[batch, time, ...]``, output spikes of the
    same shape.  Equations and the continuous model: see the module docstring.

    A sinabs ``StatefulLayer`` when sinabs is installed (``sinabs.utils.reset_states``,
    ``sinabs.Network.reset_states``/``zero_grad`` see it).  As in sinabs: parameters ``tau_mem``,
    ``tau_adapt`` (``tau_syn``) in steps, or ``alpha_*`` with ``train_alphas``; the states are
    buffers ``v_mem`` (``i_syn``), ``b``, ``spike_threshold = b0 + adapt_scale b``, empty until the
    first forward pass (or ``shape``), so ``state_dict`` keys and shapes are sinabs'; ``reset_states()``
    zeroes them in place (``randomize=True``: uniform in ``value_ranges``, default [0, 1]);
    ``zero_grad()`` detaches them.  ``recordings`` holds them per step (``[batch, time, ...]``)
    when ``record_states``.  Unlike sinabs 3.1.3, ``i_syn`` is carried from one forward call to the
    next (sinabs starts every call from the ``i_syn`` buffer's old value).  ``adapt_scale`` must be
    nonzero (``b`` is recovered from ctsnn's threshold state by dividing by it).
    """

    def __init__(self, tau_mem, tau_adapt, tau_syn=None, adapt_scale=1.8, spike_threshold=1.0,
                 spike_fn=SingleSpike, reset_fn=None, surrogate_grad_fn=None, min_v_mem=None,
                 shape=None, train_alphas: bool = False, norm_input: bool = True,
                 record_states: bool = False) -> None:
        super().__init__(["v_mem", "i_syn", "b", "spike_threshold"] if tau_syn is not None
                         else ["v_mem", "b", "spike_threshold"])
        taus = {"tau_mem": tau_mem, "tau_adapt": tau_adapt}
        if tau_syn is not None:
            taus["tau_syn"] = tau_syn
        for k, v in taus.items():
            t = _tensor(k, v, positive=True)
            if not isinstance(v, Tensor):
                t = t.to(torch.get_default_dtype())  # sinabs: torch.as_tensor(float) -> default dtype
            if train_alphas:
                setattr(self, "alpha_" + k[4:], nn.Parameter(torch.exp(-1 / t.detach())))
            else:
                setattr(self, k, nn.Parameter(t.detach().clone()))
        if tau_syn is None:
            if train_alphas:
                self.alpha_syn = None
            else:
                self.tau_syn = None
        self.adapt_scale = adapt_scale
        self.b0 = _tensor("spike_threshold", spike_threshold, positive=True)
        self.spike_fn = spike_fn
        self.reset_fn = MembraneSubtract() if reset_fn is None else reset_fn
        self.surrogate_grad_fn = SingleExponential() if surrogate_grad_fn is None else surrogate_grad_fn
        self.min_v_mem = min_v_mem
        self.train_alphas, self.norm_input = bool(train_alphas), norm_input
        self.record_states = bool(record_states)
        self.has_syn = tau_syn is not None
        self.recordings: dict = {}
        if shape:
            self.init_state_with_shape(tuple(shape))
        self._cached()  # made now: torch.compile then finds it ready

    adapt_scale = _setting("adapt_scale", _check_adapt_scale)
    spike_fn = _setting("spike_fn", _check_spike_fn)
    reset_fn = _setting("reset_fn", _check_reset_fn)
    surrogate_grad_fn = _setting("surrogate_grad_fn", _check_surrogate)
    min_v_mem = _setting("min_v_mem", _check_min_v_mem)
    norm_input = _setting("norm_input", _check_norm_input)

    @property
    def multi_spike(self) -> bool:
        """``spike_fn is MultiSpike`` (read from ``spike_fn`` at each call)."""
        return getattr(self.spike_fn, "__name__", type(self.spike_fn).__name__) == "MultiSpike"

    # ------------------------------------------------------------ parameters
    def _alphas(self):
        if self.train_alphas:
            return self.alpha_mem, self.alpha_adapt, self.alpha_syn
        a_s = torch.exp(-1 / self.tau_syn) if self.has_syn else None
        return torch.exp(-1 / self.tau_mem), torch.exp(-1 / self.tau_adapt), a_s

    def _values(self, trail: tuple[int, ...] | None):
        """``(values, rho, adapt_scale, b0)``: the continuous model's parameters (``tau_mem``,
        ``tau_adapt``, ``adapt_jump``, ``v_th``, with a synapse ``tau_syn`` and ``r``, with
        ``subtract_value`` ``v_reset``; see the module docstring) derived from the layer's current
        tensors (differentiable), each scalar or ``[N]`` for the neuron shape ``trail`` (``None``:
        the first neuron's values, scalars)."""
        a_m, a_a, a_s = self._alphas()
        named = [(k, a) for k, a in (("tau_mem", a_m), ("tau_adapt", a_a), ("tau_syn", a_s)) if a is not None]
        if torch.compiler.is_compiling():  # no Python branch on values: asserted in the graph
            for k, a in named:
                torch._assert_async(((a > 0) & (a < 1)).all(), f"{k} must be > 0 (alpha = exp(-1/tau) in (0, 1))")
        else:
            bad = [k for k, a in named if not bool(((a > 0) & (a < 1)).all())]
            if bad:
                raise ValueError(f"{bad[0]} must be > 0 (alpha = exp(-1/tau) in (0, 1))")
        tau_m, tau_a = tau_from_decay(a_m), tau_from_decay(a_a)
        c = self.adapt_scale
        if trail is None:
            P = lambda name, t: t.reshape(-1)[0]  # noqa: E731
        else:
            P = lambda name, t: _per_neuron(name, t, trail)  # noqa: E731
        vals = dict(tau_mem=P("tau_mem", tau_m), tau_adapt=P("tau_adapt", tau_a),
                    adapt_jump=P("adapt_scale", c * (1 - a_a) / a_a), v_th=P("spike_threshold", self.b0))
        if type(self.reset_fn).__name__ == "MembraneSubtract" and self.reset_fn.subtract_value is not None:
            vals["v_reset"] = P("spike_threshold", self.b0 - float(self.reset_fn.subtract_value))
        if self.has_syn:
            a_se = a_s * (1 - a_m) if self.norm_input else a_s
            tau_se = tau_from_decay(a_se)
            k = 1 / tau_m - 1 / tau_se
            vals["r"] = P("tau_syn", a_se * tau_m / (a_m * phi1(k)))
            vals["tau_syn"] = P("tau_syn", tau_se)
        return vals, P("tau_adapt", a_a), P("adapt_scale", c), P("spike_threshold", self.b0)

    def _options(self) -> dict:
        """The model's and ``discretize``'s settings (no tensors)."""
        rname = type(self.reset_fn).__name__
        if rname == "MembraneReset":
            model = dict(reset="to_value", v_reset=0.0)
        elif self.reset_fn.subtract_value is not None:
            model = dict(reset="subtract")
        else:
            model = dict(reset="subtract", subtract="threshold", v_reset=0.0)
        inp = "impulse_start" if self.has_syn else ("zoh" if self.norm_input else "impulse")
        disc = dict(method="exact", input=inp, multi_spike=self.multi_spike, threshold_grad=False,
                    detach_reset=("v",) if rname == "MembraneReset" else False,
                    state_min=None if self.min_v_mem is None else {"v": float(self.min_v_mem)})
        return model, disc

    def build(self, trail: tuple[int, ...] | None):
        """``(DiscreteLayer, rho [N|1], adapt_scale [N|1], b0 [N|1])`` for the neuron shape ``trail``,
        made from the current values (``forward`` runs a cached one, see ``_cached``)."""
        vals, rho, c, b0 = self._values(trail)
        model_kw, disc_kw = self._options()
        layer = discretize(_ALIFModel(**vals, **model_kw), 1.0, surrogate=_surrogate_from(self.surrogate_grad_fn),
                           **disc_kw)
        return layer, rho, c, b0

    def _cached(self):
        """``discretize``'s layer (inside a small module that calls its ``run``), made at construction
        and again when a setting changes (``reset_fn``, ``min_v_mem``, ``surrogate_grad_fn``, ...),
        from the first neuron's values; ``forward`` runs it with the current values for every neuron
        put in (``torch.func.functional_call``; the model's neuron count follows the values), so a
        call constructs no model and ``torch.compile(fullgraph=True)`` traces it."""
        model_kw, disc_kw = self._options()
        key = (_plain(model_kw),
               _plain(disc_kw), _plain(vars(self.surrogate_grad_fn)) if hasattr(self.surrogate_grad_fn, "__dict__")
               else id(self.surrogate_grad_fn), type(self.surrogate_grad_fn))
        _check_reset_fn(self.reset_fn)  # a value changed in place is checked as an assigned one
        cache = self.__dict__.get("_layer_cache")
        if cache is not None and cache[0] == key:
            return cache[1]
        if torch.compiler.is_compiling():  # a model cannot be made inside a trace
            raise ValueError("a setting of this sinabs ALIF (reset_fn, surrogate_grad_fn, ...) was changed "
                             "in place after torch.compile traced it; assign a new object instead "
                             "(layer.reset_fn = MembraneSubtract(subtract_value=...)), which rebuilds the layer")
        with torch.no_grad():        # build() checks the surrogate
            runner = _Run(self.build(None)[0])
        self.__dict__["_layer_cache"] = (key, runner)
        return runner

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_layer_cache", None)  # made again (its surrogate is a closure)
        return state

    def __setstate__(self, state) -> None:
        super().__setstate__(state)
        self._cached()

    # ------------------------------------------------------------ states (sinabs' StatefulLayer API)
    def is_state_initialised(self) -> bool:
        """True once the state buffers have a shape (after a forward pass, or ``shape=``)."""
        return all(b.shape != torch.Size([0]) for b in self.buffers())

    def state_has_shape(self, shape) -> bool:
        return all(b.shape == torch.Size(shape) for b in self.buffers())

    def init_state_with_shape(self, shape, randomize: bool = False) -> None:
        """State buffers of ``shape`` ``[batch, *neurons]`` (the default dtype, as sinabs), zero or
        random (``reset_states``)."""
        for name, buf in list(self.named_buffers()):
            self.register_buffer(name, torch.zeros(tuple(shape), device=buf.device))
        self.reset_states(randomize=randomize)

    def reset_states(self, randomize: bool = False, value_ranges: dict | None = None) -> None:
        """Zero the states in place and cut them from the graph (sinabs' ``reset_states``);
        ``randomize``: uniform in ``value_ranges[name] = (lo, hi)``, [0, 1] for names not given."""
        if not self.is_state_initialised():
            return
        for name, buf in self.named_buffers():
            if randomize:
                lo, hi = (value_ranges or {}).get(name, (0.0, 1.0))
                with torch.no_grad():
                    buf.uniform_().mul_(hi - lo).add_(lo)
            else:
                with torch.no_grad():
                    buf.zero_()
            buf.detach_()

    def zero_grad(self, set_to_none: bool = False) -> None:
        """As sinabs: the parameters' gradients, and the states cut from the previous graph."""
        nn.Module.zero_grad(self, set_to_none)
        if self.is_state_initialised():
            for buf in self.buffers():
                if buf.grad_fn is not None:
                    buf.detach_()
                else:
                    buf.requires_grad_(False)

    @property
    def _param_dict(self) -> dict:
        """Constructor arguments that rebuild this layer (sinabs' ``arg_dict``)."""
        if self.train_alphas:
            taus = {k: None if a is None else tau_from_decay(a.detach())
                    for k, a in (("tau_mem", self.alpha_mem), ("tau_adapt", self.alpha_adapt),
                                 ("tau_syn", self.alpha_syn))}
        else:
            taus = dict(tau_mem=self.tau_mem, tau_adapt=self.tau_adapt, tau_syn=self.tau_syn)
        return dict(taus, adapt_scale=self.adapt_scale, spike_threshold=self.b0, spike_fn=self.spike_fn,
                    reset_fn=self.reset_fn, surrogate_grad_fn=self.surrogate_grad_fn,
                    train_alphas=self.train_alphas, shape=self.shape, min_v_mem=self.min_v_mem,
                    norm_input=self.norm_input, record_states=self.record_states)

    @property
    def arg_dict(self) -> dict:
        return self._param_dict

    @property
    def does_spike(self) -> bool:
        return self.spike_fn is not None

    @property
    def alpha_mem_calculated(self) -> Tensor:
        return self._alphas()[0]

    @property
    def alpha_adapt_calculated(self) -> Tensor:
        return self._alphas()[1]

    @property
    def alpha_syn_calculated(self):
        return self._alphas()[2]

    def forward(self, input_data: Tensor) -> Tensor:
        input_data = _v.tensor_input("input_data", input_data)
        if input_data.dim() < 3:
            raise ValueError(f"input_data must be [batch, time, ...neurons], got shape {tuple(input_data.shape)}")
        Bt, T, *trail = input_data.shape
        trail = tuple(trail)
        if not self.is_state_initialised() or not self.state_has_shape((Bt,) + trail):
            self.init_state_with_shape((Bt,) + trail)
        vals, rho, c, b0 = self._values(trail)
        runner = self._cached()
        N = math.prod(trail)
        dt_, dev = input_data.dtype, input_data.device
        rho, c, b0 = (t.to(dtype=dt_, device=dev) for t in (rho, c, b0))
        cols = [self.v_mem.reshape(Bt, N)]
        if self.has_syn:
            cols.append(self.i_syn.reshape(Bt, N))
        cols.append(c * self.b.reshape(Bt, N) / rho)
        y0 = torch.stack([t.to(dt_) for t in cols], dim=-1)
        x = input_data.reshape(Bt, T, N).transpose(0, 1)
        res = torch.func.functional_call(runner, {"layer.model." + k: v for k, v in vals.items()},
                                         (x, y0, self.record_states))
        out, y, states = res
        ib = 2 if self.has_syn else 1

        def unpack(yy, lead):  # yy [..., N, S] -> sinabs states [lead..., *trail] (own storage, no views)
            d = {"v_mem": yy[..., 0].reshape(lead + trail).clone()}
            if self.has_syn:
                d["i_syn"] = yy[..., 1].reshape(lead + trail).clone()
            bc = rho * yy[..., ib]
            d["b"] = (bc / c).reshape(lead + trail).clone()
            d["spike_threshold"] = (b0 + bc).reshape(lead + trail).clone()
            return d

        for k, v in unpack(y, (Bt,)).items():
            setattr(self, k, v)
        if self.record_states:
            self.recordings = unpack(states.transpose(0, 1), (Bt, T))
        else:
            self.recordings = {}
        spikes = out.transpose(0, 1).reshape(input_data.shape)
        self.firing_rate = spikes.sum() / spikes.numel()
        return spikes

    @property
    def shape(self):
        return self.v_mem.shape if self.is_state_initialised() else None
