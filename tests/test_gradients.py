"""Differentiable spike times: closed forms, finite differences, gradcheck, grazing clamp.

Both the exact method and the torchdiffeq methods attach event-time gradients by the implicit
function theorem at each crossing (with the saltation correction after the jump).
"""
import math

import pytest
import torch

import ctsnn
from ctsnn.events import GRAZING_EPS, attach_event_time

TAU, I0, TH = 0.02, 1.5, 1.0
TIGHT = dict(rtol=1e-10, atol=1e-13)
METHODS = {"exact": {}, "dopri5": TIGHT, "dopri8": TIGHT}


def _leaf(x):
    return torch.tensor(x, dtype=torch.float64, requires_grad=True)


@pytest.mark.parametrize("method", list(METHODS))
def test_lif_dc_first_spike_closed_form(method):
    tau, th, I = _leaf(TAU), _leaf(TH), _leaf(I0)
    tr = ctsnn.simulate(ctsnn.LIF(tau_mem=tau, v_th=th), current=I, t_end=0.03, dt=1e-3, method=method,
                        dtype=torch.float64,
                        **METHODS[method])
    assert tr.spike_times.shape[0] == 1
    g = torch.autograd.grad(tr.spike_times[0], [tau, th, I])
    ref = [math.log(I0 / (I0 - TH)), TAU / (I0 - TH), -TAU * TH / (I0 * (I0 - TH))]
    for got, want in zip(g, ref):
        assert abs(float(got) / want - 1) < 1e-6, (float(got), want)


def _lif_times(params, method, k):
    tau, th, vr, r, vl = params
    # a fixed start (init_state starts at v_leak but detached from it)
    tr = ctsnn.simulate(ctsnn.LIF(tau_mem=tau, v_th=th, v_reset=vr, r=r, v_leak=vl), current=1.4,
                        initial={"v": 0.0}, t_end=0.12, dt=1e-3, method=method, dtype=torch.float64, **METHODS[method])
    return tr.spike_times[:k]


@pytest.mark.parametrize("method", ["exact", "dopri5"])
def test_later_spikes_finite_differences(method):
    base = [TAU, 1.0, 0.1, 1.1, -0.05]
    names = ["tau_mem", "v_th", "v_reset", "r", "v_leak"]
    leaves = [_leaf(x) for x in base]
    t = _lif_times(leaves, method, 4)
    assert t.shape[0] == 4
    grads = torch.autograd.grad(t[3], leaves)
    for j, name in enumerate(names):
        h = 1e-6 * max(1.0, abs(base[j]))
        hi = list(base); lo = list(base)
        hi[j] += h; lo[j] -= h
        fd = (float(_lif_times(hi, method, 4)[3]) - float(_lif_times(lo, method, 4)[3])) / (2 * h)
        assert abs(float(grads[j]) - fd) < 1e-6 * max(1.0, abs(fd)), (name, float(grads[j]), fd)


def _input_spike_run(ts, w, method):
    spikes = (ts, torch.zeros(ts.shape[0], dtype=torch.long), w)
    tr = ctsnn.simulate(ctsnn.CubaLIF(tau_syn=5e-3, tau_mem=TAU), current=0.9, spikes=spikes, t_end=0.02,
                        dt=1e-3, method=method, dtype=torch.float64, **METHODS[method])
    return tr.spike_times


@pytest.mark.parametrize("method", ["exact", "dopri5"])
def test_input_spike_times_and_weights(method):
    ts0 = [0.0031, 0.0105, 0.0203]
    w0 = [2.0, 2.5, 1.5]
    ts, w = _leaf(ts0), _leaf(w0)
    out = _input_spike_run(ts, w, method)
    assert out.shape[0] >= 1
    gt, gw = torch.autograd.grad(out[0], [ts, w])
    h = 1e-7
    for j in range(3):
        e = torch.eye(3, dtype=torch.float64)[j] * h
        fd_t = (_input_spike_run(torch.tensor(ts0, dtype=torch.float64) + e, torch.tensor(w0, dtype=torch.float64), method)[0]
                - _input_spike_run(torch.tensor(ts0, dtype=torch.float64) - e, torch.tensor(w0, dtype=torch.float64), method)[0]) / (2 * h)
        fd_w = (_input_spike_run(torch.tensor(ts0, dtype=torch.float64), torch.tensor(w0, dtype=torch.float64) + e, method)[0]
                - _input_spike_run(torch.tensor(ts0, dtype=torch.float64), torch.tensor(w0, dtype=torch.float64) - e, method)[0]) / (2 * h)
        assert abs(float(gt[j] - fd_t)) < 1e-6 * max(1.0, abs(float(fd_t)))
        assert abs(float(gw[j] - fd_w)) < 1e-6
    # an input after the first output spike cannot move it
    assert float(gt[2]) == 0.0 and float(gw[2]) == 0.0


