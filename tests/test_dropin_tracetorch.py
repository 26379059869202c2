"""The ctsnn.compat.tracetorch layers used as drop-ins for tracetorch 0.19.2's: inside a tracetorch
``Model`` (zero_states, detach_states for truncated backpropagation through time, save_states /
load_states), checkpoints, attributes, copies and pickles, against the real tracetorch."""
import copy
import pickle

import pytest

tt = pytest.importorskip("tracetorch")

import torch  # noqa: E402

from ctsnn.compat import tracetorch as ct  # noqa: E402

pytestmark = pytest.mark.peers

N, B, T = 4, 3, 12
DT = torch.float64
CLASSES = ["LITS", "DLITS", "SLITS", "RLITS", "SRLITS", "DSLITS", "DRLITS", "DSRLITS"]
REC = {"RLITS": dict(rec_weight=0.6), "SRLITS": dict(rec_weight=-0.5),
       "DRLITS": dict(pos_rec_weight=0.7, neg_rec_weight=-0.3),
       "DSRLITS": dict(pos_rec_weight=0.4, neg_rec_weight=0.8)}


class Net(tt.Model):
    def __init__(self, layer):
        super().__init__()
        torch.manual_seed(0)
        self.inp = torch.nn.Linear(2, N)
        self.lits = layer
        self.out = torch.nn.Linear(N, 1)

    def forward(self, x):
        return self.out(self.lits(self.inp(x)))


def pair(cls, **kw):
    kw = {**REC.get(cls, {}), **kw}
    return Net(getattr(tt.snn, cls)(N, **kw)).to(DT), Net(getattr(ct, cls)(N, **kw)).to(DT)


def tbptt(net, xs, chunk=6):
    """Truncated BPTT over batches ``xs [n, T, B, 2]``: ``zero_states`` before each batch,
    ``detach_states`` after each chunk of ``chunk`` steps; per chunk the loss and all gradients."""
    rec = []
    for x in xs:
        net.zero_states()
        for t0 in range(0, x.shape[0], chunk):
            for p in net.parameters():
                p.grad = None
            loss = sum((net(x[t]) ** 2).sum() for t in range(t0, t0 + chunk))
            loss.backward()
            rec.append((loss.detach(), {n: p.grad.clone() for n, p in net.named_parameters()}))
            net.detach_states()
    return rec


@pytest.mark.parametrize("cls", CLASSES)
def test_truncated_bptt_with_tracetorch_model_helpers(cls):
    ref, ours = pair(cls)
    assert isinstance(ours.lits, tt.core.Layer)
    assert dict(ref.named_parameters()).keys() == dict(ours.named_parameters()).keys()
    xs = 1.5 * torch.randn(2, T, B, 2, dtype=DT, generator=torch.Generator().manual_seed(1))
    ra, rb = tbptt(ref, xs), tbptt(ours, xs)
    assert len(ra) == len(rb) == 4
    for (la, ga), (lb, gb) in zip(ra, rb):
        assert abs(la - lb) <= 1e-12 * abs(la)
        for n in ga:
            scale = ga[n].abs().max()
            assert scale > 0 or "rec_weight" in n or "gamma" in n, n  # first step: no feedback yet
            assert (ga[n] - gb[n]).abs().max() <= 1e-11 * max(scale, 1e-300), (n, scale)


def test_without_detach_states_the_second_chunk_fails_as_in_tracetorch():
    """The check that detach_states does something: without it the second chunk's backward runs into
    the first chunk's freed graph, for tracetorch and for ctsnn alike."""
    for net in pair("SRLITS"):
        x = torch.randn(4, B, 2, dtype=DT)
        net(x[0]).sum().backward()
        with pytest.raises(RuntimeError, match="second time"):
            net(x[1]).sum().backward()


@pytest.mark.parametrize("cls", ["DSRLITS", "SLITS"])
def test_save_and_load_states_both_ways(cls, capsys):
    ref, ours = pair(cls)
    assert ours.save_states() == {} == ref.save_states()
    x = torch.randn(8, B, 2, dtype=DT)
    for t in range(5):
        ref(x[t]), ours(x[t])
    sa, sb = ref.save_states(), ours.save_states()
    assert sa.keys() == sb.keys() and {k.rsplit(".", 1)[1] for k in sa} == ref.lits._state_names
    for k in sa:
        assert (sa[k] - sb[k]).abs().max() <= 1e-12, k
    fresh_ref, fresh_ours = pair(cls)
    fresh_ours.load_states(sa)  # tracetorch's states into ctsnn's layer, and back
    fresh_ref.load_states(sb)
    for t in range(5, 8):
        ya, yb = fresh_ref(x[t]), fresh_ours(x[t])
        assert (ya - yb).abs().max() <= 1e-12 and (ya - ref(x[t])).abs().max() <= 1e-12


