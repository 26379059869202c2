"""``fit_many`` and ``ctsnn fit`` over many cells: each cell fitted on its own, on a 2-worker Dask
``LocalCluster`` on loopback (one cluster for the module) or in sequence; a broken cell is
reported and the others go on; the CLI groups files by cell and never writes over an input.

The cells are small synthetic passive LIF recordings made by ``ctsnn.simulate`` (known truth):
3 cells x 2 sweeps of 100 ms at dt 0.5 ms."""
import csv
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import ctsnn
from ctsnn.cli import CELL_REGEX, _cell_of, _expand_data, _group_cells, main
from ctsnn.fitting import fit_many

distributed = pytest.importorskip("distributed")   # the 'dask' extra

pytestmark = pytest.mark.slow   # worker processes import torch: ~30-60 s on a loaded 2-core machine

DT = 5e-4
N = 201                        # 100 ms
PARAMS = ("tau_mem", "r", "v_leak")
TRUTH = {"A": dict(tau_mem=12e-3, r=120e6, v_leak=-0.068),
         "B": dict(tau_mem=20e-3, r=200e6, v_leak=-0.072),
         "C": dict(tau_mem=30e-3, r=80e6, v_leak=-0.065)}
START = dict(tau_mem=20e-3, r=150e6, v_leak=-0.070, v_th=0.0, v_reset=-0.08)
START_CLI = ["-p", "tau_mem=20ms", "-p", "r=150Mohm", "-p", "v_leak=-70mV", "-p", "v_th=0V", "-p", "v_reset=-80mV"]


def _sweep(truth, k):
    """(t, v, i) of sweep k of a passive LIF cell: a hyperpolarising or depolarising step with a
    second step on top (so tau, r and v_leak are all seen)."""
    i = np.zeros(N)
    i[20:160] = -50e-12 if k == 0 else 60e-12
    i[60:100] += 30e-12
    m = ctsnn.LIF(**truth, v_th=0.0, v_reset=-0.08)
    tr = ctsnn.simulate(m, torch.tensor(i[:-1])[:, None], t_end=(N - 1) * DT, dt=DT,
                        initial={"v": truth["v_leak"]}, dtype=torch.float64)
    return np.arange(N) * DT, tr["v"][:, 0].numpy().copy(), i


def _cell(truth, n_sweeps=2):
    return [ctsnn.Recording(*_sweep(truth, k), name=f"s{k}") for k in range(n_sweeps)]


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None, silence_logs=40)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def cells():
    return {name: _cell(truth) for name, truth in TRUTH.items()}


@pytest.fixture(scope="module")
def sequential(cells):
    return fit_many(cells, ctsnn.LIF(**START), params=PARAMS, progress=False)


def _broken():
    """A cell fit() refuses: its second sweep is not uniformly sampled."""
    t, v, i = _sweep(TRUTH["A"], 0)
    t = t.copy()
    t[100:] += 0.3 * DT
    return [ctsnn.Recording(*_sweep(TRUTH["A"], 1)), ctsnn.Recording(t, v, i, name="jittered")]


