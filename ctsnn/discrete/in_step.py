"""In-step events (``events="in_step"``; one-state models, ``input="zoh"``, exact; no gradient).

Instead of testing the threshold at the grid points, each crossing is located inside its step in
closed form on the exact solution of the held current, the jump applied there and the rest of the
step propagated from it; the spike times equal ``simulate(method="exact")``.  The fused kernel
(step.cpp, ``INSTEP``) does the same arithmetic.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..errors import SimulationError
from ..events import crossing_decay, crossing_time
from .result import Spikes


def step(layer, x: Tensor, y: Tensor, c, sink: list | None = None) -> tuple[Tensor, Tensor]:
    """One step with ``events="in_step"`` (one state, one event, held current ``x``): the grid
    step ``z = E y + F (B x + c)``; while ``z`` is at or above threshold, the crossing is located
    in closed form on ``v(s) = v_inf + (v0 - v_inf) e^{A s}`` (``v_inf = -d/A``, ``d = B x + c``):
    from ``v0`` at ``t0``, ``tau = t0 + log1p(q) / A`` with ``q = (v_th - v0) / (v0 - v_inf)``
    (``t0 + (v_th - v0) / d`` for ``A = 0``; ``ctsnn.events.crossing_time``); the jump is applied at ``tau`` and the rest of the
    step propagated with ``e^{A (dt - tau)} = e^{A (dt - t0)} (v0 - v_inf) / (v_th - v_inf)`` (no
    exponential is evaluated).  ``sink`` collects ``(flat element index, tau, value)`` of each
    event.  The same arithmetic as the fused kernel (step.cpp, ``in_step``), up to the rounding
    of log1p.

    Refractory period (``t_ref > 0``; the state's last column is the time ``r`` left in it at the
    step start): ``v`` is held until ``min(r, dt)`` and propagated from there,
    ``v(dt) = v_inf + (v - v_inf) e^{A (dt - r)}``; after an event at ``tau`` it is held at its
    post-jump value until ``tau + t_ref`` (released inside the step when that is before ``dt``,
    the time left carried to the next step otherwise), as ``simulate(method="exact")`` does."""
    E, F, B, G, theta, jumps, scales = c.E, c.F, c.B, c.G, c.theta, c.jumps, c.scales
    m = layer.model
    tref = c.t_ref
    if tref is not None:
        rem0, y = y[..., -1], y[..., :-1]
    drive = (B @ m.input_channels(x).unsqueeze(-1)).squeeze(-1) + c.c
    z = (E @ y.unsqueeze(-1)).squeeze(-1) + (F @ drive.unsqueeze(-1)).squeeze(-1)
    d, a, g0, th = drive[..., 0], c.A[..., 0, 0], G[0, 0], theta[..., 0]
    J, k = jumps[0]
    sc, k0, dt = scales[0], k[..., 0], layer.dt
    vth = th / g0
    lin = a != 0
    vinf = d * c.nia[..., 0, 0]
    vs, ze = y[..., 0], z[..., 0]
    ts = torch.zeros_like(ze)
    rest = E[..., 0, 0] * torch.ones_like(ze)
    out = torch.zeros_like(ze)
    if tref is not None:
        tref = tref.to(ze.dtype)
        held = rem0 > 0
        hs = torch.clamp(rem0, max=dt)  # released at hs (dt: held over the whole step)
        rest_h = torch.exp(a * (dt - hs))
        ze = torch.where(held, torch.where(lin, vinf + (vs - vinf) * rest_h, vs + d * (dt - hs)), ze)
        rest = torch.where(held, rest_h, rest)
        ts = torch.where(held, hs, ts)
        rem_out = torch.clamp(rem0 - dt, min=0)
        ze = torch.where(rem0 >= dt, vs, ze)
    active = ze * g0 - th >= 0
    if tref is not None:
        active = active & (rem0 < dt)
    count = 0
    while bool(active.any()):
        above = vs * g0 - th >= 0
        tau = torch.where(above, ts, ts + crossing_time(vs, vth, vinf, a, d))
        tau = torch.where(tau >= ts, tau, ts)
        tau = torch.where(tau <= dt, tau, torch.full_like(tau, dt))
        out = out + torch.where(active, sc, torch.zeros_like(out))
        if sink is not None:
            idx = torch.nonzero(active.reshape(-1), as_tuple=True)[0]
            sink.append((idx, tau.reshape(-1)[idx], torch.broadcast_to(sc, active.shape).reshape(-1)[idx]))
        count += 1
        if count >= 1000:
            raise SimulationError("events='in_step': more than 1000 events of one neuron in one step "
                                  "(a reset at or above threshold?)")
        v_new = vth + ((vth * J[0, 0] - vth) + k0)
        if tref is None:
            rest_new = torch.clamp(rest * torch.where(above, torch.ones_like(vs), crossing_decay(vs, vth, vinf)),
                                   max=1.0)
            ze_new = torch.where(lin, vinf + (v_new - vinf) * rest_new, v_new + d * (dt - tau))
            ts_new = tau
        else:  # held at v_new until tau + t_ref
            rel = tau + tref
            ts_new = torch.clamp(rel, max=dt)
            rest_new = torch.exp(a * (dt - ts_new))
            ze_new = torch.where(lin, vinf + (v_new - vinf) * rest_new, v_new + d * (dt - ts_new))
            ze_new = torch.where(rel >= dt, v_new * torch.ones_like(ze_new), ze_new)
            rem_out = torch.where(active, torch.clamp(rel - dt, min=0), rem_out)
        vs = torch.where(active, v_new, vs)
        rest = torch.where(active, rest_new, rest)
        ts = torch.where(active, ts_new, ts)
        ze = torch.where(active, ze_new, ze)
        active = active & (ze * g0 - th >= 0)
        if tref is not None:
            active = active & (ts < dt)
    if tref is not None:
        return out, torch.stack([ze, rem_out], -1)
    return out, ze.unsqueeze(-1)


@torch.no_grad()
def run(layer, x, state, c, record_states, out, sparse):
    """The torch loop of ``events="in_step"``: ``(Spikes, state)`` when ``sparse``, else
    ``(out, state, states or None)``."""
    outs, states, events = [], [], []
    for t in range(x.shape[0]):
        sink = [] if sparse else None
        o, state = step(layer, x[t], state, c, sink)
        outs.append(o)
        if record_states:
            states.append(state)
        for idx, tau, val in sink or ():
            events.append((torch.full_like(idx, t), idx, val, tau))
    if sparse:
        if not events:
            return Spikes.empty(x.shape, layer.dt, x.dtype, in_step=True), state
        steps, index, value, tau = (torch.cat(v) for v in zip(*events))
        order = torch.argsort(steps * math.prod(x.shape[1:]) + index, stable=True)
        return Spikes(steps[order], index[order], value[order], tuple(x.shape), layer.dt, tau[order]), state
    return (torch.stack(outs) if out is None else torch.stack(outs, out=out), state,
            torch.stack(states) if record_states else None)
