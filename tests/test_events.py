"""The event component and the solver contract: ``events.locate`` on dense outputs with known
crossings, and every registered solver returning a ``Segment`` whose endpoint and interior
values are its solution (checked against the closed form), so a solver that bypasses the
contract fails here."""
import math

import pytest
import torch

import ctsnn
from ctsnn import events
from ctsnn.solvers import SOLVERS, get_solver
from ctsnn.solvers.base import Hold, Problem, Segment
from ctsnn.solvers.propagator import propagate, propagator

D = torch.float64


def _segment(y, dy, t1=1.0, turns=True, t0=0.0):
    """A Segment of closed-form functions y(s), dy(s) (each [k] -> [k, S]) for one element."""
    z = torch.zeros(1, dtype=D)
    t0v = torch.full((1,), t0, dtype=D)
    return Segment(t0=t0v, t1=t1, y0=y(z + t0), y1=y(z + t1), at=lambda i, s: y(s), slope=lambda i, s: dy(s),
                   turns=turns, tol=1e-15, slope0=dy(z + t0) if turns else None,
                   slope1=dy(z + t1) if turns else None)


def test_locate_ordinary_crossing_closed_form():
    seg = _segment(lambda s: (s ** 2)[:, None], lambda s: (2 * s)[:, None], turns=False)
    t, e = events.locate(seg, torch.ones(1, 1, dtype=D), torch.tensor([[0.3]], dtype=D))
    assert int(e) == 0 and abs(float(t) - math.sqrt(0.3)) < 1e-14


def test_locate_crossing_that_returns_below_inside_the_interval():
    # y = 4 s (1 - s): below 0.75 at both ends, above it on (1/4, 3/4): the first (upward)
    # crossing 1/4 is returned, not the downward one at 3/4
    seg = _segment(lambda s: (4 * s * (1 - s))[:, None], lambda s: (4 - 8 * s)[:, None])
    th = torch.tensor([[0.75]], dtype=D)
    t, e = events.locate(seg, torch.ones(1, 1, dtype=D), th)
    assert int(e) == 0 and abs(float(t) - 0.25) < 1e-14
    # the same excursion below threshold is no event
    t, e = events.locate(seg, torch.ones(1, 1, dtype=D), torch.tensor([[1.01]], dtype=D))
    assert int(e) == -1 and math.isinf(float(t))
    # without the turning information (a segment that says it cannot turn) it would be missed:
    # locate relies on the segment's declaration, so solvers must set ``turns`` honestly
    flat = _segment(lambda s: (4 * s * (1 - s))[:, None], lambda s: (4 - 8 * s)[:, None], turns=False)
    assert int(events.locate(flat, torch.ones(1, 1, dtype=D), th)[1]) == -1


def test_locate_two_crossings_in_one_interval_returns_the_first():
    # two event functions on one state, y = s: thresholds 0.7 and 0.2 -> event 1 at 0.2 first;
    # and one event function crossed at 0.2 (upward, y = s) while y stays above: first crossing
    seg = _segment(lambda s: s[:, None], lambda s: torch.ones_like(s)[:, None], turns=False)
    G = torch.ones(2, 1, dtype=D)
    t, e = events.locate(seg, G, torch.tensor([[0.7, 0.2]], dtype=D))
    assert int(e) == 1 and abs(float(t) - 0.2) < 1e-14
    # y = sin(3 pi s / 2) / ... : up through 0.5 at s = 1/9, down at 5/9 (turning at 1/3),
    # ending below at s = 0.8: the first crossing 1/9 of two
    w = 1.5 * math.pi
    seg = _segment(lambda s: torch.sin(w * s)[:, None], lambda s: (w * torch.cos(w * s))[:, None], t1=0.8)
    t, e = events.locate(seg, torch.ones(1, 1, dtype=D), torch.tensor([[0.5]], dtype=D))
    assert int(e) == 0 and abs(float(t) - 1 / 9) < 1e-14


