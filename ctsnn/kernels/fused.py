"""``DiscreteLayer.run`` (and ``forward`` without gradients) as one compiled time loop
(``step.cpp``), forward and backward.

The kernel executes the step constants of ``DiscreteLayer.step_constants`` (derived from the
model by ``discretize``); it does the same arithmetic in the same order as ``DiscreteLayer.step``
(``ctsnn.discrete.grid``, ``firing``, ``in_step``),
so both paths agree bit for bit (tests/test_kernels.py).  ``plan(layer, x, grad, mats)`` says
whether a call can take the fused path (and why not); ``run`` and ``run_sparse`` run it.

What the fused path covers (everything else runs the torch loop; the options it does not run are
listed once, in ``ctsnn.discrete.options.FUSED_TORCH_ONLY``):

* CPU tensors in float32 / float64; 1 to 3 states, 1 or 2 events; ``method`` exact or euler;
  ``input`` impulse, zoh or impulse_start, with the model's default single input channel;
* a surrogate whose forward is a Heaviside step (every named surrogate of ``ctsnn.surrogate``;
  a callable tagged with ``heaviside = "gt" | "ge"``);
* without gradients: also ``reset_delay`` (snntorch), ``simultaneous_events``,
  ``threshold_grad=False`` / level surrogates, ``multi_spike``, ``state_min``, per-state
  ``detach_reset`` (their forward values), ``events="in_step"`` and sparse output;
* with gradients (input, initial state and every parameter that ``step_constants`` depends on):
  sequential events, ``detach_reset`` True or False.  The surrogate's ds/dg comes from
  ``ctsnn.surrogate.derivative`` (or the surrogate's own backward), vectorised over the whole
  sequence, and is handed to the kernel.

Not fused: models with a refractory period ``t_ref > 0``, gradients with the options above,
recurrent ``feedback``, ``state_map``, the cascade
step, models with their own ``input_channels`` / ``spike_input`` (``DualLIT``), non-binary spike
functions (tracetorch's soft spikes), CUDA tensors (the torch path runs there).
"""
from __future__ import annotations

import ctypes

import torch
from torch import Tensor

from . import build, pool

_MODES = {"impulse": 0, "zoh": 1, "impulse_start": 2}
_BLK = 4096  # elements per kernel block, at least (per-neuron parameters are tiled below it)
_BLK_MAX = 65536


