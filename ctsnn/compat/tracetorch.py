"""tracetorch dialect: the LITS family (LITS, DLITS, SLITS, RLITS, SRLITS, DSLITS, DRLITS, DSRLITS)
as ``discretize(LIT | DualLIT | Traced(...), 1.0, "exact", "impulse")``.

tracetorch 0.19.2 ``LITS`` (time counted in steps, dt = 1)::

    mem = beta * mem + x
    p   = quant_fn(spike_fn(mem - pos_threshold + bias))        # spike_fn = sigmoid(4 .)
    q   = quant_fn(spike_fn(-neg_threshold - mem - bias))
    mem = mem - p * pos_threshold + q * neg_threshold
    out = p * pos_scale - q * neg_scale

This is :class:`ctsnn.models.LIT` (``tau dv/dt = -v + I``, ``tau = -1/ln(beta)``) with impulse
input at the end of the step (exact propagator ``exp(-1/tau) = beta``), both events decided
from the same post-input membrane (``simultaneous_events=True``) and soft affine jumps
``v += s * k``.  With a binary ``quant_fn`` (``round_ste``) the spikes are the Heaviside events
of the ODE; with tracetorch's default identity quantiser they are soft probabilities in (0, 1)
and the layer is a smoothed relaxation of the model (see docs/derivations.md, tracetorch).

``DLITS``: :class:`ctsnn.models.DualLIT`, ``pos_mem = pos_beta*pos_mem + [x]_+``,
``neg_mem = neg_beta*neg_mem + [x]_-``, events on ``pos_mem + neg_mem``, each reset split
half/half between the traces.

The synaptic / recurrent variants are ``discretize(Traced(LIT | DualLIT, tau_syn, tau_rec,
rec_weight), 1.0, "exact", "impulse", cascade=True)`` (:class:`ctsnn.models.Traced`; decays
``alpha``, ``gamma`` mapped to ``tau = -1/ln(decay)`` like ``beta``)::

    syn = alpha * syn + (1 - alpha) * x                 # SLITS, SRLITS: exact zoh of the synapse
    rec = gamma * rec + (1 - gamma) * prev_output       # RLITS, SRLITS: zoh of the last output
    mem = beta * mem + syn + rec_weight * rec           # (x instead of syn without a synapse)
    ... events, resets and output as in LITS; prev_output = out

The traces are advanced first and the membrane receives the UPDATED traces as an impulse at the
end of the step: a sequential splitting of the ``Traced`` ODE (right-endpoint rule for the
trace -> membrane coupling), not its exact propagator; see docs/derivations.md.  ``DSLITS``,
``DRLITS``, ``DSRLITS``: sign-specific traces ``pos_syn``/``neg_syn`` of ``[x]_+``/``[x]_-`` and
``pos_rec``/``neg_rec`` of ``[prev_output]_+``/``[prev_output]_-``; the membranes get the sign split
of the SUMMED traces, ``pos_mem = pos_beta*pos_mem + [syn]_+ + pos_rec_weight*[rec]_+`` (and
``[.]_-``, ``neg_rec_weight`` for ``neg_mem``), ``syn = pos_syn + neg_syn``, ``rec = pos_rec + neg_rec``.

Parameters are stored as tracetorch does (raw values through an activation): decay
``beta = sigmoid(raw)``, threshold ``softplus(raw)``, bias ``arcsinh(raw)``, scales raw; the
continuous model is rebuilt from them on every forward, so gradients reach the raw parameters.
State attributes as tracetorch's (``mem``, ``syn``, ``rec``, ``prev_output``, ``pos_*``/``neg_*``;
None before the first step, listed in ``_state_names``); ``zero_states()`` sets them to None,
``detach_states()`` cuts them from the graph.  With tracetorch installed the layers are its
``core.Layer``, so ``tracetorch.Model``'s ``zero_states``/``detach_states``/``save_states``/
``load_states`` reach them (docs/dropin.md).  The ``discretize`` layer is made once per parameter
shape and run with the current values put in (``torch.func.functional_call``, see ``_cached``).
"""
from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import validate as _v
from ..discrete import discretize
from ..models import LIT, DualLIT, Traced
from ..solvers.propagator import tau_from_decay
from ._copying import DetachedCopies

__all__ = ["LITS", "DLITS", "SLITS", "RLITS", "SRLITS", "DSLITS", "DRLITS", "DSRLITS"]

