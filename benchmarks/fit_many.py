"""fit_many on a local Dask cluster: 8 synthetic cells on 1 worker against 2 workers.

Each cell is one 1 s sweep at 4 kHz of a passive LIF with its own tau_mem, r and v_leak, fitted
from 2x away (tau_mem, r, v_leak). Each cluster is started and warmed (torch and ctsnn imported,
one small fit run in every worker) before its timing, so the ratio compares the fits, not the
start-up; the start-up is printed too. Target: 2 workers in at most 0.6x the time of 1.
Needs the 'dask' extra. The ratio is only meaningful on a machine with 2 idle cores.

    python benchmarks/fit_many.py [--cells 8]
"""
import argparse
import os
import time

import numpy as np
import torch

import ctsnn
from ctsnn.fitting import fit_many

DT, N = 2.5e-4, 4000


def make_cell(k: int):
    rng = np.random.default_rng(k)
    truth = dict(tau_mem=float(rng.uniform(10e-3, 30e-3)), r=float(rng.uniform(80e6, 250e6)),
                 v_leak=float(rng.uniform(-0.075, -0.065)))
    i = np.zeros(N)
    i[400:3600] = -50e-12
    i[1200:2000] += 80e-12
    m = ctsnn.LIF(**truth, v_th=0.0, v_reset=-0.08)
    tr = ctsnn.simulate(m, torch.tensor(i[:-1])[:, None], t_end=(N - 1) * DT, dt=DT,
                        initial={"v": truth["v_leak"]}, dtype=torch.float64)
    return truth, ctsnn.Recording(np.arange(N) * DT, tr["v"][:, 0].numpy(), i, name=f"cell{k}")


def warm():
    """Import torch and ctsnn in a worker and run one small fit there."""
    import ctsnn as c

    t = np.arange(200) * 5e-4
    i = np.where((t > 0.01) & (t < 0.08), -50e-12, 0.0)
    v = -0.07 + 0 * t
    c.fit(c.LIF(tau_mem=0.02, v_leak=-0.07, v_th=0.0, v_reset=-0.08), c.Recording(t, v, i), params=("v_leak",),
          max_iter=2, stderr=False)
    return os.getpid()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cells", type=int, default=8)
    args = ap.parse_args()
    from distributed import Client, LocalCluster

    truths, cells = {}, {}
    for k in range(args.cells):
        truths[f"cell{k}"], cells[f"cell{k}"] = make_cell(k)
    start = ctsnn.LIF(tau_mem=40e-3, r=300e6, v_leak=-0.06, v_th=0.0, v_reset=-0.08)
    print(f"{args.cells} cells, one {N * DT:.0f} s sweep each at {1 / DT / 1e3:.0f} kHz; load average before: "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    times = {}
    for n in (1, 2):
        t0 = time.perf_counter()
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, silence_logs=40)
        client = Client(cluster)
        client.run(warm)
        t_start = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = fit_many(cells, start, params=("tau_mem", "r", "v_leak"), client=client, progress=False)
        times[n] = time.perf_counter() - t0
        client.close()
        cluster.close()
        busy: dict[str, list[float]] = {}
        for c, (w, cpu) in res.timing.items():
            b = busy.setdefault(res.where[c], [0.0, 0.0, 0])
            b[0] += w
            b[1] += cpu
            b[2] += 1
        per = ", ".join(f"{b[2]} cells {b[0]:.1f} s wall / {b[1]:.1f} s CPU" for b in busy.values())
        print(f"   per worker (inside the tasks): {per}; outside the tasks (scheduling, transfers, "
              f"imbalance): {times[n] - max(b[0] for b in busy.values()):.1f} s")
        err = max(abs(res.results[c].values[p] / truths[c][p] - 1) for c in cells for p in truths[c])
        print(f"{n} worker(s): fits {times[n]:.1f} s (start-up and warm-up {t_start:.1f} s), "
              f"{sum(r.success for r in res.results.values())}/{len(cells)} converged, {len(res.errors)} failed, "
              f"max rel. error {err:.1e}, load average {os.getloadavg()[0]:.1f}")
    print(f"ratio 2 workers / 1 worker: {times[2] / times[1]:.2f} (target <= 0.6)")


if __name__ == "__main__":
    main()
