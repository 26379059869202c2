"""The compiled event engine (ctsnn/engine.py, kernels/engine.cpp): equal to the torch path of
``simulate(method="exact")`` over random models, parameters and inputs, and to closed forms."""
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ctsnn
from ctsnn.engine import engine_available
from ctsnn.models.ternary import Traced

F64 = torch.float64
pytestmark = pytest.mark.skipif(not engine_available(), reason="no C++ compiler")


def both(model, *args, **kw):
    a = ctsnn.simulate(model, *args, backend="engine", **kw)
    b = ctsnn.simulate(model, *args, backend="torch", **kw)
    assert a.stats["backend"] == "engine" and b.stats["backend"] == "torch"
    return a, b


def assert_same(a, b, tol_t=1e-12, tol_y=1e-9):
    assert a.n_spikes == b.n_spikes
    assert torch.equal(a.spike_neurons, b.spike_neurons)
    assert torch.equal(a.spike_events, b.spike_events)
    assert torch.equal(a.spike_signs, b.spike_signs)
    assert torch.equal(a.spike_values, b.spike_values)
    if a.n_spikes:
        assert float((a.spike_times - b.spike_times).abs().max()) <= tol_t
        scale = max(1.0, float(b.spike_pre.abs().max()))
        assert float((a.spike_pre - b.spike_pre).abs().max()) <= tol_y * scale
        assert float((a.spike_post - b.spike_post).abs().max()) <= tol_y * scale
    assert torch.equal(a.t, b.t)
    assert set(a.states) == set(b.states)
    for k in a.states:
        assert a[k].shape == b[k].shape and a[k].dtype == b[k].dtype
        scale = max(1.0, float(b[k].abs().max()))
        assert float((a[k] - b[k]).abs().max()) <= tol_y * scale, k
    assert a.state_names == b.state_names and a.shape == b.shape and a.event_names == b.event_names
    assert a.thresholds == b.thresholds and a.method == b.method and a.model == b.model


TAU = st.floats(2e-3, 3e-2)


@st.composite
def models(draw):
    kind = draw(st.sampled_from(["LIF", "IF", "CubaLIF", "CubaLIF=", "ALIF-th", "ALIF-cur", "LIT",
                                 "DualLIT", "Traced", "Rec-trace", "Rec-1to1", "Rec-all"]))
    t_ref = draw(st.sampled_from([0.0, 0.0, draw(st.floats(2e-4, 3e-3))]))
    reset = draw(st.sampled_from(["to_value", "subtract"]))
    tm, ts = draw(TAU), draw(TAU)
    if kind == "LIF":
        return ctsnn.LIF(tau_mem=tm, v_th=1.0, reset=reset, t_ref=t_ref)
    if kind == "IF":
        return ctsnn.IF(r=draw(st.floats(20.0, 300.0)), v_th=1.0, reset=reset, t_ref=t_ref)
    if kind.startswith("CubaLIF"):
        return ctsnn.CubaLIF(tau_syn=tm if kind.endswith("=") else ts, tau_mem=tm, r=1.5, v_th=1.0,
                             reset=reset, t_ref=t_ref)
    if kind.startswith("ALIF"):
        cur = kind.endswith("cur")
        return ctsnn.ALIF(tau_mem=tm, tau_adapt=draw(st.floats(0.01, 0.1)), adapt_jump=draw(st.floats(0.05, 0.5)),
                          v_th=1.0, reset=reset, t_ref=t_ref, adaptation="current" if cur else "threshold",
                          tau_syn=ts if cur else None)
    if kind == "LIT":
        return ctsnn.LIT(tau_mem=tm, pos_th=draw(st.floats(0.5, 1.5)), neg_th=draw(st.floats(0.3, 1.0)),
                         bias=draw(st.floats(-0.2, 0.2)), tau_syn=draw(st.sampled_from([None, ts])))
    if kind == "DualLIT":
        return ctsnn.DualLIT(tau_pos=tm, tau_neg=ts, pos_th=0.8, neg_th=0.6, neg_scale=0.5)
    if kind == "Traced":
        return Traced(ctsnn.LIT(tau_mem=tm, pos_th=0.7, neg_th=0.7), tau_syn=ts, tau_rec=draw(TAU),
                      rec_weight=draw(st.floats(-0.5, 0.5)))
    base = ctsnn.CubaLIF(tau_syn=ts, tau_mem=tm, r=1.5, v_th=1.0, reset=reset, t_ref=t_ref)
    if kind == "Rec-trace":
        return ctsnn.Recurrent(base, tau_rec=draw(TAU), rec_weight=draw(st.floats(-1.0, 1.0)))
    if kind == "Rec-1to1":
        return ctsnn.Recurrent(base, weight=draw(st.floats(-0.5, 0.5)))
    W = torch.tensor(np.random.default_rng(draw(st.integers(0, 99))).normal(0, 0.4, (2, 2)))
    return ctsnn.Recurrent(base, weight=W, delay=draw(st.floats(1e-4, 2e-3)))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=models(), seed=st.integers(0, 10_000), drive=st.floats(0.0, 3.0), n_in=st.integers(0, 12))
