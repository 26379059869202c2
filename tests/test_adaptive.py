"""torchdiffeq methods with ctsnn event location: closed forms, agreement with the exact method,
Euler's order, independence of the elements, bad input."""
import math

import numpy as np
import pytest
import torch

import ctsnn
from ctsnn.solvers import ADAPTIVE_METHODS, FIXED_METHODS

TAU, I, TH = 0.02, 1.5, 1.0
T1 = TAU * math.log(I / (I - TH))          # LIF under DC: k-th spike at k*T1
TIGHT = dict(rtol=1e-9, atol=1e-12)


def _run(model, method, **kw):
    opts = dict(TIGHT) if method in ADAPTIVE_METHODS else {}
    opts.update(kw.pop("opts", {}))
    return ctsnn.simulate(model, method=method, dtype=torch.float64, **kw, **opts)


def _same_spikes(a, b, tol):
    assert a.spike_times.shape == b.spike_times.shape, (a.spike_times.shape, b.spike_times.shape)
    assert torch.equal(a.spike_neurons, b.spike_neurons)
    err = (a.spike_times - b.spike_times).abs().max().item() if a.spike_times.numel() else 0.0
    assert err < tol, err
    return err


# tolerance per method chosen so the test stays fast; error bound derived from the tolerance
CASES = {"dopri5": (TIGHT, 1e-7), "dopri8": (TIGHT, 1e-7),
         "bosh3": (dict(rtol=1e-8, atol=1e-11), 1e-6),
         "fehlberg2": (dict(rtol=1e-6, atol=1e-9), 1e-5),
         "adaptive_heun": (dict(rtol=1e-6, atol=1e-9), 1e-5),
         "rk4": ({}, 1e-7), "heun3": ({}, 2e-6), "midpoint": ({}, 1e-4), "heun2": ({}, 1e-4),
         "torchdiffeq_euler": ({"step_size": 2e-5}, 1e-4)}


@pytest.mark.parametrize("method", list(CASES))
def test_lif_dc_closed_form(method):
    opts, tol = CASES[method]
    t_end = {"fehlberg2": 0.05, "adaptive_heun": 0.05, "torchdiffeq_euler": 0.05}.get(method, 0.1)
    tr = ctsnn.simulate(ctsnn.LIF(tau_mem=TAU), current=I, t_end=t_end, dt=1e-3, method=method,
                        dtype=torch.float64, **opts)
    k = int(t_end / T1)
    assert tr.spike_times.shape[0] == k
    err = (tr.spike_times - T1 * torch.arange(1, k + 1, dtype=torch.float64)).abs().max().item()
    assert err < tol, err


def test_torchdiffeq_private_interface_is_the_tested_one(monkeypatch):
    """The adaptive solvers drive torchdiffeq's private step interface (pyproject pins the release
    it was tested with). The installed torchdiffeq must have every piece with the signature ctsnn
    calls and the method orders ctsnn states (the closed-form test above checks the trajectories);
    a release that drops or changes one is refused by name, before any run."""
    from ctsnn.solvers import adaptive
    td = adaptive.torchdiffeq_internals()
    for name, order in adaptive.ORDERS.items():
        assert getattr(td["SOLVERS"][name], "order", None) == order, name
        cls = ctsnn.solvers.get_solver(name if name != "euler" else "torchdiffeq_euler")
        assert cls.order == order and f"order {order}" in cls.__doc__
    # an incompatible release: a private method renamed, or a signature changed
    dopri5 = td["SOLVERS"]["dopri5"]
    for attr, value, needle in (("_adaptive_step", None, "_adaptive_step"),
                                ("_before_integrate", lambda self, t_grid: None, "_before_integrate")):
        monkeypatch.setattr(adaptive, "_INTERNALS", {})
        monkeypatch.setattr(dopri5, attr, value)
        with pytest.raises(ImportError, match=rf"{needle}.*torchdiffeq=={adaptive.TESTED_TORCHDIFFEQ}"):
            ctsnn.simulate(ctsnn.LIF(TAU), 1.5, t_end=0.01, dt=1e-3, method="dopri5")
        monkeypatch.undo()


