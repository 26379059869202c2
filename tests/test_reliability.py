"""Reliability: each defect of issue #15 (no silent wrong result, no crash, no hang on bad input),
one test each; the refractory period of discrete layers against simulate."""
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import ctsnn
from ctsnn.kernels import build

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------- refractory periods in discretize
def _pairs(idx, times):
    return sorted(zip([int(i) for i in idx], [float(t) for t in times]))


@pytest.mark.parametrize("model, cur", [
    (lambda: ctsnn.LIF(1e-2, t_ref=5e-3), 3.0),                       # the issue's case (t_ref > dt)
    (lambda: ctsnn.LIF(1e-2, t_ref=3e-4), 10.0),                      # t_ref < dt: several spikes a step
    (lambda: ctsnn.LIF(torch.tensor([1e-2, 2e-2, 5e-3]), t_ref=torch.tensor([2.5e-3, 0.0, 1e-3]),
                       reset="subtract"), 4.0),                        # per-neuron, one without
    (lambda: ctsnn.IF(r=50.0, t_ref=1.7e-3), 1.0),                     # non-leaky
])
def test_in_step_refractory_matches_simulate_exact(model, cur):
    torch.set_default_dtype(torch.float64)
    try:
        m = model()
        tr = ctsnn.simulate(m, current=cur, t_end=0.2, dt=1e-3)
        layer = ctsnn.discretize(m, 1e-3, input="zoh", events="in_step")
        x = torch.full((200, m.n), cur)
        ran = layer.run(x, output="sparse")
        sp, y = ran.spikes, ran.state
        assert layer.last_backend == "torch"
        assert len(sp) == tr.n_spikes > 5
        a, b = _pairs(sp.spike_neurons, sp.spike_times), _pairs(tr.spike_neurons, tr.spike_times)
        assert max(abs(p[1] - q[1]) for p, q in zip(a, b)) < 1e-12
        assert [p[0] for p in a] == [q[0] for q in b]
        # continued in two calls: the state carries the time left in the refractory period
        ran = layer.run(x[:77], output="sparse")
        s1, y1 = ran.spikes, ran.state
        ran = layer.run(x[77:], y1, output="sparse")
        s2, y2 = ran.spikes, ran.state
        assert len(s1) + len(s2) == len(sp) and torch.allclose(y2, y, atol=1e-12)
        assert y.shape[-1] == 2  # v and the time left refractory
    finally:
        torch.set_default_dtype(torch.float32)