def test_locate_armed_element_above_threshold_fires_at_the_start_and_skip():
    seg = _segment(lambda s: (0.5 + s)[:, None], lambda s: torch.ones_like(s)[:, None], turns=False, t0=0.25)
    th = torch.tensor([[0.6]], dtype=D)
    t, e = events.locate(seg, torch.ones(1, 1, dtype=D), th, armed=torch.ones(1, 1, dtype=torch.bool))
    assert int(e) == 0 and float(t) == 0.25
    t, e = events.locate(seg, torch.ones(1, 1, dtype=D), th, armed=torch.zeros(1, 1, dtype=torch.bool))
    assert int(e) == -1                               # not armed: already above, no crossing
    t, e = events.locate(seg, torch.ones(1, 1, dtype=D), th, skip=torch.ones(1, dtype=torch.bool))
    assert int(e) == -1                               # refractory


def _problem(model, n=3, Bt=1):
    return Problem(model=model, dtype=D, device=torch.device("cpu"), dt=1e-3, n=n, Bt=Bt, S=model.n_states,
                   E=model.n_events, M=Bt * n, clamp_index=model.state_index(model.clamp_state),
                   refractory=False, stats={})


def _reference(model, y0, u, s):
    """The closed-form solution of the linear model from y0 [M, S] after time s (float)."""
    A, B, c = model.linear_part(D)
    b = (B @ u.unsqueeze(-1)).squeeze(-1) + c
    E, F = propagator(A, s)
    return propagate(E, F, y0, b)


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_every_solver_returns_its_solution_as_a_segment(name):
    model = ctsnn.CubaLIF(tau_syn=torch.tensor([4e-3, 5e-3, 6e-3], dtype=D), tau_mem=10e-3)
    p = _problem(model)
    cls = get_solver(name)
    solver = cls(p, step_size=1e-5) if name in ctsnn.solvers.FIXED_METHODS else cls(p)
    u = model.input_channels(torch.tensor([[0.8, 1.2, 1.5]], dtype=D))
    solver.begin_step(0.0, u)
    y0 = torch.tensor([[[0.3, 0.1], [0.0, 0.5], [0.2, 0.2]]], dtype=D)
    h = 1e-4 if cls.order == 1 else 1e-3
    seg = solver.step(0.0, y0, h)
    assert isinstance(seg, Segment)
    assert 0 < seg.t1 <= h and seg.y0.shape == y0.shape and seg.y1.shape == y0.shape
    torch.testing.assert_close(seg.y0, y0, rtol=0, atol=1e-15)
    # an adaptive method's first accepted step can be tiny (its initial step-size guess): go on
    # along the same run until a segment reaches a tenth of h, and check that one
    while seg.t1 < 0.1 * h:
        seg = solver.step(seg.t1, seg.y1, h)
    t0, t1 = float(seg.t0[0]), seg.t1
    y1 = seg.y1.reshape(-1, 2)
    rows = torch.arange(3)
    torch.testing.assert_close(seg.at(rows, torch.full((3,), t1, dtype=D)), y1, rtol=0, atol=1e-14)
    # interior points against the closed form, to the accuracy of the method over the step taken:
    # the exact propagator to rounding; Euler within the Taylor remainder |y''| t^2 / 2 of its
    # step t, the fixed-grid methods of order p within 2 |y^(p+1)| t^(p+1) per step (and 1e-8)
    # (|y^(k)| < 4e4 * 250^(k-2) here: |y''| = |A (A y + b)| < 4e4, rates up to 1/(4 ms)); the
    # adaptive ones within 10 atol (their error control: rtol 1e-7, atol 1e-9)
    step = solver.h if name in ctsnn.solvers.FIXED_METHODS else t1 - t0
    if cls.order == math.inf:
        tol = 1e-14
    elif name in ctsnn.solvers.FIXED_METHODS or name == "euler":
        c = 0.5 if cls.order == 1 else 2.0      # the cubic Hermite dense output adds its own error
        tol = 1e-14 + c * 4e4 * 250.0 ** (cls.order - 1) * step ** (cls.order + 1) * max(1.0, (t1 - t0) / step)
        tol = min(tol, 1e-8) if cls.order > 1 else tol
    else:
        tol = 1e-8
    for frac in (0.25, 0.5, 0.9):
        s = t0 + frac * (t1 - t0)
        ref = _reference(model, y0.reshape(-1, 2), u.reshape(3, -1), s)
        got = seg.at(rows, torch.full((3,), s, dtype=D))
        assert (got - ref).abs().max() < tol, (name, frac, float((got - ref).abs().max()))
        # the slope is the time derivative of the dense output
        d = 1e-7 * (t1 - t0)
        fd = (seg.at(rows, torch.full((3,), s + d, dtype=D)) - seg.at(rows, torch.full((3,), s - d, dtype=D))) / (2 * d)
        assert (seg.slope(rows, torch.full((3,), s, dtype=D)) - fd).abs().max() < 1e-4 * fd.abs().max()
    ref1 = _reference(model, y0.reshape(-1, 2), u.reshape(3, -1), t1)
    assert (y1 - ref1).abs().max() < tol
    if seg.turns:
        torch.testing.assert_close(seg.slope0.reshape(-1, 2), seg.slope(rows, torch.full((3,), t0, dtype=D)), rtol=1e-9,
                                   atol=1e-9)
    if cls.per_element:   # element calls: each from its own start offset
        gi = torch.tensor([2, 0])
        s0 = torch.tensor([0.2, 0.6], dtype=D) * h
        ys = torch.tensor([[0.1, 0.4], [0.3, 0.0]], dtype=D)
        es = solver.step(s0, ys, h, rows=gi)
        assert torch.equal(es.t0, s0) and es.t1 == h
        for j in range(2):
            ref = _reference_rows(model, ys[j], u.reshape(3, -1)[gi[j]], int(gi[j]), h - float(s0[j]))
            assert (es.y1[j] - ref).abs().max() < 1e-13
            mid = 0.5 * (float(s0[j]) + h)
            ref = _reference_rows(model, ys[j], u.reshape(3, -1)[gi[j]], int(gi[j]), mid - float(s0[j]))
            got = es.at(torch.tensor([j]), torch.tensor([mid], dtype=D))[0]
            assert (got - ref).abs().max() < 1e-13


