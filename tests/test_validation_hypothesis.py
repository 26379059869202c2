"""Property tests over the public functions' arguments: every call ends in a clear
``ValueError``/``TypeError`` that names the offending argument, or in a finite result equal to a
reference (closed form for ``simulate``, the torch path for the fused kernel, the original trace
for ``Trace.load``).  Never NaN, a crash or a raw library exception."""
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import ctsnn

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                           HealthCheck.too_slow])

# numbers an adversary tries: ordinary values, zero, signs, tiny, huge, NaN, Inf, ints, bools, strings
ugly = st.one_of(
    st.floats(1e-4, 0.1),
    st.sampled_from([0.0, -1e-3, 1e-310, 1e308, -1e308, math.nan, math.inf, -math.inf, True, "10ms", 3, None, 1j]),
)


def _names(msg: str, *names: str) -> bool:
    return any(n in msg for n in names)


# ---------------------------------------------------------------- models
@SETTINGS
@given(tau=ugly, r=ugly, v_th=ugly, v_reset=st.one_of(st.floats(-1, 0.5), ugly), t_ref=ugly)
def test_lif_constructor(tau, r, v_th, v_reset, t_ref):
    kw = dict(tau_mem=tau, r=r, v_th=v_th, v_reset=v_reset, t_ref=t_ref)
    try:
        m = ctsnn.LIF(**kw)
    except (ValueError, TypeError) as e:
        assert _names(str(e), *kw), str(e)
        return
    A, B, c = m.linear_part(torch.float64)
    assert bool(torch.isfinite(A).all() & torch.isfinite(B).all() & torch.isfinite(c).all())
    J, k = m.jump_map(0, torch.float64)
    assert bool(torch.isfinite(k).all())


# ---------------------------------------------------------------- simulate against the closed form
@SETTINGS
@given(tau=st.one_of(st.floats(2e-3, 5e-2), ugly), drive=st.one_of(st.floats(1.05, 5.0), ugly),
       dt=st.one_of(st.floats(1e-4, 2e-3), ugly), t_end=st.one_of(st.floats(0.0, 0.1), ugly),
       t_ref=st.one_of(st.floats(0.0, 5e-3), st.sampled_from([0.0, -1.0, math.nan])))
def test_simulate_lif_dc(tau, drive, dt, t_end, t_ref):
    try:
        m = ctsnn.LIF(tau, t_ref=t_ref, dtype=torch.float64)
        tr = ctsnn.simulate(m, drive, t_end=t_end, dt=dt)
    except (ValueError, TypeError) as e:
        assert _names(str(e), "tau_mem", "t_ref", "current", "dt", "t_end"), str(e)
        return
    except ctsnn.SimulationError as e:       # overflow: only for a current beyond the float range
        assert "current" in str(e) and abs(float(drive)) > 1e300, str(e)
        return
    assert torch.isfinite(tr["v"]).all()
    # closed form (v_leak = v_reset = 0, v_th = 1): period t_ref + tau ln(I / (I - 1))
    I = 0.0 if drive is None else float(drive)
    t_end, tau, t_ref = float(t_end), float(tau), float(t_ref)
    if I <= 1:
        assert tr.n_spikes == 0
        return
    T = t_ref + tau * math.log(I / (I - 1))
    k = np.arange(1, tr.n_spikes + 1)
    first = tau * math.log(I / (I - 1))
    expect = first + (k - 1) * T
    assert np.allclose(tr.spike_times.numpy(), expect, atol=1e-11, rtol=0)
    if T <= 0:            # I / (I - 1) rounds to 1: a spike train faster than the float grid
        return
    n_expect = 0 if t_end < first else int(math.floor((t_end - first) / T)) + 1
    near = min(abs(t_end - (first + j * T)) for j in range(max(n_expect, 1) + 1))
    if near > 1e-9:
        assert tr.n_spikes == n_expect


# ---------------------------------------------------------------- DiscreteLayer: torch vs fused
inputs = st.one_of(
    st.tuples(st.integers(0, 6), st.integers(1, 3), st.sampled_from(["float64", "float32", "int64", "bool",
                                                                      "complex64"]),
              st.sampled_from([None, math.nan, math.inf])),
)


@SETTINGS
@given(spec=inputs, dt=st.one_of(st.floats(1e-4, 5e-3), ugly),
       events=st.sampled_from(["grid", "in_step"]), reset=st.sampled_from(["to_value", "subtract"]),
       n_model=st.sampled_from([1, 3]), state_bad=st.sampled_from([None, math.nan]))