def _scenarios():
    g = torch.Generator().manual_seed(0)
    t_in = torch.sort(torch.rand(12, generator=g, dtype=torch.float64) * 0.08).values
    spikes = (t_in, torch.zeros(12, dtype=torch.long), torch.full((12,), 0.6, dtype=torch.float64))
    cur = 1.0 + 1.5 * torch.rand(100, 3, generator=g, dtype=torch.float64)
    yield "CubaLIF", ctsnn.CubaLIF(tau_syn=5e-3, tau_mem=TAU), dict(current=1.3, spikes=spikes)
    yield "ALIF-threshold", ctsnn.ALIF(tau_mem=TAU, tau_adapt=0.05, adapt_jump=0.2), dict(current=cur)
    yield "ALIF-current", ctsnn.ALIF(tau_mem=TAU, tau_adapt=0.05, adapt_jump=0.3, adaptation="current",
                                     tau_syn=4e-3), dict(current=cur)
    yield "LIT", ctsnn.LIT(tau_mem=TAU, pos_th=1.0, neg_th=0.7, n=3), \
        dict(current=torch.sin(torch.linspace(0, 12, 100, dtype=torch.float64))[:, None] * 4 *
             torch.tensor([1.0, 0.7, 1.3], dtype=torch.float64))
    yield "LIF-subtract", ctsnn.LIF(tau_mem=TAU, reset="subtract", n=3), dict(current=cur, spikes=spikes)


@pytest.mark.parametrize("name,model,kw", list(_scenarios()), ids=[s[0] for s in _scenarios()])
def test_dopri_agrees_with_exact(name, model, kw):
    ex = ctsnn.simulate(model, method="exact", t_end=0.1, dt=1e-3, dtype=torch.float64, **kw)
    assert ex.spike_times.numel() >= 5
    for m in ("dopri5", "dopri8"):
        ad = ctsnn.simulate(model, method=m, t_end=0.1, dt=1e-3, dtype=torch.float64, **TIGHT, **kw)
        _same_spikes(ex, ad, 1e-7)
        # states on the grid agree too
        assert torch.allclose(ex["v"], ad["v"], atol=1e-7)


SCEN_TOL = {"dopri5": (TIGHT, 1e-7), "dopri8": (TIGHT, 1e-7), "bosh3": (dict(rtol=1e-8, atol=1e-11), 1e-6),
            "fehlberg2": (dict(rtol=1e-6, atol=1e-9), 2e-5), "adaptive_heun": (dict(rtol=1e-6, atol=1e-9), 2e-5),
            "rk4": (dict(step_size=1e-4), 1e-7), "heun3": (dict(step_size=1e-4), 1e-5),
            "midpoint": (dict(step_size=1e-4), 1e-4)}


@pytest.mark.parametrize("method", list(SCEN_TOL))
def test_every_method_cubalif_input_spikes(method):
    """Every torchdiffeq method: same spike sequence as the exact method on a CubaLIF neuron with
    off-grid input spikes (input discontinuities stepped to exactly)."""
    g = torch.Generator().manual_seed(5)
    t_in = torch.sort(torch.rand(8, generator=g, dtype=torch.float64) * 0.04).values
    spikes = (t_in, torch.zeros(8, dtype=torch.long), torch.full((8,), 1.5, dtype=torch.float64))
    model = ctsnn.CubaLIF(tau_syn=5e-3, tau_mem=TAU)
    ex = ctsnn.simulate(model, current=1.1, spikes=spikes, method="exact", t_end=0.04, dt=1e-3,
                        dtype=torch.float64)
    assert ex.spike_times.numel() >= 3
    opts, tol = SCEN_TOL[method]
    tr = ctsnn.simulate(model, current=1.1, spikes=spikes, method=method, t_end=0.04, dt=1e-3,
                        dtype=torch.float64, **opts)
    _same_spikes(ex, tr, tol)


@pytest.mark.slow
def test_recurrent_network_all_to_all_delays():
    n = 20
    g = torch.Generator().manual_seed(3)
    W = 0.4 * torch.randn(n, n, generator=g, dtype=torch.float64) / math.sqrt(n)
    W.fill_diagonal_(0.0)
    model = ctsnn.Recurrent(ctsnn.CubaLIF(tau_syn=5e-3, tau_mem=TAU, n=n), weight=W, delay=1.5e-3)
    cur = 1.1 + 0.6 * torch.rand(1, n, generator=g, dtype=torch.float64)
    ex = ctsnn.simulate(model, current=cur, method="exact", t_end=0.06, dt=1e-3, dtype=torch.float64)
    ad = ctsnn.simulate(model, current=cur, method="dopri5", t_end=0.06, dt=1e-3, dtype=torch.float64,
                        **TIGHT)
    assert ex.spike_times.numel() >= 20
    _same_spikes(ex, ad, 1e-7)


