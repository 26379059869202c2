"""The compiled event engine: ``simulate(method="exact")`` without gradients, and networks.

For a model that is linear below threshold (``linear_part`` is not None) the engine
(``kernels/engine.cpp``) runs what the model declares, element by element:

* between inputs and events the exact solution of ``dy/dt = A y + B u + c`` with the current
  held over the grid step, ``y(s) = E(s) y + F(s) (B u + c)``: whole steps with ``[[E, F], [0,
  I]] = exp([[A, I], [0, 0]] dt)`` (scaled Taylor series and squaring, once per parameter
  group), a cut of length ``L`` as ``y + L phi_1(L A) (A y + b)``, a polynomial in ``L`` with
  the coefficients ``A^k / (k + 1)!`` computed once from the model's ``A`` (no matrix
  exponential per input or root-finding step; exact to rounding, coincident time constants
  included); whole steps without inputs or events run 8 elements in lockstep (vector registers,
  the same operations: the same bits);
* an event ``e`` fires on the upward zero crossing of ``g_e = G_e . y - theta_e``
  (``event_matrix``, ``event_offset``), found inside the step: a sign change over the stretch,
  or (S > 1) a maximum of ``g_e`` above zero between two negative ends (``dg/dt > 0`` at the start
  and ``< 0`` at the end); the maximum and then the crossing are located on the exact solution
  with the Illinois method to a few ulps of the step;
* at the crossing ``y -> J_e y + k_e`` (``jump_map``); with a refractory period
  ``clamp_state`` is held at its post-jump value until ``t_spike + t_ref`` and released at
  that exact time; input spikes add ``spike_input(w)`` at their exact times.

The decisions (which events are armed, immediate events, releases, tolerances) are those of the
torch path (``solvers/exact.py``), so both give the same spike times and states to rounding
(``tests/test_engine.py``). The states are scaled by powers of two (``_balance``: exact) so
that the propagator of a badly scaled ``A`` (SI units: entries 4e9 next to 1e2) keeps its digits.

``simulate(method="exact")`` calls :func:`simulate_exact` first; it returns None (the torch path
then runs) when a gradient could be needed or the configuration is outside the engine.
"""
from __future__ import annotations

import ctypes
import math
import os
import time as _time
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from . import validate as _validate
from .models.base import NeuronModel
from .trace import Trace

__all__ = ["simulate_exact", "engine_available", "unsupported_reason", "run_engine"]

_MAX_S, _MAX_E = 8, 2
_P = ctypes.c_void_p
_I64 = ctypes.c_int64
_D = ctypes.c_double
_INT = ctypes.c_int


def engine_available() -> bool:
    """Whether the compiled engine can be built here (a C++ compiler, CTSNN_KERNELS != 0)."""
    from .kernels.build import available
    return available()


def _lib(S: int, E: int):
    from .kernels.build import load
    lib = load({"NS": S, "NE": E}, source="engine.cpp")
    if lib is None or getattr(lib, "_ctsnn_typed", False):
        return lib
    lib.ctsnn_engine_run.restype = _P
    lib.ctsnn_engine_run.argtypes = (
        [_I64, _I64, _I64] + [_P] * 10 + [_INT, _INT, _INT] + [_D, _D, _I64, _I64]
        + [_P, _I64, _I64] + [_P] * 3 + [_P] * 5 + [_D] + [_P] * 6
        + [_I64, _I64, _P, _INT, _P] + [_P] * 6 + [_INT, _INT])
    lib.ctsnn_engine_status.restype = _INT
    lib.ctsnn_engine_status.argtypes = [_P, _P, _P]
    lib.ctsnn_engine_thread_cpu.restype = _INT
    lib.ctsnn_engine_thread_cpu.argtypes = [_P, _P]
    lib.ctsnn_engine_nspikes.restype = _I64
    lib.ctsnn_engine_nspikes.argtypes = [_P]
    lib.ctsnn_engine_spikes.restype = None
    lib.ctsnn_engine_spikes.argtypes = [_P] * 7
    lib.ctsnn_engine_propagate.restype = None
    lib.ctsnn_engine_propagate.argtypes = [_P, _P, _P, _D, _INT, _P]
    lib.ctsnn_engine_csr_order.restype = None
    lib.ctsnn_engine_csr_order.argtypes = [_I64, _P, _P, _I64, _P, _P]
    lib.ctsnn_engine_free.restype = None
    lib.ctsnn_engine_free.argtypes = [_P]
    lib._ctsnn_typed = True
    return lib


