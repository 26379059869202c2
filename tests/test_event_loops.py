"""Endless event loops are stopped by their structure (ctsnn.events.EventLoopGuard), and finite
cascades and chains still run to the end.

Each case below used to run until ``max_events_per_step`` events of one neuron had been located one
by one (24 s to several minutes); the guard raises after a few events. The tests are kept short
so that a regression shows as a slow test; nothing here measures time."""
import functools
import math

import pytest
import torch

import ctsnn

TAU = 10e-3
F64 = torch.float64
# the guard under test is the torch path's; the compiled engine (auto for these models) has its
# own per-step bound, checked in test_input_faster_than_the_reset_raises_on_both_backends
simulate = functools.partial(ctsnn.simulate, backend="torch")


def test_runaway_all_to_all_recurrence_raises_naming_neuron_time_and_cause():
    # 50 LIF neurons, all-to-all W = 2 (twice the threshold gap), no refractory period: the first
    # spike lifts every neuron above threshold, their spikes lift it back, round after round, at
    # one instant t = tau ln 2 (the first crossing under rI = 2).
    n = 50
    model = ctsnn.Recurrent(ctsnn.LIF(tau_mem=TAU, n=n), weight=torch.full((n, n), 2.0, dtype=F64))
    cur = torch.full((1, n), 2.0, dtype=F64)
    cur[0, 1:] = 1.5                           # neuron 0 crosses first
    with pytest.raises(ctsnn.SimulationError, match=r"endless event loop: neuron \d+ .*t=0\.0069314718"):
        simulate(model, cur, t_end=0.02, dt=1e-3, dtype=F64)


def test_runaway_growing_cascade_with_subtract_resets_raises():
    # subtracted resets do not repeat a state: each round adds 5 * 0.5 and removes 1 per neuron
    n = 5
    model = ctsnn.Recurrent(ctsnn.LIF(tau_mem=TAU, n=n, reset="subtract"),
                            weight=torch.full((n, n), 0.5, dtype=F64))
    with pytest.raises(ctsnn.SimulationError, match="re-excited"):
        simulate(model, 2.0, t_end=0.02, dt=1e-3, dtype=F64)


def test_simulation_error_is_importable_from_every_layer():
    from ctsnn.errors import SimulationError as a
    from ctsnn.simulate import SimulationError as b
    assert a is b is ctsnn.SimulationError
    assert issubclass(a, RuntimeError)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("model", [ctsnn.IF(reset="subtract"), ctsnn.LIT(tau_mem=TAU),
                                   ctsnn.LIF(tau_mem=TAU, v_reset=0.999999, reset="subtract")],
                         ids=["IF", "LIT", "LIF-tiny-subtract"])
def test_input_faster_than_the_reset_raises_with_the_projected_count(model, dtype):
    # IF: dv/dt = 1e9 with a subtracted reset of 1 fires every 1e-9 s, 1e6 times per 1 ms step;
    # LIT: the same through a leak; LIF subtracting 1e-6: every ~1e-10 s. The train is periodic
    # (or, in float32, faster than the step's time resolution), so the count is projected.
    I = 1e9 if not isinstance(model, ctsnn.LIF) else 100.0
    with pytest.raises(ctsnn.SimulationError, match=r"too many events: neuron 0 .*max_events_per_step=1000"):
        simulate(model, I, t_end=0.01, dt=1e-3, dtype=dtype)


@pytest.mark.parametrize("backend", ["engine", "torch"])
def test_input_faster_than_the_reset_raises_on_both_backends(backend):
    with pytest.raises(ctsnn.SimulationError, match="reset lands at or above threshold"):
        ctsnn.simulate(ctsnn.IF(reset="subtract"), 1e9, t_end=0.01, dt=1e-3, dtype=F64, backend=backend)


def test_chain_at_one_instant_beyond_the_budget_raises_at_once():
    # an input spike of 5000 thresholds into a subtract-reset LIF: 5000 spikes at one instant
    model = ctsnn.LIF(tau_mem=TAU, reset="subtract")
    with pytest.raises(ctsnn.SimulationError, match="at one instant"):
        simulate(model, spikes=([2.5e-3], [0], [5000.25]), t_end=0.01, dt=1e-3, dtype=F64)


def test_chain_at_one_instant_within_the_budget_runs():
    # an input spike of 20.25 thresholds: v goes 20.25 -> 19.25 -> ... -> 0.25, 20 spikes at t_s,
    # the j-th with left limit 20.25 - j and right limit 19.25 - j
    model = ctsnn.LIF(tau_mem=TAU, reset="subtract")
    ts = 2.5e-3
    tr = simulate(model, spikes=([ts], [0], [20.25]), t_end=0.01, dt=1e-3, dtype=F64)
    assert tr.n_spikes == 20
    assert bool((tr.spike_times == ts).all())
    j = torch.arange(20, dtype=F64)
    assert torch.allclose(tr.spike_pre[:, 0], 20.25 - j, rtol=0, atol=1e-12)
    assert torch.allclose(tr.spike_post[:, 0], 19.25 - j, rtol=0, atol=1e-12)


def test_finite_cascade_that_re_excites_a_neuron_runs():
    # A (rI = 2) crosses at T = tau ln 2; B (rI = 1) is then at 1 - e^{-T/tau} = 0.5.
    # A -> B adds 0.8: B at 1.3 fires, resets to 0; B -> A adds 1.5: A (reset to 0) fires again
    # at the same instant, higher above threshold than the first time; A -> B adds 0.8: B at 0.8
    # stays below. Three events at T, then A = 0 and B = 0.8.
    W = torch.tensor([[0.0, 1.5], [0.8, 0.0]], dtype=F64)       # W[post, pre]
    model = ctsnn.Recurrent(ctsnn.LIF(tau_mem=TAU, n=2), weight=W)
    T = TAU * math.log(2.0)
    cur = torch.tensor([[2.0, 1.0]], dtype=F64)
    tr = simulate(model, cur, t_end=T + 2e-4, dt=1e-4, dtype=F64, record=("v",))
    assert tr.n_spikes == 3
    assert tr.spike_neurons.tolist() == [0, 1, 0]
    assert float((tr.spike_times - T).abs().max()) < 1e-15
    assert torch.allclose(tr.spike_pre[:, 0], torch.tensor([1.0, 1.3, 1.5], dtype=F64), atol=1e-12)
    # at the end (2e-4 s later): A charges from 0, B relaxes from 0.8 towards 1
    t = tr.t[-1] - T
    vA, vB = 2.0 * -math.expm1(-t / TAU), 1.0 + (0.8 - 1.0) * math.exp(-t / TAU)
    assert abs(float(tr["v"][-1, 0]) - vA) < 1e-12 and abs(float(tr["v"][-1, 1]) - vB) < 1e-12


def test_refractory_period_breaks_the_loop():
    # the runaway network of the first test, with t_ref = 1 ms: one spike per neuron per 1 ms at most
    n = 5
    model = ctsnn.Recurrent(ctsnn.LIF(tau_mem=TAU, n=n, t_ref=1e-3), weight=torch.full((n, n), 2.0, dtype=F64))
    tr = simulate(model, 2.0, t_end=0.01, dt=1e-3, dtype=F64, record=())
    assert tr.n_spikes > 0
    for j in range(n):
        assert bool((torch.diff(tr.spikes(j)) >= 1e-3 - 1e-12).all())
