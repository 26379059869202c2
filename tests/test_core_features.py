"""Resets, refractoriness, input spikes, batching, dtypes, recording, ternary and recurrent models:
each checked against a closed form derived in the comment beside it."""
import math

import pytest
import torch
from scipy.optimize import brentq

import ctsnn

TAU = 10e-3
F64 = torch.float64


def period(drive, v0=0.0, th=1.0, tau=TAU):
    return tau * math.log((drive - v0) / (drive - th))


def test_refractory_period_adds_to_the_interval():
    # v is held at v_reset for t_ref after each spike, then charges again: ISI = t_ref + T
    t_ref = 2.5e-3
    T = period(1.5)
    tr = ctsnn.simulate(ctsnn.LIF(tau_mem=TAU, t_ref=t_ref), 1.5, t_end=0.2, dt=1e-3, dtype=F64)
    k = torch.arange(tr.n_spikes, dtype=F64)
    assert tr.n_spikes == math.floor((0.2 + t_ref) / (T + t_ref))
    assert torch.max(torch.abs(tr.spike_times - (T + k * (T + t_ref)))) < 1e-12
    # held at the reset value inside the refractory window, on the grid
    for ts in tr.spike_times.tolist():
        inside = (tr.t > ts) & (tr.t < ts + t_ref)
        assert torch.all(tr["v"][inside, 0] == 0)


def test_subtract_reset_equals_reset_to_value_in_continuous_time():
    # the crossing happens at exactly v_th, so subtracting (v_th - v_reset) lands on v_reset
    a = ctsnn.simulate(ctsnn.LIF(tau_mem=TAU, reset="subtract"), 2.0, t_end=0.2, dt=1e-3, dtype=F64)
    b = ctsnn.simulate(ctsnn.LIF(tau_mem=TAU, reset="to_value"), 2.0, t_end=0.2, dt=1e-3, dtype=F64)
    assert a.n_spikes == b.n_spikes > 10
    assert torch.max(torch.abs(a.spike_times - b.spike_times)) < 1e-12


def test_no_reset_fires_once_per_upward_crossing():
    # without reset v keeps charging to rI > v_th: one crossing, one spike, at T
    tr = ctsnn.simulate(ctsnn.LIF(tau_mem=TAU, reset="none"), 1.5, t_end=0.2, dt=1e-3, dtype=F64)
    assert tr.n_spikes == 1
    assert abs(float(tr.spike_times[0]) - period(1.5)) < 1e-12
    v_end = float(tr["v"][-1, 0])
    assert abs(v_end - 1.5 * -math.expm1(-0.2 / TAU)) < 1e-12


def test_if_neuron_linear_charge():
    # dv/dt = r I: spikes every v_th/(r I)
    tr = ctsnn.simulate(ctsnn.IF(r=2.0), 30.0, t_end=0.1, dt=1e-3, dtype=F64)
    T = 1.0 / 60.0
    assert tr.n_spikes == 6
    assert torch.max(torch.abs(tr.spike_times - T * torch.arange(1, 7, dtype=F64))) < 1e-12


def test_input_spikes_at_exact_off_grid_times():
    # an input of weight w at t_s jumps v: v(t) = w e^{-(t - t_s)/tau} for t >= t_s
    ts, w = 0.012345678, 0.5
    tr = ctsnn.simulate(ctsnn.LIF(tau_mem=TAU), spikes=([ts], [0], [w]), t_end=0.05, dt=1e-3, dtype=F64)
    after = tr.t >= ts
    assert torch.all(tr["v"][~after, 0] == 0)
    ref = w * torch.exp(-(tr.t[after] - ts) / TAU)
    assert torch.max(torch.abs(tr["v"][after, 0] - ref)) < 1e-15
    # two inputs together cross threshold exactly at the second arrival
    tr = ctsnn.simulate(ctsnn.LIF(tau_mem=TAU), spikes=([0.0101, 0.0102], [0, 0], [0.6, 0.6]),
                        t_end=0.05, dt=1e-3, dtype=F64)
    assert tr.n_spikes == 1 and float(tr.spike_times[0]) == 0.0102
    assert abs(float(tr.spike_pre[0, 0]) - (0.6 + 0.6 * math.exp(-1e-4 / TAU))) < 1e-15