def test_in_step_refractory_the_issue_numbers():
    """LIF(1e-2, t_ref=5e-3) at 0.2 s: the discrete layer used to give 89 spikes (t_ref ignored)."""
    m = ctsnn.LIF(1e-2, t_ref=5e-3, dtype=torch.float64)
    cur = 1.0 / (1 - np.exp(-1.0))  # rate without t_ref: 1 / (tau ln(I/(I-1))) = 100 Hz
    tr = ctsnn.simulate(m, current=cur, t_end=0.2, dt=1e-3)
    sp = ctsnn.discretize(m, 1e-3, input="zoh", events="in_step").run(
        torch.full((200, 1), cur, dtype=torch.float64), output="sparse").spikes
    # closed form: period t_ref + tau ln(I/(I-1)) = 5 ms + 10 ms
    assert tr.n_spikes == len(sp) == int(0.2 // 15e-3)


@pytest.mark.parametrize("make", [
    lambda: ctsnn.LIF(1e-2, t_ref=2.5e-3),
    lambda: ctsnn.ALIF(1e-2, 0.1, 0.2, t_ref=4.5e-3),
    lambda: ctsnn.CubaLIF(5e-3, 1e-2, t_ref=2.5e-3, reset="subtract"),
])
def test_grid_refractory_matches_simulate_euler(make):
    """Grid events: the clamp state is held for ceil(t_ref/dt) steps, the other states evolve:
    the same recurrence as simulate(method="euler"), state for state."""
    m = make()
    tr = ctsnn.simulate(m, current=3.0, t_end=0.2, dt=1e-3, method="euler", record="all", dtype=torch.float64)
    layer = ctsnn.discretize(m, 1e-3, method="euler", input="zoh")
    ran = layer.run(torch.full((200, 1), 3.0, dtype=torch.float64), record_states=True)
    out, y, st = ran.out, ran.state, ran.states
    k = out[:, 0].nonzero().squeeze(-1)
    assert len(k) == tr.n_spikes > 5
    assert torch.allclose((k + 1).double() * 1e-3, tr.spike_times, atol=1e-15, rtol=0)
    for j, name in enumerate(m.state_names):
        assert torch.allclose(st[:, 0, j], tr[name][1:, 0], atol=1e-12, rtol=0)
    assert layer.last_backend == "torch"  # the fused planner refuses t_ref > 0


def test_grid_refractory_reduces_rate_exact_method():
    m0, m1 = ctsnn.LIF(1e-2), ctsnn.LIF(1e-2, t_ref=5e-3)
    x = torch.full((400, 1), 3.0)
    n0 = ctsnn.discretize(m0, 1e-3, input="zoh")(x[0])[0]  # one step runs
    c0 = ctsnn.discretize(m0, 1e-3, input="zoh").run(x).out.sum()
    c1 = ctsnn.discretize(m1, 1e-3, input="zoh").run(x).out.sum()
    assert n0.shape == (1,) and c1 < c0
    # period: 5 clamped steps + the grid steps to reach threshold from 0 (ceil(tau ln 1.5 / dt) = 5)
    assert int(c1) == 400 // 10


def test_refractory_with_unsupported_options_is_an_error():
    with pytest.raises(ValueError, match="t_ref"):
        ctsnn.discretize(ctsnn.LIF(1e-2, t_ref=1e-3), 1e-3, reset_delay=True)
    with pytest.raises(ValueError, match="t_ref"):
        ctsnn.discretize(ctsnn.LIF(1e-2, t_ref=1e-3), 1e-3, multi_spike=True)


def test_fused_planner_refuses_refractory():
    layer = ctsnn.discretize(ctsnn.LIF(1e-2, t_ref=1e-3), 1e-3, backend="fused")
    with pytest.raises(ValueError, match="t_ref"):
        layer.run(torch.ones(5, 1))


# ---------------------------------------------------------------- stale step constants (14)
@pytest.mark.parametrize("backend", ["torch", "fused"])
def test_constants_follow_dt_and_reset_changes(backend):
    if backend == "fused" and not build.available():
        pytest.skip("no compiler")
    m = ctsnn.LIF(1e-2, reset="none", v_th=10.0)
    layer = ctsnn.discretize(m, 1e-2, input="zoh", backend=backend)
    x = torch.ones(1, 1, dtype=torch.float64)
    y = layer.run(x).state
    assert float(y[0, 0]) == pytest.approx(1 - np.exp(-1.0), abs=1e-12)       # 0.632
    layer.dt = 5e-2
    y = layer.run(x).state
    assert float(y[0, 0]) == pytest.approx(1 - np.exp(-5.0), abs=1e-12)       # 0.993, not 0.632
    # the reset mode: 'none' -> 'to_value' after a run
    m2 = ctsnn.LIF(1e-2, reset="subtract", v_th=0.5, v_reset=0.0)
    layer2 = ctsnn.discretize(m2, 1e-2, input="zoh", backend=backend)
    ya = layer2.run(torch.full((1, 1), 2.0, dtype=torch.float64)).state
    v1 = 2 * (1 - np.exp(-1.0))
    assert float(ya[0, 0]) == pytest.approx(v1 - 0.5, abs=1e-12)
    m2.reset = "to_value"
    yb = layer2.run(torch.full((1, 1), 2.0, dtype=torch.float64)).state
    assert float(yb[0, 0]) == pytest.approx(0.0, abs=1e-12)
    # a parameter replaced by assignment
    m.tau_mem = torch.tensor(5e-2, dtype=torch.float64)
    y = layer.run(x).state
    assert float(y[0, 0]) == pytest.approx(1 - np.exp(-1.0), abs=1e-12)


def test_dt_assignment_is_checked():
    layer = ctsnn.discretize(ctsnn.LIF(1e-2), 1e-3)
    for bad in (float("inf"), float("nan"), 0.0, -1e-3):
        with pytest.raises(ValueError, match="dt"):
            layer.dt = bad
    with pytest.raises(TypeError, match="dt"):
        layer.dt = "1ms"


# ---------------------------------------------------------------- empty input and out= (14)
@pytest.mark.parametrize("events", ["grid", "in_step"])
def test_empty_input_same_on_both_backends(events):
    kw = dict(input="zoh", events=events)
    m = ctsnn.LIF(1e-2)
    res = {}
    for be in ("torch", "auto"):
        layer = ctsnn.discretize(m, 1e-3, backend=be, **kw)
        ran = layer.run(torch.zeros(0, 3, 1), record_states=True)
        out, y, st = ran.out, ran.state, ran.states
        ran = layer.run(torch.zeros(0, 3, 1), output="sparse")
        sp, y2 = ran.spikes, ran.state
        res[be] = (out.shape, y.shape, st.shape, len(sp), y2.shape)
        assert torch.equal(y, torch.zeros(3, 1, 1))
    assert res["torch"] == res["auto"] == ((0, 3, 1), (3, 1, 1), (0, 3, 1, 1), 0, (3, 1, 1))


@pytest.mark.parametrize("backend", ["torch", "auto"])
def test_wrong_out_buffer_same_error(backend):
    layer = ctsnn.discretize(ctsnn.LIF(1e-2), 1e-3, backend=backend)
    x = torch.ones(4, 2, 1)
    with pytest.raises(ValueError, match="out: needs a contiguous"):
        layer.run(x, out=torch.empty(5, 2, 1))
    with pytest.raises(ValueError, match="out: needs a contiguous"):
        layer.run(x, out=torch.empty(4, 2, 1, dtype=torch.float64))
    buf = torch.empty(4, 2, 1)
    o = layer.run(x, out=buf).out
    assert o.data_ptr() == buf.data_ptr()


# ---------------------------------------------------------------- inputs of DiscreteLayer (5, 8, 16)
def test_integer_input_is_computed_in_floating_point():
    """An int64 input used to run in int64 (no leak: state 20 instead of 9.086)."""
    layer = ctsnn.discretize(ctsnn.LIF(1e-2, v_th=100.0, dtype=torch.float64), 1e-3)
    y = layer.run(torch.ones(20, 1, dtype=torch.int64)).state
    beta = np.exp(-0.1)
    assert float(y[0, 0]) == pytest.approx((1 - beta ** 20) / (1 - beta), rel=1e-12)   # 9.086
    yb = layer.run(torch.ones(20, 1, dtype=torch.bool)).state
    assert torch.equal(y, yb)
    with pytest.raises(TypeError, match="x must be real"):
        layer.run(torch.ones(20, 1, dtype=torch.complex64))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        layer.run([[1.0]] * 3)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_input_and_state_rejected(bad):
    for be in ("torch", "auto"):
        layer = ctsnn.discretize(ctsnn.LIF(1e-2), 1e-3, backend=be)
        x = torch.ones(10, 2, 1)
        x[3, 1, 0] = bad
        with pytest.raises(ValueError, match="x contains NaN or Inf"):
            layer.run(x)
        with pytest.raises(ValueError, match="x contains NaN or Inf"):
            layer(x[3])
        st = torch.zeros(2, 1, 1)
        st[0, 0, 0] = bad
        with pytest.raises(ValueError, match="state contains NaN or Inf"):
            layer.run(torch.ones(10, 2, 1), st)


@pytest.mark.parametrize("dt", [float("inf"), float("nan"), 0.0, -1.0])
def test_discretize_rejects_bad_dt(dt):
    with pytest.raises(ValueError, match="dt must be"):
        ctsnn.discretize(ctsnn.LIF(1e-2), dt)


def test_neuron_count_mismatch_in_run():
    layer = ctsnn.discretize(ctsnn.LIF(torch.full((3,), 1e-2)), 1e-3)
    with pytest.raises(ValueError, match="last axis 4 does not match model.n = 3"):
        layer.run(torch.ones(5, 4))
    with pytest.raises(ValueError, match="state: needs a trailing axis"):
        layer.run(torch.ones(5, 3), torch.zeros(3, 2))


# ---------------------------------------------------------------- kernel cache (4)
_SCRIPT = r"""
import json, warnings, torch, ctsnn
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as w:
    layer = ctsnn.discretize(ctsnn.LIF(1e-2), 1e-3)
    x = torch.rand(50, 4, 3, generator=torch.Generator().manual_seed(0))
    ran = layer.run(x)
    out, y = ran.out, ran.state
    layer2 = ctsnn.discretize(ctsnn.LIF(1e-2), 1e-3)
    out2 = layer2.run(x).out
ref = ctsnn.discretize(ctsnn.LIF(1e-2), 1e-3, backend="torch").run(x).out
print(json.dumps({"backend": layer.last_backend, "same": bool(torch.equal(out, ref)),
                  "warnings": [str(m.message) for m in w if "ctsnn" in str(m.message)]}))
"""


def _run_script(cache):
    env = dict(os.environ, CTSNN_CACHE=str(cache), PYTHONPATH=ROOT)
    res = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]  # a SIGBUS would give -7
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def built_cache(tmp_path_factory):
    if not build.available():
        pytest.skip("no C++ compiler")
    d = tmp_path_factory.mktemp("cache") / "c"
    r = _run_script(d)
    assert r == {"backend": "fused", "same": True, "warnings": []}
    libs = sorted(d.glob("ctsnn_step_*.so"))
    assert libs and all(os.path.exists(str(p) + ".sha256") for p in libs)
    return d


