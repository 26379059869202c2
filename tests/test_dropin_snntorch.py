"""ctsnn.compat.snntorch as a drop-in: snntorch's own helpers (utils.reset, reset_hidden,
detach_hidden, NIR export), its checkpoints, torch.compile, copies, and reset_delay=False,
each compared with the real snntorch 1.0.0 doing the same thing."""
import copy
import gc
import pickle
import subprocess
import sys

import pytest
import torch
from torch import nn

snn = pytest.importorskip("snntorch")
from snntorch import surrogate as ssg  # noqa: E402
from snntorch import utils as sutils  # noqa: E402

from ctsnn.compat import snntorch as cs  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_snntorch_registry():
    """snntorch keeps every neuron ever made in one class-level list (strong references) and its
    reset helpers walk all of them; a half-built neuron left there by another test file (a
    constructor that raised inside pytest.raises) breaks snntorch's own helpers. Each test here
    starts from an empty list, as a fresh training script does, and the list is restored after."""
    saved = list(snn.SpikingNeuron.instances)
    snn.SpikingNeuron.instances.clear()
    yield
    snn.SpikingNeuron.instances[:] = saved

pytestmark = pytest.mark.peers


class _Cast(nn.Module):
    """snntorch's spikes are float32 whatever the dtype (its surrogates): cast them for float64."""

    def __init__(self, dtype):
        super().__init__()
        self.dtype = dtype

    def forward(self, x):
        return x.to(self.dtype)


class _Atan64(torch.autograd.Function):
    """snntorch's atan surrogate (alpha = 2) kept in the input's dtype: snntorch's own returns
    float32 spikes, so its gradients pass through float32 (about 1e-8 relative) even in float64."""

    @staticmethod
    def forward(ctx, g):
        ctx.save_for_backward(g)
        return (g > 0).to(g.dtype)

    @staticmethod
    def backward(ctx, grad):
        (g,) = ctx.saved_tensors
        return grad / (1 + (torch.pi * g) ** 2)


def _net(lib, dtype, learn=True, seed=0, spike_grad=None):
    """fc -> Leaky -> fc -> RLeaky(V, one-to-one) -> fc -> Leaky(output): snntorch's
    init_hidden style, the same weights for both libraries."""
    torch.manual_seed(seed)
    fc1, fc2, fc3 = nn.Linear(4, 6), nn.Linear(6, 5), nn.Linear(5, 3)
    beta1 = torch.tensor([0.6, 0.7, 0.8, 0.9, 0.75, 0.65], dtype=dtype)
    V = torch.tensor([0.3, -0.2, 0.1, 0.25, -0.1], dtype=dtype)
    kw = dict(learn_beta=learn, learn_threshold=learn, init_hidden=True, spike_grad=spike_grad)
    net = nn.Sequential(
        fc1, lib.Leaky(beta=beta1, threshold=torch.tensor(0.75, dtype=dtype), **kw), _Cast(dtype),
        fc2, lib.RLeaky(beta=torch.tensor(0.85, dtype=dtype), V=V, all_to_all=False,
                        threshold=torch.tensor(0.5, dtype=dtype), **kw), _Cast(dtype),
        fc3, lib.Leaky(beta=torch.tensor(0.9, dtype=dtype), reset_delay=False, reset_mechanism="zero",
                       output=True, **kw))
    return net.to(dtype)


def _train(net, xs, reset=True):
    """Two batches, snntorch.utils.reset(net) before each, backward each: losses and grads."""
    losses, grads = [], []
    for x in xs:
        if reset:
            sutils.reset(net)
        else:  # truncated BPTT without a reset: the state carries over, detached
            snn.Leaky.detach_hidden()
            snn.RLeaky.detach_hidden()
        net.zero_grad()
        spk, mem = [], []
        for t in range(x.shape[0]):
            s, m = net(x[t])
            spk.append(s)
            mem.append(m)
        spk, mem = torch.stack(spk), torch.stack(mem)
        loss = ((mem - 0.5) ** 2).mean() + spk.to(mem.dtype).mean()
        loss.backward()
        losses.append(loss.detach())
        grads.append({k: p.grad.clone() for k, p in net.named_parameters()})
    return losses, grads


