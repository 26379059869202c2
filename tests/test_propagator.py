"""The exact propagator (E, F) = (e^{A t}, int_0^t e^{A s} ds): identities and accuracy in any units.

References: mpmath's matrix exponential of the augmented matrix [[A t, I t], [0, 0]] at 50 digits,
and the closed forms of the current-based synapse, including the coincident-tau limit. ``A`` comes
from the models' own ``linear_part``; tolerances are entrywise, relative to the size of each entry
(or, for products, to the product of the absolute values), so that small entries next to large
ones are checked as strictly as the large ones.
"""
import math

import mpmath
import pytest
import torch

import ctsnn
from ctsnn.solvers.propagator import balance, propagator

hyp = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)
EPS = torch.finfo(torch.float64).eps


def log_uniform(lo, hi):
    return st.floats(math.log10(lo), math.log10(hi)).map(lambda x: 10.0 ** x)


def _model(kind, r, tm, ts, ta):
    if kind == "cuba":
        return ctsnn.CubaLIF(tau_syn=ts, tau_mem=tm, r=r)
    if kind == "alif_current":
        return ctsnn.ALIF(tau_mem=tm, tau_adapt=ta, adapt_jump=0.1, r=r, tau_syn=ts, adaptation="current")
    return ctsnn.ALIF(tau_mem=tm, tau_adapt=ta, adapt_jump=0.1, r=r, tau_syn=ts)


def _A(kind, r, tm, ts, ta):
    return _model(kind, r, tm, ts, ta).linear_part(torch.float64)[0]


def _mp_EF(A, t):
    """E and F from mpmath's expm of the augmented matrix, at 50 digits."""
    mpmath.mp.dps = 50
    S = A.shape[-1]
    M = mpmath.zeros(2 * S, 2 * S)
    for i in range(S):
        for j in range(S):
            M[i, j] = mpmath.mpf(float(A[0, i, j])) * mpmath.mpf(t)
        M[i, S + i] = mpmath.mpf(t)
    X = mpmath.expm(M)
    E = torch.tensor([[float(X[i, j]) for j in range(S)] for i in range(S)], dtype=torch.float64)
    F = torch.tensor([[float(X[i, S + j]) for j in range(S)] for i in range(S)], dtype=torch.float64)
    return E, F


def _tol(A, t):
    """Entrywise relative tolerance: rounding grows with the squarings, i.e. with |lambda| t."""
    rho = float(A[0].diagonal().abs().max()) * abs(t)
    return 64 * EPS * (1.0 + rho)


kinds = st.sampled_from(["cuba", "alif_current", "alif_threshold"])
taus = log_uniform(1e-4, 1.0)


@SETTINGS
@given(kind=kinds, r=log_uniform(1e-3, 1e12), tm=taus, ts=taus, ta=taus, t=log_uniform(1e-7, 0.2))
def test_matches_50_digit_reference_entrywise_in_any_units(kind, r, tm, ts, ta, t):
    # r from mOhm to TOhm: A holds r/tau_mem next to 1/tau (4e9 next to 1e2 in SI units)
    A = _A(kind, r, tm, ts, ta)
    E, F = propagator(A, t)
    Er, Fr = _mp_EF(A, t)
    tol = _tol(A, t)
    for got, ref in ((E[0], Er), (F[0], Fr)):
        err = (got - ref).abs()
        assert bool((err <= tol * ref.abs() + 1e-300).all()), (kind, r, tm, ts, ta, t, got, ref)


def test_badly_scaled_matrix_really_needs_the_scaling():
    # Without the diagonal scaling the plain Taylor-and-squaring loses ~8 digits on E[v, v] for
    # CubaLIF in SI units (the check can tell the difference).
    from ctsnn.solvers.propagator import expm
    A = _A("cuba", 4e7, 1e-2, 2e-3, 1.0)
    t = 1e-4
    S = 2
    M = torch.zeros(1, 4, 4, dtype=torch.float64)
    M[:, :S, :S] = A * t
    M[:, :S, S:] = torch.eye(S, dtype=torch.float64) * t
    plain = expm(M)[0, 0, 0]
    ref = math.exp(-t / 1e-2)
    assert abs(float(plain) / ref - 1) > 1e-12
    assert abs(float(propagator(A, t)[0][0, 0, 0]) / ref - 1) < 4 * EPS


@SETTINGS
@given(kind=kinds, r=log_uniform(1e-3, 1e12), tm=taus, ts=taus, ta=taus, a=log_uniform(1e-7, 0.05),
       b=log_uniform(1e-7, 0.05))
def test_semigroup(kind, r, tm, ts, ta, a, b):
    # E(a + b) = E(a) E(b) and F(a + b) = F(a) + E(a) F(b); products are compared against the
    # product of the absolute values, the size of their rounding error.
    A = _A(kind, r, tm, ts, ta)
    Ea, Fa = propagator(A, a)
    Eb, Fb = propagator(A, b)
    Eab, Fab = propagator(A, a + b)
    tol = _tol(A, a + b)
    scale = Ea.abs() @ Eb.abs()
    assert bool(((Eab - Ea @ Eb).abs() <= tol * scale + 1e-300).all())
    scale = Fa.abs() + Ea.abs() @ Fb.abs()
    assert bool(((Fab - (Fa + Ea @ Fb)).abs() <= tol * scale + 1e-300).all())


