"""ctsnn.fit: recovery of LIF parameters from noiseless synthetic data, discrete-layer tau, bad input."""
import json

import numpy as np
import pytest
import torch

import ctsnn
from ctsnn.fitting import gamma_factor, van_rossum

DT = 2.5e-4


def _synthetic(model, n=1600, v0=-0.07):
    i = np.zeros(n)
    i[200:1400] = -50e-12
    i[400:800] = 80e-12
    tr = ctsnn.simulate(model, torch.tensor(i[:-1])[:, None], t_end=(n - 1) * DT, dt=DT,
                        initial={"v": v0}, dtype=torch.float64)
    return ctsnn.Recording(np.arange(n) * DT, tr["v"][:, 0].numpy(), i, name="synthetic")


TRUE = dict(tau_mem=15e-3, r=150e6, v_leak=-0.07)


@pytest.mark.parametrize("optimizer", ["lbfgs", "least_squares"])
def test_lif_recovered_from_2x_away(optimizer):
    rec = _synthetic(ctsnn.LIF(**TRUE, v_th=0.0, v_reset=-0.08))
    start = ctsnn.LIF(tau_mem=30e-3, r=75e6, v_leak=-0.035, v_th=0.0, v_reset=-0.08)
    res = ctsnn.fit(start, rec, optimizer=optimizer, max_iter=100)
    for k, v in TRUE.items():
        assert res.values[k] == pytest.approx(v, rel=1e-4), (k, res.values)
    assert res.rmse < 1e-7
    d = json.loads(res.to_json())
    assert d["values"]["tau_mem"] == pytest.approx(res.values["tau_mem"])
    assert float(res.model.p("tau_mem", torch.float64, "cpu")[0]) == pytest.approx(15e-3, rel=1e-4)


def test_discrete_decay_gives_tau():
    # v_{k+1} = beta v_k + (1 - beta) r I_k on the grid; a continuous LIF must recover tau = -dt/ln(beta)
    beta, r = 0.98, 1e8
    rng = np.random.default_rng(0)
    i = np.repeat(rng.normal(0, 2e-10, 80), 20)
    i[:40] = 0.0  # fit starts at the steady state v_leak + r I_0 (here 0)
    v = np.zeros(i.size)
    for k in range(i.size - 1):
        v[k + 1] = beta * v[k] + (1 - beta) * r * i[k]
    rec = ctsnn.Recording(np.arange(i.size) * DT, v, i)
    start = ctsnn.LIF(tau_mem=2 * -DT / np.log(beta), r=0.5 * r, v_leak=0.0, v_th=10.0)
    res = ctsnn.fit(start, rec, params=("tau_mem", "r"), optimizer="least_squares")
    assert res.values["tau_mem"] == pytest.approx(-DT / np.log(beta), rel=1e-4)
    assert res.values["r"] == pytest.approx(r, rel=1e-4)


def test_fit_bad_input():
    rec = _synthetic(ctsnn.LIF(**TRUE, v_th=0.0, v_reset=-0.08), n=200)
    m = ctsnn.LIF(tau_mem=0.02, v_leak=-0.07, v_th=0.0, v_reset=-0.08)
    with pytest.raises(ValueError, match="tau_adapt"):
        ctsnn.fit(m, rec, params=("tau_mem", "tau_adapt"))
    with pytest.raises(ValueError, match="optimizer"):
        ctsnn.fit(m, rec, optimizer="newton")
    with pytest.raises(ValueError, match="loss"):
        ctsnn.fit(m, rec, loss="l7")
    t = rec.t.copy(); t[100:] += 1e-5
    with pytest.raises(ValueError, match="uniformly"):
        ctsnn.fit(m, ctsnn.Recording(t, rec.v, rec.current))
    with pytest.raises(ValueError, match="at least one"):
        ctsnn.fit(m, [])


def test_spike_metrics():
    a = np.array([0.1, 0.2, 0.3, 0.4])
    assert gamma_factor(a, a, window=4e-3, duration=1.0) == pytest.approx(1.0)
    assert float(van_rossum(torch.tensor(a), torch.tensor(a), 10e-3)) == pytest.approx(0.0, abs=1e-12)
    assert float(van_rossum(torch.tensor(a), torch.tensor(a + 1e-3), 10e-3)) > 0
