import pytest
import torch

from ctsnn import surrogate


def _fwd_bwd(fn, x):
    x = x.clone().requires_grad_(True)
    y = fn(x)
    y.sum().backward()
    return y.detach().double(), x.grad.double()


@pytest.mark.parametrize("name,peer,kw", [("atan", "atan", {"alpha": 2.0}), ("atan", "atan", {"alpha": 3.5}),
                                          ("fast_sigmoid", "fast_sigmoid", {"slope": 25.0})])
def test_matches_snntorch(name, peer, kw):
    sn = pytest.importorskip("snntorch.surrogate")
    x = torch.cat([torch.linspace(-2, 2, 401), torch.zeros(1)])
    ours = _fwd_bwd(surrogate.get(name, **kw), x)
    theirs = _fwd_bwd(getattr(sn, peer)(**kw), x)
    assert torch.equal(ours[0], theirs[0])
    torch.testing.assert_close(ours[1], theirs[1], rtol=1e-6, atol=1e-7)


def test_fire_at_zero_and_errors():
    s = surrogate.atan(fire_at_zero=True)(torch.zeros(1))
    assert s.item() == 1.0
    assert surrogate.atan()(torch.zeros(1)).item() == 0.0
    with pytest.raises(ValueError, match="alpha"):
        surrogate.atan(alpha=0)
    with pytest.raises(ValueError, match="unknown"):
        surrogate.get("nope")


def test_superspike_and_norse_kinds():
    g = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0], dtype=torch.float64)
    s, d = _fwd_bwd(surrogate.get("superspike", beta=2.0), g)
    assert s.tolist() == [0, 0, 0, 1, 1]
    torch.testing.assert_close(d, 1 / (2 * g.abs() + 1) ** 2)
    _, d = _fwd_bwd(surrogate.get("triangle", alpha=0.5), g)
    torch.testing.assert_close(d, 0.5 * torch.relu(1 - g.abs()))
    with pytest.raises(ValueError, match="beta"):
        surrogate.superspike(beta=0)
    with pytest.raises(ValueError, match="alpha"):
        surrogate.heavi_circ(alpha=-1.0)
    with pytest.raises(ValueError, match="unknown argument"):
        surrogate.get("heavi_tanh", alpha=1.0)


_PI = 3.141592653589793
CLOSED_FORM = {  # ds/dg written out from the module docstring, independently of the code
    "atan": ({"alpha": 2.0}, lambda g: 1.0 / (1 + (_PI / 2 * 2.0 * g) ** 2)),
    "fast_sigmoid": ({"slope": 25.0}, lambda g: 1 / (25.0 * g.abs() + 1) ** 2),
    "superspike": ({"beta": 3.0}, lambda g: 1 / (3.0 * g.abs() + 1) ** 2),
    "sigmoid": ({"slope": 4.0}, lambda g: 4.0 * torch.sigmoid(4.0 * g) * torch.sigmoid(-4.0 * g)),
    "gaussian": ({"mu": 0.1, "sigma": 0.4, "grad_scale": 1.3},
                 lambda g: 1.3 * torch.exp(-0.5 * ((g - 0.1) / 0.4) ** 2) / (0.4 * (2 * _PI) ** 0.5)),
    "triangle": ({"alpha": 0.7}, lambda g: 0.7 * (1 - g.abs()).clamp_min(0)),
}


@pytest.mark.parametrize("name", list(CLOSED_FORM))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_derivative_closed_form_and_overwrite(name, dtype):
    """The ``derivative`` tag (what the fused kernel's backward uses) against the closed form, and
    bit for bit the same whether it may overwrite its argument or not (it does, for the common
    kinds); the surrogate's autograd backward gives the same values."""
    kw, ref = CLOSED_FORM[name]
    fn = surrogate.get(name, **kw)
    g = torch.randn(5000, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 2
    expect = ref(g)
    assert float(expect.abs().max()) > 0.1
    g = g.to(dtype)
    d = fn.derivative(g)
    tol = 1e-12 if dtype == torch.float64 else 2e-6
    torch.testing.assert_close(d.double(), expect, rtol=tol * 10, atol=tol)
    assert torch.equal(fn.derivative(g.clone(), overwrite=True), d)
    x = g.clone().requires_grad_(True)
    fn(x).sum().backward()
    assert torch.equal(x.grad, d)