def test_two_workers_recover_every_cell_equal_the_sequential_fit_and_report_a_broken_cell(
        client, cells, sequential, capsys):
    """On the 2-worker cluster: each cell's generating parameters within 1e-5 (relative), the
    same numbers as the sequential fits (one thread each: bit for bit), the broken cell's error
    kept while the others succeed, the fits run in the worker processes, the client unchanged."""
    for name, truth in TRUTH.items():
        res = sequential.results[name]
        assert res.success, res.message
        for k in PARAMS:
            assert res.values[k] == pytest.approx(truth[k], rel=1e-5), (name, k)
    broken = dict(cells, bad=_broken())
    par = fit_many(broken, ctsnn.LIF(**START), params=PARAMS, client=client)
    assert par.cells == ["A", "B", "C", "bad"]
    assert set(par.results) == set(TRUTH) and list(par.errors) == ["bad"]
    assert "not uniformly sampled" in par.errors["bad"] and par.errors["bad"].startswith("ValueError")
    assert not par.ok
    for name in TRUTH:
        assert par.results[name].values == sequential.results[name].values
        assert par.results[name].stderr == sequential.results[name].stderr
        assert par.results[name].success
    local = f":{os.getpid()}"
    assert not any(w.endswith(local) for w in par.where.values()), par.where
    assert all(w.endswith(local) for w in sequential.where.values())
    assert client.status == "running" and len(client.scheduler_info()["workers"]) == 2
    err = capsys.readouterr().err
    assert "4/4 cells (1 failed)" in err            # the progress line over cells
    rows = list(csv.DictReader(par.csv().splitlines()))
    assert [r["cell"] for r in rows] == ["A", "B", "C", "bad"]
    assert float(rows[1]["tau_mem [s]"]) == pytest.approx(20e-3, rel=1e-5)
    assert float(rows[1]["r [ohm]"]) == pytest.approx(200e6, rel=1e-5)
    assert rows[1]["success"] == "True" and rows[1]["n_sweeps"] == "2" and rows[1]["error"] == ""
    assert rows[3]["success"] == "False" and "not uniformly sampled" in rows[3]["error"]
    assert rows[3]["tau_mem [s]"] == ""


def test_workers_starts_a_local_cluster_and_closes_it(cells, sequential):
    """workers=2: a LocalCluster of worker processes for the call, gone afterwards (no child
    process left), with the sequential results."""
    import multiprocessing

    before = {p.pid for p in multiprocessing.active_children()}
    two = {k: cells[k] for k in ("A", "B")}
    res = fit_many(two, ctsnn.LIF(**START), params=PARAMS, workers=2, progress=False)
    assert res.ok and not any(w.endswith(f":{os.getpid()}") for w in res.where.values())
    for name in two:
        assert res.results[name].values == sequential.results[name].values
    assert {p.pid for p in multiprocessing.active_children()} <= before


def test_spike_loss_reports_model_and_recorded_spike_counts(client):
    """loss='spikes': the summary holds the model's and the recording's spike totals per cell,
    and the fitted threshold is the generating one."""
    cells = {}
    for name, v_th in (("low", -0.050), ("high", -0.046)):
        i = np.zeros(N)
        i[20:180] = 300e-12
        m = ctsnn.LIF(tau_mem=15e-3, r=150e6, v_leak=-0.07, v_th=v_th, v_reset=-0.065)
        tr = ctsnn.simulate(m, torch.tensor(i[:-1])[:, None], t_end=(N - 1) * DT, dt=DT,
                            initial={"v": -0.07}, dtype=torch.float64)
        v = tr["v"][:, 0].numpy().copy()
        v[np.ceil(tr.spike_times.numpy() / DT).astype(int)] = 0.02    # a recorded action potential
        cells[name] = [ctsnn.Recording(np.arange(N) * DT, v, i)]
    start = ctsnn.LIF(tau_mem=15e-3, r=150e6, v_leak=-0.07, v_th=-0.048, v_reset=-0.065)
    res = fit_many(cells, start, params=("v_th",), client=client, loss="spikes", spike_metric="matched",
                   mse_weight=0.0, spike_threshold=0.0, progress=False)
    assert res.ok, res.summary()
    assert res.results["low"].values["v_th"] == pytest.approx(-0.050, abs=2e-4)
    assert res.results["high"].values["v_th"] == pytest.approx(-0.046, abs=2e-4)
    for name in cells:
        model, recorded = res.spike_counts[name]
        assert recorded > 3 and model == recorded
    rows = list(csv.DictReader(res.csv().splitlines()))
    assert rows[0]["spikes_model"] == rows[0]["spikes_recorded"] == str(res.spike_counts["low"][1])
    # a warning given in a worker (loss='mse' on spiking data) comes back, named by its cell
    with pytest.warns(UserWarning, match=r"cell low: loss='mse' on recordings that spike"):
        res = fit_many({"low": cells["low"]}, start, params=("v_leak",), client=client, max_iter=1,
                       stderr=False, progress=False)
    assert "loss='mse' on recordings that spike" in res.warnings["low"][0]


