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
    # every default shown once, model defaults in user units (adex's included)
    assert res.stdout.count("(default: 0.1ms)") == 1
    assert "(default: [])" not in res.stdout and "(default: None)" not in res.stdout
    assert "tau_mem=10ms" in res.stdout and "C=281pF" in res.stdout and "{}" not in res.stdout


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


def test_fit_command_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)          # the default -o fit.json lands here (it is never written)
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


@pytest.mark.slow   # the adaptive AdEx run: about 100 s on the loaded 2-core machine
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


def test_simulate_euler_events_in_step(tmp_path, capsys):
    """--method euler --events in_step gives the Python API's in-step spike times (off the grid);
    --events with another method is refused by name."""
    out = tmp_path / "e.npz"
    assert main(["simulate", "--model", "lif", "--method", "euler", "--events", "in_step", "--current", "0.3nA",
                 "--dt", "1ms", "--t-end", "100ms", "-o", str(out), "--quiet"]) == 0
    tr = ctsnn.Trace.load(out)
    model = ctsnn.LIF(tau_mem=10e-3, r=100e6, v_leak=-70e-3, v_th=-50e-3, v_reset=-70e-3)   # the CLI's defaults
    ref = ctsnn.simulate(model, 0.3e-9, t_end=0.1, dt=1e-3, method="euler", events="in_step", dtype=torch.float64,
                         initial={"v": -70e-3})
    assert tr.n_spikes == ref.n_spikes > 3
    torch.testing.assert_close(tr.spike_times, ref.spike_times, rtol=0, atol=1e-15)
    assert float((tr.spike_times / 1e-3 - torch.round(tr.spike_times / 1e-3)).abs().max()) > 0.01
    capsys.readouterr()
    assert main(["simulate", "--model", "lif", "--events", "in_step", "-o", str(tmp_path / "x.npz")]) == 2
    assert "--events applies to --method euler" in capsys.readouterr().err


# ---------------------------------------------------------------- reliability of the command line
def _run(args, tmp_path):
    """The CLI in a subprocess (exit status and stderr as a user sees them)."""
    import os
    env = dict(os.environ, PYTHONPATH=str(__import__("pathlib").Path(__file__).resolve().parents[1]),
               MPLBACKEND="Agg")
    env.pop("CTSNN_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "ctsnn", *args], capture_output=True, text=True,
                          cwd=tmp_path, env=env)


