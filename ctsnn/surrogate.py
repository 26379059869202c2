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
* sinabs 3.1.3 (``s = [v >= B]``, ``B`` the current threshold, here the level ``L``, ``g = v - L``;
  ``L`` gets no gradient): ``single_exponential(grad_width=0.5, grad_scale=1)``:
  ``ds/dg = grad_scale/(L w) exp(-|g|/(L w))``, ``w = grad_width`` (width relative to ``L``);
  ``periodic_exponential(grad_width=0.5, grad_scale=1)``: ``grad_scale exp(-|p|/grad_width)``
  with ``p = g`` below threshold and ``p = L (2 frac(v/L - 1/2) - 1)`` above (``v = g + L``);
  ``heaviside_window(window=1)``: ``ds/dg = [g >= -window] / L``;
  ``gaussian(mu=0, sigma=0.5, grad_scale=1)``: ``grad_scale N(g; mu, sigma)`` (no level);
  ``threshold_fn(fn)``: any sinabs-style ``fn(v, threshold)``, ``ds/dg = fn(g + L, L)``.
  The first three have ``uses_level = True`` and are called as ``spike_fn(g, L)``
  (``DiscreteLayer`` passes ``L``; see ``ctsnn.discrete``).
* ``superspike(beta=1)`` (Zenke & Ganguli 2018): ``s = [g > 0]``, ``ds/dg = 1 / (beta*|g| + 1)^2``.
  norse 1.1.0's ``method="super"`` is ``beta = 1`` whatever its ``alpha`` (its SuperSpike backward
  ignores ``alpha``; the default ``alpha=100`` has no effect).
* norse's other threshold methods, all ``s = [g > 0]``: ``triangle(alpha)``:
  ``ds/dg = alpha * relu(1 - |g|)``; ``heavi_tanh(k)``: ``1 - tanh(k g)^2`` (no factor k);
  ``heavi_erfc(k)``: ``2 exp(-(k g)^2) / sqrt(pi)`` (no factor k);
  ``heavi_circ(alpha)``: ``2 alpha (1/(2 sqrt(alpha^2+g^2)) - g^2 / (2 (alpha^2+g^2)^1.5))``.

