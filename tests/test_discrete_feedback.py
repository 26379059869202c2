"""discretize: recurrent feedback on the grid, state_map, learn_decay."""
import math

import pytest
import torch
from torch import nn

import ctsnn
from ctsnn import discretize

T = 300




def _reference(x, tau, th, W, dt):
    """Hand-written reference (test only): v <- e^{-dt/tau} v + x_t + W s_{t-1}; s = H(v - th);
    v <- v - s th (immediate subtract reset)."""
    v = torch.zeros(x.shape[1:], dtype=x.dtype)
    s = torch.zeros_like(v)
    beta = math.exp(-dt / tau)
    out = []
    for t in range(x.shape[0]):
        v = beta * v + x[t] + s @ W.T
        s = (v > th).to(x.dtype)
        v = v - s * th
        out.append(s)
    return torch.stack(out)


@pytest.mark.parametrize("delay", [0.0, 1e-3])
def test_all_to_all_feedback_one_step_later(delay):
    g = torch.Generator().manual_seed(1)
    n, dt = 5, 1e-3
    W = torch.randn(n, n, generator=g, dtype=torch.float64) * 0.4
    x = torch.rand(T, 3, n, generator=g, dtype=torch.float64) * 0.6
    model = ctsnn.Recurrent(ctsnn.LIF(tau_mem=0.01, v_th=1.0, reset="subtract"), weight=W, delay=delay)
    out = discretize(model, dt).run(x).out
    ref = _reference(x, 0.01, 1.0, W, dt)
    assert torch.equal(out, ref) and out.sum() > 100
    # the same feedback as a module (no bias) and one-to-one as the diagonal
    lin = nn.Linear(n, n, bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(W)
    out2 = discretize(ctsnn.Recurrent(model.base, weight=lin, delay=dt), dt).run(x).out
    assert torch.equal(out2, ref)
    V = torch.diagonal(W).clone()
    out3 = discretize(ctsnn.Recurrent(model.base, weight=V, delay=dt), dt).run(x).out
    assert torch.equal(out3, _reference(x, 0.01, 1.0, torch.diag(V), dt))


def test_feedback_errors():
    lif = ctsnn.LIF(tau_mem=0.01)
    with pytest.raises(ValueError, match="delay"):
        discretize(ctsnn.Recurrent(lif, weight=torch.eye(2), delay=2e-3), 1e-3)
    with pytest.raises(ValueError, match="discretize"):
        ctsnn.simulate(ctsnn.Recurrent(lif, weight=nn.Linear(2, 2)), current=torch.zeros(10, 2),
                       t_end=1e-2, dt=1e-3)
    with pytest.raises(ValueError, match="state_map"):
        discretize(lif, 1e-3, state_map=3)
    with pytest.raises(ValueError, match="learn_decay"):
        discretize(ctsnn.CubaLIF(tau_syn=0.005, tau_mem=0.01), 1e-3, learn_decay=True)


@pytest.mark.parametrize("method", ["exact", "euler"])
def test_learn_decay_matches_continuous_parameters(method):
    g = torch.Generator().manual_seed(2)
    tau = torch.tensor([0.005, 0.01, 0.03], dtype=torch.float64)
    model = ctsnn.LIF(tau_mem=tau, v_leak=0.1, v_th=1.0)
    x = torch.rand(T, 2, 3, generator=g, dtype=torch.float64) * 60
    a = discretize(model, 1e-3, method=method, input="zoh")
    b = discretize(model, 1e-3, method=method, input="zoh", learn_decay=True)
    assert isinstance(b.decay, nn.Parameter) and b.decay.shape == (3, 1)
    ran = a.run(x)
    oa, ya = ran.out, ran.state
    ran = b.run(x)
    ob, yb = ran.out, ran.state
    assert torch.equal(oa, ob) and oa.sum() > 50
    torch.testing.assert_close(ya, yb, rtol=0, atol=1e-12)
    (ob.sum() + yb.sum()).backward()
    assert b.decay.grad is not None and torch.isfinite(b.decay.grad).all()
    if method == "exact":
        torch.testing.assert_close(b.to_model().tau_mem, tau)


def test_state_map_applied_before_threshold():
    model = ctsnn.IF(v_th=1.0)
    x = torch.full((5, 1, 1), 0.3)
    clamp = lambda y: y.clamp(max=0.5)  # noqa: E731
    ran = discretize(model, 1.0, state_map=clamp).run(x)
    out, y = ran.out, ran.state
    assert out.sum() == 0 and float(y) == 0.5


def test_constants_follow_parameter_changes():
    """Step constants are reused between calls only while the parameters are unchanged."""
    layer = discretize(ctsnn.LIF(tau_mem=0.01, v_th=1.0), 1e-3)
    x = torch.full((1, 1), 0.8, dtype=torch.float64)
    assert layer(x)[0].item() == 0
    with torch.no_grad():
        layer.model.v_th.fill_(0.5)  # in place
    assert layer(x)[0].item() == 1
    layer.model.v_th = torch.tensor(2.0, dtype=torch.float64)  # replaced
    assert layer(x)[0].item() == 0
