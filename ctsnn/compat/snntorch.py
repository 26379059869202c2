"""snntorch dialect: ``Leaky`` and ``RLeaky`` as ``discretize(LIF | Recurrent(LIF))`` with time
counted in steps (dt = 1).

snntorch 1.0.0 ``Leaky`` (default ``reset_delay=True``)::

    reset = H(mem_prev - th)                      (detached)
    mem   = beta*mem_prev + x - reset*th          (subtract)
    mem   = beta*(1 - reset)*mem_prev + x         (zero)
    mem   = beta*mem_prev + x                     (none)
    spk   = H(mem - th) * graded_spikes_factor    (fires on mem - th > 0)

and returns ``(spk, mem)`` with ``mem`` pre-reset.  This is the LIF ODE ``tau dv/dt = -v`` with
``tau = -1/ln(beta)`` steps (``tau = inf`` for ``beta = 1``), impulse input at the end of the step
(gain 1), threshold ``th`` and a delayed reset: zero reset before the decay (the ODE's order),
subtract reset after the decay (``discretize(..., reset_delay=True, reset_order=...)``).

``RLeaky`` adds the previous step's output spikes through ``V`` (one-to-one), an ``nn.Linear``
or an ``nn.Conv2d`` (``all_to_all=True``; their bias is added every step)::

    mem = beta*mem_prev + x + rec(spk_prev) - reset*th      (subtract)
    mem = (1 - reset) * (beta*mem_prev + x + rec(spk_prev))  (zero: reset after the decay)

which is ``discretize(Recurrent(LIF, weight=V | module, delay=1))``: the feedback of step t-1's
spikes is an impulse at the end of step t.  ``spk_prev`` keeps its surrogate gradient.

``reset_delay=False``: snntorch keeps the delayed reset above and then also resets in the same
step, by ``do_reset = spk - reset`` (``spk`` with its gradient, ``reset`` the detached delayed
one, so ``do_reset`` is -1 where a delayed reset was applied and no spike followed: the
threshold is added back)::

    mem <- mem - do_reset*th      (subtract)        mem <- mem - do_reset*mem      (zero)

The dialect runs the same delayed-reset layer and then applies the model's own jump map
(``DiscreteLayer._jumps``) with the weight ``spk - reset``: the carried membrane is the
post-reset one, and a membrane still above threshold after its reset is tested against the
threshold once more at the next step, as in snntorch.

Drop-in (see docs/dropin.md): with snntorch installed ``Leaky`` and ``RLeaky`` are subclasses
of ``snntorch.Leaky`` / ``snntorch.RLeaky`` (without calling their constructors) and are listed
in ``snntorch.SpikingNeuron.instances`` through weak proxies, so ``snntorch.utils.reset(net)``,
``snntorch.Leaky.reset_hidden()`` and snntorch's NIR export find them; the state dict holds
snntorch's names and shapes (``beta``, ``threshold``, ``graded_spikes_factor``,
``reset_mechanism_val``, ``V``, ``recurrent.*``).  These registered tensors are the layer's only
parameters: every call derives the continuous model's ``tau_mem = -1/ln(beta)`` and ``v_th =
threshold`` from them (gradients flow to ``beta`` and ``threshold``), and ``discretize``'s step
matrices give back ``E = exp(-1/tau) = beta``.  Without snntorch the classes derive from
``nn.Module`` and behave the same (minus snntorch's helpers).
"""
from __future__ import annotations

import weakref

import torch
from torch import Tensor, nn

from .. import surrogate as _surrogate
from .. import validate as _v
from ..discrete import DiscreteLayer, discretize
from ..discrete import run as _discrete_run
from ..models import IF, LIF
from ..models.recurrent import Recurrent
from ..solvers.propagator import tau_from_decay

try:  # snntorch's helpers find neurons by type: derive from its classes when it is installed
    import snntorch as _snn
    _LeakyBase, _RLeakyBase = _snn.Leaky, _snn.RLeaky
except ImportError:  # the dialect runs without snntorch
    _snn = None
    _LeakyBase = _RLeakyBase = nn.Module

__all__ = ["Leaky", "RLeaky"]

