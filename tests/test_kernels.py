"""The fused kernel (ctsnn/kernels) against DiscreteLayer's pure-torch loop.

Forward: spikes, final state and recorded states bit-identical (torch.equal) for every model the
kernel covers, both methods, every input convention, shared and per-neuron parameters, float32
and float64.  Backward: gradients of a loss with respect to the input, the initial state and the
continuous parameters equal to the torch path's within rounding (1e-10 relative, float64).
"""
import warnings
import zlib
from pathlib import Path

import pytest
import torch

import ctsnn
from ctsnn import discretize
from ctsnn.kernels import build

pytestmark = pytest.mark.skipif(not build.available(), reason="no C++ compiler")

DT = 1e-3


def _rand(n, lo, hi, g, dtype=torch.float64):
    return lo + (hi - lo) * torch.rand(n, generator=g, dtype=dtype)


def _models(n, per_neuron, g):
    p = (lambda lo, hi: _rand(n, lo, hi, g)) if per_neuron else (lambda lo, hi: float(_rand(1, lo, hi, g)))
    return {
        "LIF_subtract": ctsnn.LIF(tau_mem=p(0.005, 0.03), v_th=p(0.5, 1.5), reset="subtract"),
        "LIF_to_value": ctsnn.LIF(tau_mem=p(0.005, 0.03), v_th=p(0.5, 1.5), v_reset=p(-0.3, 0.2),
                                  v_leak=p(-0.1, 0.1), r=p(0.5, 2.0)),
        "LIF_none": ctsnn.LIF(tau_mem=p(0.005, 0.03), v_th=p(0.5, 1.5), reset="none"),
        "IF": ctsnn.IF(v_th=p(0.5, 1.5), r=p(0.5, 1.0), reset="subtract"),
        "CubaLIF": ctsnn.CubaLIF(tau_syn=p(0.002, 0.01), tau_mem=p(0.005, 0.03), v_th=p(0.3, 1.0)),
        "ALIF_th": ctsnn.ALIF(tau_mem=p(0.005, 0.03), tau_adapt=p(0.05, 0.3), adapt_jump=p(0.05, 0.5),
                              reset="subtract", subtract="threshold"),
        "ALIF_cur": ctsnn.ALIF(tau_mem=p(0.005, 0.03), tau_adapt=p(0.05, 0.3), adapt_jump=p(0.05, 0.5),
                               adaptation="current", v_th=p(0.5, 1.0)),
        "ALIF_syn": ctsnn.ALIF(tau_mem=p(0.005, 0.03), tau_adapt=p(0.05, 0.3), adapt_jump=p(0.05, 0.5),
                               tau_syn=p(0.002, 0.01), v_th=p(0.3, 0.8)),
        "LIT": ctsnn.LIT(tau_mem=p(0.005, 0.03), pos_th=p(0.5, 1.5), neg_th=p(0.5, 1.5), bias=p(-0.2, 0.2),
                         pos_scale=p(0.5, 2.0), neg_scale=p(0.5, 2.0)),
        "Recurrent_trace": ctsnn.Recurrent(ctsnn.LIF(tau_mem=p(0.005, 0.03), reset="subtract"),
                                           tau_rec=0.01, rec_weight=-0.5),
    }


def _input(name, inp, T, batch, n, g, dtype):
    scale = {"impulse": 0.5, "impulse_start": 0.5, "zoh": 3.0}[inp]
    if name.startswith("IF"):
        scale = {"impulse": 0.3, "impulse_start": 0.3, "zoh": 150.0}[inp]
    if name.startswith(("CubaLIF", "ALIF_syn")) and inp != "zoh":
        scale = 20.0
    x = scale * torch.rand((T,) + batch + (n,), generator=g, dtype=torch.float64)
    if name == "LIT":
        x = 2 * x - scale  # both signs
    return x.to(dtype)


def _both(model, inp, method, x, y0=None, record_states=True, **kw):
    lt = discretize(model, DT, method=method, input=inp, backend="torch", **kw)
    lf = discretize(model, DT, method=method, input=inp, backend="fused", **kw)
    rt = lt.run(x, y0, record_states=record_states)
    rf = lf.run(x, y0, record_states=record_states)
    assert lf.last_backend == "fused" and lt.last_backend == "torch"
    return _fields(rt), _fields(rf)