def test_recurrent_zero_delay_all_to_all():
    n = 5
    g = torch.Generator().manual_seed(1)
    W = 0.3 * torch.rand(n, n, generator=g, dtype=torch.float64)
    model = ctsnn.Recurrent(ctsnn.LIF(tau_mem=TAU, n=n), weight=W)
    cur = 1.05 + 0.5 * torch.rand(1, n, generator=g, dtype=torch.float64)
    ex = ctsnn.simulate(model, current=cur, method="exact", t_end=0.05, dt=1e-3, dtype=torch.float64)
    ad = ctsnn.simulate(model, current=cur, method="dopri5", t_end=0.05, dt=1e-3, dtype=torch.float64,
                        **TIGHT)
    assert ex.spike_times.numel() >= 5
    _same_spikes(ex, ad, 1e-7)


def test_elements_independent():
    """One population of neurons with different inputs = each neuron simulated alone."""
    cur = torch.tensor([1.2, 1.5, 2.3, 3.1], dtype=torch.float64)
    cur2 = cur[None]
    model = ctsnn.LIF(tau_mem=TAU, n=4)
    pop = _run(model, "dopri5", current=cur2, t_end=0.05, dt=1e-3)
    for j in range(4):
        alone = _run(ctsnn.LIF(tau_mem=TAU), "dopri5", current=float(cur[j]), t_end=0.05, dt=1e-3)
        mine = pop.spike_times[pop.spike_neurons == j]
        assert mine.shape == alone.spike_times.shape
        k = torch.arange(1, mine.shape[0] + 1, dtype=torch.float64)
        ref = k * TAU * math.log(float(cur[j]) / (float(cur[j]) - TH))
        assert (mine - ref).abs().max() < 1e-7
        assert (mine - alone.spike_times).abs().max() < 1e-7


def test_euler_order_one():
    errs, dts = [], [4e-5, 2e-5, 1e-5, 5e-6]
    model = ctsnn.CubaLIF(tau_syn=5e-3, tau_mem=TAU)
    ex = ctsnn.simulate(model, current=1.6, method="exact", t_end=0.03, dt=1e-3, dtype=torch.float64)
    for dt in dts:
        eu = ctsnn.simulate(model, current=1.6, method="euler", t_end=0.03, dt=dt, dtype=torch.float64)
        assert eu.spike_times.shape == ex.spike_times.shape
        errs.append((eu.spike_times - ex.spike_times).abs().max().item())
    slope = np.polyfit(np.log(dts), np.log(errs), 1)[0]
    assert 0.8 < slope < 1.3, (slope, errs)


def test_fixed_grid_order_rk4():
    """rk4 spike times converge with order ~4 in step_size (events on the Hermite interpolant
    limit it to the interpolant's order 3 at worst)."""
    errs, hs = [], [1e-3, 5e-4, 2.5e-4]
    model = ctsnn.CubaLIF(tau_syn=5e-3, tau_mem=TAU)
    ex = ctsnn.simulate(model, current=1.6, method="exact", t_end=0.03, dt=1e-3, dtype=torch.float64)
    for h in hs:
        tr = ctsnn.simulate(model, current=1.6, method="rk4", t_end=0.03, dt=1e-3, dtype=torch.float64,
                            step_size=h)
        errs.append((tr.spike_times - ex.spike_times).abs().max().item())
    slope = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert slope > 2.8, (slope, errs)


def test_float32_runs():
    tr = ctsnn.simulate(ctsnn.LIF(tau_mem=TAU), current=I, t_end=0.05, dt=1e-3, method="dopri5",
                        dtype=torch.float32, rtol=1e-5, atol=1e-6)
    k = int(0.05 / T1)
    assert tr.spike_times.shape[0] == k
    assert (tr.spike_times - T1 * torch.arange(1, k + 1, dtype=torch.float64)).abs().max() < 1e-5


