"""`ctsnn fit` from the shell and fit()'s honesty: known generating parameters recovered, the stop
criterion reported, divergence and misuse said out loud, fit's own arguments checked by name.

The recordings are small synthetic sweeps made by ``ctsnn.simulate`` (fast, known truth)."""
import json
import math

import numpy as np
import pytest
import torch

import ctsnn
from ctsnn.cli import main

DT = 2.5e-4
TRUE = dict(tau_mem=15e-3, r=150e6, v_leak=-0.07)


def _spiking_npz(path, n=600, v_th=-0.045, v_reset=-0.065):
    """A LIF driven by a 300 pA step, every spike marked by a 20 mV peak sample (as a recorded
    action potential would be); returns (path, spike count)."""
    i = np.zeros(n)
    i[60:560] = 300e-12
    true = ctsnn.LIF(**TRUE, v_th=v_th, v_reset=v_reset)
    tr = ctsnn.simulate(true, torch.tensor(i[:-1])[:, None], t_end=(n - 1) * DT, dt=DT,
                        initial={"v": TRUE["v_leak"]}, dtype=torch.float64)
    v = tr["v"][:, 0].numpy().copy()
    v[np.ceil(tr.spike_times.numpy() / DT).astype(int)] = 0.02
    np.savez(path, t=np.arange(n) * DT, v=v, i=i, meta='{"units": {"t": "s", "v": "V", "i": "A"}}')
    return path, tr.n_spikes


def _passive_npz(path, n=600):
    i = np.zeros(n)
    i[100:500] = -50e-12
    i[200:300] = 80e-12
    m = ctsnn.LIF(**TRUE, v_th=0.0, v_reset=-0.08)
    tr = ctsnn.simulate(m, torch.tensor(i[:-1])[:, None], t_end=(n - 1) * DT, dt=DT,
                        initial={"v": TRUE["v_leak"]}, dtype=torch.float64)
    np.savez(path, t=np.arange(n) * DT, v=tr["v"][:, 0].numpy() * 1e3, i=i * 1e12,
             meta='{"units": {"t": "s", "v": "mV", "i": "pA"}}')
    return path


START = ["-p", "tau_mem=15ms", "-p", "r=150Mohm", "-p", "v_leak=-70mV", "-p", "v_reset=-65mV"]


def test_spike_threshold_fit_from_the_shell_keeps_v_th_above_v_reset(tmp_path, capsys):
    """--loss spikes --params v_th, started at half the data's rate: the first L-BFGS step lands
    v_th near v_reset (a crash before); the fit goes on and recovers v_th = -45 mV."""
    data, n_true = _spiking_npz(tmp_path / "spk.npz")
    out = tmp_path / "fit.json"
    rc = main(["fit", str(data), "--loss", "spikes", "--params", "v_th", *START, "-p", "v_th=-35mV",
               "--spike-threshold", "0V", "--spike-metric", "matched", "--mse-weight", "0",
               "-o", str(out), "--quiet"])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    d = json.loads(out.read_text())
    assert d["values"]["v_th"] == pytest.approx(-0.045, abs=2e-4)        # SI in the JSON
    assert d["units"]["v_th"] == "V" and d["success"] is True
    assert d["spike_counts"]["model"] == [n_true]
    assert "v_th" in printed.out and " mV " in printed.out               # mV for the reader
    assert f"spk {n_true}/{n_true}" in printed.out


