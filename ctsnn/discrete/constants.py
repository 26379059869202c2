"""The constants of one grid step, derived from the model once per parameter change.

``StepConstants`` holds ``E, F`` (the step's propagator: ``y <- E y + F (B u + c)``), ``B, c``,
the event rows ``G`` and offsets ``theta`` (``g = y G^T - theta``), the jumps ``[(J_e, k_e)]`` and the
signed output scales; ``dA = dt A`` for Euler (the increment form ``y + (dt A) y``), ``A`` and
``nia = -1/A`` for in-step events, ``t_ref`` for a refractory period.  ``kernel`` is a scratch
dict where the fused planner keeps what it derived from these constants (packed parameters,
compiled-library handles); it goes with them when a parameter changes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..solvers.propagator import phi1, propagator


@dataclass(eq=False)
class StepConstants:
    E: Tensor
    F: Tensor
    B: Tensor
    c: Tensor
    G: Tensor
    theta: Tensor
    jumps: list
    scales: list
    dA: Tensor | None = None     # dt A for method="euler" (else None)
    A: Tensor | None = None      # the continuous matrix (events="in_step")
    nia: Tensor | None = None    # -1/A, 0 where A = 0 (events="in_step")
    t_ref: Tensor | None = None  # refractory period [n|1] (s) when the model has one > 0, else None
    kernel: dict = field(default_factory=dict, repr=False)

    def decay(self, y: Tensor) -> Tensor:
        """``E y``, or ``y + (dt A) y`` for Euler (forming ``I + dt A`` first would round
        ``1 - dt/tau`` and lose float32 precision when ``dt << tau``)."""
        if self.dA is None:
            return (self.E @ y.unsqueeze(-1)).squeeze(-1)
        return y + (self.dA @ y.unsqueeze(-1)).squeeze(-1)


def model_matrices(layer, dtype, device=None) -> tuple:
    """``(E, F, B, c, dA)`` from ``model.linear_part`` (``cascade_linear_part`` for the cascade),
    built in float64 and rounded once to ``dtype`` (so a float32 ``E = exp(-dt/tau)`` is the
    correctly rounded decay, e.g. exactly a peer's float32 beta)."""
    wide = torch.float64 if dtype in (torch.float32, torch.float16, torch.bfloat16) else dtype
    A, B, c = (layer.model.cascade_linear_part(wide, device) if layer.cascade
               else layer.model.linear_part(wide, device))
    dA = None
    if layer.method == "exact":
        E, F = propagator(A, layer.dt)
    else:
        eye = torch.eye(A.shape[-1], dtype=wide, device=device)
        dA = layer.dt * A
        E = eye + dA
        F = (layer.dt * eye).expand_as(A)
    return E.to(dtype), F.to(dtype), B.to(dtype), c.to(dtype), None if dA is None else dA.to(dtype)


def learned_matrices(layer, dtype, device=None) -> tuple:
    """``(E, F, B, c, dA)`` with ``learn_decay``: ``E = diag(d)``, ``F = diag(dt (1 - d) / (-ln d))``
    (``dt`` where ``d = 1``; ``dt I`` for Euler), ``d`` the learned decay clamped to [0, 1]; no
    ``dA``: the step multiplies by ``E`` for both methods."""
    _, _, B, c, _ = model_matrices(layer, dtype, device)
    d = layer.decay.to(dtype=dtype, device=device).clamp(0, 1)
    if layer.method == "exact":
        one = d >= 1
        ds = torch.where(one | (d <= 0), torch.full_like(d, 0.5), d)
        f = torch.where(one, torch.ones_like(d), phi1(torch.log(ds)))     # (1 - d) / (-ln d)
        f = torch.where(d <= 0, torch.zeros_like(d), f) * layer.dt
    else:
        f = torch.full_like(d, layer.dt)
    return torch.diag_embed(d), torch.diag_embed(f), B, c, None  # E itself, also for Euler


def step_constants(layer, dtype, device=None) -> StepConstants:
    """What one step needs (see ``StepConstants``)."""
    m = layer.model
    G = m.event_matrix(dtype, device)
    E, F, B, c, dA = (learned_matrices if layer.learn_decay else model_matrices)(layer, dtype, device)
    jumps = [m.jump_map(e, dtype, device) for e in range(G.shape[0])]
    if layer.cascade:  # the events' jumps act on the membrane states only (ctsnn.discrete.cascade)
        mask = torch.ones(m.n_states, dtype=dtype, device=device)
        for nm in m.trace_states:
            mask[m.state_index(nm)] = 0.0
        jumps = [(J, k * mask) for J, k in jumps]
    out = StepConstants(E, F, B, c, G, m.event_offset(dtype, device), jumps,
                        [float(m.event_signs[e]) * m.output_scale(e, dtype, device) for e in range(G.shape[0])],
                        dA=dA)
    tr = m.refractory_period(dtype, device)
    if tr is not None and torch.compiler.is_compiling():
        # a data-dependent branch cannot be traced: whether t_ref > 0 is what the last eager
        # call (or the construction) saw; an eager call after changing t_ref updates it
        if layer.__dict__.get("_has_t_ref", False):
            out.t_ref = tr.detach()
    elif tr is not None and bool((tr > 0).any()):
        layer.__dict__["_has_t_ref"] = True
        layer._check_options()
        out.t_ref = tr.detach()
    elif tr is not None:
        layer.__dict__["_has_t_ref"] = False
    if layer.events == "in_step":
        out.A = m.linear_part(dtype, device)[0]
        A64 = m.linear_part(torch.float64, device)[0]
        out.nia = torch.where(A64 != 0, -1.0 / torch.where(A64 != 0, A64, torch.ones_like(A64)),
                              torch.zeros_like(A64)).to(dtype)  # -1/A, rounded once
    return out


def _config_key(layer) -> tuple:
    """The plain settings the step constants depend on besides tensors: ``dt``, ``method``,
    ``input``, the model's ``reset`` / ``adaptation`` / ... (every str, number or bool attribute
    of the layer, its model and their submodules), so that changing one after a run re-derives
    the constants."""
    plain = (str, int, float, bool, type(None))
    return tuple(tuple(sorted((k, v) for k, v in vars(mod).items()
                              if isinstance(v, plain) and k not in ("last_backend", "training")))
                 for mod in layer.modules())


def cached(layer, dtype, device, ts: list[Tensor]) -> StepConstants:
    """``layer.step_constants``, reused between calls while no parameter needs a gradient and none
    changed (keyed by identity and in-place version counter; kept in the layer's ``_const_cache``,
    which copies and pickles leave out); ``ts``: the layer's ``_tensors()``."""
    if torch.compiler.is_compiling() or any(t.requires_grad for t in ts):  # traced: no cache
        return layer.step_constants(dtype, device)
    key = (dtype, str(device), tuple(t._version for t in ts), _config_key(layer))
    cache = layer.__dict__.get("_const_cache")  # (key, tensors held so their ids stay theirs, consts)
    if (cache is None or cache[0] != key or len(cache[1]) != len(ts)
            or any(a is not b for a, b in zip(cache[1], ts))):
        cache = (key, ts, layer.step_constants(dtype, device))
        layer.__dict__["_const_cache"] = cache
    return cache[2]
