"""ctsnn.compat.norse against the installed norse (1.1.0): spikes, states and gradients."""
import pytest
import torch

NF = pytest.importorskip("norse.torch.functional.lsnn")
NM = pytest.importorskip("norse.torch.module.lsnn")
from norse.torch.functional.threshold import threshold as norse_threshold  # noqa: E402

from ctsnn import surrogate  # noqa: E402
from ctsnn.compat import norse as C  # noqa: E402

pytestmark = pytest.mark.peers

T = 300
# measured max |ours - norse| (2026-12-03): states 4.2e-14 (float64), 2.2e-5 (float32, relative
# 3.8e-3 where values are small); gradients over their scale 5.4e-13 (float64), 6.2e-6 (float32)
TOL = {torch.float64: dict(rtol=0, atol=5e-13), torch.float32: dict(rtol=1e-5, atol=1e-5)}
GTOL = {torch.float64: dict(rtol=0, atol=5e-12), torch.float32: dict(rtol=1e-5, atol=1e-5)}


def _params(n, dtype, per_neuron, grad=True, **over):
    g = torch.Generator().manual_seed(11)
    r = (lambda lo, hi: torch.rand(n, generator=g, dtype=dtype) * (hi - lo) + lo) if per_neuron else \
        (lambda lo, hi: (torch.rand((), generator=g, dtype=dtype) * (hi - lo) + lo))
    d = dict(tau_syn_inv=r(100, 300), tau_mem_inv=r(50, 150), tau_adapt_inv=r(1, 20), v_leak=r(-0.1, 0.1),
             v_th=r(0.6, 1.0), v_reset=r(-0.2, 0.1), beta=r(0.05, 0.4))
    if grad:
        d = {k: v.clone().requires_grad_(True) for k, v in d.items()}
    d.update(over)
    return d


def _run(step, x, state, *args):
    zs, sts = [], []
    for t in range(x.shape[0]):
        z, state = step(x[t], state, *args)
        zs.append(z)
        sts.append(torch.stack([torch.broadcast_to(getattr(state, f), z.shape) for f in ("v", "i", "b")]))
    return torch.stack(zs), torch.stack(sts)