def test_engine_equals_torch_path(model, seed, drive, n_in):
    rng = np.random.default_rng(seed)
    dt, T, n = 1e-4, 0.02, 2
    cur = torch.tensor(rng.uniform(-0.3, 1.0, (round(T / dt), n)) * drive)
    spikes = (np.sort(rng.uniform(0, T, n_in)), rng.integers(0, n, n_in), rng.uniform(-1.0, 1.5, n_in))
    a, b = both(model, cur, spikes, t_end=T, dt=dt, record="all", dtype=F64)
    assert_same(a, b)


def test_engine_record_every_and_initial():
    model = ctsnn.CubaLIF(tau_syn=3e-3, tau_mem=1e-2, v_th=1.0, t_ref=1e-3)
    a, b = both(model, 2.0, ([0.0, 0.004, 0.0041], [0, 1, 1], [0.5, 2.0, -1.0]), t_end=0.0333, dt=1e-3,
                record=("i", "v"), record_every=2e-3, initial={"v": torch.tensor([0.3, 1.2])}, dtype=F64)
    assert_same(a, b)
    assert a.n_spikes > 3 and a.t.shape[0] == 1 + 34 // 2      # 34 steps (the last one short)


def test_hidden_crossing_inside_one_step_closed_form():
    """A PSP that crosses threshold and falls back below it inside one grid step (no sign change at
    the step ends): the crossing of v(t) = r w tau_s / (tau_m - tau_s) (e^{-t/tau_m} - e^{-t/tau_s})."""
    from scipy.optimize import brentq
    tm, ts, r, w = 1e-2, 2e-3, 1.0, 10.0
    model = ctsnn.CubaLIF(tau_syn=ts, tau_mem=tm, r=r, v_th=1.0, reset="none")
    dt = 0.05                                       # the whole PSP inside the first step

    def v(t):
        return r * w * ts / (tm - ts) * (math.exp(-t / tm) - math.exp(-t / ts))

    t_peak = tm * ts / (tm - ts) * math.log(tm / ts)
    assert v(t_peak) > 1.0 and v(dt) < 1.0
    exact = brentq(lambda t: v(t) - 1.0, 0.0, t_peak, xtol=1e-18, rtol=1e-15)
    a, b = both(model, 0.0, ([0.0], [0], [w]), t_end=dt, dt=dt, dtype=F64)
    assert_same(a, b)
    assert a.n_spikes == 1 and abs(float(a.spike_times[0]) - exact) < 1e-15
    assert float(a["v"][-1, 0]) < 1.0


def test_several_spikes_in_one_step_closed_form():
    """LIF under DC with dt much longer than the period: every spike of the step, at
    k T with T = tau ln(rI / (rI - v_th)) (reset to 0, no refractory period)."""
    tau, I = 1e-2, 3.0
    model = ctsnn.LIF(tau_mem=tau, v_th=1.0)
    period = tau * math.log(I / (I - 1.0))
    a, b = both(model, I, t_end=0.1, dt=0.025, dtype=F64)
    assert_same(a, b)
    k = torch.arange(1, a.n_spikes + 1, dtype=F64)
    assert a.n_spikes == math.floor(0.1 / period)
    assert float((a.spike_times - k * period).abs().max()) < 1e-15 * a.n_spikes + 1e-16


@pytest.mark.parametrize("units", ["mV-pA-ms", "SI"])
def test_refractory_release_closed_form(units):
    """CubaLIF under DC (i stays 0): spikes at t_k = k (t_ref + tau ln(rI / (rI - theta))) -
    t_ref with the reset at rest; in SI units (A entries 4e9 next to 1e2) too."""
    tau, t_ref = 1e-2, 2e-3
    if units == "SI":
        r, I, th, v0 = 4e7, 5.5e-10, -0.050, -0.070
    else:
        r, I, th, v0 = 4e-2, 550.0, -50.0, -70.0
    model = ctsnn.CubaLIF(tau_syn=2e-3, tau_mem=tau, r=r, v_leak=v0, v_th=th, v_reset=v0, t_ref=t_ref)
    tr = ctsnn.simulate(model, I, t_end=0.3, dt=1e-4, dtype=F64, record=())
    assert tr.stats["backend"] == "engine"
    period = t_ref + tau * math.log(r * I / (r * I - (th - v0)))
    k = torch.arange(1, tr.n_spikes + 1, dtype=F64)
    assert tr.n_spikes == math.floor((0.3 + t_ref) / period)
    assert float((tr.spike_times - (k * period - t_ref)).abs().max()) < 1e-13


