"""ctsnn.fit: recovery of LIF parameters from noiseless synthetic data, discrete-layer tau, bad input."""
import json

import numpy as np
import pytest
import torch

import ctsnn
from ctsnn.fitting import gamma_factor, van_rossum

DT = 2.5e-4


def _synthetic(model, n=1600, v0=-0.07, cycles=1):
    i = np.zeros(n)
    i[200:1400] = -50e-12
    i[400:800] = 80e-12
    i = np.tile(i, cycles)
    n = i.size
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


def _with_noise(rec, snr_db, rng):
    """The recording with white Gaussian noise at ``snr_db`` (signal power = variance of v)."""
    sd = np.std(rec.v) / 10 ** (snr_db / 20)
    return ctsnn.Recording(rec.t, rec.v + rng.normal(0, sd, rec.v.size), rec.current,
                           input_spikes=rec.input_spikes), sd


CUBA = dict(tau_mem=15e-3, tau_syn=4e-3, r=150e6, v_leak=-0.07)


def _cuba_recording():
    # tau_syn is seen only through input spikes (the injected current goes to v directly)
    rng = np.random.default_rng(1)
    ts = np.sort(rng.uniform(0.01, 0.38, 24))
    w = rng.uniform(0.5e-10, 2e-10, ts.size)
    n = 1600
    i = np.zeros(n); i[200:1400] = -50e-12; i[400:800] = 80e-12
    m = ctsnn.CubaLIF(**CUBA, v_th=0.0, v_reset=-0.08)
    spikes = (torch.tensor(ts), torch.zeros(ts.size, dtype=torch.long), torch.tensor(w))
    tr = ctsnn.simulate(m, torch.tensor(i[:-1])[:, None], spikes, t_end=(n - 1) * DT, dt=DT,
                        initial={"v": -0.07}, dtype=torch.float64)
    return ctsnn.Recording(np.arange(n) * DT, tr["v"][:, 0].numpy(), i, input_spikes=(ts, w))


def test_cubalif_recovered_from_2x_away():
    rec = _cuba_recording()
    start = ctsnn.CubaLIF(**{k: 2 * v for k, v in CUBA.items()}, v_th=0.0, v_reset=-0.08)
    res = ctsnn.fit(start, rec, params=tuple(CUBA))
    for k, v in CUBA.items():
        assert res.values[k] == pytest.approx(v, rel=1e-4), (k, res.values)


ALIF = dict(tau_mem=15e-3, r=150e6, v_leak=-0.07, tau_adapt=60e-3, adapt_jump=4e-3)
ALIF_FIXED = dict(v_th=-0.045, v_reset=-0.075)


def _alif_recording(adaptation="threshold"):
    """A hyperpolarising step (passive part), then short strong pulses: each one makes exactly
    one spike for any adaptation within 2x of the truth, so the spike count does not change while
    the optimiser moves and the loss stays smooth (the spike times carry the gradient)."""
    n = 1400
    i = np.zeros(n); i[40:340] = -60e-12
    for k0 in (400, 480, 520, 700, 740, 1000, 1030, 1060, 1300):
        i[k0] = 20e-9 if adaptation == "threshold" else 16e-9  # one sample: a ~50 (40) mV kick
    m = ctsnn.ALIF(**ALIF, **ALIF_FIXED, adaptation=adaptation)
    tr = ctsnn.simulate(m, torch.tensor(i[:-1])[:, None], t_end=(n - 1) * DT, dt=DT,
                        initial={"v": -0.07}, dtype=torch.float64)
    assert tr.n_spikes == 9, tr.n_spikes
    return ctsnn.Recording(np.arange(n) * DT, tr["v"][:, 0].numpy(), i)


def _alif_two_stage(rec, adaptation="threshold"):
    """Every parameter starts 2x away (v_leak: half). Stage 1 fits the passive parameters to
    the spike-free window (a start with v_leak above threshold would fire without pause);
    stage 2 fits everything, adaptation still 2x away."""
    start = ctsnn.ALIF(**{k: (0.5 * v if k == "v_leak" else 2 * v) for k, v in ALIF.items()}, **ALIF_FIXED,
                       adaptation=adaptation)
    passive = ctsnn.fit(start, rec.window(0, 0.095), params=("tau_mem", "r", "v_leak"))
    return ctsnn.fit(passive.model, rec, params=tuple(ALIF))


@pytest.mark.parametrize("adaptation", ["threshold", "current"])
def test_alif_recovered_from_2x_away(adaptation):
    res = _alif_two_stage(_alif_recording(adaptation), adaptation)
    for k, v in ALIF.items():
        assert res.values[k] == pytest.approx(v, rel=1e-4), (k, res.values)
    assert [tr.n_spikes for tr in res.traces] == [9]