def _reference_rows(model, y, u, neuron, s):
    """The closed-form solution of one neuron (per-neuron A, B, c) from y [S] after time s."""
    A, B, c = model.linear_part(D)
    b = B[neuron] @ u + c[neuron]
    E, F = propagator(A[neuron:neuron + 1], s)
    return (E[0] @ y) + F[0] @ b


def test_hold_freezes_the_clamped_state_in_every_solver():
    model = ctsnn.CubaLIF(tau_syn=5e-3, tau_mem=10e-3)
    p = _problem(model)
    u = model.input_channels(torch.full((1, 3), 1.2, dtype=D))
    y0 = torch.tensor([[[0.3, 0.1], [0.0, 0.5], [0.2, 0.2]]], dtype=D)
    ic = p.clamp_index
    hold = Hold(torch.tensor([[True, False, True]]), ic, y0[..., ic])
    for name in ("exact", "euler", "dopri5", "rk4"):
        solver = get_solver(name)(p)
        solver.begin_step(0.0, u)
        seg = solver.step(0.0, y0, 1e-3, hold)
        y1 = seg.y1.reshape(-1, 2)
        assert torch.equal(y1[[0, 2], ic], y0[0, [0, 2], ic]), name
        assert not torch.equal(y1[1, ic], y0[0, 1, ic]), name


