import pytest
import torch

from ctsnn.compat import spikingjelly as cj

sj = pytest.importorskip("spikingjelly.activation_based.neuron")
sur = pytest.importorskip("spikingjelly.activation_based.surrogate")


def _run(node, x):
    out, vs = [], []
    for t in range(x.shape[0]):
        out.append(node(x[t]))
        vs.append(node.v)
    return torch.stack(out), torch.stack(vs)


@pytest.mark.parametrize("kind,decay_input", [("lif", True), ("lif", False), ("if", True)])
@pytest.mark.parametrize("v_reset", [0.0, None, -0.2])
@pytest.mark.parametrize("sg", ["sigmoid", "atan"])
@pytest.mark.parametrize("detach_reset", [False, True])
def test_node_matches_spikingjelly(kind, v_reset, decay_input, sg, detach_reset):
    torch.manual_seed(5)
    T, B, n = 300, 3, 5
    x = (torch.rand(T, B, n, dtype=torch.float64) * (1.5 if decay_input else 0.6)).requires_grad_(True)
    peer_sg = sur.Sigmoid(alpha=4.0) if sg == "sigmoid" else sur.ATan(alpha=2.0)
    alpha = 4.0 if sg == "sigmoid" else 2.0
    if kind == "lif":
        ours = cj.LIFNode(tau=3.0, decay_input=decay_input, v_threshold=0.9, v_reset=v_reset,
                          surrogate_function=sg, alpha=alpha, detach_reset=detach_reset)
        theirs = sj.LIFNode(tau=3.0, decay_input=decay_input, v_threshold=0.9, v_reset=v_reset,
                            surrogate_function=peer_sg, detach_reset=detach_reset)
    else:
        ours = cj.IFNode(v_threshold=0.9, v_reset=v_reset, surrogate_function=sg, alpha=alpha, detach_reset=detach_reset)
        theirs = sj.IFNode(v_threshold=0.9, v_reset=v_reset, surrogate_function=peer_sg, detach_reset=detach_reset)
    S1, V1 = _run(ours, x)
    S2, V2 = _run(theirs, x)
    assert torch.equal(S1, S2.to(S1))
    assert S1.sum() > 50
    torch.testing.assert_close(V1, V2.to(V1), rtol=0, atol=1e-13)       # measured 4.4e-16 (float64)
    g1, = torch.autograd.grad((V1 ** 2).sum() + S1.sum(), x)
    g2, = torch.autograd.grad((V2 ** 2).sum() + S2.sum(), x)
    torch.testing.assert_close(g1, g2.to(g1), rtol=1e-12, atol=1e-13)   # measured 1.4e-14


def test_errors():
    with pytest.raises(ValueError, match="tau"):
        cj.LIFNode(tau=0)


@pytest.mark.parametrize("kind", ["lif", "if"])
def test_multistep_matches_spikingjelly(kind):
    torch.manual_seed(7)
    x = (torch.rand(300, 2, 4, dtype=torch.float64) * 1.5).requires_grad_(True)
    if kind == "lif":
        ours = cj.LIFNode(tau=4.0, v_threshold=0.8, step_mode="m")
        theirs = sj.LIFNode(tau=4.0, v_threshold=0.8, step_mode="m")
    else:
        ours = cj.IFNode(v_reset=None, step_mode="m")
        theirs = sj.IFNode(v_reset=None, step_mode="m")
    S1, S2 = ours(x), theirs(x)
    assert torch.equal(S1, S2.to(S1)) and S1.sum() > 50
    torch.testing.assert_close(ours.v, theirs.v.to(ours.v), rtol=0, atol=1e-13)   # measured 1.1e-16
    g1, = torch.autograd.grad(S1.sum() + (ours.v ** 2).sum(), x)
    g2, = torch.autograd.grad(S2.sum() + (theirs.v ** 2).sum(), x)
    torch.testing.assert_close(g1, g2.to(g1), rtol=1e-12, atol=1e-13)             # measured 1.1e-16


