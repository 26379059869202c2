"""ctsnn.compat.snntorch (Leaky, RLeaky) against the real snntorch 1.0.0.

Thresholds are float32-representable: snntorch's subtract reset multiplies the float32 reset
signal by a 0-d threshold tensor, which computes ``reset*th`` in float32."""
import math

import pytest
import torch

snn = pytest.importorskip("snntorch")
from snntorch import surrogate as ssg  # noqa: E402

from ctsnn import surrogate as csg  # noqa: E402
from ctsnn.compat import snntorch as cs  # noqa: E402

pytestmark = pytest.mark.peers

T = 300


# measured max |mem ours - snntorch| (2026-12-03): 4.4e-16 in float64, 0 in float32
TOL = {torch.float64: 1e-14, torch.float32: 1e-6}
# gradients, relative to max(1, |gradient|): snntorch's spike functions return float32 spikes
# whatever the membrane's dtype (``(input_ > 0).float()``), so autograd rounds every d loss / d spike
# to float32 (relative 2^-24 = 6e-8 each) before its surrogate multiplies it into the float64
# chain; the gradients then carry float32 rounding, summed through the beta chain over the steps:
# measured 1.1e-7 at most in float64 over this file (2026-12-03).  With snntorch's spikes kept in
# float64 the same comparisons agree to 2.1e-15 (test_gradients_agree_to_rounding_with_float64_spikes),
# so nothing else differs.  float32: measured 1.2e-7 (summation order).
GRAD_TOL = {torch.float64: 3e-7, torch.float32: 1e-6}


def _f32able(x):
    return torch.as_tensor(x).float().double()


def _beta(per_neuron, n, dtype, gen):
    if per_neuron:
        return (torch.rand(n, generator=gen, dtype=torch.float64) * 0.5 + 0.45).to(dtype)
    return torch.tensor(0.45 + 0.5 * torch.rand(1, generator=gen).item(), dtype=dtype)


def _run(mod, x, recurrent=False):
    spk, mem = [], []
    for t in range(x.shape[0]):
        s, m = mod(x[t])
        spk.append(s.to(x.dtype)), mem.append(m)
    return torch.stack(spk), torch.stack(mem)


def _loss(S, M, gen):
    w1 = torch.rand(S.shape[1:], generator=gen, dtype=torch.float64).to(S.dtype)
    w2 = torch.rand(S.shape[1:], generator=gen, dtype=torch.float64).to(S.dtype)
    return (M ** 2 * w1).sum() + (S * w2).sum()


def _compare(ours, theirs, x, dtype, params=(), expect_spikes=50, grad_tol=None):
    """Run both on ``x`` [T, ...]; spikes equal, mem close, grads of one loss close.
    ``params``: pairs (ours_tensor, theirs_tensor, chain) with d loss/d ours = chain * d loss/d theirs."""
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    S1, M1 = _run(ours, x1)
    S2, M2 = _run(theirs, x2)
    assert torch.equal(S1, S2), f"{int((S1 != S2).sum())} spikes differ"
    assert S1.sum() > expect_spikes
    torch.testing.assert_close(M1, M2, rtol=0, atol=TOL[dtype])
    g = torch.Generator().manual_seed(11)
    L1 = _loss(S1, M1, g)
    g = torch.Generator().manual_seed(11)
    L2 = _loss(S2, M2, g)
    p1 = [x1] + [p for p, _, _ in params]
    p2 = [x2] + [p for _, p, _ in params]
    G1 = torch.autograd.grad(L1, p1, allow_unused=True)
    G2 = torch.autograd.grad(L2, p2, allow_unused=True)
    chains = [None] + [c for _, _, c in params]
    grad_tol = GRAD_TOL[dtype] if grad_tol is None else grad_tol
    diffs = []
    for a, b, c in zip(G1, G2, chains):
        assert a is not None and b is not None
        b = b.to(a.dtype)
        if c is not None:
            b = b * c
        scale = max(1.0, float(b.abs().max()))
        torch.testing.assert_close(a, b.reshape(a.shape), rtol=grad_tol, atol=grad_tol * scale)
        diffs.append(float((a - b.reshape(a.shape)).abs().max()) / scale)
    return S1, M1, diffs


# ------------------------------------------------------------------ Leaky

# reset_mechanism="none" has no reset to delay: reset_delay=False adds nothing there
RESETS = [("subtract", True), ("subtract", False), ("zero", True), ("zero", False), ("none", True)]


