"""Bad input gives a clear error naming the problem, before anything is computed; an endless
event loop raises SimulationError instead of hanging."""
import math

import pytest
import torch

import ctsnn

TAU = 10e-3


@pytest.mark.parametrize("bad", [0.0, -1e-3, math.nan, math.inf])
def test_bad_time_constants(bad):
    with pytest.raises(ValueError, match="tau_mem"):
        ctsnn.LIF(tau_mem=bad)
    with pytest.raises(ValueError, match="tau_syn"):
        ctsnn.CubaLIF(tau_syn=bad, tau_mem=TAU)
    with pytest.raises(ValueError, match="tau_adapt"):
        ctsnn.ALIF(tau_mem=TAU, tau_adapt=bad, adapt_jump=0.1)
    with pytest.raises(ValueError, match="tau_mem"):
        ctsnn.LIF(tau_mem=torch.tensor([TAU, bad]))


@pytest.mark.parametrize("name", ["r", "v_leak", "v_th", "v_reset"])
def test_non_finite_parameters(name):
    with pytest.raises(ValueError, match=name):
        ctsnn.LIF(tau_mem=TAU, **{name: math.nan})
    with pytest.raises(ValueError, match=name):
        ctsnn.LIF(tau_mem=TAU, **{name: torch.tensor([0.0, math.inf])})


def test_reset_to_value_must_land_below_threshold():
    with pytest.raises(ValueError, match="v_reset"):
        ctsnn.LIF(tau_mem=TAU, v_th=1.0, v_reset=1.0)
    with pytest.raises(ValueError, match="v_reset"):
        ctsnn.LIF(tau_mem=TAU, v_th=1.0, v_reset=torch.tensor([0.0, 2.0]))
    with pytest.raises(ValueError, match="reset"):
        ctsnn.LIF(tau_mem=TAU, reset="zero-ish")


def test_negative_refractory_period_and_delay():
    with pytest.raises(ValueError, match="t_ref"):
        ctsnn.LIF(tau_mem=TAU, t_ref=-1e-3)
    with pytest.raises(ValueError, match="delay"):
        ctsnn.Recurrent(ctsnn.LIF(tau_mem=TAU), weight=0.1, delay=-1e-3)


@pytest.mark.parametrize("kw,match", [
    (dict(dt=0.0), "dt"), (dict(dt=-1e-4), "dt"), (dict(dt=math.nan), "dt"),
    (dict(t_end=-1.0), "t_end"), (dict(t_end=math.inf), "t_end"),
])
def test_bad_grid(kw, match):
    args = dict(t_end=0.1, dt=1e-4)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        ctsnn.simulate(ctsnn.LIF(tau_mem=TAU), 1.0, **args)


def test_non_finite_input():
    model = ctsnn.LIF(tau_mem=TAU)
    cur = torch.ones(100, 1)
    cur[50] = math.nan
    with pytest.raises(ValueError, match="current"):
        ctsnn.simulate(model, cur, t_end=0.01, dt=1e-4)
    with pytest.raises(ValueError, match="current"):
        ctsnn.simulate(model, math.inf, t_end=0.01, dt=1e-4)
    with pytest.raises(ValueError, match="current"):
        ctsnn.simulate(model, lambda t: math.nan if t > 0.005 else 1.0, t_end=0.01, dt=1e-4)
    with pytest.raises(ValueError, match="weights"):
        ctsnn.simulate(model, spikes=([0.001], [0], [math.nan]), t_end=0.01, dt=1e-4)
    with pytest.raises(ValueError, match="initial"):
        ctsnn.simulate(model, 1.0, initial={"v": math.nan}, t_end=0.01, dt=1e-4)
    with pytest.raises(ValueError, match="state"):
        ctsnn.simulate(model, 1.0, initial={"w": 0.0}, t_end=0.01, dt=1e-4)


def test_shape_mismatch():
    model = ctsnn.LIF(tau_mem=torch.full((3,), TAU))
    with pytest.raises(ValueError, match="shape mismatch"):
        ctsnn.simulate(model, torch.ones(100, 4), t_end=0.01, dt=1e-4)
    with pytest.raises(ValueError, match="time rows"):
        ctsnn.simulate(model, torch.ones(99, 3), t_end=0.01, dt=1e-4)
    with pytest.raises(ValueError, match="tau_mem"):
        ctsnn.LIF(tau_mem=torch.full((2, 3), TAU))


def test_bad_input_spikes():
    model = ctsnn.LIF(tau_mem=torch.full((3,), TAU))
    run = lambda sp: ctsnn.simulate(model, spikes=sp, t_end=0.01, dt=1e-4)  # noqa: E731
    with pytest.raises(ValueError, match="neuron indices"):
        run(([0.001], [3], [1.0]))
    with pytest.raises(ValueError, match="neuron indices"):
        run(([0.001], [-1], [1.0]))
    with pytest.raises(ValueError, match="sorted"):
        run(([0.002, 0.001], [0, 1], [1.0, 1.0]))
    with pytest.raises(ValueError, match=">= 0"):
        run(([-0.001], [0], [1.0]))
    with pytest.raises(ValueError, match="same length"):
        run(([0.001, 0.002], [0], [1.0]))


def test_unknown_method_lists_the_valid_ones():
    with pytest.raises(ValueError, match="exact"):
        ctsnn.simulate(ctsnn.LIF(tau_mem=TAU), 1.0, t_end=0.01, dt=1e-4, method="runge")


def test_endless_event_loop_raises_quickly():
    # an IF neuron with subtract reset under an enormous current would need ~1e6 resets per step
    with pytest.raises(ctsnn.SimulationError, match="events"):
        ctsnn.simulate(ctsnn.IF(reset="subtract"), 1e9, t_end=0.01, dt=1e-3, max_events_per_step=200)
