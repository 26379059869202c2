"""The command line: units, the simulate subcommand, errors."""
import math
import subprocess
import sys

import pytest
import torch

import ctsnn
from ctsnn.cli import main
from ctsnn.units import parse_quantity, parse_step


@pytest.mark.parametrize("text,dim,value", [
    ("10ms", "time", 10e-3), ("0.1ms", "time", 1e-4), ("2nA", "current", 2e-9),
    ("-70mV", "voltage", -70e-3), ("100Mohm", "resistance", 100e6), ("1e-3", None, 1e-3),
    ("250 us", "time", 250e-6), ("5pF", "capacitance", 5e-12),
])
def test_parse_quantity(text, dim, value):
    assert parse_quantity(text, dim) == pytest.approx(value, rel=1e-15)


@pytest.mark.parametrize("text,dim,match", [
    ("10mV", "time", "is a voltage, expected a time"),
    ("10 parsecs", "time", "unknown unit"),
    ("ten ms", "time", "cannot read"),
    ("inf", None, "cannot read|not finite"),
])
def test_parse_quantity_errors(text, dim, match):
    with pytest.raises(ValueError, match=match):
        parse_quantity(text, dim, name="x")


def test_parse_step():
    assert parse_step("1.5nA@20ms..120ms") == pytest.approx((1.5e-9, 0.02, 0.12))
    amp, t0, t1 = parse_step("2nA")
    assert (amp, t0, t1) == (pytest.approx(2e-9), 0.0, math.inf)
    with pytest.raises(ValueError, match="end after it starts"):
        parse_step("1nA@5ms..1ms")