def test_batch_dimensions_equal_separate_runs():
    torch.manual_seed(0)
    cur = 0.5 + 2.0 * torch.rand(200, 2, 3, 4, dtype=F64)
    model = ctsnn.CubaLIF(tau_syn=5e-3, tau_mem=TAU)
    tr = ctsnn.simulate(model, cur, t_end=0.2, dt=1e-3, record="all")
    assert tr["v"].shape == (201, 2, 3, 4) and tr["i"].shape == (201, 2, 3, 4)
    for b in [(0, 0), (1, 2)]:
        one = ctsnn.simulate(model, cur[:, b[0], b[1]], t_end=0.2, dt=1e-3)
        # (chunk boundaries of the fast path differ, so equal to rounding, not bitwise)
        assert torch.max(torch.abs(one["v"] - tr["v"][:, b[0], b[1]])) < 1e-13
        flat0 = (b[0] * 3 + b[1]) * 4
        sel = (tr.spike_neurons >= flat0) & (tr.spike_neurons < flat0 + 4)
        assert torch.max(torch.abs(one.spike_times - tr.spike_times[sel])) < 1e-13
        assert torch.equal(one.spike_neurons, tr.spike_neurons[sel] - flat0)


def test_float32_runs_and_stays_close():
    drive = torch.tensor([[1.2, 2.0, 4.0]], dtype=torch.float32)
    tr = ctsnn.simulate(ctsnn.LIF(tau_mem=TAU), drive, t_end=0.3, dt=1e-3)
    assert tr["v"].dtype == torch.float32
    assert tr.spike_times.dtype == F64            # grid index + offset, kept in float64
    for j, d in enumerate(drive[0].tolist()):
        s = tr.spikes(j)
        T = period(d)
        assert s.shape[0] == math.floor(0.3 / T)
        assert torch.max(torch.abs(s - T * torch.arange(1, s.shape[0] + 1, dtype=F64))) < 2e-6


def test_save_load_round_trip_is_lossless(tmp_path):
    model = ctsnn.ALIF(tau_mem=TAU, tau_adapt=0.05, adapt_jump=0.3)
    tr = ctsnn.simulate(model, 2.0, spikes=([0.0123], [0], [0.4]), t_end=0.1, dt=1e-3, dtype=F64,
                        record="all")
    path = tr.save(tmp_path / "trace.npz")
    back = ctsnn.Trace.load(path)
    assert torch.equal(back.t, tr.t)
    for name in ("v", "b"):
        assert torch.equal(back[name], tr[name])
    for field in ("spike_times", "spike_neurons", "spike_signs", "spike_values", "spike_pre", "spike_post"):
        assert torch.equal(getattr(back, field), getattr(tr, field)), field
    assert back.dt == tr.dt and back.t_end == tr.t_end and back.method == tr.method
    assert back.thresholds == tr.thresholds


def test_record_every_and_spikes_only():
    full = ctsnn.simulate(ctsnn.LIF(tau_mem=TAU), 1.5, t_end=0.1, dt=1e-3, dtype=F64)
    sub = ctsnn.simulate(ctsnn.LIF(tau_mem=TAU), 1.5, t_end=0.1, dt=1e-3, dtype=F64, record_every=5e-3)
    assert torch.equal(sub.t, full.t[::5])
    assert torch.equal(sub["v"], full["v"][::5])
    none = ctsnn.simulate(ctsnn.LIF(tau_mem=TAU), 1.5, t_end=0.1, dt=1e-3, dtype=F64, record=())
    assert none.states == {} and torch.equal(none.spike_times, full.spike_times)
    with pytest.raises(ValueError, match="record_every"):
        ctsnn.simulate(ctsnn.LIF(tau_mem=TAU), 1.5, t_end=0.1, dt=1e-3, record_every=1.5e-3)