def test_arguments_are_checked_by_name(cells):
    lif = ctsnn.LIF(**START)
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        fit_many(cells, lif, params=PARAMS, workers=0)
    with pytest.raises(ValueError, match="client= .* or workers="):
        fit_many(cells, lif, params=PARAMS, workers=2, client=object())
    with pytest.raises(ValueError, match="cells must map"):
        fit_many(list(cells.values()), lif, params=PARAMS)
    with pytest.raises(ValueError, match=r"cells\['A'\] must be a Recording"):
        fit_many({"A": "A.npz"}, lif, params=PARAMS)
    with pytest.raises(ValueError, match="params must be a sequence"):
        fit_many(cells, lif, params="tau_mem")
    with pytest.raises(ValueError, match=r"params: LIF has no parameter 'tau'"):
        fit_many(cells, lif, params=("tau", "r"))
    with pytest.raises(ValueError, match="model_factory_or_model must be a ctsnn model or a callable"):
        fit_many(cells, "lif", params=PARAMS)


def test_without_dask_the_error_names_the_extra(cells, monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)     # as if the extra were not installed
    with pytest.raises(ImportError, match=r"'dask' extra: pip install 'ctsnn\[dask\]'"):
        fit_many(cells, ctsnn.LIF(**START), params=PARAMS, workers=2)
    (tmp_path / "data").mkdir()
    _write(tmp_path / "data", "A_s0", TRUTH["A"], 0)
    rc = main(["fit", str(tmp_path / "data"), "--workers", "2", "--out-dir", str(tmp_path), "--quiet"])
    assert rc == 2 and "'dask' extra" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [tmp_path / "data"]    # nothing written


def _write(folder, stem, truth, k, nan=False):
    t, v, i = _sweep(truth, k)
    if nan:
        v[50] = np.nan
    np.savez(folder / f"{stem}.npz", t=t, v=v * 1e3, i=i * 1e12,
             meta='{"units": {"t": "s", "v": "mV", "i": "pA"}}')


def test_cli_directory_writes_one_json_per_cell_and_the_summary(tmp_path, client, capsys):
    """A directory of NPZ files named CELL_sweep: cells A and B (two sweeps each) recovered, cell
    C (a NaN sample) reported in its JSON and the summary while the others are written; fitted on
    the existing cluster through --scheduler."""
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    out.mkdir()
    for cell in ("A", "B"):
        for k in range(2):
            _write(data, f"{cell}_IDRest_{k}", TRUTH[cell], k)
    _write(data, "C_IDRest_0", TRUTH["C"], 0, nan=True)
    rc = main(["fit", str(data), "--out-dir", str(out), "--scheduler", client.scheduler.address, *START_CLI])
    printed = capsys.readouterr()
    assert rc == 1, printed.err          # a cell failed: the results are written, the status says so
    assert sorted(p.name for p in out.iterdir()) == ["A.json", "B.json", "C.json", "summary.csv"]
    for cell in ("A", "B"):
        d = json.loads((out / f"{cell}.json").read_text())
        assert d["cell"] == cell and d["success"] is True and len(d["recordings"]) == 2
        for k in PARAMS:
            assert d["values"][k] == pytest.approx(TRUTH[cell][k], rel=1e-5)
    c = json.loads((out / "C.json").read_text())
    assert c["success"] is False and "NaN" in c["error"]
    rows = {r["cell"]: r for r in csv.DictReader((out / "summary.csv").open())}
    assert rows["A"]["success"] == "True" and rows["C"]["success"] == "False" and "NaN" in rows["C"]["error"]
    assert float(rows["B"]["v_leak [V]"]) == pytest.approx(-0.072, rel=1e-5)
    assert "C: FAILED" in printed.out and "fit_many: [" in printed.err
    # the same files again: refused without --force, nothing touched
    before = (out / "A.json").read_text()
    rc = main(["fit", str(data), "--out-dir", str(out), *START_CLI, "--quiet"])
    assert rc == 2 and "exists; pass --force" in capsys.readouterr().err
    assert (out / "A.json").read_text() == before