# measured max |v ours - spikingjelly| (2026-12-03): 1.1e-16 (float64), 9.7e-8 (float32); gradients
# 5.3e-15 (float64), 2.6e-6 (float32)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-13), (torch.float32, 1e-6)])
@pytest.mark.parametrize("kind", ["lif", "if"])
def test_multistep_classes_and_surrogate_objects(kind, dtype, tol):
    """MultiStepLIFNode/MultiStepIFNode with spikingjelly surrogate objects, random parameters,
    against spikingjelly's step_mode='m' nodes, float64 and float32."""
    g = torch.Generator().manual_seed(11)
    tau = float(1.5 + 8 * torch.rand((), generator=g))
    th = float(0.5 + torch.rand((), generator=g))
    alpha = float(1.0 + 3 * torch.rand((), generator=g))
    x = (torch.rand(320, 3, 6, generator=g, dtype=torch.float64) * 2 * th).to(dtype).requires_grad_(True)
    peer_sg = sur.ATan(alpha=alpha)
    if kind == "lif":
        ours = cj.MultiStepLIFNode(tau=tau, v_threshold=th, v_reset=None, surrogate_function=sur.ATan(alpha=alpha))
        theirs = sj.LIFNode(tau=tau, v_threshold=th, v_reset=None, surrogate_function=peer_sg, step_mode="m")
    else:
        ours = cj.MultiStepIFNode(v_threshold=th, v_reset=-0.1, surrogate_function="ATan", alpha=alpha)
        theirs = sj.IFNode(v_threshold=th, v_reset=-0.1, surrogate_function=peer_sg, step_mode="m")
    S1, S2 = ours(x), theirs(x)
    assert torch.equal(S1, S2.to(S1)) and S1.sum() > 100
    torch.testing.assert_close(ours.v, theirs.v.to(ours.v), rtol=0, atol=tol)
    g1, = torch.autograd.grad(S1.sum() + (ours.v ** 2).sum(), x)
    g2, = torch.autograd.grad(S2.sum() + (theirs.v ** 2).sum(), x)
    torch.testing.assert_close(g1, g2.to(g1), rtol=10 * tol, atol=10 * tol)


def test_detach_input_cuts_only_the_gradient():
    x = (torch.rand(50, 2, 3, dtype=torch.float64) * 2).requires_grad_(True)
    a, b = cj.MultiStepLIFNode(tau=3.0), cj.MultiStepLIFNode(tau=3.0, detach_input=True)
    sa, sb = a(x), b(x)
    assert torch.equal(sa, sb) and torch.equal(a.v, b.v)
    assert not sb.requires_grad


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="surrogate_function"):
        cj.LIFNode(surrogate_function="Erf")
    with pytest.raises(ValueError, match="alpha"):
        cj.IFNode(alpha=0.0)
    with pytest.raises(ValueError, match="step_mode"):
        cj.MultiStepLIFNode(step_mode="s")


@pytest.mark.parametrize("name", ["ATan", "Sigmoid"])
def test_named_surrogate_takes_spikingjellys_default_alpha(name):
    """A surrogate given by name without alpha is spikingjelly's default object (ATan 2, Sigmoid 4),
    on the fused multi-step path and the single-step one."""
    torch.manual_seed(7)
    x = (torch.rand(300, 2, 6, dtype=torch.float64) * 1.5).requires_grad_(True)
    w = torch.randn(300, 2, 6, dtype=torch.float64)
    peer = sj.LIFNode(tau=3.0, v_reset=None, surrogate_function=getattr(sur, name)(), step_mode="m")
    ours = cj.MultiStepLIFNode(tau=3.0, v_reset=None, surrogate_function=name)
    sp, so = peer(x), ours(x)
    assert torch.equal(sp, so) and sp.sum() > 0
    assert ours.layer.last_backend == "fused"
    gp, = torch.autograd.grad((sp * w).sum(), x)
    go, = torch.autograd.grad((so * w).sum(), x)
    assert torch.allclose(go, gp, rtol=1e-10, atol=1e-12)
