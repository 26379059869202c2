"""ctsnn.compat.tracetorch vs the real tracetorch 0.19.2 (the LITS family: LITS, DLITS, SLITS, RLITS,
SRLITS, DSLITS, DRLITS, DSRLITS)."""
import pytest

tt = pytest.importorskip("tracetorch")
import zlib

import torch

from ctsnn.compat import tracetorch as ct

pytestmark = pytest.mark.peers

T, B, N = 300, 3, 6


# decays (sigmoid-stored), recurrent weights and the state attributes of each class
_CLASSES = {
    "LITS": (["beta"], [], ["mem"]),
    "DLITS": (["pos_beta", "neg_beta"], [], ["pos_mem", "neg_mem"]),
    "SLITS": (["alpha", "beta"], [], ["mem", "syn"]),
    "RLITS": (["beta", "gamma"], ["rec_weight"], ["mem", "rec", "prev_output"]),
    "SRLITS": (["alpha", "beta", "gamma"], ["rec_weight"], ["mem", "syn", "rec", "prev_output"]),
    "DSLITS": (["pos_alpha", "neg_alpha", "pos_beta", "neg_beta"], [],
               ["pos_mem", "neg_mem", "pos_syn", "neg_syn"]),
    "DRLITS": (["pos_beta", "neg_beta", "pos_gamma", "neg_gamma"], ["pos_rec_weight", "neg_rec_weight"],
               ["pos_mem", "neg_mem", "pos_rec", "neg_rec", "prev_output"]),
    "DSRLITS": (["pos_alpha", "neg_alpha", "pos_beta", "neg_beta", "pos_gamma", "neg_gamma"],
                ["pos_rec_weight", "neg_rec_weight"],
                ["pos_mem", "neg_mem", "pos_syn", "neg_syn", "pos_rec", "neg_rec", "prev_output"]),
}
_DECAY_RANGE = {"alpha": (0.3, 0.9), "beta": (0.5, 0.9), "gamma": (0.5, 0.95)}


def _params(cls, g, rank):
    def r(lo, hi):
        return float(lo + (hi - lo) * torch.rand((), generator=g)) if rank == 0 else \
            lo + (hi - lo) * torch.rand(N, generator=g)
    kw = dict(pos_threshold=r(0.5, 1.5), neg_threshold=r(0.5, 1.5), bias=r(-0.3, 0.3),
              pos_scale=r(0.5, 2.0), neg_scale=r(0.5, 2.0))
    decays, recs, _ = _CLASSES[cls]
    for d in decays:
        kw[d] = r(*_DECAY_RANGE[d.split("_")[-1]])
    for w in recs:
        kw[w] = r(-1.0, 1.0)
    return kw


def _ranks(cls, rank):
    decays, recs, _ = _CLASSES[cls]
    names = ["pos_threshold", "neg_threshold", "pos_scale", "neg_scale", "bias"] + decays + recs
    return {n + "_rank": rank for n in names}


def _run(layer, x, states):
    outs, st = [], []
    for t in range(x.shape[0]):
        outs.append(layer(x[t]))
        st.append(torch.stack([getattr(layer, s) for s in states]))
    return torch.stack(outs), torch.stack(st)


