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
        sp, y = layer.run(x, output="sparse")
        assert layer.last_backend == "torch"
        assert len(sp) == tr.n_spikes > 5
        a, b = _pairs(sp.index, sp.times), _pairs(tr.spike_neurons, tr.spike_times)
        assert max(abs(p[1] - q[1]) for p, q in zip(a, b)) < 1e-12
        assert [p[0] for p in a] == [q[0] for q in b]
        # continued in two calls: the state carries the time left in the refractory period
        s1, y1 = layer.run(x[:77], output="sparse")
        s2, y2 = layer.run(x[77:], y1, output="sparse")
        assert len(s1) + len(s2) == len(sp) and torch.allclose(y2, y, atol=1e-12)
        assert y.shape[-1] == 2  # v and the time left refractory
    finally:
        torch.set_default_dtype(torch.float32)


def test_in_step_refractory_the_issue_numbers():
    """LIF(1e-2, t_ref=5e-3) at 0.2 s: the discrete layer used to give 89 spikes (t_ref ignored)."""
    m = ctsnn.LIF(1e-2, t_ref=5e-3, dtype=torch.float64)
    cur = 1.0 / (1 - np.exp(-1.0))  # rate without t_ref: 1 / (tau ln(I/(I-1))) = 100 Hz
    tr = ctsnn.simulate(m, current=cur, t_end=0.2, dt=1e-3)
    sp, _ = ctsnn.discretize(m, 1e-3, input="zoh", events="in_step").run(
        torch.full((200, 1), cur, dtype=torch.float64), output="sparse")
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
    out, y, st = layer.run(torch.full((200, 1), 3.0, dtype=torch.float64), record_states=True)
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
    c0 = ctsnn.discretize(m0, 1e-3, input="zoh").run(x)[0].sum()
    c1 = ctsnn.discretize(m1, 1e-3, input="zoh").run(x)[0].sum()
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
    _, y = layer.run(x)
    assert float(y[0, 0]) == pytest.approx(1 - np.exp(-1.0), abs=1e-12)       # 0.632
    layer.dt = 5e-2
    _, y = layer.run(x)
    assert float(y[0, 0]) == pytest.approx(1 - np.exp(-5.0), abs=1e-12)       # 0.993, not 0.632
    # the reset mode: 'none' -> 'to_value' after a run
    m2 = ctsnn.LIF(1e-2, reset="subtract", v_th=0.5, v_reset=0.0)
    layer2 = ctsnn.discretize(m2, 1e-2, input="zoh", backend=backend)
    _, ya = layer2.run(torch.full((1, 1), 2.0, dtype=torch.float64))
    v1 = 2 * (1 - np.exp(-1.0))
    assert float(ya[0, 0]) == pytest.approx(v1 - 0.5, abs=1e-12)
    m2.reset = "to_value"
    _, yb = layer2.run(torch.full((1, 1), 2.0, dtype=torch.float64))
    assert float(yb[0, 0]) == pytest.approx(0.0, abs=1e-12)
    # a parameter replaced by assignment
    m.tau_mem = torch.tensor(5e-2, dtype=torch.float64)
    _, y = layer.run(x)
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
        out, y, st = layer.run(torch.zeros(0, 3, 1), record_states=True)
        sp, y2 = layer.run(torch.zeros(0, 3, 1), output="sparse")
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
    o, _ = layer.run(x, out=buf)
    assert o.data_ptr() == buf.data_ptr()


# ---------------------------------------------------------------- inputs of DiscreteLayer (5, 8, 16)
def test_integer_input_is_computed_in_floating_point():
    """An int64 input used to run in int64 (no leak: state 20 instead of 9.086)."""
    layer = ctsnn.discretize(ctsnn.LIF(1e-2, v_th=100.0, dtype=torch.float64), 1e-3)
    _, y = layer.run(torch.ones(20, 1, dtype=torch.int64))
    beta = np.exp(-0.1)
    assert float(y[0, 0]) == pytest.approx((1 - beta ** 20) / (1 - beta), rel=1e-12)   # 9.086
    _, yb = layer.run(torch.ones(20, 1, dtype=torch.bool))
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
    out, y = layer.run(x)
    layer2 = ctsnn.discretize(ctsnn.LIF(1e-2), 1e-3)
    out2, _ = layer2.run(x)
ref, _ = ctsnn.discretize(ctsnn.LIF(1e-2), 1e-3, backend="torch").run(x)
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
        out, _ = layer.run(x)
        ctsnn.discretize(ctsnn.LIF(2e-2), 1e-3).run(x)  # a second layer: no second warning
    msgs = [str(m.message) for m in w if "kernel cache" in str(m.message)]
    assert layer.last_backend == "torch" and len(msgs) == 1 and match in msgs[0], msgs
    ref, _ = ctsnn.discretize(ctsnn.LIF(1e-2), 1e-3, backend="torch").run(x)
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
