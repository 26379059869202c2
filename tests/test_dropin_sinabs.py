"""ctsnn.compat.sinabs.ALIF used as a drop-in for sinabs' ALIF: sinabs' own helpers (utils.reset_states,
Network, zero_grad), its checkpoints, copies and pickles, against the real sinabs 3.1.3."""
import copy
import pickle

import pytest

sinabs = pytest.importorskip("sinabs")

import torch  # noqa: E402
from sinabs import activation as sa  # noqa: E402
from sinabs.layers import ALIF as SALIF  # noqa: E402
from sinabs.layers import StatefulLayer  # noqa: E402

from ctsnn.compat import sinabs as cs  # noqa: E402

pytestmark = pytest.mark.peers

DT = torch.float64
KW = dict(tau_mem=torch.tensor([3.0, 5.0, 8.0, 12.0], dtype=DT), tau_adapt=torch.tensor([20.0, 30.0, 25.0, 40.0],
          dtype=DT), adapt_scale=1.3, spike_threshold=0.8)


def nets(seed=0, dtype=torch.float32, **kw):
    """The same network, Linear -> ALIF -> Linear, with sinabs' ALIF and with ctsnn's (float32:
    sinabs' spikes are float32 whatever the state's dtype, so a float64 sinabs network fails at the
    next Linear)."""
    torch.manual_seed(seed)
    lin1, lin2 = torch.nn.Linear(3, 4).to(dtype), torch.nn.Linear(4, 2).to(dtype)
    with torch.no_grad():
        lin1.weight.abs_()  # excitatory: the ALIF layer spikes
    kw = {k: v.to(dtype) if isinstance(v, torch.Tensor) else v for k, v in {**KW, **kw}.items()}
    a = torch.nn.Sequential(copy.deepcopy(lin1), SALIF(**kw), copy.deepcopy(lin2))
    b = torch.nn.Sequential(copy.deepcopy(lin1), cs.ALIF(**kw), copy.deepcopy(lin2))
    return a, b


def batches(n=2, seed=1, dtype=DT):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(2, 60, 3, generator=g, dtype=dtype) * 6.0 for _ in range(n)]


def train(net, xs, reset):
    """Two batches (forward, loss, backward); ``reset(net)`` between them; per batch the loss and
    the gradients of every parameter."""
    out = []
    for k, x in enumerate(xs):
        if k and reset is not None:
            reset(net)
        for p in net.parameters():
            p.grad = None
        loss = (net(x) ** 2).sum()
        loss.backward()
        out.append((loss.detach(), {n: p.grad.clone() for n, p in net.named_parameters()}))
    return out


def assert_same_training(ra, rb, rel):
    """Equal losses and gradients up to ``rel`` of the largest gradient of each parameter."""
    for (la, ga), (lb, gb) in zip(ra, rb):
        assert abs(la - lb) <= rel * abs(la), (la, lb)
        assert ga.keys() == gb.keys()
        for n in ga:
            scale = ga[n].abs().max()  # 0 for tau_adapt: the surrogate reaches v only, as in sinabs
            assert scale > 0 or "tau_adapt" in n, n
            assert (ga[n] - gb[n]).abs().max() <= rel * scale, n


@pytest.mark.parametrize("syn", [None, 2.0])
def test_training_loop_with_sinabs_reset_states(syn):
    a, b = nets(tau_syn=None if syn is None else torch.tensor(syn, dtype=torch.float32))
    assert isinstance(b[1], StatefulLayer)
    xs = batches(dtype=torch.float32)
    ra = train(a, xs, sinabs.utils.reset_states)
    rb = train(b, xs, sinabs.utils.reset_states)
    assert_same_training(ra, rb, 1e-5)  # float32; measured
    assert a[1].firing_rate > 0.02
    # sinabs.utils.zero_grad alone (states detached, not reset) is a different run, the same in both
    a2, b2 = nets(tau_syn=None if syn is None else torch.tensor(syn, dtype=torch.float32))
    stale = train(a2, xs, sinabs.utils.zero_grad)
    if syn is None:  # with tau_syn sinabs 3.1.3 restarts i_syn from its buffer each call, ctsnn carries it
        assert_same_training(stale, train(b2, xs, sinabs.utils.zero_grad), 1e-5)
    assert abs(stale[1][0] - ra[1][0]) > 1e-3 * abs(ra[1][0])  # the reset matters