# ---------------------------------------------------------------- bad input
def test_unknown_method_lists_valid():
    with pytest.raises(ValueError, match="dopri5"):
        ctsnn.simulate(ctsnn.LIF(tau_mem=TAU), current=I, t_end=0.01, dt=1e-3, method="dopri99")


@pytest.mark.parametrize("opt", [dict(rtol=0), dict(atol=-1e-9), dict(rtol=float("nan")),
                                 dict(rtol="x")])
def test_bad_tolerances(opt):
    name = next(iter(opt))
    with pytest.raises(ValueError, match=name):
        ctsnn.simulate(ctsnn.LIF(tau_mem=TAU), current=I, t_end=0.01, dt=1e-3, method="dopri5", **opt)


@pytest.mark.parametrize("method", ["exact", "euler"])
def test_tolerances_rejected_for_grid_methods(method):
    with pytest.raises(ValueError, match="rtol"):
        ctsnn.simulate(ctsnn.LIF(tau_mem=TAU), current=I, t_end=0.01, dt=1e-3, method=method, rtol=1e-6)


def test_fixed_grid_rejects_rtol_and_bad_step():
    with pytest.raises(ValueError, match="rtol"):
        ctsnn.simulate(ctsnn.LIF(tau_mem=TAU), current=I, t_end=0.01, dt=1e-3, method="rk4", rtol=1e-6)
    with pytest.raises(ValueError, match="step_size"):
        ctsnn.simulate(ctsnn.LIF(tau_mem=TAU), current=I, t_end=0.01, dt=1e-3, method="rk4", step_size=0)


REFRACTORY_MODELS = {
    "lif": lambda: ctsnn.LIF(tau_mem=TAU, v_th=TH, t_ref=2e-3),
    "cubalif": lambda: ctsnn.CubaLIF(tau_mem=TAU, tau_syn=5e-3, v_th=TH, t_ref=2e-3),
    "alif_threshold": lambda: ctsnn.ALIF(tau_mem=TAU, v_th=TH, t_ref=3e-3, tau_adapt=0.05, adapt_jump=0.1),
    "alif_current": lambda: ctsnn.ALIF(tau_mem=TAU, v_th=TH, t_ref=3e-3, tau_adapt=0.05, adapt_jump=0.2,
                                       adaptation="current"),
}


@pytest.mark.parametrize("name,method", [(n, m) for m in ADAPTIVE_METHODS + ("rk4",) for n in sorted(REFRACTORY_MODELS)
                                         if m != "adaptive_heun" or n == "lif"])  # ~50 s per model
def test_refractory_period_matches_exact(name, method):
    """t_ref > 0: the clamped v has zero drift until its release, integration stops at each
    release; every spike agrees with the exact method (LIF: k-th spike at k T1 + (k-1) t_ref)."""
    model = REFRACTORY_MODELS[name]()
    cur = 3.0 if name != "alif_current" else 4.0
    # the low-order pairs need many steps at these tolerances: a shorter run (2+ spikes) for them
    t_end = 0.1 if method in ("dopri5", "dopri8", "rk4") else 0.025
    ref = ctsnn.simulate(model, current=cur, t_end=t_end, dt=1e-3, dtype=torch.float64)
    opts = {"opts": {"step_size": 1e-5}} if method == "rk4" else {}
    tr = _run(model, method, current=cur, t_end=t_end, dt=1e-3, **opts)
    assert ref.n_spikes >= (6 if t_end == 0.1 else 2)
    _same_spikes(tr, ref, 1e-7)
    torch.testing.assert_close(tr["v"], ref["v"], rtol=0, atol=1e-6)
    if name == "lif":
        t1 = TAU * math.log(cur / (cur - TH))
        k = torch.arange(ref.n_spikes, dtype=torch.float64)
        torch.testing.assert_close(ref.spike_times, (k + 1) * t1 + k * 2e-3, rtol=0, atol=1e-12)


def test_refractory_release_is_a_restart_point_for_fixed_grid():
    """rk4's last stage sits exactly on a release; it must see the held (left-limit) drift:
    with the hold leaking into that stage the error was first order in the step size."""
    model = REFRACTORY_MODELS["lif"]()
    ref = ctsnn.simulate(model, current=3.0, t_end=0.05, dt=1e-3, dtype=torch.float64)
    errs = [(_run(model, "rk4", current=3.0, t_end=0.05, dt=1e-3, opts={"step_size": h}).spike_times
             - ref.spike_times).abs().max().item() for h in (1e-4, 5e-5)]
    assert errs[0] < 1e-10 and errs[1] < errs[0]


