"""Passive membrane of a CA1 pyramidal cell, fitted from its hyperpolarising current steps.

    python examples/fit_ca1.py [OUTDIR]

Data: the bundled data set ``ctsnn.datasets.path("ca1")`` (99111002.nwb: rat CA1, 1999; Hippocampus
Hub, via the bluepyefe 2.3.63 test data; terms in ctsnn/datasets/PROVENANCE.md). 16 current-clamp sweeps at 10 kHz, a 400 ms step from 31.2 ms;
read with ``ctsnn.io.load_nwb`` (values converted to SI with the file's own conversion factors).

Recipe (the choices, and why):
- sweeps 6-10 (-1.0 ... -0.2 nA): the hyperpolarising sweeps that respond (sweeps 1-5 show no
  response to their step: the recording was not established yet);
- window: from 5 ms after the sweep start to 100 ms after the step onset
  (the charging phase; the plateau after it adds no information on tau but weights the fit
  toward the cell's slow non-linearity);
- the first 1.5 ms after the onset are left out (``Recording.exclude``): the electrode's fast
  transient; the uncompensated series resistance (bridge balance) is fitted as ``r_series``;
- the baseline drifts between sweeps (-15 to -4 mV), so ``v_leak`` is fitted per sweep, and the
  cell is not linear (its input resistance falls from ~100 to ~65 MOhm as the step shrinks; one
  shared r leaves 5-8 mV baseline errors), so ``r`` is per sweep too; tau_mem and r_series are
  shared.
Reference: a joint single-exponential fit (scipy curve_fit; shared tau, per-sweep offset and
amplitude) of the same charging-phase samples, and per-sweep single exponentials.

Writes OUTDIR/fit_ca1.png, OUTDIR/fit_ca1.json (default OUTDIR: ./out) and prints the numbers.
"""
import json
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import curve_fit

import ctsnn
from ctsnn import datasets, io, plot

SWEEPS = [6, 7, 8, 9, 10]
ONSET = 312 * 1e-4          # step onset (s from the sweep start): sample 312 at 10 kHz
START, END, ARTEFACT = 5e-3, ONSET + 0.100, 1.5e-3


def charging_samples(rec):
    t_rel = rec.t - rec.t[0]
    sel = (t_rel >= ONSET + ARTEFACT) & (t_rel <= END)
    return t_rel[sel] - ONSET, rec.v[sel]


def single_exponentials(recs):
    """(joint tau, its stderr, per-sweep taus) of v = v_inf + a exp(-t/tau) on the charging phase."""
    parts = [charging_samples(r) for r in recs]
    each = []
    for tt, vv in parts:
        p, _ = curve_fit(lambda t, vi, a, tau: vi + a * np.exp(-t / tau), tt, vv, p0=(vv[-1], vv[0] - vv[-1], 0.01))
        each.append(p[2])

    def joint(_x, tau, *va):
        return np.concatenate([va[2 * k] + va[2 * k + 1] * np.exp(-tt / tau) for k, (tt, _v) in enumerate(parts)])

    p0 = [float(np.mean(each))] + [x for tt, vv in parts for x in (vv[-1], vv[0] - vv[-1])]
    p, cov = curve_fit(joint, None, np.concatenate([vv for _t, vv in parts]), p0=p0)
    return float(p[0]), float(np.sqrt(cov[0, 0])), [float(x) for x in each]


def analyse(path=None):
    recs = io.load_nwb(datasets.path("ca1") if path is None else path, sweeps=SWEEPS)
    data = [r.window(r.t[0] + START, r.t[0] + END).exclude(r.t[0] + ONSET, r.t[0] + ONSET + ARTEFACT)
            for r in recs]
    start = ctsnn.LIF(tau_mem=20e-3, r=100e6, v_leak=-0.01, v_th=1.0, v_reset=0.0)  # v_th: never reached
    res = ctsnn.fit(start, data, params=("tau_mem", "r_series"), per_sweep=("v_leak", "r"))
    tau_exp, tau_exp_se, taus = single_exponentials(recs)
    return res, {"tau_single_exp_joint": tau_exp, "tau_single_exp_joint_stderr": tau_exp_se,
                 "tau_single_exp_per_sweep": taus}


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    res, ref = analyse()
    print(res.summary())
    tau = res.values["tau_mem"]
    print(f"single-exponential charging fit: tau = {ref['tau_single_exp_joint'] * 1e3:.2f} "
          f"± {ref['tau_single_exp_joint_stderr'] * 1e3:.2f} ms (joint); per sweep "
          + ", ".join(f"{x * 1e3:.1f}" for x in ref["tau_single_exp_per_sweep"]) + " ms")
    print(f"LIF tau_mem / single-exponential tau = {tau / ref['tau_single_exp_joint']:.3f}")
    d = res.to_dict()
    d["reference"] = ref
    (out / "fit_ca1.json").write_text(json.dumps(d, indent=2) + "\n")
    axes = plot.fit(res)
    axes[0].set_xlim(0, END * 1e3)
    plot.save(axes[0], out / "fit_ca1.png")
    print(f"wrote {out / 'fit_ca1.png'} and {out / 'fit_ca1.json'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out"))
