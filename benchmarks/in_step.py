"""W4 (issue #7): in-step spike times against grid spikes, same exact method, same sizes as W1.

A LIF population (N neurons x batch B, tau_mem = 10 ms, v_th = 1, reset to 0) under a held noisy
current, T steps of dt = 1 ms, float32, no grad; the drive is set for a spike rate near 8% of the
steps.  ``discretize(..., method="exact", input="zoh")`` tests the threshold at the grid points
(``events="grid"``); ``events="in_step"`` locates each crossing inside its step on the exact
solution, applies the reset there and propagates the rest of the step.  Both run the fused
kernel.  Before timing, the in-step spike times of the first 64 neurons of batch 0 are checked
against ``ctsnn.simulate(method="exact")`` in float64 (must agree to 1e-9 s, else exit 1).
Also timed: in-step with sparse output (the spike times themselves).

    python benchmarks/in_step.py [--neurons 4096 --batch 32 --steps 1000 --repeats 5]
"""
from __future__ import annotations

import json
import statistics
import sys
import time

import torch

import _sizes  # benchmarks/_sizes.py (scripts run with their folder on sys.path)

import ctsnn
from ctsnn import discretize


def main(argv=None):
    ap = _sizes.parser()
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    N, B, T, dt = args.neurons, args.batch, args.steps, 1e-3
    model = ctsnn.LIF(tau_mem=10e-3, v_th=1.0, v_reset=0.0)
    g = torch.Generator().manual_seed(0)
    x = torch.empty(T, B, N)
    for t0 in range(0, T, 100):
        x[t0:t0 + 100] = 1.05 + 0.9 * torch.rand(min(100, T - t0), B, N, generator=g)
    # check: in-step spike times against simulate(method="exact"), float64, 64 neurons
    sub = x[:, 0, :64].double()
    ref = ctsnn.simulate(model.replace(n=64), current=sub, t_end=T * dt, dt=dt, method="exact", record=())
    sp = discretize(model, dt, input="zoh", events="in_step").run(sub, output="sparse").spikes
    a = sorted(zip(ref.spike_neurons.tolist(), ref.spike_times.tolist()))
    b = sorted(zip(sp.spike_neurons.tolist(), sp.spike_times.tolist()))
    err = max((abs(p[1] - q[1]) for p, q in zip(a, b)), default=0.0)
    if len(a) != len(b) or [p[0] for p in a] != [q[0] for q in b] or err > 1e-9:
        print(f"IN-STEP SPIKES DISAGREE with simulate(method='exact'): {len(b)} vs {len(a)} spikes, "
              f"max error {err:.2e} s", file=sys.stderr)
        return 1
    grid = discretize(model, dt, input="zoh")
    inst = discretize(model, dt, input="zoh", events="in_step")
    tg, ti, ts = [], [], []
    with torch.no_grad():
        grid.run(x[:10])
        inst.run(x[:10])
        inst.run(x[:10], output="sparse")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            og = grid.run(x).out
            tg.append(time.perf_counter() - t0)
            del og
            t0 = time.perf_counter()
            oi = inst.run(x).out
            ti.append(time.perf_counter() - t0)
            rate = float(oi.mean())
            del oi
            t0 = time.perf_counter()
            spk = inst.run(x, output="sparse").spikes
            ts.append(time.perf_counter() - t0)
    mg, mi, ms = (statistics.median(v) for v in (tg, ti, ts))
    print(f"N={N} B={B} T={T}, {torch.get_num_threads()} thread(s), torch {torch.__version__}; spike rate "
          f"{rate:.3f} per step; in-step spike times = simulate(method='exact') to {err:.1e} s ({len(a)} spikes)")
    print(f"W4 grid spikes      {mg:.4f} s [{min(tg):.4f}-{max(tg):.4f}]  [{grid.last_backend}]")
    print(f"W4 in-step spikes   {mi:.4f} s [{min(ti):.4f}-{max(ti):.4f}]  in-step / grid {mi / mg:.2f}  "
          f"[{inst.last_backend}]")
    print(f"W4 in-step, sparse  {ms:.4f} s [{min(ts):.4f}-{max(ts):.4f}]  {len(spk)} spike times, "
          f"/ grid {ms / mg:.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"N": N, "B": B, "T": T, "spike_rate": rate, "grid_s": tg, "in_step_s": ti, "in_step_sparse_s": ts,
                       "ratio": mi / mg, "check_error_s": err}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