def _fields(r):
    return (r.out, r.state) if r.states is None else (r.out, r.state, r.states)


NAMES = list(_models(3, False, torch.Generator()))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("per_neuron", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_forward_bit_identical(name, per_neuron, dtype):
    g = torch.Generator().manual_seed(zlib.crc32(f"{name}{per_neuron}".encode()))
    n, batch, T = 37, (3,), 300
    model = _models(n, per_neuron, g)[name]
    spiked = 0
    for method in ("exact", "euler"):
        for inp in ("impulse", "zoh", "impulse_start"):
            x = _input(name, inp, T, batch, n, g, dtype)
            (ot, yt, st), (of, yf, sf) = _both(model, inp, method, x)
            assert torch.equal(of, ot), (method, inp, int((of != ot).sum()))
            assert torch.equal(yf, yt) and torch.equal(sf, st), (method, inp)
            spiked += int((ot != 0).sum())
    assert spiked > 0.01 * 6 * T * n * batch[0], "inputs too weak to test the event path"


def test_layouts_threads_and_held_input():
    """Several batch axes, a transposed (batch-first) input, an input held over time (stride 0),
    a long row of neurons split into blocks, two threads: all equal to the torch loop."""
    g = torch.Generator().manual_seed(1)
    model = ctsnn.ALIF(tau_mem=0.01, tau_adapt=0.1, adapt_jump=0.2, reset="subtract")
    for x in (torch.rand(200, 2, 3, 5, generator=g) * 0.6,
              (torch.rand(4, 200, 7, generator=g) * 0.6).transpose(0, 1),
              (torch.rand(1, 6, 9, generator=g) * 0.6).expand(200, 6, 9),
              torch.rand(50, 2, 9000, generator=g) * 0.6):
        for threads in (1, 2):
            old = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                (ot, yt, st), (of, yf, sf) = _both(model, "impulse", "exact", x)
            finally:
                torch.set_num_threads(old)
            assert torch.equal(of, ot) and torch.equal(yf, yt) and torch.equal(sf, st)
            assert ot.sum() > 0


@pytest.mark.parametrize("blk", [7, 64])
@pytest.mark.parametrize("name,inp", [("LIF_to_value", "zoh"), ("CubaLIF", "impulse"), ("LIT", "impulse_start")])
def test_small_blocks_forward_and_gradients(monkeypatch, blk, name, inp):
    """Blocks much shorter than a row, with a short last block (the kernel's block length is an
    argument): forward bit-identical and gradients equal to the torch loop's."""
    from ctsnn.kernels import fused
    monkeypatch.setattr(fused, "_block", lambda M: blk)
    (ot, yt, st), (of, yf, sf) = _both(_models(30, True, torch.Generator().manual_seed(4))[name], inp, "exact",
                                       _input(name, inp, 200, (3,), 30, torch.Generator().manual_seed(5),
                                              torch.float64))
    assert torch.equal(of, ot) and torch.equal(yf, yt) and torch.equal(sf, st) and ot.abs().sum() > 0
    ot, gt, names = _grad_case(name, True, inp, "exact", "atan", False, "torch")
    of, gf, _ = _grad_case(name, True, inp, "exact", "atan", False, "fused")
    assert torch.equal(of, ot)
    for label, a, b in zip(["x", "y0"] + names, gt, gf):
        assert (a is None) == (b is None), label
        if a is not None:
            assert float((a - b).abs().max() / a.abs().max().clamp_min(1e-30)) < 1e-10, label


def test_initial_state_and_continuation():
    """A given initial state, and a run split in two, equal one whole run."""
    g = torch.Generator().manual_seed(2)
    model = ctsnn.CubaLIF(tau_syn=0.004, tau_mem=0.02, v_th=0.5, reset="subtract")
    x = torch.rand(300, 4, 11, generator=g, dtype=torch.float64) * 20
    y0 = torch.rand(4, 11, 2, generator=g, dtype=torch.float64)
    (ot, yt, _), (of, yf, _) = _both(model, "impulse", "exact", x, y0)
    assert torch.equal(of, ot) and torch.equal(yf, yt)
    lf = discretize(model, DT, backend="fused")
    ran = lf.run(x[:120], y0)
    o1, y1 = ran.out, ran.state
    ran = lf.run(x[120:], y1)
    o2, y2 = ran.out, ran.state
    assert torch.equal(torch.cat([o1, o2]), of) and torch.equal(y2, yf)


@pytest.mark.parametrize("opts", [
    dict(reset_delay=True, reset_order="after_decay"),
    dict(reset_delay=True, reset_order="before_decay", detach_reset=True),
    dict(simultaneous_events=True),
    dict(threshold_grad=False),
    dict(multi_spike=True, threshold_grad=False),
    dict(multi_spike=True, state_min={"v": -0.5}),
    dict(detach_reset=("v",), state_min={"v": 0.0}),
])
def test_forward_options_bit_identical(opts):
    """The forward values of the step-peer options (sinabs, tracetorch's order) are fused too."""
    g = torch.Generator().manual_seed(3)
    name = "LIT" if opts.get("simultaneous_events") else "ALIF_th"
    model = _models(13, True, g)[name]
    for dtype in (torch.float64, torch.float32):
        x = _input(name, "impulse", 300, (5,), 13, g, dtype) * 3
        with torch.no_grad():
            (ot, yt, st), (of, yf, sf) = _both(model, "impulse", "exact", x, surrogate="atan", **opts)
            _, (o2, y2) = _both(model, "impulse", "exact", x, record_states=False, surrogate="atan", **opts)
        assert torch.equal(of, ot) and torch.equal(yf, yt) and torch.equal(sf, st), opts
        # without recorded states the kernel takes its store-free loop
        assert torch.equal(o2, ot) and torch.equal(y2, yt), opts
        assert ot.abs().sum() > 0
        if opts.get("multi_spike"):
            assert ot.max() > 1  # several spikes in one step happen


def _grad_case(name, per_neuron, inp, method, surrogate, detach_reset, backend):
    g = torch.Generator().manual_seed(11)
    n, B, T = 9, 3, 300
    model = _models(n, per_neuron, g)[name]
    leaves = {}
    cfg = model.config()
    for k, v in list(cfg.items()):
        if isinstance(v, torch.Tensor) and k in model.params():
            leaves[k] = v.detach().clone().requires_grad_(True)
            cfg[k] = leaves[k]
    model2 = type(model)(**cfg)
    x = _input(name, inp, T, (B,), n, g, torch.float64).requires_grad_(True)
    y0 = (0.2 * torch.rand(B, n, model.n_states, generator=g, dtype=torch.float64)).requires_grad_(True)
    w_out = torch.randn(T, B, n, generator=g, dtype=torch.float64)
    w_st = torch.randn(T, B, n, model.n_states, generator=g, dtype=torch.float64)
    w_y = torch.randn(B, n, model.n_states, generator=g, dtype=torch.float64)
    lay = discretize(model2, DT, method=method, input=inp, surrogate=surrogate, detach_reset=detach_reset,
                     backend=backend)
    ran = lay.run(x, y0, record_states=True)
    out, y, st = ran.out, ran.state, ran.states
    loss = (out * w_out).sum() + (st * w_st).sum() + (y * w_y).sum()
    wrt = [x, y0] + list(leaves.values())
    grads = torch.autograd.grad(loss, wrt, allow_unused=True)
    assert lay.last_backend == backend
    return out, grads, list(leaves)


@pytest.mark.parametrize("name,per_neuron,inp,method,surrogate,detach", [
    ("LIF_subtract", False, "impulse", "exact", "atan", False),
    ("LIF_to_value", True, "zoh", "exact", "fast_sigmoid", False),
    ("LIF_to_value", True, "impulse_start", "euler", "sigmoid", True),
    ("IF", True, "zoh", "euler", "superspike", False),
    ("CubaLIF", True, "impulse", "exact", "atan", False),
    ("CubaLIF", False, "zoh", "euler", "triangle", True),
    ("ALIF_th", True, "impulse", "exact", "fast_sigmoid", False),
    ("ALIF_cur", True, "impulse_start", "exact", "straight_through", False),
    ("ALIF_syn", False, "zoh", "exact", "atan", False),
    ("LIT", True, "impulse", "exact", "atan", False),
])
def test_gradients_match_torch(name, per_neuron, inp, method, surrogate, detach):
    ot, gt, names = _grad_case(name, per_neuron, inp, method, surrogate, detach, "torch")
    of, gf, _ = _grad_case(name, per_neuron, inp, method, surrogate, detach, "fused")
    assert torch.equal(of, ot) and ot.abs().sum() > 0
    assert len(names) > 0 or not per_neuron
    for label, a, b in zip(["x", "y0"] + names, gt, gf):
        assert (a is None) == (b is None), label
        if a is None:
            continue
        scale = a.abs().max().clamp_min(1e-30)
        assert float((a - b).abs().max() / scale) < 1e-10, (label, float((a - b).abs().max()), float(scale))
        assert float(scale) > 0 or label == "y0"


@pytest.mark.parametrize("name,inp", [("LIF_subtract", "impulse"), ("LIF_to_value", "zoh"),
                                      ("CubaLIF", "impulse_start"), ("ALIF_th", "zoh")])
def test_gradients_without_parameter_gradients(name, inp):
    """No parameter requires grad (the kernel then accumulates none): the input and initial-state
    gradients are those of the torch loop."""
    g = torch.Generator().manual_seed(13)
    model = _models(9, True, g)[name]
    x0 = _input(name, inp, 300, (3,), 9, g, torch.float64)
    y00 = 0.2 * torch.rand(3, 9, model.n_states, generator=g, dtype=torch.float64)
    w = torch.randn(300, 3, 9, generator=g, dtype=torch.float64)
    res = {}
    for backend in ("torch", "fused"):
        x, y0 = x0.clone().requires_grad_(True), y00.clone().requires_grad_(True)
        lay = discretize(model, DT, input=inp, surrogate="atan", backend=backend)
        assert not any(p.requires_grad for p in lay.parameters())
        ran = lay.run(x, y0)
        out, y = ran.out, ran.state
        res[backend] = torch.autograd.grad((out * w).sum() + y.sum(), [x, y0])
        assert lay.last_backend == backend
    for a, b in zip(res["torch"], res["fused"]):
        assert float(a.abs().max()) > 0
        assert float((a - b).abs().max() / a.abs().max()) < 1e-10


def test_gradients_float32_and_learn_decay():
    """float32 gradients close to the float64 torch path's, and learned decay factors."""
    g = torch.Generator().manual_seed(5)
    model = ctsnn.LIF(tau_mem=0.01, v_th=1.0, reset="subtract")
    x64 = (torch.rand(300, 4, 16, generator=g, dtype=torch.float64) * 0.4)
    res = {}
    for backend in ("torch", "fused"):
        for dtype in (torch.float64, torch.float32):
            lay = discretize(model, DT, learn_decay=True, backend=backend)
            if dtype == torch.float32:
                lay = lay.float()
            x = x64.to(dtype).detach().clone().requires_grad_(True)
            out = lay.run(x).out
            (out * torch.linspace(-1, 1, 16, dtype=dtype)).sum().backward()
            res[backend, dtype] = (out.detach(), x.grad, lay.decay.grad)
            assert lay.last_backend == backend
    for k in range(3):
        assert torch.allclose(res["fused", torch.float64][k], res["torch", torch.float64][k], rtol=1e-10, atol=1e-12)
        assert torch.allclose(res["fused", torch.float32][k], res["torch", torch.float32][k], rtol=1e-4, atol=1e-5)


def test_fallbacks_and_reasons(monkeypatch):
    """What the kernel does not cover runs the torch loop; backend='fused' says why not."""
    x = torch.rand(20, 2, 3)
    lif = ctsnn.LIF(tau_mem=0.01, reset="subtract")
    cases = [discretize(lif, DT, surrogate=lambda g: (g > 0).float()),  # untagged callable
             discretize(ctsnn.DualLIT(tau_pos=0.01, tau_neg=0.02), DT),
             discretize(lif, DT, state_map=lambda y: y)]
    for lay in cases:
        lay.run(x)
        assert lay.last_backend == "torch"
        lay.backend = "fused"
        with pytest.raises(ValueError, match="backend='fused' cannot run this layer"):
            lay.run(x)
    # gradients through an option the backward does not cover: the torch loop
    for lay in (discretize(ctsnn.ALIF(tau_mem=0.01, tau_adapt=0.1, adapt_jump=0.1), DT, multi_spike=True),
                discretize(lif, DT, reset_delay=True)):
        lay.run(x.clone().requires_grad_(True))
        assert lay.last_backend == "torch"
        with torch.no_grad():
            lay.run(x)
        assert lay.last_backend == "fused"
    # disabled by the environment
    monkeypatch.setenv("CTSNN_KERNELS", "0")
    lay = discretize(lif, DT)
    lay.run(x)
    assert lay.last_backend == "torch"
    with pytest.raises(ValueError, match="backend must be"):
        discretize(lif, DT, backend="cuda")


def test_compiler_failure_falls_back(monkeypatch, tmp_path):
    """A compiler that fails gives one warning and the torch path, with the same results."""
    bad = tmp_path / "badcxx"
    bad.write_text("#!/bin/sh\necho 'no compiler here' >&2\nexit 1\n")
    bad.chmod(0o755)
    monkeypatch.setenv("CXX", str(bad))
    monkeypatch.setenv("CTSNN_CACHE", str(tmp_path / "cache"))
    lay = discretize(ctsnn.LIF(tau_mem=0.0123, reset="subtract"), DT)
    x = torch.rand(30, 2, 5) * 0.5
    with pytest.warns(RuntimeWarning, match="could not compile"):
        out = lay.run(x).out
    assert lay.last_backend == "torch"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lay.run(x)  # not retried, no second warning
    assert torch.equal(out, discretize(lay.model, DT, backend="torch").run(x).out)


def test_cache_is_reused(monkeypatch, tmp_path):
    monkeypatch.setenv("CTSNN_CACHE", str(tmp_path))
    defines = {"SCALAR": "double", "NS": 1, "NE": 1, "MODE": 0, "EULER": 0, "AT_ZERO": 1, "SIMUL": 0,
               "SPLIT": 0, "MULTI": 0, "HASMIN": 0, "IV": 0, "PSHARED": 1, "TESTKEY": 7}
    assert build.load(defines) is not None
    files = list(tmp_path.glob("*.so"))
    assert len(files) == 1
    build._LIBS.clear()
    assert build.load(defines) is not None
    assert list(tmp_path.glob("*.so")) == files  # loaded from the cache, not rebuilt


@pytest.mark.parametrize("backend", ["fused", "torch"])
def test_out_buffer(backend):
    """run(out=buf) writes into buf (both paths); refused where gradients are needed."""
    x = torch.rand(100, 3, 7) * 0.5
    lay = discretize(ctsnn.LIF(tau_mem=0.01, reset="subtract"), DT, backend=backend)
    buf = torch.empty_like(x)
    o = lay.run(x, out=buf).out
    assert o.data_ptr() == buf.data_ptr() and torch.equal(o, lay.run(x).out) and lay.last_backend == backend
    with pytest.raises(ValueError, match="without gradients"):
        lay.run(x.clone().requires_grad_(True), out=buf)
    if backend == "fused":
        with pytest.raises(ValueError, match="out: needs a contiguous"):
            lay.run(x, out=torch.empty(100, 3, 8))


@pytest.mark.parametrize("backend", ["fused", "torch"])
def test_sparse_output_and_stream_equal_dense(backend):
    g = torch.Generator().manual_seed(8)
    x = torch.rand(300, 4, 50, generator=g, dtype=torch.float64) * 0.6
    lay = discretize(ctsnn.LIT(tau_mem=0.01, pos_th=1.0, neg_th=0.5), DT, backend=backend)
    ran = lay.run(2 * x - 0.6)
    o, y = ran.out, ran.state
    ran = lay.run(2 * x - 0.6, output="sparse")
    sp, ys = ran.spikes, ran.state
    assert lay.last_backend == backend
    assert len(sp) == int((o != 0).sum()) > 0 and torch.equal(sp.dense(), o) and torch.equal(ys, y)
    assert torch.equal(sp.spike_times, (sp.spike_steps + 1).double() * DT)
    assert bool((sp.spike_values < 0).any()) and bool((sp.spike_values > 0).any())  # both ternary signs
    for src, kw in ((2 * x - 0.6, {}), (lambda a, b: (2 * x - 0.6)[a:b], {"steps": 300})):
        ran = lay.stream(src, chunk=77, **kw)
        st, yst = ran.spikes, ran.state
        assert torch.equal(st.dense(), o) and torch.equal(yst, y)
        assert torch.equal(st.spike_steps, sp.spike_steps) and torch.equal(st.spike_neurons, sp.spike_neurons)
    held = lay.stream(torch.full((1, 2, 3), 0.3, dtype=torch.float64), steps=500, chunk=64).spikes
    dense_held = lay.run(torch.full((500, 2, 3), 0.3, dtype=torch.float64)).out
    assert torch.equal(held.dense(), dense_held)
    with pytest.raises(ValueError, match="steps is required"):
        lay.stream(lambda a, b: x[a:b])
    with pytest.raises(ValueError, match="returned 3 steps"):
        lay.stream(lambda a, b: x[:3], steps=10)
    with pytest.raises(ValueError, match="output must be"):
        lay.run(x, output="csr")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_stream_memory_is_bounded():
    """2e5 steps of 1000 neurons with a callback (a dense float32 output would be 800 MB, the
    spikes 76 MB): the process's peak memory does not grow past a 2e4-step run's; 1e5 steps
    keeping the spikes: it grows by the spikes kept (12 bytes each), within 3x.

    Measured in a fresh process whose glibc allocator serves every block over 128 kB by mmap
    (``MALLOC_MMAP_THRESHOLD_``), so freed chunks go back to the OS at once and the peak does not
    depend on how earlier blocks happened to fragment the heap (without it the growth of the
    callback run varied from 0 to 43 MB between runs on a loaded machine; with it, 0.0 MB and
    70.7 MB for the kept spikes in every run)."""
    import os
    import subprocess
    import sys
    code = """
import torch, ctsnn
def hwm():  # peak RSS of this address space, in kB (ru_maxrss would include the parent's, via fork)
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1])
torch.set_num_threads(1)
lay = ctsnn.discretize(ctsnn.LIF(tau_mem=0.01, reset="subtract"), 1e-3)
lay.stream(torch.rand(20, 1000) * 0.05, steps=20, chunk=10)   # warm up: compile, allocate
g = torch.Generator().manual_seed(0)
src = lambda a, b: torch.rand(b - a, 1000, generator=g) * 0.19
counts = []
lay.stream(src, steps=20_000, chunk=2000, callback=lambda sp: None)   # the allocator's working set
base = hwm()
lay.stream(src, steps=200_000, chunk=2000, callback=lambda sp: counts.append(len(sp)))
mid = hwm()
ran = lay.stream(src, steps=100_000, chunk=2000)
sp, y = ran.spikes, ran.state
peak = hwm()
print(sum(counts), len(sp), (mid - base) / 1024, (peak - mid) / 1024)
"""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr
    n_cb, n_kept, grown_cb, grown_kept = (float(v) for v in r.stdout.split())
    assert 1e5 < n_cb < 2e7 and 1e5 < n_kept < 1e7  # it spiked, sparsely (a few % of the steps)
    spikes_cb, spikes_kept = 12 * n_cb / 2**20, 12 * n_kept / 2**20   # MB, had they been kept
    assert grown_cb < 0.2 * spikes_cb, (grown_cb, spikes_cb)   # keeps neither the output nor the spikes
    assert spikes_kept < grown_kept < 20 + 3 * spikes_kept, (grown_kept, spikes_kept)


def _spike_list(times, neurons):
    return sorted(zip(neurons.tolist(), times.tolist()))


@pytest.mark.parametrize("name,dt", [("LIF", 1e-3), ("LIF_subtract", 5e-3), ("IF", 1e-3), ("LIF_leak", 2e-3)])
def test_in_step_events_equal_simulate_exact(name, dt):
    """events='in_step': spike times located inside the step equal simulate(method='exact') to
    1e-12 s (float64), on both paths, with several spikes per step where the drive is strong."""
    g = torch.Generator().manual_seed(21)
    n, T = 16, int(round(0.3 / dt))
    model = {"LIF": ctsnn.LIF(tau_mem=_rand(n, 0.01, 0.03, g), v_th=1.0, v_reset=_rand(n, -0.2, 0.3, g)),
             "LIF_subtract": ctsnn.LIF(tau_mem=0.02, v_th=_rand(n, 0.5, 1.0, g), reset="subtract"),
             "IF": ctsnn.IF(r=_rand(n, 20.0, 60.0, g), v_th=1.0),
             "LIF_leak": ctsnn.LIF(tau_mem=0.015, v_leak=-0.3, r=_rand(n, 0.8, 1.2, g), v_th=0.5,
                                   v_reset=-0.3)}[name]
    x = (0.6 + 3.0 * torch.rand(T, n, generator=g, dtype=torch.float64))
    ref = ctsnn.simulate(model, current=x, t_end=T * dt, dt=dt, method="exact", dtype=torch.float64)
    want = _spike_list(ref.spike_times, ref.spike_neurons)
    for backend in ("fused", "torch"):
        lay = discretize(model, dt, input="zoh", events="in_step", backend=backend)
        ran = lay.run(x, output="sparse")
        sp, y = ran.spikes, ran.state
        assert lay.last_backend == backend
        got = _spike_list(sp.spike_times, sp.spike_neurons)
        assert len(got) == len(want) > 3 * n
        assert [a[0] for a in got] == [b[0] for b in want]
        assert max(abs(a[1] - b[1]) for a, b in zip(got, want)) < 1e-12
        with torch.no_grad():
            counts = lay.run(x).out
        assert torch.equal(sp.dense(), counts)
        if dt == 5e-3:
            assert counts.max() >= 2  # several spikes inside one step
        assert torch.allclose(y[..., 0], ref["v"][-1], rtol=0, atol=1e-12)


def test_in_step_fused_equals_torch_and_float32():
    g = torch.Generator().manual_seed(22)
    model = ctsnn.LIF(tau_mem=0.02, v_th=1.0, v_reset=0.1)
    x = 0.5 + 1.5 * torch.rand(400, 3, 33, generator=g, dtype=torch.float64)
    for dtype, tol in ((torch.float64, 1e-14), (torch.float32, 2e-6)):
        res = {}
        for backend in ("fused", "torch"):
            lay = discretize(model, 1e-3, input="zoh", events="in_step", backend=backend)
            with torch.no_grad():
                res[backend] = _fields(lay.run(x.to(dtype), record_states=True)), \
                    lay.run(x.to(dtype), output="sparse").spikes
        (of, yf, sf), spf = res["fused"]
        (ot, yt, st), spt = res["torch"]
        assert torch.equal(of, ot) and of.sum() > 100
        assert float((sf - st).abs().max()) < tol and float((spf.spike_offsets - spt.spike_offsets).abs().max()) < tol * 1e-3
        assert torch.equal(spf.spike_steps, spt.spike_steps) and torch.equal(spf.spike_neurons, spt.spike_neurons)


def test_in_step_refuses_what_it_cannot_do():
    lif = ctsnn.LIF(tau_mem=0.02)
    for kw, match in ((dict(input="impulse"), "input"), (dict(method="euler"), "euler"),
                      (dict(reset_delay=True), "reset_delay")):
        with pytest.raises(ValueError, match=match):
            discretize(lif, 1e-3, events="in_step", **{"input": "zoh", **kw})
    with pytest.raises(ValueError, match="CubaLIF"):
        discretize(ctsnn.CubaLIF(tau_syn=0.005, tau_mem=0.02), 1e-3, input="zoh", events="in_step")
    with pytest.raises(ValueError, match="events must be"):
        discretize(lif, 1e-3, events="exact")
    lay = discretize(lif, 1e-3, input="zoh", events="in_step")
    with pytest.raises(ValueError, match="simulate"):
        lay.run(torch.rand(10, 3, requires_grad=True))