def test_backend_choice_and_errors():
    tau = torch.tensor(1e-2, dtype=F64, requires_grad=True)
    model = ctsnn.LIF(tau_mem=tau)
    tr = ctsnn.simulate(model, 1.5, t_end=0.02, dt=1e-3)
    assert tr.stats["backend"] == "torch"                       # a gradient may be needed
    with pytest.raises(ValueError, match="requires grad"):
        ctsnn.simulate(model, 1.5, t_end=0.02, dt=1e-3, backend="engine")
    with pytest.raises(ValueError, match="backend must be"):
        ctsnn.simulate(ctsnn.LIF(tau_mem=1e-2), 1.5, t_end=0.02, dt=1e-3, backend="fast")
    assert ctsnn.simulate(ctsnn.LIF(tau_mem=1e-2), 1.5, t_end=0.02, dt=1e-3).stats["backend"] == "engine"
    assert ctsnn.simulate(ctsnn.LIF(tau_mem=1e-2), 1.5, t_end=0.02, dt=1e-3,
                          method="euler").stats.get("backend") == "torch"
    with pytest.raises(ValueError, match="not linear"):
        ctsnn.simulate(ctsnn.QIF(tau_mem=1e-2), 1.0, t_end=0.02, dt=1e-3, backend="engine")
    # all-to-all feedback without delay needs the coupled torch loop
    rec = ctsnn.Recurrent(ctsnn.LIF(tau_mem=1e-2), weight=torch.zeros(2, 2, dtype=F64))
    assert ctsnn.simulate(rec, 1.5, t_end=0.02, dt=1e-3).stats["backend"] == "torch"


def test_endless_event_loop_raises_like_torch():
    model = ctsnn.IF(r=1e6, v_th=1.0, v_reset=1.0 - 1e-9, reset="subtract")
    for backend in ("engine", "torch"):
        with pytest.raises(ctsnn.SimulationError, match="reset lands at or above threshold"):
            ctsnn.simulate(model, 1.0, t_end=1e-3, dt=1e-4, max_events_per_step=20, backend=backend,
                           dtype=F64)


def test_float32_and_batch_shapes():
    model = ctsnn.CubaLIF(tau_syn=3e-3, tau_mem=torch.tensor([1e-2, 2e-2, 5e-3]), v_th=1.0)
    cur = torch.rand(100, 4, 3) * 3
    a = ctsnn.simulate(model, cur, t_end=0.01, dt=1e-4, record="all")
    b = ctsnn.simulate(model, cur, t_end=0.01, dt=1e-4, record="all", backend="torch")
    assert a.stats["backend"] == "engine" and a["v"].dtype == torch.float32 and a["v"].shape == (101, 4, 3)
    assert a.n_spikes == b.n_spikes and torch.equal(a.spike_neurons, b.spike_neurons)
    assert float((a.spike_times - b.spike_times).abs().max()) < 1e-7      # float32 torch path
    assert float((a["v"] - b["v"]).abs().max()) < 1e-4


# ----------------------------------------------------------------------------- the sub-step propagator
def _augmented_exact(A, b, y0, L, dps=50):
    """``E(L) y0 + F(L) b`` from mpmath's matrix exponential of ``[[A, I], [0, 0]] L`` at 50 digits."""
    import mpmath
    with mpmath.workdps(dps):
        S = A.shape[0]
        M = mpmath.zeros(2 * S, 2 * S)
        for i in range(S):
            for j in range(S):
                M[i, j] = mpmath.mpf(float(A[i, j])) * mpmath.mpf(L)
            M[i, S + i] = mpmath.mpf(L)
        X = mpmath.expm(M)
        return np.array([float(sum(X[i, j] * mpmath.mpf(float(y0[j])) for j in range(S)) +
                               sum(X[i, S + j] * mpmath.mpf(float(b[j])) for j in range(S))) for i in range(S)])