@pytest.mark.parametrize("method", ["exact", "dopri5"])
def test_gradcheck_cubalif(method):
    def f(tau_syn, tau_mem, th):
        tr = ctsnn.simulate(ctsnn.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, v_th=th), current=1.8,
                            t_end=0.05, dt=1e-3, method=method, dtype=torch.float64, **METHODS[method])
        assert tr.spike_times.shape[0] == 3
        return tr.spike_times
    assert torch.autograd.gradcheck(f, (_leaf(5e-3), _leaf(TAU), _leaf(1.0)), eps=1e-7, atol=1e-7,
                                    rtol=1e-4)


@pytest.mark.parametrize("adaptation", ["threshold", "current"])
def test_gradcheck_alif(adaptation):
    def f(tau_adapt, jump, tau_mem):
        tr = ctsnn.simulate(ctsnn.ALIF(tau_mem=tau_mem, tau_adapt=tau_adapt, adapt_jump=jump,
                                       adaptation=adaptation), current=2.0, t_end=0.06, dt=1e-3,
                            dtype=torch.float64)
        assert tr.spike_times.shape[0] >= 3
        return tr.spike_times[:3]
    assert torch.autograd.gradcheck(f, (_leaf(0.05), _leaf(0.3), _leaf(TAU)), eps=1e-7, atol=1e-7,
                                    rtol=1e-4)


def test_gradients_reach_later_states():
    """A state recorded after a spike depends on the spike time (reset moved in time)."""
    tau = _leaf(TAU)
    tr = ctsnn.simulate(ctsnn.LIF(tau_mem=tau), current=I0, t_end=0.03, dt=1e-3, dtype=torch.float64)
    v_end = tr["v"][-1, 0]
    (g,) = torch.autograd.grad(v_end, [tau])
    h = 1e-7
    fd = (float(ctsnn.simulate(ctsnn.LIF(tau_mem=TAU + h), current=I0, t_end=0.03, dt=1e-3, dtype=torch.float64)["v"][-1, 0])
          - float(ctsnn.simulate(ctsnn.LIF(tau_mem=TAU - h), current=I0, t_end=0.03, dt=1e-3, dtype=torch.float64)["v"][-1, 0])) / (2 * h)
    assert abs(float(g) - fd) < 1e-5 * abs(fd)


def test_grazing_clamp_unit():
    p = _leaf(2.0)
    t = attach_event_time(torch.tensor([0.1], dtype=torch.float64), p * 0 - (p - 2.0), torch.zeros(1))
    (g,) = torch.autograd.grad(t.sum(), [p])
    assert torch.isfinite(g) and float(g) == pytest.approx(1.0 / GRAZING_EPS)


@pytest.mark.parametrize("method", ["exact", "dopri5"])
def test_grazing_crossing_finite(method):
    """DC barely above threshold: dg/dt = (rI - th)/tau = 5e-10 /s at the crossing, below the
    clamp, so dt1/dth = 1/GRAZING_EPS (finite) instead of 1/(5e-10)."""
    th = _leaf(1.0)
    I = 1.0 + 1e-11
    t1 = TAU * math.log(I / (I - 1.0))
    I = torch.tensor(I, dtype=torch.float64)     # a Python float current is read in float32 first
    opts = dict(rtol=1e-12, atol=1e-15) if method == "dopri5" else {}
    tr = ctsnn.simulate(ctsnn.LIF(tau_mem=TAU, v_th=th), current=I, t_end=0.52, dt=1e-2, method=method,
                        **opts)
    assert tr.spike_times.shape[0] == 1
    assert abs(float(tr.spike_times[0].detach()) - t1) < 1e-3
    (g,) = torch.autograd.grad(tr.spike_times[0], [th])
    assert torch.isfinite(g)
    assert float(g) == pytest.approx(1.0 / GRAZING_EPS, rel=1e-3)
