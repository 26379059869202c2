"""ctsnn.compat.spikingjelly nodes used as drop-ins for spikingjelly 2.0.0's: its functional helpers
(reset_net, set_step_mode, detach_net, memories, functional forwards), v_seq, attributes, copies,
pickles and torch.compile, against the real spikingjelly."""
import copy
import pickle

import pytest

sj = pytest.importorskip("spikingjelly.activation_based.neuron")

import torch  # noqa: E402
from spikingjelly.activation_based import base, functional, surrogate  # noqa: E402

from ctsnn.compat import spikingjelly as cj  # noqa: E402

pytestmark = pytest.mark.peers

DT = torch.float64


def node_pair(kind, **kw):
    if kind == "lif":
        kw = dict(tau=3.0, decay_input=True, **kw)
        return sj.LIFNode(**kw), cj.LIFNode(**kw)
    return sj.IFNode(**kw), cj.IFNode(**kw)


def nets(kind, **kw):
    torch.manual_seed(0)
    lin1, lin2 = torch.nn.Linear(3, 5).to(DT), torch.nn.Linear(5, 2).to(DT)
    with torch.no_grad():
        lin1.weight.abs_()  # excitatory: the nodes spike
    a, b = node_pair(kind, **kw)
    return (torch.nn.Sequential(copy.deepcopy(lin1), a, copy.deepcopy(lin2)),
            torch.nn.Sequential(copy.deepcopy(lin1), b, copy.deepcopy(lin2)))


def run(net, x, step_mode):
    if step_mode == "m":
        return net(x)
    return torch.stack([net(x[t]) for t in range(x.shape[0])])


def train(net, xs, step_mode, between):
    rec = []
    for k, x in enumerate(xs):
        if k:
            between(net)
        for p in net.parameters():
            p.grad = None
        loss = (run(net, x, step_mode) ** 2).sum()
        loss.backward()
        rec.append((loss.detach(), {n: p.grad.clone() for n, p in net.named_parameters()}))
    return rec


def assert_same(ra, rb, rel):
    for (la, ga), (lb, gb) in zip(ra, rb):
        assert abs(la - lb) <= rel * abs(la), (la, lb)
        for n in ga:
            scale = ga[n].abs().max()
            assert scale > 0, n
            assert (ga[n] - gb[n]).abs().max() <= rel * scale, (n, scale)


@pytest.mark.parametrize("kind, kw", [("lif", dict(v_reset=-0.1, surrogate_function=surrogate.ATan())),
                                      ("lif", dict(v_reset=None, detach_reset=True)),
                                      ("if", dict(v_reset=0.2, v_threshold=3.0))], ids=["lif-hard", "lif-soft", "if"])
@pytest.mark.parametrize("step_mode", ["s", "m"])
def test_training_loop_with_reset_net(kind, kw, step_mode):
    a, b = nets(kind, **kw)
    for net in (a, b):
        functional.set_step_mode(net, step_mode)
    assert isinstance(b[1], base.MemoryModule) and b[1].step_mode == step_mode
    xs = 3.0 * torch.rand(2, 30, 4, 3, dtype=DT, generator=torch.Generator().manual_seed(1))
    ra = train(a, xs, step_mode, functional.reset_net)
    rb = train(b, xs, step_mode, functional.reset_net)
    assert_same(ra, rb, 1e-12)
    # without the reset the second batch starts from the first one's membrane (detach_net keeps it)
    a2, b2 = nets(kind, **kw)
    for net in (a2, b2):
        functional.set_step_mode(net, step_mode)
    stale = train(a2, xs, step_mode, functional.detach_net)
    assert_same(stale, train(b2, xs, step_mode, functional.detach_net), 1e-12)
    assert abs(stale[1][0] - ra[1][0]) > 1e-6 * abs(ra[1][0])


@pytest.mark.parametrize("v_reset", [0.0, -0.3, None])
def test_v_fresh_and_after_reset_as_spikingjelly(v_reset):
    ref, ours = node_pair("lif", v_reset=v_reset)
    assert type(ours.v) is type(ref.v) and ours.v == ref.v  # a float: 0.0 or v_reset
    x = torch.rand(4, 3, dtype=DT) * 2
    ref(x), ours(x)
    assert (ours.v - ref.v).abs().max() <= 1e-15
    functional.reset_net(ref), functional.reset_net(ours)
    assert type(ours.v) is type(ref.v) and ours.v == ref.v
    assert ours.state_dict() == {} and ref.state_dict() == {}


def test_memories_and_functional_forward():
    a, b = nets("lif", v_reset=None)
    x = torch.rand(5, 4, 3, dtype=DT) * 2
    run(a, x, "s"), run(b, x, "s")
    na, nb = list(base.named_memories(a)), list(base.named_memories(b))
    assert [k for k, _ in na] == [k for k, _ in nb] == ["1.v"]
    fresh = nets("lif", v_reset=None)[1]
    base.load_memories(fresh, base.extract_memories(a))  # spikingjelly's membrane into ctsnn's node
    y = torch.rand(3, 4, 3, dtype=DT) * 2
    assert (run(fresh, y, "s") - run(a, y, "s")).abs().max() <= 1e-12
    # explicit-state forward through spikingjelly's own wrapper
    fa, fb = base.to_functional_forward(a[1]), base.to_functional_forward(b[1])
    h = torch.rand(4, 5, dtype=DT) * 2
    v0 = torch.rand(4, 5, dtype=DT)
    (sa,), (va,) = fa((h,), (v0,))
    (sb,), (vb,) = fb((h,), (v0,))
    assert torch.equal(sa, sb) and (va - vb).abs().max() <= 1e-15
    assert torch.equal(b[1].v, nb[0][1])  # the functional call left the node's memory alone
    functional.set_step_mode(b[1], "m"), functional.set_step_mode(a[1], "m")
    (sa,), (va,) = fa((y[:, :, :1].expand(3, 4, 5),), (v0,))
    (sb,), (vb,) = fb((y[:, :, :1].expand(3, 4, 5),), (v0,))
    assert torch.equal(sa, sb) and (va - vb).abs().max() <= 1e-12