@pytest.mark.slow
def test_20db_noise_within_2_percent_and_stderr_consistent():
    """LIF at 20 dB SNR over 24 noise draws: every estimate within 2%, and the reported standard
    errors match the spread of the estimates (z = (estimate - truth)/stderr has unit variance:
    for 24 draws its sample variance lies in [0.4, 1.9] with probability > 99%, chi-square)."""
    rec0 = _synthetic(ctsnn.LIF(**TRUE, v_th=0.0, v_reset=-0.08), cycles=3)  # stderr(tau) ~ 0.4%
    rng = np.random.default_rng(7)
    start = ctsnn.LIF(**{k: 2 * v for k, v in TRUE.items()}, v_th=0.0, v_reset=-0.08)
    z = {k: [] for k in TRUE}
    for _ in range(24):
        rec, sd = _with_noise(rec0, 20, rng)
        res = ctsnn.fit(start, rec, params=tuple(TRUE))
        for k, v in TRUE.items():
            assert abs(res.values[k] / v - 1) < 0.02, (k, res.values[k])
            z[k].append((res.values[k] - v) / res.stderr[k])
        assert res.rmse == pytest.approx(sd, rel=0.1)  # residuals are the noise
    for k, zs in z.items():
        var = float(np.var(zs, ddof=1))
        assert 0.4 < var < 1.9, (k, var, zs)
        assert abs(float(np.mean(zs))) < 3 / np.sqrt(len(zs)) + 0.3, (k, np.mean(zs))


@pytest.mark.parametrize("which", ["cubalif", "alif_current", "alif_threshold"])
def test_20db_noise_cubalif_alif_within_2_percent(which):
    """One noise draw at 20 dB: estimates within 2% and within 4 reported standard errors.
    Threshold adaptation is seen in the membrane only through the 9 spike times (each shifts
    the reset by ~1 mV per mV of threshold): its stderr is ~3% here, so for that kind only the
    passive parameters are held to 2%, the adaptation ones to their standard errors."""
    rng = np.random.default_rng(11)
    if which == "cubalif":
        rec, _ = _with_noise(_cuba_recording(), 20, rng)
        start = ctsnn.CubaLIF(**{k: 2 * v for k, v in CUBA.items()}, v_th=0.0, v_reset=-0.08)
        res, truth = ctsnn.fit(start, rec, params=tuple(CUBA)), CUBA
    else:
        kind = which.split("_")[1]
        rec, _ = _with_noise(_alif_recording(kind), 20, rng)
        res, truth = _alif_two_stage(rec, kind), ALIF
    for k, v in truth.items():
        err = abs(res.values[k] / v - 1)
        if which == "alif_threshold" and k in ("tau_adapt", "adapt_jump"):
            assert res.stderr[k] / v > 0.01  # weakly identified, and reported as such
        else:
            assert err < 0.02, (k, res.values[k], res.stderr[k])
        assert abs(res.values[k] - v) < 4 * res.stderr[k], (k, res.values[k], res.stderr[k])


def test_series_resistance_and_excluded_artefact():
    """A recording with a bridge-balance error (v + r_series I) and a corrupted stretch: fitting
    r_series recovers it, and the excluded samples do not pull the fit."""
    rec0 = _synthetic(ctsnn.LIF(**TRUE, v_th=0.0, v_reset=-0.08))
    v = rec0.v + 20e6 * rec0.current
    v[400:404] += 0.05  # an artefact at the step onset
    rec = ctsnn.Recording(rec0.t, v, rec0.current).exclude(rec0.t[400], rec0.t[403])
    assert int((~rec.mask).sum()) == 4
    start = ctsnn.LIF(tau_mem=30e-3, r=75e6, v_leak=-0.035, v_th=0.0, v_reset=-0.08)
    res = ctsnn.fit(start, rec, params=("tau_mem", "r", "v_leak", "r_series"))
    for k, val in dict(TRUE, r_series=20e6).items():
        assert res.values[k] == pytest.approx(val, rel=1e-4), (k, res.values)
    with pytest.raises(ValueError, match="no samples"):
        rec.exclude(10.0, 11.0)
    with pytest.raises(ValueError, match="r_bridge"):
        ctsnn.fit(start, rec, params=("tau_mem", "r_bridge"))


def test_ca1_passive_fit_matches_single_exponential():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "fit_ca1", __import__("pathlib").Path(__file__).resolve().parents[1] / "examples" / "fit_ca1.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    from ctsnn import datasets
    res, ref = mod.analyse(datasets.path("ca1"))
    tau = res.values["tau_mem"]
    assert 5e-3 < tau < 30e-3
    assert abs(tau / ref["tau_single_exp_joint"] - 1) < 0.10
    assert res.stderr["tau_mem"] < 0.02 * tau
    assert res.rmse < 2e-3


