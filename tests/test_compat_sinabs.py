"""ctsnn.compat.sinabs.ALIF against the real sinabs 3.1.3 ALIF.

States are compared with a loop over sinabs' own ``alif_forward_single`` (the code that
``sinabs.layers.ALIF.forward`` runs): sinabs' ``recordings`` dict holds, for v_mem and i_syn, the
NEXT step's pre-reset values (the recorded dict is mutated in place by the following step), and
its layer drops ``i_syn`` between forward calls, so the per-step truth comes from the functional.
Spikes are also compared with ``sinabs.layers.ALIF`` itself.
"""
import zlib

import pytest

sinabs = pytest.importorskip("sinabs")

import torch  # noqa: E402
from sinabs import activation as sa  # noqa: E402
from sinabs.layers import ALIF as SALIF  # noqa: E402
from sinabs.layers.functional.alif import alif_forward_single  # noqa: E402

from ctsnn.compat import sinabs as cs  # noqa: E402

pytestmark = pytest.mark.peers

T, BATCH, N = 300, 2, 5


def reference(layer: SALIF, x):
    """Per-step spikes and states of sinabs' functional ALIF (states copied every step)."""
    a_m, a_a, a_s = layer.alpha_mem_calculated, layer.alpha_adapt_calculated, layer.alpha_syn_calculated
    z = torch.zeros(x.shape[:1] + x.shape[2:], dtype=x.dtype)
    st = {"v_mem": z, "b": z, "spike_threshold": z + layer.b0}
    if a_s is not None:
        st["i_syn"] = z
    outs, rec = [], {}
    for t in range(x.shape[1]):
        s, st = alif_forward_single(x[:, t], a_m, a_a, a_s, layer.adapt_scale, st, layer.spike_fn,
                                    layer.reset_fn, layer.surrogate_grad_fn, layer.min_v_mem,
                                    layer.b0, layer.norm_input)
        st = dict(st)
        outs.append(s)
        for k, v in st.items():
            rec.setdefault(k, []).append(v)
    return torch.stack(outs, 1), {k: torch.stack(v, 1) for k, v in rec.items()}, st


def make_pair(dtype, per_neuron, syn, spike_fn, reset_fn, norm_input, seed, **extra):
    g = torch.Generator().manual_seed(seed)
    u = lambda lo, hi, n: lo + (hi - lo) * torch.rand(n, generator=g, dtype=dtype)  # noqa: E731
    n = N if per_neuron else 1  # shape (1,): the same value for every neuron
    kw = dict(tau_mem=u(2.0, 15.0, n), tau_adapt=u(10.0, 60.0, n),
              tau_syn=u(1.5, 8.0, n) if syn else None,
              adapt_scale=float(u(0.5, 2.5, 1)), spike_threshold=float(u(0.6, 1.4, 1)),
              norm_input=norm_input, **extra)
    # sinabs' ALIF evaluates `if tau_syn` (fails for a tensor of several values) unless train_alphas
    if per_neuron and syn:
        kw["train_alphas"] = True
    ref = SALIF(spike_fn=spike_fn, reset_fn=reset_fn, **kw)
    ours = cs.ALIF(spike_fn=spike_fn, reset_fn=reset_fn, **{"record_states": True, **kw})
    amp = (10.0 if syn else 6.0) if norm_input else 1.5
    x = (torch.rand(BATCH, T, N, generator=g, dtype=dtype) - 0.25) * amp
    # sparse strong pulses: several spikes in one step for MultiSpike
    pulse = 12.0 * (float(kw["tau_mem"].max()) if norm_input else 1.0)
    x = (x + pulse * (torch.rand(BATCH, T, N, generator=g, dtype=dtype) < 0.03)).requires_grad_()
    w = torch.randn(BATCH, T, N, generator=g, dtype=dtype)
    return ref, ours, x, w


def grads(layer, x, spikes, final, w):
    loss = (spikes * w).sum() + final["v_mem"].sum() + final["b"].sum()
    names = [k for k, _ in layer.named_parameters()]
    gs = torch.autograd.grad(loss, [x] + [p for _, p in layer.named_parameters()])
    return dict(zip(["input"] + names, gs))