def _copy(src, dst):
    import shutil
    shutil.copytree(src, dst)
    os.chmod(dst, 0o700)
    return dst


def test_cache_hash_is_recorded_and_checked(built_cache):
    import hashlib
    for lib in built_cache.glob("ctsnn_step_*.so"):
        rec = open(str(lib) + ".sha256").read().strip()
        assert rec == hashlib.sha256(lib.read_bytes()).hexdigest()


def test_truncated_library_falls_back_without_crash(built_cache, tmp_path):
    d = _copy(built_cache, tmp_path / "c")
    for lib in d.glob("ctsnn_step_*.so"):
        data = lib.read_bytes()
        lib.write_bytes(data[: len(data) // 3])       # dlopen of this used to die with SIGBUS
    r = _run_script(d)
    assert r["backend"] == "torch" and r["same"]
    assert len(r["warnings"]) == 1 and "does not match the recorded hash" in r["warnings"][0]


def test_replaced_library_is_not_loaded(built_cache, tmp_path):
    d = _copy(built_cache, tmp_path / "c")
    for lib in d.glob("ctsnn_step_*.so"):
        lib.write_bytes(b"\x7fELF" + b"\0" * 4000)    # same name, other bytes, hash kept
    r = _run_script(d)
    assert r["backend"] == "torch" and r["same"] and len(r["warnings"]) == 1


def test_library_without_hash_is_rebuilt(built_cache, tmp_path):
    d = _copy(built_cache, tmp_path / "c")
    for lib in d.glob("ctsnn_step_*.so"):
        lib.write_bytes(b"planted")                   # planted under the expected name, no record
        os.unlink(str(lib) + ".sha256")
    r = _run_script(d)
    assert r == {"backend": "fused", "same": True, "warnings": []}


@pytest.fixture
def fresh_build_state(monkeypatch):
    saved = dict(build._LIBS), dict(build._FAILED), set(build._WARNED)
    build._LIBS.clear(), build._FAILED.clear(), build._WARNED.clear()
    yield monkeypatch
    build._LIBS.clear(), build._FAILED.clear(), build._WARNED.clear()
    build._LIBS.update(saved[0]), build._FAILED.update(saved[1]), build._WARNED.update(saved[2])


def _cache_problem(monkeypatch, path, match):
    monkeypatch.setenv("CTSNN_CACHE", str(path))
    x = torch.rand(20, 3)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        layer = ctsnn.discretize(ctsnn.LIF(1e-2), 1e-3)
        out = layer.run(x).out
        ctsnn.discretize(ctsnn.LIF(2e-2), 1e-3).run(x)  # a second layer: no second warning
    msgs = [str(m.message) for m in w if "kernel cache" in str(m.message)]
    assert layer.last_backend == "torch" and len(msgs) == 1 and match in msgs[0], msgs
    ref = ctsnn.discretize(ctsnn.LIF(1e-2), 1e-3, backend="torch").run(x).out
    assert torch.equal(out, ref)


@pytest.mark.skipif(not build.available(), reason="no C++ compiler")
def test_cache_dir_is_a_file(fresh_build_state, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    _cache_problem(fresh_build_state, f, "not a directory")


@pytest.mark.skipif(not build.available(), reason="no C++ compiler")
def test_cache_dir_uncreatable(fresh_build_state, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    _cache_problem(fresh_build_state, f / "sub", "cannot create")


@pytest.mark.skipif(not build.available(), reason="no C++ compiler")
def test_cache_dir_writable_by_others(fresh_build_state, tmp_path):
    d = tmp_path / "open"
    d.mkdir()
    os.chmod(d, 0o777)
    _cache_problem(fresh_build_state, d, "writable by others")


@pytest.mark.skipif(not build.available() or os.geteuid() != 0, reason="needs a compiler and root to chown")
def test_cache_dir_of_another_user(fresh_build_state, tmp_path):
    d = tmp_path / "theirs"
    d.mkdir(mode=0o755)
    os.chown(d, 12345, 12345)
    _cache_problem(fresh_build_state, d, "another user")


@pytest.mark.skipif(not build.available() or os.geteuid() == 0, reason="root writes anywhere")
def test_cache_dir_read_only(fresh_build_state, tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    os.chmod(d, 0o500)
    _cache_problem(fresh_build_state, d, "not writable")


def test_clear_cache(built_cache, tmp_path, monkeypatch):
    d = _copy(built_cache, tmp_path / "c")
    n = len(list(d.glob("ctsnn_step_*.so")))
    monkeypatch.setenv("CTSNN_CACHE", str(d))
    assert ctsnn.kernels.clear_cache() == 2 * n
    assert not list(d.glob("ctsnn_*"))


# ---------------------------------------------------------------- model parameters (9, 16)
@pytest.mark.parametrize("kw, name", [
    (dict(tau_mem=1e-310), "tau_mem"), (dict(tau_mem=1e-2, r=1e308), "'r'"),
    (dict(tau_mem=1e-2, v_th=1e308), "v_th"), (dict(tau_mem=1e-2, v_reset=-1e308), "v_reset"),
    (dict(tau_mem=1e-2, v_leak=-1e300), "v_leak"),
])
def test_overflowing_parameters_rejected(kw, name):
    with pytest.raises(ValueError, match=name):
        ctsnn.LIF(**kw)


@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_bad_neuron_count(n):
    with pytest.raises((ValueError, TypeError), match="n must be an integer"):
        ctsnn.LIF(1e-2, n=n)


def test_parameter_assignment_is_checked_and_rolled_back():
    m = ctsnn.LIF(1e-2, v_th=1.0, v_reset=0.0)
    m.tau_mem = 0.05                                     # a number is accepted (was a TypeError)
    assert float(m.tau_mem) == 0.05 and "tau_mem" in dict(m.named_buffers())
    for name, bad in (("tau_mem", -1.0), ("tau_mem", float("nan")), ("r", 1e308), ("v_reset", 2.0)):
        with pytest.raises(ValueError, match=name):
            setattr(m, name, bad)
    assert float(m.tau_mem) == 0.05 and float(m.v_reset) == 0.0 and float(m.r) == 1.0
    p = torch.tensor(0.02, dtype=torch.float64, requires_grad=True)
    m.tau_mem = p
    assert m.tau_mem is p                                  # gradients still reach the caller's tensor


# ---------------------------------------------------------------- Euler stability (10)
def test_euler_warns_beyond_tau():
    m = ctsnn.LIF(1e-2)
    with pytest.warns(RuntimeWarning, match="decay factor 1 - dt/tau = -2"):
        tr_e = ctsnn.simulate(m, 1.5, t_end=0.3, dt=3e-2, method="euler")
    tr_x = ctsnn.simulate(m, 1.5, t_end=0.3, dt=3e-2)
    assert tr_e.n_spikes != tr_x.n_spikes   # the reason for the warning
    with pytest.warns(RuntimeWarning, match="discretize"):
        ctsnn.discretize(ctsnn.LIF(1e-2), 1.5e-2, method="euler")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ctsnn.simulate(m, 1.5, t_end=0.01, dt=5e-3, method="euler")      # dt < tau: quiet
        ctsnn.discretize(ctsnn.LIF(1e-2), 3e-2)                           # exact: quiet
        ctsnn.discretize(ctsnn.IF(), 1.0, method="euler")                 # no decay: nothing to break


# ---------------------------------------------------------------- work bound and progress (15)
def test_work_bound():
    with pytest.raises(ValueError, match=r"1e\+15 steps x 1 neuron.*max_work"):
        ctsnn.simulate(ctsnn.LIF(1e-2), 1.0, t_end=1e6, dt=1e-9)
    with pytest.raises(ValueError, match="100 steps x 3 neuron.*exceeds the limit of 200"):
        ctsnn.simulate(ctsnn.LIF(1e-2), torch.ones(1, 3), t_end=1e-2, dt=1e-4, max_work=200)  # batch counts
    ctsnn.simulate(ctsnn.LIF(1e-2), 1.0, t_end=1e-2, dt=1e-4, max_work=200)


def test_work_bound_environment(monkeypatch):
    monkeypatch.setenv("CTSNN_MAX_WORK", "50")
    with pytest.raises(ValueError, match="CTSNN_MAX_WORK"):
        ctsnn.simulate(ctsnn.LIF(1e-2), 1.0, t_end=1e-2, dt=1e-4)


def test_progress_eta(capsys, monkeypatch):
    from ctsnn import progress
    monkeypatch.setattr(progress, "AUTO_SECONDS", 0.0)
    p = progress.Progress(100, "simulate", None, every=0.0)
    p.start -= 2.0                               # two seconds in: long enough to show
    p.update(10)
    p.close()
    err = capsys.readouterr().err
    assert "step 10/100" in err and "ETA" in err and "100.0%" in err
    q = progress.Progress(100, "simulate", False, every=0.0)
    q.start -= 2.0
    q.update(10)
    q.close()
    assert capsys.readouterr().err == ""
    ctsnn.simulate(ctsnn.LIF(1e-2), 1.0, t_end=1e-2, dt=1e-3)          # short run: silent
    assert capsys.readouterr().err == ""


def test_simulate_entry_errors():
    with pytest.raises(ValueError, match="max_events_per_step must be an integer >= 1, got -1"):
        ctsnn.simulate(ctsnn.LIF(1e-2), 1.0, t_end=1e-2, dt=1e-3, max_events_per_step=-1)


# ---------------------------------------------------------------- NWB (11)
def _nwb(path, v, i, rate_v=1e4, rate_i=1e4, v_conv=1.0, i_conv=1.0, start_v=0.0, start_i=0.0, v_offset=0.0):
    pytest.importorskip("pynwb")
    from datetime import datetime, timezone

    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.icephys import CurrentClampSeries, CurrentClampStimulusSeries
    nwb = NWBFile(session_description="t", identifier="x", session_start_time=datetime(2020, 1, 1, tzinfo=timezone.utc))
    dev = nwb.create_device(name="amp")
    el = nwb.create_icephys_electrode(name="e", description="d", device=dev)
    stim = CurrentClampStimulusSeries(name="ics__1", data=i, rate=rate_i, electrode=el, gain=1.0,
                                      conversion=i_conv, starting_time=start_i)
    resp = CurrentClampSeries(name="ic__1", data=v, rate=rate_v, electrode=el, gain=1.0, conversion=v_conv,
                              offset=v_offset, starting_time=start_v, stimulus_description="step")
    nwb.add_stimulus(stim)
    nwb.add_acquisition(resp)
    nwb.add_intracellular_recording(electrode=el, stimulus=stim, response=resp)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def test_nwb_stimulus_on_its_own_clock(tmp_path):
    """A 1 kHz stimulus against a 10 kHz response: read on the response's clock (each stimulus
    sample held for 1 ms), not sample k against sample k."""
    from ctsnn import io
    n = 1000                                          # 0.1 s of response
    i = np.where(np.arange(100) >= 20, 1e-10, 0.0)    # step at 20 ms (1 kHz samples)
    p = _nwb(tmp_path / "a.nwb", np.full(n, -0.07), i, rate_v=1e4, rate_i=1e3)
    rec = io.load_nwb(p)[0]
    assert rec.t.size == n and rec.meta["stimulus_resampled"]
    on = rec.t[rec.current > 0]
    assert on[0] == pytest.approx(20e-3, abs=1e-12) and on.size == 800
    # a stimulus that starts 5 ms later on the shared clock: the response's first 5 ms lack one
    p2 = _nwb(tmp_path / "b.nwb", np.full(n, -0.07), np.full(100, 1e-10), rate_v=1e4, rate_i=1e3, start_i=5e-3)
    with pytest.raises(ValueError, match="does not cover the response"):
        io.load_nwb(p2)


def test_nwb_units_conversion_and_offset(tmp_path):
    from ctsnn import io
    pytest.importorskip("h5py")
    import h5py
    # data in mV with conversion 1e-3 and an offset (in volts): (data * conversion + offset)
    p = _nwb(tmp_path / "c.nwb", np.full(50, -60.0), np.full(50, 100.0), v_conv=1e-3, i_conv=1e-12,
             v_offset=-0.01)
    rec = io.load_nwb(p)[0]
    assert np.allclose(rec.v, -0.07, rtol=1e-12) and np.allclose(rec.current, 1e-10, rtol=1e-12)
    # data in mV labelled 'mV' in the file: pynwb reports 'volts' (1000x too large before)
    p2 = _nwb(tmp_path / "d.nwb", np.full(50, -70.0), np.full(50, 1e-10))
    with h5py.File(p2, "a") as f:
        f["acquisition/ic__1/data"].attrs["unit"] = "mV"
    rec2 = io.load_nwb(p2)[0]
    assert np.allclose(rec2.v, -0.07, rtol=1e-12)


# ---------------------------------------------------------------- CSV and detect_spikes (16)
@pytest.mark.parametrize("head", ["\ufefft_s,v_mV,i_pA", '"t_s","v_mV","i_pA"', '\ufeff"t_s", "v_mV" ,"i_pA"'])
def test_csv_bom_and_quoted_header(tmp_path, head):
    from ctsnn import io
    p = tmp_path / "r.csv"
    p.write_text(head + "\n0,-70,100\n0.001,-69,100\n0.002,-68,100\n", encoding="utf-8")
    rec = io.load_csv(p)
    assert np.allclose(rec.v, [-0.070, -0.069, -0.068]) and np.allclose(rec.current, 1e-10)


def test_csv_ragged_row(tmp_path):
    from ctsnn import io
    p = tmp_path / "r.csv"
    p.write_text("t_s,v_mV,i_pA\n0,-70,100\n0.001,-69\n")
    with pytest.raises(ValueError, match="row 2 has 2 values"):
        io.load_csv(p)


@pytest.mark.parametrize("bad", [float("nan"), -1.0, "2ms"])
def test_detect_spikes_refractory(bad):
    from ctsnn import io
    with pytest.raises((ValueError, TypeError), match="refractory"):
        io.detect_spikes([0, 1, 2], [0, 1, 0], threshold=0.5, refractory=bad)


# ---------------------------------------------------------------- Trace files (12, 13)
@pytest.fixture
def trace():
    return ctsnn.simulate(ctsnn.LIF(1e-2), 1.5, t_end=0.05, dt=1e-3)


def _rewrite(src, dst, **changes):
    with np.load(src, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    for k, v in changes.items():
        if v is None:
            d.pop(k)
        else:
            d[k] = v
    np.savez(dst, **d)
    return dst


def test_trace_load_validates(trace, tmp_path):
    src = trace.save(tmp_path / "t.npz")
    assert ctsnn.Trace.load(src).n_spikes == trace.n_spikes > 0
    st = trace.spike_times.numpy().copy()
    st[0] = np.nan
    cases = {
        "nan_spike": (dict(spike_times=st), "spike_times contains NaN"),
        "late_spike": (dict(spike_times=np.full_like(st, 1.0)), "outside"),
        "reversed_t": (dict(t=trace.t.numpy()[::-1].copy()), "not increasing"),
        "bad_state": (dict(state__v=np.zeros((3, 2))), "state 'v' has shape"),
        "no_times": (dict(spike_times=None), "no entry"),
        "pre_shape": (dict(spike_pre=np.zeros((trace.n_spikes, 3))), "spike_pre has shape"),
        "bad_meta": (dict(meta=np.array("{not json")), "JSONDecodeError"),
    }
    for name, (changes, match) in cases.items():
        p = _rewrite(src, tmp_path / f"{name}.npz", **changes)
        with pytest.raises(ValueError, match=match) as e:
            ctsnn.Trace.load(p)
        assert str(p) in str(e.value)


def test_trace_load_broken_files(trace, tmp_path):
    src = trace.save(tmp_path / "t.npz")
    data = src.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: len(data) // 2])
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"hello")
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    for p in (cut, junk, empty):
        with pytest.raises(ValueError, match="not a (readable|valid) ctsnn trace") as e:
            ctsnn.Trace.load(p)
        assert str(p) in str(e.value)
    with pytest.raises(ValueError, match="does not exist"):
        ctsnn.Trace.load(tmp_path / "missing.npz")


def test_trace_save_paths(trace, tmp_path):
    d = tmp_path / "dir"
    d.mkdir()
    with pytest.raises(ValueError, match="existing directory"):
        trace.save(d)                                     # wrote dir.npz beside it before
    assert not (tmp_path / "dir.npz").exists()
    with pytest.raises(ValueError, match="does not exist; create it first"):
        trace.save(tmp_path / "missing" / "t.npz")        # created the folder silently before
    assert not (tmp_path / "missing").exists()
    assert trace.save(tmp_path / "x") == tmp_path / "x.npz" and (tmp_path / "x.npz").exists()


def test_plot_save_returns_written_path(trace, tmp_path):
    from ctsnn import plot
    ax = plot.membrane(trace)
    p = plot.save(ax, tmp_path / "fig")
    assert p == tmp_path / "fig.png" and p.exists()      # returned "fig" before, a file it did not write
    with pytest.raises(ValueError, match="does not exist"):
        plot.save(ax, tmp_path / "nope" / "f.png")
    import matplotlib.pyplot as plt
    plt.close("all")


def test_simulate_input_kinds():
    m = ctsnn.LIF(1e-2, dtype=torch.float64)
    with pytest.raises(TypeError, match="current must be real"):
        ctsnn.simulate(m, torch.ones(10, 1, dtype=torch.complex64), t_end=1e-2, dt=1e-3)
    with pytest.raises(ValueError, match="neuron axis"):
        ctsnn.simulate(m, torch.ones(10, 0), t_end=1e-2, dt=1e-3)
    with pytest.raises(ValueError, match="weights must be a number or 1-D"):
        ctsnn.simulate(m, spikes=([1e-3], [0], [[1.0]]), t_end=1e-2, dt=1e-3)
    a = ctsnn.simulate(m, torch.full((10, 1), 2, dtype=torch.int64), t_end=1e-2, dt=1e-3)
    b = ctsnn.simulate(m, torch.full((10, 1), 2.0, dtype=torch.float64), t_end=1e-2, dt=1e-3)
    assert a["v"].dtype == torch.float64 and torch.equal(a["v"], b["v"])


def test_option_assignment_is_checked():
    m = ctsnn.LIF(1e-2)
    m.reset = "subtract"
    assert m.config()["reset"] == "subtract" and m.replace(tau_mem=2e-2).reset == "subtract"
    with pytest.raises(ValueError, match="reset must be one of"):
        m.reset = "bogus"                     # ran as 'none' silently before
    assert m.reset == "subtract"


# ---------------------------------------------------------------- found by benchmarks/adversarial.py
def test_stream_work_bound_and_arguments():
    """DiscreteLayer.stream: the same work bound and override as simulate's max_work, refused before
    any step runs; steps, chunk and callback checked (a float or string steps ran before)."""
    layer = ctsnn.discretize(ctsnn.LIF(1e-2), 1e-3)
    calls = []

    def source(t0, t1):
        calls.append((t0, t1))
        return torch.ones(t1 - t0, 10)

    with pytest.raises(ValueError, match=r"stream: 1e\+12 steps x 10 neuron.*max_work"):
        layer.stream(source, steps=10**12)
    assert len(calls) == 1                                   # only the first chunk, to learn the shape
    with pytest.raises(ValueError, match="max_work"):
        layer.stream(torch.ones(1, 1000), steps=10**12)      # a held tensor: known before any step
    res = layer.stream(torch.full((1, 3), 0.3), steps=50, chunk=7, max_work=150)
    sp, y = res.spikes, res.state
    r = layer.run(torch.full((50, 3), 0.3))
    ref, yr = r.out, r.state
    assert len(sp) == int(ref.sum()) and torch.equal(y, yr)
    with pytest.raises(ValueError, match="max_work"):
        layer.stream(torch.full((1, 3), 0.3), steps=50, max_work=149)
    for kw, name in ((dict(steps=1.5), "steps"), (dict(steps="10"), "steps"), (dict(steps=float("nan")), "steps"),
                     (dict(steps=5, chunk=0), "chunk"), (dict(steps=5, callback=3), "callback")):
        with pytest.raises(TypeError if name != "chunk" else ValueError, match=name):
            layer.stream(source, **kw)
    with pytest.raises(ValueError, match=r"source\(0, 5\) raised ZeroDivisionError"):
        layer.stream(lambda a, b: 1 / 0, steps=5)
    with pytest.raises(TypeError, match="must return a tensor"):
        layer.stream(lambda a, b: [0.0] * (b - a), steps=5)


def test_alif_option_assignment_is_checked():
    m = ctsnn.ALIF(1e-2, 0.1, 0.2)
    for bad in ("bogus", None, "THRESHOLD", 1):
        with pytest.raises(ValueError, match="adaptation must be one of"):
            m.adaptation = bad                      # was stored and ran as 'current' silently
        assert m.adaptation == "threshold"
    with pytest.raises(ValueError, match="subtract must be one of"):
        m.subtract = "bogus"
    m.adaptation = "current"                        # a legal change takes effect
    assert m.config()["adaptation"] == "current" and float(m.linear_part()[0][0, 0, 1]) == -100.0
    s = ctsnn.ALIF(1e-2, 0.1, 0.2, reset="subtract", subtract="threshold")
    with pytest.raises(ValueError, match="subtract='threshold' needs"):
        s.adaptation = "current"
    assert s.adaptation == "threshold"


def test_simulate_dt_far_beyond_t_end():
    """dt >> t_end is one step of length t_end: the closed form, not 1 spike (dt = 1e30 lost the
    root finder's precision; dt = 1e308 ran no step at all)."""
    want = [k * 1e-2 * np.log(3.0) for k in range(1, 10)]      # LIF, I = 1.5: period tau ln(I/(I-1))
    for dt in (0.2, 1e30, 1e308):
        for backend in ("auto", "torch"):
            tr = ctsnn.simulate(ctsnn.LIF(1e-2), current=1.5, t_end=0.1, dt=dt, dtype=torch.float64,
                                backend=backend)
            assert tr.n_spikes == 9 and np.allclose(tr.spike_times.numpy(), want, atol=1e-12, rtol=0)
            assert tr.t.tolist() == [0.0, 0.1]


def test_simulate_argument_kinds():
    m = ctsnn.LIF(1e-2)
    run = lambda **kw: ctsnn.simulate(m, **{"current": 1.5, "t_end": 1e-2, "dt": 1e-3, **kw})  # noqa: E731
    for cur in (1 + 1j, "1nA", True):
        with pytest.raises(TypeError, match="current must be a real number"):
            run(current=cur)
    with pytest.raises(ValueError, match="current has a value of magnitude 1e"):
        run(current=1e308)                                     # gave NaN states before
    with pytest.raises(ValueError, match=r"current\(0.0,\) raised ZeroDivisionError"):
        run(current=lambda t: 1 / 0)
    with pytest.raises(TypeError, match="the callable current"):
        run(current=lambda t: "x")
    with pytest.raises(ValueError, match="chunk must be an integer >= 0"):
        run(chunk=-1)                                          # ignored on the engine path before
    with pytest.raises(ValueError, match="dtype must be a floating dtype"):
        run(dtype=torch.int64)
    with pytest.raises(ValueError, match=r"spikes: the dict lacks \['neurons'\]"):
        run(spikes={"times": torch.tensor([1e-3])})


def test_layer_reassigned_options_state_shape_and_scale():
    layer = ctsnn.discretize(ctsnn.LIF(1e-2), 1e-3)
    x = torch.full((5, 2, 1), 0.3)
    layer.method = "bogus"                                     # ran as Euler before
    with pytest.raises(ValueError, match="layer.method must be one of"):
        layer.run(x)
    layer.method = "exact"
    layer.input = "bogus"                                      # a KeyError before
    with pytest.raises(ValueError, match="layer.input must be one of"):
        layer.run(x)
    layer.input = "impulse"
    with pytest.raises(ValueError, match=r"state: shape \(3, 1\) does not fit"):
        layer.run(x, torch.zeros(3, 1))                        # a RuntimeError from expand before
    with pytest.raises(ValueError, match="neuron axis"):
        layer.run(torch.ones(5, 2, 0))
    with pytest.raises(ValueError, match="x has a value of magnitude 1e"):
        layer.run(torch.full((5, 1), 1e308, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"state_min\['v'\]"):
        ctsnn.discretize(ctsnn.LIF(1e-2), 1e-3, state_min={"v": "x"})


def test_model_constructor_arguments():
    with pytest.raises(ValueError, match="dtype must be a floating dtype"):
        ctsnn.LIF(1e-2, dtype=torch.int64)                     # blamed tau_mem before
    with pytest.raises(TypeError, match="dtype must be a torch floating dtype"):
        ctsnn.LIF(1e-2, dtype="float64")
    with pytest.raises(ValueError, match="'tau_mem' is an empty tensor"):
        ctsnn.LIF(torch.zeros(0))
    with pytest.raises(ValueError, match="'r' = 1e-310 is out of range"):
        ctsnn.CubaLIF(5e-3, 1e-2, r=1e-310)                    # OverflowError in the propagator before
    assert float(ctsnn.LIF(1e-2, v_leak=0.0).v_leak) == 0.0   # zero stays legal
    with pytest.raises(ValueError, match="Recurrent: target 'bogus'"):
        ctsnn.Recurrent(ctsnn.LIF(1e-2), 0.1, target="bogus")
    with pytest.raises(TypeError, match="Recurrent: model must be"):
        ctsnn.Recurrent(None, 0.1)


def test_network_arguments_and_work_bounds():
    import ctsnn.network as N
    for n in (2.5, "3", True):
        with pytest.raises(TypeError, match="Population: n must be an integer"):
            N.Population(ctsnn.LIF(1e-2), n=n)                 # int(2.5) = 2 neurons before
    a = N.Population(ctsnn.LIF(1e-2), n=3, current=1.5)
    with pytest.raises(ValueError, match=r"Network.run: 1e\+15 steps x 3"):
        N.Network([a]).run(1e6, 1e-9)                          # ran on, unbounded, before
    with pytest.raises(ValueError, match="Poisson arrivals"):
        N.Network([a], sources=[N.PoissonSource(a, 1e300)]).run(1e-2, 1e-3)   # a hang before
    with pytest.raises(ValueError, match="Projection: target 'bogus'"):
        N.Projection(a, a, [0], [1], 0.1, target="bogus")
    with pytest.raises(ValueError, match=r"Network: populations\[0\] must be a Population"):
        N.Network([3])
    for kw in (dict(threads=0), dict(max_events_per_step=-1)):
        with pytest.raises(ValueError, match=next(iter(kw))):
            N.Network([a]).run(1e-2, 1e-3, **kw)
    with pytest.raises(TypeError, match="seed"):
        N.PoissonSource(a, 10.0, seed=1.5)
    res = N.Network([a]).run(0.1, 1e-3, max_work=300)          # the override, as in simulate
    assert len(res.spike_times) == 27


def test_recording_and_reader_errors(tmp_path):
    from ctsnn import io
    t = np.arange(0, 0.01, 1e-4)
    for bad, name in ((np.zeros(t.size, dtype=bool), "v"), (np.zeros(t.size) + 0j, "v")):
        with pytest.raises(TypeError, match=f"recording {name} must hold real numbers"):
            ctsnn.Recording(t, bad, 0.0)                       # read as 0/1 or dropped the imaginary part
    rec = ctsnn.Recording(t, np.zeros(t.size), 0.0)
    with pytest.raises(ValueError, match="leaves no sample"):
        rec.exclude(-1.0, 1.0)
    (tmp_path / "bin.csv").write_bytes(b"\x00\x94garbage\xff")
    with pytest.raises(ValueError, match="is not a text"):
        io.load_csv(tmp_path / "bin.csv")                      # UnicodeDecodeError before
    (tmp_path / "g.nwb").write_bytes(os.urandom(200))
    with pytest.raises(ValueError, match="not a readable NWB"):
        io.load_nwb(tmp_path / "g.nwb")                        # a raw OSError before
    with pytest.raises(TypeError, match="units must be a dict"):
        io.load_npz(tmp_path / "g.nwb", units=["s"])


def test_nwb_selection_that_matches_nothing():
    pytest.importorskip("pynwb")
    import ctsnn.datasets as ds
    from ctsnn import io
    with pytest.raises(ValueError, match="no current-clamp sweep whose stimulus description contains"):
        io.load_nwb(ds.path("ca1"), stimulus_type="no-such-stimulus")   # returned [] before


def test_plot_argument_errors(trace):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ctsnn import plot
    with pytest.raises(TypeError, match="trace must be a ctsnn.Trace"):
        plot.membrane(None)
    with pytest.raises(TypeError, match="a Recording is data"):
        plot.membrane(ctsnn.Recording(np.arange(3) * 1e-3, np.zeros(3), 0.0))
    with pytest.raises(ValueError, match=r"groups\['a'\] names neuron 99"):
        plot.raster(trace, groups={"a": [99]})                 # drew nothing for it before
    with pytest.raises(ValueError, match="signs must be"):
        plot.raster([1, 2, 3])
    with pytest.raises(ValueError, match="t_end must be > 0"):
        plot.fi_curve(ctsnn.LIF(1e-2), [1.5], t_end=0.0, dt=1e-3)   # rates 0/0 before
    with pytest.raises(ValueError, match="currents contains NaN"):
        plot.fi_curve(ctsnn.LIF(1e-2), [float("nan")], t_end=0.01, dt=1e-3)
    with pytest.raises(TypeError, match="result must be a ctsnn.FitResult"):
        plot.fit(None)
    plt.close("all")


def test_cli_unreadable_input_file_and_work_bound(tmp_path, capsys, monkeypatch):
    from ctsnn import cli
    monkeypatch.chdir(tmp_path)
    (tmp_path / "g.npz").write_bytes(os.urandom(300))
    base = ["simulate", "-p", "tau_mem=10ms", "--dt", "1ms", "--t-end", "10ms", "-o", "x.npz", "--quiet"]
    assert cli.main(base + ["--current-file", "g.npz"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--current-file" in err[0] and "g.npz" in err[0]   # numpy's pickle text before
    # the work bound comes before the current is tabulated (an 8e15-byte allocation before)
    assert cli.main(["simulate", "--current", "1nA", "--dt", "1ns", "--t-end", "1e6", "-o", "y.npz"]) == 2
    err = capsys.readouterr().err
    assert "CTSNN_MAX_WORK" in err and "allocate" not in err


def test_fit_argument_errors():
    rec = ctsnn.Recording(np.arange(0, 0.01, 1e-4), np.full(100, -0.07), 0.0)
    m = ctsnn.LIF(0.01, r=5e7, v_leak=-0.065)
    with pytest.raises(TypeError, match="recordings must be a ctsnn.Recording"):
        ctsnn.fit(m, None)
    with pytest.raises(ValueError, match="recordings is empty"):
        ctsnn.fit(m, [])
    with pytest.raises(ValueError, match="params is empty"):
        ctsnn.fit(m, rec, params=())
    with pytest.raises(ValueError, match="dtype must be a floating dtype"):
        ctsnn.fit(m, rec, dtype=torch.int64)
    with pytest.raises(TypeError, match="callback must be callable"):
        ctsnn.fit(m, rec, callback=3)


def test_dialect_inputs_and_parameters():
    from ctsnn.compat import norse as cn, sinabs as cs, snntorch as st, spikingjelly as sj, tracetorch as tt
    with pytest.raises(ValueError, match="input_tensor contains NaN"):
        cn.LSNNCell()(torch.full((2, 3), float("nan")))        # zeros out, NaN state before
    with pytest.raises(TypeError, match="input_tensor must be real"):
        cn.LSNN()(torch.ones(2, 1, 3, dtype=torch.complex64))
    for layer, name in ((st.Leaky(beta=0.9), "input_"), (sj.LIFNode(), "x"), (tt.LITS(2), "x"),
                        (cs.ALIF(10.0, 100.0), "input_data")):
        with pytest.raises(TypeError, match=f"{name} must be a torch.Tensor"):
            layer([[1.0, 2.0]])
    for make, name in ((lambda: st.Leaky(beta="0.9"), "beta"), (lambda: st.Leaky(beta=None), "beta"),
                       (lambda: cs.ALIF(tau_mem=None, tau_adapt=100.0), "tau_mem"),
                       (lambda: sj.LIFNode(v_threshold=float("nan")), "v_threshold"),
                       (lambda: sj.LIFNode(tau=1j), "tau")):
        with pytest.raises((TypeError, ValueError), match=name):
            make()
    with pytest.raises(ValueError, match="linear_features"):
        st.RLeaky(beta=0.9, linear_features=3)(torch.ones(4, 5))
    out = st.RLeaky(beta=0.9, linear_features=3)(torch.ones(4, 3, dtype=torch.int64))[0]   # a dtype error before
    assert out.dtype == torch.get_default_dtype()


def test_dialect_errors_name_the_dialect_argument():
    """Errors of the models the dialects build name the dialect's own argument (found by
    benchmarks/adversarial.py after the parameter declarations moved into the models)."""
    from ctsnn.compat import sinabs as cb
    from ctsnn.compat import spikingjelly as cj
    with pytest.raises(ValueError, match="adapt_scale"):
        cb.ALIF(tau_mem=10.0, tau_adapt=20.0, adapt_scale=-0.5)
    for v_th in (0.0, -1.0):
        with pytest.raises(ValueError, match="v_threshold"):
            cj.LIFNode(v_threshold=v_th)
        with pytest.raises(ValueError, match="v_threshold"):
            cj.IFNode(v_threshold=v_th)


@pytest.mark.parametrize("recurrent", [False, True])
def test_snntorch_fused_path_checks_its_input_once(monkeypatch, recurrent):
    """The snntorch dialect's layer without gradients (reset_delay=True: the layer's own step,
    the fused kernel where it applies) makes one magnitude/finiteness pass over the input per
    call: forward's tensor_input; the layer's own forward made a second one before.  What is
    checked stays: NaN, a huge value, the neuron axis and an empty neuron axis are refused naming
    input_."""
    import ctsnn.validate as v
    from ctsnn.compat import snntorch as st
    layer = st.RLeaky(beta=0.9, linear_features=3) if recurrent else st.Leaky(beta=torch.full((3,), 0.9))
    x = torch.rand(2, 3) * 2
    seen = []
    real = v.bounded_tensor

    def counting(name, t, *a, **k):
        if t.data_ptr() == x.data_ptr():
            seen.append(name)
        return real(name, t, *a, **k)

    monkeypatch.setattr(v, "bounded_tensor", counting)
    with torch.no_grad():
        out = layer(x)
    assert seen == ["input_"]
    monkeypatch.undo()
    for bad, match in ((torch.full((2, 3), float("nan")), "input_ contains NaN"),
                       (torch.full((2, 3), 1e200, dtype=torch.float64), "input_ has a value of magnitude"),
                       (torch.rand(2, 4), "input_"), (torch.rand(2, 0), "input_")):
        with torch.no_grad(), pytest.raises(ValueError, match=match):
            layer(bad)
    assert out[0].shape == (2, 3)


def test_broadcast_shapes_as_numpy():
    """validate.broadcast_shapes (plain arithmetic, used by simulate instead of
    torch.broadcast_shapes, which imports sympy on its first call) against numpy's."""
    import numpy as np
    from ctsnn import validate as v
    rng = np.random.default_rng(0)
    for _ in range(300):
        shapes = [tuple(int(rng.choice([0, 1, 2, 3])) for _ in range(int(rng.integers(0, 4))))
                  for _ in range(int(rng.integers(1, 4)))]
        try:
            ref = np.broadcast_shapes(*shapes)
        except ValueError:
            with pytest.raises(RuntimeError, match="do not broadcast"):
                v.broadcast_shapes(*shapes)
        else:
            assert v.broadcast_shapes(*shapes) == ref, shapes


def test_first_simulate_imports_no_symbolic_shapes():
    """A fresh process's first simulate does not import sympy (torch's symbolic shapes): it cost
    about a second of the first call (benchmarks/cli_startup.py measures the time)."""
    import subprocess
    import sys
    from pathlib import Path
    code = ("import sys, ctsnn; ctsnn.simulate(ctsnn.LIF(tau_mem=1e-2, v_th=1.0), current=1.2, t_end=0.05, "
            "dt=1e-3); print(sorted(m for m in ('sympy', 'torch._dynamo') if m in sys.modules))")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=300,
                         env={**__import__("os").environ, "PYTHONPATH": str(root)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