def test_plot_fit_draws_data_model_and_residuals():
    from ctsnn import plot
    rec0 = _synthetic(ctsnn.LIF(**TRUE, v_th=0.0, v_reset=-0.08))
    rec = ctsnn.Recording(rec0.t, rec0.v + 20e6 * rec0.current, rec0.current).exclude(rec0.t[400], rec0.t[403])
    start = ctsnn.LIF(tau_mem=30e-3, r=75e6, v_leak=-0.035, v_th=0.0, v_reset=-0.08)
    res = ctsnn.fit(start, rec, params=("tau_mem", "r", "v_leak", "r_series"))
    top, bot = plot.fit(res)
    lines = {ln.get_gid(): ln for ln in top.lines + bot.lines}
    assert {"fit-data-0", "fit-excluded-0", "fit-model-0", "fit-residual-0"} <= set(lines)
    data_y = np.asarray(lines["fit-data-0"].get_ydata(), dtype=float)
    assert np.isnan(data_y[400:404]).all() and np.allclose(data_y[:400], rec.v[:400] * 1e3)
    # the model line is the simulation plus r_series * I, equal to the data (noiseless)
    model_y = np.asarray(lines["fit-model-0"].get_ydata(), dtype=float)
    assert np.allclose(model_y, rec.v * 1e3, atol=1e-4)
    resid = np.asarray(lines["fit-residual-0"].get_ydata(), dtype=float)
    assert np.nanmax(np.abs(resid)) < 1e-4
    assert "tau_mem = 0.015" in top.get_title()
    with pytest.raises(ValueError, match="sweep 3"):
        plot.fit(res, sweeps=[3])


def test_matched_spike_times_is_continuous_as_spikes_enter_the_window():
    from ctsnn.fitting import matched_spike_times
    rec = torch.tensor([0.1, 0.2, 0.3])
    T = 0.35
    # a fourth simulated spike entering at the window's end costs nothing at first
    a = matched_spike_times(torch.tensor([0.1, 0.2, 0.3, T]), rec, T)
    assert float(a) == pytest.approx(0.0, abs=1e-15)
    b = matched_spike_times(torch.tensor([0.1, 0.2, 0.3, T - 0.01]), rec, T)
    assert float(b) == pytest.approx(0.01 ** 2)
    x = torch.tensor([0.11, 0.2], dtype=torch.float64, requires_grad=True)
    L = matched_spike_times(x, rec, T)   # missing third spike padded with T
    assert float(L.detach()) == pytest.approx(0.01 ** 2 + 0.05 ** 2)
    (g,) = torch.autograd.grad(L, x)
    assert torch.allclose(g, torch.tensor([0.02, 0.0], dtype=torch.float64))


def test_spike_loss_recovers_threshold_from_spike_times():
    """loss='spikes' with the matched metric, membrane weight 0: v_th from spike times alone,
    started where the model fires half as often as the data."""
    n = 1200
    i = np.zeros(n); i[100:1100] = 300e-12
    true = ctsnn.LIF(**TRUE, v_th=-0.045, v_reset=-0.065)
    tr = ctsnn.simulate(true, torch.tensor(i[:-1])[:, None], t_end=(n - 1) * DT, dt=DT,
                        initial={"v": -0.07}, dtype=torch.float64)
    v = tr["v"][:, 0].numpy().copy()
    # mark each spike with a peak sample so that detect_spikes finds it (as in a real recording)
    k = np.ceil(tr.spike_times.numpy() / DT).astype(int)
    rec = ctsnn.Recording(np.arange(n) * DT, v, i)
    start = true.replace(v_th=-0.035)
    n_start = ctsnn.simulate(start, torch.tensor(i[:-1])[:, None], t_end=(n - 1) * DT, dt=DT,
                             initial={"v": -0.07}, dtype=torch.float64).n_spikes
    assert n_start < 0.7 * tr.n_spikes
    rec.v[k] = 0.02
    res = ctsnn.fit(start, rec, params=("v_th",), loss="spikes", spike_metric="matched", mse_weight=0.0,
                    spike_threshold=0.0, bounds={"v_th": (-0.06, -0.03)}, stderr=False)
    assert res.values["v_th"] == pytest.approx(-0.045, abs=2e-4)
    assert res.traces[0].n_spikes == tr.n_spikes


@pytest.mark.slow
def test_b6_step_recipe_predicts_the_held_out_sweep(tmp_path):
    """examples/fit_b6.py end to end: the step-protocol recipe fitted to sweeps 181-184 predicts
    sweep 185 within the targets of issue 18 (spike count within 10%, first spike within 3 ms)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "fit_b6", __import__("pathlib").Path(__file__).resolve().parents[1] / "examples" / "fit_b6.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main(tmp_path)
    out = json.loads((tmp_path / "fit_b6.json").read_text())
    assert (tmp_path / "fit_b6.png").stat().st_size > 10_000
    assert 5e-3 < out["values"]["tau_mem"] < 50e-3
    pred = out["test"]
    assert pred["sweep"] == "B6_IDRest_185" and pred["n_data"] == 89
    assert abs(pred["count_error"]) <= 0.10, pred
    assert abs(pred["latency_error"]) <= 3e-3, pred
    # Gamma(4 ms), the ISI error and the subthreshold EV are reported, not held to a value
    assert {"gamma", "isi_error", "ev"} <= set(pred)