def _logit(v):
    return torch.log(v) - torch.log1p(-v)


def _softplus_inverse(v):
    return v + torch.log(-torch.expm1(-v))


def _identity(v):
    return v


#: kind -> (inverse: value -> raw, activation: raw -> value), as tracetorch stores its parameters
_ACT = {
    "decay": (_logit, torch.sigmoid),
    "threshold": (_softplus_inverse, F.softplus),
    "bias": (torch.sinh, torch.arcsinh),
    "plain": (_identity, _identity),
}


#: the thresholds, bias and output scales every LITS-family layer has
_TERNARY = (("pos_threshold", "threshold"), ("neg_threshold", "threshold"), ("bias", "bias"),
            ("pos_scale", "plain"), ("neg_scale", "plain"))


def _tt_sigmoid4x(x):
    return torch.sigmoid(4.0 * x)


class _SpikeOf:
    """``quant_fn(spike_fn(g))`` of a layer (a small object, not a bound method: the cached
    ``discretize`` layer holds it without holding the tracetorch layer as a module)."""

    def __init__(self, owner) -> None:
        self.__dict__["owner"] = owner

    def __call__(self, g):
        owner = self.__dict__["owner"]
        return owner.quant_fn(owner.spike_fn(g))


try:  # tracetorch's own base class: Model.save_states / load_states / detach_states / zero_states see the layer
    from tracetorch.core import Layer as _LayerBase
except ImportError:  # tracetorch not installed: the dialect runs on its own
    class _LayerBase(nn.Module):
        """Stand-in for tracetorch's ``core.Layer``: ``num_neurons``, ``dim`` and the state names."""

        def __init__(self, num_neurons: int, dim: int = -1) -> None:
            super().__init__()
            self._state_names = set()
            self.num_neurons, self.dim = num_neurons, dim