def test_importing_the_cli_does_not_import_torch():
    code = ("import sys, ctsnn, ctsnn.cli; ctsnn.cli.build_parser(); "
            "print('torch' in sys.modules, 'numpy' in sys.modules)")
    import os
    env = dict(os.environ, PYTHONPATH=str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert res.stdout.split() == ["False", "False"]


def test_lazy_package_keeps_the_public_names():
    import importlib
    import ctsnn.simulate  # noqa: F401  (importing the submodule must not hide the function)
    assert callable(ctsnn.simulate) and ctsnn.simulate.__name__ == "simulate"
    assert ctsnn.LIF.__name__ == "LIF" and ctsnn.io.Recording is ctsnn.Recording
    assert importlib.import_module("ctsnn.simulate").SimulationError is ctsnn.SimulationError
    assert set(ctsnn.__all__) <= set(dir(ctsnn))
    with pytest.raises(AttributeError):
        ctsnn.no_such_name  # noqa: B018


def test_errors_are_one_line_with_status_2(tmp_path, capsys, monkeypatch):
    """Each bad invocation: exit 2, one 'error:' line naming the problem, no traceback."""
    import numpy as np
    np.save(tmp_path / "c.npy", np.zeros(10))
    np.savez(tmp_path / "rec.npz", t=np.arange(10) * 1e-3, v=np.zeros(10), i=np.zeros(10))
    cases = [
        (["simulate", "--current-file", "missing.npy"], "missing.npy"),
        (["simulate", "-o", "/missing_dir/x.npz"], "/missing_dir"),
        (["simulate", "-o", "c.npy/x.npz"], "not a directory"),
        (["simulate", "--plot", "x.nosuchformat"], "--plot"),
        (["simulate", "--current-file", "rec.npz", "--current-key", "zz"], "--current-key"),
        (["simulate", "--current-file", "c.npy"], "10 samples"),
        (["plot", "rec.npz"], "recording"),
        (["plot", "c.npy"], "not an .npz"),
        (["fit", "rec.npz", "-o", "rec.npz"], "input"),
        (["simulate", "-o", "c.npy"], ".npz"),
        (["simulate", "-p", "tau_foo=1ms"], "no parameter 'tau_foo'"),
        (["simulate", "--record", "v,q"], "no state 'q'"),
        (["simulate", "--model", "alif", "-p", "adaptation=foo"], "adaptation must be"),
        (["fit", "rec.npz", "-o", "f.json"], "unit of array 't' is missing"),
        (["fit", "rec.npz", "--units", "t=s", "--units", "v=V", "--units", "i=A", "--loss", "spikes",
          "--vr-tau", "-1ms", "-o", "f.json", "--quiet"], "vr_tau"),
    ]
    monkeypatch.chdir(tmp_path)
    for args, needle in cases:
        assert main(args) == 2, args
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"ctsnn {args[0]}: error:"), (args, lines)
        assert needle in lines[0], (args, lines[0])
    # the same as a user sees it: exit status and stderr of the process
    res = _run(["plot", "rec.npz"], tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [
        "ctsnn plot: error: 'rec.npz' is a recording (arrays i, t, v), not a trace written by `ctsnn "
        "simulate`; fit it with `ctsnn fit` (its --plot draws it)"]
    assert not (tmp_path / "trace.npz").exists()          # nothing half-written
    assert not __import__("pathlib").Path("/missing_dir").exists()
    assert (tmp_path / "rec.npz").stat().st_size > 0 and np.load(tmp_path / "rec.npz")["v"].size == 10


def test_unwritable_output_is_refused_before_running(tmp_path, capsys):
    import os
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):   # running as root: permissions do not bind
            pytest.skip("directory permissions are not enforced for this user")
        assert main(["simulate", "-o", str(ro / "x.npz"), "--quiet"]) == 2
        assert "not writable" in capsys.readouterr().err
    finally:
        ro.chmod(0o700)


def test_no_overwrite_without_force_and_never_an_input(tmp_path, capsys):
    out = tmp_path / "t.npz"
    base = ["simulate", "--current", "0.3nA", "--t-end", "20ms", "--quiet", "-o", str(out)]
    assert main(base) == 0
    first = out.read_bytes()
    capsys.readouterr()
    assert main(base + ["-p", "tau_mem=20ms"]) == 2
    assert "--force" in capsys.readouterr().err and out.read_bytes() == first
    assert main(base + ["-p", "tau_mem=20ms", "--force"]) == 0
    assert out.read_bytes() != first
    # an output that is one of the inputs is refused even with --force (also through a link)
    import numpy as np
    cur = tmp_path / "c.npz"
    np.savez(cur, i=np.full(200, 0.3e-9))
    link = tmp_path / "link.npz"
    link.symlink_to(cur)
    capsys.readouterr()
    assert main(["simulate", "--current-file", str(cur), "--t-end", "20ms", "-o", str(link), "--force",
                 "--quiet"]) == 2
    assert "input" in capsys.readouterr().err
    assert np.load(cur)["i"].size == 200
    # two outputs naming one file
    assert main(["plot", str(out), "-o", str(out.with_suffix(".png"))]) == 0
    capsys.readouterr()
    assert main(["plot", str(out), "-o", str(out.with_suffix(".png"))]) == 2
    assert "exists" in capsys.readouterr().err


