"""Leave-one-sweep-out validation of the step-protocol recipe (``ctsnn.fitting.fit_protocol``)
on every cell bundled in ``ctsnn.datasets``; prints the table of docs/fitting.md.

    python benchmarks/fit_generalization.py [--cells b6,ca1] [--json OUT.json] [--jobs N]

``--jobs N`` runs the folds (one fit per held-out sweep) in N processes at once (each on one
torch thread); the results do not depend on it. ``--models lif,alif_threshold`` restricts the
candidates (default: the default ``Recipe()``'s); a third table gives every candidate's own
prediction of each held-out sweep (the chosen one marked ``*``).

Cells: B6 (sweeps 181-185, all spiking: each one held out in turn, fitted on the other four);
CA1 (NWB sweeps 6-16: the hyperpolarising steps 6-10 and the zero step 11 train the passive
membrane in every fold; the depolarising steps 12-16, the ones that spike, are held out in turn).
Sweeps 1-5 of the CA1 file are left out: the recording was not established (no response to
their steps). The recipe is the default ``Recipe()`` for both cells: no per-cell setting.

Targets (issue 18): held-out spike count within 10%, first-spike latency within 3 ms, every cell.
Each row: the held-out sweep, the model chosen, recorded and predicted spike counts, the count
error, the latency error, the ISI error, Gamma(4 ms) and the subthreshold explained variance; per
cell the mean absolute errors over the held-out sweeps with 95% bootstrap intervals.
"""
import argparse
import json
import sys
import time

import numpy as np

from ctsnn import datasets
from ctsnn.fitting import Recipe, leave_one_out, summarize

CELLS = {
    "b6": lambda: datasets.load_b6(),
    "ca1": lambda: datasets.load_ca1(list(range(6, 17))),
}


def _fold(cell: str, j: int, recipe: Recipe, progress: bool) -> dict:
    recs = CELLS[cell]()
    return leave_one_out(recs, recipe, held_out=[j], progress=progress)[0]


def run(cell: str, recipe: Recipe, progress: bool = False, jobs: int = 1) -> dict:
    """Leave-one-sweep-out on ``cell``: every sweep that ``leave_one_out`` holds out by default."""
    from ctsnn.fitting.protocol import _sweeps

    recs = CELLS[cell]()
    sweeps = _sweeps(recs, recipe)
    top = max(abs(s.amplitude) for s in sweeps)
    held = [j for j, s in enumerate(sweeps) if s.spikes.size and s.amplitude > 0.01 * top]
    t0 = time.perf_counter()
    if jobs <= 1:
        rows = leave_one_out(recs, recipe, progress=progress)
    else:
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(max_workers=jobs) as ex:
            rows = list(ex.map(_fold, [cell] * len(held), held, [recipe] * len(held), [progress] * len(held)))
    return {"cell": cell, "rows": rows, "summary": summarize(rows), "wall_time_s": time.perf_counter() - t0}


def table(results) -> str:
    head = ("| cell | held-out sweep | model | spikes rec. | spikes pred. | count error | latency error (ms) "
            "| ISI error | Gamma(4 ms) | subthr. EV |")
    lines = [head, "|" + "---|" * 10]
    f = lambda x, s="{:+.1%}": "n/a" if not np.isfinite(x) else s.format(x)  # noqa: E731
    for res in results:
        for r in res["rows"]:
            lines.append(f"| {res['cell']} | {r['sweep']} | {r['kind']} | {r['n_data']} | {r['n_model']} | "
                         f"{f(r['count_error'])} | {f(r['latency_error'] * 1e3, '{:+.2f}')} | "
                         f"{f(r['isi_error'], '{:.2f}')} | {f(r['gamma'], '{:.2f}')} | {f(r['ev'], '{:.2f}')} |")
    lines.append("")
    lines.append("| cell | mean abs. count error [95% CI] | mean abs. latency error (ms) [95% CI] | ISI error "
                 "| Gamma(4 ms) | subthr. EV | sweeps within 10% / 3 ms | wall time |")
    lines.append("|" + "---|" * 8)
    for res in results:
        s = res["summary"]
        c, l_, i, g, e = (s[k] for k in ("abs_count_error", "abs_latency_error", "isi_error", "gamma", "ev"))
        ok_c = sum(abs(r["count_error"]) <= 0.1 for r in res["rows"])
        ok_l = sum(abs(r["latency_error"]) <= 3e-3 for r in res["rows"])
        n = len(res["rows"])
        lines.append(f"| {res['cell']} | {c[0]:.1%} [{c[1]:.1%}, {c[2]:.1%}] | {l_[0] * 1e3:.2f} [{l_[1] * 1e3:.2f}, "
                     f"{l_[2] * 1e3:.2f}] | {i[0]:.2f} [{i[1]:.2f}, {i[2]:.2f}] | {g[0]:.2f} [{g[1]:.2f}, {g[2]:.2f}] "
                     f"| {e[0]:.2f} [{e[1]:.2f}, {e[2]:.2f}] | {ok_c}/{n}, {ok_l}/{n} | {res['wall_time_s']:.0f} s |")
    models = sorted({k for res in results for r in res["rows"] for k in r.get("by_model", {})})
    if models:            # every candidate's own prediction (the chosen one marked *)
        lines += ["", "| cell | held-out sweep | spikes rec. | " + " | ".join(f"{m}: pred. (count err., latency err. ms)"
                                                               for m in models) + " |",
                  "|" + "---|" * (3 + len(models))]
        for res in results:
            for r in res["rows"]:
                cells = []
                for m in models:
                    b = r.get("by_model", {}).get(m)
                    cells.append("" if b is None else f"{b['n_model']} ({f(b['count_error'])}, "
                                 f"{f(b['latency_error'] * 1e3, '{:+.2f}')})" + (" *" if m == r["kind"] else ""))
                lines.append(f"| {res['cell']} | {r['sweep']} | {r['n_data']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cells", default="b6,ca1")
    ap.add_argument("--json", default=None)
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--models", default=None)
    args = ap.parse_args(argv)
    recipe = Recipe() if args.models is None else Recipe(models=tuple(args.models.split(",")))
    results = [run(c, recipe, progress=not args.quiet, jobs=args.jobs) for c in args.cells.split(",")]
    print(table(results))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1, default=lambda x: x.item() if hasattr(x, "item") else str(x))
    return 0


if __name__ == "__main__":
    sys.exit(main())