def _xs(dtype, T=25, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(T, 8, 4, generator=g, dtype=torch.float64).to(dtype) * 2.5 for _ in range(2)]


def test_training_loop_with_snntorch_reset_float64():
    """Measured: losses identical, gradients to 3e-16 relative (with snntorch's own atan, whose
    spikes are float32, gradients differ by 9e-9: its float32 spike path)."""
    dtype = torch.float64
    ours, theirs = _net(cs, dtype, spike_grad=_Atan64.apply), _net(snn, dtype, spike_grad=_Atan64.apply)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    assert [k for k, _ in ours.named_parameters()] == [k for k, _ in theirs.named_parameters()]
    xs = _xs(dtype)
    L1, G1 = _train(ours, xs)
    L2, G2 = _train(theirs, xs)
    for a, b in zip(L1, L2):
        assert abs(float(a - b)) <= 1e-12
    for g1, g2 in zip(G1, G2):
        assert g1.keys() == g2.keys()
        for k in g1:
            assert g2[k].abs().max() > 0, k  # every gradient is exercised
            torch.testing.assert_close(g1[k], g2[k], rtol=1e-12, atol=1e-12, msg=k)
    # the reset matters here: without it the second batch starts from the first one's state
    L3, _ = _train(_net(cs, dtype, spike_grad=_Atan64.apply), xs, reset=False)
    assert abs(float(L3[1] - L1[1])) > 1e-3


def test_training_loop_with_snntorch_reset_float32():
    dtype = torch.float32
    ours, theirs = _net(cs, dtype), _net(snn, dtype)
    xs = _xs(dtype)
    L1, G1 = _train(ours, xs)
    L2, G2 = _train(theirs, xs)
    for a, b in zip(L1, L2):
        assert abs(float(a - b)) <= 1e-6
    for g1, g2 in zip(G1, G2):
        for k in g1:  # float32: measured identical (beta = exp(-1/tau) rounds back to beta exactly)
            torch.testing.assert_close(g1[k], g2[k], rtol=1e-5, atol=1e-6, msg=k)


def test_learnable_step_constants_made_once_per_graph():
    """With learnable beta / threshold the step constants (tau, the propagator) are made once and
    shared by the steps until a backward pass, an optimiser step or an in-place change: Leaky and
    RLeaky against snntorch over three SGD iterations (two forward sequences before one backward; a
    dropped forward pass, then beta scaled in place), losses and gradients equal in float64."""
    dtype = torch.float64
    for cls, kw in (("Leaky", dict(beta=torch.tensor([0.6, 0.8, 0.9], dtype=dtype))),
                    ("RLeaky", dict(beta=torch.tensor([0.6, 0.8, 0.9], dtype=dtype), all_to_all=False,
                                    V=torch.tensor([0.2, -0.3, 0.1], dtype=dtype)))):
        kw.update(threshold=torch.tensor(0.7, dtype=dtype), learn_beta=True, learn_threshold=True,
                  spike_grad=_Atan64.apply)
        ours, theirs = getattr(cs, cls)(**kw), getattr(snn, cls)(**kw)
        made = []
        make = ours._dl.step_constants
        ours._dl.step_constants = lambda *a, **k: made.append(1) or make(*a, **k)
        g = torch.Generator().manual_seed(5)
        xs = torch.rand(3, 2, 8, 2, 3, generator=g, dtype=dtype) * 1.5
        for it in range(3):
            res = []
            for m in (ours, theirs):
                if it == 2:  # a forward pass with gradients whose graph is dropped, then an in-place change
                    m.reset_mem()
                    m(xs[it, 0, 0])
                    with torch.no_grad():
                        m.beta.mul_(0.9)
                loss = 0.0
                for x in xs[it]:  # two forward sequences, one backward
                    m.reset_mem()
                    for t in range(x.shape[0]):
                        out = m(x[t])
                        loss = loss + ((out[1] - 0.5) ** 2).mean() + out[0].mean()
                loss.backward()
                res.append((loss.detach(), [p.grad.clone() for p in m.parameters()]))
                with torch.no_grad():  # an SGD step (in place, as torch's optimisers)
                    for p in m.parameters():
                        p.sub_(0.01 * p.grad)
                        p.grad = None
            (l1, g1), (l2, g2) = res
            torch.testing.assert_close(l1, l2, rtol=1e-13, atol=0)
            for a, b in zip(g1, g2):
                assert b.abs().max() > 0
                torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-13)
        assert len(made) == 4, (cls, len(made))  # one per iteration, one more after the in-place change