_RESETS = {"subtract": "subtract", "zero": "to_value", "none": "none"}
_RESET_VALS = ("subtract", "zero", "none")  # snntorch's reset_mechanism_val: 0, 1, 2
_LIVE: "weakref.WeakSet[_SnnNeuron]" = weakref.WeakSet()  # for Leaky.reset_hidden() & co. (weak)


def _compiling() -> bool:
    return torch.compiler.is_compiling()


def _as_tensor(name: str, value, learn: bool) -> Tensor:
    if not isinstance(value, Tensor):
        _v.real_values(name, value, torch.float64)   # a clear error for None, strings, complex, NaN
    t = value if isinstance(value, Tensor) else torch.as_tensor(value)
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    if t.dim() > 1 and name not in ("V",):
        raise ValueError(f"{name} must be a scalar or a 1-D per-neuron tensor, got shape {tuple(t.shape)}")
    with torch.no_grad():
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} must be finite, got {value!r}")
    t = t.detach().clone()
    return nn.Parameter(t) if learn else t


def _tau_of_beta(beta: Tensor) -> Tensor:
    """``tau = -1/ln(clamp(beta, 0, 1))`` in float64 (``inf`` where beta is 1; beta = 0 is taken
    as the smallest positive float64, whose exp(-1/tau) rounds to 0 in float32 and is 1e-308 in
    float64).  Gradients reach ``beta`` (zero where it is clamped)."""
    b = beta.to(torch.float64).clamp(0, 1)
    below = b < 1
    bs = torch.where(below, b, torch.full_like(b, 0.5)).clamp_min(torch.finfo(torch.float64).tiny)
    return torch.where(below, tau_from_decay(bs), torch.full_like(b, float("inf")))


def _flat_tensors(mats) -> list[Tensor]:
    """Every tensor in ``step_constants``' result (tuples, lists and its attributes)."""
    out, todo = [], [mats, *vars(mats).values()]
    while todo:
        v = todo.pop()
        if isinstance(v, Tensor):
            out.append(v)
        elif isinstance(v, (tuple, list)):
            todo.extend(v)
    return out


def _put(module: nn.Module, name: str, value: Tensor) -> None:
    """Point ``module.name`` at ``value`` (a parameter or a buffer slot; no copy)."""
    if name in module._parameters:
        if isinstance(value, nn.Parameter):
            module._parameters[name] = value
            return
        del module._parameters[name]
    module._buffers[name] = value


class _OneToOne(nn.Module):
    """snntorch's ``RecurrentOneToOne``: ``spk * V`` (``RLeaky(all_to_all=False).recurrent``; a
    learnable ``V`` is also its parameter ``recurrent.V``, as in snntorch's state dict)."""

    def __init__(self, V: Tensor) -> None:
        super().__init__()
        self.V = V

    def forward(self, x: Tensor) -> Tensor:
        return x * self.V


def _register(obj) -> None:
    _LIVE.add(obj)
    if _snn is not None:  # snntorch's helpers iterate this list; a weak proxy keeps no layer alive
        proxy = weakref.proxy(obj)
        _snn.SpikingNeuron.instances.append(proxy)
        weakref.finalize(obj, _unregister, proxy)


def _unregister(proxy) -> None:
    lst = _snn.SpikingNeuron.instances
    for i in range(len(lst) - 1, -1, -1):
        if lst[i] is proxy:
            del lst[i]