class _TTLayer(DetachedCopies, _LayerBase):
    #: tracetorch state attribute -> state of the ctsnn model, in the model's order
    _states: dict[str, str] = {}
    _cascade = False      # traces in front of the membrane (discretize(cascade=True))
    _recurrent = False    # feeds its previous output back (prev_output)

    def __init__(self, num_neurons: int, dim: int, spike_fn, quant_fn) -> None:
        if not isinstance(num_neurons, int) or num_neurons < 1:
            raise ValueError(f"num_neurons must be a positive int, got {num_neurons!r}")
        if not isinstance(dim, int):
            raise ValueError(f"dim must be an int, got {dim!r}")
        if not callable(spike_fn):
            raise ValueError("spike_fn must be callable")
        if not callable(quant_fn):
            raise ValueError("quant_fn must be callable")
        super().__init__(num_neurons, dim)
        self.spike_fn, self.quant_fn = spike_fn, quant_fn
        self._kinds: dict[str, str] = {}
        # what tracetorch's Layer keeps of its registered parameters (its __getattr__, TTcompile read them)
        self._dynamic_params: dict = {}
        self._inverse_functions: dict = {}
        for name in self._states:
            self._initialize_state(name)
        if self._recurrent:
            self._initialize_state("prev_output")

    # ------------------------------------------------------------ parameters
    def _reg(self, name, value, rank, learn, kind):
        """``raw_<name>`` as tracetorch registers it: a tensor keeps its dtype and its shape (0-d, or
        ``[num_neurons]``), a number becomes ``[]`` (rank 0) or ``[num_neurons]`` (rank 1)."""
        if rank not in (0, 1):
            raise ValueError(f"{name}_rank must be 0 or 1, got {rank!r}")
        if isinstance(value, Tensor):
            v = value.detach().clone()
            if not v.is_floating_point():
                v = v.to(torch.get_default_dtype())
            if v.dim() > 1 or (v.dim() == 1 and v.numel() != self.num_neurons):
                raise ValueError(f"{name}: a tensor must be 0-d or have num_neurons = {self.num_neurons} "
                                 f"entries, got shape {tuple(v.shape)}")
        else:
            try:
                v = torch.full(() if rank == 0 else (self.num_neurons,), float(value),
                               dtype=torch.get_default_dtype())
            except (TypeError, ValueError):
                raise ValueError(f"{name} must be a number or a tensor, got {value!r}") from None
        if not torch.isfinite(v).all():
            raise ValueError(f"{name} must be finite, got {value}")
        if kind == "decay" and ((v <= 0) | (v >= 1)).any():
            raise ValueError(f"{name} must be in (0, 1), got {value}")
        if kind == "threshold" and (v <= 0).any():
            raise ValueError(f"{name} must be > 0, got {value}")
        inverse, activation = _ACT[kind]
        raw = inverse(v)
        self._kinds[name] = kind
        self._dynamic_params[name] = activation
        self._inverse_functions[name] = inverse
        if learn:
            self.register_parameter("raw_" + name, nn.Parameter(raw))
        else:
            self.register_buffer("raw_" + name, raw)

    def __getattr__(self, name):
        """tracetorch's ``layer.<name>``: the activated parameter (e.g. ``beta`` in (0, 1))."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            kinds = self.__dict__.get("_kinds", {})
            if name in kinds:
                return _ACT[kinds[name]][1](super().__getattr__("raw_" + name))
            raise

    def value(self, name: str) -> Tensor:
        """Activated parameter ``name`` (``layer.<name>``)."""
        probe = self.__dict__.get("_probe")
        if probe is not None:  # while the cached layer is made: a stand-in that says where it went
            return probe(("value", name), getattr(self, name))
        return getattr(self, name)

    def _tau(self, name: str) -> Tensor:
        """``tau = -1/ln(beta)`` in float64, so that ``exp(-1/tau)`` gives back ``beta`` to the
        last bit of the layer's dtype."""
        probe = self.__dict__.get("_probe")
        if probe is not None:
            return probe(("tau", name), tau_from_decay(getattr(self, name).double()))
        return tau_from_decay(getattr(self, name).double())

    def _spike(self, g):
        return self.quant_fn(self.spike_fn(g))

    def _layer(self):
        return discretize(self._model(), 1.0, method="exact", input="impulse", surrogate=_SpikeOf(self),
                          simultaneous_events=True, cascade=self._cascade)

    def _cached(self):
        """``(layer, sources)``: ``discretize``'s layer made once per parameter shape, and for each of its
        model's parameters (``"model.<path>"``) what it is made of (``("tau", "beta")``: ``-1/ln beta``;
        ``("value", name)``: ``layer.<name>``).  ``forward`` runs the layer with the current values put in
        (``torch.func.functional_call``): gradients reach the raw parameters, and the call has no model
        construction in it (``torch.compile(fullgraph=True)`` traces it)."""
        key = tuple((k, tuple(v.shape)) for k, v in self.named_parameters()) + \
            tuple((k, tuple(v.shape)) for k, v in self.named_buffers())
        cache = self.__dict__.get("_layer_cache")
        if cache is not None and cache[0] == key:
            return cache[1], cache[2]
        made = {}

        def probe(source, t):  # a leaf of its own, so the model keeps it as it is (identity)
            leaf = t.detach().clone().requires_grad_()
            made[id(leaf)] = (source, leaf)
            return leaf

        self.__dict__["_probe"] = probe
        try:
            with torch.enable_grad():
                shown = self._model().params()
        finally:
            del self.__dict__["_probe"]
        sources = {}
        for path, t in shown.items():
            if id(t) in made:
                sources["model." + path] = made[id(t)][0]
            elif t.requires_grad:  # made from the layer's values, but not one of them as it is
                raise RuntimeError(f"{type(self).__name__}: model parameter {path} cannot be traced to the layer")
            # else a constant of the model (e.g. LIT's r = 1): kept as the cached model has it
        with torch.no_grad():
            layer = self._layer()
        self.__dict__["_layer_cache"] = (key, layer, sources)
        return layer, sources

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_layer_cache", None)  # made again (its spike function refers back to this layer)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._cached()

    # ------------------------------------------------------------ states (tracetorch's Layer API)
    def _initialize_state(self, name: str) -> None:
        self._state_names.add(name)
        setattr(self, name, None)

    def zero_states(self) -> None:
        """All states to None (re-initialised as zeros by the next forward pass)."""
        for name in self._state_names:
            setattr(self, name, None)

    def detach_states(self) -> None:
        """Cut the states from the graph (truncated backpropagation through time)."""
        for name in self._state_names:
            t = getattr(self, name)
            if t is not None:
                setattr(self, name, t.detach())

    def forward(self, x: Tensor) -> Tensor:
        x = _v.tensor_input("x", x)
        xw = x.movedim(self.dim, -1)
        if xw.shape[-1] != self.num_neurons:
            raise ValueError(f"x: axis dim={self.dim} has {xw.shape[-1]} entries, num_neurons={self.num_neurons}")
        layer, sources = self._cached()
        by_state = {v: k for k, v in self._states.items()}
        order = [by_state[nm] for nm in layer.model.state_names]  # tracetorch names in the model's order
        cols = []
        for name in order:
            t = getattr(self, name)
            if t is None:
                t = torch.zeros_like(xw)
            else:
                t = t.movedim(self.dim, -1)
                if t.shape != xw.shape:
                    raise ValueError(f"state {name!r} has shape {tuple(t.movedim(-1, self.dim).shape)}, the "
                                     f"input {tuple(x.shape)}; call zero_states() when the batch shape changes")
            cols.append(t)
        prev = None
        if self._recurrent and self.prev_output is not None:
            prev = self.prev_output.movedim(self.dim, -1)
        values = {path: self._tau(n) if kind == "tau" else self.value(n) for path, (kind, n) in sources.items()}
        out, y = torch.func.functional_call(layer, values, (xw, torch.stack(cols, -1), prev))
        for j, name in enumerate(order):
            setattr(self, name, y[..., j].movedim(-1, self.dim))
        out = out.movedim(-1, self.dim)
        if self._recurrent:
            self.prev_output = out
        return out

    def _reg_named(self, kw, *specs):
        """Register each ``(name, kind)`` from the constructor's arguments ``kw``: the value
        ``kw[name]``, its ``kw[name + "_rank"]`` and ``kw["learn_" + name]``, in the given order."""
        for name, kind in specs:
            self._reg(name, kw[name], kw[name + "_rank"], kw["learn_" + name], kind)
        self._cached()  # made now: torch.compile then finds it ready