``get(name_or_callable, **kw)`` returns a callable ``g -> s`` (or ``(g, L) -> s``).
"""
from __future__ import annotations

import inspect
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
        return grad_out * derivative(ctx.kind, ctx.param, g), None, None, None


def derivative(kind: str, a, g: Tensor, overwrite: bool = False) -> Tensor:
    """``ds/dg`` of the surrogate ``kind`` with parameter ``a`` at ``g`` (the formulas of the module
    docstring; the common kinds computed in place, in one new tensor).  ``overwrite=True``: ``g``
    is scratch, and the common kinds (atan, fast_sigmoid, superspike, gaussian) return it, overwritten."""
    if kind == "atan":  # (a/2) / (1 + (pi/2 a g)^2)
        d = g.mul_(math.pi / 2 * a) if overwrite else g * (math.pi / 2 * a)
        d.mul_(d).add_(1).reciprocal_().mul_(a / 2)
    elif kind in ("fast_sigmoid", "superspike"):  # 1 / (a |g| + 1)^2
        d = (g.abs_() if overwrite else g.abs()).mul_(a).add_(1.0)
        d.mul_(d).reciprocal_()
    elif kind == "sigmoid":  # a sig(a g) (1 - sig(a g))
        sg = (g.mul_(a) if overwrite else g * a).sigmoid_()
        d = sg * a
        d.mul_(sg.neg_().add_(1))
    elif kind == "gaussian":
        mu, sigma, scale = a
        # scale exp(-(g - mu)^2 / (2 sigma^2)) / (sigma sqrt(2 pi)), one rounded operation at a time
        d = (g.sub_(mu) if overwrite else g - mu).pow_(2).neg_().div_(2 * sigma ** 2).exp_()
        d.mul_(scale).div_(sigma * math.sqrt(2 * math.pi))
    elif kind == "triangular":
        d = torch.where(g >= 0, -a, a) * torch.ones_like(g)
    elif kind == "spike_rate_escape":
        b, k = a
        d = k * torch.exp(-b * (g - 1).abs())
    elif kind == "triangle":
        d = a * torch.relu(1 - g.abs())
    elif kind == "heavi_tanh":
        d = 1 - (g * a).tanh().pow(2)
    elif kind == "heavi_erfc":
        # norse divides by torch.as_tensor(np.pi).sqrt(), a default-dtype (float32) constant
        d = 2 * torch.exp(-(a * g).pow(2)) / float(torch.as_tensor(math.pi).sqrt())
    elif kind == "heavi_circ":
        r2 = a ** 2 + g.pow(2)
        d = (-(g.pow(2) / (2 * r2.pow(1.5))) + 1 / (2 * r2.sqrt())) * 2 * a
    elif kind == "straight_through":
        d = torch.ones_like(g)
    else:  # heaviside
        d = torch.zeros_like(g)
    return d


class _LevelSurrogate(torch.autograd.Function):
    """Heaviside of ``g`` whose pseudo-derivative also depends on the level ``L`` (no grad to L)."""

    @staticmethod
    def forward(ctx, g: Tensor, level: Tensor, kind: str, p1: float, p2: float, at_zero: bool) -> Tensor:
        ctx.save_for_backward(g, level)
        ctx.kind, ctx.p1, ctx.p2 = kind, p1, p2
        return ((g >= 0) if at_zero else (g > 0)).to(g.dtype)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        g, L = ctx.saved_tensors
        if ctx.kind == "single_exponential":
            w = L * ctx.p1
            d = ctx.p2 / w * torch.exp(-torch.abs(g) / w)
        elif ctx.kind == "periodic_exponential":
            v = g + L
            vn = v / L - 0.5
            vp = L * (2 * (vn - torch.floor(vn)) - 1)
            p = g * (g < 0) + vp * (g >= 0)
            d = ctx.p2 * torch.exp(-torch.abs(p) / ctx.p1)
        elif ctx.kind == "threshold_fn":  # p1 is a callable (v, L) -> ds/dv
            d = ctx.p1(g + L, L)
        else:  # heaviside_window
            d = (g >= -ctx.p1).to(g.dtype) / L
        return grad_out * d, None, None, None, None, None


def _step(kind: str, param, fire_at_zero: bool):
    """``g -> H(g)`` with the pseudo-derivative ``kind``; tagged ``heaviside = "ge" | "gt"`` (the
    forward's convention at 0), which lets ``DiscreteLayer.run`` use the fused kernel."""
    def f(g: Tensor) -> Tensor:
        return _Surrogate.apply(g, kind, param, fire_at_zero)
    f.heaviside = "ge" if fire_at_zero else "gt"
    f.derivative = lambda g, overwrite=False: derivative(kind, param, g, overwrite)  # ds/dg, no autograd
    return f


def _level_fn(kind: str, p1: float, p2: float, fire_at_zero: bool):
    def f(g: Tensor, level: Tensor) -> Tensor:
        return _LevelSurrogate.apply(g, level, kind, p1, p2, fire_at_zero)
    f.uses_level = True
    f.heaviside = "ge" if fire_at_zero else "gt"
    return f


def single_exponential(grad_width: float = 0.5, grad_scale: float = 1.0, fire_at_zero: bool = True):
    """sinabs ``SingleExponential``: ``ds/dg = grad_scale/(L w) exp(-|g|/(L w))``, ``w = grad_width``."""
    if not grad_width > 0:
        raise ValueError(f"grad_width must be > 0, got {grad_width}")
    return _level_fn("single_exponential", float(grad_width), float(grad_scale), fire_at_zero)


def periodic_exponential(grad_width: float = 0.5, grad_scale: float = 1.0, fire_at_zero: bool = True):
    """sinabs ``PeriodicExponential``: ``grad_scale exp(-|p|/grad_width)``, ``p`` periodic in ``v/L``
    above threshold (see module docstring)."""
    if not grad_width > 0:
        raise ValueError(f"grad_width must be > 0, got {grad_width}")
    return _level_fn("periodic_exponential", float(grad_width), float(grad_scale), fire_at_zero)


def heaviside_window(window: float = 1.0, fire_at_zero: bool = True):
    """sinabs ``Heaviside(window)``: ``ds/dg = [g >= -window] / L``."""
    return _level_fn("heaviside_window", float(window), 0.0, fire_at_zero)


def threshold_fn(fn, fire_at_zero: bool = True):
    """Any sinabs-style surrogate ``fn(v, threshold) -> ds/dv`` (e.g. sinabs ``MultiGaussian`` or
    a user function), evaluated at ``v = g + L``, ``threshold = L``."""
    if not callable(fn):
        raise ValueError(f"threshold_fn needs a callable fn(v, threshold), got {fn!r}")
    return _level_fn("threshold_fn", fn, 0.0, fire_at_zero)


def gaussian(mu: float = 0.0, sigma: float = 0.5, grad_scale: float = 1.0, fire_at_zero: bool = True):
    """sinabs ``Gaussian``: ``ds/dg = grad_scale exp(-(g-mu)^2/(2 sigma^2)) / (sigma sqrt(2 pi))``."""
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    return _step("gaussian", (float(mu), float(sigma), float(grad_scale)), fire_at_zero)


def atan(alpha: float = 2.0, fire_at_zero: bool = False) -> Callable[[Tensor], Tensor]:
    """ArcTan surrogate: ``ds/dg = (alpha/2) / (1 + (pi/2 alpha g)^2)``."""
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    return _step("atan", float(alpha), fire_at_zero)


def fast_sigmoid(slope: float = 25.0, fire_at_zero: bool = False) -> Callable[[Tensor], Tensor]:
    """Fast sigmoid surrogate: ``ds/dg = 1 / (slope |g| + 1)^2``."""
    if not slope > 0:
        raise ValueError(f"slope must be > 0, got {slope}")
    return _step("fast_sigmoid", float(slope), fire_at_zero)


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
    return _step("sigmoid", float(alpha), fire_at_zero)


def triangular(threshold: float = 1.0, fire_at_zero: bool = False) -> Callable[[Tensor], Tensor]:
    """snntorch's ``triangular``: ``ds/dg = threshold`` below 0, ``-threshold`` at and above 0."""
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold)):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    return _step("triangular", float(threshold), fire_at_zero)