def test_reset_hidden_and_detach_hidden_reach_ctsnn_layers():
    lk = cs.Leaky(beta=0.9, init_hidden=True)
    rl = cs.RLeaky(beta=0.9, V=0.5, all_to_all=False, init_hidden=True)
    x = torch.rand(3, 4, requires_grad=True)
    lk(x * 2), rl(x * 2)
    assert lk.mem.requires_grad and rl.mem.requires_grad and lk.mem.abs().sum() > 0
    snn.Leaky.detach_hidden()  # snntorch's classmethods, as its helpers call them
    snn.RLeaky.detach_hidden()
    assert not lk.mem.requires_grad and not rl.mem.requires_grad and not rl.spk.requires_grad
    snn.Leaky.reset_hidden()
    snn.RLeaky.reset_hidden()
    assert lk.mem.shape == (3, 4) and not lk.mem.any() and not rl.mem.any() and not rl.spk.any()
    # the dialect's own classmethods, with snntorch's class-wide semantics
    lk(x * 2)
    cs.Leaky.detach_hidden()
    assert not lk.mem.requires_grad
    cs.Leaky.reset_hidden()
    assert not lk.mem.any()


def test_registry_holds_no_layer_alive():
    n0 = len(snn.SpikingNeuron.instances)
    lk = cs.Leaky(beta=0.5)
    assert len(snn.SpikingNeuron.instances) == n0 + 1 and isinstance(snn.SpikingNeuron.instances[-1], snn.Leaky)
    del lk
    gc.collect()
    assert len(snn.SpikingNeuron.instances) == n0
    snn.Leaky.reset_hidden()  # no dead entries left behind


def test_reset_delay_false_as_snntorch():
    """snntorch's same-step reset, spk - reset, can be -1 and add the threshold back."""
    x = torch.tensor([3.0, 0.5, 0.0, 2.6, 0.2, 0.0]).reshape(-1, 1)
    for reset in ("subtract", "zero"):
        kw = dict(beta=0.5, threshold=1.0, reset_mechanism=reset, reset_delay=False)
        pairs = [(cs.Leaky(**kw), snn.Leaky(**kw)),
                 (cs.RLeaky(V=0.4, all_to_all=False, **kw), snn.RLeaky(V=0.4, all_to_all=False, **kw))]
        for ours, theirs in pairs:
            for t in range(x.shape[0]):
                s1, m1 = ours(x[t])
                s2, m2 = theirs(x[t])
                assert torch.equal(s1, s2) and torch.equal(m1, m2), (reset, type(ours).__name__, t)
    # the case of the issue: snntorch's membranes 2.0, 1.5, 0.75 (computed by snntorch above)
    ours = cs.Leaky(beta=0.5, threshold=1.0, reset_mechanism="subtract", reset_delay=False)
    assert [float(ours(torch.tensor([v]))[1]) for v in (3.0, 0.5, 0.0)] == [2.0, 1.5, 0.75]