class LITS(_TTLayer):
    """tracetorch ``LITS`` as ``discretize(LIT(tau_mem=-1/ln beta, ...), 1, 'exact', 'impulse')``;
    see the module docstring for the equations.  ``mem`` is the post-reset membrane."""

    _states = {"mem": "v"}

    def __init__(self, num_neurons: int, beta=0.9, pos_threshold=1.0, neg_threshold=1.0, bias=0.0,
                 pos_scale=1.0, neg_scale=1.0, dim: int = -1, beta_rank=1, pos_threshold_rank=1,
                 neg_threshold_rank=1, pos_scale_rank=1, neg_scale_rank=1, bias_rank=1,
                 learn_beta=True, learn_pos_threshold=True, learn_neg_threshold=True,
                 learn_pos_scale=True, learn_neg_scale=True, learn_bias=True,
                 spike_fn=_tt_sigmoid4x, quant_fn=nn.Identity()) -> None:
        super().__init__(num_neurons, dim, spike_fn, quant_fn)
        self._reg_named(locals(), ("beta", "decay"), *_TERNARY)

    def _model(self):
        v = self.value
        return LIT(tau_mem=self._tau("beta"), pos_th=v("pos_threshold"), neg_th=v("neg_threshold"),
                   bias=v("bias"), pos_scale=v("pos_scale"), neg_scale=v("neg_scale"), n=self.num_neurons)


class DLITS(_TTLayer):
    """tracetorch ``DLITS`` as ``discretize(DualLIT(tau_pos, tau_neg, ...), 1, 'exact', 'impulse')``
    with ``tau = -1/ln(beta)``; see the module docstring."""

    _states = {"pos_mem": "v_pos", "neg_mem": "v_neg"}

    def __init__(self, num_neurons: int, pos_beta=0.9, neg_beta=0.9, pos_threshold=1.0, neg_threshold=1.0,
                 bias=0.0, pos_scale=1.0, neg_scale=1.0, dim: int = -1, pos_beta_rank=1, neg_beta_rank=1,
                 pos_threshold_rank=1, neg_threshold_rank=1, pos_scale_rank=1, neg_scale_rank=1, bias_rank=1,
                 learn_pos_beta=True, learn_neg_beta=True, learn_pos_threshold=True, learn_neg_threshold=True,
                 learn_pos_scale=True, learn_neg_scale=True, learn_bias=True,
                 spike_fn=_tt_sigmoid4x, quant_fn=nn.Identity()) -> None:
        super().__init__(num_neurons, dim, spike_fn, quant_fn)
        self._reg_named(locals(), ("pos_beta", "decay"), ("neg_beta", "decay"), *_TERNARY)

    def _model(self):
        v = self.value
        return DualLIT(tau_pos=self._tau("pos_beta"), tau_neg=self._tau("neg_beta"),
                       pos_th=v("pos_threshold"), neg_th=v("neg_threshold"), bias=v("bias"),
                       pos_scale=v("pos_scale"), neg_scale=v("neg_scale"), n=self.num_neurons)


