"""MNLIF (threshold that follows the membrane): closed-form subthreshold solution, spike times
on the engine against torch's exact path and an independent ODE solver, discretize unchanged."""

import numpy as np
import pytest
import torch

import ctsnn

P = dict(tau_mem=0.02, r=1e8, v_leak=-0.07, theta_inf=-0.05, v_reset=-0.065, a=20.0, b=10.0,
         theta_jump=2e-3, tau_w=0.15, w_jump=1e-3)
DT, T = 1e-4, 0.3


def closed_form(t, I, v0, th0, w0, p):
    """v, theta, w of the linear system from (v0 = v_leak + x0, th0, w0) under a constant I."""
    tau, tw, a, b, r = p["tau_mem"], p["tau_w"], p["a"], p["b"], p["r"]
    x0 = v0 - p["v_leak"]
    K = -w0 * tw / (tw - tau)               # x driven by w = w0 exp(-t/tw): K (e^{-t/tw} - e^{-t/tau})
    ex = lambda lam: np.exp(-lam * t)       # noqa: E731
    x = r * I * (1 - ex(1 / tau)) + x0 * ex(1 / tau) + K * (ex(1 / tw) - ex(1 / tau))
    h = lambda lam: (ex(lam) - ex(b)) / (b - lam)   # noqa: E731  response of y' = e^{-lam t} - b y, y(0) = 0
    y = (th0 - p["theta_inf"]) * ex(b) + a * (r * I * ((1 - ex(b)) / b - h(1 / tau)) + x0 * h(1 / tau)
                                              + K * (h(1 / tw) - h(1 / tau)))
    return x + p["v_leak"], y + p["theta_inf"], w0 * ex(1 / tw)


@pytest.mark.parametrize("backend", ["engine", "torch"])
def test_mnlif_subthreshold_matches_closed_form(backend):
    p = dict(P, theta_inf=0.5)             # no spike
    m = ctsnn.MNLIF(**p)
    I, v0, th0, w0 = 0.12e-9, -0.072, 0.49, 3e-3
    n = int(round(T / DT))
    tr = ctsnn.simulate(m, torch.full((n, 1), I, dtype=torch.float64), t_end=T, dt=DT, backend=backend,
                        initial={"v": v0, "theta": th0, "w": w0}, record=("v", "theta", "w"), dtype=torch.float64)
    assert tr.spike_times.numel() == 0
    t = np.arange(tr["v"].shape[0]) * DT
    v, th, w = closed_form(t, I, v0, th0, w0, p)
    np.testing.assert_allclose(tr["v"][:, 0].numpy(), v, rtol=0, atol=1e-12)
    np.testing.assert_allclose(tr["theta"][:, 0].numpy(), th, rtol=0, atol=1e-12)
    np.testing.assert_allclose(tr["w"][:, 0].numpy(), w, rtol=0, atol=1e-14)
    assert abs(th[-1] - th0) > 1e-3 and abs(v[-1] - v0) > 5e-3   # the test moves every state


def _reference_spikes(p, I_of_t, t_end):
    """Spike times by scipy's solve_ivp (tight tolerances, event location), jumps applied by hand."""
    from scipy.integrate import solve_ivp

    def f(t, y):
        v, th, w = y
        return [((p["v_leak"] - v) + p["r"] * I_of_t(t) - w) / p["tau_mem"],
                p["a"] * (v - p["v_leak"]) - p["b"] * (th - p["theta_inf"]), -w / p["tau_w"]]

    ev = lambda t, y: y[0] - y[1]        # noqa: E731
    ev.terminal, ev.direction = True, 1
    y, t0, out = [p["v_leak"], p["theta_inf"], 0.0], 0.0, []
    breaks = [0.05, 0.25, t_end]         # the current's steps: integrate piecewise
    for tb in breaks:
        while t0 < tb:
            sol = solve_ivp(f, (t0, tb), y, events=ev, rtol=1e-12, atol=1e-15, method="DOP853",
                            max_step=1e-3)
            if sol.status == 1:
                ts = float(sol.t_events[0][0])
                yy = sol.y_events[0][0]
                out.append(ts)
                y = [p["v_reset"], yy[1] + p["theta_jump"], yy[2] + p["w_jump"]]
                t0 = ts
            else:
                y, t0 = list(sol.y[:, -1]), tb
    return np.array(out)


def test_mnlif_spike_times_engine_torch_and_ode_reference():
    m = ctsnn.MNLIF(**P)
    n = int(round(T / DT))
    I = np.zeros(n)
    I[500:2500] = 0.5e-9                  # a step from 50 ms to 250 ms
    cur = torch.tensor(I, dtype=torch.float64)[:, None]
    te = ctsnn.simulate(m, cur, t_end=T, dt=DT, backend="engine", dtype=torch.float64).spike_times.numpy()
    tt = ctsnn.simulate(m, cur, t_end=T, dt=DT, backend="torch", dtype=torch.float64).spike_times.numpy()
    ref = _reference_spikes(P, lambda t: 0.5e-9 if 0.05 <= t < 0.25 else 0.0, T)
    assert te.size == tt.size == ref.size >= 2
    np.testing.assert_allclose(te, tt, rtol=0, atol=1e-10)
    np.testing.assert_allclose(te, ref, rtol=0, atol=1e-8)
    # a / b = 2: in the steady state of the step, v - theta = (v_inf - v_leak)(1 - a/b) + v_leak - theta_inf
    # < 0, so the cell fires at the onset (theta lags v by ~1/b) and then falls silent under the step
    x_inf = P["r"] * 0.5e-9
    assert x_inf * (1 - P["a"] / P["b"]) + P["v_leak"] - P["theta_inf"] < 0
    assert te.max() < 0.15 and te.min() > 0.05


def test_mnlif_discretize_equals_simulate_below_threshold():
    m = ctsnn.MNLIF(**dict(P, theta_inf=0.5))
    n_steps = 400
    torch.manual_seed(0)
    x = torch.randn(n_steps, 2, dtype=torch.float64) * 2e-10
    ran = ctsnn.discretize(m, DT, input="zoh").run(x, record_states=True)
    tr = ctsnn.simulate(m, x, t_end=n_steps * DT, dt=DT, record="all", dtype=torch.float64)
    assert ran.out.abs().sum() == 0
    for j, name in enumerate(m.state_names):
        ref = tr[name]
        ref = ref[1:n_steps + 1] if ref.shape[0] == n_steps + 1 else ref
        torch.testing.assert_close(ran.states[..., j], ref.expand_as(ran.states[..., j]), rtol=0, atol=1e-12)


def test_mnlif_refuses_bad_parameters():
    with pytest.raises(ValueError, match="v_reset must be below theta_inf"):
        ctsnn.MNLIF(**dict(P, v_reset=-0.04))
    with pytest.raises(ValueError, match="'b' must be > 0"):
        ctsnn.MNLIF(**dict(P, b=0.0))
    with pytest.raises(ValueError, match="'a' must be >= 0"):
        ctsnn.MNLIF(**dict(P, a=-1.0))