def _block(M: int) -> int:
    """Elements per kernel block for ``M`` elements a step: one block per thread, between _BLK and
    _BLK_MAX (long contiguous rows stream faster: W1 forward 1.3x at 64k than at 4k)."""
    per = -(-M // max(1, torch.get_num_threads()))
    return int(min(_BLK_MAX, max(_BLK, per)))


def _heaviside_kind(fn) -> str | None:
    return getattr(fn, "heaviside", None)


def plan(layer, x: Tensor, grad: bool, mats) -> str | None:
    """None if ``layer.run(x)`` can be fused (``mats``: its ``step_constants``), else the reason
    it cannot.  Which options the kernel runs the layer says (``layer.torch_only``, read from
    ``ctsnn.discrete.options.FUSED_TORCH_ONLY``); the rest is what the kernel is compiled for
    (device, dtype, sizes, spike function, input map)."""
    m = layer.model
    if x.device.type != "cpu":
        return f"device {x.device.type} (the fused kernel is CPU-only; the torch path runs there)"
    if x.dtype not in (torch.float32, torch.float64):
        return f"dtype {x.dtype}"
    if not 1 <= m.n_states <= 3 or m.n_events > 2:
        return f"{m.n_states} states / {m.n_events} events (fused: 1-3 states, 1-2 events)"
    why = layer.torch_only(grad, mats.t_ref is not None)
    if why is not None:
        return why
    if layer.events == "in_step":
        A = m.linear_part(torch.float64)[0]
        if not (bool((A != 0).all()) or bool((A == 0).all())):
            return "events='in_step' with leaky and non-leaky neurons mixed"
    if _heaviside_kind(layer.spike_fn) not in ("gt", "ge"):
        return "spike function without a Heaviside forward"
    if not m.linear_input or m.n_inputs != 1:
        return f"{type(m).__name__} has its own input map"
    if not build.available():
        return "no C++ compiler (or CTSNN_KERNELS=0)"
    key = (x.dtype, str(x.device))
    known = mats.kernel.setdefault("built", {})
    if key not in known:
        shared = all(r.shape[0] == 1 for r in _params(layer, mats, x.dtype, x.device)[0])
        known[key] = build.load(_defines(layer, x.dtype, shared, mats.dA is not None)) is not None
    if not known[key]:
        return "the kernel could not be compiled (see the warning)"
    return None


def _defines(layer, dtype, shared: bool, euler: bool):
    """The kernel configuration; ``euler``: the step matrix is ``dt A`` (``y + (dt A) y``)."""
    m = layer.model
    return {"PSHARED": int(shared), "SCALAR": "float" if dtype == torch.float32 else "double", "NS": m.n_states,
            "NE": m.n_events, "MODE": _MODES[layer.input], "EULER": int(euler),
            "AT_ZERO": int(_heaviside_kind(layer.spike_fn) == "ge"),
            "SIMUL": int(layer.simultaneous_events), "SPLIT": int(layer._split),
            "MULTI": int(layer.multi_spike), "HASMIN": int(bool(layer.state_min)),
            "IV": m.state_index(m.clamp_state),
            "RDELAY": 0 if not layer.reset_delay else (1 if layer.reset_order == "before_decay" else 2),
            "INSTEP": int(layer.events == "in_step"),
            "LINA": int(layer.events == "in_step" and bool((layer.model.linear_part(torch.float64)[0] != 0).all()))}


def _params(layer, mats, dtype, device):
    """The per-neuron parameter tensors in the kernel's row order (see step.cpp), each
    ``[n|1, r]``, and the shared G, J, lo (kept in ``mats.kernel``, which ``DiscreteLayer`` reuses
    while no parameter changes)."""
    cached = mats.kernel.get("params")
    if cached is not None and cached[0] == (dtype, str(device)):
        return cached[1]
    res = _build_params(layer, mats, dtype, device)
    mats.kernel["params"] = ((dtype, str(device)), res)
    return res


def _build_params(layer, mats, dtype, device):
    m = layer.model
    E, F, B, c, G, theta = mats.E, mats.F, mats.B, mats.c, mats.G, mats.theta
    jumps, scales = mats.jumps, mats.scales
    S = m.n_states
    lead = lambda t: t.reshape(t.shape[0], -1) if t.dim() > 1 else t.reshape(-1, 1)  # noqa: E731
    Em = E if mats.dA is None else mats.dA
    rows = [lead(Em)]
    if layer.input == "zoh":
        rows += [lead(F), lead(B[..., 0]), lead(c)]
    else:
        fc = (F @ c.unsqueeze(-1)).squeeze(-1)
        w = m.spike_input(torch.ones(1, dtype=dtype, device=device))  # [1, S]
        rows += [lead(fc), lead(w)]
    rows.append(lead(theta))
    rows += [lead(k) for _, k in jumps]
    rows += [lead(sc) for sc in scales]
    if layer.events == "in_step":
        rows += [lead(mats.A), torch.full((1, 1), layer.dt, dtype=dtype, device=device), lead(mats.nia)]
    J = torch.stack([Jm for Jm, _ in jumps]).to(dtype).contiguous()
    lo = torch.full((S,), -float("inf"), dtype=dtype, device=device)
    for nm, val in layer.state_min.items():
        lo[m.state_index(nm)] = float(val)
    return rows, G.to(dtype).contiguous(), J, lo


def _ptr(t: Tensor | None):
    return ctypes.c_void_p(0 if t is None else t.data_ptr())


def _pack(rows, n):
    return torch.cat([r.expand(n, r.shape[1]) for r in rows], dim=1).t().contiguous()


def _xview(x: Tensor, n: int):
    """``x [T, *batch, n]`` as (tensor, T, sxt, sxb, B): the last axis contiguous, the batch axes
    flattened to one stride (copied only if they cannot be)."""
    T = x.shape[0]
    xb = x.reshape(T, -1, n) if x.dim() > 2 else x.reshape(T, 1, n)
    if xb.stride(-1) != 1 or (xb.shape[1] > 1 and xb.stride(1) < n):
        xb = xb.contiguous()
    return xb, T, xb.stride(0), xb.stride(1), xb.shape[1]


class _Sparse(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int64), ("step", ctypes.c_void_p), ("index", ctypes.c_void_p),
                ("value", ctypes.c_void_p), ("offset", ctypes.c_void_p)]