def _lit(layer, beta="beta"):
    v = layer.value
    return LIT(tau_mem=layer._tau(beta), pos_th=v("pos_threshold"), neg_th=v("neg_threshold"),
               bias=v("bias"), pos_scale=v("pos_scale"), neg_scale=v("neg_scale"), n=layer.num_neurons)


def _dual(layer):
    v = layer.value
    return DualLIT(tau_pos=layer._tau("pos_beta"), tau_neg=layer._tau("neg_beta"),
                   pos_th=v("pos_threshold"), neg_th=v("neg_threshold"), bias=v("bias"),
                   pos_scale=v("pos_scale"), neg_scale=v("neg_scale"), n=layer.num_neurons)


class SLITS(_TTLayer):
    """tracetorch ``SLITS`` as ``discretize(Traced(LIT(tau_mem), tau_syn), 1, 'exact', 'impulse',
    cascade=True)`` with ``tau = -1/ln(decay)``: ``syn = alpha*syn + (1-alpha)*x`` (exact zoh of the
    synapse), then ``mem = beta*mem + syn`` (the updated synaptic current as an impulse); see the
    module docstring."""

    _states = {"mem": "v", "syn": "i"}
    _cascade = True

    def __init__(self, num_neurons: int, alpha=0.5, beta=0.9, pos_threshold=1.0, neg_threshold=1.0, bias=0.0,
                 pos_scale=1.0, neg_scale=1.0, dim: int = -1, alpha_rank=1, beta_rank=1, pos_threshold_rank=1,
                 neg_threshold_rank=1, pos_scale_rank=1, neg_scale_rank=1, bias_rank=1, learn_alpha=True,
                 learn_beta=True, learn_pos_threshold=True, learn_neg_threshold=True, learn_pos_scale=True,
                 learn_neg_scale=True, learn_bias=True, spike_fn=_tt_sigmoid4x, quant_fn=nn.Identity()) -> None:
        super().__init__(num_neurons, dim, spike_fn, quant_fn)
        self._reg_named(locals(), ("alpha", "decay"), ("beta", "decay"), *_TERNARY)

    def _model(self):
        return Traced(_lit(self), tau_syn=self._tau("alpha"))


class RLITS(_TTLayer):
    """tracetorch ``RLITS`` as ``discretize(Traced(LIT(tau_mem), tau_rec, rec_weight), ...,
    cascade=True)``: ``rec = gamma*rec + (1-gamma)*prev_output`` (exact zoh of the previous output),
    then ``mem = beta*mem + x + rec_weight*rec``; see the module docstring."""

    _states = {"mem": "v", "rec": "r"}
    _cascade = True
    _recurrent = True

    def __init__(self, num_neurons: int, beta=0.9, gamma=0.9, pos_threshold=1.0, neg_threshold=1.0, bias=0.0,
                 pos_scale=1.0, neg_scale=1.0, rec_weight=0.0, dim: int = -1, beta_rank=1, gamma_rank=1,
                 pos_threshold_rank=1, neg_threshold_rank=1, pos_scale_rank=1, neg_scale_rank=1, bias_rank=1,
                 rec_weight_rank=1, learn_beta=True, learn_gamma=True, learn_pos_threshold=True,
                 learn_neg_threshold=True, learn_pos_scale=True, learn_neg_scale=True, learn_bias=True,
                 learn_rec_weight=True, spike_fn=_tt_sigmoid4x, quant_fn=nn.Identity()) -> None:
        super().__init__(num_neurons, dim, spike_fn, quant_fn)
        self._reg_named(locals(), ("beta", "decay"), ("gamma", "decay"), *_TERNARY, ("rec_weight", "plain"))

    def _model(self):
        return Traced(_lit(self), tau_rec=self._tau("gamma"), rec_weight=self.value("rec_weight"))


