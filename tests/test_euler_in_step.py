"""Forward Euler with in-step event times (``simulate(method="euler", events="in_step")``).

References: the closed-form Euler recurrence of an LIF under DC (the membrane after k steps is
``v_inf (1 - (1 - h/tau)^k)`` from 0, so the line between steps crosses threshold at a time we
can write down), the exact spike time ``tau ln(r I / (r I - v_th))`` (order-1 convergence), central
finite differences of the same discretisation (gradients), and a solo run (neurons do not
disturb each other).
"""
import math

import pytest
import torch

import ctsnn

TAU, RI, VTH = 20e-3, 1.5, 1.0


def _lif(**kw):
    return ctsnn.LIF(tau_mem=kw.pop("tau_mem", TAU), r=1.0, v_leak=0.0, v_th=VTH, v_reset=0.0,
                     dtype=torch.float64, **kw)


def _euler_first_crossing(h):
    """The first crossing of Euler's piecewise-linear solution, by hand."""
    q = 1 - h / TAU
    k = 0
    v = 0.0
    while True:
        v_next = RI + (v - RI) * q
        if v_next >= VTH:
            return k * h + h * (VTH - v) / (v_next - v)
        v, k = v_next, k + 1


@pytest.mark.parametrize("h", [1e-3, 3e-4])
def test_first_spike_is_the_crossing_of_eulers_line(h):
    tr = ctsnn.simulate(_lif(), RI, t_end=0.05, dt=h, method="euler", events="in_step", record=())
    assert float(tr.spike_times[0]) == pytest.approx(_euler_first_crossing(h), abs=1e-13)
    # the default puts it at the end of that step
    end = ctsnn.simulate(_lif(), RI, t_end=0.05, dt=h, method="euler", record=())
    assert float(end.spike_times[0]) == pytest.approx(math.ceil(_euler_first_crossing(h) / h - 1e-9) * h, abs=1e-12)


def test_spike_times_converge_at_order_one():
    """Every spike of 0.2 s: the error against the exact times falls tenfold per tenfold dt."""
    exact = TAU * math.log(RI / (RI - VTH))
    ref = torch.arange(1, 10, dtype=torch.float64) * exact
    errs = []
    for h in (1e-4, 1e-5):
        tr = ctsnn.simulate(_lif(), RI, t_end=0.2, dt=h, method="euler", events="in_step", record=(), progress=False)
        assert tr.spike_times.numel() == 9
        errs.append(float((tr.spike_times - ref).abs().max()))
    assert 8 < errs[0] / errs[1] < 12.5, errs


def test_spike_time_gradient_matches_finite_differences():
    """d(sum of spike times)/d(tau_mem) and d/d(v_th) through the implicit-function gradient on
    Euler's line equal central differences of the same discretisation."""
    h = 1e-4

    def total(tau, vth):
        m = _lif(tau_mem=tau).replace(v_th=vth)
        return ctsnn.simulate(m, RI, t_end=0.1, dt=h, method="euler", events="in_step", record=()).spike_times.sum()

    tau = torch.tensor(TAU, dtype=torch.float64, requires_grad=True)
    vth = torch.tensor(VTH, dtype=torch.float64, requires_grad=True)
    total(tau, vth).backward()
    e = 1e-8
    fd_tau = (float(total(TAU + e, VTH)) - float(total(TAU - e, VTH))) / (2 * e)
    fd_vth = (float(total(TAU, VTH + e)) - float(total(TAU, VTH - e))) / (2 * e)
    assert float(tau.grad) == pytest.approx(fd_tau, rel=1e-5)
    assert float(vth.grad) == pytest.approx(fd_vth, rel=1e-5)


def test_a_neuron_is_not_disturbed_by_anothers_spikes():
    """Each neuron runs on its own clock: in a batch with a fast-firing neighbour the slow neuron's
    spikes and membrane equal its solo run to the last bit; AdEx (nonlinear drift) included."""
    for model in (_lif(), ctsnn.AdEx(dtype=torch.float64)):
        cur = torch.tensor([[1.5, 3.0]] if isinstance(model, ctsnn.LIF) else [[0.9e-9, 2.0e-9]], dtype=torch.float64)
        both = ctsnn.simulate(model, cur, t_end=0.1, dt=1e-4, method="euler", events="in_step")
        solo = ctsnn.simulate(model, cur[:, :1], t_end=0.1, dt=1e-4, method="euler", events="in_step")
        assert torch.equal(both["v"][:, 0], solo["v"][:, 0])
        assert torch.equal(both.spike_times[both.spike_neurons == 0], solo.spike_times)
        assert (both.spike_neurons == 1).sum() > (both.spike_neurons == 0).sum() > 0


def test_refractory_period_and_bad_option():
    """With t_ref the first spike is unchanged and the second comes t_ref later (the membrane is
    held at the reset, then charges as after the first); an unknown mode is refused by name."""
    h = 1e-4
    plain = ctsnn.simulate(_lif(), RI, t_end=0.06, dt=h, method="euler", events="in_step", record=()).spike_times
    ref = ctsnn.simulate(_lif(t_ref=2e-3), RI, t_end=0.06, dt=h, method="euler", events="in_step",
                         record=()).spike_times
    assert float(ref[0]) == float(plain[0])
    # after the release at t1 + t_ref the charge restarts from the reset on Euler's grid-free line
    # steps, which are shifted; the interval agrees with the plain one to order dt
    assert float(ref[1] - ref[0]) == pytest.approx(float(plain[1] - plain[0]) + 2e-3, abs=2 * h)
    with pytest.raises(ValueError, match="events must be one of"):
        ctsnn.simulate(_lif(), RI, t_end=0.01, dt=h, method="euler", events="middle")


def test_per_neuron_parameters_in_one_population():
    """Neurons with their own time constants and thresholds in one population (each neuron's
    in-step events use its own parameters): every spike train and membrane equals the neuron's
    solo run, for a linear model (LIF) and a nonlinear one (AdEx)."""
    lif = ctsnn.LIF(tau_mem=torch.tensor([20e-3, 7e-3, 13e-3], dtype=torch.float64), r=1.0, v_leak=0.0,
                    v_th=torch.tensor([1.0, 0.8, 1.2], dtype=torch.float64), v_reset=0.0, dtype=torch.float64)
    adex = ctsnn.AdEx(V_T=torch.tensor([-50.4e-3, -52e-3, -49e-3], dtype=torch.float64), dtype=torch.float64)
    for model, amp in ((lif, 1.6), (adex, 1.2e-9)):
        cur = torch.full((1, 3), amp, dtype=torch.float64)
        both = ctsnn.simulate(model, cur, t_end=0.1, dt=1e-4, method="euler", events="in_step")
        for j in range(3):
            one = model.replace(**{k: v[j:j + 1] for k, v in model.params().items() if v.dim() == 1 and v.numel() == 3})
            solo = ctsnn.simulate(one, cur[:, :1], t_end=0.1, dt=1e-4, method="euler", events="in_step")
            assert solo.spike_times.numel() > 2
            assert torch.equal(both.spike_times[both.spike_neurons == j], solo.spike_times)
            assert torch.equal(both["v"][:, j], solo["v"][:, 0])
