r"""The exact propagator of a linear system with input held over the step.

For :math:`\dot y = A y + b` with constant ``b`` the solution after a time ``tau`` is

.. math::
    y(\tau) = E(\tau)\, y(0) + F(\tau)\, b,\qquad E = e^{A\tau},\quad F = \int_0^\tau e^{As}\,ds,

and both blocks come from one matrix exponential of the augmented matrix

.. math::
    \exp\left(\begin{bmatrix} A & I \\ 0 & 0 \end{bmatrix}\tau\right)
    = \begin{bmatrix} E & F \\ 0 & I \end{bmatrix}.

Unlike the difference-of-exponentials formula (which divides by ``1/tau_syn - 1/tau_mem``), the
matrix exponential stays exact and finite when two time constants coincide or differ by 1e-12,
and it is differentiable in ``A`` and ``tau``.

``expm`` is a Taylor polynomial of degree 18 (Horner form) after scaling the matrix to a 1-norm
of at most 1/2, followed by squaring. Its truncation error, 0.5**19/19! ~ 2e-23, is far below
float64 rounding for every step length. (``torch.linalg.matrix_exp`` was measured to lose
relative accuracy of ~4e-12 on ``F`` for small ``tau/tau_mem``, which is why it is not used.)

Badly scaled ``A``. In SI units a current-based synapse gives ``A`` entries such as
``r / tau_mem = 4e9`` (volts per ampere-second) next to ``1 / tau_mem = 1e2``; the scaling and
squaring of ``expm`` then carries an absolute error of about ``eps * ||A tau||`` into every entry,
which swamps the small ones (``E[v, v]`` lost 8 digits, spike times 5e-8 s). The state is therefore
rescaled first, ``y = D z`` with ``D = diag(d)``, ``d`` powers of two (so the scaling is exact):

.. math::
    \dot z = (D^{-1} A D) z + D^{-1} b, \qquad
    E = D\, e^{D^{-1} A D \tau} D^{-1}, \qquad F = D\, F_z D^{-1},

where ``F_z`` comes from the augmented matrix of ``D^{-1} A D`` (the identity input block is
unchanged by the similarity). ``d`` is the largest scaling with every off-diagonal entry
``|A_ij| d_j / d_i`` at most ``rho = max_k |A_kk|`` (a system of difference constraints on
``log2 d``, solved by Bellman-Ford relaxation over the ``S`` states; where the constraints cannot
all hold, a coupling cycle stronger than the decays, the relaxation stops after ``S`` rounds).
Every entry of the scaled matrix is then of the size of the spectrum, and ``E``, ``F`` come out
accurate entry by entry in any units. ``d`` carries no gradient (it is piecewise constant).

For a single state (``S = 1``, e.g. LIF) the blocks are scalars and written in closed form,
``E = e^{a tau}`` and ``F = tau phi_1(a tau)`` with ``phi_1(x) = (e^x - 1)/x = expm1(x)/x``
(``phi_1(0) = 1``), which is exact to rounding for every ``a``, including ``a = 0`` (IF).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["propagator", "propagate", "expm", "balance", "phi1", "tau_from_decay", "decay_from_tau"]


def phi1(x: Tensor) -> Tensor:
    """``phi_1(x) = (e^x - 1)/x = expm1(x)/x`` elementwise, ``phi_1(0) = 1``.

    Where ``|x| < 1e-4`` the Taylor series ``1 + x/2 + x^2/6 + x^3/24 + x^4/120`` is used
    (truncation below ``x^5/720 < 1e-23``; of its derivative, below ``x^4/144 < 1e-18``), so the
    value and its derivative are exact to rounding there, and at ``x = 0``. Elsewhere the value
    ``expm1(x)/x`` is exact to rounding; its derivative by autograd,
    ``(x e^x - expm1 x)/x^2``, loses about ``eps/|x|`` (at most 2e-12 relative, at ``|x| = 1e-4``).
    ``F = tau phi_1(a tau)`` is the input block of a one-state propagator and
    ``(1 - d)/(-ln d) = phi_1(ln d)`` the mean of a decay ``d`` over its step."""
    small = x.abs() < 1e-4
    xs = torch.where(small, torch.ones_like(x), x)
    return torch.where(small, 1 + x * (1 / 2 + x * (1 / 6 + x * (1 / 24 + x / 120))), torch.expm1(xs) / xs)


def tau_from_decay(decay: Tensor, dt: float | Tensor = 1.0) -> Tensor:
    """The time constant of a decay factor per step ``dt``: ``tau = -dt / ln(decay)``, the inverse
    of ``decay = exp(-dt/tau)`` (``decay_from_tau``); ``decay`` must lie in (0, 1) for a finite
    positive ``tau`` (1 gives ``inf``, no decay)."""
    return -dt / torch.log(decay)


def decay_from_tau(tau: Tensor, dt: float | Tensor = 1.0) -> Tensor:
    """The decay factor of time constant ``tau`` over a step ``dt``: ``exp(-dt/tau)``."""
    return torch.exp(-dt / tau)


def propagator(A: Tensor, tau: Tensor | float) -> tuple[Tensor, Tensor]:
    """``(E, F)`` for ``A`` ``[m|1, S, S]`` and ``tau`` a scalar or ``[m]`` (seconds)."""
    S = A.shape[-1]
    tau = torch.as_tensor(tau, dtype=A.dtype, device=A.device)
    if tau.dim() == 0:
        tau = tau.reshape(1)
    if S == 1:
        x = A[:, 0, 0] * tau                                          # [m]
        return torch.exp(x)[:, None, None], (tau * phi1(x))[:, None, None]
    m = max(A.shape[0], tau.shape[0])
    d = balance(A)                                                    # [m|1, S], powers of two
    ratio = d[:, None, :] / d[:, :, None]                             # d_j / d_i
    M = torch.zeros(m, 2 * S, 2 * S, dtype=A.dtype, device=A.device)
    M[:, :S, :S] = (A * ratio) * tau[:, None, None]
    M[:, :S, S:] = torch.eye(S, dtype=A.dtype, device=A.device) * tau[:, None, None]
    X = expm(M)
    back = d[:, :, None] / d[:, None, :]                              # d_i / d_j
    return X[:, :S, :S] * back, X[:, :S, S:] * back


def balance(A: Tensor) -> Tensor:
    """Diagonal scaling ``d`` ``[m, S]`` (powers of two) with ``|A_ij| d_j / d_i <= max_k |A_kk|``.

    In ``x = log2 d`` the conditions read ``x_j - x_i <= log2(rho / |A_ij|)``: shortest paths from
    a virtual source at 0, found by ``S`` rounds of Bellman-Ford relaxation (exact for the models'
    acyclic couplings; a best effort when a cycle makes them infeasible). ``x`` is floored to whole
    exponents and bounded so that no scaled entry can overflow the dtype.
    """
    with torch.no_grad():
        S = A.shape[-1]
        a = A.detach().abs()
        eye = torch.eye(S, dtype=torch.bool, device=A.device)
        diag = a.diagonal(dim1=-2, dim2=-1)                             # [m, S]
        rho = diag.amax(-1)
        off = a.masked_fill(eye, 0.0)
        rho = torch.where(rho > 0, rho, off.amax((-2, -1)))
        ok = (off > 0) & torch.isfinite(off) & (rho > 0)[:, None, None]
        W = torch.where(ok, torch.log2(rho[:, None, None] / torch.where(ok, off, torch.ones_like(off))),
                        torch.full_like(off, math.inf))
        x = torch.zeros_like(diag)
        for _ in range(S):
            x = torch.minimum(x, (x[:, :, None] + W).amin(1))
        lim = float(math.floor(math.log2(torch.finfo(A.dtype).max) / 4))
        x = torch.floor(x).clamp(min=-lim, max=0.0)
        return torch.exp2(x)


_DEGREE = 18

#: squarings the traced (``torch.compile``) path of ``expm`` can apply: 1-norms up to 2**63
_MAX_SQUARINGS = 64


def expm(M: Tensor) -> Tensor:
    """Matrix exponential of a batch ``[m, d, d]`` by scaled Taylor series and squaring.

    ``s = ceil(log2(||M||_1 / 0.5))`` squarings (none when the norm is at most 1/2) after the
    Taylor polynomial of ``M / 2**s``.  Under ``torch.compile`` the count ``s`` cannot become a
    Python number (the graph would break), so the same arithmetic runs with ``s`` as a tensor:
    the exact power-of-two scaling ``M / 2**s``, the same Horner polynomial, and
    ``_MAX_SQUARINGS`` steps ``R <- R @ Q``, ``Q = R`` for the first ``s`` and ``Q = I`` after
    (a product with the identity is exact, and no step past ``s`` can overflow): the eager
    result, op for op, forward and backward.  A norm beyond ``2**63`` (more squarings than that)
    is refused there by an assertion that fails when the compiled code runs (``RuntimeError``).
    """
    if torch.compiler.is_compiling() and M.numel():
        return _expm_traced(M)
    with torch.no_grad():
        norm = float(M.detach().abs().sum(-2).amax()) if M.numel() else 0.0
    squarings = max(0, math.ceil(math.log2(norm / 0.5))) if norm > 0.5 else 0
    X = M / (2.0 ** squarings) if squarings else M
    R = _taylor(X)
    for _ in range(squarings):
        R = R @ R
    return R


def _taylor(X: Tensor) -> Tensor:
    """Degree-``_DEGREE`` Taylor polynomial of ``exp(X)`` in Horner form."""
    eye = torch.eye(X.shape[-1], dtype=X.dtype, device=X.device)
    R = eye + X / _DEGREE
    for k in range(_DEGREE - 1, 0, -1):
        R = eye + (X @ R) / k
    return R


def _expm_traced(M: Tensor) -> Tensor:
    """``expm`` with the number of squarings a tensor (see ``expm``): no data-dependent Python."""
    with torch.no_grad():
        # the norm in M's dtype, then float64 as eager's float(...); ceil(log2(norm / 0.5)), >= 0
        norm = M.detach().abs().sum(-2).amax().to(torch.float64)
        s = torch.where(norm > 0.5, torch.ceil(torch.log2(norm / 0.5)), torch.zeros_like(norm))
        torch._assert_async(s <= _MAX_SQUARINGS, f"expm (under torch.compile): the matrix 1-norm exceeds "
                            f"2**{_MAX_SQUARINGS - 1}; the step matrix is out of range (check the parameters' units)")
        scale = torch.exp2(s).to(M.dtype)          # a power of two: M / scale is exact
    R = _taylor(M / scale)
    eye = torch.eye(M.shape[-1], dtype=M.dtype, device=M.device)
    for k in range(_MAX_SQUARINGS):
        R = R @ torch.where(s > k, R, eye)
    return R


def propagate(E: Tensor, F: Tensor, y: Tensor, b: Tensor) -> Tensor:
    """``E y + F b`` for states ``y`` and drives ``b`` ``[..., m, S]`` (``E``, ``F`` ``[m|1, S, S]``)."""
    return (E @ y.unsqueeze(-1)).squeeze(-1) + (F @ b.unsqueeze(-1)).squeeze(-1)