def test_current_file_with_its_default_unit_and_others(tmp_path, capsys):
    """--current-file with the default unit (A) and with nA: the same trace as --current."""
    import numpy as np
    ref = tmp_path / "ref.npz"
    assert main(["simulate", "--current", "0.3nA", "--t-end", "50ms", "-o", str(ref), "--quiet"]) == 0
    np.save(tmp_path / "amps.npy", np.full(500, 0.3e-9))
    np.savetxt(tmp_path / "na.csv", np.full(500, 0.3), header="\ufeff\"i_nA\"", comments="", encoding="utf-8")
    for extra in (["--current-file", str(tmp_path / "amps.npy")],
                  ["--current-file", str(tmp_path / "na.csv"), "--current-unit", "nA"]):
        out = tmp_path / "x.npz"
        assert main(["simulate", *extra, "--t-end", "50ms", "-o", str(out), "--quiet", "--force"]) == 0
        a, b = ctsnn.Trace.load(ref), ctsnn.Trace.load(out)
        assert a.n_spikes == b.n_spikes == 4
        torch.testing.assert_close(a.spike_times, b.spike_times, rtol=0, atol=1e-12)
    capsys.readouterr()
    assert main(["simulate", "--current-file", str(tmp_path / "amps.npy"), "--current-unit", "mV",
                 "--t-end", "50ms", "-o", str(tmp_path / "y.npz"), "--quiet"]) == 2
    assert "expected a unit of current" in capsys.readouterr().err


def test_negative_values_without_equals_sign(tmp_path):
    """--current -0.5nA@... (argparse would read it as an option): hyperpolarised by r I = -50 mV."""
    out = tmp_path / "neg.npz"
    assert main(["simulate", "--current", "-0.5nA@0ms..50ms", "--t-end", "50ms", "-o", str(out),
                 "--quiet", "-p", "v_leak=-70mV"]) == 0
    tr = ctsnn.Trace.load(out)
    expected = -70e-3 - 0.5e-9 * 100e6 * (1 - math.exp(-5))     # tau = 10 ms, 50 ms of charging
    assert float(tr["v"][-1, 0]) == pytest.approx(expected, rel=1e-9)


