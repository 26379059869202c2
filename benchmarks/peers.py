"""W1-W3 and W1's peak memory (issue #7): ctsnn against every installed peer, one process.

W1  LIF, N neurons x batch B x T steps (4096 x 32 x 1000), tau_mem = 10 ms at dt = 1 ms, subtract
    reset, threshold 1, input pre-generated (each side in its own layout), forward only, no grad.
W2  W1 forward and backward (loss = w . spikes, gradient to the input) with a surrogate.
W3  ALIF (threshold adaptation) forward, same sizes.
mem peak resident memory of W1 for each contestant (a fresh process each; input excluded).

Each pair is a peer layer and the ctsnn layer that reproduces it (ctsnn's own LIF where the
peer's update is the exact discretisation; else ctsnn's dialect of that peer, which runs the same
fused kernel).  Runs alternate (peer, ctsnn, peer, ...); the script prints medians, min-max and the
ratio peer / ctsnn (> 1: ctsnn faster) and writes JSON.  Before any time is printed the outputs
are compared on the workload itself: spikes identical in float32; where float32 differs by
rounding ties (different operation order, e.g. ``v + (x - v) / tau`` against ``v + dA v + F x``),
the same workload is rerun in float64, where the spikes must be identical, and the float32
differences must stay below 1e-3 of the decisions (the count is printed; a flipped spike changes
that neuron's later trajectory, so one tie costs several differences).  A pair that fails
prints no time and makes the script exit 1.  For W2 the input gradients must agree too.

Also timed: ctsnn writing into a reused output buffer (``run(out=...)``: no page faults of a fresh
500 MB tensor) and the memory-bandwidth bound (``out.copy_(x)``: read the input, write the
spikes, warm buffers).

    python benchmarks/peers.py                       # the issue's sizes (needs ~8 GB)
    python benchmarks/peers.py --neurons 512 --batch 8 --steps 300 --repeats 3 --json out.json
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch

import _sizes  # benchmarks/_sizes.py (scripts run with their folder on sys.path)

import ctsnn
from ctsnn import discretize

BETA = math.exp(-0.1)
TIES = 1e-3  # float32: largest fraction of decisions allowed to differ when float64 agrees exactly


def _args(argv=None):
    ap = _sizes.parser()
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--workloads", default="W1,W2,W3,mem")
    ap.add_argument("--only", default="", help="run only the pairs whose name contains this")
    ap.add_argument("--json", default=None)
    ap.add_argument("--mem-child", default=None, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def inputs(T, B, N, dtype, scale=0.4):
    """The pre-generated input [T, B, N]: the same values in float32 and float64 (drawn in float64,
    100 steps at a time so that no float64 copy of the whole input is held)."""
    g = torch.Generator().manual_seed(0)
    x = torch.empty(T, B, N, dtype=dtype)
    for t0 in range(0, T, 100):
        t1 = min(T, t0 + 100)
        x[t0:t1] = torch.rand(t1 - t0, B, N, generator=g, dtype=torch.float64) * scale
    return x


# ------------------------------------------------------------------------------------- pairs
def pairs_w1(x):
    """(name, peer_fn, ctsnn_fn) for W1 on time-major input ``x [T, B, N]``; each fn -> spikes [T, B, N]."""
    out = []
    try:
        import sinabs
        import sinabs.layers as sl
        from sinabs.activation import SingleSpike
        xb = x.transpose(0, 1).contiguous()  # sinabs is batch-first
        sb = sl.LIF(tau_mem=10.0, spike_fn=SingleSpike, norm_input=False).to(x.dtype)
        alpha = float(torch.exp(-1.0 / torch.as_tensor(10.0, dtype=torch.float32)))  # sinabs' float32 decay
        tau = -1e-3 / math.log(alpha)  # 10 ms to float32 rounding of the decay: the same beta
        sb_ours = discretize(ctsnn.LIF(tau_mem=tau, v_th=1.0, reset="subtract"), 1e-3,
                             surrogate="atan", fire_at_zero=True)

        def sinabs_peer():
            sb.reset_states()
            return sb(xb).transpose(0, 1)

        out.append((f"sinabs {sinabs.__version__} LIF", sinabs_peer, lambda: sb_ours.run(x).out, sb_ours, x))
    except ImportError:
        print("sinabs not installed")
    try:
        import snntorch
        from ctsnn.compat import snntorch as cs
        sn = snntorch.Leaky(beta=BETA, threshold=1.0, reset_mechanism="subtract")
        sn_dialect = cs.Leaky(beta=BETA, threshold=1.0, reset_mechanism="subtract")
        sn_ours = cs.Leaky(beta=BETA, threshold=1.0, reset_mechanism="subtract").layer

        def step_loop(layer):  # snntorch's usage, and the drop-in: the same per-step loop
            def run():
                mem = layer.init_leaky()
                spk = []
                for t in range(x.shape[0]):
                    s, mem = layer(x[t], mem)
                    spk.append(s)
                return torch.stack(spk)
            return run

        out.append((f"snntorch {snntorch.__version__} Leaky (step loop)", step_loop(sn), step_loop(sn_dialect),
                    sn_dialect.layer, x))
        out.append((f"snntorch {snntorch.__version__} Leaky (run)", step_loop(sn), lambda: sn_ours.run(x).out,
                    sn_ours, x))
    except ImportError:
        print("snntorch not installed")
    try:
        import spikingjelly
        from spikingjelly.activation_based import neuron as sjn
        from ctsnn.compat import spikingjelly as cj
        tau = 1 / (1 - BETA)
        xs = x / (1 - BETA)  # decay_input: the input's gain is 1/tau
        sj = sjn.LIFNode(tau=tau, v_reset=None, step_mode="m")
        sj_ours = cj.MultiStepLIFNode(tau=tau, v_reset=None)

        def sj_peer():
            sj.reset()
            return sj(xs)

        def sj_run():
            sj_ours.reset()
            return sj_ours(xs)

        out.append((f"spikingjelly {getattr(spikingjelly, '__version__', '')} LIFNode (m)", sj_peer, sj_run,
                    sj_ours.layer, xs))
    except ImportError:
        print("spikingjelly not installed")
    return out


def pairs_w2(x):
    """W2: (name, peer_fn, ctsnn_fn); each fn -> (spikes, d loss / d x)."""
    T, B, N = x.shape
    g = torch.Generator().manual_seed(1)
    w = torch.randn(T, B, N, generator=g, dtype=torch.float64).to(x.dtype)
    out = []

    def fwd_bwd(fn, xin, tmajor=True, after=None):
        # one input leaf, its gradient reset each run, and the loss as a dot product in the layer's
        # own layout: the harness adds one [T, B, N] tensor (dL/dspikes = w) to each contestant
        xi = xin.detach().clone().requires_grad_(True)
        wl = (w if tmajor else w.transpose(0, 1)).contiguous().reshape(-1)

        def run():
            xi.grad = None
            s = fn(xi)
            torch.dot(s.reshape(-1), wl).backward()
            st = s if tmajor else s.transpose(0, 1)
            gx = xi.grad if tmajor else xi.grad.transpose(0, 1)
            if after is not None:
                after()  # drop the layer's reference to this run's graph
            return st.detach(), gx
        return run

    try:
        import sinabs
        import sinabs.layers as sl
        from sinabs.activation import Gaussian, SingleSpike
        xb = x.transpose(0, 1).contiguous()
        sb = sl.LIF(tau_mem=10.0, spike_fn=SingleSpike, norm_input=False, surrogate_grad_fn=Gaussian()).to(x.dtype)
        alpha = float(torch.exp(-1.0 / torch.as_tensor(10.0, dtype=torch.float32)))
        sb_ours = discretize(ctsnn.LIF(tau_mem=-1e-3 / math.log(alpha), v_th=1.0, reset="subtract"), 1e-3,
                             surrogate="gaussian", fire_at_zero=True)

        def sinabs_peer(xi):
            sb.reset_states()
            return sb(xi)

        out.append((f"sinabs {sinabs.__version__} LIF fwd+bwd", fwd_bwd(sinabs_peer, xb, False, sb.reset_states),
                    fwd_bwd(lambda xi: sb_ours.run(xi).out, x), sb_ours, x))
    except ImportError:
        pass
    try:
        import spikingjelly
        from spikingjelly.activation_based import neuron as sjn, surrogate
        from ctsnn.compat import spikingjelly as cj
        tau = 1 / (1 - BETA)
        xs = x / (1 - BETA)
        sj = sjn.LIFNode(tau=tau, v_reset=None, step_mode="m", surrogate_function=surrogate.ATan())
        sj_ours = cj.MultiStepLIFNode(tau=tau, v_reset=None, surrogate_function="ATan")

        def sj_fn(layer):
            def f(xi):
                layer.reset()
                return layer(xi)
            return f

        out.append((f"spikingjelly {getattr(spikingjelly, '__version__', '')} LIFNode (m) fwd+bwd",
                    fwd_bwd(sj_fn(sj), xs, after=sj.reset), fwd_bwd(sj_fn(sj_ours), xs, after=sj_ours.reset),
                    sj_ours.layer, xs))
    except ImportError:
        pass
    return out


def pairs_w3(x):
    out = []
    try:
        import sinabs
        import sinabs.layers as sl
        from ctsnn.compat import sinabs as csb
        xb = (2.5 * x / (1 - BETA)).transpose(0, 1).contiguous()  # batch-first; norm_input gain 1 - alpha
        # time constants as tensors of the run's dtype (as numbers, sinabs keeps float32 decays)
        kw = dict(tau_mem=torch.tensor([10.0], dtype=x.dtype), tau_adapt=torch.tensor([100.0], dtype=x.dtype),
                  adapt_scale=1.8)
        sb = sl.ALIF(**kw).to(x.dtype)
        sb_ours = csb.ALIF(**kw)

        def run(layer):
            def f():
                layer.reset_states()
                return layer(xb).transpose(0, 1)
            return f

        out.append((f"sinabs {sinabs.__version__} ALIF", run(sb), run(sb_ours), None, None))
    except ImportError:
        print("sinabs not installed")
    return out


# ------------------------------------------------------------------------------------- timing
def _same(a, b, grad=False):
    """(spike differences, max relative gradient difference or None)."""
    sa, sb = (a[0], b[0]) if grad else (a, b)
    nd = int((sa.to(torch.float64) != sb.to(torch.float64)).sum())
    if not grad:
        return nd, None
    ga, gb = a[1].to(torch.float64), b[1].to(torch.float64)
    return nd, float((ga - gb).abs().max() / ga.abs().max().clamp_min(1e-30))


def verify(make_pairs, T, B, N, grad):
    """{name: (ok, note)} comparing each pair on the workload (float32, then float64 if needed)."""
    res = {}
    x32 = inputs(T, B, N, torch.float32)
    ctx = torch.enable_grad() if grad else torch.no_grad()
    with ctx:
        first = {}
        for pair in make_pairs(x32):
            first[pair[0]] = _same(pair[1](), pair[2](), grad)
            del pair
            gc.collect()
        del x32
        need64 = [n for n, (nd, gd) in first.items() if nd or (gd is not None and gd > 1e-4)]
        second = {}
        if need64:
            # float64 all through: the peers build some constants in the default dtype (sinabs'
            # spike_threshold, for one), which .double() leaves in float32
            old_default = torch.get_default_dtype()
            torch.set_default_dtype(torch.float64)
            try:
                x64 = inputs(T, B, N, torch.float64)
                for pair in make_pairs(x64):
                    if pair[0] in need64:
                        second[pair[0]] = _same(pair[1](), pair[2](), grad)
                    del pair
                    gc.collect()
                del x64
            finally:
                torch.set_default_dtype(old_default)
        gc.collect()
    total = T * B * N
    for name, (nd, gd) in first.items():
        if name not in second:
            res[name] = (True, "float32 spikes identical" + ("" if gd is None else f", input grad rel diff {gd:.1e}"))
            continue
        nd64, gd64 = second[name]
        ok = nd64 == 0 and nd <= TIES * total and (gd64 is None or gd64 <= 1e-9)
        res[name] = (ok, f"float32: {nd} of {total} spikes differ (rounding ties); float64: {nd64} differ"
                     + ("" if gd64 is None else f", input grad rel diff {gd64:.1e} (float32 {gd:.1e})"))
    return res


def timed(fn, grad):
    ctx = torch.enable_grad() if grad else torch.no_grad()
    with ctx:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0


def compare(label, pairs, checks, repeats, grad, rows, failed):
    for name, pf, of, layer, xin in pairs:
        ok, note = checks[name]
        if not ok:
            print(f"{label} {name}: OUTPUTS DIFFER: {note}; no timing reported", file=sys.stderr)
            failed.append(f"{label} {name}")
            rows.append({"workload": label, "pair": name, "outputs_differ": note})
            continue
        tp, to = [], []
        for _ in range(repeats):
            tp.append(timed(pf, grad))
            to.append(timed(of, grad))
        mp, mo = statistics.median(tp), statistics.median(to)
        row = {"workload": label, "pair": name, "peer_median_s": mp, "peer_min_max_s": [min(tp), max(tp)],
               "ctsnn_median_s": mo, "ctsnn_min_max_s": [min(to), max(to)], "speedup": mp / mo, "check": note,
               "ctsnn_backend": getattr(layer, "last_backend", None) if layer is not None else "fused"}
        print(f"{label} {name:42s} peer {mp:7.3f} s [{min(tp):.3f}-{max(tp):.3f}]  ctsnn {mo:7.3f} s "
              f"[{min(to):.3f}-{max(to):.3f}]  peer/ctsnn {mp / mo:6.2f}   ({note})")
        rows.append(row)


def bandwidth_and_reuse(T, B, N, repeats, rows):
    """ctsnn W1 into a reused buffer, and the bandwidth bound (copy input -> output, warm)."""
    x = inputs(T, B, N, torch.float32)
    lay = discretize(ctsnn.LIF(tau_mem=10e-3, v_th=1.0, reset="subtract"), 1e-3)
    buf = torch.empty_like(x)
    dst = torch.empty_like(x)
    with torch.no_grad():
        lay.run(x, out=buf)
        dst.copy_(x)
        tf, tr, tc = [], [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            lay.run(x)
            tf.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            lay.run(x, out=buf)
            tr.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            dst.copy_(x)
            tc.append(time.perf_counter() - t0)
    mf, mr, mc = (statistics.median(v) for v in (tf, tr, tc))
    print(f"W1 ctsnn LIF (fresh output) {mf:.4f} s; into a reused buffer {mr:.4f} s; bandwidth bound "
          f"(out.copy_(x), warm) {mc:.4f} s; reused / bound {mr / mc:.2f}, fresh / bound {mf / mc:.2f}  "
          f"[{lay.last_backend}]")
    rows.append({"workload": "W1 bound", "ctsnn_fresh_s": mf, "ctsnn_reused_buffer_s": mr, "copy_bound_s": mc,
                 "reused_over_bound": mr / mc, "fresh_over_bound": mf / mc})


# ------------------------------------------------------------------------------------- memory
def _hwm_kb() -> int:
    """This process's peak resident memory (VmHWM: per address space, so not inherited from the
    parent the way ru_maxrss is across fork and exec)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def mem_child(which, T, B, N):
    x = inputs(T, B, N, torch.float32)
    pairs = {p[0]: p for p in pairs_w1(x)}
    base = _hwm_kb()
    with torch.no_grad():
        if which == "ctsnn-spikes":
            discretize(ctsnn.LIF(tau_mem=10e-3, v_th=1.0, reset="subtract"), 1e-3).run(x)
        else:
            name, side = which.rsplit(":", 1)
            p = pairs[name]
            (p[1] if side == "peer" else p[2])()
    peak = _hwm_kb()
    print(json.dumps({"which": which, "peak_over_input_MB": (peak - base) / 1024}))