class _SnnNeuron(nn.Module):
    """Shared construction, state and helpers of Leaky and RLeaky (not public)."""

    _zero_reset_order = "before_decay"

    def _build(self, beta, threshold, spike_grad, surrogate_disable, init_hidden, inhibition,
               learn_beta, learn_threshold, reset_mechanism, state_quant, output,
               graded_spikes_factor, learn_graded_spikes_factor, reset_delay) -> None:
        if reset_mechanism not in _RESETS:
            raise ValueError(f"reset_mechanism must be 'subtract', 'zero' or 'none', got {reset_mechanism!r}")
        if state_quant and not callable(state_quant):
            raise ValueError(f"state_quant must be a quantisation function or False, got {state_quant!r}")
        self.threshold = _as_tensor("threshold", threshold, learn_threshold)
        gsf = _as_tensor("graded_spikes_factor", graded_spikes_factor, learn_graded_spikes_factor)
        self.graded_spikes_factor = gsf
        self.register_buffer("reset_mechanism_val", torch.as_tensor(_RESET_VALS.index(reset_mechanism)))
        self.beta = _as_tensor("beta", beta, learn_beta)
        for name in ("threshold", "graded_spikes_factor", "beta"):  # buffers unless learnable
            t = self.__dict__.pop(name, None)
            if t is not None:
                self.register_buffer(name, t)
        self.init_hidden, self.inhibition, self.output = bool(init_hidden), bool(inhibition), bool(output)
        self.surrogate_disable = bool(surrogate_disable)
        self.reset_delay = bool(reset_delay)
        self.state_quant = state_quant
        self._spike_spec = spike_grad
        self._reset_mechanism = reset_mechanism

    def _finish(self) -> None:
        """After the subclass registered its tensors (in snntorch's order: the optimiser's order)."""
        self._make_layer()
        self.register_load_state_dict_post_hook(_SnnNeuron._after_load)
        _register(self)

    # ------------------------------------------------------------------ the derived layer
    def _recurrence(self):
        return None

    def _make_layer(self) -> None:
        """The ``DiscreteLayer`` (kept outside the module tree: its model's parameters are bound
        to ``beta``, ``threshold`` (and ``V``) on every call, see ``_bind``)."""
        mech = self._reset_mechanism
        with torch.no_grad():
            model = LIF(tau_mem=torch.ones(self.beta.shape, dtype=torch.float64),
                        v_th=torch.ones(self.threshold.shape, dtype=torch.float64), reset=_RESETS[mech])
        rec = self._recurrence()
        if rec is not None:
            model = Recurrent(model, weight=rec, delay=1.0)
        order = "after_decay" if mech == "subtract" else self._zero_reset_order
        layer = discretize(model, 1.0, input="impulse", surrogate=self._spike_fn_of(self._spike_spec),
                           reset_delay=True, detach_reset=True, reset_order=order,
                           state_map=self.state_quant if self.state_quant else None)
        self.__dict__["_dl"] = layer

    def _spike_fn_of(self, spec):
        if self.surrogate_disable:
            return _surrogate.get("heaviside")
        return _surrogate.get(spec if spec is not None else "atan")

    def _bind(self) -> DiscreteLayer:
        """Point the model's parameters at the registered tensors (``tau_mem`` derived from
        ``beta``) and return the layer."""
        layer = self.__dict__["_dl"]
        m = layer.model
        lif = m.base if isinstance(m, Recurrent) else m
        _put(lif, "tau_mem", self._tau())
        _put(lif, "v_th", self.threshold)
        if isinstance(m, Recurrent) and m.mode == "one_to_one":
            _put(m, "weight", self.V)
            layer.feedback = m.feedback
        return layer

    def _tau(self) -> Tensor:
        b = self.beta
        if _compiling() or (b.requires_grad and torch.is_grad_enabled()):
            return _tau_of_beta(b)
        # no graph: reuse the same tensor while beta is unchanged (the layer's constants cache
        # is keyed by the identity of its tensors)
        key = (b._version, b.dtype, b.device)
        c = self.__dict__.get("_tau_cache")
        if c is None or c[0] is not b or c[1] != key:
            with torch.no_grad():
                c = (b, key, _tau_of_beta(b))
            self.__dict__["_tau_cache"] = c
        return c[2]

    @property
    def layer(self) -> DiscreteLayer:
        """The ``discretize`` layer this dialect runs (its model bound to the current ``beta``,
        ``threshold``...); ``layer.run(x)`` runs a whole sequence (with ``reset_delay=False`` the
        dialect's same-step reset is not part of it)."""
        return self._bind()

    # ------------------------------------------------------------------ snntorch's attributes
    @property
    def reset_mechanism(self) -> str:
        return self._reset_mechanism

    @reset_mechanism.setter
    def reset_mechanism(self, value: str) -> None:
        if value not in _RESETS:
            raise ValueError(f"reset_mechanism must be 'subtract', 'zero' or 'none', got {value!r}")
        self.reset_mechanism_val = torch.as_tensor(_RESET_VALS.index(value),
                                                   device=self.reset_mechanism_val.device)
        self._reset_mechanism = value
        self._make_layer()

    @staticmethod
    def _after_load(module, incompatible) -> None:
        """A checkpoint's ``reset_mechanism_val`` decides the reset mechanism (as snntorch reads
        it in the same-step reset)."""
        val = int(module.reset_mechanism_val)
        if not 0 <= val < len(_RESET_VALS):
            raise ValueError(f"reset_mechanism_val must be 0, 1 or 2, got {val}")
        if _RESET_VALS[val] != module._reset_mechanism:
            module._reset_mechanism = _RESET_VALS[val]
            module._make_layer()

    @property
    def spike_grad(self):
        """The spike function (a surrogate: snntorch's callable or ctsnn's; Heaviside with
        ``surrogate_disable``); assigning one changes it."""
        return self.__dict__["_dl"].spike_fn

    @spike_grad.setter
    def spike_grad(self, value) -> None:
        self._spike_spec = value
        self.__dict__["_dl"].spike_fn = self._spike_fn_of(value)

    @property
    def tau(self) -> Tensor:
        """The continuous membrane time constant in steps, ``-1/ln(beta)`` (``inf`` for beta = 1)."""
        return _tau_of_beta(self.beta)

    def to_model(self):
        """The continuous ctsnn model (time in steps) of the current parameters."""
        b = self.beta.detach().clamp(0, 1)
        th, reset = self.threshold.detach(), _RESETS[self._reset_mechanism]
        if bool((b >= 1).all()):
            model = IF(v_th=th, reset=reset)
        elif bool((b >= 1).any()) or bool((b <= 0).any()):
            raise ValueError("to_model: beta mixes 1 (no leak) or 0 with values in (0, 1): no single "
                             "continuous model")
        else:
            model = LIF(tau_mem=self.tau.detach(), v_th=th, reset=reset)
        rec = self._recurrence()
        return model if rec is None else Recurrent(model, weight=rec, delay=1.0)

    # ------------------------------------------------------------------ one step
    def _step(self, input_: Tensor, mem: Tensor, prev_spk: Tensor | None = None):
        """``(s, mem)``: spikes before graded scaling and the new membrane (pre-reset with
        ``reset_delay``, post-reset without)."""
        mats = self._grad_constants(input_) if self._learning() else None
        layer = self._bind() if mats is None else self.__dict__["_dl"]
        y0 = mem.unsqueeze(-1)
        x = input_   # checked by forward (validate.tensor_input): only the neuron axis is left
        _discrete_run.check_layout(layer, x, "input_")
        if self.reset_delay and mats is None:  # the layer's own step (the fused kernel without gradients)
            # layer(x, y0, prev_out=prev_spk) without the layer's own pass over x, which forward's
            # tensor_input made (real, finite, bounded) and check_layout completed
            s, y = _discrete_run.forward_checked(layer, x, y0, prev_spk)
            return s, y[..., 0].clone()  # not a view: snntorch's helpers detach it in place
        if mats is None:
            mats = layer.step_constants(input_.dtype, input_.device) if _compiling() else \
                layer._constants(input_.dtype, input_.device, layer._tensors())
        y0 = layer._state(y0, x.shape, x, mats)
        layer.last_backend = "torch"
        s, y = layer.step(x, y0, mats, prev_spk)
        if not self.reset_delay:  # snntorch's same-step reset, weight spk - reset (module docstring)
            G, theta, jumps = mats.G, mats.theta, mats.jumps
            r = layer.spike_fn(y0 @ G[0] - theta[..., 0]).detach()
            w = s - r
            if self.inhibition:  # the winner's spike, unscaled, over graded_spikes_factor (as snntorch)
                s = self._inhibit(s, y[..., 0])
                w = s / self.graded_spikes_factor.to(s.dtype) - r
            y = layer._jumps(y, [w], jumps)
        return s, y[..., 0].clone()  # not a view: snntorch's helpers detach it in place

    def _key_tensors(self) -> list[Tensor]:
        """The registered tensors the step constants are made from (all but the states)."""
        return list(self.parameters()) + [t for n, t in self.named_buffers() if n not in ("mem", "spk")]

    def _learning(self) -> bool:
        """Eager, gradients on, and a parameter that requires them: ``_grad_constants`` applies."""
        return torch.is_grad_enabled() and not _compiling() and any(p.requires_grad for p in self.parameters())

    def _grad_constants(self, x: Tensor):
        """The step constants while parameters require gradients, made once and shared by the steps
        that follow (one node of the graph, its gradient summed over the steps), until a registered
        tensor is replaced or changed in place (an optimiser step), the reset mechanism or the spike
        function changes, or a backward
        pass goes through them (which frees their graph: a hook on each constant drops the cache).
        Without this, every step derived ``tau`` and the propagator again."""
        layer = self.__dict__["_dl"]
        ts = self._key_tensors()
        # the settings: a new reset mechanism makes a new layer, a new spike_grad a new spike_fn
        key = (x.dtype, x.device, tuple((t._version, t.dtype, t.device) for t in ts), id(layer), id(layer.spike_fn))
        c = self.__dict__.get("_grad_cache")
        if c is not None and c[0] == key and len(c[1]) == len(ts) and all(a is b for a, b in zip(c[1], ts)):
            return c[2]
        self._bind()
        mats = layer.step_constants(x.dtype, x.device)
        token, me = object(), weakref.ref(self)

        def drop(grad, token=token):  # a backward pass reached the constants: their graph is spent
            inst = me()
            if inst is not None:
                cur = inst.__dict__.get("_grad_cache")
                if cur is not None and cur[3] is token:
                    del inst.__dict__["_grad_cache"]

        for t in _flat_tensors(mats):
            if t.requires_grad:
                t.register_hook(drop)
        self.__dict__["_grad_cache"] = (key, ts, mats, token)
        return mats

    def _inhibit(self, spk: Tensor, mem: Tensor) -> Tensor:
        """Only the largest ``mem - th`` along dim 1 may spike (snntorch's ``fire_inhibition``; ``mem``
        the pre-reset membrane of this step; no graded scaling)."""
        g = mem - self.threshold.to(mem.dtype)
        mask = torch.zeros_like(spk)
        mask[torch.arange(g.shape[0]), torch.argmax(g, dim=1)] = 1
        return spk * mask

    def _fire_post(self, spk: Tensor) -> Tensor:
        if self.inhibition:  # (without reset_delay already applied in _step, before the same-step reset)
            return self._inhibit(spk, self.mem) if self.reset_delay else spk
        f = self.graded_spikes_factor
        if not _compiling() and not f.requires_grad and f.numel() == 1 and bool(f == 1.0):
            return spk  # spk * 1 is spk: skip the copy
        return spk * f

    def _state(self, input_: Tensor, mem: Tensor | None) -> Tensor:
        if mem is not None:
            self.mem = mem
        if self.mem.shape != input_.shape:
            self.mem = torch.zeros_like(input_)
        return self.mem

    def reset_mem(self):
        self.mem = torch.zeros_like(self.mem)
        return self.mem

    def _reset_hidden_one(self) -> None:
        self.reset_mem()

    def _detach_hidden_one(self) -> None:
        self.mem = self.mem.detach()

    @classmethod
    def reset_hidden(cls) -> None:
        """Zero the stored state of every live instance of this class (snntorch's classmethod,
        for ``init_hidden=True``; ``snntorch.utils.reset(net)`` also reaches these layers)."""
        for inst in list(_LIVE):
            if isinstance(inst, cls):
                inst._reset_hidden_one()

    @classmethod
    def detach_hidden(cls) -> None:
        """Detach the stored state of every live instance of this class from the graph
        (truncated BPTT with ``init_hidden=True``), as snntorch's classmethod."""
        for inst in list(_LIVE):
            if isinstance(inst, cls):
                inst._detach_hidden_one()

    # ------------------------------------------------------------------ copies
    def __getstate__(self):
        """Copies (deepcopy, pickle) hold no graph: the state (``mem``, ``spk``) is detached, the
        derived ``tau`` is re-derived on use, caches are dropped."""
        state = self.__dict__.copy()
        state["_buffers"] = {k: (v.detach() if v is not None and v.grad_fn is not None else v)
                             for k, v in self._buffers.items()}
        layer = state["_dl"]
        with torch.no_grad():  # the model's slots point at leaves (rebound on every call anyway)
            m = layer.model
            _put(m.base if isinstance(m, Recurrent) else m, "tau_mem", _tau_of_beta(self.beta.detach()))
        inner = layer.__getstate__()  # (without its constants cache: rebuilt on use)
        if self._spike_spec is None or isinstance(self._spike_spec, str) or self.surrogate_disable:
            inner["spike_fn"] = None  # ctsnn's surrogates are closures: rebuilt from the spec
        state["_dl_state"] = inner
        state["_dl"] = None
        state.pop("_tau_cache", None)
        state.pop("_grad_cache", None)
        return state

    def __setstate__(self, state) -> None:
        inner = state.pop("_dl_state")
        layer = DiscreteLayer.__new__(DiscreteLayer)
        layer.__dict__.update(inner)
        state["_dl"] = layer
        super().__setstate__(state)
        if layer.spike_fn is None:
            layer.spike_fn = self._spike_fn_of(self._spike_spec)
        _register(self)


