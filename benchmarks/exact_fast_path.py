"""Time the exact method with and without its fast path for event-free stretches.

    python benchmarks/exact_fast_path.py [--repeats 5]

Prints medians (and min-max) of wall time and the ratio step-by-step / fast path, and checks
that both paths agree. Cases: a subthreshold 3 s sweep at 4 kHz (forward + backward, the
fitting workload), a LIF at dt = 0.1 ms for 1 s with ~55 spikes (forward), and a LIF with
t_ref = 2 ms for 0.2 s at dt = 0.1 ms (forward; the fast path holds refractory neurons and
resumes after the step of their release).
"""
import argparse
import statistics
import time

import torch

import ctsnn


def sweep(chunk):
    cur = torch.zeros(12000, dtype=torch.float64)
    cur[2000:8000] = -0.5
    tau = torch.tensor(0.02, dtype=torch.float64, requires_grad=True)
    model = ctsnn.LIF(tau_mem=tau, r=1.0, v_leak=-0.07, v_th=1.0)
    tr = ctsnn.simulate(model, cur, t_end=3.0, dt=1 / 4000, chunk=chunk)
    loss = (tr["v"] ** 2).mean()
    loss.backward()
    return float(loss.detach()), float(tau.grad)


def spiking(chunk):
    tr = ctsnn.simulate(ctsnn.LIF(tau_mem=10e-3), 1.2, t_end=1.0, dt=1e-4, dtype=torch.float64,
                        chunk=chunk)
    return tr.n_spikes, float(tr.spike_times.sum())


def refractory(chunk):
    tr = ctsnn.simulate(ctsnn.LIF(tau_mem=10e-3, t_ref=2e-3), 1.5, t_end=0.2, dt=1e-4,
                        dtype=torch.float64, chunk=chunk)
    return tr.n_spikes, float(tr.spike_times.sum())


def timed(fn, arg, repeats):
    out, ts = None, []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(arg)
        ts.append(time.perf_counter() - t0)
    return out, ts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    cases = (("sweep 3 s @ 4 kHz fwd+bwd", sweep), ("LIF 1 s @ 0.1 ms, 55 spikes", spiking),
             ("LIF 0.2 s @ 0.1 ms, t_ref 2 ms", refractory))
    for name, fn in cases:
        fn(256)
        (a, ta), (b, tb) = timed(fn, 0, max(1, args.repeats // 2)), timed(fn, 256, args.repeats)
        if abs(a[0] - b[0]) > 1e-9 * max(1.0, abs(a[0])) or abs(a[1] - b[1]) > 1e-9 * max(1.0, abs(a[1])):
            raise SystemExit(f"{name}: the two paths disagree: {a} vs {b}")
        ma, mb = statistics.median(ta), statistics.median(tb)
        print(f"{name:32s} step-by-step {ma:7.3f} s [{min(ta):.3f}-{max(ta):.3f}]   "
              f"fast path {mb:7.3f} s [{min(tb):.3f}-{max(tb):.3f}]   ratio {ma / mb:6.1f}x")


if __name__ == "__main__":
    main()
