"""Accuracy of the core simulator against closed-form solutions (float64).

Every expected value here is derived from the model's ODE in closed form (written next to each
test); nothing is a recorded output of ctsnn itself.
"""
import math

import mpmath
import pytest
import torch
from scipy.optimize import brentq

import ctsnn

TAU = 10e-3
DRIVES = torch.tensor([1.05, 1.2, 1.5, 2.0, 3.0, 5.0], dtype=torch.float64)   # r I / v_th


def lif_period(drive, tau=TAU, th=1.0, v0=0.0):
    """Time for tau dv/dt = -v + drive to go from v0 to th: tau ln((drive - v0)/(drive - th))."""
    return tau * math.log((drive - v0) / (drive - th))


@pytest.mark.parametrize("dt", [2e-3, 1e-3, 1e-4, pytest.param(1e-5, marks=pytest.mark.slow)])
def test_lif_dc_sweep_spike_times_and_subthreshold_trace(dt):
    # tau dv/dt = -v + rI, v(0) = 0, reset to 0: spikes at k T with T = tau ln(rI/(rI - th)),
    # and v(t) = rI (1 - exp(-t/tau)) before the first one.
    model = ctsnn.LIF(tau_mem=TAU, v_th=1.0, v_reset=0.0, reset="to_value")
    current = DRIVES.to(torch.float64)[None, :]       # constant, one neuron per drive
    tr = ctsnn.simulate(model, current, t_end=1.0, dt=dt, dtype=torch.float64)
    t = tr.t
    for j, drive in enumerate(DRIVES.tolist()):
        T = lif_period(drive)
        times = tr.spikes(j)
        n_expected = math.floor(1.0 / T)
        assert abs(1.0 / T - round(1.0 / T)) > 1e-6          # no ambiguous last spike
        assert times.shape[0] == n_expected, (drive, times.shape[0], n_expected)
        k = torch.arange(1, n_expected + 1, dtype=torch.float64)
        assert torch.max(torch.abs(times - k * T)) < 1e-12, (drive, float(torch.max(torch.abs(times - k * T))))
        before = t < times[0]
        v_ref = drive * -torch.expm1(-t[before] / TAU)
        assert torch.max(torch.abs(tr["v"][before, j] - v_ref)) < 1e-12


def test_lif_several_spikes_in_one_step():
    # a strong drive with a step of 10 ms: about 4.5 spikes per step, each at k T
    drive = 5.0
    T = lif_period(drive)
    tr = ctsnn.simulate(ctsnn.LIF(tau_mem=TAU), drive, t_end=0.1, dt=10e-3, dtype=torch.float64)
    n = math.floor(0.1 / T)
    assert tr.n_spikes == n
    k = torch.arange(1, n + 1, dtype=torch.float64)
    assert torch.max(torch.abs(tr.spike_times - k * T)) < 1e-12
    # the left limit at each spike is the threshold, the right limit the reset value
    assert torch.allclose(tr.spike_pre[:, 0], torch.ones(n, dtype=torch.float64), atol=1e-12)
    assert torch.all(tr.spike_post[:, 0] == 0)


def _psp_reference(t, w, r, tau_s, tau_m):
    """v(t) of tau_m v' = -v + r i, tau_s i' = -i, i(0) = w, at 50 digits."""
    mpmath.mp.dps = 50
    t, w, r, ts, tm = (mpmath.mpf(float(x)) for x in (t, w, r, tau_s, tau_m))
    if ts == tm:
        return float(w * r * t / tm * mpmath.exp(-t / tm))
    return float(w * r * ts / (tm - ts) * (mpmath.exp(-t / tm) - mpmath.exp(-t / ts)))


@pytest.mark.parametrize("tau_s", [5e-3, 10e-3, 10e-3 + 1e-9, 10e-3 - 1e-12])
def test_cubalif_psp(tau_s):
    # one input spike of weight w at t = 0 into the synaptic current:
    # v(t) = w r tau_s/(tau_m - tau_s) (e^{-t/tau_m} - e^{-t/tau_s}), limit w r (t/tau) e^{-t/tau}
    w, r = 0.8, 1.3
    model = ctsnn.CubaLIF(tau_syn=tau_s, tau_mem=TAU, r=r, v_th=10.0)
    tr = ctsnn.simulate(model, spikes=([0.0], [0], [w]), t_end=0.1, dt=1e-3, dtype=torch.float64,
                        record=("v", "i"))
    ref = torch.tensor([_psp_reference(t, w, r, tau_s, TAU) for t in tr.t.tolist()], dtype=torch.float64)
    assert torch.max(torch.abs(tr["v"][:, 0] - ref)) < 1e-12
    assert torch.max(torch.abs(tr["i"][:, 0] - w * torch.exp(-tr.t / tau_s))) < 1e-15
    # the naive difference-of-exponentials formula loses most of its digits at |dtau| = 1e-9
    if abs(tau_s - TAU) < 1e-8 and tau_s != TAU:
        t = tr.t[1:]
        naive = w * r * tau_s / (TAU - tau_s) * (torch.exp(-t / TAU) - torch.exp(-t / tau_s))
        assert torch.max(torch.abs(naive - ref[1:])) > 1e-10       # the test can tell


