"""Nonlinear models (AdEx, QIF, Izhikevich): closed forms, scipy references, errors."""
import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

import ctsnn

TIGHT = dict(rtol=1e-10, atol=1e-13)


def _scipy_spikes(model, I, t_end, y0):
    """Reference: scipy solve_ivp (DOP853) with a terminal event at v_peak and the model's jump,
    driven through the model's own drift (float64)."""
    S = model.n_states
    u = torch.tensor([[[I]]], dtype=torch.float64)
    J, k = model.jump_map(0, torch.float64)
    vp = float(model.p("v_peak", torch.float64)[0])

    def f(t, y):
        return model.drift(t, torch.tensor(y, dtype=torch.float64).reshape(1, 1, S), u).reshape(-1).numpy()

    def ev(t, y):
        return y[0] - vp
    ev.terminal, ev.direction = True, 1
    t, y, spikes = 0.0, np.asarray(y0, dtype=float), []
    while t < t_end:
        sol = solve_ivp(f, (t, t_end), y, method="DOP853", events=ev, rtol=1e-12, atol=1e-15)
        if sol.status == 1:
            t = float(sol.t_events[0][0])
            spikes.append(t)
            y = (J.numpy() @ sol.y_events[0][0]) + k.numpy()[0]
        else:
            break
    return np.array(spikes)


def test_qif_closed_form_dc():
    tau, I, vp = 0.01, 0.5, 10.0
    c = I - 0.25
    T = tau * (math.atan((vp - 0.5) / math.sqrt(c)) - math.atan((0 - 0.5) / math.sqrt(c))) / math.sqrt(c)
    for m in ("dopri5", "dopri8"):
        tr = ctsnn.simulate(ctsnn.QIF(tau_mem=tau, v_peak=vp), current=I, t_end=0.1, dt=1e-3,
                            method=m, dtype=torch.float64, **TIGHT)
        k = int(0.1 / T)
        assert tr.spike_times.shape[0] == k
        ref = T * torch.arange(1, k + 1, dtype=torch.float64)
        assert (tr.spike_times - ref).abs().max() < 1e-7


def test_adex_matches_solve_ivp():
    model = ctsnn.AdEx()
    I, t_end = 0.8e-9, 0.3
    ref = _scipy_spikes(model, I, t_end, [model.E_L.item(), 0.0])
    assert len(ref) >= 5
    tr = ctsnn.simulate(model, current=I, t_end=t_end, dt=1e-3, method="dopri5", dtype=torch.float64,
                        **TIGHT)
    assert tr.spike_times.shape[0] == len(ref)
    assert np.abs(tr.spike_times.numpy() - ref).max() < 1e-6
    # the adaptation current increases by b at each spike
    b = model.b.item()
    assert torch.allclose(tr.spike_post[:, 1] - tr.spike_pre[:, 1], torch.full((len(ref),), b, dtype=torch.float64))


def test_izhikevich_matches_solve_ivp():
    model = ctsnn.Izhikevich()
    I, t_end = 10.0, 0.2
    ref = _scipy_spikes(model, I, t_end, [-65.0, -13.0])
    assert len(ref) >= 4
    tr = ctsnn.simulate(model, current=I, t_end=t_end, dt=1e-3, method="dopri5", dtype=torch.float64,
                        **TIGHT)
    assert tr.spike_times.shape[0] == len(ref)
    assert np.abs(tr.spike_times.numpy() - ref).max() < 1e-6


def test_euler_converges_on_adex():
    model = ctsnn.AdEx()
    ref = ctsnn.simulate(model, current=0.8e-9, t_end=0.1, dt=1e-3, method="dopri5",
                         dtype=torch.float64, **TIGHT).spike_times
    errs = []
    for dt in (2e-5, 1e-5):
        eu = ctsnn.simulate(model, current=0.8e-9, t_end=0.1, dt=dt, method="euler", dtype=torch.float64)
        assert eu.spike_times.shape == ref.shape
        errs.append((eu.spike_times - ref).abs().max().item())
    assert errs[1] < 0.75 * errs[0]