def _threads(threads: int | None) -> int:
    if threads is not None:
        return max(1, int(threads))
    return max(1, torch.get_num_threads())


# ----------------------------------------------------------------------------- the model's data
def _requires_grad(model: NeuronModel) -> bool:
    return any(isinstance(p, Tensor) and p.requires_grad for p in model.parameters()) or any(
        isinstance(v, Tensor) and v.requires_grad for v in model.params().values())


def unsupported_reason(model: NeuronModel) -> str | None:
    """Why ``model`` cannot run on the engine (None if it can)."""
    lin = model.linear_part(torch.float64, torch.device("cpu"))
    if lin is None:
        return f"{type(model).__name__} is not linear below threshold"
    S, E = model.n_states, model.n_events
    if S > _MAX_S or E > _MAX_E:
        return f"{S} states / {E} events (the engine takes up to {_MAX_S} / {_MAX_E})"
    tr = model.refractory_period(torch.float64)
    if tr is not None and bool((tr > 0).any()):
        ic = model.state_index(model.clamp_state)
        others = [j for j in range(S) if j != ic]
        if others and bool((lin[0][:, others, ic] != 0).any()):
            return "the clamped state drives another state"
    return None


def _balance(A: np.ndarray, dt: float) -> np.ndarray:
    """Powers of two ``d`` (exact to apply) with ``D^-1 A D`` balanced: for an upper-triangular
    ``A`` each coupling ``|A_ij| d_j / d_i`` (i < j) is brought near ``max(|A_ii|, |A_jj|)``
    (``1/dt`` for two zero rates), the smallest over its drivers i. Other ``A``: no scaling."""
    S = A.shape[-1]
    d = np.ones(S)
    Am = np.abs(A).max(axis=0)
    if S == 1 or np.any(np.tril(Am, -1) != 0):
        return d
    for j in range(1, S):
        cands = []
        for i in range(j):
            if Am[i, j] != 0:
                ref = max(Am[i, i], Am[j, j]) or 1.0 / dt
                cands.append(ref * d[i] / Am[i, j])
        if cands:
            d[j] = 2.0 ** round(math.log2(min(cands)))
    return d


def _model_arrays(model: NeuronModel, n: int, dt: float) -> dict:
    f64, cpu = torch.float64, torch.device("cpu")
    with torch.no_grad():
        A, B, c = (x.detach().to(cpu, f64) for x in model.linear_part(f64, cpu))
        G = model.event_matrix(f64, cpu).detach().to(cpu)
        theta = model.event_offset(f64, cpu).detach().to(cpu)
        S, E, U = model.n_states, model.n_events, B.shape[-1]
        Js, ks, vals = [], [], []
        for e in range(E):
            J, k = model.jump_map(e, f64, cpu)
            Js.append(J.detach().to(cpu))
            ks.append(k.detach().to(cpu).reshape(-1, S))
            vals.append((model.event_signs[e] * model.output_scale(e, f64, cpu)).detach().to(cpu).reshape(-1))
        tr = model.refractory_period(f64, cpu)
        tr = tr.detach().to(cpu) if tr is not None and bool((tr > 0).any()) else None
    sizes = [A.shape[0], B.shape[0], c.shape[0], theta.shape[0]] + [k.shape[0] for k in ks] + \
        [v.shape[0] for v in vals] + ([tr.shape[0]] if tr is not None else [])
    ng = max(sizes)
    if ng not in (1, n):
        raise ValueError(f"{type(model).__name__}: per-neuron parameters have {ng} entries but the "
                         f"population has {n} neurons")

    def bc(x, shape):
        return np.ascontiguousarray(np.broadcast_to(x.numpy(), (ng,) + shape), dtype=np.float64)

    A_, B_, c_ = bc(A, (S, S)), bc(B, (S, U)), bc(c, (S,))
    d = _balance(A_, dt)
    A_ = A_ * d[None, None, :] / d[None, :, None]
    B_ = B_ / d[None, :, None]
    c_ = c_ / d[None, :]
    G_ = G.numpy() * d[None, :]
    J_ = np.stack([J.numpy() * d[None, :] / d[:, None] for J in Js])
    k_ = np.stack([bc(k, (S,)) / d[None, :] for k in ks], axis=1)           # [ng, E, S]
    v_ = np.stack([bc(v, ()) for v in vals], axis=1)                       # [ng, E]
    return dict(A=A_, B=B_, c=c_, theta=bc(theta, (E,)), G=np.ascontiguousarray(G_),
                J=np.ascontiguousarray(J_), k=np.ascontiguousarray(k_), val=np.ascontiguousarray(v_),
                tref=None if tr is None else bc(tr, ()), d=d, S=S, E=E, U=U, ng=ng,
                ic=model.state_index(model.clamp_state), hidden=int(S > 1))