class SRLITS(_TTLayer):
    """tracetorch ``SRLITS``: both traces, ``Traced(LIT, tau_syn, tau_rec, rec_weight)`` with
    ``cascade=True``: ``syn``, ``rec`` updated first, then ``mem = beta*mem + syn + rec_weight*rec``."""

    _states = {"mem": "v", "syn": "i", "rec": "r"}
    _cascade = True
    _recurrent = True

    def __init__(self, num_neurons: int, alpha=0.5, beta=0.9, gamma=0.9, pos_threshold=1.0, neg_threshold=1.0,
                 bias=0.0, pos_scale=1.0, neg_scale=1.0, rec_weight=0.0, dim: int = -1, alpha_rank=1, beta_rank=1,
                 gamma_rank=1, pos_threshold_rank=1, neg_threshold_rank=1, pos_scale_rank=1, neg_scale_rank=1,
                 bias_rank=1, rec_weight_rank=1, learn_alpha=True, learn_beta=True, learn_gamma=True,
                 learn_pos_threshold=True, learn_neg_threshold=True, learn_pos_scale=True, learn_neg_scale=True,
                 learn_bias=True, learn_rec_weight=True, spike_fn=_tt_sigmoid4x, quant_fn=nn.Identity()) -> None:
        super().__init__(num_neurons, dim, spike_fn, quant_fn)
        self._reg_named(locals(), ("alpha", "decay"), ("beta", "decay"), ("gamma", "decay"), *_TERNARY,
                        ("rec_weight", "plain"))

    def _model(self):
        return Traced(_lit(self), tau_syn=self._tau("alpha"), tau_rec=self._tau("gamma"),
                      rec_weight=self.value("rec_weight"))


class DSLITS(_TTLayer):
    """tracetorch ``DSLITS``: ``Traced(DualLIT, tau_syn=(pos, neg))`` with ``cascade=True``:
    ``pos_syn``/``neg_syn`` filter ``[x]_+``/``[x]_-``; their SUM ``syn`` is routed again by sign,
    ``pos_mem = pos_beta*pos_mem + [syn]_+``, ``neg_mem = neg_beta*neg_mem + [syn]_-``."""

    _states = {"pos_mem": "v_pos", "neg_mem": "v_neg", "pos_syn": "i_pos", "neg_syn": "i_neg"}
    _cascade = True

    def __init__(self, num_neurons: int, pos_alpha=0.5, neg_alpha=0.5, pos_beta=0.9, neg_beta=0.9,
                 pos_threshold=1.0, neg_threshold=1.0, bias=0.0, pos_scale=1.0, neg_scale=1.0, dim: int = -1,
                 pos_alpha_rank=1, neg_alpha_rank=1, pos_beta_rank=1, neg_beta_rank=1, pos_threshold_rank=1,
                 neg_threshold_rank=1, pos_scale_rank=1, neg_scale_rank=1, bias_rank=1, learn_pos_alpha=True,
                 learn_neg_alpha=True, learn_pos_beta=True, learn_neg_beta=True, learn_pos_threshold=True,
                 learn_neg_threshold=True, learn_pos_scale=True, learn_neg_scale=True, learn_bias=True,
                 spike_fn=_tt_sigmoid4x, quant_fn=nn.Identity()) -> None:
        super().__init__(num_neurons, dim, spike_fn, quant_fn)
        self._reg_named(locals(), ("pos_alpha", "decay"), ("neg_alpha", "decay"), ("pos_beta", "decay"),
                        ("neg_beta", "decay"), *_TERNARY)

    def _model(self):
        return Traced(_dual(self), tau_syn=(self._tau("pos_alpha"), self._tau("neg_alpha")))