def check(ref, ours, x, w, state_tol, grad_tol):
    s_ref, rec, fin = reference(ref, x)
    s_ours = ours(x)
    assert s_ref.sum() > 0.05 * s_ref.numel(), "input too weak"
    assert torch.equal(s_ref.to(s_ours.dtype), s_ours)
    assert torch.equal(ref(x).to(s_ours.dtype), s_ours)  # the sinabs layer itself
    for k in ours.recordings:
        d = (rec[k] - ours.recordings[k]).abs().max().item()
        assert d <= state_tol, (k, d)
    g_ref = grads(ref, x, s_ref, fin, w)
    g_ours = grads(ours, x, s_ours, {"v_mem": ours.v_mem, "b": ours.b}, w)
    assert g_ref.keys() == g_ours.keys()
    for k in g_ref:
        scale = max(1.0, g_ref[k].abs().max().item())
        d = (g_ref[k] - g_ours[k]).abs().max().item()
        assert d <= grad_tol * scale, (k, d, scale)
        assert g_ref[k].abs().max() > 0, k
    return s_ref


SPIKE_FNS = [sa.SingleSpike, sa.MultiSpike]
RESETS = [sa.MembraneSubtract(), sa.MembraneReset()]


@pytest.mark.parametrize("spike_fn", SPIKE_FNS, ids=["single", "multi"])
@pytest.mark.parametrize("reset_fn", RESETS, ids=["subtract", "reset"])
@pytest.mark.parametrize("syn", [False, True], ids=["nosyn", "syn"])
@pytest.mark.parametrize("norm_input", [True, False], ids=["norm", "nonorm"])
@pytest.mark.parametrize("per_neuron", [False, True], ids=["shared", "perneuron"])
def test_float64_matrix(spike_fn, reset_fn, syn, norm_input, per_neuron):
    seed = zlib.crc32(repr((spike_fn.__name__, type(reset_fn).__name__, syn, norm_input, per_neuron)).encode())
    ref, ours, x, w = make_pair(torch.float64, per_neuron, syn, spike_fn, reset_fn, norm_input, seed,
                                min_v_mem=-0.5 if per_neuron else None)
    s = check(ref, ours, x, w, 1e-6, 1e-5)
    if spike_fn is sa.MultiSpike:
        assert s.max() >= 2  # several spikes in one step do happen


def test_float64_scalar_taus_0dim():
    """0-dim taus: sinabs adds ``(1 - alpha_adapt) * spikes`` with float32 spikes, so its b
    increments are rounded to float32 (type promotion of a 0-dim tensor); still within 1e-6."""
    dt = torch.float64
    kw = dict(tau_mem=torch.tensor(6.0, dtype=dt), tau_adapt=torch.tensor(30.0, dtype=dt),
              tau_syn=torch.tensor(3.0, dtype=dt), adapt_scale=1.8)
    ref = SALIF(**kw)
    ours = cs.ALIF(record_states=True, **kw)
    g = torch.Generator().manual_seed(3)
    x = ((torch.rand(BATCH, T, N, generator=g, dtype=dt) - 0.25) * 6).requires_grad_()
    w = torch.randn(BATCH, T, N, generator=g, dtype=dt)
    check(ref, ours, x, w, 1e-6, 1e-5)


@pytest.mark.parametrize("spike_fn, reset_fn, syn", [
    (sa.SingleSpike, sa.MembraneSubtract(), False), (sa.MultiSpike, sa.MembraneReset(), False),
    (sa.MultiSpike, sa.MembraneSubtract(), True), (sa.SingleSpike, sa.MembraneReset(), True),
], ids=["single-sub-nosyn", "multi-reset-nosyn", "multi-sub-syn", "single-reset-syn"])
def test_float32_default_usage(spike_fn, reset_fn, syn):
    """Plain Python-float arguments, float32 input (sinabs' everyday use)."""
    kw = dict(tau_mem=8.0, tau_adapt=40.0, tau_syn=4.0 if syn else None, adapt_scale=1.8)
    ref = SALIF(spike_fn=spike_fn, reset_fn=reset_fn, **kw)
    ours = cs.ALIF(spike_fn=spike_fn, reset_fn=reset_fn, **{"record_states": True, **kw})
    g = torch.Generator().manual_seed(7)
    x = ((torch.rand(BATCH, T, N, generator=g) - 0.25) * 6).requires_grad_()
    w = torch.randn(BATCH, T, N, generator=g)
    check(ref, ours, x, w, 1e-5, 1e-5)


@pytest.mark.parametrize("surr", [sa.SingleExponential(grad_width=0.3, grad_scale=2.0),
                                  sa.PeriodicExponential(grad_width=0.4, grad_scale=1.5),
                                  sa.Heaviside(window=0.5), sa.Gaussian(mu=0.1, sigma=0.3),
                                  sa.MultiGaussian(), lambda v, th: torch.sigmoid(4 * (v - th)) / th],
                         ids=["single_exp", "periodic_exp", "heaviside", "gaussian", "multigauss", "custom"])