def _ptr(a: np.ndarray | None):
    return None if a is None else a.ctypes.data_as(_P)


def run_engine(md: dict, *, M: int, n: int, dt: float, t_end: float, n_steps: int, y: np.ndarray,
               u: np.ndarray, in_elem=None, in_t=None, in_inc=None, syn=None, poisson=None,
               record_elems=None, record_states=(), stride: int = 1, max_events: int = 1000,
               threads: int | None = None, state: dict | None = None) -> dict:
    """One call of the compiled engine (float64 throughout; arrays in the model's units).

    ``y`` ``[M, S]`` start state (updated in place); ``u`` ``[1|n_steps, M, U]`` input channels
    per step; ``in_*`` input spikes (element, time, increment ``[K, S]``); ``syn`` a dict of the
    sparse projections (``ptr`` CSR by pre element, ``post`` sorted within each pre, ``w``,
    ``delay``, ``target``); ``poisson`` a dict (``ptr`` CSR by element, ``rate``, ``w``,
    ``target``, ``rng`` uint64 streams, ``next`` first arrival times). Returns the spikes,
    the recorded block ``[R, len(record_elems), len(record_states)]`` (row 0: the start) and the
    element state to continue from, and ``thread_cpu`` (CPU seconds of each thread of the run).
    """
    S, E, U = md["S"], md["E"], md["U"]
    lib = _lib(S, E)
    if lib is None:
        raise RuntimeError("the compiled engine is not available (no C++ compiler, or CTSNN_KERNELS=0)")
    d = md["d"]
    y = np.ascontiguousarray(y, dtype=np.float64)
    u = np.ascontiguousarray(u, dtype=np.float64)
    st = state or {}
    armed = st.get("armed", np.ones((M, E), dtype=np.uint8))
    ref_until = st.get("ref_until", np.full(M, -math.inf))
    clamp_val = st.get("clamp_val", np.zeros(M))
    seqs = st.get("seq", np.zeros(M, dtype=np.int64))
    # external input spikes, CSR by element, time order kept within each element
    if in_t is not None and len(in_t):
        in_elem = np.asarray(in_elem, dtype=np.int64)
        in_t = np.asarray(in_t, dtype=np.float64)
        order = np.lexsort((in_t, in_elem))
        in_t = np.ascontiguousarray(in_t[order])
        in_inc = np.ascontiguousarray(np.asarray(in_inc, dtype=np.float64)[order] / d[None, :])
        in_ptr = np.zeros(M + 1, dtype=np.int64)
        np.cumsum(np.bincount(in_elem, minlength=M), out=in_ptr[1:])
    else:
        in_t, in_inc = np.zeros(0), np.zeros((0, S))
        in_ptr = np.zeros(M + 1, dtype=np.int64)
    rec_e = np.ascontiguousarray(np.arange(M) if record_elems is None else record_elems, dtype=np.int64)
    rec_s = np.ascontiguousarray(list(record_states), dtype=np.int32)
    R = n_steps // stride + 1
    rec = np.zeros((R, rec_e.shape[0], rec_s.shape[0])) if rec_s.shape[0] and rec_e.shape[0] else None
    if rec is not None:
        rec[0] = y[rec_e][:, rec_s]
    sy = syn or {}
    ps = poisson or {}
    max_delay = float(np.max(sy["delay"])) if syn is not None and len(sy["delay"]) else 0.0
    h = lib.ctsnn_engine_run(
        M, n, md["ng"], _ptr(md["A"]), _ptr(md["B"]), _ptr(md["c"]), _ptr(md["theta"]), _ptr(md["k"]),
        _ptr(md["val"]), _ptr(md["tref"]), _ptr(md["G"]), _ptr(md["J"]), _ptr(d), U, md["ic"],
        md["hidden"], dt, t_end, n_steps, 0, _ptr(u), u.shape[0], M * U,
        _ptr(in_ptr), _ptr(in_t), _ptr(in_inc),
        _ptr(sy.get("ptr")), _ptr(sy.get("post")), _ptr(sy.get("w")), _ptr(sy.get("delay")),
        _ptr(sy.get("target")), max_delay,
        _ptr(ps.get("ptr")), _ptr(ps.get("rate")), _ptr(ps.get("w")), _ptr(ps.get("target")),
        _ptr(ps.get("rng")), _ptr(ps.get("next")),
        stride, rec_e.shape[0], _ptr(rec_e), rec_s.shape[0], _ptr(rec_s), _ptr(rec), _ptr(y),
        _ptr(armed), _ptr(ref_until), _ptr(clamp_val), _ptr(seqs), int(max_events), _threads(threads))
    try:
        bad_e, bad_t = ctypes.c_int64(0), ctypes.c_double(0.0)
        status = lib.ctsnn_engine_status(h, ctypes.byref(bad_e), ctypes.byref(bad_t))
        K = lib.ctsnn_engine_nspikes(h)
        t = np.empty(K)
        el = np.empty(K, dtype=np.int64)
        sq = np.empty(K, dtype=np.int64)
        ev = np.empty(K, dtype=np.int64)
        pre = np.empty((K, S))
        post = np.empty((K, S))
        lib.ctsnn_engine_spikes(h, _ptr(t), _ptr(el), _ptr(sq), _ptr(ev), _ptr(pre), _ptr(post))
        thread_cpu = np.zeros(lib.ctsnn_engine_thread_cpu(h, None))
        lib.ctsnn_engine_thread_cpu(h, _ptr(thread_cpu))
    finally:
        lib.ctsnn_engine_free(h)
    order = np.lexsort((sq, el, t))
    return dict(status=status, bad_elem=int(bad_e.value), bad_t=float(bad_t.value),
                times=t[order], elems=el[order], events=ev[order], pre=pre[order], post=post[order],
                rec=rec, y=y, thread_cpu=thread_cpu,
                state=dict(armed=armed, ref_until=ref_until, clamp_val=clamp_val, seq=seqs))