def test_inhibition_with_reset_delay_false_as_snntorch():
    """inhibition with reset_delay=False: snntorch masks the spike to the largest mem - th of each
    row, then resets in the same step by spk / graded_spikes_factor - reset (the delayed reset of
    every neuron above threshold, winner or not); Leaky (graded 1 and 1.5) and RLeaky, subtract and
    zero, spikes, membranes and gradients as snntorch's (float64 surrogate, float64)."""
    dtype = torch.float64
    g = torch.Generator().manual_seed(21)
    x = torch.rand(12, 3, 5, generator=g, dtype=dtype) * 1.6
    for reset in ("subtract", "zero"):
        kw = dict(beta=torch.tensor([0.5, 0.6, 0.7, 0.8, 0.9], dtype=dtype), threshold=torch.tensor(0.8, dtype=dtype),
                  reset_mechanism=reset, reset_delay=False, inhibition=True, learn_beta=True,
                  spike_grad=_Atan64.apply)
        for cls, extra in (("Leaky", {}), ("Leaky", dict(graded_spikes_factor=1.5)),
                           ("RLeaky", dict(V=torch.tensor(0.3, dtype=dtype), all_to_all=False))):
            ours = getattr(cs, cls)(**kw, **extra)
            with pytest.warns(UserWarning):  # snntorch warns that inhibition is experimental
                theirs = getattr(snn, cls)(**kw, **extra)
            res, above = [], 0
            for m in (ours, theirs):
                xx = x.clone().requires_grad_()
                S, M = [], []
                for t in range(x.shape[0]):
                    s, mem = m(xx[t])
                    S.append(s.to(dtype))
                    M.append(mem)
                S, M = torch.stack(S), torch.stack(M)
                grads = torch.autograd.grad((M ** 2).sum() + S.sum(), [xx, m.beta])
                res.append((S, M) + grads)
                above = max(above, int(((M - 0.8) > 0).sum(-1).max()))
            assert (res[1][0] != 0).sum(-1).max() == 1 and res[1][0].abs().sum() >= 5  # one winner per row
            assert above >= 2  # rows with losers above threshold after the step (the case that matters)
            for a, b in zip(res[0], res[1]):
                torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=f"{reset} {cls} {extra}")


# ------------------------------------------------------------------ checkpoints

_CONFIGS = [
    ("Leaky", dict(beta=0.8)),
    ("Leaky", dict(beta=torch.tensor([0.5, 0.7, 0.9]), learn_beta=True, learn_threshold=True,
                   reset_mechanism="zero")),
    ("Leaky", dict(beta=0.7, graded_spikes_factor=1.5, learn_graded_spikes_factor=True, reset_delay=False)),
    ("RLeaky", dict(beta=0.8, linear_features=3)),
    ("RLeaky", dict(beta=0.8, V=torch.tensor([0.2, -0.3, 0.4]), all_to_all=False, learn_beta=True)),
    ("RLeaky", dict(beta=0.8, V=0.3, all_to_all=False, learn_recurrent=False)),
    ("RLeaky", dict(beta=0.8, conv2d_channels=2, kernel_size=3, reset_mechanism="none")),
]


def _perturbed(sd, gen):
    return {k: (v + 0.1 * torch.rand(v.shape, generator=gen).to(v.dtype) if v.is_floating_point() else v)
            for k, v in sd.items()}


def _seq(mod, x):
    mod.reset_mem()
    out = [mod(x[t]) for t in range(x.shape[0])]
    return torch.stack([o[0] for o in out]), torch.stack([o[1] for o in out])


@pytest.mark.parametrize("cls,kw", _CONFIGS)
def test_checkpoints_both_ways(cls, kw):
    g = torch.Generator().manual_seed(2)
    ours, theirs = getattr(cs, cls)(**kw), getattr(snn, cls)(**kw)
    sd1, sd2 = ours.state_dict(), theirs.state_dict()
    assert sd1.keys() == sd2.keys()
    for k in sd1:
        assert sd1[k].shape == sd2[k].shape and sd1[k].dtype == sd2[k].dtype, k
    assert ({k: type(v) for k, v in ours.named_parameters()} == {k: type(v) for k, v in theirs.named_parameters()})
    shape = (6, 2, 2, 4, 4) if "conv2d_channels" in kw else (6, 2, 3)
    x = torch.rand(shape, generator=g) * 1.5
    # snntorch -> ctsnn
    theirs.load_state_dict(_perturbed(sd2, g), strict=True)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    S1, M1 = _seq(ours, x)
    S2, M2 = _seq(theirs, x)
    assert torch.equal(S1, S2) and S1.sum() > 0
    torch.testing.assert_close(M1, M2, rtol=1e-6, atol=1e-6)
    # ctsnn -> snntorch
    ours.load_state_dict(_perturbed(ours.state_dict(), g), strict=True)
    theirs2 = getattr(snn, cls)(**kw)
    theirs2.load_state_dict(ours.state_dict(), strict=True)
    S1, M1 = _seq(ours, x)
    S2, M2 = _seq(theirs2, x)
    assert torch.equal(S1, S2)
    torch.testing.assert_close(M1, M2, rtol=1e-6, atol=1e-6)
    for k, v in ours.state_dict().items():
        assert torch.equal(v, theirs2.state_dict()[k]), k