def _prepare(layer, x, y0, rows, euler, sparse=False, cache: dict | None = None):
    """Kernel geometry, packed parameters and library for one call (see step.cpp); ``cache``
    (kept with the step constants) holds the library and packed parameters per geometry."""
    n = x.shape[-1]
    xb, T, sxt, sxb, Bn = _xview(x, n)
    S = layer.model.n_states
    flat = Bn > 1 and sxb == n
    key = (x.dtype, n, Bn if flat else 1, flat, euler, sparse)
    hit = cache.get(key) if cache is not None else None
    if hit is None:
        shared = all(r.shape[0] == 1 for r in rows)
        defines = _defines(layer, x.dtype, shared, euler)
        if sparse:
            defines["SPARSE"] = 1
        P = _pack(rows, 1 if shared else n)
        if flat and (shared or n < _BLK):  # one long row (per-neuron parameters tiled)
            P = P if shared else P.repeat(1, Bn)
        hit = (build.load(defines), P, shared)
        if cache is not None:
            cache[key] = hit
    lib, P, shared = hit
    if flat and (shared or n < _BLK):
        n, Bn, sxb = Bn * n, 1, 0
        xb = xb.reshape(T, 1, n)
    yin = y0.reshape(Bn, n, S).to(x.dtype).contiguous()  # read by the kernel, not written
    y = pool.empty((Bn, n, S), x.dtype)  # the final state
    return dict(xb=xb, T=T, sxt=sxt, sxb=sxb, Bn=Bn, n=n, S=S, P=P, shared=shared, lib=lib, yin=yin, y=y)


def _forward(g, G, J, lo, out=None, states=None, z0s=None, gs=None, sp=None):
    i64 = ctypes.c_int64
    flags = ctypes.c_int(0)
    g["lib"].ctsnn_forward(_ptr(g["xb"]), i64(g["T"]), i64(g["sxt"]), i64(g["sxb"]), i64(g["Bn"]), i64(g["n"]),
                           i64(_block(g["Bn"] * g["n"])), _ptr(g["yin"]), _ptr(g["y"]), _ptr(g["P"]), _ptr(G),
                           _ptr(J), _ptr(lo), _ptr(out), _ptr(states), _ptr(z0s), _ptr(gs),
                           ctypes.c_int(torch.get_num_threads()),
                           ctypes.byref(sp) if sp is not None else ctypes.c_void_p(0), ctypes.byref(flags))
    if flags.value:
        from ..errors import SimulationError
        raise SimulationError("events='in_step': more than 1000 events of one neuron in one step "
                              "(a reset at or above threshold?)")


def _dsdg(layer, gs: Tensor) -> Tensor:
    """ds/dg of the layer's surrogate at ``gs`` (which it may overwrite)."""
    direct = getattr(layer.spike_fn, "derivative", None)
    if direct is not None:  # ctsnn's own surrogates: ds/dg straight from the formula
        return direct(gs, overwrite=True).contiguous()
    with torch.enable_grad():  # any other elementwise surrogate: through its own backward
        gg = gs.detach().requires_grad_(True)
        s = layer.spike_fn(gg)
        (d,) = torch.autograd.grad(s, gg, torch.ones_like(s), allow_unused=True)
    return torch.zeros_like(gs) if d is None else d.contiguous()