def spike_rate_escape(beta: float = 1.0, slope: float = 25.0,
                      fire_at_zero: bool = False) -> Callable[[Tensor], Tensor]:
    """snntorch's ``spike_rate_escape``: ``ds/dg = slope exp(-beta |g - 1|)``."""
    if not beta >= 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    if not slope > 0:
        raise ValueError(f"slope must be > 0, got {slope}")
    return _step("spike_rate_escape", (float(beta), float(slope)), fire_at_zero)


def superspike(beta: float = 1.0, fire_at_zero: bool = False) -> Callable[[Tensor], Tensor]:
    """SuperSpike surrogate: ``ds/dg = 1 / (beta |g| + 1)^2`` (norse ``method="super"``: beta = 1)."""
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    return _step("superspike", float(beta), fire_at_zero)


def _norse_kind(kind: str, pname: str, default: float, positive: bool, doc: str):
    def make(fire_at_zero: bool = False, **kw) -> Callable[[Tensor], Tensor]:
        unknown = set(kw) - {pname}
        if unknown:
            raise ValueError(f"{kind}: unknown argument(s) {sorted(unknown)}; it takes {pname!r}")
        a = float(kw.get(pname, default))
        if not math.isfinite(a) or (positive and not a > 0):
            raise ValueError(f"{pname} must be {'> 0' if positive else 'finite'}, got {a}")
        return _step(kind, a, fire_at_zero)
    make.__name__, make.__doc__ = kind, doc
    P = inspect.Parameter  # the names it takes, for the callers that check keyword arguments
    make.__signature__ = inspect.Signature([P("fire_at_zero", P.POSITIONAL_OR_KEYWORD, default=False),
                                            P(pname, P.KEYWORD_ONLY, default=default)])
    return make