@pytest.mark.parametrize("step_mode", ["s", "m"])
def test_store_v_seq(step_mode):
    ref, ours = node_pair("lif", v_reset=-0.1, store_v_seq=True, step_mode=step_mode)
    x = torch.rand(6, 2, 3, dtype=DT) * 2
    run(ref, x, step_mode), run(ours, x, step_mode)
    assert ours.v_seq.shape == ref.v_seq.shape == (6, 2, 3)
    assert (ours.v_seq - ref.v_seq).abs().max() <= 1e-12
    functional.reset_net(ours)
    assert ours.v_seq is None


def test_attributes_as_spikingjelly_and_changes_take_effect():
    ref, ours = node_pair("lif", v_reset=None, surrogate_function=surrogate.Sigmoid(alpha=3.0))
    for name in ("tau", "decay_input", "v_threshold", "v_reset", "detach_reset", "step_mode"):
        assert getattr(ours, name) == getattr(ref, name), name
    assert isinstance(ours.surrogate_function, surrogate.Sigmoid)
    assert isinstance(cj.LIFNode(surrogate_function="ATan").surrogate_function, surrogate.ATan)
    assert ours.single_step_forward.__self__ is ours and ours.multi_step_forward.__self__ is ours
    x = torch.rand(20, 2, 3, dtype=DT) * 2
    for node in (ref, ours):  # spikingjelly reads these on every step; so does the layer made from them
        node.tau, node.v_threshold, node.decay_input = 5.0, 0.6, False
        node.surrogate_function = surrogate.ATan(alpha=1.5)
        functional.set_step_mode(node, "m")
    xr = x.clone().requires_grad_()
    xo = x.clone().requires_grad_()
    sa, sb = ref(xr), ours(xo)
    assert torch.equal(sa, sb) and sa.sum() > 0 and (ref.v - ours.v).abs().max() <= 1e-12
    (sa * torch.arange(20.0, dtype=DT)[:, None, None]).sum().backward()
    (sb * torch.arange(20.0, dtype=DT)[:, None, None]).sum().backward()
    assert (xr.grad - xo.grad).abs().max() <= 1e-12 * xr.grad.abs().max()


def test_deepcopy_pickle_and_dtype_before_and_after_forward():
    node = cj.LIFNode(tau=3.0, v_reset=None, step_mode="m", store_v_seq=True)
    x = torch.rand(5, 2, 3, dtype=DT, requires_grad=True) * 2
    for stage in ("fresh", "after forward"):
        for twin in (copy.deepcopy(node), pickle.loads(pickle.dumps(node))):
            if stage == "fresh":
                assert twin.v == 0.0
            else:
                assert torch.equal(twin.v, node.v) and twin.v.grad_fn is None and torch.equal(twin.v_seq, node.v_seq)
        node(x).sum().backward(retain_graph=True)
    assert node.v.grad_fn is not None
    twin = copy.deepcopy(node)
    assert torch.equal(twin(x.detach()), node(x).detach())
    f32 = copy.deepcopy(node).to(torch.float32)
    assert f32.v.dtype == torch.float32 and f32(x.detach().float()).dtype == torch.float32


@pytest.mark.slow
def test_compile_fullgraph_equals_eager():
    """torch.compile(fullgraph=True) of a multi-step node: the layer's torch loop (the kernel is opaque to
    the compiler), the same numbers as eager, forward and backward."""
    x = torch.rand(6, 2, 3, dtype=DT) * 2
    eager = cj.LIFNode(tau=3.0, v_reset=-0.1, step_mode="m")
    compiled = torch.compile(copy.deepcopy(eager), fullgraph=True)
    xe, xc = x.clone().requires_grad_(), x.clone().requires_grad_()
    se, sc = eager(xe), compiled(xc)
    assert se.sum() > 0 and torch.equal(se, sc)
    assert torch.equal(eager.v, compiled.v)
    (se.sum() + eager.v.sum()).backward()
    (sc.sum() + compiled.v.sum()).backward()
    assert (xe.grad - xc.grad).abs().max() <= 1e-12


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
from ctsnn.compat import spikingjelly as cj
node = cj.LIFNode(tau=3.0, v_reset=-0.1, step_mode="m", store_v_seq=True)
print(node.v, node.state_dict(), type(node).__mro__[3].__module__)
x = torch.linspace(0, 3, 20 * 4, dtype=torch.float64).reshape(20, 4)
s = node(x)
copy.deepcopy(node), pickle.dumps(node)
print(int(s.sum()), repr(float(node.v.sum())), tuple(node.v_seq.shape))
node.reset()
print(node.v, node.v_seq)
"""


def test_without_spikingjelly_the_nodes_run_the_same():
    out = without("spikingjelly", CODE).splitlines()
    assert out[0] == "-0.1 OrderedDict() ctsnn.compat.spikingjelly"  # the stand-in base
    assert out[2] == "-0.1 None"
    node = cj.LIFNode(tau=3.0, v_reset=-0.1, step_mode="m", store_v_seq=True)
    s = node(torch.linspace(0, 3, 20 * 4, dtype=DT).reshape(20, 4))
    assert s.sum() > 0 and out[1] == f"{int(s.sum())} {float(node.v.sum())!r} (20, 4)"
