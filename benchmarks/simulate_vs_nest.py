"""ctsnn's event engine against NEST 3.10 ``iaf_psc_exp_ps`` (precise spike times) and Brian2 2.9
(cython target, spikes on the grid), same thread count, dt = 0.1 ms.

W6a  1000 exponential-synapse LIF (tau_m 10 ms, tau_s 2 ms, C 250 pF, threshold -50 mV, reset
     and rest -70 mV, t_ref 2 ms), DC 550..660 pA, no input; 1 s.
W6b  W6a plus independent Poisson input spikes, 1 kHz per neuron, 20 pA each; 1 s.
W6c  Brunel (2000) balanced random network with exponential synapses: 8000 excitatory + 2000
     inhibitory neurons (the W6a neuron, reset -60 mV), 10 % connectivity as fixed in-degree
     (800 + 200, autapses and multapses allowed, NEST's default), delay 1.5 ms, g = 5, J such
     that the mean drive of a spike equals a 0.1 mV delta-synapse PSP (J = 0.1 mV tau_m /
     (r tau_s) = 12.5 pA), Poisson drive at 2x the threshold rate (nu_th = theta / (J_PSP C_E
     tau_m), 40 kHz per neuron); start potentials uniform in [E_L, V_th) (the same values in all
     simulators); --t-c seconds (default 0.3 s).

Before any time is printed: the mean rates agree within 2 % with every reference, and for W6a
every spike time equals NEST's within 1e-12 s (same spike count per neuron). Times are medians
of --repeats runs in one process each (wall and CPU time of the simulation call alone; the
reference simulators' build/compile steps are done once before timing).

How W6c's rates are compared. A balanced network is chaotic: two simulators (or one simulator
with two seeds) give different spike trains, so only the mean rate can be compared, and its
spread between realisations sets what a 2 % gate means. Measured (docs/performance.md):
* with every neuron starting at E_L, the whole run is dominated by the synchronous onset (all
  neurons reach threshold together after about 7 ms); over [0, 0.2 s] NEST against NEST with
  two seeds gave 71.88 and 74.17 Hz (3.2 % apart), which is why ctsnn's 74.67 Hz failed the gate;
* with identical connectivity and identical input spike times (NEST spike_generator with precise
  times), ctsnn and NEST give the same 27894 spikes in the first 40 ms of W6c, every one within
  3.3e-15 s (and 6682 of 6682 in 50 ms of a 10x smaller network): there is no difference in the
  neuron, the delivery or the set-up, only in the realisation;
* after a warm-up the onset is forgotten: over [0.1, 0.3 s] three realisations gave 75.15 Hz
  (NEST, random start potentials), 75.19 Hz (NEST, start at E_L) and 75.47 Hz (ctsnn, random
  start potentials); batch means of the population rate put one realisation's spread at up to
  1 % for a 0.2 s window (slow fluctuations of the population activity).
So each run r of every simulator is an independent realisation (its own seeds: NEST rng_seed
12345 + r, Brian2 seed 12345 + r, ctsnn's projection and source seeds from r; start potentials
from r), the untimed run 0 included, and the gate compares the means over the --repeats + 1
realisations of the rate after --t-warm. The rates of each realisation are printed.

Thread scaling: ``--thread-ratio`` runs ctsnn alone on one realisation at 1 and 2 threads,
alternating, and prints the median wall-time ratio, the load average, whether the spikes are
identical (they must be) and, from each engine thread's CPU time, the threads' balance and the
load-independent bound (engine CPU at 1 thread) / (busiest thread's CPU at 2); run it with
``OMP_WAIT_POLICY=passive`` for that bound (a waiting thread then sleeps and does not count).

Spike by spike: ``--same-realisation T [--scale k]`` gives ctsnn and NEST one connectivity and
one set of input spike times (NEST: ``spike_generator`` with precise times) and compares the
spikes one by one in time order.

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
out = {"wall": [], "cpu": [], "rates": []}

def nest_build(r):
    import nest
    nest.set_verbosity("M_ERROR")
    nest.ResetKernel()
    nest.SetKernelStatus({"resolution": 0.1, "local_num_threads": th, "rng_seed": 12345 + r})
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
        pop.V_m = list(np.load(cfg["v0"][r]))
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

def brian_build(r):
    import brian2 as b2
    b2.prefs.codegen.target = "cython"
    b2.prefs.devices.cpp_standalone.openmp_threads = th
    b2.start_scope()
    b2.seed(12345 + r)
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
    if w == "W6c":
        G.v = np.load(cfg["v0"][r]) * b2.mV
    objs = [G]
    if w in ("W6a", "W6b"):
        G.Ie = np.linspace(550.0, 660.0, n) * b2.pA
        if w == "W6b":
            objs.append(b2.PoissonInput(G, "isyn", 1, 1000 * b2.Hz, weight=20 * b2.pA))
    else:
        J, p_rate = cfg["J"], cfg["p_rate"]
        NE = B["NE"]
        # C_E inputs of p_rate / C_E each: PoissonInput draws Binomial(N, rate dt) arrivals per step,
        # so one input of 40 kHz (rate dt = 4) would be clipped to at most one arrival per step
        objs.append(b2.PoissonInput(G, "isyn", B["CE"], p_rate / B["CE"] * b2.Hz, weight=J * b2.pA))
        rng = np.random.default_rng(1 + r)
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
        nest, pop, sr = nest_build(r)
        t, c = time.perf_counter(), time.process_time()
        nest.Simulate(T * 1000.0)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        ev = sr.get("events")
        times, senders = np.asarray(ev["times"]) * 1e-3, np.asarray(ev["senders"]) - min(pop.tolist())
    else:
        b2, net, M = brian_build(r)
        net.run(0 * b2.ms)          # code generation and compilation
        t, c = time.perf_counter(), time.process_time()
        net.run(T * b2.second)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        times, senders = np.asarray(M.t / b2.second), np.asarray(M.i)
    out["rates"].append(float(np.count_nonzero(times > cfg["t_warm"])) / cfg["N"]
                        / (T - cfg["t_warm"]))
    if r:
        out["wall"].append(wall); out["cpu"].append(cpu)
np.savez(cfg["out"], times=times, senders=senders)
print(json.dumps(out))
'''


def w6c_v0(r: int) -> np.ndarray:
    """The start potentials of W6c's realisation ``r`` (mV): uniform in [E_L, V_th), the same
    values in every simulator."""
    return np.random.default_rng(1000 + r).uniform(P["E_L"], P["V_th"], BRUNEL["NE"] + BRUNEL["NI"])


def v0_files(tmp, repeats):
    paths = []
    for r in range(repeats + 1):
        paths.append(os.path.join(tmp, f"v0_{r}.npy"))
        np.save(paths[-1], w6c_v0(r))
    return paths


def run_reference(py, sim, workload, T, repeats, threads, tmp, t_warm=0.0):
    J, p_rate = brunel_rates()
    out = os.path.join(tmp, f"{sim}_{workload}.npz")
    N = BRUNEL["NE"] + BRUNEL["NI"] if workload == "W6c" else 1000
    cfg = dict(P=P, B=BRUNEL, workload=workload, sim=sim, T=T, repeats=repeats, threads=threads, out=out,
               J=J, p_rate=p_rate, N=N, t_warm=t_warm,
               v0=v0_files(tmp, repeats) if workload == "W6c" else None)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH="")
    res = subprocess.run([py, "-c", REF, json.dumps(cfg)], capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"{sim} {workload} failed:\n{res.stderr[-3000:]}")
    times = json.loads(res.stdout.strip().splitlines()[-1])
    z = np.load(out)
    return times, z["times"], z["senders"].astype(np.int64)


# --------------------------------------------------------------------------- ctsnn
def ctsnn_network(workload, r):
    """W6b or W6c as a ctsnn Network, realisation ``r`` (its seeds)."""
    import ctsnn
    from ctsnn.network import Network, PoissonSource, Population, Projection

    model = ctsnn.CubaLIF(tau_syn=P["tau_s"] * 1e-3, tau_mem=P["tau_m"] * 1e-3, r=R_MV_PER_PA, v_leak=P["E_L"],
                          v_th=P["V_th"], v_reset=P["V_reset"], t_ref=P["t_ref"] * 1e-3)
    if workload == "W6b":
        pop = Population(model, 1000, current=np.linspace(550.0, 660.0, 1000))
        return Network([pop], sources=[PoissonSource(pop, 1000.0, 20.0, seed=r)])
    J, p_rate = brunel_rates()
    m = model.replace(v_reset=BRUNEL["V_reset"])
    NE = BRUNEL["NE"]
    v0 = w6c_v0(r)
    E, I_ = Population(m, NE, initial={"v": v0[:NE]}), Population(m, BRUNEL["NI"], initial={"v": v0[NE:]})
    d = BRUNEL["delay"] * 1e-3
    projs = [Projection.fixed_indegree(E, Q, BRUNEL["CE"], J, d, seed=2 * r + k) for k, Q in enumerate((E, I_))]
    projs += [Projection.fixed_indegree(I_, Q, BRUNEL["CI"], -BRUNEL["g"] * J, d, seed=2 * r + 10 + k)
              for k, Q in enumerate((E, I_))]
    return Network([E, I_], projs, [PoissonSource(P_, p_rate, J, seed=r + 100 * k) for k, P_ in enumerate((E, I_))])


def run_ctsnn(workload, T, repeats, threads, t_warm=0.0, same_seed=False):
    """Run 0 compiles the engine (cached on disk) and is not timed; realisation r = run r (or 0
    for every run with ``same_seed``). Returns the times, the window rates of every run, and the
    spikes of the last run."""
    import torch

    import ctsnn

    torch.set_num_threads(threads)
    model = ctsnn.CubaLIF(tau_syn=P["tau_s"] * 1e-3, tau_mem=P["tau_m"] * 1e-3, r=R_MV_PER_PA, v_leak=P["E_L"],
                          v_th=P["V_th"], v_reset=P["V_reset"], t_ref=P["t_ref"] * 1e-3)
    walls, cpus, setups, rates = [], [], [], []
    N = BRUNEL["NE"] + BRUNEL["NI"] if workload == "W6c" else 1000
    for r in range(repeats + 1):
        if workload == "W6a":
            I = torch.linspace(550.0, 660.0, 1000, dtype=torch.float64)[None]
            t, c = time.perf_counter(), time.process_time()
            tr = ctsnn.simulate(model, I, t_end=T, dt=DT_MS * 1e-3, record=(), dtype=torch.float64)
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            assert tr.stats["backend"] == "engine"
            times, senders = tr.spike_times.numpy(), tr.spike_neurons.numpy()
        else:
            net = ctsnn_network(workload, 0 if same_seed else r)
            res = net.run(T, DT_MS * 1e-3, record=(), threads=threads)
            # the engine call; the preparation (projections to CSR order: NEST's Connect) apart
            wall, cpu = res.stats["wall_time_s"], res.stats["cpu_time_s"]
            setups.append(res.stats["setup_s"])
            times = res.spike_times
            senders = res.spike_neuron + np.where(res.spike_population == 1, BRUNEL["NE"], 0)
        rates.append(float(np.count_nonzero(times > t_warm)) / N / (T - t_warm))
        if r:
            walls.append(wall)
            cpus.append(cpu)
    return {"wall": walls, "cpu": cpus, "setup": setups, "rates": rates}, times, senders


def thread_ratio(workloads, repeats, T_c, threads=(1, 2)):
    """ctsnn alone: the same realisation (one network built once) at 1 and 2 threads, runs
    interleaved (1, 2, 1, 2, ...) so that both see the same load; the spikes must be identical;
    prints the median wall-time ratio and the load average."""
    import torch

    import ctsnn
    print(f"load average before: {os.getloadavg()} (on {os.cpu_count()} cores)")
    for wl in workloads:
        T = T_c if wl == "W6c" else 1.0
        if wl == "W6a":
            model = ctsnn.CubaLIF(tau_syn=P["tau_s"] * 1e-3, tau_mem=P["tau_m"] * 1e-3, r=R_MV_PER_PA,
                                  v_leak=P["E_L"], v_th=P["V_th"], v_reset=P["V_reset"], t_ref=P["t_ref"] * 1e-3)
            I = torch.linspace(550.0, 660.0, 1000, dtype=torch.float64)[None]

            def one(th, T):
                torch.set_num_threads(th)
                tr = ctsnn.simulate(model, I, t_end=T, dt=DT_MS * 1e-3, record=(), dtype=torch.float64)
                return (tr.stats["wall_time_s"], tr.stats["cpu_time_s"], tr.stats["thread_cpu_s"]), \
                    tr.spike_times.numpy(), tr.spike_neurons.numpy()
        else:
            net = ctsnn_network(wl, 0)

            def one(th, T):
                res = net.run(T, DT_MS * 1e-3, record=(), threads=th)
                return (res.stats["wall_time_s"], res.stats["cpu_time_s"], res.stats["thread_cpu_s"]), \
                    res.spike_times, \
                    res.spike_neuron + np.where(res.spike_population == 1, BRUNEL["NE"], 0)
        one(threads[0], min(T, 0.001))                          # compile (cached on disk)
        walls = {th: [] for th in threads}
        cpus = {th: [] for th in threads}
        shares = []     # the busiest thread's CPU time over the mean of the threads' (2-thread runs)
        busiest = {th: [] for th in threads}
        ref = None
        for _ in range(repeats):
            for th in threads:
                tm, t_, s_ = one(th, T)
                walls[th].append(tm[0])
                cpus[th].append(tm[1])
                busiest[th].append(max(tm[2]))
                if th == threads[1] and len(tm[2]) == th:
                    shares.append(max(tm[2]) / statistics.fmean(tm[2]))
                if ref is None:
                    ref = (t_, s_)
                elif not (np.array_equal(ref[0], t_) and np.array_equal(ref[1], s_)):
                    sys.exit(f"{wl}: ctsnn on {th} threads differs from {threads[0]} thread(s)")
        med = {th: statistics.median(walls[th]) for th in threads}
        print(f"{wl} ({T:g} s simulated, {ref[0].shape[0]} spikes): median wall "
              + ", ".join(f"{th} thr {med[th]:.3f} s" for th in threads)
              + " (CPU " + ", ".join(f"{statistics.median(cpus[th]):.3f}" for th in threads) + " s); "
              f"{threads[1]} threads vs {threads[0]}: {med[threads[0]] / med[threads[1]]:.2f}x faster; per-run "
              "ratios " + ", ".join(f"{a / b:.2f}" for a, b in zip(walls[threads[0]], walls[threads[1]]))
              + "; spikes identical")
        if shares:
            # load-independent: with the threads' CPU times c_q (OMP_WAIT_POLICY=passive, so that a
            # waiting thread does not count), a quiet machine gives at most
            # CPU(1 thread) / max_q c_q
            print(f"  {threads[1]}-thread runs: busiest thread / mean of threads (CPU) "
                  + ", ".join(f"{x:.3f}" for x in shares) + "; engine CPU at 1 thread / the busiest thread's at "
                  f"{threads[1]}: {statistics.median(busiest[threads[0]]) / statistics.median(busiest[threads[1]]):.2f}"
                  f" (OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')})")
    print(f"load average after: {os.getloadavg()}")


SAME = r'''
import json, sys, numpy as np, nest
cfg = json.loads(sys.argv[1])
P, B = cfg["P"], cfg["B"]
z = np.load(cfg["inp"])
N = int(z["N"])
nest.set_verbosity("M_ERROR")
nest.ResetKernel()
nest.SetKernelStatus({"resolution": 0.1, "local_num_threads": 1})
prm = {"C_m": P["C"], "tau_m": P["tau_m"], "tau_syn_ex": P["tau_s"], "tau_syn_in": P["tau_s"], "t_ref": P["t_ref"],
       "E_L": P["E_L"], "V_th": P["V_th"], "V_reset": B["V_reset"]}
pop = nest.Create("iaf_psc_exp_ps", N, params=prm)
pop.V_m = list(z["v0"])
sg = nest.Create("spike_generator", N, params={"precise_times": True})
ptr = z["in_ptr"]
for j in range(N):
    sg[j].spike_times = (z["in_t"][ptr[j]:ptr[j + 1]] * 1e3).tolist()
nest.Connect(sg, pop, "one_to_one", {"weight": cfg["J"], "delay": 0.1})
p0 = min(pop.tolist())
nest.Connect(z["pre"] + p0, z["post"] + p0, "one_to_one",
             {"weight": z["w"], "delay": np.full(len(z["pre"]), B["delay"])})
sr = nest.Create("spike_recorder")
nest.Connect(pop, sr)
nest.Simulate(cfg["T"] * 1000.0)
ev = sr.get("events")
np.savez(cfg["out"], times=np.asarray(ev["times"]) * 1e-3, senders=np.asarray(ev["senders"]) - p0)
'''


def same_realisation(py, T, scale, tmp):
    """W6c (or a network ``scale`` times smaller) with one connectivity and one set of input spike
    times in ctsnn and NEST (``spike_generator`` with precise times, delay 0.1 ms, so ctsnn gets
    the times + 0.1 ms): the spikes must be the same, compared one by one in time order, until the
    network's chaos separates them (it amplifies rounding differences)."""
    from ctsnn.network import Network, PoissonSource, Population, Projection
    import ctsnn

    J, p_rate = brunel_rates()
    NE, NI = BRUNEL["NE"] // scale, BRUNEL["NI"] // scale
    CE, CI = BRUNEL["CE"] // scale, BRUNEL["CI"] // scale
    N = NE + NI
    rng = np.random.default_rng(7)
    pre = np.concatenate([rng.integers(0, NE, (N, CE)), rng.integers(NE, N, (N, CI))], axis=1).reshape(-1)
    post = np.repeat(np.arange(N), CE + CI)
    w = np.where(pre < NE, J, -BRUNEL["g"] * J)
    v0 = w6c_v0(0)[:N]
    model = ctsnn.CubaLIF(tau_syn=P["tau_s"] * 1e-3, tau_mem=P["tau_m"] * 1e-3, r=R_MV_PER_PA, v_leak=P["E_L"],
                          v_th=P["V_th"], v_reset=BRUNEL["V_reset"], t_ref=P["t_ref"] * 1e-3)
    pop = Population(model, N, initial={"v": v0})
    in_t, in_n = PoissonSource(pop, p_rate, J, seed=7).sample(T)
    o = np.lexsort((in_t, in_n))
    in_t, in_n = in_t[o], in_n[o]
    arr = in_t + 1e-4
    keep = arr <= T
    net = Network([pop], [Projection(pop, pop, pre, post, w, BRUNEL["delay"] * 1e-3)])
    res = net.run(T, DT_MS * 1e-3, record=(), threads=1,
                  input_spikes=(arr[keep], np.zeros(keep.sum(), np.int64), in_n[keep], np.full(keep.sum(), J)))
    inp = os.path.join(tmp, "same_in.npz")
    np.savez(inp, N=N, v0=v0, pre=pre, post=post, w=w, in_t=in_t,
             in_ptr=np.searchsorted(in_n, np.arange(N + 1)))
    out = os.path.join(tmp, "same_nest.npz")
    cfg = dict(P=P, B=BRUNEL, J=J, T=T, inp=inp, out=out)
    r = subprocess.run([py, "-c", SAME, json.dumps(cfg)], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=""))
    if r.returncode != 0:
        sys.exit(f"NEST failed:\n{r.stderr[-3000:]}")
    z = np.load(out)
    ta, sa = res.spike_times, res.spike_neuron
    tb, sb = z["times"], z["senders"].astype(np.int64)
    oa, ob = np.lexsort((sa, ta)), np.lexsort((sb, tb))
    ta, sa, tb, sb = ta[oa], sa[oa], tb[ob], sb[ob]
    n = min(ta.shape[0], tb.shape[0])
    bad = np.nonzero((sa[:n] != sb[:n]) | (np.abs(ta[:n] - tb[:n]) > 1e-12))[0]
    first = int(bad[0]) if bad.size else n
    worst = float(np.abs(ta[:first] - tb[:first]).max()) if first else 0.0
    part = min(ta[first] if first < ta.shape[0] else np.inf, tb[first] if first < tb.shape[0] else np.inf)
    print(f"same realisation, {N} neurons, {T:g} s: ctsnn {ta.shape[0]} spikes, NEST {tb.shape[0]}; the first "
          f"{first} agree (same neuron, times within {worst:.2g} s)"
          + ("" if first == n and ta.shape[0] == tb.shape[0] else f"; they part at t = {part:.6f} s"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--refsim", default="/tmp/refsim/bin/python", help="python of the NEST/Brian2 venv")
    ap.add_argument("--workloads", default="W6a,W6b,W6c")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", default="1", help="thread counts, e.g. 1,2 (each workload at each)")
    ap.add_argument("--ref-threads", default=None,
                    help="thread counts of the references (default: those of --threads)")
    ap.add_argument("--t-c", type=float, default=0.3, help="simulated seconds of W6c")
    ap.add_argument("--t-warm", type=float, default=0.1,
                    help="W6c: the rates are counted after this warm-up (s)")
    ap.add_argument("--no-brian", action="store_true")
    ap.add_argument("--thread-ratio", action="store_true",
                    help="ctsnn only: wall time at 1 vs 2 threads (interleaved runs, identical spikes)")
    ap.add_argument("--same-realisation", type=float, default=None, metavar="T",
                    help="W6c with one connectivity and one input in ctsnn and NEST for T seconds: compare "
                         "the spikes one by one")
    ap.add_argument("--scale", type=int, default=1, help="--same-realisation: a network this many times smaller")
    args = ap.parse_args(argv)
    if args.same_realisation is not None:
        with tempfile.TemporaryDirectory() as tmp:
            same_realisation(args.refsim, args.same_realisation, args.scale, tmp)
        return
    if args.thread_ratio:
        thread_ratio(args.workloads.split(","), args.repeats, args.t_c)
        return
    if not os.path.exists(args.refsim):
        sys.exit(f"no reference venv at {args.refsim}; make it with\n  python3 -m venv /tmp/refsim && "
                 f"/tmp/refsim/bin/pip install nest-simulator==3.10.0 brian2==2.9.0 'numpy<2.4'")
    if not 0 <= args.t_warm < args.t_c:
        sys.exit(f"--t-warm must be in [0, --t-c), got {args.t_warm}")
    sims = ["nest"] + ([] if args.no_brian else ["brian2"])
    threads = [int(x) for x in args.threads.split(",")]
    ref_threads = [int(x) for x in (args.ref_threads or args.threads).split(",")]
    rows = []
    print(f"load average at the start: {os.getloadavg()} (on {os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory() as tmp:
        for wl in args.workloads.split(","):
            T = args.t_c if wl == "W6c" else 1.0
            t_warm = args.t_warm if wl == "W6c" else 0.0
            N = BRUNEL["NE"] + BRUNEL["NI"] if wl == "W6c" else 1000
            ours = {th: run_ctsnn(wl, T, args.repeats, th, t_warm) for th in threads}
            _o, t_ours, s_ours = ours[threads[0]]
            for th in threads[1:]:          # the engine's result does not depend on the thread count
                if not (np.array_equal(ours[th][1], t_ours) and np.array_equal(ours[th][2], s_ours)):
                    sys.exit(f"{wl}: ctsnn on {th} threads differs from {threads[0]} thread(s)")
            ref = {(sim, th): run_reference(args.refsim, sim, wl, T, args.repeats, th, tmp, t_warm)
                   for sim in sims for th in ref_threads}
            # checks before any time is printed: the mean over the realisations (W6c: one per run,
            # each with its own seeds and start potentials; W6a/W6b: the runs repeat one realisation)
            rates_ours = _o["rates"]
            rate_ours = statistics.fmean(rates_ours)
            fmt = lambda rs: (f"{statistics.fmean(rs):.3f} Hz" + (  # noqa: E731
                f" (realisations {', '.join(f'{x:.2f}' for x in rs)}; std {statistics.stdev(rs):.2f})"
                if wl == "W6c" and len(rs) > 1 else ""))
            print(f"{wl}: mean rate" + (f" after {t_warm:g} s" if t_warm else "") + f" ctsnn {fmt(rates_ours)}; "
                  + "; ".join(f"{s} ({th} thr) {fmt(r[0]['rates'])}" for (s, th), r in ref.items()))
            for (sim, th), (tm_ref, _t, _s) in ref.items():
                rate_ref = statistics.fmean(tm_ref["rates"])
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
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