@pytest.mark.parametrize("cls", list(_CLASSES))
@pytest.mark.parametrize("rank", [0, 1])
# tolerances as measured over every case here (2026-12-03): float64 worst 3.6e-14 (outputs and
# states) and 1.4e-13 (parameter gradients, relative); float32 worst 6.8e-6
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("quant", ["identity", "round"])
def test_matches_tracetorch(cls, rank, dtype, tol, quant):
    g = torch.Generator().manual_seed(zlib.crc32(f"{cls}{rank}{dtype}{quant}".encode()))
    kw = _params(cls, g, rank)
    kw.update(_ranks(cls, rank))
    if quant == "round":
        kw["quant_fn"] = tt.functional.round_ste()
    ref = getattr(tt.snn, cls)(N, **kw).to(dtype)
    ours = getattr(ct, cls)(N, **kw).to(dtype)
    # same activated values up to float32 rounding of the raw parameters; share the raw ones
    assert all((ref.state_dict()[k] - v).abs().max() < 1e-5 for k, v in ours.state_dict().items())
    ours.load_state_dict(ref.state_dict())
    states = _CLASSES[cls][2]
    x = (2.0 * torch.randn(T, B, N, generator=g)).to(dtype)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, sa = _run(ref, xa, states)
    yb, sb = _run(ours, xb, states)
    if _CLASSES[cls][1]:  # the recurrent traces carry something
        assert sa[:, states.index("prev_output")].abs().max() > 0.1
    if quant == "round":
        assert ((ya != 0).sum() > T * B * N // 10)
        assert torch.equal(ya != 0, yb != 0)
    assert (ya - yb).abs().max() <= tol
    assert (sa - sb).abs().max() <= tol
    w = torch.randn(T, B, N, generator=g).to(dtype)
    (ya * w).sum().backward()
    (yb * w).sum().backward()
    assert (xa.grad - xb.grad).abs().max() <= tol * max(1.0, xa.grad.abs().max().item())
    pa, pb = dict(ref.named_parameters()), dict(ours.named_parameters())
    assert set(pa) == set(pb)
    # float32: a parameter's gradient sums ~T*B*N float32 terms, and tracetorch's own float32
    # gradient is up to ~2e-5 (relative) off its float64 one (docs/derivations.md); ours must be
    # within tol of tracetorch's float64 gradient beyond that rounding error of tracetorch's own
    noise = {n: torch.zeros((), dtype=torch.float64) for n in pa}
    truth = {n: p.grad.double() for n, p in pa.items()}
    if dtype == torch.float32:
        ref64 = getattr(tt.snn, cls)(N, **kw).double()
        ref64.load_state_dict(ref.state_dict())
        y64, _ = _run(ref64, x.double(), states)
        (y64 * w.double()).sum().backward()
        truth = {n: p.grad for n, p in ref64.named_parameters()}
        noise = {n: (pa[n].grad.double() - truth[n]).abs() for n in pa}
    for n in pa:
        assert pa[n].shape == pb[n].shape, n
        scale = max(1.0, truth[n].abs().max().item())
        assert ((pb[n].grad.double() - truth[n]).abs() <= tol * scale + noise[n]).all(), n
    # and our saved raw parameters load into tracetorch's layer
    back = getattr(tt.snn, cls)(N, **kw).to(dtype)
    back.load_state_dict(ours.state_dict())


def test_dim_and_learn_flags():
    torch.manual_seed(1)
    kw = dict(dim=1, learn_beta=False, learn_bias=False)
    ref, ours = tt.snn.LITS(N, **kw).double(), ct.LITS(N, **kw).double()
    assert set(dict(ref.named_parameters())) == set(dict(ours.named_parameters()))
    x = 2 * torch.randn(50, B, N, 4, dtype=torch.float64)
    ya, _ = _run(ref, x, ["mem"])
    yb, _ = _run(ours, x, ["mem"])
    assert (ya - yb).abs().max() <= 1e-9


@pytest.mark.parametrize("kw,name", [(dict(beta=1.2), "beta"), (dict(beta=0.0), "beta"),
                                     (dict(pos_threshold=-1.0), "pos_threshold"),
                                     (dict(neg_threshold=0.0), "neg_threshold"),
                                     (dict(bias=float("nan")), "bias"),
                                     (dict(beta_rank=2), "beta_rank"),
                                     (dict(pos_scale=torch.ones(3)), "pos_scale")])
def test_bad_params(kw, name):
    with pytest.raises(ValueError, match=name):
        ct.LITS(N, **kw)


def test_bad_input():
    with pytest.raises(ValueError, match="num_neurons"):
        ct.DLITS(N)(torch.zeros(2, N + 1))
    with pytest.raises(ValueError, match="num_neurons"):
        ct.LITS(0)


def test_recurrent_dim_learn_flags_and_reset():
    torch.manual_seed(2)
    kw = dict(dim=1, learn_pos_gamma=False, learn_bias=False, pos_rec_weight=0.7, neg_rec_weight=-0.4,
              pos_alpha_rank=0, neg_rec_weight_rank=0)
    ref, ours = tt.snn.DSRLITS(N, **kw).double(), ct.DSRLITS(N, **kw).double()
    assert set(dict(ref.named_parameters())) == set(dict(ours.named_parameters()))
    assert ours.prev_output is None and ours.pos_syn is None
    x = 2 * torch.randn(50, B, N, 4, dtype=torch.float64)
    states = ["pos_mem", "neg_mem", "pos_syn", "neg_syn", "pos_rec", "neg_rec", "prev_output"]
    ya, sa = _run(ref, x, states)
    yb, sb = _run(ours, x, states)
    assert (ya - yb).abs().max() <= 1e-9 and (sa - sb).abs().max() <= 1e-9
    assert ours.prev_output.shape == (B, N, 4)
    ours.zero_states()
    assert ours.prev_output is None and ours.pos_mem is None


@pytest.mark.parametrize("cls,kw,name", [
    ("SLITS", dict(alpha=1.0), "alpha"), ("SLITS", dict(alpha=-0.1), "alpha"),
    ("RLITS", dict(gamma=1.5), "gamma"), ("RLITS", dict(rec_weight=torch.ones(3)), "rec_weight"),
    ("RLITS", dict(rec_weight=float("inf")), "rec_weight"),
    ("SRLITS", dict(pos_threshold=0.0), "pos_threshold"), ("SRLITS", dict(gamma_rank=3), "gamma_rank"),
    ("DSLITS", dict(neg_alpha=0.0), "neg_alpha"), ("DSLITS", dict(pos_alpha=torch.full((N + 1,), 0.5)),
                                                    "pos_alpha"),
    ("DRLITS", dict(pos_gamma=1.0), "pos_gamma"), ("DRLITS", dict(neg_rec_weight=torch.ones(2)), "neg_rec_weight"),
    ("DSRLITS", dict(neg_gamma=2.0), "neg_gamma"), ("DSRLITS", dict(neg_threshold=-1.0), "neg_threshold"),
    ("DSRLITS", dict(pos_rec_weight_rank=-1), "pos_rec_weight_rank")])
def test_bad_params_traced(cls, kw, name):
    with pytest.raises(ValueError, match=name):
        getattr(ct, cls)(N, **kw)


@pytest.mark.parametrize("cls", ["SLITS", "RLITS", "SRLITS", "DSLITS", "DRLITS", "DSRLITS"])
def test_bad_input_traced(cls):
    with pytest.raises(ValueError, match="num_neurons"):
        getattr(ct, cls)(N)(torch.zeros(2, N - 1))


def test_cascade_needs_traced_model_and_traced_checks():
    import ctsnn
    from ctsnn.models import LIT, DualLIT, Traced
    with pytest.raises(ValueError, match="cascade"):
        ctsnn.discretize(LIT(tau_mem=5.0), 1.0, cascade=True)
    with pytest.raises(ValueError, match="tau_syn and/or tau_rec"):
        Traced(LIT(tau_mem=5.0))
    with pytest.raises(ValueError, match="rec_weight"):
        Traced(LIT(tau_mem=5.0), tau_syn=2.0, rec_weight=1.0)
    with pytest.raises(ValueError, match="tau_syn"):
        Traced(DualLIT(5.0, 4.0), tau_syn=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="tau_rec"):
        Traced(LIT(tau_mem=5.0), tau_rec=-1.0)


def test_traced_continuous_model_is_consistent():
    """The LIT-based Traced model's linear part and drift agree, and the DualLIT-based drift
    rectifies the summed traces (the continuous model the cascade step approximates)."""
    from ctsnn.models import LIT, DualLIT, Traced
    torch.manual_seed(3)
    m = Traced(LIT(tau_mem=5.0, n=N), tau_syn=2.0, tau_rec=torch.full((N,), 3.0), rec_weight=0.5)
    A, Bm, c = m.linear_part(torch.float64)
    y, u = torch.randn(B, N, 3, dtype=torch.float64), torch.randn(B, N, 1, dtype=torch.float64)
    lin = torch.einsum("nij,bnj->bni", A, y) + torch.einsum("niu,bnu->bni", Bm, u) + c
    assert torch.allclose(m.drift(0.0, y, u), lin, atol=1e-12)
    d = Traced(DualLIT(5.0, 4.0, n=N), tau_syn=(2.0, 1.0), tau_rec=3.0, rec_weight=(0.5, 0.25))
    assert d.linear_part() is None and d.state_names == ("v_pos", "v_neg", "i_pos", "i_neg", "r_pos", "r_neg")
    y = torch.randn(B, N, 6, dtype=torch.float64)
    f = d.drift(0.0, y, torch.zeros(B, N, 2, dtype=torch.float64))
    isum, rsum = y[..., 2] + y[..., 3], y[..., 4] + y[..., 5]
    assert torch.allclose(f[..., 0], -y[..., 0] / 5.0 + isum.clamp(min=0) + 0.5 * rsum.clamp(min=0))
    assert torch.allclose(f[..., 1], -y[..., 1] / 4.0 + isum.clamp(max=0) + 0.25 * rsum.clamp(max=0))
