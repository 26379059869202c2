"""spikingjelly dialect (``LIFNode``/``IFNode``, single- and multi-step) as ``discretize(..., method="euler")``.

spikingjelly 2.0.0: charge ``v += (x - (v - v_reset))/tau`` (``decay_input=True``) or
``v += x - (v - v_reset)/tau`` (``decay_input=False``; ``v_reset=None`` uses 0 here), then
``s = H(v - th)`` (fires on ``>= 0``), then hard reset ``v = (1-s) v + s v_reset`` or soft
reset ``v -= s th`` (``v_reset=None``).  This is the forward-Euler step (dt = 1 step) of the LIF ODE
with ``tau_mem = tau`` steps, ``v_leak = v_reset`` (0 for soft reset), input held over the step
(``decay_input=True``, gain 1/tau) or an impulse at the end of the step (``decay_input=False``,
gain 1); ``IFNode`` is the Euler (= exact) step of ``dv/dt = x``.

``MultiStepLIFNode`` / ``MultiStepIFNode`` (the names of spikingjelly's older C++ extension) are
the same nodes with ``step_mode="m"``: ``x [T, ...]`` -> spikes ``[T, ...]``.
``surrogate_function``: ``"ATan"`` / ``"Sigmoid"`` (any case), or a spikingjelly surrogate
object (its class name and ``alpha`` are read). ``detach_input=True`` (an argument of the older
C++ extension, not of spikingjelly 2.0.0, so no peer to compare with): the input enters the
charge without a gradient (``x.detach()``); the forward pass is unchanged.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..discrete import discretize
from ..models import IF, LIF


_DEFAULT_ALPHA = {"sigmoid": 4.0, "atan": 2.0}  # spikingjelly's surrogate.Sigmoid() / surrogate.ATan()


def _surrogate(surrogate_function, alpha):
    """(name, alpha) from "ATan"/"Sigmoid" (any case) or a spikingjelly surrogate object; ``alpha``
    None: the object's alpha, or spikingjelly's default for the name (Sigmoid 4, ATan 2)."""
    if not isinstance(surrogate_function, str):
        name = type(surrogate_function).__name__
        alpha = getattr(surrogate_function, "alpha", alpha)
    else:
        name = surrogate_function
    key = name.lower()
    if key not in ("sigmoid", "atan"):
        raise ValueError(f"surrogate_function must be 'ATan' or 'Sigmoid', got {surrogate_function!r}")
    alpha = _DEFAULT_ALPHA[key] if alpha is None else float(alpha)
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    return key, float(alpha)


class _Node(nn.Module):
    def __init__(self, model, input, v_reset, surrogate, alpha, detach_reset, step_mode="s",
                 detach_input=False):
        super().__init__()
        if step_mode not in ("s", "m"):
            raise ValueError(f"step_mode must be 's' or 'm', got {step_mode!r}")
        self.step_mode, self.detach_input = step_mode, bool(detach_input)
        surrogate, alpha = _surrogate(surrogate, alpha)
        self.layer = discretize(model, 1.0, method="euler", input=input, surrogate=surrogate,
                                alpha=alpha, fire_at_zero=True, detach_reset=detach_reset)
        self.v0 = 0.0 if v_reset is None else float(v_reset)
        self.v = None

    def reset(self) -> None:
        self.v = None

    def forward(self, x: Tensor) -> Tensor:
        if self.detach_input:
            x = x.detach()
        lead = x.shape[1:] if self.step_mode == "m" else x.shape  # the state of one step
        if self.v is None:
            state = torch.full(lead + (1,), self.v0, dtype=x.dtype, device=x.device)
        else:
            state = self.v.unsqueeze(-1)
        if self.step_mode == "m":  # x [T, ...]: the whole sequence through DiscreteLayer.run
            s, y = self.layer.run(x, state)
        else:
            s, y = self.layer(x, state)
        self.v = y[..., 0]
        return s


class LIFNode(_Node):
    """``LIFNode(tau=2., decay_input=True, v_threshold=1., v_reset=0., surrogate_function='Sigmoid',
    alpha=None, detach_reset=False, step_mode='s', detach_input=False)``; ``tau`` in steps (> 1 for a
    stable Euler step is not required by spikingjelly; tau <= 0 is an error); ``alpha`` None: the
    surrogate object's, or spikingjelly's default for a name (Sigmoid 4, ATan 2)."""

    def __init__(self, tau: float = 2.0, decay_input: bool = True, v_threshold: float = 1.0,
                 v_reset: float | None = 0.0, surrogate_function="Sigmoid", alpha: float | None = None,
                 detach_reset: bool = False, step_mode: str = "s", detach_input: bool = False) -> None:
        if not float(tau) > 0:
            raise ValueError(f"tau must be > 0 (steps), got {tau}")
        vl = 0.0 if v_reset is None else float(v_reset)
        model = LIF(tau_mem=float(tau), r=1.0 if decay_input else float(tau), v_leak=vl,
                    v_th=v_threshold, v_reset=vl, reset="subtract" if v_reset is None else "to_value")
        super().__init__(model, "zoh" if decay_input else "impulse", v_reset, surrogate_function, alpha,
                         detach_reset, step_mode, detach_input)


class IFNode(_Node):
    """``IFNode(v_threshold=1., v_reset=0., surrogate_function='Sigmoid', alpha=None, detach_reset=False,
    step_mode='s', detach_input=False)``."""

    def __init__(self, v_threshold: float = 1.0, v_reset: float | None = 0.0, surrogate_function="Sigmoid",
                 alpha: float | None = None, detach_reset: bool = False, step_mode: str = "s",
                 detach_input: bool = False) -> None:
        vl = 0.0 if v_reset is None else float(v_reset)
        model = IF(v_th=v_threshold, v_reset=vl, reset="subtract" if v_reset is None else "to_value")
        super().__init__(model, "impulse", v_reset, surrogate_function, alpha, detach_reset, step_mode,
                         detach_input)


class MultiStepLIFNode(LIFNode):
    """``LIFNode`` with ``step_mode='m'``: ``x [T, ...]`` -> spikes ``[T, ...]``."""

    def __init__(self, *args, **kw) -> None:
        if kw.pop("step_mode", "m") != "m":
            raise ValueError("MultiStepLIFNode is multi-step: step_mode must be 'm'")
        super().__init__(*args, step_mode="m", **kw)


class MultiStepIFNode(IFNode):
    """``IFNode`` with ``step_mode='m'``: ``x [T, ...]`` -> spikes ``[T, ...]``."""

    def __init__(self, *args, **kw) -> None:
        if kw.pop("step_mode", "m") != "m":
            raise ValueError("MultiStepIFNode is multi-step: step_mode must be 'm'")
        super().__init__(*args, step_mode="m", **kw)