class _Fused(torch.autograd.Function):
    @staticmethod
    def forward(ctx, layer, x, y0, record_states, euler, nrows, *tensors):
        rows, (G, J, lo) = tensors[:nrows], tensors[nrows:nrows + 3]
        g = _prepare(layer, x, y0, rows, euler)
        T, Bn, n, S, y, dtype = g["T"], g["Bn"], g["n"], g["S"], g["y"], x.dtype
        need = any(ctx.needs_input_grad[1:3]) or any(ctx.needs_input_grad[6:])
        yinit = g["yin"] if need else None
        out = pool.empty((T, Bn, n), dtype)
        states = pool.empty((T, Bn, n, S), dtype) if record_states else None
        z0s = pool.empty((T, Bn, n, S), dtype) if need else None
        gs = pool.empty((T, Bn, n, layer.model.n_events), dtype) if need else None
        _forward(g, G, J, lo, out, states, z0s, gs)
        batch, n0 = x.shape[1:-1], x.shape[-1]
        if need:
            dsdg = _dsdg(layer, gs)  # now, so that the graph holds ds/dg in the place of gs
            ctx.layer, ctx.nrows = layer, nrows
            ctx.geom = (T, g["sxt"], g["sxb"], Bn, n, S, batch, n0, g["shared"], euler)
            ctx.save_for_backward(g["xb"], yinit, g["P"], G, J, z0s, dsdg, *rows)
        res = [out.reshape((T,) + tuple(batch) + (n0,)), y.reshape(tuple(batch) + (n0, S))]
        if record_states:
            res.append(states.reshape((T,) + tuple(batch) + (n0, S)))
        return tuple(res)

    @staticmethod
    def backward(ctx, gout, gy, *rest):
        xb, yinit, P, G, J, z0s, dsdg, *rows = ctx.saved_tensors
        T, sxt, sxb, Bn, n, S, batch, n0, shared, euler = ctx.geom
        layer = ctx.layer
        dtype = xb.dtype
        gout = torch.zeros(T, Bn, n, dtype=dtype) if gout is None else gout.reshape(T, Bn, n).contiguous()
        lam = (torch.zeros(Bn, n, S, dtype=dtype) if gy is None
               else gy.reshape(Bn, n, S).to(dtype).contiguous().clone())
        gst = rest[0].reshape(T, Bn, n, S).contiguous() if rest and rest[0] is not None else None
        gx = pool.empty((T, Bn, n), dtype) if ctx.needs_input_grad[1] else None
        pgrad = any(ctx.needs_input_grad[6:])  # else the kernel accumulates no parameter gradient
        gP = pool.empty((P.shape[0], Bn, n), torch.float64) if pgrad else None
        lib = build.load(dict(_defines(layer, dtype, shared, euler), PGRAD=int(pgrad)))
        lib.ctsnn_backward(_ptr(xb), ctypes.c_int64(T), ctypes.c_int64(sxt), ctypes.c_int64(sxb),
                           ctypes.c_int64(Bn), ctypes.c_int64(n), ctypes.c_int64(_block(Bn * n)),
                           _ptr(yinit), _ptr(P), _ptr(G), _ptr(J),
                           _ptr(z0s), _ptr(dsdg), _ptr(gout), _ptr(gst), _ptr(lam), _ptr(gx), _ptr(gP),
                           ctypes.c_int(int(layer.detach_reset)), ctypes.c_int(torch.get_num_threads()))
        grads, r0 = [None] * len(rows), 0
        if pgrad:
            gP = gP.reshape(gP.shape[0], -1, n0).sum(1)  # over the batch: [NP, n0]
            for i, r in enumerate(rows):
                w = r.shape[1]
                g = gP[r0:r0 + w].t()
                if r.shape[0] == 1:
                    g = g.sum(0, keepdim=True)
                grads[i] = g.to(r.dtype) if ctx.needs_input_grad[6 + i] else None
                r0 += w
        gx_out = gx.reshape((T,) + tuple(batch) + (n0,)) if gx is not None else None
        gy0 = lam.reshape(tuple(batch) + (n0, S)) if ctx.needs_input_grad[2] else None
        return (None, gx_out, gy0, None, None, None, *grads, None, None, None)