def test_discrete_layer_backends_agree(spec, dt, events, reset, n_model, state_bad):
    T, B, dtype_name, poison = spec
    dtype = getattr(torch, dtype_name)
    g = torch.Generator().manual_seed(T * 7 + B)
    x = (3 * torch.rand(T, B, 3, generator=g)).to(dtype) if dtype != torch.bool else torch.rand(T, B, 3, generator=g) > 0.5
    if poison is not None and T and dtype.is_floating_point:
        x[T // 2, 0, 1] = poison
    state = None
    if state_bad is not None:
        state = torch.zeros(B, 3, 1, dtype=torch.float64)
        state[0, 0, 0] = state_bad
    tau = torch.full((n_model,), 1e-2, dtype=torch.float64) if n_model > 1 else 1e-2
    res = {}
    for be in ("torch", "auto"):
        try:
            layer = ctsnn.discretize(ctsnn.LIF(tau, reset=reset, dtype=torch.float64), dt, input="zoh",
                                     events=events, backend=be)
            with torch.no_grad():
                ran = layer.run(x, state)
                res[be] = ran.out, ran.state
        except (ValueError, TypeError) as e:
            assert _names(str(e), "x", "dt", "state", "model.n"), str(e)
            res[be] = type(e).__name__ + str(e).split(":")[0]
    if isinstance(res["torch"], str):
        assert res["torch"] == res["auto"]
        return
    (o1, y1), (o2, y2) = res["torch"], res["auto"]
    assert torch.isfinite(o1).all() and torch.isfinite(y1).all()
    assert o1.shape == o2.shape and y1.shape == y2.shape
    assert torch.equal(o1, o2) and torch.allclose(y1, y2, rtol=0, atol=1e-12)


# ---------------------------------------------------------------- Trace.load on damaged files
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    tr = ctsnn.simulate(ctsnn.LIF(1e-2), 1.5, t_end=0.03, dt=1e-3)
    return tr, tr.save(tmp_path_factory.mktemp("tr") / "t.npz").read_bytes()


@SETTINGS
@given(cut=st.integers(0, 4000), flips=st.lists(st.tuples(st.integers(0, 4000), st.integers(1, 255)), max_size=3))
def test_trace_load_damaged(saved, tmp_path, cut, flips):
    tr, data = saved
    b = bytearray(data[: max(cut, 0)] if cut < len(data) else data)
    for pos, val in flips:
        if pos < len(b):
            b[pos] ^= val
    p = tmp_path / "d.npz"
    p.write_bytes(bytes(b))
    try:
        back = ctsnn.Trace.load(p)
    except ValueError as e:
        assert str(p) in str(e)
        return
    back.check()
    assert back.n_spikes == tr.n_spikes and torch.equal(back.spike_times, tr.spike_times)


# ---------------------------------------------------------------- readers
cells = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.sampled_from(["", "x", '"1"', " 2 "]))


@SETTINGS
@given(header=st.sampled_from(["t_s,v_mV,i_pA", "\ufefft_s,v_mV,i_pA", '"t_s","v_mV","i_pA"', "a,b,c", "t_s,v_mV",
                               ""]),
       rows=st.lists(st.lists(cells, min_size=2, max_size=4), max_size=5))
def test_load_csv(tmp_path, header, rows):
    from ctsnn import io
    p = tmp_path / "r.csv"
    p.write_text(header + "\n" + "\n".join(",".join(r) for r in rows) + "\n", encoding="utf-8")
    try:
        rec = io.load_csv(p)
    except (ValueError, TypeError) as e:
        assert "r.csv" in str(e) or "recording" in str(e) or "unit" in str(e), str(e)
        return
    assert np.isfinite(rec.t).all() and np.all(np.diff(rec.t) > 0) and np.isfinite(rec.current).all()


@SETTINGS
@given(threshold=ugly, refractory=ugly)
def test_detect_spikes(threshold, refractory):
    from ctsnn import io
    t = np.linspace(0, 0.1, 101)
    v = np.sin(2 * np.pi * 50 * t)
    try:
        s = io.detect_spikes(t, v, threshold=threshold, refractory=refractory)
    except (ValueError, TypeError) as e:
        assert _names(str(e), "threshold", "refractory"), str(e)
        return
    assert np.isfinite(s).all() and np.all(np.diff(s) >= float(refractory))


# ---------------------------------------------------------------- Euler, reference: exact at small dt
@settings(max_examples=8, deadline=None)
@given(tau=st.floats(5e-3, 5e-2), drive=st.one_of(st.just(0.0), st.floats(1e-6, 0.9)))
def test_euler_small_dt_matches_exact(tau, drive):
    """Below threshold: Euler at dt = tau/200 is within its first-order error bound of the exact
    propagator, (dt / 2 tau) max_s (s/tau) e^{-s/tau} I <= (dt / 2 tau) I / e."""
    m = ctsnn.LIF(tau, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no stability warning at dt << tau
        e = ctsnn.simulate(m, drive, t_end=tau, dt=tau / 200, method="euler")
    x = ctsnn.simulate(m, drive, t_end=tau, dt=tau / 200)
    assume(x.n_spikes == 0)
    bound = (1 / 400) * drive / math.e
    err = float((e["v"] - x["v"]).abs().max())
    assert err <= 1.05 * bound + 1e-12 and (drive == 0 or err > 0.5 * bound)


@pytest.fixture(scope="module")
def npz_bytes(tmp_path_factory):
    p = tmp_path_factory.mktemp("npz") / "r.npz"
    t = np.arange(50) * 1e-4
    np.savez(p, t=t, v=np.full(50, -70.0), i=np.full(50, 100.0), meta=np.array('{"units": {"t": "s", "v": "mV", "i": "pA"}}'))
    return p.read_bytes()


@SETTINGS
@given(cut=st.integers(0, 3000), flips=st.lists(st.tuples(st.integers(0, 3000), st.integers(1, 255)), max_size=3))
def test_load_npz_damaged(npz_bytes, tmp_path, cut, flips):
    from ctsnn import io
    b = bytearray(npz_bytes[:cut] if cut < len(npz_bytes) else npz_bytes)
    for pos, val in flips:
        if pos < len(b):
            b[pos] ^= val
    p = tmp_path / "r.npz"
    p.write_bytes(bytes(b))
    try:
        rec = io.load_npz(p)
    except ValueError as e:
        assert "r.npz" in str(e), str(e)
        return
    assert np.allclose(rec.v, -0.07) and np.allclose(rec.current, 1e-10) and np.all(np.diff(rec.t) > 0)