@pytest.mark.parametrize("reset,reset_delay,per_neuron", [r + (True,) for r in RESETS]
                         + [("subtract", True, False), ("zero", False, False)])
def test_leaky_matches_snntorch(reset, reset_delay, per_neuron):
    dtype = torch.float64
    g = torch.Generator().manual_seed(3)
    n = 6
    beta = _beta(per_neuron, n, dtype, g)
    th = _f32able(0.5 + torch.rand(1, generator=g).item())
    ours = cs.Leaky(beta=beta, threshold=th, reset_mechanism=reset, reset_delay=reset_delay)
    theirs = snn.Leaky(beta=beta, threshold=th, reset_mechanism=reset, reset_delay=reset_delay)
    # inputs up to 1.6 th: mem also passes 2 th (snntorch's double threshold with reset_delay=False)
    x = (torch.rand(T, 4, n, generator=g, dtype=dtype) * 1.9 - 0.3) * th
    _compare(ours, theirs, x, dtype)


@pytest.mark.parametrize("reset,reset_delay", [("subtract", False), ("zero", True)])
def test_gradients_agree_to_rounding_with_float64_spikes(monkeypatch, reset, reset_delay):
    """The float64 gradient differences (GRAD_TOL) come from snntorch's float32 spikes alone: with
    its arctan spike function returning the membrane's dtype, every gradient (input, beta through
    its chain, threshold) agrees to rounding (measured 2.1e-15; 1e-8 and more with float32 spikes)."""
    from snntorch.surrogate import ATan
    fwd = ATan.forward
    monkeypatch.setattr(ATan, "forward", staticmethod(lambda ctx, input_, alpha=2.0:
                                                      fwd(ctx, input_, alpha).to(input_.dtype)))
    dtype = torch.float64
    g = torch.Generator().manual_seed(7)
    n = 5
    beta = _beta(True, n, dtype, g)
    th = _f32able(torch.rand(n, generator=g) * 0.5 + 0.6)
    kw = dict(learn_beta=True, learn_threshold=True, reset_mechanism=reset, reset_delay=reset_delay)
    ours = cs.Leaky(beta=beta, threshold=th, **kw)
    theirs = snn.Leaky(beta=beta.clone(), threshold=th.clone(), **kw)
    x = torch.rand(T // 2, 4, n, generator=g, dtype=dtype) * 1.4 - 0.3
    _, _, diffs = _compare(ours, theirs, x, dtype, params=[(ours.beta, theirs.beta, None),
                                                           (ours.threshold, theirs.threshold, None)],
                           grad_tol=1e-13)
    assert max(diffs) < 1e-13


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_leaky_float32(reset):
    dtype = torch.float32
    g = torch.Generator().manual_seed(5)
    n = 8
    beta = _beta(True, n, dtype, g)
    ours = cs.Leaky(beta=beta, threshold=0.75, reset_mechanism=reset)
    theirs = snn.Leaky(beta=beta, threshold=0.75, reset_mechanism=reset)
    x = torch.rand(T, 3, n, generator=g, dtype=dtype) * 1.2 - 0.2
    _compare(ours, theirs, x, dtype)


@pytest.mark.parametrize("reset,reset_delay", [("subtract", True), ("zero", False), ("subtract", False)])
def test_leaky_learnable_beta_threshold(reset, reset_delay):
    """learn_beta learns beta itself (snntorch's parameter); the model's tau is derived from it."""
    dtype = torch.float64
    g = torch.Generator().manual_seed(7)
    n = 5
    beta = _beta(True, n, dtype, g)
    th = _f32able(torch.rand(n, generator=g) * 0.5 + 0.6)
    ours = cs.Leaky(beta=beta, threshold=th, learn_beta=True, learn_threshold=True, reset_mechanism=reset,
                    reset_delay=reset_delay)
    theirs = snn.Leaky(beta=beta.clone(), threshold=th.clone(), learn_beta=True, learn_threshold=True,
                       reset_mechanism=reset, reset_delay=reset_delay)
    x = torch.rand(T, 4, n, generator=g, dtype=dtype) * 1.4 - 0.3
    _compare(ours, theirs, x, dtype, params=[(ours.beta, theirs.beta, None),
                                             (ours.threshold, theirs.threshold, None)])
    assert isinstance(ours.beta, torch.nn.Parameter)
    torch.testing.assert_close(ours.beta.detach(), beta)


def test_leaky_graded_spikes_surrogates_quant():
    dtype = torch.float64
    g = torch.Generator().manual_seed(9)
    n = 6
    beta = _beta(True, n, dtype, g)
    q = lambda m: torch.round(m * 32) / 32  # noqa: E731
    cases = [
        (dict(spike_grad=ssg.fast_sigmoid(slope=10)), dict(spike_grad=ssg.fast_sigmoid(slope=10))),
        (dict(spike_grad=csg.sigmoid(slope=5)), dict(spike_grad=ssg.sigmoid(slope=5))),
        (dict(spike_grad="triangular"), dict(spike_grad=ssg.triangular())),
        (dict(spike_grad="spike_rate_escape", ), dict(spike_grad=ssg.spike_rate_escape())),
        (dict(state_quant=q), dict(state_quant=q)),
        (dict(surrogate_disable=True), dict(surrogate_disable=True)),
    ]
    x = torch.rand(T, 2, n, generator=g, dtype=dtype) * 1.4 - 0.3
    for kw1, kw2 in cases:
        ours, theirs = cs.Leaky(beta=beta, threshold=0.75, **kw1), snn.Leaky(beta=beta, threshold=0.75, **kw2)
        if "surrogate_disable" in kw1:  # snntorch's spikes then carry no graph: compare mem grads only
            x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
            S1, M1 = _run(ours, x1)
            S2, M2 = _run(theirs, x2)
            assert torch.equal(S1, S2)
            torch.testing.assert_close(torch.autograd.grad((M1 ** 2).sum(), x1)[0],
                                       torch.autograd.grad((M2 ** 2).sum(), x2)[0], rtol=1e-12,
                                       atol=1e-13)  # measured 1.3e-15
            continue
        _compare(ours, theirs, x, dtype)
    gsf = torch.tensor(1.75, dtype=dtype)  # float32-exact: snntorch spikes are float32
    ours = cs.Leaky(beta=beta, threshold=0.75, graded_spikes_factor=gsf, learn_graded_spikes_factor=True)
    theirs = snn.Leaky(beta=beta, threshold=0.75, graded_spikes_factor=gsf.clone(), learn_graded_spikes_factor=True)
    _compare(ours, theirs, x * 1.7, dtype,
             params=[(ours.graded_spikes_factor, theirs.graded_spikes_factor, None)], expect_spikes=80)


def test_leaky_init_hidden_output_inhibition():
    dtype = torch.float64
    g = torch.Generator().manual_seed(13)
    n = 6
    beta = _beta(False, n, dtype, g)
    x = torch.rand(T, 4, n, generator=g, dtype=dtype) * 1.4 - 0.3
    ours = cs.Leaky(beta=beta, threshold=0.75, init_hidden=True)
    theirs = snn.Leaky(beta=beta, threshold=0.75, init_hidden=True)
    for t in range(20):
        s1, s2 = ours(x[t]), theirs(x[t])
        assert torch.equal(s1, s2.to(dtype))
        torch.testing.assert_close(ours.mem, theirs.mem, rtol=0, atol=1e-12)
    with pytest.raises(TypeError, match="mem"):
        ours(x[0], ours.mem)
    ours = cs.Leaky(beta=beta, threshold=0.75, init_hidden=True, output=True)
    s, m = ours(x[0])
    assert m is ours.mem
    ours = cs.Leaky(beta=beta, threshold=0.75, inhibition=True)
    with pytest.warns(UserWarning):
        theirs = snn.Leaky(beta=beta, threshold=0.75, inhibition=True)
    S1, _, _ = _compare(ours, theirs, x, dtype, expect_spikes=5)
    assert (S1.sum(-1) <= 1).all()


def test_learnable_parameters_listed():
    lk = cs.Leaky(beta=[0.5, 0.9], learn_beta=True, learn_threshold=True)
    assert {p.shape for p in lk.parameters()} == {torch.Size([2]), torch.Size([])}
    assert len(list(cs.Leaky(beta=0.5).parameters())) == 0
    rl = cs.RLeaky(beta=0.5, linear_features=3, learn_recurrent=True)
    assert sorted(p.numel() for p in rl.parameters() if p.requires_grad) == [3, 9]
    rl = cs.RLeaky(beta=0.5, linear_features=3, learn_recurrent=False)
    assert not any(p.requires_grad for p in rl.parameters())
    rl = cs.RLeaky(beta=0.5, V=0.3, all_to_all=False, learn_beta=True)
    assert sorted(p.numel() for p in rl.parameters()) == [1, 1]


def test_leaky_state_continues_like_snntorch():
    """mem=None continues from the stored state (snntorch keeps self.mem); a wrong shape re-zeros."""
    x = torch.rand(10, 2, 3, dtype=torch.float64)
    ours, theirs = cs.Leaky(beta=0.8), snn.Leaky(beta=torch.tensor(0.8, dtype=torch.float64))
    m1, m2 = ours.init_leaky(), theirs.init_leaky()
    for t in range(10):
        s1, m1 = ours(x[t], m1)
        s2, m2 = theirs(x[t], m2)
    torch.testing.assert_close(m1, m2)
    s1, m1 = ours(x[0, :1])
    s2, m2 = theirs(x[0, :1])
    torch.testing.assert_close(m1, m2)


# ------------------------------------------------------------------ RLeaky

def _rleaky_pair(kind, reset, reset_delay, per_neuron, dtype, g, n, learn=True):
    beta = _beta(per_neuron, n, dtype, g)
    th = _f32able(0.6 + 0.4 * torch.rand(1, generator=g).item())
    common = dict(beta=beta, threshold=th, reset_mechanism=reset, reset_delay=reset_delay)
    if kind == "one_to_one":
        V = (torch.rand(n, generator=g, dtype=torch.float64) * 0.6 - 0.3).to(dtype)
        ours = cs.RLeaky(V=V, all_to_all=False, learn_recurrent=learn, **common)
        theirs = snn.RLeaky(V=V.clone(), all_to_all=False, learn_recurrent=learn, **common)
    elif kind == "linear":
        ours = cs.RLeaky(linear_features=n, learn_recurrent=learn, **common)
        theirs = snn.RLeaky(linear_features=n, learn_recurrent=learn, **common)
    else:
        ours = cs.RLeaky(conv2d_channels=2, kernel_size=3, learn_recurrent=learn, **common)
        theirs = snn.RLeaky(conv2d_channels=2, kernel_size=3, learn_recurrent=learn, **common)
    if kind != "one_to_one":
        theirs.recurrent.to(dtype)
        ours.recurrent.to(dtype)
        with torch.no_grad():  # a weaker recurrence keeps the spike count moderate
            for p in theirs.recurrent.parameters():
                p.mul_(0.5)
        ours.recurrent.load_state_dict(theirs.recurrent.state_dict())
    return ours, theirs, th


@pytest.mark.parametrize("kind,reset,reset_delay", [(k,) + r for k in ("one_to_one", "linear") for r in RESETS]
                         + [("conv2d", "subtract", True), ("conv2d", "zero", False), ("conv2d", "none", True)])
def test_rleaky_matches_snntorch(kind, reset, reset_delay):
    # snntorch's spikes are float32, so its Linear/Conv2d recurrence only runs in float32
    dtype = torch.float64 if kind == "one_to_one" else torch.float32
    g = torch.Generator().manual_seed(17)
    n = 6 if kind != "conv2d" else 5
    per_neuron = kind != "conv2d"
    ours, theirs, th = _rleaky_pair(kind, reset, reset_delay, per_neuron, dtype, g, n)
    shape = (T, 3, n) if kind != "conv2d" else (T, 2, 2, 4, n)
    x = (torch.rand(shape, generator=g, dtype=dtype) * 0.9 - 0.25) * th
    if kind == "one_to_one":
        params = [(ours.V, theirs.V, None)]
    else:
        params = [(ours.recurrent.weight, theirs.recurrent.weight, None),
                  (ours.recurrent.bias, theirs.recurrent.bias, None)]
    _compare(ours, theirs, x, dtype, params=params, expect_spikes=30)


def test_rleaky_learnable_and_float32():
    g = torch.Generator().manual_seed(19)
    n = 7
    dtype = torch.float64
    beta = _beta(True, n, dtype, g)
    V = torch.rand(n, generator=g, dtype=dtype) * 0.6 - 0.3
    kw = dict(beta=beta, V=V, all_to_all=False, threshold=torch.tensor(0.75, dtype=dtype), learn_beta=True,
              learn_threshold=True)
    ours = cs.RLeaky(**kw)
    theirs = snn.RLeaky(**{k: (v.clone() if torch.is_tensor(v) else v) for k, v in kw.items()})
    pb = (ours.beta, theirs.beta, None)
    x = torch.rand(T, 3, n, generator=g, dtype=dtype) * 1.3 - 0.3
    _compare(ours, theirs, x, dtype, params=[pb, (ours.threshold, theirs.threshold, None),
                                             (ours.V, theirs.V, None)])
    # float32, linear recurrence
    dtype = torch.float32
    ours, theirs, th = _rleaky_pair("linear", "subtract", True, True, dtype, g, n)
    x = (torch.rand(T, 3, n, generator=g, dtype=dtype) * 1.3 - 0.25) * th
    _compare(ours, theirs, x, dtype, params=[(ours.recurrent.weight, theirs.recurrent.weight, None)])


def test_rleaky_init_hidden_and_zero_state():
    n = 4
    ours = cs.RLeaky(beta=0.9, linear_features=n, init_hidden=True)
    x = torch.rand(5, 2, n) * 2
    for t in range(5):
        s = ours(x[t])
    assert s.shape == (2, n) and ours.mem.shape == (2, n)
    with pytest.raises(TypeError, match="1 input argument"):
        ours(x[0], s)
    spk, mem = ours.reset_mem()
    assert not spk.any() and not mem.any()


# ------------------------------------------------------------------ surrogates

@pytest.mark.parametrize("name,ours,theirs", [
    ("atan", csg.atan(), ssg.atan()),
    ("fast_sigmoid", csg.fast_sigmoid(slope=25), ssg.fast_sigmoid(slope=25)),
    ("sigmoid", csg.sigmoid(slope=25), ssg.sigmoid(slope=25)),
    ("triangular", csg.get("triangular", threshold=0.7), ssg.triangular(threshold=0.7)),
    ("spike_rate_escape", csg.spike_rate_escape(beta=2.0, slope=10.0), ssg.spike_rate_escape(beta=2, slope=10)),
])
def test_surrogates_match_snntorch(name, ours, theirs):
    g = torch.linspace(-2, 2, 401, dtype=torch.float64).requires_grad_(True)
    s1, s2 = ours(g), theirs(g)
    assert torch.equal(s1, s2.to(s1.dtype))
    d1, = torch.autograd.grad(s1.sum(), g)
    d2, = torch.autograd.grad(s2.sum(), g)
    torch.testing.assert_close(d1, d2.to(d1.dtype), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ errors

def test_leaky_errors():
    with pytest.raises(ValueError, match="reset_mechanism"):
        cs.Leaky(beta=0.9, reset_mechanism="bogus")
    for bad in (float("nan"), [0.5, float("inf")], [[0.5]]):
        with pytest.raises(ValueError, match="beta"):
            cs.Leaky(beta=bad)
    with pytest.raises(ValueError, match="to_model"):
        cs.Leaky(beta=[0.5, 1.0]).to_model()
    with pytest.raises(ValueError, match="threshold"):
        cs.Leaky(beta=0.9, threshold=float("inf"))
    with pytest.raises(ValueError, match="state_quant"):
        cs.Leaky(beta=0.9, state_quant="yes")
    with pytest.raises(ValueError, match="surrogate"):
        cs.Leaky(beta=0.9, spike_grad="nope")


def test_rleaky_errors_like_snntorch():
    bad = [dict(),                                                  # all_to_all without a shape
           dict(conv2d_channels=2),                                 # conv without kernel
           dict(kernel_size=3),
           dict(linear_features=4, kernel_size=3),                  # linear and conv at once
           dict(linear_features=4, conv2d_channels=2),
           dict(all_to_all=False, linear_features=4),               # V and a dense map at once
           dict(all_to_all=False, conv2d_channels=2, kernel_size=3)]
    for kw in bad:
        with pytest.raises(TypeError):
            snn.RLeaky(beta=0.9, **kw)
        with pytest.raises(TypeError, match="linear_features|conv2d_channels|kernel_size"):
            cs.RLeaky(beta=0.9, **kw)
    with pytest.raises(ValueError, match="beta"):
        cs.RLeaky(beta=float("nan"), V=0.5, all_to_all=False)
    with pytest.raises(ValueError, match="V"):
        cs.RLeaky(beta=0.5, V=float("nan"), all_to_all=False)
    with pytest.raises(AttributeError):
        cs.RLeaky(beta=0.5, linear_features=3).V


def test_to_model():
    lk = cs.Leaky(beta=torch.tensor([0.5, 0.8], dtype=torch.float64), learn_beta=True)
    m = lk.to_model()
    torch.testing.assert_close(m.tau_mem, -1 / torch.log(torch.tensor([0.5, 0.8], dtype=torch.float64)))
    assert math.isclose(float(cs.Leaky(beta=0.5).to_model().tau_mem), 1 / math.log(2), rel_tol=1e-6)
    assert type(cs.Leaky(beta=1.0).to_model()).__name__ == "IF"