@pytest.mark.parametrize("cls", CLASSES)
def test_checkpoints_load_both_ways_and_attributes(cls):
    g = torch.Generator().manual_seed(2)
    kw = dict(pos_threshold=0.5 + torch.rand(N, generator=g, dtype=DT), bias=torch.tensor(0.1, dtype=DT),
              neg_scale_rank=0, learn_pos_scale=False)
    ref, ours = pair(cls, **kw)
    sa, sb = ref.state_dict(), ours.state_dict()
    assert [(k, v.shape, v.dtype) for k, v in sa.items()] == [(k, v.shape, v.dtype) for k, v in sb.items()]
    with torch.no_grad():  # a "trained" tracetorch layer
        for p in ref.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    ours.load_state_dict(ref.state_dict(), strict=True)
    back = pair(cls, **kw)[0]
    back.load_state_dict(ours.state_dict(), strict=True)
    for name in ref.lits._dynamic_params:  # beta, alpha, gamma, thresholds, bias, scales, rec weights
        a, b = getattr(ref.lits, name), getattr(ours.lits, name)
        assert a.shape == b.shape and (a - b).abs().max() <= 1e-15, name
        assert torch.equal(getattr(back.lits, name), a), name
    x = torch.randn(6, B, 2, dtype=DT)
    for t in range(6):
        assert (ref(x[t]) - ours(x[t])).abs().max() <= 1e-12


def test_deepcopy_pickle_and_dtype_before_and_after_forward():
    net = pair("DSRLITS")[1]
    x = torch.randn(5, B, 2, dtype=DT)
    for stage in ("fresh", "after forward"):
        for twin in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
            assert twin.state_dict().keys() == net.state_dict().keys()
            assert twin.save_states().keys() == net.save_states().keys(), stage
        net(x[0]).sum().backward(retain_graph=True)
    twin = copy.deepcopy(net)
    assert net.lits.pos_mem.grad_fn is not None and twin.lits.pos_mem.grad_fn is None
    assert torch.equal(twin(x[1]).detach(), net(x[1]).detach())
    f32 = copy.deepcopy(net).to(torch.float32)
    f32.zero_states()
    assert f32(x[2].float()).dtype == torch.float32 and f32.lits.raw_pos_beta.dtype == torch.float32


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
from ctsnn.compat import tracetorch as ct
layer = ct.SRLITS(3, rec_weight=0.5).double()
print(sorted(layer._state_names), layer.mem, type(layer).__mro__[3].__module__)
x = torch.linspace(-2, 3, 8 * 3, dtype=torch.float64).reshape(8, 3)
out = sum(layer(x[t]) for t in range(8))
layer.detach_states()
copy.deepcopy(layer), pickle.dumps(layer)
print(repr(float(out.detach().sum())), repr(float(layer.mem.sum())), layer.mem.grad_fn)
layer.zero_states()
print(layer.mem, layer.prev_output)
"""


def test_without_tracetorch_the_layers_run_the_same():
    out = without("tracetorch", CODE).splitlines()
    assert out[0] == "['mem', 'prev_output', 'rec', 'syn'] None ctsnn.compat.tracetorch"  # the stand-in base
    assert out[2] == "None None"
    layer = ct.SRLITS(3, rec_weight=0.5).double()
    x = torch.linspace(-2, 3, 8 * 3, dtype=DT).reshape(8, 3)
    y = sum(layer(x[t]) for t in range(8))
    assert out[1] == f"{float(y.detach().sum())!r} {float(layer.mem.detach().sum())!r} None"


def test_tracetorch_ttcompile_and_ttdecompile():
    """tracetorch's inference compilation (activated values baked into buffers) and back: same keys
    as tracetorch's, same outputs, the raw parameters restored."""
    ref, ours = (m.lits for m in pair("SRLITS"))
    x = torch.randn(6, B, N, dtype=DT)
    for step in ("TTcompile", "TTdecompile"):
        getattr(ref, step)(), getattr(ours, step)()
        ref.zero_states(), ours.zero_states()
        assert sorted(ref.state_dict()) == sorted(ours.state_dict()), step
        assert [n for n, _ in ref.named_parameters()] == [n for n, _ in ours.named_parameters()], step
        for t in range(6):
            assert (ref(x[t]) - ours(x[t])).abs().max() <= 1e-12, step
    assert "raw_beta" in dict(ours.named_parameters())


@pytest.mark.slow
def test_compile_fullgraph_equals_eager():
    """torch.compile(LITS(...), fullgraph=True) (aot_eager: the traced graph itself) over two steps from
    zeroed states: outputs, the membrane and the raw parameters' gradients identical to eager.
    (Measured once for SRLITS, 3 steps: identical too.)"""
    torch._dynamo.reset()
    eager = ct.LITS(4, beta=torch.tensor([0.6, 0.7, 0.8, 0.9]), pos_threshold=0.8, bias=0.1).double()
    mod = copy.deepcopy(eager)
    compiled = torch.compile(mod, fullgraph=True, backend="aot_eager")
    x = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(4), dtype=DT) * 2
    res = []
    for layer, m in ((compiled, mod), (eager, eager)):
        m.zero_states()
        out = layer(x[0]) + layer(x[1])
        (out.sum() + (m.mem ** 2).sum()).backward()
        res.append([out, m.mem.detach()] + [p.grad for p in m.parameters()])
    assert res[1][0].abs().sum() > 0
    for a, b in zip(*res):
        assert torch.equal(a, b)
