"""ctsnn's event engine against NEST 3.10 ``iaf_psc_exp_ps`` (precise spike times) and Brian2 2.9
(cython target, spikes on the grid), same thread count, dt = 0.1 ms.

W6a  1000 exponential-synapse LIF (tau_m 10 ms, tau_s 2 ms, C 250 pF, threshold -50 mV, reset
     and rest -70 mV, t_ref 2 ms), DC 550..660 pA, no input; 1 s.
W6b  W6a plus independent Poisson input spikes, 1 kHz per neuron, 20 pA each; 1 s.
W6c  Brunel (2000) balanced random network with exponential synapses: 8000 excitatory + 2000
     inhibitory neurons (the W6a neuron, reset -60 mV), 10 % connectivity as fixed in-degree
     (800 + 200), delay 1.5 ms, g = 5, J such that the mean drive of a spike equals a 0.1 mV
     delta-synapse PSP (J = 0.1 mV tau_m / (r tau_s) = 12.5 pA), Poisson drive at 2x the
     threshold rate (nu_th = theta / (J_PSP C_E tau_m)); --t-c seconds (default 0.2 s).

Before any time is printed: the mean rates agree within 2 % with every reference, and for W6a
every spike time equals NEST's within 1e-12 s (same spike count per neuron). Times are medians
of --repeats runs in one process each (wall and CPU time of the simulation call alone; the
reference simulators' build/compile steps are done once before timing).

The reference simulators live in their own virtual environment:

    python3 -m venv /tmp/refsim && /tmp/refsim/bin/pip install nest-simulator==3.10.0 brian2==2.9.0 'numpy<2.4'

then ``python benchmarks/simulate_vs_nest.py --refsim /tmp/refsim/bin/python``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DT_MS = 0.1
P = dict(C=250.0, tau_m=10.0, tau_s=2.0, t_ref=2.0, E_L=-70.0, V_th=-50.0, V_reset=-70.0)  # pF, ms, mV
R_MV_PER_PA = P["tau_m"] / P["C"]          # 10 ms / 250 pF = 40 MOhm = 0.04 mV/pA
BRUNEL = dict(NE=8000, NI=2000, CE=800, CI=200, g=5.0, eta=2.0, J_psp=0.1, delay=1.5, V_reset=-60.0)


def brunel_rates():
    J = BRUNEL["J_psp"] * P["tau_m"] / (R_MV_PER_PA * P["tau_s"])          # pA
    nu_th = (P["V_th"] - P["E_L"]) / (BRUNEL["J_psp"] * BRUNEL["CE"] * P["tau_m"] * 1e-3)   # Hz
    return J, BRUNEL["eta"] * nu_th * BRUNEL["CE"]


# --------------------------------------------------------------------------- the references
REF = r'''
import json, sys, time, statistics, numpy as np
cfg = json.loads(sys.argv[1])
P, B, w, sim, T, reps, th = cfg["P"], cfg["B"], cfg["workload"], cfg["sim"], cfg["T"], cfg["repeats"], cfg["threads"]
n = 1000
out = {"wall": [], "cpu": []}

def nest_build():
    import nest
    nest.set_verbosity("M_ERROR")
    nest.ResetKernel()
    nest.SetKernelStatus({"resolution": 0.1, "local_num_threads": th, "rng_seed": 12345})
    prm = {"C_m": P["C"], "tau_m": P["tau_m"], "tau_syn_ex": P["tau_s"], "tau_syn_in": P["tau_s"],
           "t_ref": P["t_ref"], "E_L": P["E_L"], "V_th": P["V_th"], "V_reset": P["V_reset"], "V_m": P["E_L"]}
    if w in ("W6a", "W6b"):
        pop = nest.Create("iaf_psc_exp_ps", n, params=prm)
        pop.I_e = list(np.linspace(550.0, 660.0, n))
        if w == "W6b":
            pg = nest.Create("poisson_generator_ps", params={"rate": 1000.0})
            nest.Connect(pg, pop, syn_spec={"weight": 20.0, "delay": 0.1})
    else:
        prm["V_reset"] = B["V_reset"]
        NE, NI = B["NE"], B["NI"]
        pop = nest.Create("iaf_psc_exp_ps", NE + NI, params=prm)
        J, p_rate = cfg["J"], cfg["p_rate"]
        pg = nest.Create("poisson_generator_ps", params={"rate": p_rate})
        nest.Connect(pg, pop, syn_spec={"weight": J, "delay": B["delay"]})
        nest.Connect(pop[:NE], pop, {"rule": "fixed_indegree", "indegree": B["CE"]},
                     {"weight": J, "delay": B["delay"]})
        nest.Connect(pop[NE:], pop, {"rule": "fixed_indegree", "indegree": B["CI"]},
                     {"weight": -B["g"] * J, "delay": B["delay"]})
    sr = nest.Create("spike_recorder")
    nest.Connect(pop, sr)
    return nest, pop, sr

def brian_build():
    import brian2 as b2
    b2.prefs.codegen.target = "cython"
    b2.prefs.devices.cpp_standalone.openmp_threads = th
    b2.start_scope()
    b2.defaultclock.dt = 0.1 * b2.ms
    N = n if w != "W6c" else B["NE"] + B["NI"]
    eqs = """dv/dt = (-(v - EL) + R * (isyn + Ie)) / tau_m : volt (unless refractory)
             disyn/dt = -isyn / tau_s : amp
             Ie : amp"""
    G = b2.NeuronGroup(N, eqs, threshold="v > VTH", reset="v = VRESET", refractory=P["t_ref"] * b2.ms,
                       method="exact", namespace=dict(EL=P["E_L"] * b2.mV, R=P["tau_m"] / P["C"] * b2.Gohm,
                       tau_m=P["tau_m"] * b2.ms, tau_s=P["tau_s"] * b2.ms, VTH=P["V_th"] * b2.mV,
                       VRESET=(P["V_reset"] if w != "W6c" else B["V_reset"]) * b2.mV))
    G.v = P["E_L"] * b2.mV
    objs = [G]
    if w in ("W6a", "W6b"):
        G.Ie = np.linspace(550.0, 660.0, n) * b2.pA
        if w == "W6b":
            objs.append(b2.PoissonInput(G, "isyn", 1, 1000 * b2.Hz, weight=20 * b2.pA))
    else:
        J, p_rate = cfg["J"], cfg["p_rate"]
        NE = B["NE"]
        objs.append(b2.PoissonInput(G, "isyn", 1, p_rate * b2.Hz, weight=J * b2.pA))
        rng = np.random.default_rng(1)
        for pre0, pre1, k, wt in ((0, NE, B["CE"], J), (NE, N, B["CI"], -B["g"] * J)):
            S = b2.Synapses(G, G, on_pre="isyn += %r * pA" % wt, delay=B["delay"] * b2.ms)
            post = np.repeat(np.arange(N), k)
            pre = rng.integers(pre0, pre1, size=N * k)
            S.connect(i=pre, j=post)
            objs.append(S)
    M = b2.SpikeMonitor(G)
    objs.append(M)
    net = b2.Network(*objs)
    return b2, net, M

for r in range(reps + 1):       # run 0 builds / compiles and is not timed
    if sim == "nest":
        nest, pop, sr = nest_build()
        t, c = time.perf_counter(), time.process_time()
        nest.Simulate(T * 1000.0)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        ev = sr.get("events")
        times, senders = np.asarray(ev["times"]) * 1e-3, np.asarray(ev["senders"]) - min(pop.tolist())
    else:
        b2, net, M = brian_build()
        net.run(0 * b2.ms)          # code generation and compilation
        t, c = time.perf_counter(), time.process_time()
        net.run(T * b2.second)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        times, senders = np.asarray(M.t / b2.second), np.asarray(M.i)
    if r:
        out["wall"].append(wall); out["cpu"].append(cpu)
np.savez(cfg["out"], times=times, senders=senders)
print(json.dumps(out))
'''


def run_reference(py, sim, workload, T, repeats, threads, tmp):
    J, p_rate = brunel_rates()
    out = os.path.join(tmp, f"{sim}_{workload}.npz")
    cfg = dict(P=P, B=BRUNEL, workload=workload, sim=sim, T=T, repeats=repeats, threads=threads, out=out,
               J=J, p_rate=p_rate)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH="")
    res = subprocess.run([py, "-c", REF, json.dumps(cfg)], capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"{sim} {workload} failed:\n{res.stderr[-3000:]}")
    times = json.loads(res.stdout.strip().splitlines()[-1])
    z = np.load(out)
    return times, z["times"], z["senders"].astype(np.int64)


# --------------------------------------------------------------------------- ctsnn
def run_ctsnn(workload, T, repeats, threads):
    import torch

    import ctsnn
    from ctsnn.network import Network, PoissonSource, Population, Projection

    torch.set_num_threads(threads)
    model = ctsnn.CubaLIF(tau_syn=P["tau_s"] * 1e-3, tau_mem=P["tau_m"] * 1e-3, r=R_MV_PER_PA, v_leak=P["E_L"],
                          v_th=P["V_th"], v_reset=P["V_reset"], t_ref=P["t_ref"] * 1e-3)
    walls, cpus, setups = [], [], []
    for r in range(repeats + 1):    # run 0 compiles the engine (cached on disk) and is not timed
        if workload == "W6a":
            I = torch.linspace(550.0, 660.0, 1000, dtype=torch.float64)[None]
            t, c = time.perf_counter(), time.process_time()
            tr = ctsnn.simulate(model, I, t_end=T, dt=DT_MS * 1e-3, record=(), dtype=torch.float64)
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            assert tr.stats["backend"] == "engine"
            times, senders = tr.spike_times.numpy(), tr.spike_neurons.numpy()
        else:
            if workload == "W6b":
                pop = Population(model, 1000, current=np.linspace(550.0, 660.0, 1000))
                net = Network([pop], sources=[PoissonSource(pop, 1000.0, 20.0, seed=r)])
            else:
                J, p_rate = brunel_rates()
                m = model.replace(v_reset=BRUNEL["V_reset"])
                E, I_ = Population(m, BRUNEL["NE"]), Population(m, BRUNEL["NI"])
                d = BRUNEL["delay"] * 1e-3
                projs = [Projection.fixed_indegree(E, Q, BRUNEL["CE"], J, d, seed=2 * r + k)
                         for k, Q in enumerate((E, I_))]
                projs += [Projection.fixed_indegree(I_, Q, BRUNEL["CI"], -BRUNEL["g"] * J, d, seed=2 * r + 10 + k)
                          for k, Q in enumerate((E, I_))]
                net = Network([E, I_], projs, [PoissonSource(P_, p_rate, J, seed=r + 100 * k)
                                               for k, P_ in enumerate((E, I_))])
            res = net.run(T, DT_MS * 1e-3, record=(), threads=threads)
            # the engine call; the preparation (projections to CSR order: NEST's Connect) apart
            wall, cpu = res.stats["wall_time_s"], res.stats["cpu_time_s"]
            setups.append(res.stats["setup_s"])
            times = res.spike_times
            senders = res.spike_neuron + np.where(res.spike_population == 1, BRUNEL["NE"], 0)
        if r:
            walls.append(wall)
            cpus.append(cpu)
    return {"wall": walls, "cpu": cpus, "setup": setups}, times, senders


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--refsim", default="/tmp/refsim/bin/python", help="python of the NEST/Brian2 venv")
    ap.add_argument("--workloads", default="W6a,W6b,W6c")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", default="1", help="thread counts, e.g. 1,2 (each workload at each)")
    ap.add_argument("--ref-threads", default=None,
                    help="thread counts of the references (default: those of --threads)")
    ap.add_argument("--t-c", type=float, default=0.2, help="simulated seconds of W6c")
    ap.add_argument("--no-brian", action="store_true")
    args = ap.parse_args(argv)
    if not os.path.exists(args.refsim):
        sys.exit(f"no reference venv at {args.refsim}; make it with\n  python3 -m venv /tmp/refsim && "
                 f"/tmp/refsim/bin/pip install nest-simulator==3.10.0 brian2==2.9.0 'numpy<2.4'")
    sims = ["nest"] + ([] if args.no_brian else ["brian2"])
    threads = [int(x) for x in args.threads.split(",")]
    ref_threads = [int(x) for x in (args.ref_threads or args.threads).split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for wl in args.workloads.split(","):
            T = args.t_c if wl == "W6c" else 1.0
            N = BRUNEL["NE"] + BRUNEL["NI"] if wl == "W6c" else 1000
            ours = {th: run_ctsnn(wl, T, args.repeats, th) for th in threads}
            _o, t_ours, s_ours = ours[threads[0]]
            for th in threads[1:]:          # the engine's result does not depend on the thread count
                if not (np.array_equal(ours[th][1], t_ours) and np.array_equal(ours[th][2], s_ours)):
                    sys.exit(f"{wl}: ctsnn on {th} threads differs from {threads[0]} thread(s)")
            rate_ours = t_ours.shape[0] / (N * T)
            ref = {(sim, th): run_reference(args.refsim, sim, wl, T, args.repeats, th, tmp)
                   for sim in sims for th in ref_threads}
            # checks before any time is printed
            for (sim, th), (_tm, t_ref, s_ref) in ref.items():
                rate_ref = t_ref.shape[0] / (N * T)
                if abs(rate_ours / rate_ref - 1) > 0.02:
                    sys.exit(f"{wl}: mean rate {rate_ours:.4f} Hz differs from {sim}'s {rate_ref:.4f} Hz by more "
                             f"than 2 %")
            if wl == "W6a":
                _tm, t_n, s_n = ref[("nest", ref_threads[0])]
                worst = 0.0
                for j in range(N):
                    a, b = np.sort(t_ours[s_ours == j]), np.sort(t_n[s_n == j])
                    if a.shape != b.shape:
                        sys.exit(f"W6a: neuron {j} has {a.shape[0]} spikes, NEST {b.shape[0]}")
                    if a.size:
                        worst = max(worst, float(np.abs(a - b).max()))
                if worst > 1e-12:
                    sys.exit(f"W6a: a spike time differs from NEST's by {worst:.3g} s (> 1e-12 s)")
                print(f"W6a: {t_ours.shape[0]} spikes, every one within {worst:.2g} s of NEST iaf_psc_exp_ps")
            print(f"{wl}: mean rate ctsnn {rate_ours:.3f} Hz; " + ", ".join(
                f"{s} ({th} thr) {r[1].shape[0] / (N * T):.3f} Hz" for (s, th), r in ref.items()))
            med = lambda x: statistics.median(x)  # noqa: E731
            for th in threads:
                tm = ours[th][0]
                row = {"workload": wl, "T": T, "threads": th, "ctsnn_wall": med(tm["wall"]),
                       "ctsnn_cpu": med(tm["cpu"]), "setup": med(tm["setup"]) if tm["setup"] else None}
                for (sim, rth), (rtm, *_r) in ref.items():
                    if rth == th:
                        row[f"{sim}_wall"], row[f"{sim}_cpu"] = med(rtm["wall"]), med(rtm["cpu"])
                rows.append(row)
    print(f"\nmedians of {args.repeats} runs (s of wall / CPU time per run)")
    for r in rows:
        line = (f"{r['workload']} ({r['T']:g} s simulated, {r['threads']} thread(s)): ctsnn {r['ctsnn_wall']:.3f} / "
                f"{r['ctsnn_cpu']:.3f}")
        if r["setup"] is not None:
            line += f" (+ {r['setup']:.2f} s wall of network preparation)"
        for sim in sims:
            if sim + "_wall" in r:
                line += (f"; {sim} {r[sim + '_wall']:.3f} / {r[sim + '_cpu']:.3f} (ctsnn / {sim}: wall "
                         f"{r['ctsnn_wall'] / r[sim + '_wall']:.2f}x, CPU {r['ctsnn_cpu'] / r[sim + '_cpu']:.2f}x)")
        print(line)
    for wl in {r["workload"] for r in rows}:
        rr = {r["threads"]: r for r in rows if r["workload"] == wl}
        if 1 in rr and 2 in rr:
            print(f"{wl}: ctsnn 2 threads vs 1: {rr[1]['ctsnn_wall'] / rr[2]['ctsnn_wall']:.2f}x faster (wall)")


if __name__ == "__main__":
    main()