def test_cli_never_writes_over_an_input(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    _write(data, "A_IDRest_0", TRUTH["A"], 0)
    # the data directory as the output directory
    rc = main(["fit", str(data), "--out-dir", str(data), "--quiet"])
    assert rc == 2 and "is a data directory of this command" in capsys.readouterr().err
    # a recording named summary.csv (a glob input) in the output directory
    t, v, i = _sweep(TRUTH["A"], 0)
    np.savetxt(data / "summary.csv", np.c_[t, v, i], delimiter=",", header="t_s,v_V,i_A", comments="")
    rc = main(["fit", str(data / "*.csv"), str(data / "A_IDRest_0.npz"), "--out-dir", str(data), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "is an input of this command" in err and "summary.csv" in err
    assert sorted(p.name for p in data.iterdir()) == ["A_IDRest_0.npz", "summary.csv"]
    # -o names one file: with several cells it is refused, pointing to --out-dir
    rc = main(["fit", str(data / "*.npz"), "-o", str(tmp_path / "x.json"), "--quiet"])
    assert rc == 2 and "--out-dir" in capsys.readouterr().err
    # a pattern that matches nothing names itself
    rc = main(["fit", str(data / "*.nwb"), "--out-dir", str(tmp_path), "--quiet"])
    assert rc == 2 and "matches no file" in capsys.readouterr().err


def test_cells_from_file_names():
    regex = re.compile(CELL_REGEX)
    assert _cell_of(Path("B6_IDRest_183.npz"), regex) == "B6"
    assert _cell_of(Path("99111002.nwb"), regex) == "99111002"
    assert _cell_of(Path("mouse3_cellB_sweep7.csv"), re.compile(r"^(.+)_sweep\d+$")) == "mouse3_cellB"
    with pytest.raises(ValueError, match=r"--group-by .* does not match the file name 'B6_183'"):
        _cell_of(Path("B6_183.npz"), re.compile(r"_sweep\d+"))


def test_the_bundled_recordings_group_by_cell():
    """The B6 IDRest files are one cell by their names; the CA1 NWB file (no cell_id stated) one
    cell by its name, with all 16 sweeps; the B6 directory holds sweep 183 twice (CSV and NPZ):
    refused, naming both files."""
    import ctsnn.datasets
    SHARED = ctsnn.datasets.ROOT
    regex = re.compile(CELL_REGEX)
    files, _ = _expand_data([str(SHARED / "bbp_idrest" / "*.npz")])
    cells = _group_cells(files, regex)
    assert list(cells) == ["B6"] and [f.name for f, _ in cells["B6"]] == [f"B6_IDRest_18{k}.npz" for k in range(1, 6)]
    with pytest.raises(ValueError, match="B6_IDRest_183.csv' and .*B6_IDRest_183.npz' look like the same sweep"):
        _expand_data([str(SHARED / "bbp_idrest")])
    pytest.importorskip("pynwb")
    files, dirs = _expand_data([str(SHARED / "hippocampus_ca1")])
    cells = _group_cells(files, regex)
    assert list(cells) == ["99111002"] and dirs == [SHARED / "hippocampus_ca1"]
    (path, sweeps), = cells["99111002"]
    assert path.name == "99111002.nwb" and len(sweeps) == 16 and sweeps[0] == "ic__Step__1"