def test_locate_on_the_exact_segment_is_the_closed_form_spike_time():
    # LIF from rest under DC I: v(t) = r I (1 - exp(-t / tau)); crossing at tau ln(rI / (rI - v_th))
    tau, I = 10e-3, 1.5
    model = ctsnn.LIF(tau_mem=tau)
    p = _problem(model, n=1)
    ex = get_solver("exact")(p)
    ex.begin_step(0.0, model.input_channels(torch.full((1, 1), I, dtype=D)))
    seg = ex.step(0.0, torch.zeros(1, 1, 1, dtype=D), 0.02)
    t, e = events.locate(seg, model.event_matrix(D), model.event_offset(D), torch.ones(1, 1, dtype=torch.bool))
    assert int(e) == 0 and abs(float(t) - tau * math.log(I / (I - 1.0))) < 1e-16


def test_event_time_carries_the_implicit_function_gradient():
    # y(s) = p s crosses theta at t* = theta / p: dt*/dp = -theta / p^2, dt*/dtheta = 1 / p
    p = torch.tensor(2.0, dtype=D, requires_grad=True)
    th = torch.tensor([[0.5]], dtype=D, requires_grad=True)
    seg = _segment(lambda s: (p * s)[:, None], lambda s: (p * torch.ones_like(s))[:, None], turns=False)
    G = torch.ones(1, 1, dtype=D)
    t, e = events.locate(seg, G, th)
    assert abs(float(t) - 0.25) < 1e-15 and not t.requires_grad
    ta = events.event_time(seg, torch.arange(1), t, e, G, th)
    assert float(ta.detach()) == float(t)
    gp, gth = torch.autograd.grad(ta.sum(), (p, th))
    assert abs(float(gp) + 0.5 / 4) < 1e-15 and abs(float(gth) - 0.5) < 1e-15


def test_closed_form_crossing_equals_located_time_and_the_compiled_mirror():
    """``events.crossing_time`` (used by discretize's in-step events) equals the crossing that
    ``events.locate`` finds on the Exact solver's dense output, and the fused kernel (its C++
    mirror, kernels/crossing.h) gives the same in-step spike times as the torch path."""
    tau, r, vth = 10e-3, 1.0, 1.0
    I = torch.tensor([1.5, 2.0, 4.0], dtype=D)
    A = torch.full_like(I, -1 / tau)
    d = r * I / tau
    t_cf = events.crossing_time(torch.zeros_like(I), torch.full_like(I, vth), -d / A, A, d)
    assert torch.allclose(t_cf, tau * torch.log(r * I / (r * I - vth)), rtol=1e-14, atol=0)
    # IF (A = 0): a straight line
    t_if = events.crossing_time(torch.zeros(1, dtype=D), torch.ones(1, dtype=D), torch.zeros(1, dtype=D),
                                torch.zeros(1, dtype=D), torch.full((1,), 250.0, dtype=D))
    assert float(t_if) == pytest.approx(1 / 250.0, rel=1e-15)
    # the same crossings found by simulate's located events
    tr = ctsnn.simulate(ctsnn.LIF(tau, r=r, v_th=vth), I[None], t_end=0.03, dt=1e-4, dtype=D)
    for j in range(3):
        first = tr.spike_times[tr.spike_neurons == j].min()
        assert float(first) == pytest.approx(float(t_cf[j]), abs=1e-15)
    # torch in-step path and the fused kernel's in-step path agree
    x = I.expand(300, 3).clone()
    runs = {}
    for backend in ("fused", "torch"):
        layer = ctsnn.discretize(ctsnn.LIF(tau, r=r, v_th=vth, dtype=D), dt=1e-4, events="in_step", input="zoh",
                                 backend=backend)
        with torch.no_grad():
            runs[backend] = layer.run(x, output="sparse").spikes
    fused, by_torch = runs["fused"], runs["torch"]
    assert fused.n_spikes > 10
    assert torch.equal(fused.spike_steps, by_torch.spike_steps)
    assert torch.equal(fused.spike_neurons, by_torch.spike_neurons)
    assert torch.allclose(fused.spike_offsets, by_torch.spike_offsets, rtol=0, atol=1e-15)
    # and both equal the located times of simulate (the in-step times are exact)
    for j in range(3):
        assert float(fused.spike_times[fused.spike_neurons == j][0]) == pytest.approx(float(t_cf[j]), abs=1e-15)