def test_network_reset_states_and_zero_grad():
    """sinabs.Network finds the layer among its spiking layers: reset_states zeroes its states in
    place, zero_grad cuts them from the old graph."""
    _, b = nets()
    net = sinabs.Network(analog_model=b, spiking_model=b)
    layer = b[1]
    b(batches(1, dtype=torch.float32)[0]).sum().backward()
    v = layer.v_mem
    assert v.grad_fn is not None and v.abs().max() > 0
    net.zero_grad()
    assert layer.v_mem.grad_fn is None and layer.v_mem is v  # detached in place
    net.reset_states()
    assert layer.v_mem is v and torch.count_nonzero(v) == 0  # zeroed in place, as sinabs does
    assert all(torch.count_nonzero(t) == 0 for t in layer.buffers())


def test_reset_states_randomize_as_sinabs():
    # float64 states (the default dtype's float32 would round sinabs' first threshold b0 + c b)
    ref, ours = SALIF(**KW, shape=(2, 4)).to(DT), cs.ALIF(**KW, shape=(2, 4)).to(DT)
    ranges = {"v_mem": (-0.5, 0.5), "b": (0.0, 0.2)}
    torch.manual_seed(3)
    ref.reset_states(randomize=True, value_ranges=ranges)
    torch.manual_seed(3)
    ours.reset_states(randomize=True, value_ranges=ranges)
    for (na, ta), (nb, tb) in zip(ref.named_buffers(), ours.named_buffers()):
        assert na == nb and torch.equal(ta, tb), na
    assert ours.v_mem.min() < 0 and float(ours.b.max()) <= 0.2
    x = batches(1)[0][:, :, :1].expand(2, 60, 4) * 0.5
    s_ref, s_ours = ref(x), ours(x)  # continues from the random states
    assert s_ref.sum() > 0 and torch.equal(s_ref.to(DT), s_ours)
    assert (ref.v_mem - ours.v_mem).abs().max() < 1e-12


def test_attributes_as_sinabs():
    ref, ours = SALIF(**KW), cs.ALIF(**KW)
    for layer in (ref, ours):
        assert layer.does_spike and not layer.is_state_initialised() and layer.shape is None
    assert ours.spike_fn is cs.SingleSpike and cs.ALIF(**KW, spike_fn=sa.MultiSpike).spike_fn is sa.MultiSpike
    assert torch.equal(ours.alpha_mem_calculated, ref.alpha_mem_calculated)
    x = batches(1)[0][:, :, :1].expand(2, 60, 4)
    ref(x), ours(x)
    assert ours.is_state_initialised() and ours.shape == ref.shape == (2, 4)
    twin = cs.ALIF(**ours.arg_dict)  # arg_dict rebuilds the layer (states shaped, zero)
    assert twin.shape == (2, 4) and torch.count_nonzero(twin.v_mem) == 0
    ours.reset_states()
    assert torch.equal(twin(x), ours(x))


def keys_and_shapes(module):
    return [(k, tuple(v.shape)) for k, v in module.state_dict().items()]


@pytest.mark.parametrize("kw", [dict(), dict(tau_syn=torch.tensor(2.0, dtype=DT)),
                                dict(tau_syn=torch.tensor(2.0, dtype=DT), train_alphas=True)],
                         ids=["plain", "syn", "alphas"])
def test_checkpoints_load_both_ways(kw):
    ref, ours = SALIF(**KW, **kw), cs.ALIF(**KW, **kw)
    assert keys_and_shapes(ref) == keys_and_shapes(ours)  # fresh: empty states
    ours.load_state_dict(ref.state_dict(), strict=True)
    ref.load_state_dict(ours.state_dict(), strict=True)
    x1, x2 = batches(2, seed=4)
    x1, x2 = x1[:, :, :1].expand(2, 60, 4), x2[:, :, :1].expand(2, 60, 4)
    src = SALIF(**KW, **kw)
    with torch.no_grad():  # a trained sinabs layer, after a forward pass
        for p in src.parameters():
            p.mul_(0.97)
    src(x1)
    dst = cs.ALIF(**KW, **kw, shape=(2, 4)).to(DT)  # float64 states: loaded without rounding
    assert keys_and_shapes(src) == keys_and_shapes(dst)
    dst.load_state_dict(src.state_dict(), strict=True)
    s_src, s_dst = src(x2), dst(x2)  # continues from the loaded parameters and states
    assert s_src.sum() > 0 and torch.equal(s_src.to(DT), s_dst)
    assert (src.v_mem - dst.v_mem).abs().max() < 1e-12
    back = SALIF(**KW, **kw, shape=(2, 4)).to(DT)
    back.load_state_dict(dst.state_dict(), strict=True)  # and back into sinabs
    for (na, ta), (nb, tb) in zip(back.state_dict().items(), dst.state_dict().items()):
        assert na == nb and torch.equal(ta.to(DT), tb.to(DT)), na


