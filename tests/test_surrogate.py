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
