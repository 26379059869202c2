"""DiscreteLayer options added for step-based peers (sinabs): impulse_start input, multi_spike,
threshold_grad=False, per-state detach_reset, state_min; ALIF(subtract="threshold")."""
import math

import pytest
import torch

import ctsnn
from ctsnn import surrogate
from ctsnn.models import ALIF, IF, LIF, CubaLIF

D = torch.float64


def test_impulse_start_is_propagated_impulse():
    ts, tm, r = 3.0, 7.0, 2.0
    model = CubaLIF(tau_syn=ts, tau_mem=tm, r=r)
    start = ctsnn.discretize(model, 1.0, input="impulse_start", surrogate="heaviside")
    end = ctsnn.discretize(model, 1.0, input="impulse", surrogate="heaviside")
    y = torch.tensor([[0.1, 0.3]], dtype=D)  # v, i
    x = torch.tensor([0.2], dtype=D)
    _, y1 = start(x, y)
    # closed form of tau_syn i' = -i, tau_mem v' = -v + r i over one step from (v0, i0 + x):
    # i(1) = i0 e^{-1/ts}, v(1) = v0 e^{-1/tm} + r i0 ts / (ts - tm) (e^{-1/ts} - e^{-1/tm})
    v0, i0 = 0.1, 0.3 + 0.2
    es, em = math.exp(-1 / ts), math.exp(-1 / tm)
    want = torch.tensor([[v0 * em + r * i0 * ts / (ts - tm) * (es - em), i0 * es]], dtype=D)
    assert torch.allclose(y1, want, atol=1e-15, rtol=0)
    # an impulse at the start of a step equals the same impulse at the end of the previous step
    _, a = end(x, y)
    _, a = end(torch.zeros_like(x), a)
    _, b = start(torch.zeros_like(x), y)
    _, b = start(x, b)
    assert torch.allclose(a, b, atol=1e-15, rtol=0)


def test_multi_spike_subtract_and_to_value():
    v0 = torch.tensor([[0.5], [1.0], [2.7], [4.0], [-3.0]], dtype=D)
    x = torch.zeros(5, dtype=D)
    lif = IF(v_th=1.0, reset="subtract")
    layer = ctsnn.discretize(lif, 1.0, input="impulse", multi_spike=True, surrogate="atan",
                             fire_at_zero=True)
    out, y = layer(x, v0)
    assert out.tolist() == [0.0, 1.0, 2.0, 4.0, 0.0]
    assert torch.equal(y[:, 0], v0[:, 0] - out)
    lif0 = IF(v_th=1.0, reset="to_value", v_reset=-0.2)
    out0, y0 = ctsnn.discretize(lif0, 1.0, multi_spike=True, fire_at_zero=True)(x, v0)
    assert out0.tolist() == [0.0, 1.0, 2.0, 4.0, 0.0]
    assert torch.allclose(y0[1:4, 0], torch.full((3,), -0.2, dtype=D))  # reset once


def test_multi_spike_alif_adaptation_counts_every_spike():
    m = ALIF(tau_mem=1e9, tau_adapt=1e9, adapt_jump=0.3, v_th=1.0, reset="subtract", subtract="threshold")
    layer = ctsnn.discretize(m, 1.0, multi_spike=True, threshold_grad=False,
                             surrogate=surrogate.single_exponential())
    y = torch.tensor([[3.5, 0.2]], dtype=D)  # v, b: level 1.2 -> trunc(3.5/1.2) = 2 spikes
    out, y1 = layer(torch.zeros(1, dtype=D), y)
    assert out.item() == 2.0
    assert abs(y1[0, 0].item() - (3.5 - 2 * 1.2)) < 1e-8  # subtracts 2 x the pre-spike threshold
    assert abs(y1[0, 1].item() - (0.2 + 2 * 0.3)) < 1e-8