def test_deepcopy_pickle_and_dtype_before_and_after_forward():
    layer = cs.ALIF(**KW, record_states=True)
    x = torch.rand(2, 40, 4, dtype=DT, requires_grad=True) * 3
    for stage in ("fresh", "after forward"):
        for twin in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
            assert keys_and_shapes(twin) == keys_and_shapes(layer), stage
            for (na, ta), (nb, tb) in zip(layer.state_dict().items(), twin.state_dict().items()):
                assert torch.equal(ta, tb), (stage, na)
            assert twin.v_mem.grad_fn is None
        layer(x).sum().backward(retain_graph=True)
    twin = copy.deepcopy(layer)
    assert layer.v_mem.grad_fn is not None  # the original keeps its graph
    assert torch.equal(twin(x.detach()), layer(x).detach())  # the copy continues the same way
    f32 = copy.deepcopy(layer).to(torch.float32)
    assert f32.tau_mem.dtype == torch.float32 and f32.v_mem.dtype == torch.float32
    assert f32(x.detach().float()).dtype == torch.float32


def without(module: str, code: str) -> str:
    """Run ``code`` in a fresh interpreter where ``import <module>`` fails; its stdout."""
    import os
    import subprocess
    import sys
    src = f"import sys; sys.modules[{module!r}] = None\n" + code
    res = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert res.returncode == 0, res.stderr
    return res.stdout


CODE = """
import copy, pickle, torch
from ctsnn.compat import sinabs as cs
layer = cs.ALIF(tau_mem=torch.tensor([4.0, 6.0], dtype=torch.float64), tau_adapt=20.0, tau_syn=2.0)
x = torch.linspace(0, 8, 2 * 50 * 2, dtype=torch.float64).reshape(2, 50, 2)
s = layer(x)
copy.deepcopy(layer), pickle.dumps(layer)
print(sorted(layer.state_dict()), layer.is_state_initialised(), int(s.sum()), repr(float(layer.v_mem.detach().sum())))
layer.reset_states()
print(float(layer.v_mem.abs().sum()), type(layer).__mro__[2].__module__)
"""


def test_without_sinabs_the_dialect_runs_the_same():
    out = without("sinabs", CODE).splitlines()
    assert out[1] == "0.0 ctsnn.compat.sinabs"  # the stand-in base, and the states zeroed
    layer = cs.ALIF(tau_mem=torch.tensor([4.0, 6.0], dtype=DT), tau_adapt=20.0, tau_syn=2.0)
    x = torch.linspace(0, 8, 2 * 50 * 2, dtype=DT).reshape(2, 50, 2)
    s = layer(x)
    assert s.sum() > 0
    assert out[0] == f"{sorted(layer.state_dict())} True {int(s.sum())} {float(layer.v_mem.detach().sum())!r}"


@pytest.mark.slow
def test_compile_fullgraph_equals_eager():
    """torch.compile(ALIF(...), fullgraph=True) (aot_eager: the traced graph itself): spikes, the
    state buffers and the gradients of tau_mem, tau_adapt, tau_syn identical to eager; a bad value
    set in place afterwards is refused by the compiled call (graph assertion).  Measured once with
    inductor too: identical in float64 (not repeated here: its compile takes minutes)."""
    torch._dynamo.reset()
    eager = cs.ALIF(tau_mem=torch.tensor([3.0, 5.0, 8.0, 12.0], dtype=DT), tau_adapt=torch.tensor(20.0, dtype=DT),
                    tau_syn=torch.tensor(2.0, dtype=DT), adapt_scale=1.3, spike_threshold=0.8, shape=(2, 4)).to(DT)
    mod = copy.deepcopy(eager)
    compiled = torch.compile(mod, fullgraph=True, backend="aot_eager")
    x = torch.rand(2, 4, 4, generator=torch.Generator().manual_seed(2), dtype=DT) * 6
    res = []
    for layer, m in ((compiled, mod), (eager, eager)):
        m.reset_states()
        s = layer(x)
        states = [m.v_mem, m.i_syn, m.b, m.spike_threshold]
        (s.sum() + sum((t ** 2).sum() for t in states)).backward()
        res.append([s] + [t.detach() for t in states] + [p.grad for p in m.parameters()])
    assert res[1][0].sum() > 0
    for a, b in zip(*res):
        assert torch.equal(a, b)
    mod.reset_states()  # (the states as at the first call: the same graph runs, no recompilation)
    with torch.no_grad():
        mod.tau_mem[1] = -5.0
    with pytest.raises(RuntimeError, match="tau_mem must be > 0"):
        compiled(x)


