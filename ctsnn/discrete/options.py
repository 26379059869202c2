"""The options of ``discretize`` / ``DiscreteLayer``, declared once.

``Options`` holds every option with its default and its allowed values; ``features`` names what a
layer uses (an option that is on, a model property such as a refractory period); ``LAYER_RULES``
says which features cannot be combined (refused when the layer is built, or when ``t_ref`` turns
positive later) and ``FUSED_TORCH_ONLY`` which features the fused kernel does not run (the layer
then runs the torch loop, or ``backend="fused"`` fails naming them).  The layer, the fused planner
(``ctsnn.kernels.fused.plan``) and every error message read these tables; nothing else decides
which options combine.

Unknown keyword arguments are refused by the function that received them (``discretize``,
``DiscreteLayer``), naming it, the argument and the close matches; the keywords that are not
options go to the named surrogate, and only the ones its factory takes.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import validate as _v
from ..errors import unexpected_keywords

# option -> its allowed values (the options not listed take bool, a callable, a dict ...)
CHOICES: dict[str, tuple[str, ...]] = {
    "method": ("exact", "euler"),
    "input": ("impulse", "zoh", "impulse_start"),
    "reset_order": ("before_decay", "after_decay"),
    "backend": ("auto", "torch", "fused"),
    "events": ("grid", "in_step"),
}


@dataclass(frozen=True)
class Options:
    """Every option of a discrete layer (see ``ctsnn.discrete`` for the equations of each).

    ``method``: ``"exact"`` (propagator) or ``"euler"``; ``input``: ``"impulse"`` (added at the end
    of the step), ``"impulse_start"`` (added at its start) or ``"zoh"`` (a held current);
    ``surrogate``: a name of ``ctsnn.surrogate`` or a callable, with ``surrogate_kw`` for a named
    one; ``reset_delay`` / ``reset_order``: the previous step's jumps applied at this step, before
    or after the decay; ``detach_reset``: True / False or the names of the states whose jump is
    detached; ``multi_spike``, ``threshold_grad``, ``state_min``, ``state_map``, ``learn_decay``,
    ``simultaneous_events``, ``cascade``; ``backend``: ``"auto"``, ``"torch"`` or ``"fused"``;
    ``events``: ``"grid"`` or ``"in_step"``."""

    method: str = "exact"
    input: str = "impulse"
    surrogate: Any = "atan"
    surrogate_kw: dict = field(default_factory=dict)
    reset_delay: bool = False
    reset_order: str = "before_decay"
    detach_reset: Any = False
    multi_spike: bool = False
    threshold_grad: bool = True
    state_min: dict | None = None
    state_map: Callable | None = None
    learn_decay: bool = False
    simultaneous_events: bool = False
    cascade: bool = False
    backend: str = "auto"
    events: str = "grid"

    def __post_init__(self) -> None:
        for name, allowed in CHOICES.items():
            val = getattr(self, name)
            if val not in allowed:
                raise ValueError(f"{name} must be {_or(allowed)}, got {val!r}")
        if self.state_map is not None and not callable(self.state_map):
            raise ValueError(f"state_map must be callable or None, got {self.state_map!r}")
        for nm, val in (self.state_min or {}).items():
            _v.number(f"state_min[{nm!r}]", val)
        if not isinstance(self.surrogate_kw, dict):
            raise TypeError(f"surrogate_kw must be a dict, got {type(self.surrogate_kw).__name__}")


OPTION_NAMES = tuple(f.name for f in dataclasses.fields(Options))


def _or(words) -> str:
    words = [repr(w) for w in words]
    return ", ".join(words[:-1]) + f" or {words[-1]}" if len(words) > 1 else words[0]


# ---------------------------------------------------------------- what a layer uses
def features(layer, t_ref_positive: bool | None = None) -> frozenset[str]:
    """The names (as the rules and messages spell them) of what ``layer`` uses: its options that
    are on and the model's properties that restrict them."""
    m = layer.model
    level = bool(getattr(layer.spike_fn, "uses_level", False))
    if t_ref_positive is None:
        t_ref_positive = bool(layer.__dict__.get("_has_t_ref", False))
    on = {
        "method='euler'": layer.method == "euler",
        "input != 'zoh'": layer.input != "zoh",
        "input != 'impulse'": layer.input != "impulse",
        "reset_delay": layer.reset_delay,
        "multi_spike": layer.multi_spike,
        "threshold_grad=False": not layer.threshold_grad,
        "level surrogates": level,
        "per-state detach_reset": layer._detach_states is not None,
        "state_min": bool(layer.state_min),
        "state_map": layer.state_map is not None,
        "learn_decay": layer.learn_decay,
        "simultaneous_events": layer.simultaneous_events,
        "cascade": layer.cascade,
        "recurrent feedback": layer.feedback is not None,
        "events='in_step'": layer.events == "in_step",
        "t_ref > 0": t_ref_positive,
        "more than one state or event": m.n_states != 1 or m.n_events != 1,
    }
    return frozenset(k for k, v in on.items() if v)


@dataclass(frozen=True)
class Rule:
    """``when`` (a feature) cannot be combined with any of ``excludes``; ``what`` and ``fix`` make
    the message."""

    when: str
    excludes: tuple[str, ...]
    what: str
    fix: str = "drop those options"