def test_checkpoint_reset_mechanism_val_decides():
    """A checkpoint's reset_mechanism_val sets the mechanism (snntorch reads it only in its same-step
    reset; the dialect follows it throughout)."""
    src = snn.Leaky(beta=0.8, reset_mechanism="zero")
    ours = cs.Leaky(beta=0.8)
    ours.load_state_dict(src.state_dict(), strict=True)
    assert ours.reset_mechanism == "zero"
    x = torch.rand(8, 2, 3) * 1.5
    S1, M1 = _seq(ours, x)
    S2, M2 = _seq(src, x)
    assert torch.equal(S1, S2)
    torch.testing.assert_close(M1, M2)
    ours.reset_mechanism = "subtract"
    assert int(ours.reset_mechanism_val) == 0
    S1, M1 = _seq(ours, x)
    S2, M2 = _seq(snn.Leaky(beta=0.8), x)
    torch.testing.assert_close(M1, M2)


# ------------------------------------------------------------------ attributes

def test_spike_grad_and_surrogate_disable_as_snntorch():
    x = torch.rand(10, 3, 4, dtype=torch.float64) * 1.5

    def grads(mod):
        xx = x.clone().requires_grad_(True)
        S, M = _seq(mod, xx)
        (S.sum() + (M ** 2).sum()).backward()
        return xx.grad

    beta = torch.tensor(0.8, dtype=torch.float64)
    ours, theirs = cs.Leaky(beta=beta), snn.Leaky(beta=beta)
    ours.spike_grad, theirs.spike_grad = ssg.fast_sigmoid(slope=10), ssg.fast_sigmoid(slope=10)
    torch.testing.assert_close(grads(ours), grads(theirs), rtol=1e-6, atol=1e-7)
    ours, theirs = cs.Leaky(beta=beta, surrogate_disable=True), snn.Leaky(beta=beta, surrogate_disable=True)
    assert ours.surrogate_disable
    torch.testing.assert_close(grads(ours), grads(theirs), rtol=1e-6, atol=1e-7)
    assert int(cs.Leaky(beta=0.5, reset_mechanism="none").reset_mechanism_val) == 2
    assert cs.RLeaky(beta=0.5, V=0.3, all_to_all=False).recurrent.V is not None


def test_nir_export_reads_the_dialect():
    """snntorch's NIR export dispatches on snntorch's types and reads beta, threshold and
    recurrent.V.  The dialect must reach the same outcome as snntorch's own layer (with nir 1.0.4
    both failed where nir.LIF refused v_reset; with nir >= 1.0.8 both export): every attribute the
    export reads is there (a missing one is an AttributeError first).  Whole graphs are compared
    in tests/test_dropin_nir.py."""
    pytest.importorskip("nir")
    from snntorch.export_nir import _extract_snntorch_module

    def outcome(m):
        try:
            node = _extract_snntorch_module(m)
        except Exception as e:  # noqa: BLE001 - compared between the two libraries
            return type(e).__name__, str(e)
        return type(node).__name__, {k: v.tolist() for k, v in vars(node).items() if hasattr(v, "tolist")}

    for lib_kw in (dict(beta=0.8), ):
        assert outcome(cs.Leaky(**lib_kw)) == outcome(snn.Leaky(**lib_kw))
    kw = dict(beta=torch.tensor([0.7, 0.9]), V=torch.tensor([0.2, 0.3]), all_to_all=False)
    ours, theirs = cs.RLeaky(**kw), snn.RLeaky(**kw)
    assert outcome(ours) == outcome(theirs)
    assert torch.equal(ours.recurrent.V, theirs.recurrent.V)
    assert outcome(cs.RLeaky(beta=0.8, linear_features=2)) == outcome(snn.RLeaky(beta=0.8, linear_features=2))


# ------------------------------------------------------------------ copies and dtype