def _set(layer, **settings):
    for k, v in settings.items():
        setattr(layer, k, v)
    layer.reset_states()


def test_settings_changed_after_construction_take_effect_as_in_sinabs():
    """sinabs reads spike_fn, reset_fn, surrogate_grad_fn, min_v_mem and norm_input at each call,
    so an assignment after construction takes effect: the dialect's spikes equal sinabs' after
    each change (before: spike_fn was read once, at construction, so MultiSpike was ignored)."""
    # strong (several spikes in one step) and partly negative, so that min_v_mem clips
    x = (batches(1)[0][:, :, :1].expand(2, 60, 4) * 3).clone()
    x[:, 20:35] = -2.0
    ref, ours = SALIF(**KW), cs.ALIF(**KW)
    before = ref(x)
    ours(x)
    for settings in (dict(spike_fn=sa.MultiSpike), dict(reset_fn=sa.MembraneReset()),
                     dict(min_v_mem=-0.3), dict(norm_input=False), dict(spike_fn=sa.SingleSpike)):
        _set(ref, **settings)
        _set(ours, **settings)
        a, b = ref(x), ours(x)
        assert not torch.equal(a, before), f"{settings} does not change sinabs' output: no check"
        assert torch.equal(a, b.to(a.dtype)), settings
        before = a
    assert ref(x).max() == 1 and float(_set(ref, spike_fn=sa.MultiSpike) or ref(x).max()) > 1


@pytest.mark.parametrize("name, value, match", [
    ("spike_fn", "bogus", "spike_fn"), ("reset_fn", sa.MembraneSubtract(subtract_value=-1.0), "subtract_value"),
    ("reset_fn", 3, "reset_fn"), ("min_v_mem", float("nan"), "min_v_mem"),
    ("adapt_scale", -1.0, "adapt_scale"), ("adapt_scale", 0.0, "adapt_scale")])
def test_bad_settings_assigned_after_construction_are_refused(name, value, match):
    layer = cs.ALIF(**KW)
    with pytest.raises((ValueError, TypeError), match=match):
        setattr(layer, name, value)


def test_a_setting_changed_in_place_is_checked_at_the_next_call():
    layer = cs.ALIF(**KW, reset_fn=cs.MembraneSubtract(subtract_value=0.5))
    x = batches(1)[0][:, :, :1].expand(2, 60, 4)
    s1 = layer(x)
    layer.reset_fn.subtract_value = 0.2  # takes effect: rebuilt at the next call
    layer.reset_states()
    s2 = layer(x)
    assert not torch.equal(s2, s1)
    assert torch.equal(s2, cs.ALIF(**KW, reset_fn=cs.MembraneSubtract(subtract_value=0.2))(x))
    layer.reset_fn.subtract_value = -1.0
    with pytest.raises(ValueError, match="subtract_value"):
        layer(x)


@pytest.mark.slow
def test_compiled_layer_follows_a_setting_change():
    """A compiled layer whose reset_fn and spike_fn are assigned new values retraces with the new
    layer (the model is rebuilt eagerly at the assignment) and equals eager; before, the rebuild ran
    inside the trace and failed in the model's checks.  A setting changed in place while compiled
    (so that the layer would have to be rebuilt inside the trace) is refused with a message saying
    to assign a new object."""
    torch._dynamo.reset()
    x = batches(1)[0][:, :, :1].expand(2, 60, 4).to(torch.float32) * 3
    eager = cs.ALIF(**KW).float()
    mod = copy.deepcopy(eager)
    compiled = torch.compile(mod, fullgraph=True, backend="aot_eager")
    _set(mod), _set(eager)
    assert torch.equal(compiled(x), eager(x))
    mod.reset_fn.subtract_value = 0.25  # MembraneSubtract() -> subtract 0.25: another model
    with pytest.raises(Exception, match="assign a new object"):
        compiled(x)
    settings = dict(reset_fn=cs.MembraneReset(), spike_fn=cs.MultiSpike)
    _set(mod, **settings)
    _set(eager, **settings)
    a, b = compiled(x), eager(x)
    assert torch.equal(a, b) and a.max() > 1