def test_fast_path_equals_step_by_step():
    torch.manual_seed(1)
    model = ctsnn.CubaLIF(tau_syn=4e-3, tau_mem=TAU, t_ref=0.0)
    cur = torch.rand(500, 5, dtype=F64) * 2.5
    spikes = ([0.0031, 0.2, 0.21, 0.4], [0, 1, 3, 4], [1.0, -0.5, 2.0, 0.3])
    a = ctsnn.simulate(model, cur, spikes, t_end=0.5, dt=1e-3, record="all", chunk=0, backend="torch")
    b = ctsnn.simulate(model, cur, spikes, t_end=0.5, dt=1e-3, record="all", backend="torch")
    assert b.stats["fast_steps"] > 0 and a.stats["fast_steps"] == 0
    assert torch.equal(a.spike_neurons, b.spike_neurons)
    assert torch.max(torch.abs(a.spike_times - b.spike_times)) < 1e-13
    assert torch.max(torch.abs(a["v"] - b["v"])) < 1e-12
    # gradients through the fast path equal those of the step-by-step path
    grads = []
    for ch in (0, 256):
        tau = torch.tensor(TAU, dtype=F64, requires_grad=True)
        tr = ctsnn.simulate(ctsnn.CubaLIF(tau_syn=4e-3, tau_mem=tau), cur, t_end=0.5, dt=1e-3, chunk=ch)
        (tr["v"].sum() + tr.spike_times.sum()).backward()
        grads.append(tau.grad)
    assert torch.allclose(grads[0], grads[1], rtol=1e-10)


@pytest.mark.parametrize("kind", ["LIF", "CubaLIF", "ALIF-current"])
def test_fast_path_through_refractory_periods_equals_step_by_step(kind):
    # t_ref = 2.35 ms (not a multiple of dt): the fast path holds refractory neurons over whole
    # steps and ends its chunk before the step of the first release; spikes, states and
    # gradients equal those of the step-by-step path to rounding, and most steps are fast.
    torch.manual_seed(2)
    cur = 1.2 + torch.rand(1, 4, dtype=F64) * 1.5
    spikes = ([0.0031, 0.02, 0.021], [0, 1, 3], [0.5, -0.3, 0.8])

    def make(tau):
        if kind == "LIF":
            return ctsnn.LIF(tau_mem=tau, t_ref=2.35e-3)
        if kind == "CubaLIF":
            return ctsnn.CubaLIF(tau_syn=3e-3, tau_mem=tau, t_ref=2.35e-3)
        return ctsnn.ALIF(tau_mem=tau, tau_adapt=30e-3, adapt_jump=0.2, t_ref=2.35e-3, adaptation="current")

    out = []
    for ch in (0, 256):
        tau = torch.tensor(TAU, dtype=F64, requires_grad=True)
        tr = ctsnn.simulate(make(tau), cur, spikes, t_end=0.04, dt=1e-4, record="all", chunk=ch)
        (tr["v"].sum() + tr.spike_times.sum()).backward()
        out.append((tr, tau.grad))
    (a, ga), (b, gb) = out
    a, b = a.detach(), b.detach()
    assert a.stats["fast_steps"] == 0 and b.stats["fast_steps"] > 0.6 * b.stats["steps"]
    assert a.n_spikes > 10 and torch.equal(a.spike_neurons, b.spike_neurons)
    assert torch.max(torch.abs(a.spike_times - b.spike_times)) < 1e-13
    for name in a.state_names:
        assert torch.max(torch.abs(a[name] - b[name])) < 1e-12, name
    isi = torch.diff(b.spikes(2))
    assert isi.numel() and float(isi.min()) > 2.35e-3   # the refractory period is really there
    assert torch.allclose(ga, gb, rtol=1e-10)


def test_lit_positive_and_negative_spikes():
    # positive drive: from v = 0 the first spike at v = pos_th - bias; then v = -bias after the
    # subtraction, so the next ones every tau ln((rI + bias)/(rI + bias - pos_th))
    bias, drive = 0.1, 1.6
    model = ctsnn.LIT(tau_mem=TAU, pos_th=1.0, neg_th=0.7, bias=bias, pos_scale=2.0, neg_scale=3.0)
    cur = torch.tensor([[drive, -drive]], dtype=F64)
    tr = ctsnn.simulate(model, cur, t_end=0.1, dt=1e-3)
    pos = tr.spikes(0)
    t1 = TAU * math.log(drive / (drive - (1.0 - bias)))
    T = TAU * math.log((drive + bias) / (drive + bias - 1.0))
    assert torch.max(torch.abs(pos - (t1 + T * torch.arange(pos.shape[0], dtype=F64)))) < 1e-12
    assert torch.all(tr.spike_signs[tr.spike_neurons == 0] == 1)
    assert torch.all(tr.spike_values[tr.spike_neurons == 0] == 2.0)
    # negative drive: v + bias crosses -neg_th downward at v = -(neg_th + bias), v += neg_th
    neg = tr.spikes(1)
    n1 = TAU * math.log(drive / (drive - (0.7 + bias)))
    Tn = TAU * math.log((drive - bias) / (drive - bias - 0.7))
    assert torch.max(torch.abs(neg - (n1 + Tn * torch.arange(neg.shape[0], dtype=F64)))) < 1e-12
    assert torch.all(tr.spike_signs[tr.spike_neurons == 1] == -1)
    assert torch.all(tr.spike_values[tr.spike_neurons == 1] == -3.0)