# ----------------------------------------------------------------------------- simulate
def _any_grad(*xs) -> bool:
    for x in xs:
        if isinstance(x, Tensor) and x.requires_grad:
            return True
        if isinstance(x, dict):
            if _any_grad(*x.values()):
                return True
        elif isinstance(x, (tuple, list)):
            if _any_grad(*x):
                return True
        elif isinstance(x, Trace):
            if _any_grad(x.spike_times, x.spike_values):
                return True
    return False


def _feedback_projection(model: NeuronModel, shape, dt: float):
    """A delayed or all-to-all feedback of ``Recurrent`` as a sparse projection (None if none);
    raises LookupError when the engine cannot deliver it (a delay below dt)."""
    fb = getattr(model, "feedback", None)
    if fb is None:
        return None
    if not isinstance(fb.weight, Tensor) or fb.delay < dt:
        raise LookupError("feedback with a delay below dt, or through a module")
    n = shape[-1]
    Bt = int(math.prod(shape[:-1])) if len(shape) > 1 else 1
    W = fb.weight.detach().to("cpu", torch.float64).numpy()
    if W.ndim == 2:                                                   # W[post, pre]
        pre_l, post_l = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        pre_l, post_l = pre_l.reshape(-1), post_l.reshape(-1)
        w_l = W.T.reshape(-1)
    else:
        pre_l = post_l = np.arange(n)
        w_l = np.broadcast_to(W.reshape(-1), (n,)).copy()
    off = (np.arange(Bt) * n)[:, None]
    pre = (off + pre_l[None]).reshape(-1)
    post = (off + post_l[None]).reshape(-1)
    w = np.broadcast_to(w_l, (Bt, w_l.shape[0])).reshape(-1)
    return _csr(pre, post, w, np.full(pre.shape[0], fb.delay), np.full(pre.shape[0], fb.target), Bt * n)


def _csr(pre, post, w, delay, target, M):
    """Synapses in CSR order by pre element, posts ascending within each (``route`` splits the
    posts between threads by binary search); a counting sort in the engine library (O(n), 10^7
    synapses in a fraction of a second), else ``np.lexsort``."""
    pre = np.ascontiguousarray(pre, dtype=np.int64)
    post = np.ascontiguousarray(post, dtype=np.int64)
    lib = _lib(1, 1) if engine_available() else None
    ptr = np.zeros(M + 1, dtype=np.int64)
    if lib is not None:
        order = np.empty(pre.shape[0], dtype=np.int64)
        lib.ctsnn_engine_csr_order(pre.shape[0], _ptr(pre), _ptr(post), M, _ptr(order), _ptr(ptr))
    else:
        order = np.lexsort((post, pre))
        np.cumsum(np.bincount(pre, minlength=M), out=ptr[1:])
    return dict(ptr=ptr, post=np.ascontiguousarray(post[order], dtype=np.int64),
                w=np.ascontiguousarray(w[order], dtype=np.float64),
                delay=np.ascontiguousarray(delay[order], dtype=np.float64),
                target=np.ascontiguousarray(target[order], dtype=np.int32))


