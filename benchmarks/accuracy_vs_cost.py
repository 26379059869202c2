"""Spike-time error against wall time for every method on a LIF network.

Network: 50 LIF neurons (tau_mem = 20 ms), each under its own DC current drawn in [1.2, 2.5]
(no coupling, so the reference is the closed form k * tau * ln(I/(I - 1)) for every spike),
0.2 s simulated on a 1 ms grid (Euler: its own dt), float64. Prints, per method: the number of
spikes (reference count in the header), the largest spike-time error, the median wall time of
``--repeat`` runs, and the time relative to the exact method.

    python benchmarks/accuracy_vs_cost.py [--repeat 3] [--quick]
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time

import torch

import ctsnn

N, TAU, T_END = 50, 0.02, 0.2


def reference(cur):
    ts = []
    for j, I in enumerate(cur.tolist()):
        T = TAU * math.log(I / (I - 1.0))
        ts += [(k * T, j) for k in range(1, int(T_END / T) + 1) if k * T < T_END]
    return ts


def error(tr, ref):
    got = {}
    for t, j in zip(tr.spike_times.tolist(), tr.spike_neurons.tolist()):
        got.setdefault(j, []).append(t)
    want = {}
    for t, j in ref:
        want.setdefault(j, []).append(t)
    # over the spikes both have (a method may lose a spike right at t_end; the count is printed)
    return max(abs(a - b) for j in want for a, b in zip(got.get(j, []), want[j]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="fewer configurations")
    args = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    cur = 1.2 + 1.3 * torch.rand(N, generator=g, dtype=torch.float64)
    ref = reference(cur)
    model = ctsnn.LIF(tau_mem=TAU, n=N)
    configs = [("exact", 1e-3, {}),
               ("euler", 1e-4, {}), ("euler", 1e-5, {}),
               ("rk4", 1e-3, {"step_size": 1e-4}), ("midpoint", 1e-3, {"step_size": 1e-4}),
               ("heun3", 1e-3, {"step_size": 1e-4}),
               ("dopri5", 1e-3, {"rtol": 1e-6, "atol": 1e-9}), ("dopri5", 1e-3, {"rtol": 1e-9, "atol": 1e-12}),
               ("dopri8", 1e-3, {"rtol": 1e-6, "atol": 1e-9}), ("dopri8", 1e-3, {"rtol": 1e-9, "atol": 1e-12}),
               ("bosh3", 1e-3, {"rtol": 1e-6, "atol": 1e-9}),
               ("fehlberg2", 1e-3, {"rtol": 1e-5, "atol": 1e-8}),
               ("adaptive_heun", 1e-3, {"rtol": 1e-5, "atol": 1e-8})]
    if args.quick:
        configs = configs[:2] + configs[6:8]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
          f"torch {torch.__version__}; {N} LIF neurons, {T_END} s, {len(ref)} reference spikes")
    print(f"{'method':<14} {'dt / options':<28} {'spikes':>6} {'max |dt_spike| (s)':>19} "
          f"{'wall (s)':>9} {'x exact':>8}")
    base = None
    for method, dt, opts in configs:
        walls = []
        for _ in range(args.repeat):
            w = time.perf_counter()
            tr = ctsnn.simulate(model, current=cur[None], t_end=T_END, dt=dt, method=method,
                                dtype=torch.float64, record=(), **opts)
            walls.append(time.perf_counter() - w)
        wall = statistics.median(walls)
        base = base or wall
        desc = f"dt={dt:g} " + " ".join(f"{k}={v:g}" for k, v in opts.items())
        print(f"{method:<14} {desc:<28} {tr.spike_times.shape[0]:>6} {error(tr, ref):>19.2e} "
              f"{wall:>9.3f} {wall / base:>8.1f}")


if __name__ == "__main__":
    main()
