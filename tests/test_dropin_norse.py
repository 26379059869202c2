"""ctsnn.compat.norse as a drop-in: norse's state types and base classes, its module attributes
(activation, activation_sparse, state_fallback), SequentialState training with carried states,
checkpoints, copies, torch.compile; each compared with the real norse 1.1.0."""
import copy
import pickle
import subprocess
import sys

import pytest
import torch
from torch import nn

NF = pytest.importorskip("norse.torch.functional.lsnn")
NM = pytest.importorskip("norse.torch.module.lsnn")
from norse.torch import SequentialState  # noqa: E402
from norse.torch.module import snn as NSNN  # noqa: E402

from ctsnn.compat import norse as C  # noqa: E402

pytestmark = pytest.mark.peers


def _p(dtype, grad=False, n=None):
    g = torch.Generator().manual_seed(4)
    shape = () if n is None else (n,)

    def t(lo, hi):
        v = (lo + (hi - lo) * torch.rand(shape, generator=g, dtype=torch.float64)).to(dtype)
        return v.requires_grad_(grad)
    return t(150, 250), t(80, 120), t(1, 3), t(0.05, 0.15), t(0.8, 1.0), t(-0.1, 0.05), t(0.3, 0.8)


def _params(lib, vals):
    f = ("tau_syn_inv", "tau_mem_inv", "tau_adapt_inv", "v_leak", "v_th", "v_reset", "beta")
    return lib.LSNNParameters(**dict(zip(f, vals)))


def test_state_types_and_base_classes_are_norses():
    assert C.LSNNState is NF.LSNNState and C.LSNNFeedForwardState is NF.LSNNFeedForwardState
    assert C.LSNNParameters is NF.LSNNParameters
    x = torch.rand(3, 2, 4)
    _, s = C.LSNN()(x)
    assert isinstance(s, NF.LSNNFeedForwardState)
    _, s = C.LSNNCell()(x[0])
    assert isinstance(s, NF.LSNNFeedForwardState)
    _, s = C.LSNNRecurrent(4, 5)(x)
    assert isinstance(s, NF.LSNNState)
    _, s = C.LSNNRecurrentCell(4, 5)(x[0])
    assert isinstance(s, NF.LSNNState)
    _, s = C.lsnn_feed_forward_step(x[0], NF.LSNNFeedForwardState(x[0], x[0], x[0] + 1))
    assert isinstance(s, NF.LSNNFeedForwardState)
    assert isinstance(C.LSNNCell(), NSNN.SNNCell) and isinstance(C.LSNN(), NSNN.SNN)
    assert isinstance(C.LSNNRecurrentCell(2, 3), NSNN.SNNRecurrentCell)
    assert isinstance(C.LSNNRecurrent(2, 3), NSNN.SNNRecurrent)


def test_attributes_with_norses_semantics():
    for cls, args, step in ((C.LSNNCell, (), C.lsnn_feed_forward_step), (C.LSNN, (), C.lsnn_feed_forward_step),
                            (C.LSNNRecurrentCell, (3, 4), C.lsnn_step), (C.LSNNRecurrent, (3, 4), C.lsnn_step)):
        m = cls(*args)
        assert m.activation is step and m.activation_sparse is None
        assert m.state_fallback == m.initial_state
    # a replaced activation is what runs (norse's own step here: norse's numbers)
    x = torch.rand(20, 2, 3, dtype=torch.float64) * 300
    p = _params(NF, _p(torch.float64))
    ours, theirs = C.LSNN(p), NM.LSNN(p)
    ours.activation = NF.lsnn_feed_forward_step
    z1, s1 = ours(x)
    z2, s2 = theirs(x)
    assert torch.equal(z1, z2) and z1.sum() > 0 and all(torch.equal(a, b) for a, b in zip(s1, s2))
    # activation_sparse runs on sparse inputs, as in norse
    def dense_step(x, s, p, dt):
        return C.lsnn_feed_forward_step(x.to_dense(), s, p, dt)
    ours, theirs = C.LSNNCell(p, activation_sparse=dense_step), NM.LSNNCell(p, activation_sparse=dense_step)
    xs = x[0].to_sparse()
    z1, s1 = ours(xs)
    z2, s2 = theirs(xs)
    assert torch.equal(z1, z2) and all(torch.equal(a, b) for a, b in zip(s1, s2))
    # state_fallback decides the initial state, as in norse
    ours, theirs = C.LSNNCell(p), NM.LSNNCell(p)
    s0 = NF.LSNNFeedForwardState(torch.full((2, 3), 0.3, dtype=torch.float64), torch.zeros(2, 3, dtype=torch.float64),
                                 torch.ones(2, 3, dtype=torch.float64))
    ours.state_fallback = theirs.state_fallback = lambda x: s0
    z1, s1 = ours(x[0])
    z2, s2 = theirs(x[0])
    for a, b in zip(s1, s2):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def _net(lib, dtype, grad):
    torch.manual_seed(0)
    p1, p2 = _params(NF, _p(dtype, grad)), _params(NF, _p(dtype, grad))  # norse: scalars
    return SequentialState(nn.Linear(4, 5), lib.LSNNRecurrent(5, 6, p=p1), nn.Linear(6, 3),
                           lib.LSNN(p=p2)).to(dtype), p1, p2