def simulate_exact(model: NeuronModel, current=None, spikes=None, *, t_end, dt, initial=None,
                   record=("v",), record_every=None, dtype=None, device=None,
                   max_events_per_step: int = 1000, method: str = "exact", solver_options=None,
                   required: bool = False, threads: int | None = None,
                   max_work: float | None = None) -> Trace | None:
    """``simulate(model, ..., method="exact")`` on the compiled engine, or None when the torch
    path must run: another method or solver options, a parameter, the current, the spikes or an
    initial value that requires grad, a model that is not linear below threshold, a device other
    than the CPU, a callable current, feedback not deliverable with a delay >= dt, or no C++
    compiler (``CTSNN_ENGINE=0`` turns the engine off). With ``required`` those cases raise
    ValueError saying why. The other arguments are those of :func:`ctsnn.simulate`."""
    from .errors import SimulationError
    from .simulate import _Current, _float, _parse_spikes, _population_shape

    def decline(why: str):
        if required:
            raise ValueError(f"backend='engine' cannot run this simulation: {why}; use backend='auto' "
                             f"(falls back to torch) or backend='torch'")
        return None

    if method != "exact" or solver_options:
        return decline(f"the engine is the exact method (got method={method!r}"
                       f"{' with options' if solver_options else ''})")
    if os.environ.get("CTSNN_ENGINE", "1") == "0" or not engine_available():
        return decline("no C++ compiler (or CTSNN_KERNELS=0 / CTSNN_ENGINE=0)")
    if _requires_grad(model) or _any_grad(current, spikes, initial):
        return decline("a parameter or input requires grad (the engine computes no gradients)")
    if callable(current) and not isinstance(current, Tensor):
        return decline("the current is a callable (give a tensor [T, n])")
    if isinstance(current, Tensor) and (current.is_complex() or current.device.type != "cpu"):
        return decline("the current is not a real CPU tensor")
    if (device is not None and torch.device(device).type != "cpu") or \
            any(p.device.type != "cpu" for p in model.params().values()):
        return decline("the engine runs on the CPU")
    why = unsupported_reason(model)
    if why is not None:
        return decline(why)
    dt = _float("dt", dt, positive=True)
    t_end = _float("t_end", t_end, nonneg=True)
    if int(max_events_per_step) != max_events_per_step or max_events_per_step < 1:
        return decline("max_events_per_step must be a positive integer")
    n_steps = _validate.n_steps(t_end, dt)
    if isinstance(current, Tensor):
        dtype = dtype or (current.dtype if current.is_floating_point() else None)
    dtype = dtype or model.param_dtype()
    cpu = torch.device("cpu")
    n_model = model.n
    cur = _Current(current, n_steps, dtype, cpu)
    shape = _population_shape(model, cur, initial)   # the torch path's shape and errors
    if n_model != 1 and shape[-1] != n_model:
        return None
    from .validate import work_bound
    work_bound("simulate", n_steps, math.prod(shape), max_work)   # the batch counts too
    n = shape[-1]
    Bt = int(math.prod(shape[:-1])) if len(shape) > 1 else 1
    M, S = Bt * n, model.n_states
    try:
        syn = _feedback_projection(model, shape, dt)
    except LookupError as exc:
        return decline(str(exc))
    md = _model_arrays(model, n, dt)

    f64 = torch.float64
    y = model.init_state(shape, f64, cpu).detach().reshape(M, S).clone()
    if initial is not None:
        for k, v in initial.items():
            v = torch.as_tensor(v, dtype=dtype, device=cpu)
            if not bool(torch.isfinite(v).all()):
                raise ValueError(f"initial value of {k!r} contains NaN or Inf")
            y[:, model.state_index(k)] = torch.broadcast_to(v.to(f64), shape).reshape(M)
    if spikes is not None:
        times, neurons, inc = _parse_spikes(spikes, model, M, f64, cpu)
        times, neurons, inc = times.numpy(), neurons.numpy(), inc.detach().numpy()
        now = times <= 0.0
        if now.any():
            y.index_add_(0, torch.from_numpy(neurons[now]), torch.from_numpy(inc[now]))
            times, neurons, inc = times[~now], neurons[~now], inc[~now]
    else:
        times = neurons = inc = None
    if cur.table is not None:
        tab = torch.broadcast_to(cur.table.to(f64), (cur.table.shape[0],) + shape)
    else:
        tab = torch.broadcast_to(cur.const.to(f64), shape)[None]
    u = model.input_channels(tab.reshape(tab.shape[0], Bt, n)).detach().reshape(tab.shape[0], M, -1)

    if record in ("all", None):
        record = model.state_names
    if isinstance(record, str):
        record = (record,)
    rec_idx = [model.state_index(r) for r in record]
    stride = 1
    if record_every is not None:
        re_ = _float("record_every", record_every, positive=True)
        stride = round(re_ / dt)
        if stride < 1 or abs(stride * dt - re_) > 1e-9 * max(re_, dt):
            raise ValueError(f"record_every={re_!r} must be a positive multiple of dt={dt!r}")

    wall, cpu = _time.perf_counter(), _time.process_time()
    out = run_engine(md, M=M, n=n, dt=dt, t_end=t_end, n_steps=n_steps, y=y.numpy(), u=u.numpy(),
                     in_elem=neurons, in_t=times, in_inc=inc, syn=syn, record_states=rec_idx,
                     stride=stride, max_events=int(max_events_per_step), threads=threads)
    wall, cpu = _time.perf_counter() - wall, _time.process_time() - cpu
    if out["status"] == 1:
        raise SimulationError(
            f"neuron {out['bad_elem']} (flat index) produced more than {int(max_events_per_step)} events "
            f"in the step starting at t={out['bad_t']:.9g} s: the reset lands at or above threshold, or "
            f"the input drives it faster than it can reset. Reduce the input, set t_ref > 0, or raise "
            f"max_events_per_step.")
    ks = np.arange(stride, n_steps + 1, stride, dtype=np.float64)
    rec_t = [0.0] + np.minimum(ks * dt, t_end).tolist()            # (k + 1) dt, as the torch path
    stats = {"steps": n_steps, "fast_steps": 0, "events": int(out["times"].shape[0]),
             "wall_time_s": wall, "cpu_time_s": cpu, "thread_cpu_s": out["thread_cpu"].tolist(),
             "backend": "engine"}
    return _trace(model, md, out, shape, rec_t, record, dtype, t_end, dt, stats)