def test_dual_lit_split_reset():
    # positive input only: v_pos charges with tau_pos, v_neg stays 0 until the first spike at
    # tau_pos ln(rI/(rI - th)); the reset takes th/2 from each compartment, so afterwards
    # v(t) = rI + (th/2 - rI) e^{-s/tau_pos} - (th/2) e^{-s/tau_neg}, s = t - t1.
    tp, tn, drive = 8e-3, 20e-3, 1.5
    model = ctsnn.DualLIT(tau_pos=tp, tau_neg=tn)
    tr = ctsnn.simulate(model, drive, t_end=0.05, dt=1e-3, dtype=F64, record="all")
    t1 = tp * math.log(drive / (drive - 1.0))
    s2 = brentq(lambda s: drive + (0.5 - drive) * math.exp(-s / tp) - 0.5 * math.exp(-s / tn) - 1.0,
                1e-9, 0.05, xtol=1e-16, rtol=1e-15)
    assert abs(float(tr.spike_times[0]) - t1) < 1e-12
    assert abs(float(tr.spike_times[1]) - (t1 + s2)) < 1e-12
    assert abs(float(tr.spike_post[0, 0]) - 0.5) < 1e-12 and abs(float(tr.spike_post[0, 1]) + 0.5) < 1e-12


def test_recurrent_one_to_one_zero_delay():
    # self-inhibition V = -0.3 after a reset to 0: the next intervals start from v = -0.3
    drive = 1.5
    model = ctsnn.Recurrent(ctsnn.LIF(tau_mem=TAU), weight=-0.3)
    tr = ctsnn.simulate(model, drive, t_end=0.1, dt=1e-3, dtype=F64)
    T1, T = period(drive), period(drive, v0=-0.3)
    ref = T1 + T * torch.arange(tr.n_spikes, dtype=F64)
    assert tr.n_spikes == math.floor((0.1 - T1) / T) + 1
    assert torch.max(torch.abs(tr.spike_times - ref)) < 1e-12


@pytest.mark.parametrize("delay", [0.0, 1.234e-3])
def test_recurrent_all_to_all_with_and_without_delay(delay):
    # neuron 0 is driven (rI = 1.5, period T = tau ln 3, so e^{-T/tau} = 1/3); neuron 1 only
    # receives W[1, 0] = 0.8 per spike of neuron 0: after two inputs it holds 0.8 (1 + 1/3) > 1 and
    # fires at the second arrival, then starts again from 0: spikes at 2T + d, 4T + d, ...
    W = torch.tensor([[0.0, 0.0], [0.8, 0.0]], dtype=F64)
    model = ctsnn.Recurrent(ctsnn.LIF(tau_mem=TAU, n=2), weight=W, delay=delay)
    cur = torch.tensor([[1.5, 0.0]], dtype=F64)
    tr = ctsnn.simulate(model, cur, t_end=0.1, dt=1e-3)
    T = TAU * math.log(3.0)
    s0, s1 = tr.spikes(0), tr.spikes(1)
    assert torch.max(torch.abs(s0 - T * torch.arange(1, s0.shape[0] + 1, dtype=F64))) < 1e-12
    n1 = math.floor((0.1 - delay) / (2 * T))
    assert s1.shape[0] == n1
    assert torch.max(torch.abs(s1 - (2 * T * torch.arange(1, n1 + 1, dtype=F64) + delay))) < 1e-12
    pre1 = tr.spike_pre[tr.spike_neurons == 1, 0]
    assert torch.allclose(pre1, torch.full_like(pre1, 0.8 * (1 + 1 / 3)), atol=1e-12)


