"""Event location against high-precision references: the bracketed root finder of ``ctsnn.events``
on functions with a known root, and the exact method's in-step spike times (LIF: closed form;
CubaLIF: a 40-digit root of its analytic solution) for random parameters, drives, initial states
and grid steps. The crossing is located inside the step, so the spike time must not depend on
where the grid puts the step boundaries."""
import math

import mpmath
import pytest
import torch

import ctsnn
from ctsnn.events import bracketed_root

hyp = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

SETTINGS = settings(max_examples=15, deadline=None, derandomize=True)
EPS = torch.finfo(torch.float64).eps


def log_uniform(lo, hi):
    return st.floats(math.log10(lo), math.log10(hi)).map(lambda x: 10.0 ** x)


@SETTINGS
@given(k=st.lists(log_uniform(1e-3, 1e3), min_size=4, max_size=4),
       x0=st.lists(st.floats(0.01, 0.99), min_size=4, max_size=4), xtol=log_uniform(1e-15, 1e-6))
def test_bracketed_root_finds_the_known_root_elementwise(k, x0, xtol):
    # f(x) = expm1(k (x - x0)): root x0, from nearly linear (k = 1e-3) to very skewed (k = 1e3,
    # f(hi) ~ e^1000 - where plain regula falsi stalls); each element converges on its own to
    # the smallest bracket end with f >= 0, within xtol of the root.
    k_, x0_ = torch.tensor(k, dtype=torch.float64), torch.tensor(x0, dtype=torch.float64)
    f = lambda x: torch.expm1(k_ * (x - x0_))  # noqa: E731
    lo, hi = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    x = bracketed_root(f, lo, hi, f(lo), f(hi), xtol=xtol)
    assert bool((f(x) >= 0).all())
    assert bool(((x - x0_).abs() <= xtol + 4 * EPS).all()), (x - x0_)
    for j in (0, 3):            # the same answer alone as in the batch
        fj = lambda t, j=j: torch.expm1(k_[j] * (t - x0_[j]))  # noqa: E731
        xj = bracketed_root(fj, lo[j:j + 1], hi[j:j + 1], fj(lo[j:j + 1]), fj(hi[j:j + 1]), xtol=xtol)
        assert float(xj) == float(x[j])


def _lif_first_spike(tau, v_inf, v0, th):
    """tau ln((v_inf - v0) / (v_inf - th)) at 50 digits."""
    mpmath.mp.dps = 50
    tau, v_inf, v0, th = (mpmath.mpf(x) for x in (tau, v_inf, v0, th))
    return float(tau * mpmath.log((v_inf - v0) / (v_inf - th)))


@SETTINGS
@given(tau=log_uniform(1e-3, 1.0), drive=st.floats(1.01, 50.0), v0=st.floats(-1.0, 0.99),
       steps=st.floats(0.05, 20.0))
def test_lif_in_step_spike_time_is_the_closed_form(tau, drive, v0, steps):
    # tau v' = -v + I, spike at v = 1, started at v0 < 1; dt from 1/20 to 20 of the time to the
    # spike, so the crossing falls anywhere inside a step (or in the first one)
    t1 = _lif_first_spike(tau, drive, v0, 1.0)
    dt = t1 / steps
    tr = ctsnn.simulate(ctsnn.LIF(tau_mem=tau), drive, t_end=1.5 * t1, dt=dt, initial={"v": v0},
                        dtype=torch.float64, record=())
    assert tr.n_spikes >= 1
    # rounding: eps of the time itself, plus eps of v (size max(I, 1)) over the slope at threshold
    slope = (drive - 1.0) / tau
    tol = 8 * EPS * (t1 + max(drive, 1.0) / slope)          # measured: up to 1.7 of the unit
    assert abs(float(tr.spike_times[0]) - t1) <= tol, (float(tr.spike_times[0]), t1)


def _cuba_first_spike(tm, ts, r, I, i0, th):
    """First root of v(t) = r I (1 - e^{-t/tm}) + r i0 ts/(ts - tm) (e^{-t/ts} - e^{-t/tm}) - th
    (v(0) = 0, tm v' = -v + r (i + I), ts i' = -i), at 40 digits; None if none before 20 tm."""
    import numpy as np

    def g64(u):   # float64, only to bracket the first root on a fine grid
        em = np.exp(-u / tm)
        return r * I * (1 - em) + r * i0 * ts / (ts - tm) * (np.exp(-u / ts) - em) - th

    grid = np.linspace(0.0, 20 * tm, int(20 * tm / (min(tm, ts) / 50)) + 2)
    above = np.nonzero(g64(grid) >= 0)[0]
    if above.size == 0:
        return None, None
    j = int(above[0])
    mpmath.mp.dps = 40
    tm, ts, r, I, i0, th = (mpmath.mpf(x) for x in (tm, ts, r, I, i0, th))

    def g(u):
        em = mpmath.exp(-u / tm)
        return r * I * (1 - em) + r * i0 * ts / (ts - tm) * (mpmath.exp(-u / ts) - em) - th

    t = mpmath.findroot(g, (mpmath.mpf(grid[j - 1]), mpmath.mpf(grid[j])), solver="anderson")
    return float(t), float(mpmath.diff(g, t))


@SETTINGS
@given(tm=log_uniform(1e-3, 0.1), ratio=st.floats(0.05, 0.9), drive=st.floats(0.2, 3.0),
       kick=st.floats(0.0, 20.0), steps=st.floats(0.2, 10.0))
def test_cubalif_in_step_spike_time_matches_a_40_digit_root(tm, ratio, drive, kick, steps):
    # a two-state crossing (no closed form): DC drive plus a decaying initial synaptic current
    ts = ratio * tm
    t1, slope = _cuba_first_spike(tm, ts, 1.0, drive, kick, 1.0)
    if t1 is None:
        return
    dt = t1 / steps
    tr = ctsnn.simulate(ctsnn.CubaLIF(tau_syn=ts, tau_mem=tm), drive, t_end=1.2 * t1, dt=dt,
                        initial={"i": kick}, dtype=torch.float64, record=())
    assert tr.n_spikes >= 1
    # as for LIF: eps of the time, plus eps of the states (size max(I, i0, 1)) over the slope
    tol = 8 * EPS * (t1 + max(drive, kick, 1.0) / slope)
    assert abs(float(tr.spike_times[0]) - t1) <= tol, (float(tr.spike_times[0]), t1)
