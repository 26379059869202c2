"""Surrogate spike functions: forward is a Heaviside step of the event function ``g``,
backward a smooth pseudo-derivative matching a peer library's default.

Conventions (read from the installed peers' code):

* snntorch ``atan(alpha=2)``: ``s = [g > 0]``, ``ds/dg = (alpha/2) / (1 + (pi/2 * alpha * g)^2)``.
* snntorch ``fast_sigmoid(slope=25)``: ``s = [g > 0]``, ``ds/dg = 1 / (slope*|g| + 1)^2``.
* spikingjelly ``ATan(alpha=2)``: ``s = [g >= 0]``, same derivative as snntorch's atan.
* snntorch ``sigmoid(slope=25)``: ``s = [g > 0]``, ``ds/dg = k sig(k g) (1 - sig(k g))``, ``k = slope``
  (``sigmoid(slope=25)`` here; written in the overflow-free form).
* snntorch ``triangular(threshold=1)``: ``s = [g > 0]``, ``ds/dg = threshold`` for ``g < 0`` and
  ``-threshold`` for ``g >= 0`` (snntorch's code; its name suggests a triangle, its backward is this).
* snntorch ``spike_rate_escape(beta=1, slope=25)``: ``s = [g > 0]``,
  ``ds/dg = slope * exp(-beta |g - 1|)``.
* ``heaviside``: ``s = [g > 0]`` with zero gradient.

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
        elif ctx.kind == "triangular":
            d = torch.where(g >= 0, -a, a) * torch.ones_like(g)
        elif ctx.kind == "spike_rate_escape":
            b, k = a
            d = k * torch.exp(-b * (g - 1).abs())
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


def sigmoid(alpha: float = 4.0, fire_at_zero: bool = False, slope: float | None = None) -> Callable[[Tensor], Tensor]:
    """Sigmoid surrogate: ``ds/dg = alpha sig(alpha g) (1 - sig(alpha g))`` (spikingjelly
    ``Sigmoid(alpha=4)`` with ``fire_at_zero=True``; snntorch ``sigmoid(slope=25)`` is
    ``sigmoid(slope=25)``: ``slope`` is snntorch's name for ``alpha``)."""
    if slope is not None:
        if not slope > 0:
            raise ValueError(f"slope must be > 0, got {slope}")
        alpha = slope
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    return lambda g: _Surrogate.apply(g, "sigmoid", float(alpha), fire_at_zero)


def triangular(threshold: float = 1.0, fire_at_zero: bool = False) -> Callable[[Tensor], Tensor]:
    """snntorch's ``triangular``: ``ds/dg = threshold`` below 0, ``-threshold`` at and above 0."""
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold)):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    return lambda g: _Surrogate.apply(g, "triangular", float(threshold), fire_at_zero)


def spike_rate_escape(beta: float = 1.0, slope: float = 25.0,
                      fire_at_zero: bool = False) -> Callable[[Tensor], Tensor]:
    """snntorch's ``spike_rate_escape``: ``ds/dg = slope exp(-beta |g - 1|)``."""
    if not beta >= 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    if not slope > 0:
        raise ValueError(f"slope must be > 0, got {slope}")
    return lambda g: _Surrogate.apply(g, "spike_rate_escape", (float(beta), float(slope)), fire_at_zero)


def straight_through(fire_at_zero: bool = False) -> Callable[[Tensor], Tensor]:
    """Straight-through estimator: ``ds/dg = 1``."""
    return lambda g: _Surrogate.apply(g, "straight_through", 0.0, fire_at_zero)


def heaviside(fire_at_zero: bool = False) -> Callable[[Tensor], Tensor]:
    """Plain step with zero gradient."""
    return lambda g: _Surrogate.apply(g, "heaviside", 0.0, fire_at_zero)


_REGISTRY = {"atan": atan, "sigmoid": sigmoid, "fast_sigmoid": fast_sigmoid,
             "straight_through": straight_through, "heaviside": heaviside,
             "triangular": triangular, "triangle": triangular, "spike_rate_escape": spike_rate_escape}


def get(name_or_callable, **kw) -> Callable[[Tensor], Tensor]:
    """Surrogate by name (``atan``, ``sigmoid``, ``fast_sigmoid``, ``triangular`` (alias ``triangle``),
    ``spike_rate_escape``, ``straight_through``, ``heaviside``) or a
    callable ``g -> s`` returned unchanged."""
    if callable(name_or_callable):
        return name_or_callable
    try:
        return _REGISTRY[name_or_callable](**kw)
    except KeyError:
        raise ValueError(f"surrogate: unknown name {name_or_callable!r}; "
                         f"known: {sorted(_REGISTRY)}") from None