def test_exp_overflow_guard():
    """A state far above V_T gives a finite drift (clamped exponent), not inf/NaN."""
    model = ctsnn.AdEx()
    y = torch.tensor([[[1.0, 0.0]]], dtype=torch.float64)    # 1 V: exp(725) would overflow
    f = model.drift(0.0, y, torch.zeros(1, 1, 1, dtype=torch.float64))
    assert torch.isfinite(f).all()


@pytest.mark.parametrize("model", [ctsnn.AdEx(), ctsnn.QIF(tau_mem=0.01), ctsnn.Izhikevich()])
def test_exact_refuses_nonlinear(model):
    assert model.linear_part() is None
    with pytest.raises(ValueError, match="dopri5"):
        ctsnn.simulate(model, current=0.0, t_end=0.01, dt=1e-3, method="exact")


def test_bad_parameters():
    with pytest.raises(ValueError, match="Delta_T"):
        ctsnn.AdEx(Delta_T=0.0)
    with pytest.raises(ValueError, match="v_c"):
        ctsnn.QIF(tau_mem=0.01, v_c=-1.0)
    with pytest.raises(ValueError, match="c "):
        ctsnn.Izhikevich(c=40.0)
    with pytest.raises(ValueError, match="tau_mem"):
        ctsnn.QIF(tau_mem=-0.01)


def test_per_neuron_parameters_batch():
    """Per-neuron Izhikevich parameters: each neuron equals its scalar twin."""
    a = torch.tensor([0.02, 0.1], dtype=torch.float64)
    d = torch.tensor([8.0, 2.0], dtype=torch.float64)
    pop = ctsnn.simulate(ctsnn.Izhikevich(a=a, d=d), current=10.0, t_end=0.06, dt=1e-3, method="dopri5",
                         dtype=torch.float64, **TIGHT)
    for j in range(2):
        one = ctsnn.simulate(ctsnn.Izhikevich(a=float(a[j]), d=float(d[j])), current=10.0, t_end=0.06,
                             dt=1e-3, method="dopri5", dtype=torch.float64, **TIGHT)
        mine = pop.spike_times[pop.spike_neurons == j]
        assert mine.shape == one.spike_times.shape and mine.numel() >= 2
        assert (mine - one.spike_times).abs().max() < 1e-8


def test_parameter_conversions_kept_by_the_drift_follow_grad_mode_and_updates():
    """The drift keeps each parameter's converted tensor between evaluations: a run without
    autograd must not hand its tensors to a later run with it, and an in-place update (an
    optimiser step) must be seen; each gradient equals that of a freshly built model."""
    def grad_of(model, C):
        tr = ctsnn.simulate(model, 1.2e-9, t_end=0.1, dt=1e-4, method="euler", events="in_step", record=())
        tr.spike_times.sum().backward()
        g = float(C.grad)
        C.grad = None
        return g, tr.spike_times.detach()

    C = torch.nn.Parameter(torch.tensor(281e-12, dtype=torch.float64))
    model = ctsnn.AdEx(dtype=torch.float64).replace(C=C)
    with torch.no_grad():
        ctsnn.simulate(model, 1.2e-9, t_end=0.1, dt=1e-4, method="euler", events="in_step", record=())
    for step in range(2):
        g, spikes = grad_of(model, C)
        C2 = torch.nn.Parameter(C.detach().clone())
        g2, spikes2 = grad_of(ctsnn.AdEx(dtype=torch.float64).replace(C=C2), C2)
        assert spikes.numel() > 3 and torch.equal(spikes, spikes2)
        assert g == g2 and g != 0.0
        with torch.no_grad():
            C.mul_(1.1)


def test_a_model_that_ran_with_gradients_can_be_copied_and_pickled():
    """The drift's kept parameter conversions (here float64 parameters in a float32 run with
    autograd: non-leaf tensors) stay out of copies and pickles; the copy simulates the same."""
    import copy
    import pickle

    model = ctsnn.AdEx()
    C = torch.nn.Parameter(torch.tensor(281e-12))
    model = model.replace(C=C)
    run = lambda m: ctsnn.simulate(m, 1.2e-9, t_end=0.05, dt=1e-4, method="euler", dtype=torch.float32,  # noqa: E731
                                   record=())
    first = run(model)
    assert first.spike_times.numel() > 0
    for other in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert torch.equal(run(other).spike_times.detach(), first.spike_times.detach())
