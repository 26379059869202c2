"""How a grid step decides its events and applies their jumps: three variants of one contract.

Each variant has ``before(layer, y, c) -> (y, pending)`` (run before the subthreshold update),
``after(layer, y, c, pending) -> y`` (after it, before ``state_map``) and
``fire(layer, y, c, out, held) -> (out, y, fired)`` (the threshold test on the updated state,
its outputs added to ``out``; ``held`` marks the elements inside a refractory period, None without
one, and ``fired`` the elements that spiked then).
For each event ``e`` (``g_e = y G_e^T - theta_e``) the spike is ``s_e = H(g_e)`` with a surrogate
gradient and the affine jump is applied softly, ``y <- y + s_e (y J_e^T + k_e - y)``.

* ``SEQUENTIAL`` (the default): events in order, each tested on the state after the previous
  event's jump; with the membrane / level split (``threshold_grad=False``, level surrogates,
  ``multi_spike``: see ``split_fire``), per-state ``detach_reset`` and refractory periods.
* ``SIMULTANEOUS`` (``simultaneous_events=True``, tracetorch's order): every ``s_e`` from the same
  post-input state, then all jumps.
* ``DELAYED`` (``reset_delay=True``, snntorch's): the carried state is the pre-reset state; the
  previous step's spikes are re-derived from it (``detach_reset`` cuts their gradient) and their
  jumps applied at this step, before the decay (``reset_order="before_decay"``, the ODE's order)
  or after it (``"after_decay"``, snntorch's ``mem = beta*mem + x - s*th``); the output is this
  step's spikes of the updated state, whose jumps wait for the next step.
"""
from __future__ import annotations

import torch
from torch import Tensor


def apply_jumps(y: Tensor, spikes, jumps) -> Tensor:
    """Soft affine jumps ``y + s_e (y J_e^T + k_e - y)`` for every event ``e``."""
    for s, (J, k) in zip(spikes, jumps):
        y = y + s.unsqueeze(-1) * ((y @ J.T - y) + k)
    return y


def split_fire(layer, y: Tensor, Ge: Tensor, theta_e: Tensor) -> tuple[Tensor, Tensor]:
    """``(s, n)`` of one event with the membrane / level split: ``g = m - L``, ``m = G[e, v] y_v``
    (``v`` = the model's ``clamp_state``), ``L = theta_e - sum_{j != v} G[e, j] y_j`` (a constant in
    the backward pass with ``threshold_grad=False``); ``s = H(g)`` with the surrogate gradient (a
    level surrogate is called as ``spike_fn(g, L)``); ``n`` the spike count, ``= s`` unless
    ``multi_spike``: ``n = trunc(m / L)`` for ``m > 0`` (forward value ``n``, backward that of ``s``)."""
    m = layer.model
    iv = m.state_index(m.clamp_state)
    G_rest = Ge.clone()
    G_rest[iv] = 0.0
    mem = y[..., iv] * Ge[iv]
    level = theta_e - y @ G_rest
    g = mem - (level if layer.threshold_grad else level.detach())
    if getattr(layer.spike_fn, "uses_level", False):
        s = layer.spike_fn(g, level.detach())
    else:
        s = layer.spike_fn(g)
    if not layer.multi_spike:
        return s, s
    with torch.no_grad():
        count = torch.div(mem, level, rounding_mode="trunc") * (mem > 0)
        once = (count >= 1).to(s.dtype)
    return s + (once - s).detach(), s + (count - s).detach()


def jump_weights(layer, s: Tensor, n: Tensor, J: Tensor) -> Tensor:
    """Per-state weight ``[..., S]`` of a jump increment: ``n`` for translated states
    (``J[j, j] = 1``: subtract reset, adaptation increment) when ``multi_spike``, else ``s`` (a
    reset to a value happens once); detached for the ``detach_reset`` states."""
    S = J.shape[-1]
    w = s.unsqueeze(-1).expand(s.shape + (S,))
    if layer.multi_spike:
        add = (torch.diagonal(J) == 1).to(s.dtype)
        w = n.unsqueeze(-1) * add + w * (1 - add)
    if layer.detach_reset:
        return w.detach()
    if layer._detach_states is not None:
        d = torch.zeros(S, dtype=s.dtype, device=s.device)
        for nm in layer._detach_states:
            d[layer.model.state_index(nm)] = 1.0
        w = w.detach() * d + w * (1 - d)
    return w


class _Immediate:
    """A variant whose jumps are all applied within ``fire``: nothing before or after it."""

    def before(self, layer, y, c):
        return y, None

    def after(self, layer, y, c, pending):
        return y


class Sequential(_Immediate):
    """Events in order, each jump applied before the next event is tested (the default)."""

    def fire(self, layer, y, c, out, held):
        split, per_state = layer._split, layer._detach_states is not None
        free = fired = None
        if held is not None:  # no event while refractory
            free, fired = (~held).to(y.dtype), torch.zeros_like(held)
        for e in range(c.G.shape[0]):
            if not split:
                s = layer.spike_fn(y @ c.G[e] - c.theta[..., e])
                n = s
            else:
                s, n = split_fire(layer, y, c.G[e], c.theta[..., e])
            if free is not None:
                s, n = s * free, n * free
                fired = fired | (n.detach() != 0)
            J, k = c.jumps[e]
            if not split and not per_state:
                sr = s.detach() if layer.detach_reset else s
                y = y + sr.unsqueeze(-1) * ((y @ J.T - y) + k)
            else:
                y = y + jump_weights(layer, s, n, J) * ((y @ J.T - y) + k)
            out = out + n * c.scales[e]
        return out, y, fired


class Simultaneous(_Immediate):
    """Every event decided from the same post-input state, then all jumps (tracetorch's order)."""

    def fire(self, layer, y, c, out, held):
        spikes = [layer.spike_fn(y @ c.G[e] - c.theta[..., e]) for e in range(c.G.shape[0])]
        y = apply_jumps(y, [s.detach() if layer.detach_reset else s for s in spikes], c.jumps)
        for e, s in enumerate(spikes):
            out = out + s * c.scales[e]
        return out, y, None


class Delayed:
    """The previous step's jumps applied at this step (``reset_delay=True``; see module docstring)."""

    def before(self, layer, y, c):
        pending = []
        for e in range(c.G.shape[0]):  # spikes of the previous step, re-derived from the carried state
            s = layer.spike_fn(y @ c.G[e] - c.theta[..., e])
            pending.append(s.detach() if layer.detach_reset else s)
        if layer.reset_order == "before_decay":
            y = apply_jumps(y, pending, c.jumps)
        return y, pending

    def after(self, layer, y, c, pending):
        if layer.reset_order == "after_decay":
            y = apply_jumps(y, pending, c.jumps)
        return y

    def fire(self, layer, y, c, out, held):
        for e in range(c.G.shape[0]):
            out = out + layer.spike_fn(y @ c.G[e] - c.theta[..., e]) * c.scales[e]
        return out, y, None


SEQUENTIAL, SIMULTANEOUS, DELAYED = Sequential(), Simultaneous(), Delayed()


def variant(layer):
    """The firing variant of ``layer``'s options (``reset_delay`` first: the rules in
    ``ctsnn.discrete.options`` keep it apart from ``simultaneous_events``)."""
    if layer.reset_delay:
        return DELAYED
    return SIMULTANEOUS if layer.simultaneous_events else SEQUENTIAL