def test_callable_current_continuous():
    """A ramp I(t) = s t: v(t) = r s (t - tau (1 - exp(-t/tau))) in closed form; the adaptive
    method evaluates I(t) inside the steps, so its first spike matches the root of v = v_th."""
    from scipy.optimize import brentq
    s = 60.0
    t1 = brentq(lambda t: s * (t - TAU * (1 - math.exp(-t / TAU))) - TH, 1e-4, 0.5, xtol=1e-15)
    tr = ctsnn.simulate(ctsnn.LIF(tau_mem=TAU), current=lambda t: s * t, t_end=0.06, dt=1e-3,
                        method="dopri5", dtype=torch.float64, **TIGHT)
    assert tr.spike_times.shape[0] >= 1
    assert abs(float(tr.spike_times[0]) - t1) < 1e-8
    # the exact method holds I over each step: visibly different (order dt)
    ex = ctsnn.simulate(ctsnn.LIF(tau_mem=TAU), current=lambda t: s * t, t_end=0.06, dt=1e-3,
                        dtype=torch.float64)
    assert abs(float(ex.spike_times[0]) - t1) > 1e-5


@pytest.mark.parametrize("kind", ["LIF-batch", "DualLIT", "Recurrent-trace"])
def test_batched_dual_and_trace_recurrence(kind):
    """Batch axis, sign-split input channels and the recurrent trace state, against exact."""
    g = torch.Generator().manual_seed(2)
    cur = 1.5 + 2 * torch.rand(60, 2, 3, generator=g, dtype=torch.float64)
    if kind == "LIF-batch":
        model = ctsnn.LIF(tau_mem=TAU, n=3)
    elif kind == "DualLIT":
        model = ctsnn.DualLIT(tau_pos=TAU, tau_neg=0.01, n=3)
        cur = cur * torch.sign(torch.randn(60, 2, 3, generator=g, dtype=torch.float64))
    else:
        model = ctsnn.Recurrent(ctsnn.LIF(tau_mem=TAU, n=3), tau_rec=5e-3, rec_weight=-0.5)
    ex = ctsnn.simulate(model, current=cur, t_end=0.06, dt=1e-3, dtype=torch.float64, record=())
    ad = ctsnn.simulate(model, current=cur, t_end=0.06, dt=1e-3, dtype=torch.float64, record=(),
                        method="dopri5", **TIGHT)
    assert ex.spike_times.numel() >= 6
    _same_spikes(ex, ad, 1e-7)


def test_crossing_inside_one_step_is_found():
    """A PSP that rises just above threshold and falls back inside one accepted step (g < 0 at
    both step ends): found on the dense solution through the maximum of g. Without that search
    loose dopri5 (13 steps over 50 ms) and rk4 at 2 ms steps missed this spike."""
    m = ctsnn.CubaLIF(tau_mem=0.02, tau_syn=0.005, v_th=1.0, v_reset=0.0)
    probe = ctsnn.simulate(m.replace(v_th=100.0), None, (torch.tensor([1e-3]), torch.tensor([0]),
                           torch.tensor([1.0])), t_end=0.05, dt=1e-5, dtype=torch.float64)
    w = 1.002 / float(probe["v"].max())              # PSP peak 0.2% above threshold
    sp = (torch.tensor([1e-3]), torch.tensor([0]), torch.tensor([w]))
    ref = ctsnn.simulate(m, None, sp, t_end=0.05, dt=1e-3, dtype=torch.float64)
    assert ref.n_spikes == 1
    loose = ctsnn.simulate(m, None, sp, t_end=0.05, dt=0.05, method="dopri5", rtol=1e-3, atol=1e-3,
                           dtype=torch.float64)
    coarse = ctsnn.simulate(m, None, sp, t_end=0.05, dt=0.05, method="rk4", step_size=2e-3,
                            dtype=torch.float64)
    for tr, tol in ((loose, 1e-5), (coarse, 1e-4)):
        assert tr.n_spikes == 1
        assert abs(float(tr.spike_times[0] - ref.spike_times[0])) < tol