def test_surrogates(surr):
    spike_fn = sa.SingleSpike
    ref, ours, x, w = make_pair(torch.float64, True, False, spike_fn, sa.MembraneSubtract(), True, 11,
                                surrogate_grad_fn=surr)
    check(ref, ours, x, w, 1e-6, 1e-5)


def test_subtract_value_and_min_v_mem():
    """subtract_value exactly representable in float32: sinabs computes ``spikes * subtract_value``
    with float32 spikes, so 0.7 would be subtracted as float32(0.7)."""
    ref, ours, x, w = make_pair(torch.float64, True, True, sa.MultiSpike,
                                sa.MembraneSubtract(subtract_value=0.75), False, 5, min_v_mem=-0.3)
    check(ref, ours, x, w, 1e-6, 1e-5)
    assert ours.recordings["v_mem"].min() >= -0.3


def test_ctsnn_markers_equal_sinabs_objects():
    kw = dict(tau_mem=torch.tensor([5.0, 9.0], dtype=torch.float64), tau_adapt=torch.tensor(
        [20.0, 50.0], dtype=torch.float64), adapt_scale=1.2)
    x = torch.rand(3, 100, 2, dtype=torch.float64) * 4
    a = cs.ALIF(spike_fn=sa.MultiSpike, reset_fn=sa.MembraneReset(), surrogate_grad_fn=sa.Heaviside(0.3), **kw)
    b = cs.ALIF(spike_fn=cs.MultiSpike, reset_fn=cs.MembraneReset(), surrogate_grad_fn=cs.Heaviside(0.3), **kw)
    assert torch.equal(a(x), b(x)) and torch.equal(a.v_mem, b.v_mem)


def test_state_carries_over_calls():
    """Two forward calls equal one call on the whole sequence (sinabs does this without tau_syn;
    with tau_syn sinabs 3.1.3 loses i_syn between calls, ctsnn keeps it)."""
    dt = torch.float64
    x = (torch.rand(2, 200, 3, dtype=dt) - 0.2) * 5
    for syn in (None, 3.0):
        kw = dict(tau_mem=torch.tensor([4.0, 6.0, 8.0], dtype=dt),
                  tau_adapt=torch.tensor([20.0, 30.0, 40.0], dtype=dt), adapt_scale=1.5,
                  tau_syn=None if syn is None else torch.tensor(syn, dtype=dt))
        whole, parts = cs.ALIF(**kw), cs.ALIF(**kw)
        s = whole(x)
        s2 = torch.cat([parts(x[:, :120]), parts(x[:, 120:])], 1)
        assert torch.equal(s, s2)
        assert (whole.v_mem - parts.v_mem).abs().max() < 1e-12
        assert (whole.b - parts.b).abs().max() < 1e-12
        if syn is None:
            ref = SALIF(**kw)
            s_ref = torch.cat([ref(x[:, :120]), ref(x[:, 120:])], 1)
            assert torch.equal(s_ref.to(dt), s2)
            assert (ref.v_mem - parts.v_mem).abs().max() < 1e-12


def test_multidim_neurons_and_per_channel_tau():
    dt = torch.float64
    tau = torch.tensor([4.0, 9.0, 14.0], dtype=dt).reshape(3, 1, 1)  # per channel of (C, H, W)
    kw = dict(tau_mem=tau, tau_adapt=torch.full((3, 1, 1), 25.0, dtype=dt), adapt_scale=1.1)
    ref, ours = SALIF(**kw), cs.ALIF(**kw)
    x = (torch.rand(2, 120, 3, 2, 2, dtype=dt) - 0.2) * 6
    s_ref = ref(x)
    assert torch.equal(s_ref.to(dt), ours(x))
    assert (ref.v_mem - ours.v_mem).abs().max() < 1e-12
    assert (ref.b - ours.b).abs().max() < 1e-12


def test_recordings_b_match_sinabs_dict():
    """sinabs' own recordings of b and spike_threshold are right (only v_mem/i_syn are shifted)."""
    ref, ours, x, w = make_pair(torch.float64, True, False, sa.SingleSpike, sa.MembraneSubtract(), True, 2,
                                record_states=True)
    ref(x)
    ours(x)
    for k in ("b", "spike_threshold"):
        assert (ref.recordings[k] - ours.recordings[k]).abs().max() < 1e-12
    assert (ref.recordings["v_mem"][:, -1] - ours.recordings["v_mem"][:, -1]).abs().max() < 1e-12


