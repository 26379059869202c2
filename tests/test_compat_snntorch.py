import pytest
import torch

from ctsnn.compat import snntorch as cs

snn = pytest.importorskip("snntorch")


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("per_neuron", [False, True])
def test_leaky_matches_snntorch(reset, per_neuron):
    torch.manual_seed(3)
    n, T = 6, 300
    beta = (torch.rand(n, dtype=torch.float64) * 0.5 + 0.45) if per_neuron else 0.87
    th = 0.8
    ours = cs.Leaky(beta=beta, threshold=th, reset_mechanism=reset)
    theirs = snn.Leaky(beta=beta if per_neuron else torch.tensor(beta), threshold=th, reset_mechanism=reset)
    x = (torch.rand(T, 4, n, dtype=torch.float64) * 0.7).requires_grad_(True)
    m1 = m2 = None
    s1s, s2s, v1, v2 = [], [], [], []
    m2 = torch.zeros(4, n, dtype=torch.float64)
    for t in range(T):
        s1, m1 = ours(x[t], m1)
        s2, m2 = theirs(x[t], m2)
        s1s.append(s1); s2s.append(s2.to(s1)); v1.append(m1); v2.append(m2)
    S1, S2, V1, V2 = map(torch.stack, (s1s, s2s, v1, v2))
    assert torch.equal(S1, S2)
    assert S1.sum() > 50
    torch.testing.assert_close(V1, V2, rtol=0, atol=1e-6)
    g1, = torch.autograd.grad((V1 ** 2).sum() + S1.sum(), x, retain_graph=True)
    g2, = torch.autograd.grad((V2 ** 2).sum() + S2.sum(), x)
    torch.testing.assert_close(g1, g2, rtol=1e-5, atol=1e-5)


def test_leaky_errors():
    with pytest.raises(ValueError, match="reset_mechanism"):
        cs.Leaky(beta=0.9, reset_mechanism="bogus")
    with pytest.raises(ValueError, match="beta"):
        cs.Leaky(beta=0.0)
