"""Firing rate against input current: an adapting LIF against a real cell.

    python examples/fi_curve.py [OUTDIR]

Data: cell B6 of the Blue Brain Project's IDRest protocol (bluepyefe 2.3.63 test data, BSD), the
bundled data set ``ctsnn.datasets.load_b6()``, sweeps 181-185. The five (current, rate) points are
derived from those recordings when the script runs: the current is the median injected current
during the 2 s step (0.70-2.70 s), the rate the number of upward crossings of -20 mV inside the
step divided by 2 s.

Model: ctsnn.ALIF with threshold adaptation; its parameters were set by hand to the data's
rheobase and saturation (not fitted). Writes OUTDIR/fi_curve.png (default OUTDIR: ./out).
"""
import sys
from pathlib import Path

import numpy as np

import ctsnn
from ctsnn import datasets, plot

STEP = (0.70, 2.70)   # s: the current step of every B6 sweep


def data_points():
    """(currents in A, rates in Hz) of B6 sweeps 181..185, derived as described above."""
    currents, rates = [], []
    for rec in datasets.load_b6():
        inside = (rec.t >= STEP[0]) & (rec.t <= STEP[1])
        spikes = rec.spikes(threshold=-0.02)
        currents.append(float(np.median(rec.current[inside])))
        rates.append(float(((spikes >= STEP[0]) & (spikes <= STEP[1])).sum()) / (STEP[1] - STEP[0]))
    return currents, rates


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    data_current, data_rate = data_points()   # 106..341 pA, 13..44.5 Hz
    model = ctsnn.ALIF(tau_mem=20e-3, tau_adapt=0.3, adapt_jump=4e-3, r=280e6, v_leak=-70e-3,
                       v_th=-50e-3, v_reset=-65e-3)
    currents = [k * 0.5e-10 for k in range(0, 8)]             # 0 ... 350 pA
    ax = plot.fi_curve(model, currents, t_end=2.0, dt=1e-3, data=(data_current, data_rate))
    ax.set_title("f-I: ALIF (hand-set parameters) against cell B6, 2 s steps")
    model_rates = ax.get_lines()[0].get_ydata()
    print(f"{'I (pA)':>8s} {'model (Hz)':>11s}")
    for i, r in zip(currents, model_rates):
        print(f"{i * 1e12:8.0f} {r:11.1f}")
    print(f"{'I (pA)':>8s} {'cell B6 (Hz)':>13s}")
    for i, r in zip(data_current, data_rate):
        print(f"{i * 1e12:8.0f} {r:13.1f}")
    plot.save(ax, out / "fi_curve.png")
    print(f"figure written to {out / 'fi_curve.png'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out"))
