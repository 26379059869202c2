"""Discrete-time layers derived from a continuous ``NeuronModel``.

``discretize(model, dt)`` returns a ``DiscreteLayer`` that steps the model on a grid of
spacing ``dt`` (seconds).  Below threshold the model is ``dy/dt = A y + B u + c``
(``model.linear_part()``); one step is

* ``method="exact"``:  ``y <- E y + F (B u + c)`` with ``E = exp(A dt)``,
  ``F = int_0^dt exp(A s) ds`` (``ctsnn.solvers.propagator``),
* ``method="euler"``:  ``y <- (I + dt A) y + dt (B u + c)``.

Input conventions (``x`` has shape ``[*batch, n]``):

* ``input="zoh"``: ``x`` is a current held over the step (``u = input_channels(x)``).
* ``input="impulse"``: ``x`` is added to the model's input state at the END of the step,
  after the decay (``y <- E y + F c + spike_input(x)``), i.e. the peers' ``mem = beta*mem + x``.

Then for each event ``e`` (``g = y G^T - theta``) the spike is ``s_e = H(g_e)`` with a surrogate
gradient, and the affine jump is applied softly: ``y <- y + s_e (y J_e^T + k_e - y)``.
With ``simultaneous_events=True`` all ``s_e`` are computed from the same state before any
jump is applied (tracetorch's order; it matters for soft, non-binary spikes).
The output is ``sum_e s_e * event_signs[e] * output_scale(e)``.  Parameters stay the continuous ones (tau, v_th),
so ``to_model()`` returns the model and discretising it at another ``dt`` keeps the physical
time constants.

Delayed reset (``reset_delay=True``, snntorch's default): the carried state is the PRE-reset
state; the previous step's spikes are re-derived from it (``detach_reset`` cuts their gradient)
and their jumps applied at the next step, ``reset_order="before_decay"`` (the exact order of
the ODE: jump, then propagate) or ``"after_decay"`` (snntorch's subtract reset,
``mem = beta*mem + x - s*th``: the reset is not decayed; relative to the ODE this subtracts
``(1-beta)*th`` less per spike).  The per-step arithmetic lives in ``DiscreteLayer.step`` only.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from . import surrogate as _surrogate
from .models.base import NeuronModel
from .solvers.propagator import propagator


class DiscreteLayer(nn.Module):
    """Model stepped on a fixed ``dt`` grid; see the module docstring for the equations."""

    def __init__(self, model: NeuronModel, dt: float, method: str = "exact", input: str = "impulse",
                 surrogate="atan", surrogate_kw: dict | None = None, reset_delay: bool = False,
                 reset_order: str = "before_decay", detach_reset: bool = False,
                 simultaneous_events: bool = False) -> None:
        super().__init__()
        self.simultaneous_events = bool(simultaneous_events)
        if reset_order not in ("before_decay", "after_decay"):
            raise ValueError(f"reset_order must be 'before_decay' or 'after_decay', got {reset_order!r}")
        self.reset_delay, self.reset_order, self.detach_reset = bool(reset_delay), reset_order, bool(detach_reset)
        if not isinstance(model, NeuronModel):
            raise ValueError(f"model must be a ctsnn NeuronModel, got {type(model).__name__}")
        dt = float(dt)
        if not dt > 0:
            raise ValueError(f"dt must be > 0 (seconds), got {dt}")
        if method not in ("exact", "euler"):
            raise ValueError(f"method must be 'exact' or 'euler', got {method!r}")
        if input not in ("impulse", "zoh"):
            raise ValueError(f"input must be 'impulse' or 'zoh', got {input!r}")
        if model.linear_part() is None:
            raise ValueError(f"discretize needs a model with a linear part; {type(model).__name__} is nonlinear")
        if getattr(model, "feedback", None) is not None:
            raise ValueError("discretize does not support all-to-all or delayed recurrent feedback yet")
        self.model, self.dt, self.method, self.input = model, dt, method, input
        self.spike_fn = _surrogate.get(surrogate, **(surrogate_kw or {}))

    def to_model(self) -> NeuronModel:
        return self.model

    def matrices(self, dtype, device=None):
        """``(E [n|1,S,S], F [n|1,S,S], B, c)`` of one step, derived from ``model.linear_part``."""
        # built in float64 and rounded once to ``dtype`` (so a float32 E = exp(-dt/tau) is
        # the correctly rounded decay, e.g. exactly a peer's float32 beta)
        wide = torch.float64 if dtype in (torch.float32, torch.float16, torch.bfloat16) else dtype
        A, B, c = self.model.linear_part(wide, device)
        if self.method == "exact":
            E, F = propagator(A, self.dt)
        else:
            eye = torch.eye(A.shape[-1], dtype=wide, device=device)
            E = eye + self.dt * A
            F = (self.dt * eye).expand_as(A)
        return E.to(dtype), F.to(dtype), B.to(dtype), c.to(dtype)

    def init_state(self, batch_shape, dtype=torch.float32, device=None) -> Tensor:
        return self.model.init_state(tuple(batch_shape) + (self.model.n,), dtype, device)

    def step(self, x: Tensor, y: Tensor, mats) -> tuple[Tensor, Tensor]:
        """One grid step: ``x [*batch, n]``, ``y [*batch, n, S]`` -> ``(out, y)``."""
        E, F, B, c = mats
        m = self.model
        G = m.event_matrix(y.dtype, y.device)
        theta = m.event_offset(y.dtype, y.device)
        pending = []
        if self.reset_delay:  # spikes of the previous step, re-derived from the carried state
            for e in range(G.shape[0]):
                s = self.spike_fn(y @ G[e] - theta[..., e])
                pending.append(s.detach() if self.detach_reset else s)
            if self.reset_order == "before_decay":
                y = self._jumps(y, pending)
        if self.input == "zoh":
            drive = (B @ m.input_channels(x).unsqueeze(-1)).squeeze(-1) + c
            y = (E @ y.unsqueeze(-1)).squeeze(-1) + (F @ drive.unsqueeze(-1)).squeeze(-1)
        else:
            y = (E @ y.unsqueeze(-1)).squeeze(-1) + (F @ c.unsqueeze(-1)).squeeze(-1) + m.spike_input(x)
        if self.reset_delay:
            if self.reset_order == "after_decay":
                y = self._jumps(y, pending)
            out = torch.zeros_like(x)
            for e in range(G.shape[0]):
                s = self.spike_fn(y @ G[e] - theta[..., e])
                out = out + s * (float(m.event_signs[e]) * m.output_scale(e, y.dtype, y.device))
            return out, y
        out = torch.zeros_like(x)
        if self.simultaneous_events:  # every event decided from the same post-input state
            spikes = [self.spike_fn(y @ G[e] - theta[..., e]) for e in range(G.shape[0])]
            y = self._jumps(y, [s.detach() if self.detach_reset else s for s in spikes])
            for e, s in enumerate(spikes):
                out = out + s * (float(m.event_signs[e]) * m.output_scale(e, y.dtype, y.device))
            return out, y
        for e in range(G.shape[0]):
            g = y @ G[e] - theta[..., e]
            s = self.spike_fn(g)
            J, k = m.jump_map(e, y.dtype, y.device)
            sr = s.detach() if self.detach_reset else s
            y = y + sr.unsqueeze(-1) * ((y @ J.T - y) + k)
            out = out + s * (float(m.event_signs[e]) * m.output_scale(e, y.dtype, y.device))
        return out, y

    def _jumps(self, y: Tensor, spikes) -> Tensor:
        """Soft affine jumps ``y + s_e (y J_e^T + k_e - y)`` for every event ``e``."""
        for e, s in enumerate(spikes):
            J, k = self.model.jump_map(e, y.dtype, y.device)
            y = y + s.unsqueeze(-1) * ((y @ J.T - y) + k)
        return y

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One step: ``layer(x, state) -> (out, state)``; ``state=None`` starts at rest."""
        if x.shape[-1] != self.model.n and self.model.n != 1:
            raise ValueError(f"x: last axis {x.shape[-1]} does not match model.n = {self.model.n}")
        if state is None:
            state = self.model.init_state(x.shape, x.dtype, x.device)
        return self.step(x, state, self.matrices(x.dtype, x.device))

    def run(self, x: Tensor, state: Tensor | None = None, record_states: bool = False):
        """Time-major sequence ``x [T, *batch, n]`` -> ``(out [T, ...], final state[, states [T, ..., S]])``."""
        if state is None:
            state = self.model.init_state(x.shape[1:], x.dtype, x.device)
        mats = self.matrices(x.dtype, x.device)
        outs, states = [], []
        for t in range(x.shape[0]):
            o, state = self.step(x[t], state, mats)
            outs.append(o)
            if record_states:
                states.append(state)
        res = (torch.stack(outs), state)
        return res + (torch.stack(states),) if record_states else res


def discretize(model: NeuronModel, dt: float, method: str = "exact", input: str = "impulse",
               surrogate="atan", reset_delay: bool = False, reset_order: str = "before_decay",
               detach_reset: bool = False, simultaneous_events: bool = False,
               **surrogate_kw) -> DiscreteLayer:
    """``DiscreteLayer`` stepping ``model`` on a ``dt`` grid (seconds); see module docstring."""
    return DiscreteLayer(model, dt, method=method, input=input, surrogate=surrogate,
                         surrogate_kw=surrogate_kw, reset_delay=reset_delay,
                         reset_order=reset_order, detach_reset=detach_reset,
                         simultaneous_events=simultaneous_events)
