"""Time ctsnn.plot.raster on 1e6 spikes written to a PNG (target: under 5 s on the 2-core machine).

    python benchmarks/raster_speed.py [--spikes 1000000] [--repeats 3]
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")

from ctsnn import plot  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--spikes", type=int, default=1_000_000)
    ap.add_argument("--neurons", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    times = np.sort(rng.uniform(0, 10.0, args.spikes))
    neurons = rng.integers(0, args.neurons, args.spikes)
    signs = np.where(rng.random(args.spikes) < 0.8, 1, -1)
    walls = []
    with tempfile.TemporaryDirectory() as d:
        for r in range(args.repeats):
            t0 = time.perf_counter()
            axes = plot.raster((times, neurons, signs), rate=True)
            plot.save(axes, Path(d) / f"r{r}.png")
            walls.append(time.perf_counter() - t0)
            size = (Path(d) / f"r{r}.png").stat().st_size
    print(f"raster of {args.spikes:.0e} spikes ({args.neurons} neurons, two signs) to PNG: "
          f"median {statistics.median(walls):.2f} s [{min(walls):.2f}-{max(walls):.2f}], "
          f"{size / 1e3:.0f} kB; target < 5 s")


if __name__ == "__main__":
    main()