def test_recurrent_trace_mode():
    # a short drive makes a few spikes; each jumps the trace r by 1 and tau_rec r' = -r, so after
    # the last one r(t) = sum_k e^{-(t - t_k)/tau_rec} whatever rec_weight does to v
    model = ctsnn.Recurrent(ctsnn.LIF(tau_mem=TAU), tau_rec=5e-3, rec_weight=-0.5)
    cur = torch.zeros(100, 1, dtype=F64)
    cur[:10] = 3.0
    tr = ctsnn.simulate(model, cur, t_end=0.1, dt=1e-3, record="all")
    assert tr.n_spikes >= 1
    last = float(tr.spike_times[-1])
    after = tr.t > last
    ref = sum(torch.exp(-(tr.t[after] - ts) / 5e-3) for ts in tr.spike_times.tolist())
    assert torch.max(torch.abs(tr["r"][after, 0] - ref)) < 1e-12


def test_float32_refractory_release_and_interval():
    # the release time is rounded to float32; the neuron must still be released (no endless loop)
    # and the interval is t_ref + tau ln(rI/(rI - th)) after the reset to 0
    m = ctsnn.LIF(tau_mem=0.01, v_th=1.0, t_ref=2e-3)
    isi = 2e-3 + 0.01 * math.log(3.0 / 2.0)
    for dtype in (torch.float32, torch.float64):
        tr = ctsnn.simulate(m, 3.0, t_end=0.1, dt=1e-3, dtype=dtype)
        d = torch.diff(tr.spike_times)
        tol = 1e-6 if dtype == torch.float32 else 1e-12
        torch.testing.assert_close(d, torch.full_like(d, isi), rtol=0, atol=tol)


def test_python_number_current_keeps_float64():
    # 1 + 1e-9 is not representable in float32: a float64 run must see it
    m = ctsnn.LIF(tau_mem=0.01, v_th=10.0)
    tr = ctsnn.simulate(m, 1.0 + 1e-9, t_end=0.05, dt=1e-3, dtype=torch.float64)
    exact = (1.0 + 1e-9) * (1 - math.exp(-5.0))
    assert abs(float(tr["v"][-1, 0]) - exact) < 1e-14


def test_rest_state_carries_v_leak_gradient():
    vl = torch.tensor(-0.07, dtype=torch.float64, requires_grad=True)
    m = ctsnn.LIF(tau_mem=0.01, v_leak=vl, v_th=0.0, v_reset=-0.08)
    tr = ctsnn.simulate(m, None, t_end=0.01, dt=1e-3, dtype=torch.float64)
    (g,) = torch.autograd.grad(tr["v"][-1, 0], vl)
    assert float(g) == pytest.approx(1.0, abs=1e-12)  # v stays at v_leak for every v_leak


def test_imports_flow_one_way():
    # solvers and the event component never import simulate, and solvers call nothing of the
    # simulation (no fire callback): they get a frozen Problem and return Segments; errors.py
    # imports nothing from the package
    import ast
    import dataclasses
    import pathlib
    root = pathlib.Path(ctsnn.__file__).parent
    files = sorted((root / "solvers").glob("*.py")) + [root / "events.py", root / "errors.py"]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                mod = (node.module or "")
                assert "simulate" not in mod, (path.name, mod)
                if path.name == "errors.py":
                    assert node.level == 0 and not mod.startswith("ctsnn"), mod
            if path.parent.name == "solvers" and isinstance(node, ast.Attribute):
                assert node.attr not in ("fire", "armed", "ref_until", "guard"), (path.name, node.attr)
    from ctsnn.solvers.base import Problem
    from ctsnn.simulate import _Sim
    assert Problem.__dataclass_params__.frozen
    import inspect
    import textwrap
    tree = ast.parse(textwrap.dedent(inspect.getsource(_Sim.problem)))
    calls = [c for c in ast.walk(tree) if isinstance(c, ast.Call) and getattr(c.func, "id", None) == "Problem"]
    assert len(calls) == 1 and not calls[0].args
    # every field, the optional current_fn included, is passed by name
    assert {k.arg for k in calls[0].keywords} == {f.name for f in dataclasses.fields(Problem)}
