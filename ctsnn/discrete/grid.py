"""The core grid step: the subthreshold update, then the threshold test at the grid point.

``step(layer, x, y, c, prev_out)`` is, in order:

1. the firing variant's ``before`` (delayed reset: the previous step's jumps, ``ctsnn.discrete.firing``);
2. ``propagate``: ``y <- E y + F (B u + c)`` with the layer's input convention (below), the
   cascade (``ctsnn.discrete.cascade``) in its place, then recurrent feedback;
3. the variant's ``after``, then ``state_map``;
4. a refractory period holds the clamp state (``hold``);
5. the variant's ``fire`` (threshold test and jumps), ``state_min``, the refractory clock.

Input conventions (``x [*batch, n]``): ``"zoh"``, a current held over the step
(``u = input_channels(x)``); ``"impulse"``, added to the input state at the END of the step
(``y <- E y + F c + spike_input(x)``, the peers' ``mem = beta*mem + x``); ``"impulse_start"``,
added at the START and propagated with the rest (``y <- E (y + spike_input(x)) + F c``, sinabs'
synapse).  ``E y`` is ``y + (dt A) y`` for Euler (``StepConstants.decay``).
"""
from __future__ import annotations

import torch
from torch import Tensor

from . import cascade, firing


def propagate(layer, x: Tensor, y: Tensor, c, prev_out: Tensor | None) -> Tensor:
    """The subthreshold update of one step, with the previous step's output ``prev_out`` delivered
    through the model's ``feedback`` (``None`` = no spikes) as an impulse into its target state."""
    m = layer.model
    if layer.cascade:
        y = cascade.propagate(layer, x, y, c, prev_out)
    elif layer.input == "zoh":
        drive = (c.B @ m.input_channels(x).unsqueeze(-1)).squeeze(-1) + c.c
        y = c.decay(y) + (c.F @ drive.unsqueeze(-1)).squeeze(-1)
    elif layer.input == "impulse_start":
        y = c.decay(y + m.spike_input(x)) + (c.F @ c.c.unsqueeze(-1)).squeeze(-1)
    else:
        y = c.decay(y) + (c.F @ c.c.unsqueeze(-1)).squeeze(-1) + m.spike_input(x)
    if layer.feedback is not None:  # previous step's output -> weight -> impulse
        inc = torch.zeros_like(y)
        inc[..., layer.feedback.target] = layer.feedback.apply(
            torch.zeros_like(x) if prev_out is None else prev_out)
        y = y + inc
    return y


def hold(layer, y: Tensor, y_start: Tensor, held: Tensor) -> Tensor:
    """Refractory: the clamp state keeps its step-start (post-jump) value where ``held``."""
    m = layer.model
    hv = torch.zeros(m.n_states, dtype=torch.bool, device=y.device)
    hv[m.state_index(m.clamp_state)] = True
    return torch.where(held.unsqueeze(-1) & hv, y_start, y)


def clamp_min(layer, y: Tensor) -> Tensor:
    """``state_min``: ``y_j <- max(y_j, v_min)`` after the jumps (a clamp, not part of the ODE)."""
    m = layer.model
    lo = torch.full((m.n_states,), -float("inf"), dtype=y.dtype, device=y.device)
    for nm, val in layer.state_min.items():
        lo[m.state_index(nm)] = float(val)
    return torch.clamp(y, min=lo)


def step(layer, x: Tensor, y: Tensor, c, prev_out: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """One grid step (module docstring): ``x [*batch, n]``, ``y [*batch, n, S]`` (``S + 1`` with a
    refractory period: the last column is the time left in it) -> ``(out, y)``."""
    variant = firing.variant(layer)
    held = None
    if c.t_ref is not None:  # last column: time left in the refractory period
        rem, y = y[..., -1], y[..., :-1]
        held = rem > 1e-9 * layer.dt
        y_start = y
    y, pending = variant.before(layer, y, c)
    y = propagate(layer, x, y, c, prev_out)
    y = variant.after(layer, y, c, pending)
    if layer.state_map is not None:
        y = layer.state_map(y)
    if held is not None:
        y = hold(layer, y, y_start, held)
    out, y, fired = variant.fire(layer, y, c, torch.zeros_like(x), held)
    if layer.state_min:
        y = clamp_min(layer, y)
    if held is not None:
        rem = torch.where(fired, c.t_ref.to(y.dtype),
                          torch.where(held, (rem - layer.dt).clamp(min=0), torch.zeros_like(rem)))
        y = torch.cat([y, rem.unsqueeze(-1)], -1)
    return out, y