def test_threshold_grad_and_detach_states():
    m = ALIF(tau_mem=5.0, tau_adapt=20.0, adapt_jump=0.5, v_th=1.0, reset="to_value")
    y = torch.tensor([[1.3, 0.1]], dtype=D, requires_grad=True)
    x = torch.zeros(1, dtype=D)
    for tg, expect_b_grad in ((True, True), (False, False)):
        layer = ctsnn.discretize(m, 1.0, surrogate="atan", threshold_grad=tg, detach_reset=True)
        out, _ = layer(x, y)
        (g,) = torch.autograd.grad(out.sum(), y)
        assert g[0, 0] != 0
        assert (g[0, 1] != 0) == expect_b_grad
    # detach only v's jump: b still receives the spike's gradient through its jump
    layer = ctsnn.discretize(m, 1.0, surrogate="atan", detach_reset=("v",))
    _, y1 = layer(x, y)
    (gv,) = torch.autograd.grad(y1[0, 1], y)
    assert gv[0, 0] != 0
    layer = ctsnn.discretize(m, 1.0, surrogate="atan", detach_reset=True)
    _, y1 = layer(x, y)
    (gv,) = torch.autograd.grad(y1[0, 1], y)
    assert gv[0, 0] == 0


def test_state_min_clamps():
    layer = ctsnn.discretize(LIF(tau_mem=4.0), 1.0, state_min={"v": -0.5})
    ran = layer.run(torch.full((20, 3), -1.0, dtype=D), record_states=True)
    out, y, states = ran.out, ran.state, ran.states
    assert states[..., 0].min() == -0.5


def test_level_surrogates_match_formulas():
    g = torch.linspace(-2, 2, 41, dtype=D, requires_grad=True)
    L = torch.full_like(g, 1.5)
    cases = {
        surrogate.single_exponential(0.3, 2.0): lambda g: 2.0 / (1.5 * 0.3) * torch.exp(-g.abs() / (1.5 * 0.3)),
        surrogate.heaviside_window(0.5): lambda g: (g >= -0.5).to(D) / 1.5,
        surrogate.threshold_fn(lambda v, th: v * th): lambda g: (g + 1.5) * 1.5,
    }
    for f, d in cases.items():
        assert f.uses_level
        s = f(g, L)
        assert torch.equal(s, (g >= 0).to(D))
        (gg,) = torch.autograd.grad(s.sum(), g)
        assert torch.allclose(gg, d(g.detach()), atol=1e-14)
    gs = surrogate.gaussian(0.1, 0.3)
    (gg,) = torch.autograd.grad(gs(g).sum(), g)
    want = torch.exp(-(g.detach() - 0.1) ** 2 / (2 * 0.09)) / (0.3 * math.sqrt(2 * math.pi))
    assert torch.allclose(gg, want, atol=1e-14)


def test_alif_subtract_threshold_continuous():
    """At an exact crossing v = v_th + b, subtracting the current threshold lands on v_reset."""
    m = ALIF(tau_mem=0.02, tau_adapt=0.1, adapt_jump=0.2, v_th=1.0, reset="subtract", subtract="threshold")
    J, k = m.jump_map(0, D)
    assert J[0, 2 if m.n_states == 3 else 1] == -1
    tr = ctsnn.simulate(m, current=1.6, t_end=0.3, dt=1e-3, dtype=D)
    assert len(tr.spike_times) >= 3
    assert tr.spike_post[:, 0].abs().max() < 1e-9


