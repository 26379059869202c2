"""Edge cases of ``simulate``'s arguments found by the property tests: each gives the closed-form
answer or a clear error that names the argument, on both backends."""
import math

import pytest
import torch

import ctsnn


@pytest.mark.parametrize("backend", ["engine", "torch"])
def test_dt_longer_than_t_end_is_one_short_step(backend):
    # LIF with v_reset = v_leak = 0, v_th = 1, drive 2: first spike at tau ln 2 (closed form)
    tau = 0.03125
    m = ctsnn.LIF(tau, dtype=torch.float64)
    tr = ctsnn.simulate(m, 2.0, t_end=0.0625, dt=1e308, backend=backend)
    assert tr.t.tolist() == [0.0, 0.0625]
    period = tau * math.log(2.0)
    assert tr.n_spikes == math.floor(0.0625 / period)
    assert torch.allclose(tr.spike_times, period * torch.arange(1, tr.n_spikes + 1, dtype=torch.float64),
                          atol=1e-13, rtol=0)


@pytest.mark.parametrize("backend", ["engine", "torch"])
def test_string_current_names_the_argument(backend):
    with pytest.raises(TypeError, match="current"):
        ctsnn.simulate(ctsnn.LIF(1e-2), "10ms", t_end=0.01, dt=1e-3, backend=backend)


@pytest.mark.parametrize("backend", ["engine", "torch"])
def test_overflowing_current_raises_instead_of_nan(backend):
    with pytest.raises(ValueError, match="current"):
        ctsnn.simulate(ctsnn.LIF(0.03125, dtype=torch.float64), 1e308, t_end=0.0625, dt=0.001953125,
                       backend=backend)