@pytest.mark.parametrize("kw, name", [
    (dict(tau_mem=0.0, tau_adapt=10.0), "tau_mem"),
    (dict(tau_mem=5.0, tau_adapt=-1.0), "tau_adapt"),
    (dict(tau_mem=5.0, tau_adapt=10.0, tau_syn=0.0), "tau_syn"),
    (dict(tau_mem=torch.tensor([5.0, -2.0]), tau_adapt=10.0), "tau_mem"),
    (dict(tau_mem=float("nan"), tau_adapt=10.0), "tau_mem"),
    (dict(tau_mem=5.0, tau_adapt=10.0, adapt_scale=0.0), "adapt_scale"),
    (dict(tau_mem=5.0, tau_adapt=10.0, spike_threshold=0.0), "spike_threshold"),
    (dict(tau_mem=5.0, tau_adapt=10.0, reset_fn=sa.MembraneReset(reset_value=0.5)), "reset_value"),
    (dict(tau_mem=5.0, tau_adapt=10.0, reset_fn=sa.MembraneSubtract(subtract_value=-1.0)), "subtract_value"),
    (dict(tau_mem=5.0, tau_adapt=10.0, spike_fn=sa.MaxSpike(3)), "spike_fn"),
    (dict(tau_mem=5.0, tau_adapt=10.0, surrogate_grad_fn="not a function"), "surrogate_grad_fn"),
    (dict(tau_mem=5.0, tau_adapt=10.0, min_v_mem=float("inf")), "min_v_mem"),
])
def test_bad_constructor_arguments(kw, name):
    with pytest.raises(ValueError, match=name):
        cs.ALIF(**kw)


def test_bad_shapes():
    layer = cs.ALIF(tau_mem=torch.tensor([5.0, 6.0, 7.0]), tau_adapt=10.0)
    with pytest.raises(ValueError, match="tau_mem"):
        layer(torch.rand(2, 10, 4))
    layer = cs.ALIF(tau_mem=5.0, tau_adapt=torch.tensor([10.0, 20.0]))
    with pytest.raises(ValueError, match="tau_adapt"):
        layer(torch.rand(2, 10, 3))
    layer = cs.ALIF(tau_mem=5.0, tau_adapt=10.0, tau_syn=torch.tensor([1.0, 2.0]), train_alphas=True)
    with pytest.raises(ValueError, match="tau_syn"):
        layer(torch.rand(2, 10, 3))
    with pytest.raises(ValueError, match="input_data"):
        cs.ALIF(tau_mem=5.0, tau_adapt=10.0)(torch.rand(10, 3))


@pytest.fixture
def float64_spikes(monkeypatch):
    """sinabs' SingleSpike/MultiSpike return float32 spikes even for float64 v_mem, so every
    gradient through a spike is rounded to float32; with that cast removed the gradients agree
    to float64 rounding, which shows the remaining difference is only that cast."""
    from sinabs.activation import spike_generation as sg

    def single(ctx, v_mem, spike_threshold, surrogate_grad_fn):
        ctx.save_for_backward(v_mem.clone())
        ctx.spike_threshold, ctx.surrogate_grad_fn = spike_threshold, surrogate_grad_fn
        return (v_mem - spike_threshold >= 0).to(v_mem.dtype)

    def multi(ctx, v_mem, spike_threshold, surrogate_grad_fn):
        ctx.save_for_backward(v_mem.clone())
        ctx.spike_threshold, ctx.surrogate_grad_fn = spike_threshold, surrogate_grad_fn
        return ((v_mem > 0) * torch.div(v_mem, spike_threshold, rounding_mode="trunc")).to(v_mem.dtype)

    monkeypatch.setattr(sg.SingleSpike, "forward", staticmethod(single))
    monkeypatch.setattr(sg.MultiSpike, "forward", staticmethod(multi))


@pytest.mark.parametrize("spike_fn, reset_fn, syn, norm_input", [
    (sa.SingleSpike, sa.MembraneSubtract(), True, False),
    (sa.MultiSpike, sa.MembraneReset(), False, True),
], ids=["single-sub-syn", "multi-reset-nosyn"])
def test_float64_gradients_exact_without_float32_spikes(float64_spikes, spike_fn, reset_fn, syn, norm_input):
    ref, ours, x, w = make_pair(torch.float64, True, syn, spike_fn, reset_fn, norm_input, 21,
                                min_v_mem=-0.5)
    check(ref, ours, x, w, 1e-11, 1e-9)


def test_training_loop_zero_grad_detaches_states():
    layer = cs.ALIF(tau_mem=[4.0, 6.0], tau_adapt=[20.0, 30.0], tau_syn=2.0, train_alphas=True)
    opt = torch.optim.SGD(layer.parameters(), lr=1e-3)
    for _ in range(2):
        layer.zero_grad()
        out = layer(torch.rand(2, 50, 2) * 5)
        out.sum().backward()  # would fail on the second pass if states kept the old graph
        opt.step()
    assert all(p.grad is not None for p in layer.parameters())