_SPLIT = ("multi_spike", "threshold_grad=False", "level surrogates")

# which features combine: refused when a layer is built (first rule that applies is reported)
LAYER_RULES: tuple[Rule, ...] = (
    Rule("cascade", ("input != 'impulse'", "reset_delay", "learn_decay"),
         "cascade=True (traces, then the membrane; needs input='impulse')"),
    Rule("simultaneous_events", ("reset_delay",) + _SPLIT + ("per-state detach_reset", "state_min"),
         "simultaneous_events=True (every event decided from one state)"),
    Rule("reset_delay", _SPLIT + ("per-state detach_reset", "state_min"),
         "reset_delay=True (the previous step's jumps applied at this step)"),
    Rule("events='in_step'", ("method='euler'", "input != 'zoh'", "reset_delay") + _SPLIT[:2]
         + ("simultaneous_events", "state_min", "state_map", "learn_decay", "recurrent feedback", "cascade",
            "more than one state or event"),
         "events='in_step' (spikes located inside the step on the exact solution of a held current; "
         "one state and one event: LIF, IF)"),
    Rule("t_ref > 0", ("reset_delay", "simultaneous_events", "cascade", "multi_spike"),
         "t_ref > 0 (a refractory period)", "set t_ref=0 or drop those options"),
)

# what the fused kernel does not run (the torch loop runs it): always / when gradients flow
FUSED_TORCH_ONLY: dict[str, tuple[str, ...]] = {
    "always": ("t_ref > 0", "cascade", "recurrent feedback", "state_map"),
    "with gradients": ("events='in_step'", "reset_delay", "simultaneous_events") + _SPLIT
                      + ("state_min", "per-state detach_reset"),
}


def conflicts(feats: frozenset[str]) -> tuple[Rule, list[str]] | None:
    """The first rule of ``LAYER_RULES`` that ``feats`` breaks, with the features it excludes."""
    for rule in LAYER_RULES:
        if rule.when in feats:
            bad = [f for f in rule.excludes if f in feats]
            if bad:
                return rule, bad
    return None


def check(feats: frozenset[str], model_name: str = "") -> None:
    """``ValueError`` naming the options that cannot be combined (``LAYER_RULES``)."""
    hit = conflicts(feats)
    if hit is None:
        return
    rule, bad = hit
    bad = [f"{model_name} (more than one state or event)" if b == "more than one state or event" and model_name
           else b for b in bad]
    raise ValueError(f"{rule.what} does not support: {', '.join(bad)}; {rule.fix}")


def torch_only(feats: frozenset[str], grad: bool) -> str | None:
    """Why the fused kernel cannot run a layer with ``feats`` (``FUSED_TORCH_ONLY``), or None."""
    bad = [f for f in FUSED_TORCH_ONLY["always"] if f in feats]
    if grad:
        bad += [f"gradients with {f}" for f in FUSED_TORCH_ONLY["with gradients"] if f in feats]
    return ", ".join(bad) + " (run on the torch path)" if bad else None


def table_markdown() -> str:
    """The two tables as markdown (docs/methods.md shows them)."""
    lines = ["| option | cannot be combined with |", "| --- | --- |"]
    lines += [f"| {r.when} | {', '.join(r.excludes)} |" for r in LAYER_RULES]
    lines += ["", "| the fused kernel does not run | |", "| --- | --- |"]
    lines += [f"| {k} | {', '.join(v)} |" for k, v in FUSED_TORCH_ONLY.items()]
    return "\n".join(lines)


# ---------------------------------------------------------------- keyword arguments
def split_kwargs(func: str, kw: dict, surrogate) -> tuple[dict, dict]:
    """``kw`` of ``func`` as ``(options, surrogate parameters)``; a name that is neither an option
    nor a parameter of the named surrogate's factory is a ``TypeError`` naming ``func``."""
    opts = {k: v for k, v in kw.items() if k in OPTION_NAMES}
    rest = {k: v for k, v in kw.items() if k not in OPTION_NAMES}
    if not rest:
        return opts, {}
    params = surrogate_parameters(surrogate)
    unknown = [k for k in rest if k not in params]
    if unknown:
        raise TypeError(unexpected(func, unknown, OPTION_NAMES + tuple(params),
                                   f"its options are {', '.join(OPTION_NAMES)}"
                                   + (f"; the surrogate {surrogate!r} takes {', '.join(params) or 'nothing'}"
                                      if isinstance(surrogate, str) else
                                      "; a callable surrogate takes no keyword arguments here")))
    return opts, rest


def surrogate_parameters(surrogate) -> tuple[str, ...]:
    """The keyword parameters of a named surrogate's factory (none for a callable)."""
    if not isinstance(surrogate, str):
        return ()
    from .. import surrogate as _surrogate
    factory = _surrogate._REGISTRY.get(surrogate)
    if factory is None:
        return ()
    return tuple(p.name for p in inspect.signature(factory).parameters.values()
                 if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def unexpected(func: str, names, known, tail: str = "") -> str:
    """The message of an unknown keyword argument of ``func``, with the close matches."""
    return unexpected_keywords(func, names, known, tail)