def _train(net, p1, p2, xs):
    """Two batches: the first from norse's initial states, the second continuing from the first's
    final states, detached (truncated BPTT); backward each."""
    losses, grads, state = [], [], None
    params = list(net.parameters()) + [t for t in tuple(p1)[:7] + tuple(p2)[:7] if t.requires_grad]
    for x in xs:
        for q in params:
            q.grad = None
        if state is not None:
            state = [None if s is None else type(s)(*[t.detach() for t in s]) for s in state]
        out, state = net(x * 200, state)
        loss = (out.sum(0) * torch.linspace(-1, 1, 3, dtype=x.dtype)).sum() + state[3].v.pow(2).mean()
        loss.backward()
        losses.append(loss.detach())
        grads.append([q.grad.clone() if q.grad is not None else None for q in params])
        assert out.sum() > 0 and state[1].z.sum() > 0  # both LSNN layers spike
    return losses, grads


# measured: float64 losses to 2e-16 and gradients to 8e-15 relative; float32 losses equal,
# gradients to 1.7e-6 relative
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_sequential_state_training_loop(dtype, tol):
    ours, q1, q2 = _net(C, dtype, True)
    theirs, r1, r2 = _net(NM, dtype, True)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    g = torch.Generator().manual_seed(5)
    xs = [torch.rand(30, 7, 4, generator=g, dtype=torch.float64).to(dtype) for _ in range(2)]
    L1, G1 = _train(ours, q1, q2, xs)
    L2, G2 = _train(theirs, r1, r2, xs)
    for a, b in zip(L1, L2):
        assert abs(float(a - b)) <= tol * max(1.0, abs(float(b)))
    nonzero = 0
    for g1, g2 in zip(G1, G2):
        for a, b in zip(g1, g2):
            assert (a is None) == (b is None)
            if a is not None:
                nonzero += int(b.abs().max() > 0)
                torch.testing.assert_close(a, b, rtol=tol, atol=tol * max(1.0, float(b.abs().max())))
    assert nonzero >= 12


@pytest.mark.parametrize("name,args", [("LSNNRecurrent", (3, 4)), ("LSNNRecurrentCell", (3, 4)),
                                       ("LSNN", ()), ("LSNNCell", ())])
def test_checkpoints_both_ways(name, args):
    torch.manual_seed(1)
    ours = getattr(C, name)(*args)
    theirs = getattr(NM, name)(*args)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    for k, v in ours.state_dict().items():
        assert v.shape == theirs.state_dict()[k].shape and v.dtype == theirs.state_dict()[k].dtype
    x = torch.rand(6, 2, 3) * 400
    if not args:
        return  # norse's feed-forward modules hold no tensors (p is a NamedTuple): empty state dicts
    g = torch.Generator().manual_seed(2)
    theirs.load_state_dict({k: torch.randn(v.shape, generator=g) for k, v in theirs.state_dict().items()})
    ours.load_state_dict(theirs.state_dict(), strict=True)
    run = (lambda m: m(x)) if "Cell" not in name else (lambda m: m(x[0]))
    (z1, s1), (z2, s2) = run(ours), run(theirs)
    assert torch.equal(z1, z2)
    for a, b in zip(s1, s2):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    theirs2 = getattr(NM, name)(*args)
    theirs2.load_state_dict(ours.state_dict(), strict=True)
    assert all(torch.equal(v, theirs2.state_dict()[k]) for k, v in ours.state_dict().items())


