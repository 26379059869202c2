"""W1 / W3 of issue #7: each peer layer against ctsnn's dialect of it, same inputs, one process.

W1: LIF, N neurons x batch B x T steps, tau_mem = 10 ms at dt = 1 ms (beta = exp(-0.1)), subtract
reset, threshold 1, input pre-generated, forward only, no grad (snntorch Leaky, spikingjelly
LIFNode multi-step). W3: ALIF forward with threshold adaptation (sinabs ALIF). Runs alternate
(peer, ctsnn, peer, ...); prints medians, min-max and the ratio ctsnn/peer, and refuses to print
a ratio if the spikes differ. Sizes: --neurons 4096 --batch 32 --steps 1000 (the issue's W1;
needs ~0.5 GB per input in float32); smaller for a quick look.

    python benchmarks/peers_w1_w3.py --neurons 1024 --batch 8 --steps 300 --repeats 3
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch

ap = argparse.ArgumentParser()
ap.add_argument("--neurons", type=int, default=4096)
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--steps", type=int, default=1000)
ap.add_argument("--repeats", type=int, default=5)
ap.add_argument("--threads", type=int, default=torch.get_num_threads())
ap.add_argument("--json", default=None)
args = ap.parse_args()
torch.set_num_threads(args.threads)
N, B, T = args.neurons, args.batch, args.steps
beta = math.exp(-0.1)
g = torch.Generator().manual_seed(0)
x = torch.rand(T, B, N, generator=g) * 0.4   # ~10% spike rate for these decays


def timed(fn):
    with torch.no_grad():
        t0 = time.perf_counter()
        out = fn()
        return time.perf_counter() - t0, out


def compare(name, peer_fn, ours_fn):
    tp, to, outs = [], [], {}
    for _ in range(args.repeats):
        dt, outs["peer"] = timed(peer_fn)
        tp.append(dt)
        dt, outs["ours"] = timed(ours_fn)
        to.append(dt)
    a, b = (o.to(torch.float32) for o in (outs["peer"], outs["ours"]))
    if not torch.equal(a, b):
        print(f"{name}: OUTPUTS DIFFER ({int((a != b).sum())} of {a.numel()} spikes): no timing reported",
              file=sys.stderr)
        FAILED.append(name)
        return {"workload": name, "outputs_differ": int((a != b).sum()), "spikes": a.numel()}
    mp, mo = statistics.median(tp), statistics.median(to)
    row = {"workload": name, "peer_median_s": mp, "peer_min_max_s": [min(tp), max(tp)],
           "ctsnn_median_s": mo, "ctsnn_min_max_s": [min(to), max(to)], "ratio_ctsnn_over_peer": mo / mp,
           "spike_rate": float(a.mean())}
    print(f"{name:32s} peer {mp:7.3f} s [{min(tp):.3f}-{max(tp):.3f}]  ctsnn {mo:7.3f} s "
          f"[{min(to):.3f}-{max(to):.3f}]  ctsnn/peer {mo / mp:5.2f}  (spike rate {float(a.mean()):.3f})")
    return row


rows, FAILED = [], []
print(f"N={N} B={B} T={T}, {torch.get_num_threads()} thread(s), torch {torch.__version__}")

try:
    import snntorch
    from ctsnn.compat import snntorch as cs

    def snn_peer():
        lay = snntorch.Leaky(beta=beta, threshold=1.0, reset_mechanism="subtract")
        mem = lay.init_leaky()
        out = []
        for t in range(T):
            s, mem = lay(x[t], mem)
            out.append(s)
        return torch.stack(out)

    def snn_ours():
        lay = cs.Leaky(beta=beta, threshold=1.0, reset_mechanism="subtract")
        mem = None
        out = []
        for t in range(T):
            s, mem = lay(x[t], mem)
            out.append(s)
        return torch.stack(out)

    rows.append(compare(f"W1 snntorch {snntorch.__version__} Leaky", snn_peer, snn_ours))
except ImportError:
    print("snntorch not installed")

try:
    from spikingjelly.activation_based import neuron as sjn
    from ctsnn.compat import spikingjelly as cj

    xs = x / (1 - beta)     # spikingjelly's decay_input: the input's gain is 1/tau
    rows.append(compare("W1 spikingjelly LIFNode (m)",
                        lambda: sjn.LIFNode(tau=1 / (1 - beta), v_reset=None, step_mode="m")(xs),
                        lambda: cj.MultiStepLIFNode(tau=1 / (1 - beta), v_reset=None)(xs)))
except ImportError:
    print("spikingjelly not installed")

try:
    import sinabs.layers as sl
    from ctsnn.compat import sinabs as csb

    xb = (2.5 * x / (1 - beta)).transpose(0, 1).contiguous()   # batch-first; norm_input gain 1 - alpha
    rows.append(compare("W3 sinabs ALIF",
                        lambda: sl.ALIF(tau_mem=10.0, tau_adapt=100.0, adapt_scale=1.8)(xb),
                        lambda: csb.ALIF(tau_mem=10.0, tau_adapt=100.0, adapt_scale=1.8)(xb)))
except ImportError:
    print("sinabs not installed")

if FAILED:
    print(f"outputs differ for: {', '.join(FAILED)}", file=sys.stderr)
if args.json:
    with open(args.json, "w") as fh:
        json.dump({"N": N, "B": B, "T": T, "threads": torch.get_num_threads(), "rows": rows}, fh, indent=2)
sys.exit(1 if FAILED else 0)
