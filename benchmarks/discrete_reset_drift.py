"""Spike-time drift of snntorch's delayed subtract reset (reset after the decay) against the
continuous LIF (tau=20 ms, th=1, subtract reset, DC current rI=1.5, 0.5 s), as dt grows.
Both discrete layers take the current held over the step (zoh); 'exact order' is the exact
discretisation (jump then propagate), 'snntorch order' subtracts th after the decay."""
import torch

import ctsnn
from ctsnn import discretize

T_END, I = 0.5, 1.5
model = ctsnn.LIF(tau_mem=0.02, v_th=1.0, reset="subtract")
ref = ctsnn.simulate(model, current=I, t_end=T_END, dt=1e-4, dtype=torch.float64).spike_times
print(f"continuous: {len(ref)} spikes, first {ref[0]*1e3:.4f} ms")
print("dt [ms] | layer          | spikes | max |t_k - t_k,ref| over common k [ms]")
for dt in (1e-4, 5e-4, 1e-3, 2e-3):
    steps = int(round(T_END / dt))
    x = torch.full((steps, 1), I, dtype=torch.float64)
    for name, kw in (("exact order", {}),
                     ("snntorch order", dict(reset_delay=True, reset_order="after_decay"))):
        out = discretize(model, dt, input="zoh", **kw).run(x).out
        t = (torch.nonzero(out[:, 0]).flatten() + 1).double() * dt   # spike at the end of its step
        k = min(len(t), len(ref))
        err = (t[:k] - ref[:k]).abs().max().item() * 1e3
        print(f"{dt*1e3:7.1f} | {name:14s} | {len(t):6d} | {err:.4f}")

# sinabs' MultiSpike (trunc(v / th) spikes per step, all at the step's end) on an IF-like burst:
# a strong drive (rI = 5, ISI = tau ln(5/4) = 4.46 ms) so that coarse steps hold several spikes.
I2 = 5.0
ref2 = ctsnn.simulate(model, current=I2, t_end=T_END, dt=1e-4, dtype=torch.float64).spike_times
print(f"\nMultiSpike, rI = {I2}: continuous {len(ref2)} spikes")
print("dt [ms] | layer          | spikes | max |t_k - t_k,ref| over common k [ms]")
for dt in (1e-3, 2e-3, 5e-3, 10e-3):
    steps = int(round(T_END / dt))
    x = torch.full((steps, 1), I2, dtype=torch.float64)
    for name, kw in (("single spike", {}), ("multi spike", dict(multi_spike=True))):
        out = discretize(model, dt, input="zoh", **kw).run(x).out
        counts = out[:, 0].round().long()
        t = torch.repeat_interleave((torch.arange(steps) + 1).double() * dt, counts)
        k = min(len(t), len(ref2))
        err = (t[:k] - ref2[:k]).abs().max().item() * 1e3
        print(f"{dt*1e3:7.1f} | {name:14s} | {len(t):6d} | {err:.4f}")
