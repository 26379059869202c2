"""ctsnn.kernels.pool: large kernel tensors reuse freed memory, and never memory still in use.

The sizes here are above the pool's MIN_BYTES (8 MB), so the pool is engaged; every result is
checked against the torch loop (which does not use the pool)."""
import gc

import pytest
import torch

import ctsnn
from ctsnn import discretize
from ctsnn.kernels import build, pool

pytestmark = pytest.mark.skipif(not build.available(), reason="no C++ compiler")

T, B, N = 100, 8, 4096  # float32 [T, B, N]: 13 MB


@pytest.fixture(autouse=True)
def _clean_pool():
    pool.empty_cache()
    yield
    gc.collect()
    pool.empty_cache()


def _x(seed, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    return (0.4 * torch.rand(T, B, N, generator=g)).requires_grad_(requires_grad)


def _layer(backend):
    return discretize(ctsnn.LIF(tau_mem=0.01, v_th=1.0, reset="subtract"), 1e-3, surrogate="atan",
                      backend=backend)


def test_freed_memory_is_reused_and_live_memory_is_not():
    a = pool.empty((T, B, N), torch.float32)
    pa = a.data_ptr()
    b = pool.empty((T, B, N), torch.float32)  # a is alive: new memory
    assert b.data_ptr() != pa
    view = a[1:]
    del a
    c = pool.empty((T, B, N), torch.float32)  # a's view is alive: still not a's memory
    assert c.data_ptr() != pa
    del view
    assert pool.held_bytes() == T * B * N * 4
    d = pool.empty((T, B, N), torch.float32)  # now a's memory comes back
    assert d.data_ptr() == pa and pool.held_bytes() == 0
    assert pool.empty((T, B, N), torch.float64).data_ptr() != pa  # another dtype: other memory
    small = pool.empty((10, 10), torch.float32)  # below MIN_BYTES: a plain tensor
    del small
    assert pool.held_bytes() == T * B * N * 8  # only the float64 one came back


def test_limit_and_switch(monkeypatch):
    monkeypatch.setenv("CTSNN_POOL_MB", "20")  # room for one 13 MB buffer
    a, b = pool.empty((T, B, N), torch.float32), pool.empty((T, B, N), torch.float32)
    del a, b
    assert pool.held_bytes() == T * B * N * 4
    monkeypatch.setenv("CTSNN_POOL_MB", "0")
    pool.empty_cache()
    c = pool.empty((T, B, N), torch.float32)
    del c
    assert pool.held_bytes() == 0
    monkeypatch.setenv("CTSNN_POOL_MB", "lots")
    with pytest.raises(ValueError, match="CTSNN_POOL_MB"):
        pool.empty((T, B, N), torch.float32)


def test_forward_on_reused_memory_equals_torch():
    """The output of the second run lies on the first run's memory (with its old spikes)."""
    lf, lt = _layer("fused"), _layer("torch")
    with torch.no_grad():
        first = lf.run(_x(0) * 3).out
        p = first.data_ptr()
        del first
        ran = lf.run(_x(1), record_states=True)
        out, y, st = ran.out, ran.state, ran.states
        assert out.data_ptr() == p and lf.last_backend == "fused"
        ran = lt.run(_x(1), record_states=True)
        ref, yr, sr = ran.out, ran.state, ran.states
    assert torch.equal(out, ref) and torch.equal(y, yr) and torch.equal(st, sr) and ref.sum() > 0


def _grad(layer, x, w):
    out = layer.run(x).out
    (out * w).sum().backward()
    return out.detach(), x.grad


def test_graphs_alive_together_and_retain_graph():
    """Two graphs alive at once, and a retained graph reused after other runs: each backward
    reads its own saved buffers (gradients equal to the torch loop's)."""
    lf, lt = _layer("fused"), _layer("torch")
    w = torch.randn(T, B, N, generator=torch.Generator().manual_seed(9))
    ref = {s: _grad(lt, _x(s, True), w) for s in (1, 2)}
    x1, x2 = _x(1, True), _x(2, True)
    o1 = lf.run(x1).out
    o2 = lf.run(x2).out  # o1's graph is alive: o2's buffers are other memory
    l1, l2 = (o1 * w).sum(), (o2 * w).sum()
    l1.backward(retain_graph=True)
    g1 = x1.grad.clone()
    l2.backward()
    del o2, l2
    for s in (3, 4):  # more graphs, made and freed, while l1's is retained
        o = lf.run(_x(s, True)).out
        (o * w).sum().backward()
        del o
    x1.grad = None
    l1.backward()
    for s, (xg, og) in ((1, (x1.grad, o1)), (2, (x2.grad, None))):
        rs, rg = ref[s]
        assert torch.allclose(xg, rg, rtol=1e-5, atol=1e-6), s
        if og is not None:
            assert torch.equal(og.detach(), rs)
    assert torch.equal(g1, x1.grad)
    assert lf.last_backend == "fused" and float(g1.abs().sum()) > 0
