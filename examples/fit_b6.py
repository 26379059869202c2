"""A spiking cell: LIF and ALIF fitted to four IDRest sweeps, then asked to predict the fifth.

    python examples/fit_b6.py [OUTDIR]

Data: the bundled data set ``ctsnn.datasets.load_b6()`` (B6_IDRest_181..185.npz: cell B6, Blue
Brain Project, via the bluepyefe 2.3.63 test data, BSD; see ctsnn/datasets/PROVENANCE.md): 4 kHz, 3 s, a 2 s current step (0.70-2.70 s) of about 106, 162,
225, 284 and 341 pA on a -12.5 pA holding current; 26 to 89 spikes per sweep.

Recipe:
1. passive (tau_mem, r, v_leak, shared): membrane MSE on each training sweep from 0.6 s to 3 ms
   before its first spike (the charging at the step onset);
2. spiking (v_th, v_reset, and for the ALIF tau_adapt, adapt_jump), passive parameters fixed:
   ``loss="spikes"`` with ``spike_metric="matched"`` (k-th model spike against k-th recorded
   spike, continuous as spikes enter the window) and no membrane term (an integrate-and-fire
   model does not draw the action potential), on the first TRAIN_END s of the step of sweeps
   181-184;
3. prediction: sweep 185, simulated over the whole step with the fitted model, compared with the
   recording: spike counts and the coincidence factor Gamma at +-4 ms (Jolivet et al. 2008).

Writes OUTDIR/fit_b6.png and OUTDIR/fit_b6.json (default OUTDIR: ./out) and prints the numbers.
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch

import ctsnn
from ctsnn import datasets, plot
from ctsnn.fitting import gamma_factor

TRAIN, TEST = (181, 182, 183, 184), 185
TRAIN_END = 1.2          # s: the spike fit sees 0.65 s .. TRAIN_END (the first 0.5 s of the step)
BOUNDS = {"v_th": (-0.065, -0.02), "v_reset": (-0.08, -0.046)}


def load(sweep):
    return datasets.load_b6(sweep)


def passive(recs):
    windows = [r.window(0.6, r.spikes()[0] - 3e-3) for r in recs]
    start = ctsnn.LIF(tau_mem=20e-3, r=200e6, v_leak=-0.07, v_th=1.0, v_reset=0.0)  # v_th: never reached
    return ctsnn.fit(start, windows, params=("tau_mem", "r", "v_leak"))


def spiking(kind, pas, recs, max_iter=40, progress=False):
    base = {k: pas.values[k] for k in ("tau_mem", "r", "v_leak")}
    if kind == "lif":
        model, params = ctsnn.LIF(**base, v_th=-0.045, v_reset=-0.055), ("v_th", "v_reset")
    else:
        model = ctsnn.ALIF(**base, v_th=-0.045, v_reset=-0.055, tau_adapt=0.3, adapt_jump=2e-3)
        params = ("v_th", "v_reset", "tau_adapt", "adapt_jump")
    windows = [r.window(0.65, TRAIN_END) for r in recs]
    return ctsnn.fit(model, windows, params=params, loss="spikes", spike_metric="matched", mse_weight=0.0,
                     bounds=BOUNDS, max_iter=max_iter, stderr=False, progress=progress)


def predict(model, rec, t0=0.6, t1=2.8):
    """Simulate ``model`` on ``rec`` from t0 to t1: (trace, window, model spikes, recorded spikes), times from t0."""
    w = rec.window(t0, t1)
    ps = model.params()
    v0 = float(ps["v_leak"].reshape(-1)[0] + ps["r"].reshape(-1)[0] * w.current[0])
    tr = ctsnn.simulate(model, torch.tensor(w.current[:-1])[:, None], t_end=(len(w) - 1) * w.dt, dt=w.dt,
                        initial={"v": v0}, dtype=torch.float64)
    return tr, w, tr.spike_times.numpy(), w.spikes() - w.t[0]


def analyse(max_iter=40, progress=False):
    train = [load(k) for k in TRAIN]
    test = load(TEST)
    pas = passive(train)
    out = {"passive": {k: (pas.values[k], pas.stderr[k]) for k in pas.values}, "passive_rmse": pas.rmse}
    fits = {}
    for kind in ("lif", "alif"):
        res = spiking(kind, pas, train, max_iter=max_iter, progress=progress)
        fits[kind] = res
        rows = {}
        for rec in train + [test]:
            _tr, w, sm, sd = predict(res.model, rec)
            rows[rec.name] = {"model_spikes": int(sm.size), "data_spikes": int(sd.size),
                              "gamma_4ms": gamma_factor(sm, sd, window=4e-3, duration=w.duration)}
        out[kind] = {"values": res.values, "n_eval": res.n_eval, "wall_time_s": res.wall_time_s,
                     "loss": res.loss, "sweeps": rows}
    return out, fits, test


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    out, fits, test = analyse(progress=True)
    print("passive: " + ", ".join(f"{k} = {v:.4g} ± {s:.2g}" for k, (v, s) in out["passive"].items()))
    for kind in ("lif", "alif"):
        print(f"{kind.upper()}: " + ", ".join(f"{k} = {v:.4g}" for k, v in out[kind]["values"].items())
              + f"  ({out[kind]['n_eval']} evaluations, {out[kind]['wall_time_s']:.0f} s)")
        for name, row in out[kind]["sweeps"].items():
            tag = "predicted" if name.endswith(str(TEST)) else "fitted   "
            print(f"  {tag} {name}: model {row['model_spikes']:3d} spikes, data {row['data_spikes']:3d}, "
                  f"Gamma(4 ms) = {row['gamma_4ms']:.3f}")
    (out_dir / "fit_b6.json").write_text(json.dumps(out, indent=2, default=float) + "\n")

    from matplotlib.figure import Figure
    fig = Figure(figsize=(8, 6), layout="constrained")
    ax_v, ax_r = fig.subplots(2, 1, height_ratios=[3, 1.2])
    _tr, w, _sm, sd = predict(fits["alif"].model, test)
    ax_v.plot((w.t - w.t[0]), w.v * 1e3, color="k", lw=0.5, label=f"{test.name} (recorded)")
    spikes = {"data": sd}
    for c, kind in enumerate(("lif", "alif")):
        tr, _w, sm, _sd = predict(fits[kind].model, test)
        tm, vm = plot.membrane_polyline(tr)
        ax_v.plot(tm, vm * 1e3, color=f"C{c}", lw=0.7, label=f"{kind.upper()} prediction")
        spikes[kind.upper()] = sm
    for row, (name, s) in enumerate(spikes.items()):
        ax_r.vlines(s, row + 0.6, row + 1.4, color="k" if name == "data" else f"C{row - 1}", lw=0.8)
    ax_r.set_yticks(range(1, len(spikes) + 1), list(spikes))
    ax_v.set_ylabel("membrane (mV)")
    ax_v.set_xlim(0.05, 0.45)  # the step onset; the raster below shows the whole step
    ax_v.set_xlabel("time from 0.6 s (s)")
    ax_v.set_title(f"sweep {TEST} predicted from sweeps {TRAIN[0]}-{TRAIN[-1]}: ALIF "
                   f"{out['alif']['sweeps'][test.name]['model_spikes']} spikes vs "
                   f"{out['alif']['sweeps'][test.name]['data_spikes']} recorded", fontsize="small")
    ax_v.legend(fontsize="x-small", loc="upper right")
    ax_r.set_xlabel("time from 0.6 s (s)")
    fig.savefig(out_dir / "fit_b6.png", dpi=110)
    print(f"wrote {out_dir / 'fit_b6.png'} and {out_dir / 'fit_b6.json'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out"))