@SETTINGS
@given(kind=kinds, r=log_uniform(1e-3, 1e12), tm=taus, ts=taus, ta=taus, x=st.floats(1e-6, 3.0))
def test_negative_time_is_the_inverse(kind, r, tm, ts, ta, x):
    # E(-t) = E(t)^{-1} and F(-t) = -E(-t) F(t) (the semigroup at b = -a); t up to 3 time constants
    A = _A(kind, r, tm, ts, ta)
    t = x * min(tm, ts, ta)
    E, F = propagator(A, t)
    Em, Fm = propagator(A, -t)
    tol = _tol(A, t)
    eye = torch.eye(A.shape[-1], dtype=torch.float64)
    assert bool(((Em @ E - eye).abs() <= tol * (Em.abs() @ E.abs())).all())
    assert bool(((Fm + Em @ F).abs() <= tol * (Fm.abs() + Em.abs() @ F.abs()) + 1e-300).all())


def _mp_cuba_closed_form(r, tm, ts, t):
    """E and F of tau_m v' = -v + r i, tau_s i' = -i (state (v, i)), at 50 digits; the
    coincident limit tau_s = tau_m is the t e^{-t/tau} form."""
    mpmath.mp.dps = 50
    r, tm, ts, t = (mpmath.mpf(x) for x in (r, tm, ts, t))
    g = r / tm
    em, es = mpmath.exp(-t / tm), mpmath.exp(-t / ts)
    if ts == tm:
        evi = g * t * em
        fvi = g * tm * (tm - (tm + t) * em)            # int_0^t g s e^{-s/tm} ds
    else:
        k = 1 / tm - 1 / ts
        evi = g * (es - em) / k
        fvi = g * (ts * (1 - es) - tm * (1 - em)) / k  # int_0^t evi(s) ds
    E = [[em, evi], [0, es]]
    F = [[tm * (1 - em), fvi], [0, ts * (1 - es)]]
    return (torch.tensor([[float(x) for x in row] for row in E], dtype=torch.float64),
            torch.tensor([[float(x) for x in row] for row in F], dtype=torch.float64))


@pytest.mark.parametrize("delta", [0.0, 1e-15, -1e-15, 1e-12, -1e-9, 1e-6, 1e-3, -0.1])
@pytest.mark.parametrize("r", [1.0, 4e7, 1e10])
def test_coincident_tau_limit_is_continuous(delta, r):
    # tau_syn = tau_mem (1 + delta): the propagator follows the closed form through delta = 0,
    # where the difference-of-exponentials form divides 0 by 0.
    tm, t = 1e-2, 3e-3
    ts = tm * (1 + delta)
    A = _A("cuba", r, tm, ts, 1.0)
    E, F = propagator(A, t)
    Er, Fr = _mp_cuba_closed_form(r, tm, ts, t)
    for got, ref in ((E[0], Er), (F[0], Fr)):
        assert bool(((got - ref).abs() <= 16 * EPS * ref.abs()).all()), (delta, got, ref)


@SETTINGS
@given(kind=kinds, tm=taus, ts=taus, ta=taus, t=log_uniform(1e-6, 0.1),
       logd=st.lists(st.floats(-12, 12), min_size=3, max_size=3))
def test_similarity_scaling_commutes(kind, tm, ts, ta, t, logd):
    # the same system in other units: y' = D y gives A' = D A D^{-1}, E' = D E D^{-1},
    # F' = D F D^{-1}, entry by entry to rounding, for scalings over 24 decades
    A = _A(kind, 1.0, tm, ts, ta)
    S = A.shape[-1]
    d = torch.tensor([10.0 ** x for x in logd[:S]], dtype=torch.float64)
    ratio = d[:, None] / d[None, :]
    E, F = propagator(A, t)
    E2, F2 = propagator(A * ratio, t)
    tol = _tol(A, t)
    for got, ref in ((E2[0], E[0] * ratio), (F2[0], F[0] * ratio)):
        assert bool(((got - ref).abs() <= tol * ref.abs() + 1e-300).all()), (got, ref)


def test_balance_bounds_every_scaled_entry_by_the_spectrum():
    A = _A("alif_current", 4e7, 1e-2, 2e-3, 0.1)
    d = balance(A)[0]
    scaled = A[0] * d[None, :] / d[:, None]
    rho = float(A[0].diagonal().abs().max())
    assert float(scaled.abs().max()) <= rho
    assert bool((torch.log2(d) == torch.round(torch.log2(d))).all())       # powers of two: exact


