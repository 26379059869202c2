"""Wall time of a subthreshold LIF fit to one 3 s sweep at 4 kHz (12000 samples), started 2x away.

Prints the median over repeats per optimiser (target: under 10 s on the 2-core CI machine).
"""
import statistics
import time

import numpy as np
import torch

import ctsnn

DT, N = 2.5e-4, 12000
i = np.zeros(N); i[2800:10800] = -50e-12; i[4000:6000] = 80e-12
true = ctsnn.LIF(tau_mem=15e-3, r=150e6, v_leak=-0.07, v_th=0.0, v_reset=-0.08)
tr = ctsnn.simulate(true, torch.tensor(i[:-1])[:, None], t_end=(N - 1) * DT, dt=DT,
                    initial={"v": -0.07}, dtype=torch.float64)
rec = ctsnn.Recording(np.arange(N) * DT, tr["v"][:, 0].numpy(), i)
start = ctsnn.LIF(tau_mem=30e-3, r=75e6, v_leak=-0.035, v_th=0.0, v_reset=-0.08)
t0 = time.perf_counter()
ctsnn.simulate(true, torch.tensor(i[:-1])[:, None], t_end=(N - 1) * DT, dt=DT, dtype=torch.float64)
print(f"one forward simulation: {time.perf_counter() - t0:.3f} s")
for opt in ("lbfgs", "least_squares"):
    ts, res = [], None
    for _ in range(3):
        t0 = time.perf_counter()
        res = ctsnn.fit(start, rec, optimizer=opt, max_iter=100)
        ts.append(time.perf_counter() - t0)
    err = max(abs(res.values[k] / v - 1) for k, v in dict(tau_mem=15e-3, r=150e6, v_leak=-0.07).items())
    print(f"{opt:14s} median {statistics.median(ts):.2f} s over {len(ts)} runs, {res.n_iter} iterations, "
          f"{res.n_eval} evaluations, max rel. error {err:.1e}, ratio to 10 s budget {statistics.median(ts) / 10:.2f}")
