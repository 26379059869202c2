"""Surrogate spike functions: forward is a Heaviside step of the event function ``g``,
backward a smooth pseudo-derivative matching a peer library's default.

Conventions (read from the installed peers' code):

* snntorch ``atan(alpha=2)``: ``s = [g > 0]``, ``ds/dg = (alpha/2) / (1 + (pi/2 * alpha * g)^2)``.
* snntorch ``fast_sigmoid(slope=25)``: ``s = [g > 0]``, ``ds/dg = 1 / (slope*|g| + 1)^2``.
* spikingjelly ``ATan(alpha=2)``: ``s = [g >= 0]``, same derivative as snntorch's atan.
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


def straight_through(fire_at_zero: bool = False) -> Callable[[Tensor], Tensor]:
    """Straight-through estimator: ``ds/dg = 1``."""
    return lambda g: _Surrogate.apply(g, "straight_through", 0.0, fire_at_zero)


def heaviside(fire_at_zero: bool = False) -> Callable[[Tensor], Tensor]:
    """Plain step with zero gradient."""
    return lambda g: _Surrogate.apply(g, "heaviside", 0.0, fire_at_zero)


def sigmoid4x(quant_fn=None) -> Callable[[Tensor], Tensor]:
    """tracetorch's default spike function: ``s = quant_fn(sigmoid(4 g))`` (a soft, non-binary
    spike in (0, 1) with the identity quantiser, ``ds/dg = 4 sig(4g)(1 - sig(4g))``); pass
    ``quant_fn`` (e.g. ``tracetorch.functional.round_ste()``) to quantise as tracetorch does."""
    q = quant_fn if quant_fn is not None else (lambda s: s)
    return lambda g: q(torch.sigmoid(4.0 * g))


_REGISTRY = {"sigmoid4x": sigmoid4x, "atan": atan, "sigmoid": sigmoid, "fast_sigmoid": fast_sigmoid,
             "straight_through": straight_through, "heaviside": heaviside}


def get(name_or_callable, **kw) -> Callable[[Tensor], Tensor]:
    """Surrogate by name (``atan``, ``fast_sigmoid``, ``sigmoid``, ``sigmoid4x``, ``straight_through``, ``heaviside``) or a
    callable ``g -> s`` returned unchanged."""
    if callable(name_or_callable):
        return name_or_callable
    try:
        return _REGISTRY[name_or_callable](**kw)
    except KeyError:
        raise ValueError(f"surrogate: unknown name {name_or_callable!r}; "
                         f"known: {sorted(_REGISTRY)}") from None
