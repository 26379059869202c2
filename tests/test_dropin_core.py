"""Core pieces the drop-in dialects rely on, checked fast and in eager mode: the traced path of the
matrix exponential (its number of squarings a tensor, for torch.compile) against the eager one, op
for op; the parameter checks as graph assertions; copies of a ``DiscreteLayer`` after a fused run.
The compiled dialects themselves are tested in tests/test_dropin_<library>.py (slow)."""
import copy
import importlib

import pytest
import torch

from ctsnn import ALIF, LIF, CubaLIF, discretize
from ctsnn.models.base import _check_traced, check_param

prop = importlib.import_module("ctsnn.solvers.propagator")


def stable(m, d, scale, dtype, seed):
    """``[m, d, d]`` matrices with eigenvalues of negative real part (decaying, as the neuron models'
    drifts): ``-(B B^T + 0.1 I) + skew``, times ``scale``."""
    g = torch.Generator().manual_seed(seed)
    B = torch.randn(m, d, d, generator=g, dtype=torch.float64)
    K = torch.randn(m, d, d, generator=g, dtype=torch.float64)
    A = -(B @ B.transpose(-1, -2) + 0.1 * torch.eye(d, dtype=torch.float64)) + (K - K.transpose(-1, -2))
    return (A * scale / A.abs().sum(-2).amax()).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_traced_expm_is_the_eager_expm_bit_for_bit(dtype):
    """Norms from 1e-3 (no squaring) to 1e12 (41 squarings), random decaying matrices and the augmented
    step matrices of CubaLIF / ALIF in SI units: values and gradients identical to the bit."""
    mats = [stable(6, 4, scale, dtype, k) for k, scale in enumerate((1e-3, 0.5, 0.7, 3.0, 1e3, 1e6, 1e12))]
    for model in (CubaLIF(tau_mem=0.02, tau_syn=0.005, r=4e8), ALIF(tau_mem=0.03, tau_adapt=0.2, adapt_jump=0.1,
                                                                    tau_syn=0.03)):
        A = model.linear_part(dtype)[0]
        S = A.shape[-1]
        for tau in (1e-4, 1e-2, 3.0):
            M = torch.zeros(1, 2 * S, 2 * S, dtype=dtype)
            M[0, :S, :S], M[0, :S, S:] = A * tau, torch.eye(S, dtype=dtype) * tau
            mats.append(M)
    squarings = set()
    for M in mats:
        M = M.clone().requires_grad_()
        a, b = prop.expm(M), prop._expm_traced(M)
        assert torch.isfinite(a).all()
        assert torch.equal(a, b)
        w = torch.randn(a.shape, generator=torch.Generator().manual_seed(1), dtype=dtype)
        ga, = torch.autograd.grad((a * w).sum(), M)
        gb, = torch.autograd.grad((b * w).sum(), M)
        assert torch.equal(ga, gb)
        norm = float(M.detach().abs().sum(-2).amax())
        squarings.add(0 if norm <= 0.5 else int(torch.tensor(norm / 0.5).log2().ceil()))
    assert min(squarings) == 0 and max(squarings) >= 40  # both ends of the range were exercised


def test_traced_expm_refuses_a_norm_beyond_its_squarings():
    M = stable(1, 3, 2.0 ** 70, torch.float64, 0)
    with pytest.raises(RuntimeError, match="1-norm exceeds 2\\*\\*63"):
        prop._expm_traced(M)
    assert torch.isfinite(prop.expm(M)).all()  # eager squares as often as it needs


@pytest.mark.parametrize("value, kw, what", [
    (float("nan"), {}, "must be finite"), (float("inf"), dict(positive=True), "must be finite"),
    (-0.01, dict(positive=True), "must be > 0"), (0.0, dict(positive=True), "must be > 0"),
    (1e-120, dict(positive=True), "must be >= 1e-100"), (-1.0, dict(nonneg=True), "must be >= 0"),
    (2e100, {}, "must have \\|tau_mem\\| <= 1e\\+100")])
def test_check_param_traced_assertions_refuse_what_eager_refuses(value, kw, what):
    """The graph assertions ``check_param`` uses under torch.compile (run here eagerly, where
    ``torch._assert_async`` raises at once) refuse each bad value eager refuses, naming the parameter."""
    t = torch.tensor([0.02, value], dtype=torch.float64)
    with pytest.raises(ValueError, match="tau_mem"):
        check_param("tau_mem", t, **kw)
    with pytest.raises(RuntimeError, match=f"parameter 'tau_mem' {what}"):
        _check_traced("tau_mem", t, kw.get("positive", False), kw.get("nonneg", False))
    good = torch.tensor([0.02, 0.5], dtype=torch.float64)
    _check_traced("tau_mem", good, kw.get("positive", False), kw.get("nonneg", False))  # no error
    assert check_param("tau_mem", good, **kw) is good



def test_discrete_layer_deepcopy_after_a_fused_run():
    """The constants cache (with the fused kernel's ctypes handles) stays out of copies: a deepcopy
    after a fused run works and runs to the same numbers, fused again."""
    layer = discretize(CubaLIF(tau_mem=0.02, tau_syn=0.005, r=1.0), 1e-3)
    x = torch.rand(40, 3, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 200
    with torch.no_grad():
        out, y = layer.run(x)
    if layer.last_backend != "fused":
        pytest.skip("no C++ compiler: the fused kernel did not run")
    assert "_const_cache" in layer.__dict__ and out.sum() > 0
    twin = copy.deepcopy(layer)
    assert "_const_cache" not in twin.__dict__ and "_const_cache" in layer.__dict__
    with torch.no_grad():
        out2, y2 = twin.run(x)
    assert twin.last_backend == "fused" and torch.equal(out, out2) and torch.equal(y, y2)
    lif = discretize(LIF(tau_mem=0.02), 1e-3)
    with torch.no_grad():
        lif.run(x)
    assert torch.equal(copy.deepcopy(lif).run(x).out, lif.run(x).out)