class Leaky(_SnnNeuron, _LeakyBase):
    """snntorch.Leaky (1.0.0): ``beta, threshold=1, spike_grad=None (atan), surrogate_disable,
    init_hidden, inhibition, learn_beta, learn_threshold, reset_mechanism ('subtract' | 'zero' |
    'none'), state_quant, output, graded_spikes_factor, learn_graded_spikes_factor,
    reset_delay=True``.

    ``forward(input_, mem=None) -> (spk, mem)`` (``spk`` only with ``init_hidden=True`` unless
    ``output=True``); the state is also kept in ``self.mem`` as in snntorch.  Equations: see the
    module docstring (LIF, exact step, impulse input, delayed reset)."""

    def __init__(self, beta, threshold=1.0, spike_grad=None, surrogate_disable=False, init_hidden=False,
                 inhibition=False, learn_beta=False, learn_threshold=False, reset_mechanism="subtract",
                 state_quant=False, output=False, graded_spikes_factor=1.0,
                 learn_graded_spikes_factor=False, reset_delay=True) -> None:
        nn.Module.__init__(self)  # snntorch's constructor is not run (its registry holds strong refs)
        self._build(beta, threshold, spike_grad, surrogate_disable, init_hidden, inhibition, learn_beta,
                    learn_threshold, reset_mechanism, state_quant, output, graded_spikes_factor,
                    learn_graded_spikes_factor, reset_delay)
        self.register_buffer("mem", torch.zeros(0), persistent=False)
        self._finish()

    def init_leaky(self):
        """Deprecated in snntorch; same as ``reset_mem``."""
        return self.reset_mem()

    def forward(self, input_: Tensor, mem: Tensor | None = None):
        if self.init_hidden and mem is not None:
            raise TypeError("`mem` should not be passed as an argument while `init_hidden=True`")
        input_ = _v.tensor_input("input_", input_)
        s, self.mem = self._step(input_, self._state(input_, mem))
        spk = self._fire_post(s)
        if self.init_hidden and not self.output:
            return spk
        return spk, self.mem