def _compare(Zn, Sn, Zc, Sc, wrt, dtype):
    assert torch.equal(Zn, Zc.to(Zn.dtype)), "spikes differ"
    assert Zn.sum() > 0.05 * Zn.numel(), "too few spikes for a meaningful test"
    assert Zn.sum() < 0.6 * Zn.numel()
    torch.testing.assert_close(Sc, Sn, **TOL[dtype])
    loss_n = (Sn[:, 0] ** 2).sum() + Sn[:, 2].sum() + (Zn * torch.linspace(0, 1, Zn.shape[-1], dtype=dtype)).sum()
    loss_c = (Sc[:, 0] ** 2).sum() + Sc[:, 2].sum() + (Zc * torch.linspace(0, 1, Zc.shape[-1], dtype=dtype)).sum()
    gn = torch.autograd.grad(loss_n, wrt, allow_unused=True)
    gc = torch.autograd.grad(loss_c, wrt, allow_unused=True)
    for a, b in zip(gc, gn):
        if b is None:
            assert a is None or not a.any()
            continue
        scale = max(1.0, float(b.abs().max()))
        torch.testing.assert_close(a / scale, b / scale, **GTOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kind", ["feed_forward", "lsnn", "ada_lif"])
def test_steps_match_norse(kind, dtype):
    torch.manual_seed(5)
    n, B, nin = 7, 3, 5
    pd = _params(n, dtype, per_neuron=True)
    pn, pc = NF.LSNNParameters(**pd), C.LSNNParameters(**pd)
    z0 = torch.zeros(B, n, dtype=dtype)
    v0 = (torch.rand(B, n, dtype=dtype) * 0.5).requires_grad_(True)
    if kind == "feed_forward":
        x = (torch.rand(T, B, n, dtype=dtype) * 0.9).requires_grad_(True)
        s0 = NF.LSNNFeedForwardState(v0, z0, pd["v_th"].detach().expand(B, n))
        Zn, Sn = _run(NF.lsnn_feed_forward_step, x, s0, pn)
        Zc, Sc = _run(C.lsnn_feed_forward_step, x, C.LSNNFeedForwardState(*s0), pc)
        wrt = [x, v0] + list(pd.values())
    else:
        x = (torch.rand(T, B, nin, dtype=dtype) < 0.3).to(dtype).requires_grad_(True)
        Win = (torch.randn(n, nin, dtype=dtype) * 1.0 + 0.6).requires_grad_(True)
        Wrec = (torch.randn(n, n, dtype=dtype) * 0.3).requires_grad_(True)
        b0 = pd["v_th"].detach().expand(B, n) if kind == "lsnn" else torch.rand(B, n, dtype=dtype) * 0.1
        s0 = NF.LSNNState(z0, v0, z0, b0)
        fn, fc = (NF.lsnn_step, C.lsnn_step) if kind == "lsnn" else (NF.ada_lif_step, C.ada_lif_step)
        Zn, Sn = _run(fn, x, s0, Win, Wrec, pn)
        Zc, Sc = _run(fc, x, C.LSNNState(*s0), Win, Wrec, pc)
        wrt = [x, v0, Win, Wrec] + list(pd.values())
    _compare(Zn, Sn, Zc, Sc, wrt, dtype)


@pytest.mark.parametrize("method,alpha", [("super", 100.0), ("triangle", 0.7), ("tanh", 3.0),
                                          ("circ", 0.5), ("heavi_erfc", 2.0), ("heaviside", 1.0)])
def test_scalar_params_and_methods(method, alpha):
    torch.manual_seed(6)
    n, B, dtype = 6, 2, torch.float64
    pd = _params(n, dtype, per_neuron=False, grad=method == "super")  # the other methods: input gradients
    pn = NF.LSNNParameters(**pd, method=method, alpha=alpha)
    pc = C.LSNNParameters(**pd, method=method, alpha=alpha)
    x = (torch.rand(T, B, n, dtype=dtype) * 0.9).requires_grad_(True)
    z0 = torch.zeros(B, n, dtype=dtype)
    s0 = NF.LSNNFeedForwardState(z0, z0, pd["v_th"].detach())
    Zn, Sn = _run(NF.lsnn_feed_forward_step, x, s0, pn)
    Zc, Sc = _run(C.lsnn_feed_forward_step, x, C.LSNNFeedForwardState(*s0), pc)
    _compare(Zn, Sn, Zc, Sc, [x] + [v for v in pd.values() if v.requires_grad], dtype)


@pytest.mark.parametrize("method,alpha", [("super", 100.0), ("super", 3.0), ("triangle", 0.3), ("tanh", 2.0),
                                          ("circ", 0.7), ("heavi_erfc", 1.5), ("heaviside", 0.0)])
def test_surrogates_match_norse(method, alpha):
    g = torch.cat([torch.linspace(-3, 3, 601, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)])
    name, key = C._METHODS[method]
    ours = surrogate.get(name, **({} if key is None else {key: alpha}))
    a, b = g.clone().requires_grad_(True), g.clone().requires_grad_(True)
    sa, sb = ours(a), norse_threshold(b, method, alpha)
    assert torch.equal(sa, sb)
    if method == "heaviside":  # norse's plain step has no graph; ours has a zero gradient
        assert not sb.requires_grad and not torch.autograd.grad(sa.sum(), a)[0].any()
        return
    (ga,), (gb,) = torch.autograd.grad(sa.sum(), a), torch.autograd.grad(sb.sum(), b)
    torch.testing.assert_close(ga, gb, rtol=1e-12, atol=1e-14)


def _module_pair(cls_name, seed, **kw):
    torch.manual_seed(seed)
    theirs = getattr(NM, cls_name)(**kw)
    torch.manual_seed(seed)
    ours = getattr(C, cls_name)(**{k: (C.LSNNParameters(*v) if k == "p" else v) for k, v in kw.items()})
    return theirs, ours


@pytest.mark.parametrize("record", [False, True])
def test_sequence_modules_match_norse(record):
    n, nin, B = 6, 4, 2
    pd = _params(n, torch.float32, per_neuron=True)
    pd["v_th"] = torch.tensor(0.8)  # norse's initial_state needs a scalar v_th and v_leak
    pd["v_leak"] = torch.tensor(0.05)
    p = NF.LSNNParameters(**pd)
    theirs, ours = _module_pair("LSNNRecurrent", 3, input_size=nin, hidden_size=n, p=p, record_states=record)
    torch.testing.assert_close(ours.input_weights, theirs.input_weights, rtol=0, atol=0)
    torch.testing.assert_close(ours.recurrent_weights, theirs.recurrent_weights, rtol=0, atol=0)
    x = (torch.rand(T, B, nin) < 0.4).float().requires_grad_(True)
    with torch.no_grad():
        for m in (ours, theirs):
            m.input_weights.mul_(2.0).add_(0.5)
    zn, sn = theirs(x)
    zc, sc = ours(x)
    assert type(sc).__name__ == "LSNNState"
    assert torch.equal(zn, zc) and zn.sum() > 0.05 * zn.numel()
    for f in ("z", "v", "i", "b"):
        torch.testing.assert_close(getattr(sc, f), getattr(sn, f), rtol=1e-5, atol=1e-5)
    ln = (zn * torch.arange(n)).sum() + (sn.v ** 2).sum()
    lc = (zc * torch.arange(n)).sum() + (sc.v ** 2).sum()
    wn = [x, theirs.input_weights, theirs.recurrent_weights, pd["tau_mem_inv"], pd["beta"]]
    wc = [x, ours.input_weights, ours.recurrent_weights, pd["tau_mem_inv"], pd["beta"]]
    gn = torch.autograd.grad(ln, wn)
    gc = torch.autograd.grad(lc, wc)
    for a, b in zip(gc, gn):
        scale = max(1.0, float(b.abs().max()))
        torch.testing.assert_close(a / scale, b / scale, rtol=1e-4, atol=1e-4)
    assert not gc[2].diagonal().any()  # autapse gradients removed as in norse

    theirs, ours = NM.LSNN(p=p, record_states=record), C.LSNN(p=C.LSNNParameters(*p), record_states=record)
    x = (torch.rand(T, B, n) * 0.9).requires_grad_(True)
    zn, sn = theirs(x)
    zc, sc = ours(x)
    assert torch.equal(zn, zc) and zn.sum() > 0.05 * zn.numel()
    for f in ("v", "i", "b"):
        torch.testing.assert_close(getattr(sc, f), getattr(sn, f), rtol=1e-5, atol=1e-5)
    (gn,), (gc,) = torch.autograd.grad(sn.v.sum(), x), torch.autograd.grad(sc.v.sum(), x)
    torch.testing.assert_close(gc, gn, rtol=1e-4, atol=1e-4)


def test_cells_match_norse():
    n, nin, B = 5, 3, 4
    # tau_adapt = 0.2 s: with norse's default 800 s the float32 b increment is below b's resolution
    # (see test_float32_default_adaptation_drift)
    p = NF.LSNNParameters(tau_mem_inv=torch.tensor(150.0), v_th=torch.tensor(0.7), beta=torch.tensor(0.3),
                          tau_adapt_inv=torch.tensor(5.0))
    theirs, ours = _module_pair("LSNNRecurrentCell", 9, input_size=nin, hidden_size=n, p=p, autapses=True)
    torch.testing.assert_close(ours.recurrent_weights, theirs.recurrent_weights, rtol=0, atol=0)
    with torch.no_grad():
        for m in (ours, theirs):
            m.input_weights.abs_().mul_(3)
    sn = sc = None
    total = 0
    for t in range(T):
        x = (torch.rand(B, nin) < 0.5).float()
        zn, sn = theirs(x, sn)
        zc, sc = ours(x, sc)
        assert torch.equal(zn, zc)
        total += int(zn.sum())
        for f in ("z", "v", "i", "b"):
            torch.testing.assert_close(getattr(sc, f), getattr(sn, f), rtol=1e-5, atol=1e-5)
    assert total > 0.05 * T * B * n
    theirs, ours = NM.LSNNCell(p=p), C.LSNNCell(p=C.LSNNParameters(*p), dt=0.001)
    sn = sc = None
    for t in range(T):
        x = torch.rand(B, n) * 0.9
        zn, sn = theirs(x, sn)
        zc, sc = ours(x, sc)
        assert torch.equal(zn, zc)
        for f in ("v", "i", "b"):
            torch.testing.assert_close(getattr(sc, f), getattr(sn, f), rtol=1e-5, atol=1e-5)


def test_float32_default_adaptation_drift():
    """norse's default tau_adapt = 800 s: dt/tau_adapt * (v_th - b) ~ 2e-6 is below float32's resolution
    at b ~ 2.5, so norse and ctsnn both drift from the float64 recursion by ~1e-5 over 300 steps (in
    different directions: ctsnn stores b - v_th).  Check both stay that close to float64."""
    torch.manual_seed(0)
    n, B = 5, 4
    X = torch.rand(T, B, n) * 0.9

    def run(mod, dtype):
        p = mod.LSNNParameters(tau_mem_inv=torch.tensor(150.0, dtype=dtype), v_th=torch.tensor(0.7, dtype=dtype),
                               beta=torch.tensor(0.3, dtype=dtype), tau_syn_inv=torch.tensor(200.0, dtype=dtype),
                               tau_adapt_inv=torch.tensor(1 / 800, dtype=dtype))
        s = mod.LSNNFeedForwardState(torch.zeros(B, n, dtype=dtype), torch.zeros(B, n, dtype=dtype),
                                     torch.full((B, n), 0.7, dtype=dtype))
        out, zs = [], []
        for t in range(T):
            z, s = mod.lsnn_feed_forward_step(X[t].to(dtype), s, p)
            out.append(torch.stack(list(s)).double())
            zs.append(z.double())
        return torch.stack(zs), torch.stack(out)

    z64, ref = run(NF, torch.float64)
    zc64, c64 = run(C, torch.float64)
    assert torch.equal(z64, zc64)
    torch.testing.assert_close(c64, ref, rtol=0, atol=5e-13)          # measured 5.2e-14
    for mod in (NF, C):
        z32, s32 = run(mod, torch.float32)
        assert torch.equal(z32, z64)
        assert (s32 - ref).abs().max() < 5e-5


def test_namedtuples_like_norse():
    assert C.LSNNParameters._fields == NF.LSNNParameters._fields
    assert C.LSNNState._fields == NF.LSNNState._fields
    assert C.LSNNFeedForwardState._fields == NF.LSNNFeedForwardState._fields
    for a, b in zip(C.LSNNParameters(), NF.LSNNParameters()):
        assert (a == b) if isinstance(a, (str, float)) else torch.equal(a, b)
    q = C.LSNNParameters()._replace(beta=torch.tensor(0.5))
    assert float(q.beta) == 0.5 and q.method == "super"


def test_bad_input_errors():
    x = torch.rand(2, 3)
    s = C.LSNNFeedForwardState(torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(2, 3))
    with pytest.raises(ValueError, match="tau_mem_inv"):
        C.lsnn_feed_forward_step(x, s, C.LSNNParameters(tau_mem_inv=torch.tensor(-1.0)))
    with pytest.raises(ValueError, match="tau_adapt_inv"):
        C.lsnn_feed_forward_step(x, s, C.LSNNParameters(tau_adapt_inv=torch.tensor(0.0)))
    with pytest.raises(ValueError, match="v_th"):
        C.lsnn_feed_forward_step(x, s, C.LSNNParameters(v_th=torch.tensor(float("nan"))))
    with pytest.raises(ValueError, match="v_reset"):
        C.lsnn_feed_forward_step(x, s, C.LSNNParameters(v_reset=torch.tensor(2.0)))
    with pytest.raises(ValueError, match="method"):
        C.lsnn_feed_forward_step(x, s, C.LSNNParameters(method="bogus"))
    with pytest.raises(ValueError, match="dt"):
        C.lsnn_feed_forward_step(x, s, dt=0.0)
    with pytest.raises(ValueError, match="input_tensor"):
        C.lsnn_feed_forward_step(torch.rand(2, 4), s, C.LSNNParameters(beta=torch.rand(3)))
    with pytest.raises(ValueError, match="state"):
        C.lsnn_feed_forward_step(torch.rand(2, 4), s)
    with pytest.raises(ValueError, match="state"):
        C.lsnn_feed_forward_step(x, (1, 2))
    z = torch.zeros(2, 3)
    rs = C.LSNNState(z, z, z, z + 1)
    with pytest.raises(ValueError, match="input_weights"):
        C.lsnn_step(torch.rand(2, 4), rs, torch.rand(3, 5), torch.rand(3, 3))
    with pytest.raises(ValueError, match="recurrent_weights"):
        C.ada_lif_step(torch.rand(2, 4), rs, torch.rand(3, 4), torch.rand(3, 2))
    with pytest.raises(ValueError, match="adjoint"):
        C.LSNN(adjoint=True)
    with pytest.raises(ValueError, match="hidden_size"):
        C.LSNNRecurrent(3, 0)


def test_functional_cache_follows_parameter_changes():
    x = torch.rand(2, 3) * 3
    s = NF.LSNNFeedForwardState(torch.full((2, 3), 0.5), torch.rand(2, 3), torch.ones(2, 3))
    th = torch.tensor(1.0)
    for v_th in (1.0, 0.2, 0.6):
        p = NF.LSNNParameters(v_th=th)
        with torch.no_grad():
            th.fill_(v_th)  # in place: same tensor object, new version
        for q in (p, NF.LSNNParameters(v_th=torch.tensor(v_th), beta=torch.tensor(v_th))):
            zn, sn = NF.lsnn_feed_forward_step(x, s, q)
            zc, sc = C.lsnn_feed_forward_step(x, C.LSNNFeedForwardState(*s), C.LSNNParameters(*q))
            assert torch.equal(zn, zc)
            for a, b in zip(sc, sn):
                torch.testing.assert_close(a, b)


# ------------------------------------------------ which input shapes are accepted, as in norse
_SHAPES = [(), (0,), (3,), (1, 3), (2, 3), (0, 3), (3, 0), (2, 0, 3), (4, 2, 3)]


def _outcome(fn):
    """('ok', output shapes, (spikes, state)) or ('refused', exception, None)."""
    try:
        z, s = fn()
    except Exception as exc:  # noqa: BLE001 - norse refuses with whatever its code raises
        return "refused", exc, None
    return "ok", (tuple(z.shape), tuple(s.v.shape)), (z, s)


def _same_verdict(norse_fn, ours_fn):
    n, c = _outcome(norse_fn), _outcome(ours_fn)
    assert n[0] == c[0], f"norse: {n}, ctsnn: {c}"
    if n[0] == "ok":
        assert n[1] == c[1], f"output shapes: norse {n[1]}, ctsnn {c[1]}"
        (zn, sn), (zc, sc) = n[2], c[2]
        assert torch.equal(zn, zc.to(zn.dtype))          # the same spikes, and the same state
        for a, b in zip(sn, sc):
            torch.testing.assert_close(b.to(a.dtype), a)
    else:  # ours refuses clearly, naming the argument
        assert isinstance(c[1], ValueError) and "input_tensor" in str(c[1]), repr(c[1])


@pytest.mark.parametrize("shape", _SHAPES, ids=str)
@pytest.mark.parametrize("name", ["LSNN", "LSNNCell"])
def test_feed_forward_modules_accept_the_shapes_norse_accepts(name, shape):
    x = torch.rand(shape) * 3          # strong enough to spike
    _same_verdict(lambda: getattr(NM, name)()(x), lambda: getattr(C, name)()(x))
    if name == "LSNNCell" or len(shape) >= 1:  # with a state of one step's shape
        z = torch.zeros(shape if name == "LSNNCell" else shape[1:])
        _same_verdict(lambda: getattr(NM, name)()(x, NF.LSNNFeedForwardState(z, z, z + 1)),
                      lambda: getattr(C, name)()(x, C.LSNNFeedForwardState(z, z, z + 1)))


@pytest.mark.parametrize("shape", _SHAPES, ids=str)
@pytest.mark.parametrize("name", ["LSNNRecurrent", "LSNNRecurrentCell"])
def test_recurrent_modules_accept_the_shapes_norse_accepts(name, shape):
    x = torch.rand(shape) * 3
    torch.manual_seed(0)
    ref = getattr(NM, name)(3, 4)
    torch.manual_seed(0)
    ours = getattr(C, name)(3, 4)
    _same_verdict(lambda: ref(x), lambda: ours(x))


@pytest.mark.parametrize("shape", _SHAPES, ids=str)
def test_step_functions_accept_the_shapes_norse_accepts(shape):
    x = torch.rand(shape) * 3
    z = torch.zeros(shape)
    _same_verdict(lambda: NF.lsnn_feed_forward_step(x, NF.LSNNFeedForwardState(z, z, z + 1)),
                  lambda: C.lsnn_feed_forward_step(x, C.LSNNFeedForwardState(z, z, z + 1)))
    h = torch.zeros((*shape[:-1], 4) if shape else (4,))
    w, r = torch.rand(4, 3), torch.rand(4, 4)
    for fn in ("lsnn_step", "ada_lif_step"):
        _same_verdict(lambda: getattr(NF, fn)(x, NF.LSNNState(h, h, h, h + 1), w, r),
                      lambda: getattr(C, fn)(x, C.LSNNState(h, h, h, h + 1), w, r))


def test_sequence_state_broadcasts_per_step_as_norse():
    """A state of shape [B, n] with input [T, n]: each step's input broadcasts against the state
    (norse), not the whole sequence (the time axis is not the state's batch axis)."""
    torch.manual_seed(3)
    x = torch.rand(5, 3) * 3
    v = torch.rand(2, 3)
    s_n = NF.LSNNFeedForwardState(v, torch.zeros(2, 3), torch.ones(2, 3))
    zn, fn = NM.LSNN()(x, s_n)
    zc, fc = C.LSNN()(x, C.LSNNFeedForwardState(*s_n))
    assert zn.shape == zc.shape == (5, 2, 3)
    assert torch.equal(zn, zc)
    for a, b in zip(fc, fn):
        torch.testing.assert_close(a, b)
