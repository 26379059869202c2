"""How far tracetorch's LITS / SLITS steps drift from the continuous models' spike times as dt grows.

Continuous references (ctsnn.simulate, event-exact, float64, 0.5 s of DC drive):
  LIT:          tau_mem = 20 ms, pos_th = neg_th = 1, r I = 1.3 (v_ss = 1.3, ISI = tau ln(1.3/0.3) = 29.33 ms)
  Traced(LIT):  the same membrane behind a synapse, tau_syn = 5 ms, dv/dt = -v/tau_mem + i, I = 65/s

Discrete layers (ctsnn.compat.tracetorch, time in steps of dt, float64): LITS with
beta = exp(-dt/tau_mem) and the per-step charge x = (1 - beta) r I (the exact zoh step of the DC
current); SLITS with alpha = exp(-dt/tau_syn) and x = I dt (the synapse's zoh step is exact; the
membrane gets the updated synaptic charge, see docs/derivations.md).  Two quantisers:

* round  (round_ste): binary spikes at the end of their step; k-th spike time = that step's end;
* soft   (identity, tracetorch's default): every step emits p - q in (-1, 1); the k-th "spike" is
  where the running sum of the soft output first reaches k (linear within the step).

Printed: spikes (soft: the summed soft output), max |t_k - t_k,ref| over the common k, in ms.
"""
import math

import torch

import ctsnn
from ctsnn.compat import tracetorch as ct
from ctsnn.models import LIT, Traced

T_END, TAU, TAU_SYN, RI = 0.5, 0.02, 0.005, 1.3
torch.set_default_dtype(torch.float64)


def soft_times(out, dt):
    """Times where the running sum of the per-step output first reaches 1, 2, ... (linear in a step)."""
    c = torch.cat([torch.zeros(1), torch.cumsum(out, 0)])
    times = []
    for k in range(1, int(c.max().floor()) + 1):
        t = int(torch.nonzero(c[1:] >= k)[0])          # first step whose end reaches k; c[t] < k
        times.append((t + (k - c[t]) / (c[t + 1] - c[t])) * dt)
    return torch.tensor(times)


def row(name, dt, t, ref, count):
    k = min(len(t), len(ref))
    err = (t[:k] - ref[:k]).abs().max().item() * 1e3 if k else float("nan")
    print(f"{dt * 1e3:7.2f} | {name:12s} | {count:8.2f} | {err:9.4f}")


def main():
    lit = LIT(tau_mem=TAU, pos_th=1.0, neg_th=1.0)
    ref = ctsnn.simulate(lit, current=RI, t_end=T_END, dt=1e-4).spike_times
    syn = Traced(LIT(tau_mem=TAU, pos_th=1.0, neg_th=1.0), tau_syn=TAU_SYN)
    ref_s = ctsnn.simulate(syn, current=RI / TAU, t_end=T_END, dt=1e-4).spike_times
    import tracetorch as tt  # the binary quantiser; the layers themselves are ctsnn's
    for title, r, mk in (("LITS vs LIT", ref, "lits"), ("SLITS vs Traced(LIT, tau_syn=5 ms)", ref_s, "slits")):
        print(f"\n{title}: continuous {len(r)} spikes, first {r[0] * 1e3:.4f} ms")
        print(" dt [ms] | quantiser    |   spikes | max|dt_k| [ms]")
        for dt in (0.05e-3, 0.1e-3, 0.5e-3, 1e-3, 2e-3, 5e-3):
            steps = int(round(T_END / dt))
            beta = math.exp(-dt / TAU)
            for qname in ("round", "soft"):
                q = dict(quant_fn=tt.functional.round_ste()) if qname == "round" else {}
                if mk == "lits":
                    layer = ct.LITS(1, beta=beta, **q)
                    x = torch.full((steps, 1), (1 - beta) * RI)
                else:
                    layer = ct.SLITS(1, alpha=math.exp(-dt / TAU_SYN), beta=beta, **q)
                    x = torch.full((steps, 1), RI / TAU * dt)
                with torch.no_grad():
                    out = torch.stack([layer(x[t]) for t in range(steps)])[:, 0]
                if qname == "round":
                    t = (torch.nonzero(out > 0.5).flatten() + 1).double() * dt
                    row(qname, dt, t, r, float((out != 0).sum()))
                else:
                    row(qname, dt, soft_times(out, dt), r, float(out.sum()))


if __name__ == "__main__":
    main()