@pytest.mark.parametrize("cls,kw", [("Leaky", dict(beta=0.8, learn_beta=True)),
                                    ("RLeaky", dict(beta=0.8, linear_features=3)),
                                    ("RLeaky", dict(beta=0.8, V=0.4, all_to_all=False, learn_recurrent=False))])
def test_deepcopy_pickle_to_dtype(cls, kw):
    x = torch.rand(5, 2, 3) * 1.5
    ours, theirs = getattr(cs, cls)(**kw), getattr(snn, cls)(**kw)
    ours.load_state_dict(theirs.state_dict())
    for when in ("before", "after"):
        if when == "after":
            _seq(ours, x)
        for c in (copy.deepcopy(ours), pickle.loads(pickle.dumps(ours))):
            assert c.state_dict().keys() == ours.state_dict().keys()
            S1, M1 = _seq(c, x)
            S2, M2 = _seq(ours, x)
            assert torch.equal(S1, S2) and torch.equal(M1, M2)
            c.mem = torch.ones(2, 3)
            snn.Leaky.reset_hidden(), snn.RLeaky.reset_hidden()  # copies are registered as well
            assert not c.mem.any()
        o64, t64 = copy.deepcopy(ours).to(torch.float64), copy.deepcopy(theirs).to(torch.float64)
        assert all(v.dtype == torch.float64 for v in o64.state_dict().values() if v.is_floating_point())
        S1, M1 = _seq(o64, x.double())
        if "linear_features" in kw:  # snntorch's float32 spikes cannot enter its float64 Linear
            S2, M2 = _seq(ours, x)
            tol = 1e-6
        else:
            S2, M2 = _seq(t64, x.double())
            tol = 1e-12
        assert M1.dtype == torch.float64 and torch.equal(S1, S2.double())
        torch.testing.assert_close(M1, M2.double(), rtol=tol, atol=tol)


def test_runs_without_snntorch_installed():
    code = ("import sys; sys.modules['snntorch'] = None\n"
            "import torch\n"
            "from ctsnn.compat import snntorch as cs\n"
            "lk = cs.Leaky(beta=0.5, reset_delay=False, init_hidden=True)\n"
            "m = [float(lk(torch.tensor([v]))) for v in (3.0, 0.5, 0.0)] and lk.mem\n"
            "assert cs.Leaky.__mro__[2] is torch.nn.Module, cs.Leaky.__mro__\n"
            "assert sorted(lk.state_dict()) == ['beta', 'graded_spikes_factor', 'reset_mechanism_val', 'threshold']\n"
            "cs.Leaky.reset_hidden(); assert not lk.mem.any()\n"
            "r = cs.RLeaky(beta=0.5, V=0.2, all_to_all=False); r(torch.ones(2)); print('ok')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


# ------------------------------------------------------------------ torch.compile

@pytest.mark.slow
def test_compile_fullgraph_equals_eager():
    """Leaky (same-step reset) and RLeaky (one-to-one) under torch.compile(fullgraph=True):
    spikes, membranes and gradients equal to eager (aot_eager: the traced graph itself;
    inductor: its fused code, to rounding)."""
    for backend in ("aot_eager", "inductor"):
        for cls, kw in (("Leaky", dict(beta=0.8, learn_beta=True, reset_delay=False)),
                        ("RLeaky", dict(beta=torch.tensor([0.8, 0.7, 0.9]), V=0.5, all_to_all=False,
                                        learn_beta=True))):
            if backend == "inductor" and cls == "RLeaky":
                continue
            torch._dynamo.reset()
            m = getattr(cs, cls)(**kw)
            x = torch.rand(4, 5, 3, generator=torch.Generator().manual_seed(3)) * 2
            res = []
            for mod in (torch.compile(m, fullgraph=True, backend=backend), m):
                xx = x.clone().requires_grad_(True)
                S, M = _seq(mod, xx)
                g = torch.autograd.grad((M ** 2).sum() + S.sum(), [xx, m.beta])
                res.append((S, M) + g)
            assert res[0][0].sum() > 0 and torch.equal(res[0][0], res[1][0])
            tol = 0 if backend == "aot_eager" else 1e-6
            for a, b in zip(res[0][1:], res[1][1:]):
                torch.testing.assert_close(a, b, rtol=tol, atol=tol)