class DRLITS(_TTLayer):
    """tracetorch ``DRLITS``: ``Traced(DualLIT, tau_rec=(pos, neg), rec_weight=(pos, neg))`` with
    ``cascade=True``: ``pos_rec``/``neg_rec`` filter ``[prev_output]_+``/``[prev_output]_-``; their
    sum ``rec`` is routed by sign with its own weights,
    ``pos_mem = pos_beta*pos_mem + [x]_+ + pos_rec_weight*[rec]_+`` (and the negative one)."""

    _states = {"pos_mem": "v_pos", "neg_mem": "v_neg", "pos_rec": "r_pos", "neg_rec": "r_neg"}
    _cascade = True
    _recurrent = True

    def __init__(self, num_neurons: int, pos_beta=0.9, neg_beta=0.9, pos_gamma=0.9, neg_gamma=0.9,
                 pos_threshold=1.0, neg_threshold=1.0, bias=0.0, pos_scale=1.0, neg_scale=1.0,
                 pos_rec_weight=0.0, neg_rec_weight=0.0, dim: int = -1, pos_beta_rank=1, neg_beta_rank=1,
                 pos_gamma_rank=1, neg_gamma_rank=1, pos_threshold_rank=1, neg_threshold_rank=1,
                 pos_scale_rank=1, neg_scale_rank=1, bias_rank=1, pos_rec_weight_rank=1, neg_rec_weight_rank=1,
                 learn_pos_beta=True, learn_neg_beta=True, learn_pos_gamma=True, learn_neg_gamma=True,
                 learn_pos_threshold=True, learn_neg_threshold=True, learn_pos_scale=True, learn_neg_scale=True,
                 learn_bias=True, learn_pos_rec_weight=True, learn_neg_rec_weight=True,
                 spike_fn=_tt_sigmoid4x, quant_fn=nn.Identity()) -> None:
        super().__init__(num_neurons, dim, spike_fn, quant_fn)
        self._reg_named(locals(), ("pos_beta", "decay"), ("neg_beta", "decay"), ("pos_gamma", "decay"),
                        ("neg_gamma", "decay"), *_TERNARY, ("pos_rec_weight", "plain"),
                        ("neg_rec_weight", "plain"))

    def _model(self):
        v = self.value
        return Traced(_dual(self), tau_rec=(self._tau("pos_gamma"), self._tau("neg_gamma")),
                      rec_weight=(v("pos_rec_weight"), v("neg_rec_weight")))


class DSRLITS(_TTLayer):
    """tracetorch ``DSRLITS``: ``Traced(DualLIT, tau_syn=(pos, neg), tau_rec=(pos, neg),
    rec_weight=(pos, neg))`` with ``cascade=True``; the DSLITS and DRLITS drives added,
    ``pos_mem = pos_beta*pos_mem + [syn]_+ + pos_rec_weight*[rec]_+``."""

    _states = {"pos_mem": "v_pos", "neg_mem": "v_neg", "pos_syn": "i_pos", "neg_syn": "i_neg",
               "pos_rec": "r_pos", "neg_rec": "r_neg"}
    _cascade = True
    _recurrent = True

    def __init__(self, num_neurons: int, pos_alpha=0.5, neg_alpha=0.5, pos_beta=0.9, neg_beta=0.9,
                 pos_gamma=0.9, neg_gamma=0.9, pos_threshold=1.0, neg_threshold=1.0, bias=0.0, pos_scale=1.0,
                 neg_scale=1.0, pos_rec_weight=0.0, neg_rec_weight=0.0, dim: int = -1, pos_alpha_rank=1,
                 neg_alpha_rank=1, pos_beta_rank=1, neg_beta_rank=1, pos_gamma_rank=1, neg_gamma_rank=1,
                 pos_threshold_rank=1, neg_threshold_rank=1, pos_scale_rank=1, neg_scale_rank=1, bias_rank=1,
                 pos_rec_weight_rank=1, neg_rec_weight_rank=1, learn_pos_alpha=True, learn_neg_alpha=True,
                 learn_pos_beta=True, learn_neg_beta=True, learn_pos_gamma=True, learn_neg_gamma=True,
                 learn_pos_threshold=True, learn_neg_threshold=True, learn_pos_scale=True, learn_neg_scale=True,
                 learn_bias=True, learn_pos_rec_weight=True, learn_neg_rec_weight=True,
                 spike_fn=_tt_sigmoid4x, quant_fn=nn.Identity()) -> None:
        super().__init__(num_neurons, dim, spike_fn, quant_fn)
        self._reg_named(locals(), ("pos_alpha", "decay"), ("neg_alpha", "decay"), ("pos_beta", "decay"),
                        ("neg_beta", "decay"), ("pos_gamma", "decay"), ("neg_gamma", "decay"), *_TERNARY,
                        ("pos_rec_weight", "plain"), ("neg_rec_weight", "plain"))

    def _model(self):
        v = self.value
        return Traced(_dual(self), tau_syn=(self._tau("pos_alpha"), self._tau("neg_alpha")),
                      tau_rec=(self._tau("pos_gamma"), self._tau("neg_gamma")),
                      rec_weight=(v("pos_rec_weight"), v("neg_rec_weight")))