def test_simulate_command_writes_the_closed_form_trace(tmp_path, capsys):
    out = tmp_path / "lif.npz"
    # tau 10 ms, R = 100 Mohm, I = 0.3 nA -> r I = 30 mV above rest, threshold 20 mV above rest
    rc = main(["simulate", "-p", "tau_mem=10ms", "-p", "r=100Mohm", "-p", "v_leak=-70mV",
               "-p", "v_th=-50mV", "-p", "v_reset=-70mV", "--current", "0.3nA@20ms..180ms",
               "--dt", "0.1ms", "--t-end", "200ms", "-o", str(out), "--quiet"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "output events" in printed and str(out) in printed
    tr = ctsnn.Trace.load(out)
    isi = 10e-3 * math.log(30 / (30 - 20))
    onset = 0.02
    n_expected = int((0.18 - onset) / isi)
    assert tr.n_spikes == n_expected
    expected = onset + isi * torch.arange(1, n_expected + 1, dtype=torch.float64)
    # the current switches on at a grid point, so the in-step spike times are exact
    assert torch.allclose(tr.spike_times, expected, atol=1e-12, rtol=0)
    assert tr["v"].shape == (2001, 1)
    assert float(tr["v"][0, 0]) == pytest.approx(-70e-3)


def test_simulate_command_reports_bad_values(tmp_path, capsys):
    assert main(["simulate", "-p", "tau_mem=-10ms", "-o", str(tmp_path / "x.npz"), "--quiet"]) == 2
    assert "tau_mem" in capsys.readouterr().err
    assert main(["simulate", "-p", "tau_mem=10mV", "-o", str(tmp_path / "x.npz"), "--quiet"]) == 2
    assert "expected a time" in capsys.readouterr().err
    assert main(["simulate", "--dt=-1ms", "-o", str(tmp_path / "x.npz"), "--quiet"]) == 2
    assert "--dt" in capsys.readouterr().err


def test_python_dash_m_help():
    res = subprocess.run([sys.executable, "-m", "ctsnn", "simulate", "--help"], capture_output=True,
                         text=True, check=True)
    assert "--current" in res.stdout and "--dt" in res.stdout and "units" in res.stdout


def test_simulate_with_plot_and_plot_command(tmp_path):
    import matplotlib.image

    from ctsnn.cli import main

    npz, png = tmp_path / "t.npz", tmp_path / "t.png"
    assert main(["simulate", "--model", "lif", "--current", "0.3nA@10ms..90ms", "--dt", "0.1ms",
                 "--t-end", "100ms", "-o", str(npz), "--plot", str(png), "--quiet"]) == 0
    img = matplotlib.image.imread(png)
    assert img.shape[0] > 100 and img.std() > 0.01
    for kind in ("membrane", "raster", "states"):
        out = tmp_path / f"{kind}.png"
        assert main(["plot", str(npz), "--kind", kind, "-o", str(out)]) == 0
        assert out.stat().st_size > 5000


def test_plot_command_errors(tmp_path, capsys):
    from ctsnn.cli import main

    assert main(["plot", str(tmp_path / "missing.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err


def _synthetic_npz(path, tau=15e-3, r=150e6, v_leak=-0.07):
    import numpy as np
    dt, n = 2.5e-4, 1600
    i = np.zeros(n); i[200:1400] = -50e-12; i[400:800] = 80e-12
    m = ctsnn.LIF(tau_mem=tau, r=r, v_leak=v_leak, v_th=0.0, v_reset=-0.08)
    tr = ctsnn.simulate(m, torch.tensor(i[:-1])[:, None], t_end=(n - 1) * dt, dt=dt,
                        initial={"v": v_leak}, dtype=torch.float64)
    v = tr["v"][:, 0].numpy()
    # stored in mV / pA, as the units in meta say
    np.savez(path, t=np.arange(n) * dt, v=v * 1e3, i=i * 1e12,
             meta='{"units": {"t": "s", "v": "mV", "i": "pA"}}')
    return path


def test_fit_command_writes_json_and_plot(tmp_path, capsys):
    import json
    data = _synthetic_npz(tmp_path / "cell.npz")
    out, png = tmp_path / "fit.json", tmp_path / "fit.png"
    rc = main(["fit", str(data), "--model", "lif", "--params", "tau_mem,r,v_leak", "-p", "tau_mem=30ms",
               "-p", "r=75Mohm", "-p", "v_leak=-50mV", "-p", "v_th=0V", "-p", "v_reset=-80mV",
               "--exclude", "100ms..101ms", "-o", str(out), "--plot", str(png)])
    assert rc == 0
    captured = capsys.readouterr()
    assert "tau_mem" in captured.out and "±" in captured.out
    assert "fit: eval" in captured.err                     # progress while it runs
    d = json.loads(out.read_text())
    assert d["values"]["tau_mem"] == pytest.approx(15e-3, rel=1e-4)
    assert d["values"]["r"] == pytest.approx(150e6, rel=1e-4)
    assert d["stderr"]["tau_mem"] >= 0
    assert png.stat().st_size > 10_000


def test_fit_command_errors(tmp_path, capsys):
    data = _synthetic_npz(tmp_path / "cell.npz")
    assert main(["fit", str(tmp_path / "missing.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["fit", str(data), "--params", "tau_mem,tau_adapt"]) == 2
    assert "tau_adapt" in capsys.readouterr().err
    assert main(["fit", str(data), "--window", "0.1s-0.2s"]) == 2
    assert "T0..T1" in capsys.readouterr().err
    assert main(["fit", str(data), "--window", "0.1s..9s"]) == 2
    assert "outside the recording" in capsys.readouterr().err
    assert main(["fit", str(data), "--sweeps", "3"]) == 2
    assert "NWB" in capsys.readouterr().err


def test_simulate_nonlinear_with_tolerances(tmp_path, capsys):
    """--model adex with an adaptive method and its tolerances: the same spikes as the Python
    API with the same options; --step-size for the fixed-grid methods; exact refused clearly."""
    out = tmp_path / "adex.npz"
    assert main(["simulate", "--model", "adex", "--method", "dopri5", "--rtol", "1e-8", "--atol", "1e-10",
                 "--current", "1nA@10ms..190ms", "--dt", "0.1ms", "--t-end", "200ms", "-o", str(out),
                 "--quiet"]) == 0
    tr = ctsnn.Trace.load(out)
    steps = round(0.2 / 1e-4)
    cur = torch.zeros(steps, 1, dtype=torch.float64)
    cur[100:1900] = 1e-9
    ref = ctsnn.simulate(ctsnn.AdEx(), cur, t_end=0.2, dt=1e-4, method="dopri5", rtol=1e-8, atol=1e-10,
                         dtype=torch.float64)
    assert tr.n_spikes == ref.n_spikes > 3
    torch.testing.assert_close(tr.spike_times, ref.spike_times, rtol=0, atol=1e-9)
    assert main(["simulate", "--model", "qif", "--method", "rk4", "--step-size", "0.05ms", "--current", "0.3nA",
                 "--t-end", "50ms", "-o", str(tmp_path / "q.npz"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["simulate", "--model", "adex", "--current", "1nA", "-o", str(tmp_path / "x.npz")]) == 2
    assert "nonlinear" in capsys.readouterr().err
    assert main(["simulate", "--model", "lif", "--method", "rk4", "--rtol", "1e-6", "-o", str(tmp_path / "y.npz")]) == 2
    assert "rtol" in capsys.readouterr().err
