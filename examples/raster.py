"""A recurrent population driven by Poisson input: raster and population rate.

    python examples/raster.py [OUTDIR]

100 LIF neurons with random all-to-all weights and a 1.5 ms synaptic delay receive Poisson
input spikes at exact (off-grid) times; the raster shows every output spike at its exact time.
Writes OUTDIR/raster.png (default OUTDIR: ./out).
"""
import sys
from pathlib import Path

import torch

import ctsnn
from ctsnn import plot


def main(out: Path, n: int = 100, t_end: float = 0.2) -> None:
    out.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(1)
    W = torch.randn(n, n, generator=g, dtype=torch.float64) * 0.03
    W.fill_diagonal_(0.0)
    model = ctsnn.Recurrent(ctsnn.LIF(tau_mem=20e-3, n=n), weight=W, delay=1.5e-3)
    rate_in = 800.0                                   # Hz of input per neuron
    k = int(rate_in * t_end * n)
    times, _ = torch.sort(torch.rand(k, generator=g, dtype=torch.float64) * t_end)
    neurons = torch.randint(0, n, (k,), generator=g)
    tr = ctsnn.simulate(model, spikes=(times, neurons, 0.12), t_end=t_end, dt=1e-3, record=(),
                        dtype=torch.float64)
    print(tr.summary())
    axes = plot.raster(tr, rate=True, rate_bin=5e-3)
    axes[0].set_title(f"{n} recurrent LIF neurons, Poisson input, exact spike times")
    plot.save(axes, out / "raster.png")
    print(f"figure written to {out / 'raster.png'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out"))