def _psp_peak(tau_s, tau_m):
    return math.log(tau_m / tau_s) / (1 / tau_s - 1 / tau_m)


def test_hidden_crossing_inside_one_step_is_found_and_timed():
    # The PSP rises above a threshold just under its peak and falls back within one 20 ms step:
    # no grid point sees it. The crossing time solves v(t) = v_th on [0, t_peak].
    tau_s, w = 2e-3, 1.0
    tp = _psp_peak(tau_s, TAU)
    vmax = _psp_reference(tp, w, 1.0, tau_s, TAU)
    for frac in (0.999999, 0.99, 0.9):
        th = frac * vmax
        model = ctsnn.CubaLIF(tau_syn=tau_s, tau_mem=TAU, v_th=th)
        tr = ctsnn.simulate(model, spikes=([0.003], [0], [w]), t_end=0.04, dt=20e-3,
                            dtype=torch.float64)
        mpmath.mp.dps = 50
        t_ref = float(mpmath.findroot(lambda x: _mp_psp(x, w, tau_s, TAU) - th,
                                      (mpmath.mpf(0), mpmath.mpf(tp)), solver="anderson"))
        assert tr.n_spikes == 1, frac
        assert abs(float(tr.spike_times[0]) - (0.003 + t_ref)) < 1e-10, frac
        # the grid saw nothing above threshold
        assert float(tr["v"].max()) < th


def _mp_psp(t, w, tau_s, tau_m):
    ts, tm = mpmath.mpf(tau_s), mpmath.mpf(tau_m)
    return w * ts / (tm - ts) * (mpmath.exp(-t / tm) - mpmath.exp(-t / ts))


def test_near_miss_gives_no_spike():
    tau_s, w = 2e-3, 1.0
    vmax = _psp_reference(_psp_peak(tau_s, TAU), w, 1.0, tau_s, TAU)
    for dt in (20e-3, 1e-3, 1e-4):
        model = ctsnn.CubaLIF(tau_syn=tau_s, tau_mem=TAU, v_th=vmax * (1 + 1e-9))
        tr = ctsnn.simulate(model, spikes=([0.003], [0], [w]), t_end=0.04, dt=dt, dtype=torch.float64)
        assert tr.n_spikes == 0, dt


@pytest.mark.parametrize("tau_adapt,jump", [(50e-3, 0.5), (200e-3, 0.1)])
def test_alif_steady_isi(tau_adapt, jump):
    # Threshold adaptation, reset to 0. In steady state b drops from b* to b* e^{-T/ta} over one
    # interval and jumps by `jump` at the spike, so at the spike b = jump/(e^{T/ta} - 1) and
    # rI (1 - e^{-T/tau_m}) = v_th + jump / (e^{T/tau_adapt} - 1).
    rI = 2.5
    model = ctsnn.ALIF(tau_mem=TAU, tau_adapt=tau_adapt, adapt_jump=jump, adaptation="threshold")
    tr = ctsnn.simulate(model, rI, t_end=3.0, dt=1e-3, dtype=torch.float64, record=())
    isi = torch.diff(tr.spike_times)

    def f(T):
        return rI * -math.expm1(-T / TAU) - 1.0 - jump / math.expm1(T / tau_adapt)

    T = brentq(f, 1e-6, 1.0, xtol=1e-16, rtol=1e-15)
    assert abs(float(isi[-1]) / T - 1) < 1e-9
    assert abs(float(isi[0]) / T - 1) > 1e-3          # the adaptation is really there