@pytest.mark.parametrize("name,args", [("LSNNRecurrent", (3, 4)), ("LSNN", ()), ("LSNNCell", ())])
def test_deepcopy_pickle_to_dtype(name, args):
    torch.manual_seed(3)
    m = getattr(C, name)(*args)
    x = torch.rand(5, 2, 3) * 400
    run = (lambda mod, xx: mod(xx)) if "Cell" not in name else (lambda mod, xx: mod(xx[0]))
    for when in ("before", "after"):
        if when == "after":
            z0, s0 = run(m, x)
            (z0.sum() + s0.v.sum()).backward()
        for c in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
            z1, s1 = run(c, x)
            z2, s2 = run(m, x)
            assert torch.equal(z1, z2) and all(torch.equal(a, b) for a, b in zip(s1, s2))
            if args:  # the autapse hook survives the copy: no gradient on the diagonal
                c.recurrent_weights.grad = None
                z, s = run(c, x)
                (z.sum() + s.v.sum()).backward()
                assert not c.recurrent_weights.grad.diagonal().any()
        m64 = copy.deepcopy(m).to(torch.float64)
        z1, s1 = run(m64, x.double())
        assert s1.v.dtype == torch.float64
        assert torch.equal(z1, run(m, x)[0].double())


def test_runs_without_norse_installed():
    code = ("import sys; sys.modules['norse'] = None\n"
            "import torch\n"
            "from ctsnn.compat import norse as C\n"
            "assert C.LSNNState is C._LSNNState and C.LSNNCell.__mro__[1] is C._SNNCell\n"
            "z, s = C.LSNN()(torch.rand(4, 2, 3) * 400); assert type(s) is C._LSNNFeedForwardState\n"
            "z, s = C.LSNNRecurrentCell(3, 2)(torch.rand(2, 3)); assert type(s) is C._LSNNState\n"
            "z, s = C.LSNNCell()(torch.rand(2, 3)); print('ok')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


@pytest.mark.slow
def test_compile_fullgraph_equals_eager():
    """LSNNCell (given state and state_fallback) and LSNNRecurrent under
    torch.compile(fullgraph=True, aot_eager): spikes and states identical to eager."""
    torch._dynamo.reset()
    p = NF.LSNNParameters(beta=torch.tensor(0.5), v_th=torch.tensor(0.8))
    cell = C.LSNNCell(p)
    x = torch.rand(5, 3, 4, generator=torch.Generator().manual_seed(6)) * 300

    def loop(mod, state):
        zs = []
        for t in range(x.shape[0]):
            z, state = mod(x[t], state)
            zs.append(z)
        return torch.stack(zs), state
    cc = torch.compile(cell, fullgraph=True, backend="aot_eager")
    s0 = NF.LSNNFeedForwardState(torch.zeros(3, 4), torch.zeros(3, 4), torch.full((3, 4), 0.8))
    for state in (s0, None):
        (z1, s1), (z2, s2) = loop(cc, state), loop(cell, state)
        assert z1.sum() > 0 and torch.equal(z1, z2) and isinstance(s1, NF.LSNNFeedForwardState)
        assert all(torch.equal(a, b) for a, b in zip(s1, s2))
    rec = C.LSNNRecurrent(4, 3)
    (z1, s1), (z2, s2) = torch.compile(rec, fullgraph=True, backend="aot_eager")(x), rec(x)
    assert torch.equal(z1, z2) and all(torch.equal(a, b) for a, b in zip(s1, s2))