def test_bounds_from_the_shell(tmp_path, capsys):
    data, n_true = _spiking_npz(tmp_path / "spk.npz")
    out = tmp_path / "fit.json"
    rc = main(["fit", str(data), "--loss", "spikes", "--params", "v_th", *START, "-p", "v_th=-40mV",
               "--bounds", "v_th=-48mV..-39mV", "--spike-threshold", "0V", "--spike-metric", "matched",
               "--mse-weight", "0", "-o", str(out), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    v = json.loads(out.read_text())["values"]["v_th"]
    assert -0.048 < v < -0.039 and v == pytest.approx(-0.045, abs=2e-4)
    capsys.readouterr()
    assert main(["fit", str(data), "--params", "v_th", "--bounds", "v_th=-40mV", "-o", str(tmp_path / "x.json")]) == 2
    assert "LO..HI" in capsys.readouterr().err


def test_passive_fit_prints_user_units_and_the_stop_criterion(tmp_path, capsys):
    data = _passive_npz(tmp_path / "cell.npz")
    out = tmp_path / "fit.json"
    rc = main(["fit", str(data), "--params", "tau_mem,r,v_leak", "-p", "tau_mem=30ms", "-p", "r=75Mohm",
               "-p", "v_leak=-50mV", "-p", "v_th=0V", "-p", "v_reset=-80mV", "-o", str(out)])
    cap = capsys.readouterr()
    assert rc == 0
    d = json.loads(out.read_text())
    for k, v in TRUE.items():
        assert d["values"][k] == pytest.approx(v, rel=1e-4)
    assert d["units"] == {"tau_mem": "s", "r": "ohm", "v_leak": "V"}
    lines = {ln.split("=")[0].strip(): ln for ln in cap.out.splitlines() if "±" in ln}
    assert lines["tau_mem"].split("=")[1].split()[0] == f"{15.0:.5g}" and " ms " in lines["tau_mem"]
    assert "MOhm" in lines["r"] and "mV" in lines["v_leak"]
    assert "converged:" in cap.out and ("gradient" in cap.out or "stopped changing" in cap.out)
    assert "at most" in cap.err and "left" in cap.err       # the progress line's estimate


def test_adam_climbing_is_reported_as_not_converged(tmp_path, capsys):
    """Adam with a step far too large: the loss rises; the fit says so, returns the best point
    seen (the start here), and exits with status 1."""
    data = _passive_npz(tmp_path / "cell.npz")
    out = tmp_path / "fit.json"
    rc = main(["fit", str(data), "--params", "tau_mem,r,v_leak", "-p", "tau_mem=16ms", "-p", "v_th=0V",
               "-p", "v_reset=-80mV", "-p", "r=150Mohm", "-p", "v_leak=-70mV", "--optimizer", "adam",
               "--lr", "3", "--max-iter", "6", "-o", str(out), "--quiet"])
    cap = capsys.readouterr()
    d = json.loads(out.read_text())
    hist = d["loss_history"]
    assert max(hist[1:]) > 10 * hist[0]                       # it did climb
    assert rc == 1 and d["success"] is False
    assert "DID NOT CONVERGE" in cap.out and "converged:" not in cap.out and "the loss rose" in cap.out
    assert d["loss"] == pytest.approx(min(hist), rel=1e-9)      # the best point seen is returned


def test_mse_fit_of_spiking_data_warns(tmp_path, capsys):
    data, _ = _spiking_npz(tmp_path / "spk.npz")
    rc = main(["fit", str(data), "--params", "tau_mem", *START, "-p", "v_th=-45mV", "--max-iter", "1",
               "-o", str(tmp_path / "f.json"), "--quiet"])
    err = capsys.readouterr().err
    assert rc in (0, 1)
    assert "warning: loss='mse' on recordings that spike" in err and "loss='spikes'" in err


def test_fit_arguments_are_checked_by_name():
    """#15.7: vr_tau=-1e-3 gave a loss of -3e63 and success; vr_tau=0 and spike_weight=nan blamed
    tau_mem. Each bad argument is now refused up front, by its own name."""
    n = 200
    rec = ctsnn.Recording(np.arange(n) * DT, np.full(n, -0.07), np.zeros(n))
    m = ctsnn.LIF(**TRUE, v_th=-0.05, v_reset=-0.065)
    cases = [(dict(loss="spikes", vr_tau=-1e-3), "vr_tau"), (dict(loss="spikes", vr_tau=0.0), "vr_tau"),
             (dict(loss="spikes", spike_weight=float("nan")), "spike_weight"),
             (dict(mse_weight=-1.0), "mse_weight"), (dict(lr=0.0, optimizer="adam"), "lr"),
             (dict(max_iter=0), "max_iter"), (dict(tol=float("inf")), "tol"),
             (dict(spike_window=(1e-3,)), "spike_window"),
             (dict(params="tau_mem"), "params"),
             (dict(params=("v_th",), bounds={"v_th": (-math.inf, 0.0)}), "bounds"), (dict(loss="spikes", spike_weight=0.0, mse_weight=0.0), "both 0")]
    for kw, name in cases:
        with pytest.raises(ValueError, match=name):
            ctsnn.fit(m, rec, **kw)
    # the wrong kind of value is a TypeError (ctsnn.validate's rule), still naming the argument
    for kw, name in ((dict(max_iter=2.5), "max_iter"), (dict(spike_threshold="high"), "spike_threshold")):
        with pytest.raises(TypeError, match=name):
            ctsnn.fit(m, rec, **kw)


def test_fitted_reset_stays_below_a_fixed_threshold():
    """Only v_reset fitted, the threshold fixed: the soft ceiling keeps every model valid and is
    the identity where it is not needed (the truth is recovered)."""
    path = __import__("pathlib").Path(__import__("tempfile").mkdtemp()) / "spk.npz"
    _spiking_npz(path, n=400, v_reset=-0.065)
    rec = ctsnn.io.load_npz(path)
    start = ctsnn.LIF(**TRUE, v_th=-0.045, v_reset=-0.0455)      # 0.5 mV under the threshold
    res = ctsnn.fit(start, rec, params=("v_reset",), loss="spikes", spike_metric="matched", mse_weight=0.0,
                    spike_threshold=0.0, stderr=False, max_iter=30)
    assert res.values["v_reset"] < -0.045
    assert res.values["v_reset"] == pytest.approx(-0.065, abs=5e-4), res.message


def _step_npz(path, amp, n=1400):
    """A LIF (TRUE; threshold -50 mV, reset -62 mV, 2 ms refractory) under a ``amp`` step from
    sample 100 to 1300, every spike drawn as an 80 mV, 1.25 ms action potential."""
    i = np.zeros(n)
    i[100:1300] = amp
    m = ctsnn.LIF(**TRUE, v_th=-0.05, v_reset=-0.062, t_ref=2e-3)
    tr = ctsnn.simulate(m, torch.tensor(i[:-1])[:, None], t_end=(n - 1) * DT, dt=DT,
                        initial={"v": TRUE["v_leak"]}, dtype=torch.float64)
    v = tr["v"][:, 0].numpy().copy()
    for j in np.ceil(tr.spike_times.numpy() / DT).astype(int):
        v[j:j + 5] = -0.05 + 0.08 * np.array([0.5, 1.0, 0.66, 0.33, 0.1])[: v[j:j + 5].size]
    np.savez(path, t=np.arange(n) * DT, v=v, i=i, meta='{"units": {"t": "s", "v": "V", "i": "A"}}')
    return path


def test_recipe_refuses_the_options_it_sets(tmp_path, capsys):
    f = _step_npz(tmp_path / "c_1.npz", 200e-12)
    for extra, opt in ((["--params", "v_th"], "--params"), (["--loss", "spikes"], "--loss"),
                       (["--window", "0s..0.1s"], "--window"), (["-p", "v_th=-50mV"], "-p")):
        assert main(["fit", str(f), "--recipe", "step", *extra, "-o", str(tmp_path / "x.json")]) == 2
        err = capsys.readouterr().err
        assert f"--recipe step chooses the models" in err and opt in err, err
    assert main(["fit", str(f), "--recipe", "step", "--models", "lif,hh", "-o", str(tmp_path / "x.json")]) == 2
    assert "unknown model 'hh'" in capsys.readouterr().err
    assert main(["fit", str(f), "--models", "lif", "-o", str(tmp_path / "x.json")]) == 2
    assert "give it with --recipe step" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


@pytest.mark.slow
def test_recipe_step_from_the_shell(tmp_path, capsys):
    """`ctsnn fit FILES --recipe step` on three synthetic steps: the JSON names the chosen model,
    its values and the per-sweep report; the many-cells form writes CELL.json and summary.csv;
    --models restricts the candidates."""
    files = [str(_step_npz(tmp_path / f"c_{k}.npz", a)) for k, a in enumerate((150e-12, 200e-12, 250e-12))]
    out = tmp_path / "fit.json"
    assert main(["fit", *files, "--recipe", "step", "--quiet", "-o", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["kind"] in ("lif", "alif_threshold", "alif_current")
    assert d["values"]["tau_mem"] == pytest.approx(TRUE["tau_mem"], rel=0.05)
    assert len(d["train"]) == 3 and all(abs(r["count_diff"]) <= 2 for r in d["train"])
    res_dir = tmp_path / "fits"
    res_dir.mkdir()
    assert main(["fit", str(tmp_path / "c_*.npz"), "--recipe", "step", "--quiet", "--out-dir", str(res_dir)]) == 0
    summary = (res_dir / "summary.csv").read_text()
    assert "model" in summary.splitlines()[0] and "train_abs_count_error" in summary
    assert json.loads((res_dir / "c.json").read_text())["kind"] == d["kind"]
    out1 = tmp_path / "lif.json"
    assert main(["fit", *files, "--recipe", "step", "--models", "lif", "--quiet", "-o", str(out1)]) == 0
    d1 = json.loads(out1.read_text())
    assert d1["kind"] == "lif" and list(d1["candidates"]) == ["lif"]