def test_euler_converges_at_order_one():
    # Euler spike times approach the exact ones with error ~ dt: fit the slope of log(error)
    # against log(dt), averaging over many spikes and drives so that grid quantisation averages out.
    drives = torch.linspace(1.3, 3.0, 24, dtype=torch.float64)[None, :]
    model = ctsnn.LIF(tau_mem=TAU)
    exact = ctsnn.simulate(model, drives, t_end=0.1, dt=1e-3, record=())
    dts = [4e-4, 2e-4, 1e-4, 5e-5]
    errs = []
    for dt in dts:
        eu = ctsnn.simulate(model, drives, t_end=0.1, dt=dt, method="euler", record=())
        e = []
        for j in range(drives.shape[1]):
            a, b = exact.spikes(j), eu.spikes(j)
            n = min(a.shape[0], b.shape[0], 3)
            e.append(torch.abs(a[:n] - b[:n]).mean())
        errs.append(float(torch.stack(e).mean()))
    x = torch.log(torch.tensor(dts))
    y = torch.log(torch.tensor(errs))
    slope = float(((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum())
    assert 0.8 < slope < 1.2, (slope, errs)
    ratios = [errs[i] / errs[i + 1] for i in range(len(errs) - 1)]
    assert all(1.6 < q < 2.5 for q in ratios), ratios


# ---------------------------------------------------------------------------- any units
def _mp_spike_times(p, t_end):
    """Spike times of a CubaLIF / threshold-ALIF under DC ``I`` with initial synaptic current
    ``i0``, from the analytic solution at 40 digits. On a free segment starting at s with state
    (v0, i0, b0), with u = t - s:

        v(u) = v_leak + r I (1 - e^{-u/tm}) + (v0 - v_leak) e^{-u/tm} + C (e^{-u/ts} - e^{-u/tm}),
        C = r i0 ts / (ts - tm),   i(u) = i0 e^{-u/ts},   b(u) = b0 e^{-u/ta};

    a spike at the first root of v - v_th - b, then v -> v_reset, b -> b + jump, and v is held
    for t_ref while i and b decay (the next segment starts at T + t_ref)."""
    mpmath.mp.dps = 40
    f = {k: mpmath.mpf(v) for k, v in p.items()}
    tm, ts, ta = f["tm"], f["ts"], f["ta"]
    s, v0, i0, b0 = mpmath.mpf(0), f["vl"], f["i0"], f["b0"]
    t_end = mpmath.mpf(t_end)
    out = []
    h = min(tm, ts, ta) / 40
    while True:
        C = f["r"] * i0 * ts / (ts - tm)

        def g(u, v0=v0, i0=i0, b0=b0, C=C):
            em = mpmath.exp(-u / tm)
            v = f["vl"] + f["r"] * f["I"] * (1 - em) + (v0 - f["vl"]) * em + C * (mpmath.exp(-u / ts) - em)
            return v - f["vth"] - b0 * mpmath.exp(-u / ta)

        lo, found = mpmath.mpf(0), False
        while s + lo < t_end:
            hi = lo + h
            if g(hi) >= 0:
                found = True
                break
            lo = hi
        if not found:
            return out
        u = mpmath.findroot(g, (lo, hi), solver="anderson")
        T = s + u
        if T >= t_end:
            return out
        out.append(float(T))
        i_T, b_T = i0 * mpmath.exp(-u / ts), b0 * mpmath.exp(-u / ta) + f["jump"]
        s = T + f["tref"]
        v0 = f["vr"]
        i0 = i_T * mpmath.exp(-f["tref"] / ts)
        b0 = b_T * mpmath.exp(-f["tref"] / ta)


SI = dict(tm=10e-3, ts=2e-3, vl=-70e-3, vth=-50e-3, vr=-70e-3, tref=2e-3, ta=50e-3)
UNITLESS = dict(tm=1.0, ts=0.2, vl=0.0, vth=1.0, vr=0.0, tref=0.2, ta=5.0)


@pytest.mark.parametrize("kind", ["cuba", "alif"])
@pytest.mark.parametrize("units,r", [("si", 1e6), ("si", 4e7), ("si", 1e10), ("unitless", 1.0)])
def test_spike_times_equal_the_analytic_solution_in_any_units(kind, units, r):
    # CubaLIF and threshold-ALIF (with a synaptic current), DC plus a decaying initial synaptic
    # current, t_ref > 0: every spike time equals the 40-digit analytic one to 1e-11 tau_mem
    # (1e-13 s in SI units), whatever the scale of r (A holds r / tau_mem next to 1 / tau_mem).
    base = SI if units == "si" else UNITLESS
    gap = base["vth"] - base["vl"]
    p = dict(base, r=r, I=2.0 * gap / r, i0=2.0 * gap / r, b0=0.0,
             jump=(0.25 * gap if kind == "alif" else 0.0))
    if kind == "cuba":
        model = ctsnn.CubaLIF(tau_syn=p["ts"], tau_mem=p["tm"], r=r, v_leak=p["vl"], v_th=p["vth"],
                              v_reset=p["vr"], t_ref=p["tref"])
    else:
        model = ctsnn.ALIF(tau_mem=p["tm"], tau_adapt=p["ta"], adapt_jump=p["jump"], r=r,
                           v_leak=p["vl"], v_th=p["vth"], v_reset=p["vr"], t_ref=p["tref"],
                           tau_syn=p["ts"])
    t_end, dt = 8 * p["tm"], p["tm"] / 100
    tr = ctsnn.simulate(model, p["I"], t_end=t_end, dt=dt, initial={"i": p["i0"]},
                        dtype=torch.float64, record=())
    ref = torch.tensor(_mp_spike_times(p, t_end), dtype=torch.float64)
    assert ref.shape[0] >= 5
    assert tr.n_spikes == ref.shape[0]
    err = float((tr.spike_times - ref).abs().max())
    assert err < 1e-11 * p["tm"], err
