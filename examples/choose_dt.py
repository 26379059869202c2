"""What does my choice of dt (and method) do to the spike times?

    python examples/choose_dt.py [OUTDIR]

Simulates one physiological LIF neuron (tau_mem = 10 ms, R = 100 MOhm, 0.25 nA step) with the
exact method at dt = 1 ms and 0.1 ms, with forward Euler at the same steps, and with the
torchdiffeq methods rk4 (fixed step) and dopri5 (adaptive) at dt = 1 ms; prints each run's
largest spike-time error against the exact reference, and writes the comparison figure
OUTDIR/choose_dt.png (default OUTDIR: ./out).
"""
import sys
from pathlib import Path

import torch

import ctsnn
from ctsnn import plot


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model = ctsnn.LIF(tau_mem=10e-3, r=100e6, v_leak=-70e-3, v_th=-50e-3, v_reset=-65e-3)

    def current(t_end, dt):
        t = torch.arange(round(t_end / dt), dtype=torch.float64) * dt
        return ((t >= 0.02) & (t < 0.18)).to(torch.float64)[:, None] * 0.25e-9

    runs = [("exact", 1e-4), ("exact", 1e-3), ("euler", 1e-4), ("euler", 1e-3), ("rk4", 1e-3),
            ("dopri5", 1e-3)]
    traces, labels = [], []
    for method, dt in runs:
        traces.append(ctsnn.simulate(model, current(0.2, dt), t_end=0.2, dt=dt, method=method,
                                     dtype=torch.float64))
        labels.append(f"{method}, dt={dt * 1e3:g} ms")
    ref = traces[0].spike_times
    print(f"{'run':24s} spikes  max |t - t_exact| (ms)")
    for tr, lab in zip(traces, labels):
        m = min(tr.n_spikes, ref.shape[0])
        err = float((tr.spike_times[:m] - ref[:m]).abs().max()) * 1e3 if m else float("nan")
        print(f"{lab:24s} {tr.n_spikes:6d}  {err:.3g}")
    axes = plot.compare(traces, labels, diff_scale="log")
    axes[0].set_title("LIF, 0.25 nA step: spike times by method and dt (differences on a log scale)")
    plot.save(axes, out / "choose_dt.png")
    print(f"figure written to {out / 'choose_dt.png'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out"))