def test_bad_options():
    with pytest.raises(ValueError, match="subtract"):
        ALIF(tau_mem=5.0, tau_adapt=10.0, adapt_jump=0.1, subtract="b")
    with pytest.raises(ValueError, match="subtract"):
        ALIF(tau_mem=5.0, tau_adapt=10.0, adapt_jump=0.1, adaptation="current", subtract="threshold")
    m = LIF(tau_mem=5.0)
    with pytest.raises(ValueError, match="input"):
        ctsnn.discretize(m, 1.0, input="impulse_end")
    with pytest.raises(ValueError, match="detach_reset"):
        ctsnn.discretize(m, 1.0, detach_reset=("w",))
    with pytest.raises(ValueError, match="state_min"):
        ctsnn.discretize(m, 1.0, state_min={"b": 0.0})
    with pytest.raises(ValueError, match="state_min"):
        ctsnn.discretize(m, 1.0, state_min={"v": float("nan")})
    with pytest.raises(ValueError, match="reset_delay"):
        ctsnn.discretize(m, 1.0, reset_delay=True, multi_spike=True)
    with pytest.raises(ValueError, match="grad_width"):
        surrogate.single_exponential(grad_width=0.0)


@pytest.mark.parametrize("syn", [False, True])
def test_sinabs_layer_is_exact_discretisation_of_its_model(syn):
    """Below threshold the sinabs dialect equals ctsnn.simulate of its own ALIF model: without a
    synapse the input is a current held over each step (norm_input), with one it is an input spike
    at the start of each step (t = 0, 1, ...; dt = 1)."""
    from ctsnn.compat import sinabs as cs

    T = 60
    layer = cs.ALIF(tau_mem=torch.tensor([4.0, 7.0], dtype=D), tau_adapt=torch.tensor([20.0, 30.0], dtype=D),
                    tau_syn=torch.tensor(3.0, dtype=D) if syn else None, spike_threshold=100.0,
                    record_states=True)
    x = torch.rand(1, T, 2, dtype=D, generator=torch.Generator().manual_seed(0))
    layer(x)
    model = layer.build((2,))[0].to_model()
    if not syn:
        tr = ctsnn.simulate(model, current=x[0], t_end=float(T), dt=1.0, dtype=D, record=("v",))
        assert (tr["v"][1:] - layer.recordings["v_mem"][0]).abs().max() < 1e-13
    else:
        times = torch.arange(T, dtype=D).repeat_interleave(2)
        tr = ctsnn.simulate(model, spikes=(times, torch.tensor([0, 1]).repeat(T), x[0].reshape(-1)),
                            t_end=float(T), dt=1.0, dtype=D, record=("v", "i"))
        assert (tr["v"][1:] - layer.recordings["v_mem"][0]).abs().max() < 1e-13
        # the trace holds i after the jump at t; the layer's i at the end of step t is i((t+1)-)
        assert (tr["i"][1:T] - x[0, 1:] - layer.recordings["i_syn"][0, :-1]).abs().max() < 1e-13


def test_unknown_keywords_are_refused_by_the_function_that_received_them():
    m = LIF(tau_mem=5.0)
    with pytest.raises(TypeError, match=r"discretize\(\) got unexpected keyword argument 'reset_dely' "
                                        r"\(did you mean 'reset_delay'\?\)"):
        ctsnn.discretize(m, 1.0, reset_dely=True)
    with pytest.raises(TypeError, match=r"discretize\(\).*'alpah' \(did you mean 'alpha'\?\)"):
        ctsnn.discretize(m, 1.0, surrogate="atan", alpah=3.0)
    with pytest.raises(TypeError, match=r"discretize\(\).*'alpha'.*callable surrogate"):
        ctsnn.discretize(m, 1.0, surrogate=surrogate.atan(), alpha=3.0)
    with pytest.raises(TypeError, match=r"DiscreteLayer\(\) got unexpected keyword argument 'methd' "
                                        r"\(did you mean 'method'\?\)"):
        ctsnn.DiscreteLayer(m, 1.0, methd="euler")
    with pytest.raises(ValueError, match=r"simulate\(\) got unexpected keyword argument 'recrod' "
                                         r"\(did you mean 'record'\?\)"):
        ctsnn.simulate(m, current=2.0, t_end=5.0, dt=1.0, recrod=("v",))
    # a named surrogate's own parameters still pass, through discretize or surrogate_kw
    a = ctsnn.discretize(m, 1.0, surrogate="triangle", alpha=0.5)
    b = ctsnn.DiscreteLayer(m, 1.0, surrogate="triangle", surrogate_kw={"alpha": 0.5})
    g = torch.linspace(-1, 1, 9, dtype=D, requires_grad=True)
    (ga,) = torch.autograd.grad(a.spike_fn(g).sum(), g)
    (gb,) = torch.autograd.grad(b.spike_fn(g).sum(), g)
    assert torch.equal(ga, gb) and torch.allclose(ga, 0.5 * torch.relu(1 - g.detach().abs()))