def run_sparse(layer, x: Tensor, state: Tensor, mats):
    """Fused run with sparse output and no gradient: ``(step, index, value, offset, final state)``
    of every nonzero output (``index`` flat over ``x.shape[1:]``; ``offset`` the in-step time of an
    ``events="in_step"`` event, else -1), sorted by step then index."""
    rows, G, J, lo = _params(layer, mats, x.dtype, x.device)
    state = state.expand(tuple(x.shape[1:]) + (layer.model.n_states,))
    with torch.no_grad():
        g = _prepare(layer, x, state, [r.detach() for r in rows], mats.dA is not None, sparse=True)
        sp = _Sparse()
        _forward(g, G.detach(), J.detach(), lo, sp=sp)
    k = sp.n
    fields = ((sp.step, torch.int64), (sp.index, torch.int64), (sp.value, x.dtype), (sp.offset, x.dtype))
    try:
        arrays = []
        for ptr, dt in fields:  # one copy, straight into the tensor
            t = torch.empty(k, dtype=dt)
            if k:
                ctypes.memmove(t.data_ptr(), ptr, k * t.element_size())
            arrays.append(t)
    finally:
        for ptr, _ in fields:
            g["lib"].ctsnn_free(ctypes.c_void_p(ptr))
    step, index, value, offset = arrays
    y = g["y"].reshape(tuple(x.shape[1:-1]) + (x.shape[-1], layer.model.n_states))
    return step, index, value, offset, y  # the kernel sorts by step, then element


def run(layer, x: Tensor, state: Tensor, mats, record_states: bool = False, out: Tensor | None = None):
    """Fused ``layer.run``: ``(out, final state[, states])``, as the torch loop returns them;
    ``out`` (contiguous, ``x``'s shape and dtype) receives the output instead of a new tensor."""
    n = x.shape[-1]
    rows, G, J, lo = _params(layer, mats, x.dtype, x.device)
    if G.requires_grad or J.requires_grad:
        raise ValueError("fused kernel: event rows G and jump matrices J must not require grad")
    state = state.expand(tuple(x.shape[1:]) + (layer.model.n_states,))
    buf = None
    if out is not None:
        if out.shape != x.shape or out.dtype != x.dtype or not out.is_contiguous() or out.requires_grad:
            raise ValueError(f"out: needs a contiguous {x.dtype} tensor of shape {tuple(x.shape)} that does "
                             f"not require grad, got {out.dtype} {tuple(out.shape)}")
        buf = out
    euler = mats.dA is not None
    if not (torch.is_grad_enabled() and (x.requires_grad or state.requires_grad
                                         or any(r.requires_grad for r in rows))):
        return _run_nograd(layer, x, state, rows, G, J, lo, euler, bool(record_states), buf,
                           mats.kernel.setdefault("geom", {}))
    if buf is not None:
        raise ValueError("out= is for runs without gradients")
    res = _Fused.apply(layer, x, state, bool(record_states), euler, len(rows), *rows, G, J, lo)
    return tuple(res)


def _run_nograd(layer, x, state, rows, G, J, lo, euler, record_states, out_buf, cache):
    """``_Fused.forward`` without autograd bookkeeping (nothing needs a gradient)."""
    g = _prepare(layer, x, state, rows, euler, cache=cache)
    T, Bn, n, S = g["T"], g["Bn"], g["n"], g["S"]
    out = pool.empty((T, Bn, n), x.dtype) if out_buf is None else out_buf.view(T, Bn, n)
    states = pool.empty((T, Bn, n, S), x.dtype) if record_states else None
    _forward(g, G, J, lo, out, states)
    batch, n0 = tuple(x.shape[1:-1]), x.shape[-1]
    res = (out.reshape((T,) + batch + (n0,)) if out_buf is None else out_buf, g["y"].reshape(batch + (n0, S)))
    return res + (states.reshape((T,) + batch + (n0, S)),) if record_states else res
