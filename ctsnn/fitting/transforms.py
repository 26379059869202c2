"""Unconstrained coordinates for fitted parameters.

Each parameter ``p`` is optimised through a coordinate ``z`` that starts at 0; which transform
is read from the parameter's declaration (``ctsnn.models.Param``, its ``sign`` and ``scale``):

* positive parameters (time constants, resistance, positive thresholds): ``p = p0 exp(z)``
  (log scale: positivity kept, steps relative);
* non-negative parameters (refractory period, adaptation jump): the same when they start > 0,
  else ``p = s softplus(z + c)`` with ``s`` the declared ``scale`` (1e-3 if none);
* signed parameters (potentials, bias): ``p = p0 + s z`` with ``s`` the declared ``scale``, else
  ``max(|p0|, 1e-2)``;
* with bounds ``(lo, hi)``: ``p = lo + (hi - lo) sigmoid(z + c)``.

Every transform is smooth and monotone, so the optimum and its standard errors map back.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..models.base import Param

__all__ = ["Transform", "transform_for"]


@dataclass
class Transform:
    kind: str
    p0: float
    scale: float = 1.0
    lo: float = -math.inf
    hi: float = math.inf
    shift: float = 0.0

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        if self.kind == "log":
            return self.p0 * torch.exp(z)
        if self.kind == "softplus":
            return self.scale * torch.nn.functional.softplus(z + self.shift)
        if self.kind == "sigmoid":
            return self.lo + (self.hi - self.lo) * torch.sigmoid(z + self.shift)
        return self.p0 + self.scale * z


def transform_for(name: str, p0: float, bounds: tuple[float, float] | None = None, *,
                  spec: Param) -> Transform:
    """The transform of parameter ``name`` (declared by ``spec``) starting at ``p0`` (see the
    module docstring)."""
    if bounds is not None:
        lo, hi = float(bounds[0]), float(bounds[1])
        if not lo < hi:
            raise ValueError(f"bounds of {name!r} must satisfy lo < hi, got {bounds}")
        if not lo < p0 < hi:
            raise ValueError(f"the starting value of {name!r} ({p0:g}) is outside its bounds {bounds}")
        x = (p0 - lo) / (hi - lo)
        return Transform("sigmoid", p0, lo=lo, hi=hi, shift=math.log(x / (1 - x)))
    if spec.sign == "positive" or (spec.sign == "nonneg" and p0 > 0):
        if p0 <= 0:
            raise ValueError(f"{name!r} must start > 0, got {p0:g}")
        return Transform("log", p0)
    if spec.sign == "nonneg":
        if p0 < 0:
            raise ValueError(f"{name!r} must start >= 0, got {p0:g}")
        # starts at ~scale * 4.5e-5
        return Transform("softplus", p0, scale=spec.scale or 1e-3, shift=-10.0)
    return Transform("affine", p0, scale=spec.scale or max(abs(p0), 1e-2))
