"""Hypothesis properties of discrete layers: the fused kernel equals the torch step over random
option combinations (the combinations the options table allows), and in-step spike times do not
depend on dt and equal simulate(method="exact")'s."""
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ctsnn
from ctsnn.discrete import options as dopt
from ctsnn.kernels import build

D = torch.float64


def _model(kind, n, g):
    u = lambda lo, hi: (lo + (hi - lo) * torch.rand(n, generator=g, dtype=D))  # noqa: E731
    if kind == "LIF":
        return ctsnn.LIF(tau_mem=u(5e-3, 3e-2), v_th=u(0.8, 1.2), reset="subtract")
    if kind == "LIF_to_value":
        return ctsnn.LIF(tau_mem=u(5e-3, 3e-2), v_reset=-0.1)
    if kind == "IF":
        return ctsnn.IF(v_th=u(0.8, 1.2), reset="subtract")
    if kind == "CubaLIF":
        return ctsnn.CubaLIF(tau_syn=u(2e-3, 8e-3), tau_mem=u(5e-3, 3e-2), r=2.0)
    if kind == "ALIF":
        return ctsnn.ALIF(tau_mem=u(5e-3, 3e-2), tau_adapt=u(5e-2, 2e-1), adapt_jump=0.2, reset="subtract",
                          subtract="threshold")
    return ctsnn.LIT(tau_mem=u(5e-3, 3e-2), pos_th=1.0, neg_th=0.5)  # two events


RARE = st.sampled_from([False, False, False, True])
OPTIONS = st.fixed_dictionaries({
    "method": st.sampled_from(["exact", "euler"]),
    "input": st.sampled_from(["impulse", "zoh", "impulse_start"]),
    "reset_delay": RARE,
    "reset_order": st.sampled_from(["before_decay", "after_decay"]),
    "simultaneous_events": RARE,
    "multi_spike": RARE,
    "threshold_grad": st.sampled_from([True, True, True, False]),
    "state_min": st.sampled_from([None, None, {"v": -0.3}]),
    "detach_reset": st.sampled_from([False, True, ("v",)]),
    "events": st.sampled_from(["grid", "grid", "grid", "in_step"]),
    "surrogate": st.sampled_from(["atan", "heaviside", "single_exponential"]),
})
IN_STEP = dict(method="exact", input="zoh", reset_delay=False, simultaneous_events=False, multi_spike=False,
               threshold_grad=True, state_min=None)  # what in-step events need (the options table)


@pytest.mark.skipif(not build.available(), reason="no C++ compiler")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["LIF", "LIF_to_value", "IF", "CubaLIF", "ALIF", "LIT"]), opts=OPTIONS,
       dtype=st.sampled_from([torch.float64, torch.float32]), seed=st.integers(0, 2**31 - 1))
def test_fused_equals_torch_over_option_combinations(kind, opts, dtype, seed):
    """Every combination the options table accepts runs fused without gradients, bit for bit the
    torch step's output and state; a combination it refuses is refused with the table's message."""
    g = torch.Generator().manual_seed(seed)
    if opts["events"] == "in_step":  # one-state models, and the options in-step events take
        opts.update(IN_STEP)
        kind = "IF" if kind == "IF" else "LIF"
    model = _model(kind, 4, g)
    try:
        lt = ctsnn.discretize(model, 1e-3, backend="torch", **opts)
    except ValueError as e:
        assert "does not support" in str(e) or "needs" in str(e), str(e)
        return
    lf = ctsnn.discretize(model, 1e-3, backend="fused", **opts)
    assert dopt.conflicts(lt.features()) is None
    scale = 40.0 if opts["input"] == "zoh" else 0.6
    x = (scale * torch.rand(60, 2, 4, generator=g, dtype=D) - (0.3 * scale if kind == "LIT" else 0)).to(dtype)
    with torch.no_grad():
        rt, rf = lt.run(x, record_states=True), lf.run(x, record_states=True)
    assert rf.backend == "fused" and rt.backend == "torch"
    assert torch.equal(rt.out, rf.out) and torch.equal(rt.state, rf.state) and torch.equal(rt.states, rf.states)


@settings(max_examples=6, deadline=None)
@given(tau=st.floats(4e-3, 4e-2), v_th=st.floats(0.5, 2.0), t_ref=st.sampled_from([0.0, 1.3e-3]),
       seed=st.integers(0, 2**31 - 1))
def test_in_step_spike_times_do_not_depend_on_dt(tau, v_th, t_ref, seed):
    """A current held on a 2 ms grid, stepped with dt = 2, 1, 0.5 ms (the input repeated): the
    in-step spike times are the same for every dt and equal simulate(method="exact")'s, to
    rounding (the held current makes the exact solution piecewise closed-form at every dt)."""
    g = torch.Generator().manual_seed(seed)
    m = ctsnn.LIF(tau_mem=tau, v_th=v_th, t_ref=t_ref, dtype=D)
    T0, dt0 = 25, 2e-3
    cur = v_th * (0.5 + 2.5 * torch.rand(T0, 2, generator=g, dtype=D))
    tr = ctsnn.simulate(m, current=cur, t_end=T0 * dt0, dt=dt0, method="exact", dtype=D)
    want = sorted(zip(tr.spike_neurons.tolist(), tr.spike_times.tolist()))
    for k in (1, 2, 4):
        layer = ctsnn.discretize(m, dt0 / k, input="zoh", events="in_step")
        sp = layer.run(cur.repeat_interleave(k, dim=0), output="sparse").spikes
        got = sorted(zip(sp.spike_neurons.tolist(), sp.spike_times.tolist()))
        assert len(got) == len(want)
        assert [a[0] for a in got] == [b[0] for b in want]
        assert max((abs(a[1] - b[1]) for a, b in zip(got, want)), default=0.0) < 1e-12