@pytest.mark.parametrize("case", ["cuba-SI", "cuba-SI-coincident", "cuba-mV", "alif-current-SI"])
def test_substep_propagator_equals_mpmath(case):
    """The engine's propagator for a cut of the step (a polynomial in L A, no matrix exponential)
    equals the 50-digit exponential of the augmented matrix, in SI units (A entries 4e9 next to
    1e2 before the engine's exact power-of-two scaling) and with tau_syn within 1e-12 of tau_mem."""
    import ctypes
    from ctsnn.engine import _lib, _model_arrays
    if case.startswith("cuba"):
        SI = "SI" in case
        tm = 1e-2
        ts = tm * (1 + 1e-12) if "coincident" in case else 2e-3
        model = ctsnn.CubaLIF(tau_syn=ts, tau_mem=tm, r=4e7 if SI else 0.04, v_leak=-0.07 if SI else -70.0,
                              v_th=-0.05 if SI else -50.0, v_reset=-0.07 if SI else -70.0)
        y_phys = np.array([-0.055, 3e-10]) if SI else np.array([-55.0, 300.0])
        u_phys = 5.5e-10 if SI else 550.0
    else:
        model = ctsnn.ALIF(tau_mem=1e-2, tau_adapt=0.1, adapt_jump=2e-11, r=4e7, v_leak=-0.07, v_th=-0.05,
                           v_reset=-0.07, adaptation="current", tau_syn=2e-3)
        y_phys = np.array([-0.055, 3e-10, 1e-10])[[model.state_index(s) for s in ("v", "i", "b")]]
        u_phys = 5.5e-10
    dt = 1e-4
    md = _model_arrays(model, 1, dt)
    S, d = md["S"], md["d"]
    A, Bm, c = md["A"][0], md["B"][0], md["c"][0]
    b = Bm @ np.atleast_1d(u_phys) + c
    y0 = y_phys / d                                          # the engine's scaled state
    lib = _lib(S, md["E"])
    P = ctypes.c_void_p
    for L in (1e-9, 3.7e-6, 2.5e-5, 6.1e-5, 9.999e-5):
        ours, ref_expm = np.empty(S), np.empty(S)
        for which, out in ((0, ours), (1, ref_expm)):
            lib.ctsnn_engine_propagate(np.ascontiguousarray(A).ctypes.data_as(P), b.ctypes.data_as(P),
                                       y0.ctypes.data_as(P), L, which, out.ctypes.data_as(P))
        exact = _augmented_exact(A, b, y0, L)
        scale = np.abs(exact)                                # every state to its own relative accuracy
        assert np.all(np.abs(ours - exact) <= 4e-16 * scale + 1e-300), (case, L, ours, exact)
        assert np.all(np.abs(ref_expm - exact) <= 4e-15 * scale + 1e-300), (case, L)


@pytest.mark.parametrize("kind", ["cuba-ref", "alif-cur", "lit", "lif-ref", "dual"])
def test_lockstep_lanes_equal_the_scalar_path(kind):
    """A held current runs lanes of neurons in lockstep (kernels/engine.cpp, run_block); a table of
    the same numbers runs each neuron alone (fast_run). Same operations, so identical bits: spike
    times, states at the spikes and recorded states; 13 neurons (a partial block of lanes)."""
    n, dt, T = 13, 1e-4, 0.05
    if kind == "cuba-ref":
        model = ctsnn.CubaLIF(tau_syn=2e-3, tau_mem=1e-2, r=1.5, v_th=1.0, t_ref=1.3e-3)
    elif kind == "alif-cur":
        model = ctsnn.ALIF(tau_mem=1e-2, tau_adapt=0.05, adapt_jump=0.3, v_th=1.0, adaptation="current",
                           tau_syn=3e-3, t_ref=5e-4)
    elif kind == "lit":
        model = ctsnn.LIT(tau_mem=1e-2, pos_th=0.8, neg_th=0.5, tau_syn=2e-3)
    elif kind == "dual":
        model = ctsnn.DualLIT(tau_pos=1e-2, tau_neg=4e-3, pos_th=0.8, neg_th=0.6, neg_scale=0.5)
    else:
        model = ctsnn.LIF(tau_mem=1e-2, v_th=1.0, t_ref=2e-3)
    I = torch.linspace(-0.5, 3.0, n, dtype=F64)
    rng = np.random.default_rng(3)
    spikes = (np.sort(rng.uniform(0, T, 40)), rng.integers(0, n, 40), rng.uniform(-1.0, 1.5, 40))
    held = ctsnn.simulate(model, I[None], spikes, t_end=T, dt=dt, record="all", dtype=F64)
    table = ctsnn.simulate(model, I.expand(round(T / dt), n).contiguous(), spikes, t_end=T, dt=dt, record="all",
                           dtype=F64)
    assert held.stats["backend"] == table.stats["backend"] == "engine"
    assert held.n_spikes > 20
    assert torch.equal(held.spike_times, table.spike_times) and torch.equal(held.spike_neurons, table.spike_neurons)
    assert torch.equal(held.spike_pre, table.spike_pre) and torch.equal(held.spike_post, table.spike_post)
    for k in held.states:
        assert torch.equal(held[k], table[k]), k
    # (the table path equals the torch path: test_engine_equals_torch_path)
