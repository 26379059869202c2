"""Regenerate the README's figures (docs/img/membrane.png, docs/img/raster.png).

    python examples/readme_figures.py [OUTDIR]     (default OUTDIR: docs/img)
"""
import sys
from pathlib import Path

import torch

import ctsnn
from ctsnn import plot


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    # membrane: an adapting neuron under a current step, drawn at a coarse 1 ms recording grid;
    # the line still reaches the (moving) threshold at each exact spike time
    model = ctsnn.ALIF(tau_mem=10e-3, tau_adapt=100e-3, adapt_jump=2e-3, r=100e6, v_leak=-70e-3,
                       v_th=-50e-3, v_reset=-70e-3)
    t = torch.arange(300, dtype=torch.float64) * 1e-3
    cur = ((t >= 0.02) & (t < 0.25)).to(torch.float64)[:, None] * 0.4e-9
    tr = ctsnn.simulate(model, cur, t_end=0.3, dt=1e-3, record="all", dtype=torch.float64)
    ax = plot.membrane(tr)
    ax.set_title("ALIF, 0.4 nA step, dt = 1 ms: spikes at exact times, moving threshold")
    plot.save(ax, out / "membrane.png")
    # raster: ternary neurons with positive and negative events
    g = torch.Generator().manual_seed(3)
    n = 40
    lit = ctsnn.LIT(tau_mem=20e-3, pos_th=1.0, neg_th=1.0, n=n)
    drive = torch.cumsum(torch.randn(500, n, generator=g, dtype=torch.float64), 0) * 0.4
    tr = ctsnn.simulate(lit, drive, t_end=0.5, dt=1e-3, record=(), dtype=torch.float64)
    axes = plot.raster(tr, rate=True, rate_bin=10e-3)
    axes[0].set_title("40 ternary LIT neurons: positive (blue) and negative (red) events")
    plot.save(axes, out / "raster.png")
    print(f"figures written to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/img"))