def test_bare_time_number_warns_with_its_unit(tmp_path, capsys):
    assert main(["simulate", "-p", "tau_mem=10", "--t-end", "10ms", "-o", str(tmp_path / "a.npz"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "warning: tau_mem=10 was read as 10 s" in err and "10ms" in err
    assert main(["simulate", "-p", "tau_mem=10ms", "--t-end", "10ms", "-o", str(tmp_path / "b.npz"), "--quiet"]) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize("model,extra", [
    ("izhikevich", ["--method", "euler", "--dt", "0.05ms", "--current", "10"]),
    ("duallit", ["--current", "0.3nA"]),
    ("lit", ["--current", "-0.3nA"]),
    ("cubalif", ["--current", "0.3nA"]),
    ("if", ["--current", "0.1nA"]),
])
def test_every_model_is_reachable(model, extra, tmp_path):
    """Each CLI model against the same model built in Python: identical spike times."""
    from ctsnn.cli import build_model
    out = tmp_path / f"{model}.npz"
    assert main(["simulate", "--model", model, *extra, "--t-end", "100ms", "-o", str(out), "--quiet"]) == 0
    tr = ctsnn.Trace.load(out)
    with torch.no_grad():
        m = build_model(model, {})
    dt = 0.05e-3 if "0.05ms" in extra else 1e-4
    amp = {"izhikevich": 10.0}.get(model, float(extra[extra.index("--current") + 1].replace("nA", "")) * 1e-9)
    method = "euler" if "euler" in extra else "exact"
    ref = ctsnn.simulate(m, amp, t_end=0.1, dt=dt, method=method, dtype=torch.float64, record=())
    assert tr.n_spikes == ref.n_spikes > 0
    # the CLI passes a tabulated current, the reference a constant: equal to the root finder's tolerance
    torch.testing.assert_close(tr.spike_times, ref.spike_times, rtol=0, atol=1e-9)


def test_izhikevich_refuses_a_current_with_units(tmp_path, capsys):
    assert main(["simulate", "--model", "izhikevich", "--method", "euler", "--current", "10nA",
                 "-o", str(tmp_path / "x.npz")]) == 2
    assert "dimensionless" in capsys.readouterr().err


def test_adex_cli_defaults_are_the_class_defaults():
    import inspect
    from ctsnn.cli import MODELS
    for name, (cls, defaults) in MODELS.items():
        if name in ("adex", "izhikevich"):
            sig = inspect.signature(getattr(ctsnn, cls).__init__).parameters
            assert {k: sig[k].default for k in defaults} == pytest.approx(defaults), name


def test_spikes_file_and_feedback(tmp_path):
    """Input spikes from a file (npz and csv) equal the Python API's; a 5 mV input spike on a
    LIF at rest decays as 5 mV e^{-t/tau}; self-feedback of -5 mV lowers the rate."""
    import numpy as np
    np.savez(tmp_path / "in.npz", times=np.array([0.01, 0.03]), weights=np.array([5e-3, 5e-3]))
    with open(tmp_path / "in.csv", "w") as fh:
        fh.write("times,weights,neurons\n10,5,0\n30,5,0\n")
    for f, units in (("in.npz", []), ("in.csv", ["--spikes-time-unit", "ms", "--spikes-weight-unit", "mV"])):
        out = tmp_path / f"{f}.out.npz"
        assert main(["simulate", "--spikes-file", str(tmp_path / f), *units, "--t-end", "50ms", "-o", str(out),
                     "--quiet"]) == 0
        v = ctsnn.Trace.load(out)["v"][:, 0]
        # at t = 20 ms: the first spike's jump decayed over 10 ms (tau_mem = 10 ms)
        assert float(v[200]) == pytest.approx(-70e-3 + 5e-3 * math.exp(-1), rel=1e-12)
    plain, fb = tmp_path / "plain.npz", tmp_path / "fb.npz"
    assert main(["simulate", "--current", "0.3nA", "--t-end", "100ms", "-o", str(plain), "--quiet"]) == 0
    assert main(["simulate", "--current", "0.3nA", "--feedback", "-5mV", "--t-end", "100ms", "-o", str(fb),
                 "--quiet"]) == 0
    ref = ctsnn.simulate(ctsnn.Recurrent(ctsnn.LIF(10e-3, 100e6, -70e-3, -50e-3, -70e-3), -5e-3), 0.3e-9,
                         t_end=0.1, dt=1e-4, dtype=torch.float64)
    a, b = ctsnn.Trace.load(plain), ctsnn.Trace.load(fb)
    assert b.n_spikes == ref.n_spikes and 0 < b.n_spikes < a.n_spikes


def test_usage_errors_are_one_line_too(capsys):
    for argv, needle in ((["simulate", "--model", "nosuch"], "invalid choice"), ([], "COMMAND"),
                         (["fit", "--loss", "l7", "x.npz"], "--loss")):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and "error:" in lines[0] and needle in lines[0] and "--help" in lines[0]


def test_unit_helpers():
    from ctsnn.units import format_quantity, parse_unit, plausibility_warning, unit_dimension
    assert parse_unit("A", "current") == 1.0 and parse_unit("pA", "current") == pytest.approx(1e-12)
    assert parse_unit("10pA") == pytest.approx(1e-11)
    with pytest.raises(ValueError, match="unit of voltage"):
        parse_unit("mV", "current", name="--current-unit")
    assert format_quantity(0.0137325, "time", 4) == "13.73 ms"
    assert format_quantity(-0.0669, "voltage") == "-66.9 mV"
    assert format_quantity(2.34e8, "resistance") == "234 MOhm"
    assert format_quantity(0.02, None) == "0.02"
    assert unit_dimension("s") == "time" and unit_dimension("ohm") == "resistance"
    assert unit_dimension("mV") is None and unit_dimension("") is None and unit_dimension("1/ms") is None
    assert "did you mean 10ms" in plausibility_warning("tau_mem", "10", "time")
    assert "did you mean -70mV" in plausibility_warning("v_th", "-70", "voltage")
    assert "did you mean 0.3nA" in plausibility_warning("--current", "0.3", "current")
    for ok in (("tau_mem", "0.01", "time"), ("tau_mem", "10ms", "time"), ("v_th", "-0.05", "voltage"),
               ("v_th", "0", "voltage"), ("r", "1e8", "resistance")):
        assert plausibility_warning(*ok) is None, ok