def _trace(model, md, out, shape, rec_t, record, dtype, t_end, dt, stats) -> Trace:
    """The Trace of an engine run, with the fields and conventions of the torch path."""
    n = shape[-1]
    times = torch.from_numpy(out["times"])
    neurons = torch.from_numpy(out["elems"])
    events = torch.from_numpy(out["events"])
    pre = torch.from_numpy(out["pre"]).to(dtype)
    post = torch.from_numpy(out["post"]).to(dtype)
    signs_all = torch.tensor(model.event_signs, dtype=torch.int8)
    signs = signs_all[events] if events.numel() else torch.zeros(0, dtype=torch.int8)
    values = torch.zeros(events.shape[0], dtype=dtype)
    nid = neurons % n
    for ev in range(model.n_events):
        sc = model.output_scale(ev, dtype, torch.device("cpu")).detach()
        sc = sc[nid] if sc.shape[0] > 1 else sc.expand(events.shape[0])
        values = torch.where(events == ev, model.event_signs[ev] * sc, values)
    states = {}
    if out["rec"] is not None:
        rec = torch.from_numpy(out["rec"]).to(dtype)                      # [R, M, len(record)]
        for j, name in enumerate(record):
            states[name] = rec[..., j].reshape((len(rec_t),) + tuple(shape))
    thresholds = model.event_geometry()   # the event functions and resets, from the model
    return Trace(t=torch.tensor(rec_t, dtype=torch.float64), states=states,
                 state_names=tuple(model.state_names), shape=tuple(shape), spike_times=times,
                 spike_neurons=neurons, spike_signs=signs, spike_values=values, spike_events=events,
                 spike_pre=pre, spike_post=post, dt=dt, t_end=t_end, method="exact",
                 model=type(model).__name__, stats=stats, event_names=tuple(model.event_names),
                 thresholds=thresholds)
