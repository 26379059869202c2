"""The one abstraction: a spiking neuron is an ODE with affine event functions and affine jumps.

Every model in ctsnn is a hybrid system on a state vector ``y`` (trailing axis of size ``S``,
named by ``state_names``):

* drift      dy/dt = f(t, y, u)                (``drift``; linear models expose ``linear_part``)
* events     g_e(y) = G[e] . y - theta_e       (``event_matrix`` and ``event_offset``);
             event ``e`` fires on the upward zero crossing of g_e
* jumps      y+ = J_e y- + k_e                  (``jump_map``), applied at the crossing time

Linear models have ``f = A y + B u + c`` below threshold, with ``A`` ``[n|1, S, S]``, ``B``
``[n|1, S, U]`` (``U`` input channels, see ``input_channels``) and ``c`` ``[n|1, S]``: a leading
axis of 1 when every neuron shares the parameters, ``n`` when a parameter is per neuron.

Models never import solvers. Parameters are scalars or 1-D per-neuron tensors; a tensor that
requires grad is kept as given (not copied) so gradients flow back to it.

Each model declares its parameters once, in ``PARAMS`` (name -> :class:`Param`: unit, sign,
whether it is a time constant, which parameter it must stay below) and its string options in
``OPTIONS`` (name -> :class:`Option`). The constructors, assignments (``model.tau_mem = ...``,
``alif.adaptation = ...``), the fitting transforms, the command line (parsing and help), the
trace's event geometry and the plots read these declarations; nothing else keeps a list of
parameter names.  Its state variables are declared the same way, in ``STATES`` (name ->
:class:`State`: unit and meaning); the trace keeps their units and the plots label and scale
their axes from them (``declared_states``), so no reader decides a unit from a state's name.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["NeuronModel", "check_param", "Param", "Option", "State"]

_SIGNS = (None, "positive", "nonneg")


@dataclass(frozen=True)
class Param:
    """The declaration of one numeric model parameter.

    ``unit``: unit of the stored number: an SI unit (``"s"``, ``"V"``, ``"A"``, ``"ohm"``,
    ``"F"``, ``"S"``; the command line then accepts any prefix of it, "10ms"), or a model's own
    (``"mV"``, ``"1/ms"``, ``"V/(A s)"``: a bare number on the command line), ``""`` when
    dimensionless. ``sign``: ``"positive"`` (> 0), ``"nonneg"`` (>= 0) or None (any sign); the
    constructor and assignments enforce it and the fit keeps it (log or softplus coordinates).
    ``time_constant``: a decay time constant tau (a decay factor per step ``dt`` is
    ``exp(-dt/tau)``). ``below``: the name of a parameter this one must stay below (``v_reset``
    below ``v_th``); checked by ``validate`` and kept by the fit. ``scale``: the size of a typical
    change in the stored unit (the fit's step for signed parameters that may start at 0).
    """

    unit: str = ""
    sign: str | None = None
    time_constant: bool = False
    below: str | None = None
    scale: float | None = None
    doc: str = ""

    def __post_init__(self):
        if self.sign not in _SIGNS:
            raise ValueError(f"Param.sign must be one of {_SIGNS}, got {self.sign!r}")
        if self.time_constant and self.sign != "positive":
            raise ValueError("a time constant is declared positive")

    @property
    def dimension(self) -> str | None:
        """The SI dimension (``"time"``, ``"voltage"``, ...) when ``unit`` is an SI unit, else None."""
        from ..units import unit_dimension
        return unit_dimension(self.unit)


@dataclass(frozen=True)
class State:
    """The declaration of one state variable of a model.

    ``unit``: unit of the stored number, as for :class:`Param` (an SI unit, ``"V"``, ``"A"``,
    ``"1/s"``, a model's own ``"mV"``, or ``""`` when dimensionless). ``doc``: what it is.
    """

    unit: str = ""
    doc: str = ""

    @property
    def dimension(self) -> str | None:
        """The SI dimension (``"voltage"``, ``"current"``, ...) when ``unit`` is an SI unit, else None."""
        from ..units import unit_dimension
        return unit_dimension(self.unit)


@dataclass(frozen=True)
class Option:
    """The declaration of one string option of a model (``reset``, ``adaptation``, ...)."""

    choices: tuple[str, ...]
    doc: str = ""

    def check(self, name: str, value: Any) -> str:
        if not isinstance(value, str) or value not in self.choices:
            raise ValueError(f"{name} must be one of {self.choices}, got {value!r}")
        return value


def check_param(name: str, value: Any, *, positive: bool = False, nonneg: bool = False,
                dtype: torch.dtype | None = None) -> Tensor:
    """Validate one model parameter and return it as a tensor (scalar or 1-D per neuron).

    Raises ``ValueError`` naming ``name`` for NaN/Inf, wrong sign or more than one dimension.
    A tensor that requires grad is returned as is, so it stays connected to the graph.  Under
    ``torch.compile`` the value conditions (finite, sign, range) are assertions in the graph
    instead (``RuntimeError`` naming the parameter when the compiled call runs).
    (Models call it through their declaration, ``Param.sign``.)
    """
    if dtype is not None:
        from ..validate import dtype_arg
        dtype = dtype_arg("dtype", dtype)
    if isinstance(value, Tensor):
        t = value
        if not t.is_floating_point():
            t = t.to(dtype or torch.get_default_dtype())
    else:
        try:
            # numbers are kept in float64 and cast to the simulation's dtype on use
            t = torch.as_tensor(value, dtype=dtype or torch.float64)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(f"parameter {name!r} must be a number or a tensor, got {value!r}") from exc
    if t.numel() == 0:
        raise ValueError(f"parameter {name!r} is an empty tensor; give a number or one value per neuron")
    if t.dim() > 1:
        raise ValueError(f"parameter {name!r} must be a scalar or a 1-D per-neuron tensor, got shape "
                         f"{tuple(t.shape)}")
    if t.is_complex():
        raise TypeError(f"parameter {name!r} must be real, got a complex value {value!r}")
    if torch.compiler.is_compiling():
        # traced (torch.compile): a tensor's value cannot decide a Python branch without breaking the
        # graph, so the same conditions are asserted inside the graph (checked when it runs)
        _check_traced(name, t, positive, nonneg)
        return t
    with torch.no_grad():
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"parameter {name!r} must be finite, got {value!r}")
        if positive and not bool((t > 0).all()):
            raise ValueError(f"parameter {name!r} must be > 0, got {value!r}")
        if nonneg and not bool((t >= 0).all()):
            raise ValueError(f"parameter {name!r} must be >= 0, got {value!r}")
        # the propagator forms 1/tau, r/tau, v_th - v_reset, ...: keep every product and ratio of
        # two parameters representable (float64), so none of them overflows to Inf or NaN
        if bool((t.abs() > PARAM_MAX).any()):
            raise ValueError(f"parameter {name!r} = {value!r} is out of range: |{name}| must be <= {PARAM_MAX:g} "
                             f"(products and ratios of parameters would overflow); check its unit (SI)")
        if bool(((t != 0) & (t.abs() < PARAM_MIN)).any()):
            raise ValueError(f"parameter {name!r} = {value!r} is out of range: a nonzero |{name}| must be >= "
                             f"{PARAM_MIN:g} (ratios with it would overflow); check its unit (SI)")
        if positive and bool((t < PARAM_MIN).any()):
            raise ValueError(f"parameter {name!r} = {value!r} is out of range: it must be >= {PARAM_MIN:g} "
                             f"(1/{name} would overflow); check its unit (SI)")
    return t


def _check_traced(name: str, t: Tensor, positive: bool, nonneg: bool) -> None:
    """``check_param``'s value conditions as graph assertions (``torch._assert_async``): a compiled
    call with a bad value raises ``RuntimeError`` naming the parameter and the condition."""
    with torch.no_grad():
        conds = [(torch.isfinite(t).all(), "must be finite"),
                 ((t.abs() <= PARAM_MAX).all(), f"must have |{name}| <= {PARAM_MAX:g} (check its unit, SI)")]
        if positive:
            conds += [(t.gt(0).all(), "must be > 0"),
                      (t.ge(PARAM_MIN).all(), f"must be >= {PARAM_MIN:g} (check its unit, SI)")]
        if nonneg:
            conds.append((t.ge(0).all(), "must be >= 0"))
        for ok, what in conds:
            torch._assert_async(ok, f"parameter {name!r} {what}")


#: the largest magnitude of a model parameter, and the smallest positive one (``check_param``)
PARAM_MAX, PARAM_MIN = 1e100, 1e-100


class NeuronModel(nn.Module):
    """Base class of every neuron model: drift, affine events and affine jumps.

    Subclasses set the class attributes and implement ``linear_part`` (linear models) or
    ``drift`` (nonlinear models), ``event_matrix``, ``event_offset`` and ``jump_map``.

    Class attributes
    ----------------
    state_names : names of the state variables, in the order of the trailing state axis.
    event_names : one name per event function.
    event_signs : sign (+1 or -1) of the output event emitted by each event function.
    input_state : the state that an input spike of weight ``w`` jumps by ``w``.
    clamp_state : the state held at its post-reset value during the refractory period.
    """

    state_names: tuple[str, ...] = ()
    event_names: tuple[str, ...] = ("spike",)
    event_signs: tuple[int, ...] = (1,)
    input_state: str = "v"
    clamp_state: str = "v"
    #: the numeric parameters a model of this class may have (constructor keywords), in display
    #: order; a subclass's entries add to (or replace) its bases' (see ``declared_params``)
    PARAMS: dict[str, Param] = {}
    #: the string options (constructor keywords) and their choices
    OPTIONS: dict[str, Option] = {}
    #: the state variables a model of this class may have, name -> :class:`State` (merged along
    #: the MRO as ``PARAMS``); which of them an instance has is ``state_names``
    STATES: dict[str, State] = {}
    #: unit of the membrane states (``v``, ...) and of the injected current (see :class:`Param`)
    voltage_unit: str = "V"
    current_unit: str = "A"

    def __init__(self, *, n: int | None = None, **options: Any) -> None:
        super().__init__()
        if n is not None:
            from ..validate import positive_int
            n = positive_int("n", n, fix="the number of neurons is a positive integer")
        self._options = dict(options)
        self._n_given = n
        self._param_keys: list[str] = []
        self._param_rules: dict[str, dict] = {}
        self._tensor_dtypes: list[torch.dtype] = []

    # ---------------------------------------------------------------- parameters
    @classmethod
    def declared_params(cls) -> dict[str, Param]:
        """Every parameter this class may have, name -> :class:`Param` (``PARAMS`` along the MRO)."""
        return dict(_along_mro(cls, "PARAMS"))

    @classmethod
    def declared_options(cls) -> dict[str, Option]:
        """The string options of this class, name -> :class:`Option` (``OPTIONS`` along the MRO)."""
        return dict(_along_mro(cls, "OPTIONS"))

    def declared_states(self) -> dict[str, State]:
        """This model's states in order, name -> :class:`State`: the class's ``STATES`` (along the
        MRO), and for a wrapper (``Recurrent``, ``Traced``) its model's for the states it keeps.
        Raises ``ValueError`` for a state that nobody declares."""
        own = dict(_along_mro(type(self), "STATES"))
        base = self._modules.get("base")
        inner = base.declared_states() if isinstance(base, NeuronModel) else {}
        out = {}
        for name in self.state_names:
            spec = own.get(name, inner.get(name))
            if spec is None:
                raise ValueError(f"{type(self).__name__} declares no state {name!r} (STATES); it declares "
                                 f"{sorted(set(own) | set(inner))}")
            out[name] = spec
        return out

    def param_spec(self, name: str) -> Param:
        """The declaration of parameter ``name`` of this model (``"base.v_th"`` for a wrapped
        model's)."""
        head, dot, rest = name.partition(".")
        if dot and isinstance(getattr(self, head, None), NeuronModel):
            return getattr(self, head).param_spec(rest)
        spec = type(self).declared_params().get(name)
        if spec is None:
            raise ValueError(f"{type(self).__name__} declares no parameter {name!r}; it declares "
                             f"{sorted(type(self).declared_params())}")
        return spec

    def orders(self) -> tuple[tuple[str, str], ...]:
        """The pairs ``(upper, lower)`` of this model's parameters that must stay in that order
        (from ``Param.below``), as ``validate`` checks them and the fit keeps them."""
        own = [k for k in self.params() if "." not in k]
        out = [(spec.below, name) for name in own for spec in [self.param_spec(name)]
               if spec.below is not None and spec.below in own]
        base = self._modules.get("base")
        if isinstance(base, NeuronModel):       # a wrapper (Recurrent, Traced): its model's orders
            out += [("base." + up, "base." + lo) for up, lo in base.orders()]
        return tuple(out)

    def __setattr__(self, name: str, value: Any) -> None:
        """Assigning a parameter (``model.tau_mem = 0.02``) checks it as the constructor does
        (finite, sign, range, from its declaration) and then the model's consistency
        (``validate``); a number is stored as a float64 tensor.  Assigning an option
        (``alif.adaptation = "current"``) checks it against the declared choices and then
        ``validate``.  A failed check leaves the old value in place."""
        rules = self.__dict__.get("_param_rules")
        option = dict(_along_mro(type(self), "OPTIONS")).get(name) if rules is not None else None
        if option is not None:
            option.check(name, value)
            if not self.__dict__.get("_validated"):
                return super().__setattr__(name, value)   # still being constructed
            old = self.__dict__.get(name)
            super().__setattr__(name, value)
            try:
                self.validate()
            except ValueError:
                super().__setattr__(name, old)
                raise
            if name in self._options:
                self._options[name] = value
            return None
        if rules is None or name not in rules:
            return super().__setattr__(name, value)
        t = check_param(name, value, **rules[name])
        old = getattr(self, name)
        self._store(name, value if isinstance(value, nn.Parameter) else t)
        try:
            self.validate()
        except ValueError:
            self._store(name, old)
            raise

    def _store(self, name: str, t: Tensor) -> None:
        """Keep parameter ``name``: an ``nn.Parameter`` registered, a tensor that requires grad as
        given (the caller's graph), anything else as a buffer."""
        self._parameters.pop(name, None)
        self._buffers.pop(name, None)
        self.__dict__.pop(name, None)
        if isinstance(t, nn.Parameter):
            self.register_parameter(name, t)
        elif t.requires_grad:
            object.__setattr__(self, name, t)
        else:
            self._buffers[name] = t.detach().clone()

    def _set_param(self, name: str, value: Any, *, dtype: torch.dtype | None = None) -> None:
        """Check ``value`` against the declaration of ``name`` (``PARAMS``) and keep it."""
        sign = self.param_spec(name).sign
        rule = dict(positive=sign == "positive", nonneg=sign == "nonneg")
        self._param_rules[name] = rule
        t = check_param(name, value, dtype=dtype, **rule)
        if isinstance(value, Tensor) or dtype is not None:
            self._tensor_dtypes.append(t.dtype)
        if isinstance(value, nn.Parameter):
            self.register_parameter(name, value)
        elif t.requires_grad:
            object.__setattr__(self, name, t)  # keep the caller's graph
        else:
            self.register_buffer(name, t.detach().clone())
        self._param_keys.append(name)

    def params(self) -> dict[str, Tensor]:
        """The numeric parameters by name (scalars or per-neuron tensors)."""
        return {k: getattr(self, k) for k in self._param_keys}

    def config(self) -> dict[str, Any]:
        """Constructor keywords that rebuild this model (see ``replace``)."""
        cfg = dict(self._options)
        cfg.update(self.params())
        if self._n_given is not None:
            cfg["n"] = self._n_given
        return cfg

    def replace(self, **changes: Any) -> "NeuronModel":
        """A new model of the same kind with some parameters or options changed."""
        cfg = self.config()
        unknown = set(changes) - set(cfg) - set(self._constructor_keys())
        if unknown:
            raise ValueError(f"{type(self).__name__} has no parameter(s) {sorted(unknown)}; "
                             f"it has {sorted(set(cfg) | set(self._constructor_keys()))}")
        cfg.update(changes)
        return type(self)(**cfg)

    @classmethod
    def _constructor_keys(cls) -> tuple[str, ...]:
        import inspect
        return tuple(p for p in inspect.signature(cls.__init__).parameters if p != "self")

    @property
    def n(self) -> int:
        """Number of neurons implied by the per-neuron parameters (1 when all are scalars)."""
        sizes = {int(p.shape[0]) for p in self.params().values() if p.dim() == 1 and p.shape[0] != 1}
        if self._n_given is not None:
            sizes.add(int(self._n_given))
        if len(sizes) > 1:
            raise ValueError(f"{type(self).__name__}: per-neuron parameters disagree on the number of "
                             f"neurons: sizes {sorted(sizes)}")
        return sizes.pop() if sizes else 1

    def p(self, name: str, dtype: torch.dtype | None = None, device=None) -> Tensor:
        """Parameter ``name`` as a 1-D tensor ``[n|1]`` in the requested dtype/device."""
        t = getattr(self, name)
        t = t.reshape(-1) if t.dim() == 1 else t.reshape(1)
        if dtype is not None or device is not None:
            t = t.to(dtype=dtype or t.dtype, device=device or t.device)
        return t

    def param_dtype(self) -> torch.dtype:
        """The dtype of the parameters given as tensors (or ``dtype=``), else torch's default.

        Parameters given as Python numbers are stored in float64 and do not decide the dtype."""
        dts = getattr(self, "_tensor_dtypes", [])
        return dts[0] if dts else torch.get_default_dtype()

    # ---------------------------------------------------------------- structure
    @property
    def n_states(self) -> int:
        return len(self.state_names)

    @property
    def n_events(self) -> int:
        return len(self.event_names)

    @property
    def n_inputs(self) -> int:
        """Number of input channels ``U`` that ``input_channels`` produces from the current."""
        return 1

    def state_index(self, name: str) -> int:
        try:
            return self.state_names.index(name)
        except ValueError:
            raise ValueError(f"{type(self).__name__} has no state {name!r}; its states are "
                             f"{self.state_names}") from None

    def input_channels(self, u: Tensor) -> Tensor:
        """Map the injected current ``u`` ``[..., n]`` to the input channels ``[..., n, U]``."""
        return u.unsqueeze(-1)

    @property
    def linear_input(self) -> bool:
        """Whether the input maps are the defaults (one channel ``u``; ``spike_input(w) = w`` on
        ``input_state``): linear in the input, so a step applies it as ``x`` times a fixed vector."""
        return (type(self).input_channels is NeuronModel.input_channels
                and type(self).spike_input is NeuronModel.spike_input)

    def spike_input(self, w: Tensor) -> Tensor:
        """State increment ``[..., S]`` caused by input spikes of weight ``w`` ``[...]``."""
        inc = torch.zeros(w.shape + (self.n_states,), dtype=w.dtype, device=w.device)
        inc[..., self.state_index(self.input_state)] = w
        return inc

    def init_state(self, shape: tuple[int, ...], dtype: torch.dtype, device=None) -> Tensor:
        """Resting state ``[*shape, S]``: every state at zero unless the model overrides it."""
        return torch.zeros(tuple(shape) + (self.n_states,), dtype=dtype, device=device)

    def refractory_period(self, dtype=None, device=None) -> Tensor | None:
        """Refractory period ``[n|1]`` in s, or None; ``clamp_state`` is held at its post-jump
        value for that long after each event."""
        if "t_ref" not in self._param_keys:
            return None
        return self.p("t_ref", dtype, device)

    # ---------------------------------------------------------------- dynamics
    def linear_part(self, dtype: torch.dtype | None = None, device=None) -> tuple[Tensor, Tensor, Tensor] | None:
        """``(A, B, c)`` with ``dy/dt = A y + B u + c`` below threshold, or None if nonlinear."""
        return None

    def drift(self, t: float | Tensor, y: Tensor, u: Tensor) -> Tensor:
        """dy/dt for state ``y`` ``[..., n, S]`` and input channels ``u`` ``[..., n, U]``.

        The default evaluates the linear part; nonlinear models override this.
        """
        lin = self.linear_part(y.dtype, y.device)
        if lin is None:
            raise NotImplementedError(f"{type(self).__name__} must implement drift()")
        A, B, c = lin
        return (torch.einsum("nij,...nj->...ni", A, y) + torch.einsum("niu,...nu->...ni", B, u) + c)

    def event_matrix(self, dtype: torch.dtype | None = None, device=None) -> Tensor:
        """``G`` ``[E, S]``: event ``e`` is ``g_e = G[e] . y - theta_e``."""
        raise NotImplementedError

    def event_offset(self, dtype: torch.dtype | None = None, device=None) -> Tensor:
        """``theta`` ``[n|1, E]``: the threshold of each event function."""
        raise NotImplementedError

    def events(self, t: float | Tensor, y: Tensor) -> Tensor:
        """Event functions ``g`` ``[..., n, E]``; event ``e`` fires when ``g_e`` crosses 0 upward."""
        G = self.event_matrix(y.dtype, y.device)
        return y @ G.T - self.event_offset(y.dtype, y.device)

    def jump_map(self, e: int, dtype: torch.dtype | None = None, device=None) -> tuple[Tensor, Tensor]:
        """``(J, k)`` of event ``e``: ``y+ = J y- + k``, with ``J`` ``[S, S]`` and ``k`` ``[n|1, S]``."""
        raise NotImplementedError

    def jump(self, t: float | Tensor, y: Tensor, e: int) -> Tensor:
        """State right after event ``e`` for every element of ``y`` ``[..., n, S]``."""
        J, k = self.jump_map(e, y.dtype, y.device)
        return y @ J.T + k

    def output_scale(self, e: int, dtype: torch.dtype | None = None, device=None) -> Tensor:
        """Magnitude ``[n|1]`` of the output event of event function ``e`` (its sign is separate)."""
        return torch.ones(1, dtype=dtype or self.param_dtype(), device=device)

    def event_geometry(self) -> dict[str, Any]:
        """The threshold geometry as plain Python (JSON-ready, kept in ``Trace.thresholds``), read
        from ``event_matrix``, ``event_offset`` and ``jump_map``: for each event its ``name``,
        ``coef`` the nonzero coefficients ``G[e]`` by state (``{"v": 1.0, "b": -1.0}``: the event
        fires when ``v - b`` crosses ``offset`` upward, i.e. ``v`` crosses ``offset + b``),
        ``offset`` theta_e per neuron (one value when shared), and ``reset`` the states the jump
        sets to a fixed value (a zero row of ``J``) with that value per neuron; the model's
        ``voltage_unit``; and ``state_units``, the declared unit of each state (``STATES``)."""
        f64 = torch.float64
        with torch.no_grad():
            G = self.event_matrix(f64).detach().cpu()
            theta = self.event_offset(f64).detach().cpu()
            events = []
            for e, name in enumerate(self.event_names):
                J, k = (x.detach().cpu() for x in self.jump_map(e, f64))
                events.append({
                    "name": name,
                    "coef": {s: float(G[e, j]) for j, s in enumerate(self.state_names) if G[e, j] != 0},
                    "offset": theta[:, e].tolist(),
                    "reset": {s: k[:, j].tolist() for j, s in enumerate(self.state_names)
                              if not bool(J[j].any())}})
        return {"events": events, "voltage_unit": self.voltage_unit,
                "state_units": {k: spec.unit for k, spec in self.declared_states().items()}}

    # ---------------------------------------------------------------- checks
    def validate(self) -> None:
        """Raise ``ValueError`` for inconsistent parameters (called by the constructors): the
        per-neuron sizes agree, every option is one of its declared choices, and every declared
        order (``Param.below``, see ``orders``) holds."""
        _ = self.n
        for name, option in type(self).declared_options().items():
            if name in self.__dict__:
                option.check(name, self.__dict__[name])
        params = self.params()
        with torch.no_grad():
            for upper, lower in self.orders():
                hi, lo = params[upper], params[lower]
                if not bool((lo < hi).all()):
                    raise ValueError(f"{type(self).__name__}: {lower} must be below {upper}, got "
                                     f"{lower}={_show_param(lo)}, {upper}={_show_param(hi)}")
        self.__dict__["_validated"] = True

    def extra_repr(self) -> str:
        parts = []
        for k, v in self.params().items():
            if v.dim() == 0:
                parts.append(f"{k}={float(v):.6g}")
            else:
                parts.append(f"{k}=<{tuple(v.shape)}>")
        for k, v in self._options.items():
            parts.append(f"{k}={v!r}")
        return ", ".join(parts)


@functools.lru_cache(maxsize=None)
def _along_mro(cls: type, attr: str) -> tuple:
    """The entries of the class attribute ``attr`` (a dict) merged along the MRO, subclasses last
    (so they add to or replace their bases'); read on every assignment, hence cached."""
    out: dict = {}
    for klass in reversed(cls.__mro__):
        out.update(klass.__dict__.get(attr, {}))
    return tuple(out.items())


def _show_param(t: Tensor) -> str:
    return f"{float(t):g}" if t.numel() == 1 else str(t.detach().cpu().tolist())


def _eye(S: int, dtype, device) -> Tensor:
    return torch.eye(S, dtype=dtype, device=device)


def finite_or_raise(name: str, x: float) -> float:
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite, got {x!r}")
    return x
