"""A snntorch training loop with learnable parameters: snntorch.Leaky / RLeaky against the drop-in
ctsnn.compat.snntorch classes, the same per-step Python loop, forward and backward, alternating,
medians.  Losses and gradients are checked equal first (float32, snntorch's atan surrogate).

Learnable ``beta`` and ``threshold`` are the case where the dialect used to rebuild its step
constants (``tau = -1/ln beta``, the propagator) on every step; it now makes them once per graph
(``_grad_constants`` in ctsnn/compat/snntorch.py).  Frozen parameters (the gradient then goes to
the input) are shown for comparison.

    python benchmarks/dropin_training.py [--neurons 256 --batch 32 --steps 100 --repeats 7]
"""
import statistics
import sys
import time

import torch

import _sizes  # benchmarks/_sizes.py (scripts run with their folder on sys.path)

from ctsnn.compat import snntorch as cs


def main(argv=None):
    ap = _sizes.parser()
    ap.set_defaults(neurons=256, batch=32, steps=100, repeats=7)
    args = ap.parse_args(argv)
    try:
        import snntorch
    except ImportError:
        print("snntorch not installed")
        return 0
    T, B, N = args.steps, args.batch, args.neurons
    x = torch.rand(T, B, N, generator=torch.Generator().manual_seed(0)) * 0.6
    beta = torch.linspace(0.7, 0.95, N)
    print(f"N={N} B={B} T={T}, {torch.get_num_threads()} thread(s), float32; forward + backward per loop")
    failed = 0
    for cls, extra in (("Leaky", {}), ("RLeaky", dict(all_to_all=False, V=torch.full((N,), 0.1)))):
        for learn in (True, False):
            kw = dict(beta=beta, threshold=1.0, learn_beta=learn, learn_threshold=learn, **extra)
            layers = {"snntorch": getattr(snntorch, cls)(**kw), "ctsnn": getattr(cs, cls)(**kw)}

            xin = [x[t].clone().requires_grad_(not learn) for t in range(T)]  # frozen: gradient to the input

            def loop(layer):
                mem, out = layer.reset_mem(), []
                for t in range(T):
                    s, mem = layer(xin[t])
                    out.append(s)
                loss = torch.stack(out).mean() + (mem ** 2).mean()
                for p in [*layer.parameters(), *xin]:
                    p.grad = None
                loss.backward()
                return loss.detach(), [p.grad for p in layer.parameters()] + ([] if learn else [torch.stack([v.grad for v in xin])])

            (la, ga), (lb, gb) = loop(layers["snntorch"]), loop(layers["ctsnn"])
            same = torch.equal(la, lb) and all(
                float((a - b).abs().max()) <= 1e-5 * float(a.abs().max()) for a, b in zip(ga, gb))
            label = f"{cls}, {'learnable' if learn else 'frozen'} beta/threshold"
            if not same:
                print(f"{label}: results differ, no timing reported", file=sys.stderr)
                failed = 1
                continue
            times = {k: [] for k in layers}
            for _ in range(args.repeats):
                for k, layer in layers.items():
                    t0 = time.perf_counter()
                    loop(layer)
                    times[k].append(time.perf_counter() - t0)
            ms, mc = (statistics.median(times[k]) for k in ("snntorch", "ctsnn"))
            print(f"{label}: snntorch {ms * 1e3:.1f} ms  ctsnn {mc * 1e3:.1f} ms  ctsnn/snntorch {mc / ms:.2f}"
                  f"  (losses equal, gradients within 1e-5 of the largest)")
    return failed


if __name__ == "__main__":
    sys.exit(main())