triangle = _norse_kind("triangle", "alpha", 0.3, False, "norse Triangle: ``ds/dg = alpha relu(1 - |g|)``.")
heavi_tanh = _norse_kind("heavi_tanh", "k", 100.0, False, "norse HeaviTanh: ``ds/dg = 1 - tanh(k g)^2``.")
heavi_erfc = _norse_kind("heavi_erfc", "k", 100.0, False,
                         "norse HeaviErfc: ``ds/dg = 2 exp(-(k g)^2) / sqrt(pi)``.")
heavi_circ = _norse_kind("heavi_circ", "alpha", 100.0, True,
                         "norse HeaviCirc: ``ds/dg = alpha^2 / (alpha^2 + g^2)^1.5`` (norse's form).")


def straight_through(fire_at_zero: bool = False) -> Callable[[Tensor], Tensor]:
    """Straight-through estimator: ``ds/dg = 1``."""
    return _step("straight_through", 0.0, fire_at_zero)


def heaviside(fire_at_zero: bool = False) -> Callable[[Tensor], Tensor]:
    """Plain step with zero gradient."""
    return _step("heaviside", 0.0, fire_at_zero)


def sigmoid4x(quant_fn=None) -> Callable[[Tensor], Tensor]:
    """tracetorch's default spike function: ``s = quant_fn(sigmoid(4 g))`` (a soft, non-binary
    spike in (0, 1) with the identity quantiser, ``ds/dg = 4 sig(4g)(1 - sig(4g))``); pass
    ``quant_fn`` (e.g. ``tracetorch.functional.round_ste()``) to quantise as tracetorch does."""
    q = quant_fn if quant_fn is not None else (lambda s: s)
    return lambda g: q(torch.sigmoid(4.0 * g))


_REGISTRY = {"sigmoid4x": sigmoid4x, "atan": atan, "sigmoid": sigmoid, "fast_sigmoid": fast_sigmoid,
             "straight_through": straight_through, "heaviside": heaviside,
             "single_exponential": single_exponential, "periodic_exponential": periodic_exponential,
             "heaviside_window": heaviside_window, "gaussian": gaussian,
             "threshold_fn": threshold_fn,
             "triangular": triangular, "spike_rate_escape": spike_rate_escape,
             "superspike": superspike, "triangle": triangle, "heavi_tanh": heavi_tanh,
             "heavi_erfc": heavi_erfc, "heavi_circ": heavi_circ}


def get(name_or_callable, **kw) -> Callable[[Tensor], Tensor]:
    """Surrogate by name (``atan``, ``fast_sigmoid``, ``sigmoid``, ``straight_through``,
    ``heaviside``, ``single_exponential``, ``periodic_exponential``, ``heaviside_window``,
    ``gaussian``, ``triangular`` (snntorch's), ``spike_rate_escape``, ``superspike``,
    ``triangle`` (norse's, a true triangle), ``heavi_tanh``, ``heavi_erfc``, ``heavi_circ``,
    ``sigmoid4x`` (tracetorch's soft spike)) or a
    callable ``g -> s`` returned unchanged."""
    if callable(name_or_callable):
        return name_or_callable
    try:
        return _REGISTRY[name_or_callable](**kw)
    except KeyError:
        raise ValueError(f"surrogate: unknown name {name_or_callable!r}; "
                         f"known: {sorted(_REGISTRY)}") from None
