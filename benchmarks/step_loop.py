"""The per-step drop-in: snntorch.Leaky against ctsnn.compat.snntorch.Leaky in the same Python
step loop (W1 sizes), alternating, medians.  The loop either keeps each step's spikes (as a
training loop keeps them for the loss) or drops them; peers.py's W1 row also stacks them into one
[T, B, N] tensor at the end, a cost both sides share.  Spikes are checked identical first.

    python benchmarks/step_loop.py [--neurons 4096 --batch 32 --steps 1000 --repeats 5]
"""
import math
import statistics
import sys
import time

import torch

import _sizes  # benchmarks/_sizes.py (scripts run with their folder on sys.path)

from ctsnn.compat import snntorch as cs


def main(argv=None):
    ap = _sizes.parser()
    args = ap.parse_args(argv)
    try:
        import snntorch
    except ImportError:
        print("snntorch not installed")
        return 0
    T, B, N = args.steps, args.batch, args.neurons
    beta = math.exp(-0.1)
    x = torch.rand(T, B, N, generator=torch.Generator().manual_seed(0)) * 0.4
    layers = {"snntorch": snntorch.Leaky(beta=beta, threshold=1.0, reset_mechanism="subtract"),
              "ctsnn": cs.Leaky(beta=beta, threshold=1.0, reset_mechanism="subtract")}

    def loop(layer, keep):
        mem, spk = layer.init_leaky(), []
        for t in range(T):
            s, mem = layer(x[t], mem)
            if keep:
                spk.append(s)
        return spk

    with torch.no_grad():
        a, b = (loop(layers[k], True) for k in ("snntorch", "ctsnn"))
        same = all(torch.equal(p, q) for p, q in zip(a, b))
        del a, b
        if not same:
            print("spikes differ: no timing reported", file=sys.stderr)
            return 1
        print(f"N={N} B={B} T={T}, {torch.get_num_threads()} thread(s); float32 spikes identical")
        for keep in (False, True):
            times = {k: [] for k in layers}
            for _ in range(args.repeats):
                for k, layer in layers.items():
                    t0 = time.perf_counter()
                    loop(layer, keep)
                    times[k].append(time.perf_counter() - t0)
            ms, mc = (statistics.median(times[k]) for k in ("snntorch", "ctsnn"))
            print(f"step loop, spikes {'kept' if keep else 'dropped'}: snntorch {ms:.3f} s "
                  f"[{min(times['snntorch']):.3f}-{max(times['snntorch']):.3f}]  ctsnn {mc:.3f} s "
                  f"[{min(times['ctsnn']):.3f}-{max(times['ctsnn']):.3f}]  snntorch/ctsnn {ms / mc:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
