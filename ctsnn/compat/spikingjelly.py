"""spikingjelly dialect (single-step ``LIFNode``/``IFNode``) as ``discretize(..., method="euler")``.

spikingjelly 2.0.0: charge ``v += (x - (v - v_reset))/tau`` (``decay_input=True``) or
``v += x - (v - v_reset)/tau`` (``decay_input=False``; ``v_reset=None`` uses 0 here), then
``s = H(v - th)`` (fires on ``>= 0``), then hard reset ``v = (1-s) v + s v_reset`` or soft
reset ``v -= s th`` (``v_reset=None``).  This is the forward-Euler step (dt = 1 step) of the LIF ODE
with ``tau_mem = tau`` steps, ``v_leak = v_reset`` (0 for soft reset), input held over the step
(``decay_input=True``, gain 1/tau) or an impulse at the end of the step (``decay_input=False``,
gain 1); ``IFNode`` is the Euler (= exact) step of ``dv/dt = x``.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..discrete import discretize
from ..models import IF, LIF


class _Node(nn.Module):
    def __init__(self, model, input, v_reset, surrogate, alpha, detach_reset, step_mode="s"):
        super().__init__()
        if step_mode not in ("s", "m"):
            raise ValueError(f"step_mode must be 's' or 'm', got {step_mode!r}")
        self.step_mode = step_mode
        if surrogate not in ("sigmoid", "atan"):
            raise ValueError(f"surrogate_function must be 'sigmoid' or 'atan', got {surrogate!r}")
        self.layer = discretize(model, 1.0, method="euler", input=input, surrogate=surrogate,
                                alpha=alpha, fire_at_zero=True, detach_reset=detach_reset)
        self.v0 = 0.0 if v_reset is None else float(v_reset)
        self.v = None

    def reset(self) -> None:
        self.v = None

    def forward(self, x: Tensor) -> Tensor:
        if self.v is None:
            state = torch.full(x.shape + (1,), self.v0, dtype=x.dtype, device=x.device)
        else:
            state = self.v.unsqueeze(-1)
        if self.step_mode == "m":  # x [T, ...]: the whole sequence through DiscreteLayer.run
            s, y = self.layer.run(x, state[0] if self.v is None else state)
        else:
            s, y = self.layer(x, state)
        self.v = y[..., 0]
        return s


class LIFNode(_Node):
    """``LIFNode(tau=2., decay_input=True, v_threshold=1., v_reset=0., surrogate='sigmoid',
    alpha=4., detach_reset=False)``; ``tau`` in steps (> 1 for a stable Euler step is not required
    by spikingjelly; tau <= 0 is an error)."""

    def __init__(self, tau: float = 2.0, decay_input: bool = True, v_threshold: float = 1.0,
                 v_reset: float | None = 0.0, surrogate: str = "sigmoid", alpha: float = 4.0,
                 detach_reset: bool = False, step_mode: str = "s") -> None:
        if not float(tau) > 0:
            raise ValueError(f"tau must be > 0 (steps), got {tau}")
        vl = 0.0 if v_reset is None else float(v_reset)
        model = LIF(tau_mem=float(tau), r=1.0 if decay_input else float(tau), v_leak=vl,
                    v_th=v_threshold, v_reset=vl, reset="subtract" if v_reset is None else "to_value")
        super().__init__(model, "zoh" if decay_input else "impulse", v_reset, surrogate, alpha, detach_reset,
                         step_mode)


class IFNode(_Node):
    """``IFNode(v_threshold=1., v_reset=0., surrogate='sigmoid', alpha=4., detach_reset=False)``."""

    def __init__(self, v_threshold: float = 1.0, v_reset: float | None = 0.0, surrogate: str = "sigmoid",
                 alpha: float = 4.0, detach_reset: bool = False, step_mode: str = "s") -> None:
        vl = 0.0 if v_reset is None else float(v_reset)
        model = IF(v_th=v_threshold, v_reset=vl, reset="subtract" if v_reset is None else "to_value")
        super().__init__(model, "impulse", v_reset, surrogate, alpha, detach_reset, step_mode)