class RLeaky(_SnnNeuron, _RLeakyBase):
    """snntorch.RLeaky (1.0.0): ``beta, V=1, all_to_all=True, linear_features, conv2d_channels,
    kernel_size, threshold, spike_grad, surrogate_disable, init_hidden, inhibition, learn_beta,
    learn_threshold, learn_recurrent=True, reset_mechanism, state_quant, output, reset_delay``.

    Recurrence ``rec``: ``V * spk`` (``all_to_all=False``: ``self.recurrent`` holds ``V``, as
    snntorch's ``RecurrentOneToOne``), ``nn.Linear(linear_features, linear_features)`` or
    ``nn.Conv2d(conv2d_channels, conv2d_channels, kernel_size, padding=kernel_size//2)``, exposed
    as ``self.recurrent``.  ``forward(input_, spk=None, mem=None) -> (spk, mem)``; equations in the
    module docstring (``Recurrent(LIF, delay=1 step)``, exact step, impulse input, delayed reset
    after the decay)."""

    _zero_reset_order = "after_decay"

    def __init__(self, beta, V=1.0, all_to_all=True, linear_features=None, conv2d_channels=None,
                 kernel_size=None, threshold=1.0, spike_grad=None, surrogate_disable=False,
                 init_hidden=False, inhibition=False, learn_beta=False, learn_threshold=False,
                 learn_recurrent=True, reset_mechanism="subtract", state_quant=False, output=False,
                 reset_delay=True) -> None:
        nn.Module.__init__(self)  # snntorch's constructor is not run (its registry holds strong refs)
        conv, ks = bool(conv2d_channels), bool(kernel_size)
        if all_to_all:
            if not linear_features:
                if not (conv or ks):
                    raise TypeError("RLeaky: all_to_all=True needs linear_features or both conv2d_channels "
                                    "and kernel_size")
                if conv ^ ks:
                    raise TypeError("RLeaky: conv2d_channels and kernel_size must both be given")
            elif conv or ks:
                raise TypeError("RLeaky: linear_features cannot be given together with conv2d_channels or "
                                "kernel_size (a Linear and a Conv2d recurrence at once)")
        elif linear_features or conv or ks:
            raise TypeError("RLeaky: with all_to_all=False none of linear_features, conv2d_channels, "
                            "kernel_size may be given (V is the one-to-one weight)")
        self._build(beta, threshold, spike_grad, surrogate_disable, init_hidden, inhibition, learn_beta,
                    learn_threshold, reset_mechanism, state_quant, output, 1.0, False, reset_delay)
        self.all_to_all, self.learn_recurrent = bool(all_to_all), bool(learn_recurrent)
        self.linear_features, self.conv2d_channels, self.kernel_size = linear_features, conv2d_channels, kernel_size
        if all_to_all:
            if linear_features:
                self.recurrent = nn.Linear(linear_features, linear_features)
            else:
                self.padding = (kernel_size // 2, kernel_size // 2) if isinstance(kernel_size, int) else \
                    (kernel_size[0] // 2, kernel_size[1] // 2)
                self.recurrent = nn.Conv2d(conv2d_channels, conv2d_channels, kernel_size, padding=self.padding)
            if not learn_recurrent:
                self.recurrent.requires_grad_(False)
        else:
            v = _as_tensor("V", V, learn_recurrent)
            if isinstance(v, nn.Parameter):
                self.V = v
            else:
                self.register_buffer("V", v)
            self.recurrent = _OneToOne(self.V)
        self.register_buffer("spk", torch.zeros(0), persistent=False)
        self.register_buffer("mem", torch.zeros(0), persistent=False)
        self._finish()

    def _recurrence(self):
        return self.recurrent if self.all_to_all else self.V

    def _apply(self, fn, *args, **kwargs):
        out = super()._apply(fn, *args, **kwargs)
        if not self.all_to_all and "V" in self._buffers:  # recurrent.V follows the converted buffer
            self.recurrent.__dict__["V"] = self._buffers["V"]
        return out

    def reset_mem(self):
        self.spk = torch.zeros_like(self.spk)
        self.mem = torch.zeros_like(self.mem)
        return self.spk, self.mem

    init_rleaky = reset_mem

    def _detach_hidden_one(self) -> None:
        self.mem, self.spk = self.mem.detach(), self.spk.detach()

    def forward(self, input_: Tensor, spk: Tensor | None = None, mem: Tensor | None = None):
        if self.init_hidden and (mem is not None or spk is not None):
            raise TypeError("When `init_hidden=True`, RLeaky expects 1 input argument.")
        input_ = _v.tensor_input("input_", input_)
        if self.all_to_all and self.linear_features and input_.shape[-1] != self.linear_features:
            raise ValueError(f"input_: last axis {input_.shape[-1]} does not match linear_features = "
                             f"{self.linear_features} (the recurrent Linear's size)")
        if spk is not None:
            self.spk = spk
        if self.spk.shape != input_.shape:
            self.spk = torch.zeros_like(input_)
        s, self.mem = self._step(input_, self._state(input_, mem), prev_spk=self.spk)
        self.spk = self._fire_post(s)
        if self.init_hidden and not self.output:
            return self.spk
        return self.spk, self.mem