def memory(T, B, N, rows):
    x = inputs(1, 1, 1, torch.float32)
    names = [p[0] for p in pairs_w1(x)]
    out_mb = T * B * N * 4 / 2**20
    print(f"W1 peak memory above the pre-generated input (spikes alone are {out_mb:.0f} MB of float32):")
    for which in ["ctsnn-spikes"] + [f"{n}:{s}" for n in names for s in ("peer", "ctsnn")]:
        r = subprocess.run([sys.executable, __file__, "--neurons", str(N), "--batch", str(B), "--steps", str(T),
                            "--mem-child", which], capture_output=True, text=True)
        try:
            d = json.loads(r.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            print(f"  {which}: failed: {r.stderr[-300:]}")
            continue
        print(f"  {which:50s} {d['peak_over_input_MB']:8.0f} MB")
        rows.append({"workload": "W1 memory", **d})


def main(argv=None):
    args = _args(argv)
    torch.set_num_threads(args.threads)
    N, B, T = args.neurons, args.batch, args.steps
    if args.mem_child:
        return mem_child(args.mem_child, T, B, N)
    work = set(args.workloads.split(","))
    print(f"N={N} B={B} T={T}, {torch.get_num_threads()} thread(s), torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}, python {platform.python_version()}")
    rows, failed = [], []
    for label, make, grad in (("W1", pairs_w1, False), ("W2", pairs_w2, True), ("W3", pairs_w3, False)):
        if label not in work:
            continue
        if args.only:
            make = (lambda x, m=make: [p for p in m(x) if args.only in p[0]])  # noqa: E731
        checks = verify(make, T, B, N, grad)
        x = inputs(T, B, N, torch.float32)
        compare(label, make(x), checks, args.repeats, grad, rows, failed)
        del x
        if label == "W1":
            bandwidth_and_reuse(T, B, N, args.repeats, rows)
    if "mem" in work:
        memory(T, B, N, rows)
    if failed:
        print(f"outputs differ for: {', '.join(failed)}", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"N": N, "B": B, "T": T, "threads": torch.get_num_threads(), "torch": torch.__version__,
                       "rows": rows}, fh, indent=2)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