def test_options_table_decides_and_names_the_conflict():
    from ctsnn.discrete import options as dopt
    m = LIF(tau_mem=5.0)
    for rule in dopt.LAYER_RULES:
        assert rule.when not in rule.excludes
    layer = ctsnn.discretize(m, 1.0, reset_delay=True)
    assert dopt.conflicts(layer.features()) is None
    assert dopt.conflicts(layer.features() | {"multi_spike"})[1] == ["multi_spike"]
    with pytest.raises(ValueError, match=r"reset_delay=True .* does not support: multi_spike, state_min"):
        ctsnn.discretize(m, 1.0, reset_delay=True, multi_spike=True, state_min={"v": -1.0})
    with pytest.raises(ValueError, match=r"events='in_step' .* does not support: input != 'zoh', reset_delay"):
        ctsnn.discretize(m, 1.0, events="in_step", reset_delay=True)
    # the fused planner reads the same table: without gradients reset_delay runs fused, with them not
    assert dopt.torch_only(layer.features(), grad=False) is None
    assert "gradients with reset_delay" in dopt.torch_only(layer.features(), grad=True)


def test_run_result_and_spikes_vocabulary():
    layer = ctsnn.discretize(LIF(tau_mem=4.0, reset="subtract"), 1.0)
    x = torch.full((30, 2, 3), 0.4, dtype=D)
    res = layer.run(x, record_states=True)
    assert res.out.shape == x.shape and res.state.shape == (2, 3, 1) and res.states.shape == (30, 2, 3, 1)
    assert res.spikes is None and res.backend == layer.last_backend
    sparse = layer.run(x, output="sparse")
    sp = sparse.spikes
    assert sparse.out is None and torch.equal(sparse.state, res.state) and torch.equal(sp.dense(), res.out)
    # Trace's names: spike_times at the end of each event's step, spike_neurons flat, counts per element
    assert torch.equal(sp.spike_times, (sp.spike_steps + 1).double())
    assert torch.equal(sp.spike_counts(), res.out.sum(0).long()) and sp.n_spikes == int(res.out.sum())
    assert torch.equal(sp.times, sp.spike_times)
    assert sp.index is sp.spike_neurons and sp.value is sp.spike_values and sp.step is sp.spike_steps
    with pytest.raises(AttributeError):
        sp.index = sp.spike_neurons
    with pytest.warns(DeprecationWarning, match="res.out|result.out"):
        out, y, st = res
    assert out is res.out and y is res.state and st is res.states
    with pytest.warns(DeprecationWarning):
        assert sparse[0] is sp


def test_layer_copies_and_pickles_after_a_fused_run():
    import copy
    import pickle
    layer = ctsnn.discretize(LIF(tau_mem=4.0, reset="subtract"), 1.0)
    x = torch.rand(40, 3, 1, dtype=D, generator=torch.Generator().manual_seed(1))
    ref = layer.run(x)
    for twin in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        got = twin.run(x)
        assert got.backend == ref.backend and torch.equal(got.out, ref.out) and torch.equal(got.state, ref.state)


def test_docs_show_the_options_table_as_it_stands():
    from pathlib import Path

    from ctsnn.discrete import options as dopt
    page = (Path(__file__).resolve().parents[1] / "docs" / "derivations.md").read_text()
    assert dopt.table_markdown() in page
