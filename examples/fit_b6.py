"""A spiking cell: the step-protocol recipe fitted to four IDRest sweeps predicts the fifth.

    python examples/fit_b6.py [OUTDIR]

Data: the bundled data set ``ctsnn.datasets.load_b6()`` (B6_IDRest_181..185.npz: cell B6, Blue
Brain Project, via the bluepyefe 2.3.63 test data, BSD; see ctsnn/datasets/PROVENANCE.md): 4 kHz,
3 s, a 2 s current step (0.70-2.70 s) of about 106, 162, 225, 284 and 341 pA on a -12.5 pA holding
current; 26 to 89 spikes per sweep.

Recipe (``ctsnn.fitting.fit_protocol`` with the default ``Recipe()``, docs/fitting.md "Step
protocols"): each sweep's step, resting level and action potentials are read from the data; the
passive membrane (tau_mem, r, r_series) is fitted to the charging before the first spike; LIF,
ALIF with threshold adaptation and ALIF with current adaptation are fitted to the spike count,
first-spike latency and inter-spike intervals of the whole step of sweeps 181-184; the model is
chosen on the highest training step (184) left out of a refit; sweep 185 is then predicted.

Writes OUTDIR/fit_b6.png and OUTDIR/fit_b6.json (default OUTDIR: ./out) and prints the numbers.
About 2 minutes of CPU (one thread; 2026-12-03, the default recipe's search of up to 100
generations); half an hour of wall time on the 2-core machine shared with other jobs (load 15).
"""
import json
import sys
from pathlib import Path

from ctsnn import datasets
from ctsnn.fitting import Recipe, fit_protocol

TRAIN, TEST = (181, 182, 183, 184), 185


def analyse(recipe: Recipe | None = None, progress: bool = False):
    train = datasets.load_b6(list(TRAIN))
    test = datasets.load_b6(TEST)
    res = fit_protocol(train, recipe or Recipe(), progress=progress)
    (held,) = res.evaluate(test)
    out = {"kind": res.kind, "values": res.values, "selection": res.selection,
           "candidates": {k: {"params": c["params"], "loss": c["loss"]} for k, c in res.candidates.items()},
           "train": res.train, "test": held, "wall_time_s": res.wall_time_s}
    return out, res, test


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    out, res, test = analyse(progress=True)
    print(res.summary())
    print("sweep            step (pA)  recorded  model  count error  latency error  ISI error  Gamma(4 ms)  subthr. EV")
    for tag, row in [("fitted   ", r) for r in out["train"]] + [("PREDICTED", out["test"])]:
        lat = row["latency_error"]
        print(f"{tag} {row['sweep'][-3:]}  {row['amplitude'] * 1e12:8.0f}  {row['n_data']:8d}  {row['n_model']:5d}  "
              f"{row['count_error']:+10.1%}  {lat * 1e3:+11.2f} ms  {row['isi_error']:9.2f}  {row['gamma']:11.2f}  "
              f"{row['ev']:10.2f}")
    (out_dir / "fit_b6.json").write_text(json.dumps(out, indent=2, default=float) + "\n")

    from matplotlib.figure import Figure
    pred = res.predict(test)
    s = pred["sweep"]
    fig = Figure(figsize=(8, 6), layout="constrained")
    ax_v, ax_r = fig.subplots(2, 1, height_ratios=[3, 1.2])
    ax_v.plot(s.t, (s.v + s.baseline) * 1e3, color="k", lw=0.5, label=f"{test.name} (recorded)")
    ax_v.plot(s.t, pred["v"] * 1e3, color="C1", lw=0.7, label=f"{res.kind} prediction")
    ax_v.set_xlim(-0.02, 0.4)      # the onset; the raster below shows the whole step
    ax_v.set_ylabel("membrane (mV)")
    ax_v.set_xlabel("time from the step onset (s)")
    ax_v.set_title(f"sweep {TEST} predicted from sweeps {TRAIN[0]}-{TRAIN[-1]}: {res.kind}, "
                   f"{out['test']['n_model']} spikes vs {out['test']['n_data']} recorded, first spike "
                   f"{out['test']['latency_error'] * 1e3:+.1f} ms", fontsize="small")
    ax_v.legend(fontsize="x-small", loc="upper right")
    ax_r.vlines(s.spikes, 1.6, 2.4, color="k", lw=0.8)
    ax_r.vlines(pred["spikes"], 0.6, 1.4, color="C1", lw=0.8)
    ax_r.set_yticks([1, 2], [res.kind, "data"])
    ax_r.set_xlabel("time from the step onset (s)")
    fig.savefig(out_dir / "fit_b6.png", dpi=110)
    print(f"wrote {out_dir / 'fit_b6.png'} and {out_dir / 'fit_b6.json'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out"))
