"""snntorch dialect: ``Leaky`` as ``discretize(LIF)`` with time counted in steps (dt = 1).

snntorch 1.0.0 ``Leaky`` (default ``reset_delay=True``): ``reset = H(mem_prev - th)`` (detached),
``mem = beta*mem_prev + x - reset*th`` (subtract) or ``mem = beta*(1-reset)*mem_prev + x``
(zero), ``spk = H(mem - th)`` (fires on ``mem - th > 0``); returns ``(spk, mem)`` with ``mem``
pre-reset.  This is the LIF ODE with ``tau_mem = -1/ln(beta)`` steps, impulse input at the end
of the step, and a delayed reset: zero reset before the decay (exact ODE order), subtract reset
after the decay (see docs/derivations.md).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..discrete import discretize
from ..models import IF, LIF


class Leaky(nn.Module):
    """Subset of snntorch.Leaky: ``beta``, ``threshold``, ``spike_grad`` (atan by default),
    ``reset_mechanism`` ('subtract', 'zero', 'none'); ``forward(input_, mem=None) -> (spk, mem)``."""

    def __init__(self, beta, threshold: float = 1.0, spike_grad=None, reset_mechanism: str = "subtract") -> None:
        super().__init__()
        b = torch.as_tensor(beta, dtype=torch.float64)
        if not torch.isfinite(b).all():
            raise ValueError(f"beta must be finite, got {beta}")
        b = b.clamp(0, 1)  # snntorch clamps beta to [0, 1] in the forward pass
        if (b <= 0).any():
            raise ValueError("beta must be > 0 (beta = 0 has no continuous time constant)")
        if reset_mechanism not in ("subtract", "zero", "none"):
            raise ValueError(f"reset_mechanism must be 'subtract', 'zero' or 'none', got {reset_mechanism!r}")
        reset = {"subtract": "subtract", "zero": "to_value", "none": "none"}[reset_mechanism]
        b = b.reshape(-1)
        if bool((b == 1).all()):
            model = IF(v_th=threshold, reset=reset)
        else:
            if (b == 1).any():
                raise ValueError("beta: a mix of 1 and < 1 values is not supported")
            model = LIF(tau_mem=(-1.0 / torch.log(b)).tolist(), v_th=threshold, reset=reset)
        self.layer = discretize(model, 1.0, input="impulse", surrogate=spike_grad or "atan",
                                reset_delay=True, detach_reset=True,
                                reset_order="after_decay" if reset_mechanism == "subtract" else "before_decay")

    def forward(self, input_: Tensor, mem: Tensor | None = None):
        state = None if mem is None else mem.unsqueeze(-1)
        if state is not None and state.shape[:-1] != input_.shape:
            state = None  # snntorch re-zeros a state of the wrong shape
        spk, y = self.layer(input_, state)
        return spk, y[..., 0]
