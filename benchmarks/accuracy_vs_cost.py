"""Spike-time error against wall time for every method on a LIF network.

Network: 50 LIF neurons (tau_mem = 20 ms), each under its own DC current drawn in [1.2, 2.5]
(no coupling, so the reference is the closed form k * tau * ln(I/(I - 1)) for every spike),
0.2 s simulated on a 1 ms grid (Euler: its own dt), float64. Prints, per method: the number of
spikes (reference count in the header), the largest spike-time error, the median wall time of
``--repeat`` runs, and the time relative to the exact method.

    python benchmarks/accuracy_vs_cost.py [--repeat 3] [--quick]
    python benchmarks/accuracy_vs_cost.py --input spikes    # W5 of issue #7

``--input spikes`` (W5): 50 LIF neurons (tau_mem = 20 ms, v_th = 1, reset to 0) whose leak
reversal v_leak in [1.05, 1.5] drives them above threshold (a DC drive, so that most crossings
happen between input spikes), with Poisson input spikes (400 Hz each, weights in [-0.15, 0.15])
over 0.2 s.  The reference is
``method="exact"`` at dt = 1 ms (spike times independent of dt: checked against dt = 0.1 ms);
every method is compared with it spike by spike (count, largest time error).  Also listed:
``discretize`` grid layers (exact, impulse input), the input spikes binned to the step they fall
in and the output spikes reported at step ends, which is what the discrete libraries compute.
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


def _by_neuron(times, neurons):
    d = {}
    for t, j in zip(times.tolist(), neurons.tolist()):
        d.setdefault(j, []).append(t)
    return d


def _compare(got, want):
    """(number of spikes, max |time error| over the spikes both have, number of neurons whose count differs)."""
    err, bad = 0.0, 0
    for j in set(want) | set(got):
        a, b = got.get(j, []), want.get(j, [])
        bad += len(a) != len(b)
        err = max([err] + [abs(x - y) for x, y in zip(a, b)])
    return sum(len(v) for v in got.values()), err, bad


def main_spikes(args):
    g = torch.Generator().manual_seed(0)
    model = ctsnn.LIF(tau_mem=TAU, v_leak=1.05 + 0.45 * torch.rand(N, generator=g, dtype=torch.float64))
    rate, T = 400.0, T_END
    k = int(torch.poisson(torch.tensor(rate * T * N), generator=g))
    times, order = torch.sort(torch.rand(k, generator=g, dtype=torch.float64) * T)
    neurons = torch.randint(0, N, (k,), generator=g)[order]
    weights = (0.3 * torch.rand(k, generator=g, dtype=torch.float64) - 0.15)[order]
    spikes = (times, neurons, weights)
    run = lambda method, dt, **kw: ctsnn.simulate(model, spikes=spikes, t_end=T, dt=dt,  # noqa: E731
                                                   method=method, dtype=torch.float64, record=(), **kw)
    ref = run("exact", 1e-3)
    want = _by_neuron(ref.spike_times, ref.spike_neurons)
    check = _compare(_by_neuron(*(lambda r: (r.spike_times, r.spike_neurons))(run("exact", 1e-4))), want)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}; "
          f"{N} LIF neurons, {T} s, {k} input spikes, {ref.spike_times.shape[0]} reference spikes "
          f"(exact at dt 1e-4 vs 1e-3: max error {check[1]:.1e} s, {check[2]} counts differ)")
    print(f"{'method':<16} {'dt / options':<28} {'spikes':>6} {'counts off':>10} {'max |dt_spike| (s)':>19} "
          f"{'wall (s)':>9} {'x exact':>8}")
    configs = [("exact", 1e-3, {}), ("exact", 1e-4, {}), ("euler", 1e-4, {}), ("euler", 1e-5, {}),
               ("rk4", 1e-3, {"step_size": 1e-4}), ("dopri5", 1e-3, {"rtol": 1e-6, "atol": 1e-9}),
               ("dopri5", 1e-3, {"rtol": 1e-9, "atol": 1e-12}), ("dopri8", 1e-3, {"rtol": 1e-9, "atol": 1e-12})]
    if args.quick:
        configs = configs[:3] + configs[5:6]
    base = None
    for method, dt, opts in configs:
        walls = []
        for _ in range(args.repeat):
            w = time.perf_counter()
            tr = run(method, dt, **opts)
            walls.append(time.perf_counter() - w)
        wall = statistics.median(walls)
        base = base or wall
        n, err, bad = _compare(_by_neuron(tr.spike_times, tr.spike_neurons), want)
        desc = f"dt={dt:g} " + " ".join(f"{kk}={v:g}" for kk, v in opts.items())
        print(f"{method:<16} {desc:<28} {n:>6} {bad:>10} {err:>19.2e} {wall:>9.3f} {wall / base:>8.1f}")
    for dt in (1e-3, 1e-4):  # grid layers: input binned, output at step ends
        steps = int(round(T / dt))
        x = torch.zeros(steps, N, dtype=torch.float64)
        x.index_put_((torch.clamp((times / dt).long(), max=steps - 1), neurons), weights, accumulate=True)
        lay = ctsnn.discretize(model, dt, method="exact", input="impulse")
        walls = []
        with torch.no_grad():
            for _ in range(args.repeat):
                w = time.perf_counter()
                sp = lay.run(x, output="sparse").spikes
                walls.append(time.perf_counter() - w)
        wall = statistics.median(walls)
        n, err, bad = _compare(_by_neuron(sp.spike_times, sp.spike_neurons), want)
        print(f"{'discretize grid':<16} {f'dt={dt:g} [{lay.last_backend}]':<28} {n:>6} {bad:>10} {err:>19.2e} "
              f"{wall:>9.3f} {wall / base:>8.1f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="fewer configurations")
    ap.add_argument("--input", choices=("dc", "spikes"), default="dc")
    args = ap.parse_args()
    if args.input == "spikes":
        return main_spikes(args)
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
