"""Surrogate spike functions: forward is a Heaviside step of the event function ``g``,
backward a smooth pseudo-derivative matching a peer library's default.

Conventions (read from the installed peers' code):

* snntorch ``atan(alpha=2)``: ``s = [g > 0]``, ``ds/dg = (alpha/2) / (1 + (pi/2 * alpha * g)^2)``.
* snntorch ``fast_sigmoid(slope=25)``: ``s = [g > 0]``, ``ds/dg = 1 / (slope*|g| + 1)^2``.
* spikingjelly ``ATan(alpha=2)``: ``s = [g >= 0]``, same derivative as snntorch's atan.
* ``heaviside``: ``s = [g > 0]`` with zero gradient.
* ``superspike(beta=1)`` (Zenke & Ganguli 2018): ``s = [g > 0]``, ``ds/dg = 1 / (beta*|g| + 1)^2``.
  norse 1.1.0's ``method="super"`` is ``beta = 1`` whatever its ``alpha`` (its SuperSpike backward
  ignores ``alpha``; the default ``alpha=100`` has no effect).
* norse's other threshold methods, all ``s = [g > 0]``: ``triangle(alpha)``:
  ``ds/dg = alpha * relu(1 - |g|)``; ``heavi_tanh(k)``: ``1 - tanh(k g)^2`` (no factor k);
  ``heavi_erfc(k)``: ``2 exp(-(k g)^2) / sqrt(pi)`` (no factor k);
  ``heavi_circ(alpha)``: ``2 alpha (1/(2 sqrt(alpha^2+g^2)) - g^2 / (2 (alpha^2+g^2)^1.5))``.

``get(name_or_callable, **kw)`` returns a callable ``g -> s``.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor


class _Surrogate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, g: Tensor, kind: str, param: float, at_zero: bool) -> Tensor:
        ctx.save_for_backward(g)
        ctx.kind, ctx.param = kind, param
        return ((g >= 0) if at_zero else (g > 0)).to(g.dtype)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        (g,) = ctx.saved_tensors
        a = ctx.param
        if ctx.kind == "atan":
            d = (a / 2) / (1 + (math.pi / 2 * a * g) ** 2)
        elif ctx.kind == "fast_sigmoid":
            d = 1.0 / (a * g.abs() + 1.0) ** 2
        elif ctx.kind == "sigmoid":
            sg = torch.sigmoid(a * g)
            d = a * sg * (1 - sg)
        elif ctx.kind == "superspike":
            d = 1.0 / (a * g.abs() + 1.0).pow(2)
        elif ctx.kind == "triangle":
            d = a * torch.relu(1 - g.abs())
        elif ctx.kind == "heavi_tanh":
            d = 1 - (g * a).tanh().pow(2)
        elif ctx.kind == "heavi_erfc":
            # norse divides by torch.as_tensor(np.pi).sqrt(), a default-dtype (float32) constant
            d = 2 * torch.exp(-(a * g).pow(2)) / float(torch.as_tensor(math.pi).sqrt())
        elif ctx.kind == "heavi_circ":
            r2 = a ** 2 + g.pow(2)
            d = (-(g.pow(2) / (2 * r2.pow(1.5))) + 1 / (2 * r2.sqrt())) * 2 * a
        elif ctx.kind == "straight_through":
            d = torch.ones_like(g)
        else:  # heaviside
            d = torch.zeros_like(g)
        return grad_out * d, None, None, None


def atan(alpha: float = 2.0, fire_at_zero: bool = False) -> Callable[[Tensor], Tensor]:
    """ArcTan surrogate: ``ds/dg = (alpha/2) / (1 + (pi/2 alpha g)^2)``."""
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    return lambda g: _Surrogate.apply(g, "atan", float(alpha), fire_at_zero)


def fast_sigmoid(slope: float = 25.0, fire_at_zero: bool = False) -> Callable[[Tensor], Tensor]:
    """Fast sigmoid surrogate: ``ds/dg = 1 / (slope |g| + 1)^2``."""
    if not slope > 0:
        raise ValueError(f"slope must be > 0, got {slope}")
    return lambda g: _Surrogate.apply(g, "fast_sigmoid", float(slope), fire_at_zero)


def sigmoid(alpha: float = 4.0, fire_at_zero: bool = False) -> Callable[[Tensor], Tensor]:
    """Sigmoid surrogate: ``ds/dg = alpha sig(alpha g) (1 - sig(alpha g))`` (spikingjelly
    ``Sigmoid(alpha=4)`` with ``fire_at_zero=True``; snntorch ``sigmoid(slope=25)`` is alpha=25)."""
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    return lambda g: _Surrogate.apply(g, "sigmoid", float(alpha), fire_at_zero)


def superspike(beta: float = 1.0, fire_at_zero: bool = False) -> Callable[[Tensor], Tensor]:
    """SuperSpike surrogate: ``ds/dg = 1 / (beta |g| + 1)^2`` (norse ``method="super"``: beta = 1)."""
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    return lambda g: _Surrogate.apply(g, "superspike", float(beta), fire_at_zero)


def _norse_kind(kind: str, pname: str, default: float, positive: bool, doc: str):
    def make(fire_at_zero: bool = False, **kw) -> Callable[[Tensor], Tensor]:
        unknown = set(kw) - {pname}
        if unknown:
            raise ValueError(f"{kind}: unknown argument(s) {sorted(unknown)}; it takes {pname!r}")
        a = float(kw.get(pname, default))
        if not math.isfinite(a) or (positive and not a > 0):
            raise ValueError(f"{pname} must be {'> 0' if positive else 'finite'}, got {a}")
        return lambda g: _Surrogate.apply(g, kind, a, fire_at_zero)
    make.__name__, make.__doc__ = kind, doc
    return make


triangle = _norse_kind("triangle", "alpha", 0.3, False, "norse Triangle: ``ds/dg = alpha relu(1 - |g|)``.")
heavi_tanh = _norse_kind("heavi_tanh", "k", 100.0, False, "norse HeaviTanh: ``ds/dg = 1 - tanh(k g)^2``.")
heavi_erfc = _norse_kind("heavi_erfc", "k", 100.0, False,
                         "norse HeaviErfc: ``ds/dg = 2 exp(-(k g)^2) / sqrt(pi)``.")
heavi_circ = _norse_kind("heavi_circ", "alpha", 100.0, True,
                         "norse HeaviCirc: ``ds/dg = alpha^2 / (alpha^2 + g^2)^1.5`` (norse's form).")


def straight_through(fire_at_zero: bool = False) -> Callable[[Tensor], Tensor]:
    """Straight-through estimator: ``ds/dg = 1``."""
    return lambda g: _Surrogate.apply(g, "straight_through", 0.0, fire_at_zero)


def heaviside(fire_at_zero: bool = False) -> Callable[[Tensor], Tensor]:
    """Plain step with zero gradient."""
    return lambda g: _Surrogate.apply(g, "heaviside", 0.0, fire_at_zero)


_REGISTRY = {"atan": atan, "sigmoid": sigmoid, "fast_sigmoid": fast_sigmoid,
             "straight_through": straight_through, "heaviside": heaviside, "superspike": superspike,
             "triangle": triangle, "heavi_tanh": heavi_tanh, "heavi_erfc": heavi_erfc,
             "heavi_circ": heavi_circ}


def get(name_or_callable, **kw) -> Callable[[Tensor], Tensor]:
    """Surrogate by name (``atan``, ``fast_sigmoid``, ``sigmoid``, ``straight_through``,
    ``heaviside``, ``superspike``, ``triangle``, ``heavi_tanh``, ``heavi_erfc``, ``heavi_circ``) or a
    callable ``g -> s`` returned unchanged."""
    if callable(name_or_callable):
        return name_or_callable
    try:
        return _REGISTRY[name_or_callable](**kw)
    except KeyError:
        raise ValueError(f"surrogate: unknown name {name_or_callable!r}; "
                         f"known: {sorted(_REGISTRY)}") from None