def test_per_neuron_matrices_and_times_broadcast():
    model = ctsnn.CubaLIF(tau_syn=torch.tensor([2e-3, 1e-2, 5e-2], dtype=torch.float64),
                          tau_mem=1e-2, r=torch.tensor([1.0, 4e7, 1e10], dtype=torch.float64))
    A = model.linear_part(torch.float64)[0]
    t = torch.tensor([1e-4, 2e-3, 0.05], dtype=torch.float64)
    E, F = propagator(A, t)
    for j in range(3):
        # one neuron at a time (the batch shares its number of squarings, so not bit-identical)
        Ej, Fj = propagator(A[j:j + 1], float(t[j]))
        tol = _tol(A[j:j + 1], float(t[j]))
        assert bool(((E[j] - Ej[0]).abs() <= tol * Ej[0].abs()).all())
        assert bool(((F[j] - Fj[0]).abs() <= tol * Fj[0].abs()).all())


def test_gradients_through_the_scaled_exponential():
    # d/dt E = A E and d/dA exists: checked against finite differences (the scaling has no gradient)
    A = _A("cuba", 3.0, 1e-2, 2e-3, 1.0).clone().requires_grad_(True)
    t = torch.tensor(1.5e-3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda A, t: propagator(A, t), (A, t))
    E, _ = propagator(A, t)
    (dE,) = torch.autograd.grad(E[0, 0, 1], t)
    ref = float((A @ E)[0, 0, 1].detach())
    assert abs(float(dE) - ref) < 1e-9 * abs(ref)


# ---------------------------------------------------------------- one state, and phi_1
@SETTINGS
@given(x=st.one_of(st.floats(-1e-3, 1e-3), st.floats(-30.0, 30.0), st.sampled_from([0.0, 1e-4, -1e-4])))
def test_phi1_value_and_derivative_match_50_digits(x):
    # phi_1(x) = expm1(x)/x to rounding everywhere; its derivative to rounding in the series branch
    # |x| < 1e-4, and within the cancellation of autograd through expm1(x)/x, ~eps/|x|, beyond it
    # (measured: 8e3 ulp at x = 2e-4, 1 ulp at x = 1)
    from ctsnn.solvers.propagator import phi1
    mpmath.mp.dps = 60
    X = mpmath.mpf(x)
    if abs(x) < 1:   # the Taylor series sum_k x^k/(k+1)! and its derivative: no cancellation
        ref = mpmath.fsum(X ** k / mpmath.factorial(k + 1) for k in range(40))
        dref = mpmath.fsum(k * X ** (k - 1) / mpmath.factorial(k + 1) for k in range(1, 40))
    else:            # closed forms, 60 digits (they lose at most 2 here)
        ref = mpmath.expm1(X) / X
        dref = (X * mpmath.exp(X) - mpmath.expm1(X)) / X ** 2
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y = phi1(t)
    (d,) = torch.autograd.grad(y, t)
    assert abs(float(y.detach()) / float(ref) - 1) <= 4 * EPS
    cancel = 0.0 if abs(x) < 1e-4 else 1 / abs(x)
    assert abs(float(d) / float(dref) - 1) <= 8 * EPS * (1 + abs(x) + cancel), (float(d), float(dref))


@SETTINGS
@given(leaky=st.booleans(), tm=taus, r=log_uniform(1e-3, 1e12), a=log_uniform(1e-9, 1.0),
       b=log_uniform(1e-9, 1.0))
def test_one_state_closed_form_semigroup_and_inverse(leaky, tm, r, a, b):
    # S = 1 (LIF, and IF with A = 0) takes the closed-form branch E = e^{a t}, F = t phi_1(a t):
    # the same identities as the matrix exponential, to rounding
    m = ctsnn.LIF(tau_mem=tm, r=r) if leaky else ctsnn.IF(r=r)
    A = m.linear_part(torch.float64)[0]
    Ea, Fa = propagator(A, a)
    Eb, Fb = propagator(A, b)
    Eab, Fab = propagator(A, a + b)
    tol = _tol(A, a + b)
    assert abs(float(Eab) - float(Ea * Eb)) <= tol * float(Ea * Eb)
    assert abs(float(Fab) - float(Fa + Ea * Fb)) <= tol * float(Fa + Ea * Fb)
    Em, Fm = propagator(A, -a)
    tol = _tol(A, a + b)                  # the exponent a t carries a rounding error eps |a t|
    assert abs(float(Em * Ea) - 1) <= tol
    assert abs(float(Fm + Em * Fa)) <= tol * float(Fm.abs() + Em * Fa)


@SETTINGS
@given(tm=taus, r=log_uniform(1e-3, 1e12), x=st.floats(1e-3, 3.0), logd=st.floats(-16, -2),
       sign=st.sampled_from([-1.0, 0.0, 1.0]))
def test_coincident_tau_limit_random_parameters(tm, r, x, logd, sign):
    # tau_syn = tau_mem (1 + delta), delta from 0 and +-1e-16 to +-1e-2, any tau, r and step:
    # entrywise equal to the 50-digit closed form (the cases above fix tau_mem and the step)
    ts = tm * (1 + sign * 10.0 ** logd)
    t = x * tm
    A = _A("cuba", r, tm, ts, 1.0)
    E, F = propagator(A, t)
    Er, Fr = _mp_cuba_closed_form(r, tm, ts, t)
    for got, ref in ((E[0], Er), (F[0], Fr)):
        assert bool(((got - ref).abs() <= 16 * EPS * ref.abs() + 1e-300).all()), (got, ref)
