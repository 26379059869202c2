"""ctsnn.nir: NIR graphs in and out, against the libraries' own exporters and importers.

Stage 1: round trips (models and a recurrent graph with delays), exact vs grid agreement, bad
files.  Stage 2 (slow, each imports a peer library): a Linear + LIF network (and a recurrent one)
exported by each library, read with the adapter, spikes equal to the library's own forward pass;
ctsnn graphs imported by snntorch and norse, spikes equal to ctsnn's layer stack.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir")

import ctsnn  # noqa: E402
import ctsnn.nir as cn  # noqa: E402

T, B, NIN, N = 60, 3, 5, 4


@pytest.fixture(autouse=True)
def _f64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _x(seed=0, T=T, B=B, n=NIN, p=0.3):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, n, generator=g) < p).double()


def _two_layer_graph(dt=1e-3):
    """input -> A (LIF, 4) -> B (IF, 3), B -> A with 2 dt delay, A -> A with one step: a cycle."""
    rng = np.random.default_rng(1)
    A = ctsnn.Population(ctsnn.LIF(tau_mem=torch.tensor([10e-3, 12e-3, 15e-3, 20e-3]), r=1.0, v_th=1.0), name="A")
    Bp = ctsnn.Population(ctsnn.IF(r=1.0, v_th=torch.tensor([0.8, 1.0, 1.2])), name="B")
    z = lambda a, b: np.zeros((a, b))  # noqa: E731
    edges = [cn.Edge("input", "A", rng.uniform(0, 0.9, (4, NIN)), z(4, NIN)),
             cn.Edge("A", "B", rng.uniform(0, 0.7, (3, 4)), np.full((3, 4), dt)),
             cn.Edge("B", "A", rng.uniform(-0.3, 0.3, (4, 3)), np.full((4, 3), 2 * dt)),
             cn.Edge("A", "A", np.diag(rng.uniform(0, 0.3, 4)), np.full((4, 4), dt))]
    return cn.Graph({"input": NIN}, {"A": A, "B": Bp}, edges, {"out": "B"},
                    gain={"A": np.full(4, 1 / 0.01), "B": np.ones(3)})


def _grid_events(x, dt):
    """Grid input x [T, n] (one batch element) as exact events at the end of each step."""
    k, c = torch.nonzero(x, as_tuple=True)
    return ((k.numpy() + 1) * dt, c.numpy(), x[k, c].numpy())


def _as_grid(spikes, n, T, dt):
    out = torch.zeros(T, n)
    t, i = spikes
    keep = t <= T * dt * (1 + 1e-12)
    t, i = t[keep], i[keep]
    k = np.rint(t / dt).astype(int) - 1
    assert np.allclose((k + 1) * dt, t, atol=1e-12), "spike off the grid"
    out.index_put_((torch.from_numpy(k), torch.from_numpy(i)), torch.ones(len(k)), accumulate=True)
    return out


# ----------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("model", [
    ctsnn.LIF(tau_mem=torch.tensor([10e-3, 20e-3]), r=2.0, v_leak=-0.1, v_th=1.0, v_reset=0.2),
    ctsnn.LIF(tau_mem=5e-3, r=1.0, v_th=1.0, reset="subtract", t_ref=1e-3, n=3),
    ctsnn.IF(r=torch.tensor([1.0, 3.0]), v_th=0.5, v_reset=-0.1),
    ctsnn.CubaLIF(tau_syn=torch.tensor([2e-3, 4e-3]), tau_mem=10e-3, r=3.0, v_th=1.0),
])
def test_model_round_trip(tmp_path, model):
    cn.write(model, tmp_path / "m.nir")
    g = cn.read(tmp_path / "m.nir")
    back = g.populations["neuron"].model
    assert type(back) is type(model) and back.reset == model.reset
    for k, v in model.params().items():
        assert torch.equal(back.p(k, torch.float64).expand(model.n), v.double().reshape(-1).expand(model.n)), k
    # an input impulse of NIR area w jumps the input state by gain * w
    assert np.allclose(np.diag(g.edges[0].weight), cn._gain(model))


def test_graph_round_trip_spikes(tmp_path):
    g = _two_layer_graph()
    cn.write(g, tmp_path / "g.nir")
    h = cn.read(tmp_path / "g.nir")
    assert set(h.populations) == {"A", "B"} and h.outputs == {"out": "B"}
    for e in g.edges:
        f = next(f for f in h.edges if (f.src, f.dst) == (e.src, e.dst))
        assert np.allclose(f.weight, e.weight, rtol=1e-13, atol=0) and np.array_equal(f.delay, e.delay)
    ev = _grid_events(_x(2)[:, 0], 1e-3)
    a, b = g.run(ev, t_end=T * 1e-3, dt=1e-3), h.run(ev, t_end=T * 1e-3, dt=1e-3)
    assert len(a["B"][0]) > 5 and len(a["A"][0]) > 5
    for k in a:
        assert np.array_equal(a[k][0], b[k][0]) and np.array_equal(a[k][1], b[k][1])


def test_network_written(tmp_path):
    A = ctsnn.Population(ctsnn.LIF(tau_mem=10e-3), n=3, name="exc")
    Bp = ctsnn.Population(ctsnn.LIF(tau_mem=20e-3), n=2, name="inh", current=50.0)
    net = ctsnn.Network([A, Bp], [ctsnn.Projection.all_to_all(A, Bp, 0.4, delay=2e-3),
                                  ctsnn.Projection.all_to_all(Bp, A, -0.2, delay=1e-3)])
    cn.write(net, tmp_path / "n.nir")
    g = cn.read(tmp_path / "n.nir")
    assert np.allclose(g.populations["inh"].current, 50.0)
    e = next(e for e in g.edges if (e.src, e.dst) == ("exc", "inh"))
    assert np.allclose(e.weight, 0.4) and np.allclose(e.delay, 2e-3)


def test_exact_and_grid_agree():
    """Impulse inputs on the grid, no drift towards threshold between them: every spike is at a
    grid time, and the layer stack and the event engine give the same spikes."""
    dt = 2.0 ** -10  # grid times and delays exact in binary: impulses that arrive together coincide
    g = _two_layer_graph(dt)
    x = _x(3)[:, :1]
    out = g.discretize(dt)(x)
    ex = g.run(_grid_events(x[:, 0], dt), t_end=(T + 0.5) * dt, dt=dt)  # spikes at T dt included
    for k, n in (("A", 4), ("B", 3)):
        assert out[k].sum() > 5
        assert torch.equal(out[k][:, 0], _as_grid(ex[k], n, T, dt))


# ----------------------------------------------------------------------------- bad files
def _write_raw(path, nodes, edges):
    nir.write(str(path), nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))


def _lif(n, tau=0.01):
    return nir.LIF(tau=np.full(n, tau), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n))


def test_bad_files(tmp_path):
    p = tmp_path / "bad.nir"
    # non-positive tau
    _write_raw(p, {"in": nir.Input(np.array([2])), "lif1": _lif(2, tau=-0.01)}, [("in", "lif1")])
    with pytest.raises(ValueError, match=r"'lif1'.*tau must be > 0"):
        cn.read(p)
    # mismatched shapes: 3 values into 2 neurons
    _write_raw(p, {"in": nir.Input(np.array([2])), "w": nir.Linear(weight=np.ones((3, 2))), "lif1": _lif(2)},
               [("in", "w"), ("w", "lif1")])
    with pytest.raises(ValueError, match=r"'lif1'.*2 neurons but receives 3"):
        cn.read(p)
    # dangling edge
    _write_raw(p, {"in": nir.Input(np.array([2])), "lif1": _lif(2)}, [("in", "lif1"), ("lif1", "ghost")])
    with pytest.raises(ValueError, match=r"'ghost'"):
        cn.read(p)
    # unknown node type (written by a newer tool): the file's type string changed
    import h5py
    _write_raw(p, {"in": nir.Input(np.array([2])), "odd": _lif(2)}, [("in", "odd")])
    with h5py.File(p, "r+") as f:
        del f["node/nodes/odd/type"]
        f["node/nodes/odd/type"] = np.bytes_("Quantum")
    with pytest.raises(ValueError, match=r"'odd' has type 'Quantum'"):
        cn.read(p)
    # a cycle without a delay, read without dt
    _write_raw(p, {"in": nir.Input(np.array([2])), "lif1": _lif(2), "w": nir.Linear(weight=np.eye(2))},
               [("in", "lif1"), ("lif1", "w"), ("w", "lif1")])
    with pytest.raises(ValueError, match=r"'lif1' -> 'lif1' lies on a cycle"):
        cn.read(p)
    e = cn.read(p, dt=1e-3).edges[-1]
    assert (e.src, e.dst) == ("lif1", "lif1") and np.all(e.delay[e.weight != 0] == 1e-3)
    with pytest.raises(ValueError, match="source"):
        cn.read(p, source="keras", dt=1e-3)
    with pytest.raises(ValueError, match="no NIR file"):
        cn.read(tmp_path / "missing.nir")
    with pytest.raises(ValueError, match="NIR has no node for ALIF"):
        cn.write(ctsnn.ALIF(tau_mem=0.01, tau_adapt=0.1, adapt_jump=0.1), tmp_path / "a.nir")


def test_nir_not_imported_by_ctsnn():
    import subprocess
    import sys
    code = "import ctsnn, sys; print('nir' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------------------- the libraries' exports
def _compare(g, ref, dt, x):
    out = g.discretize(dt)(x)
    o = out[list(g.populations)[-1]]
    assert ref.sum() > 0, "the library's network never spiked: the test would not bite"
    assert torch.equal(o, ref.to(o.dtype)), f"{int((o != ref).sum())} spikes differ"


@pytest.mark.slow
@pytest.mark.parametrize("recurrent", [False, True])
def test_snntorch_export(tmp_path, recurrent):
    snn = pytest.importorskip("snntorch")
    from snntorch import utils
    from snntorch.export_nir import export_to_nir
    torch.manual_seed(0)
    dtype = torch.float32 if recurrent else torch.float64  # RLeaky keeps float32 spikes
    x = _x(4).to(dtype)
    lin = torch.nn.Linear(NIN, N)
    lin.weight.data *= 3
    if recurrent:
        lif = snn.RLeaky(beta=torch.full((N,), 0.85), threshold=torch.ones(N), linear_features=N, init_hidden=True)
        lif.recurrent.weight.data *= 2
    else:
        lif = snn.Leaky(beta=torch.full((N,), 0.85), threshold=torch.ones(N), init_hidden=True)
    net = torch.nn.Sequential(lin, lif).to(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nir.write(str(tmp_path / "s.nir"), export_to_nir(net, torch.zeros(NIN, dtype=dtype)))
    utils.reset(net)
    ref = torch.stack([net(x[t]) for t in range(T)]).detach()
    _compare(cn.read(tmp_path / "s.nir", source="snntorch", dt=1e-3), ref, 1e-3, x)


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["LIFBoxCell", "LIFCell"])
def test_norse_export(tmp_path, cell):
    nt = pytest.importorskip("norse.torch")
    torch.manual_seed(0)
    x = _x(5)
    lin = torch.nn.Linear(NIN, N)
    lin.weight.data *= 3
    if cell == "LIFBoxCell":
        lin.bias.data = 0.2 * torch.rand(N)  # a bias: a constant current
        c = nt.LIFBoxCell(nt.LIFBoxParameters(tau_mem_inv=torch.full((N,), 100.), v_th=torch.full((N,), 0.3),
                                              v_leak=torch.zeros(N)))
    else:
        lin.bias.data.zero_()  # ctsnn's CubaLIF has no constant drive of i
        c = nt.LIFCell(nt.LIFParameters(tau_mem_inv=torch.full((N,), 100.), tau_syn_inv=torch.full((N,), 200.),
                                        v_th=torch.full((N,), 0.3), v_leak=torch.zeros(N), v_reset=torch.zeros(N)))
    net = nt.SequentialState(lin, c)
    nir.write(str(tmp_path / "n.nir"), nt.to_nir(net, torch.zeros(NIN)))
    s, ref = None, []
    for t in range(T):
        o, s = net(x[t], s)
        ref.append(o)
    _compare(cn.read(tmp_path / "n.nir", source="norse", dt=1e-3), torch.stack(ref).detach(), 1e-3, x)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["LIF", "IAF"])
def test_sinabs_export(kind):
    pytest.importorskip("sinabs")
    import sinabs.layers as sl
    from sinabs.nir import _extract_sinabs_module
    torch.manual_seed(0)
    x = _x(6)
    lin = torch.nn.Linear(NIN, N)
    lin.weight.data *= 8
    net = torch.nn.Sequential(lin, sl.LIF(tau_mem=5.0) if kind == "LIF" else sl.IAF())
    ref = net(x.transpose(0, 1)).transpose(0, 1).detach()  # sinabs: [batch, time, n]
    # sinabs.to_nir fails on 3.1.3 with nir 1.0.8 (docs/nir.md); its own node mapping, assembled:
    g = nir.NIRGraph(nodes={"input": nir.Input(np.array([NIN])), "0": _extract_sinabs_module(net[0]),
                            "1": _extract_sinabs_module(net[1]), "output": nir.Output(np.array([N]))},
                     edges=[("input", "0"), ("0", "1"), ("1", "output")], type_check=False)
    _compare(cn.read(g, source="sinabs", dt=1e-3), ref, 1e-3, x)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["LIF", "IF"])
def test_spikingjelly_export(tmp_path, kind):
    pytest.importorskip("spikingjelly")
    from spikingjelly.activation_based import functional, layer, neuron
    from spikingjelly.activation_based.nir_exchange import to_nir as sjt
    torch.manual_seed(0)
    x = _x(7)
    lin = layer.Linear(NIN, N)
    lin.weight.data *= 6
    net = torch.nn.Sequential(lin, neuron.LIFNode(tau=2.0) if kind == "LIF" else neuron.IFNode())
    # export_to_nir fails with nirtorch 2.0.2 (docs/nir.md); its own node mapping, assembled:
    mp = sjt._ModuleMapper(net, torch.zeros(B, NIN))
    g = nir.NIRGraph.from_list(*[mp.map_dict[type(m)](m) for m in net])
    nir.write(str(tmp_path / "j.nir"), g)
    functional.reset_net(net)
    ref = torch.stack([net(x[t]) for t in range(T)]).detach()
    _compare(cn.read(tmp_path / "j.nir", source="spikingjelly", dt=1e-3), ref, 1e-3, x)


# ----------------------------------------------------------------------------- the libraries' importers
def _ctsnn_feedforward(dt, r_of_tau, w=1.5):
    """input -> Linear -> LIF(4) -> Linear -> LIF(3), r chosen per importer."""
    rng = np.random.default_rng(3)
    tau1, tau2 = np.array([5e-3, 8e-3, 10e-3, 20e-3]), np.array([6e-3, 9e-3, 12e-3])
    A = ctsnn.Population(ctsnn.LIF(tau_mem=torch.from_numpy(tau1), r=torch.from_numpy(r_of_tau(tau1)), v_th=1.0),
                         name="A")
    Bp = ctsnn.Population(ctsnn.LIF(tau_mem=torch.from_numpy(tau2), r=torch.from_numpy(r_of_tau(tau2)), v_th=1.0),
                          name="B")
    gA, gB = r_of_tau(tau1) / tau1, r_of_tau(tau2) / tau2
    W1, W2 = rng.uniform(0, w, (4, NIN)), rng.uniform(0, w, (3, 4))
    edges = [cn.Edge("input", "A", W1 * gA[:, None], np.zeros((4, NIN))),
             cn.Edge("A", "B", W2 * gB[:, None], np.zeros((3, 4)))]
    return cn.Graph({"input": NIN}, {"A": A, "B": Bp}, edges, {"output": "B"}, gain={"A": gA, "B": gB})


@pytest.mark.slow
def test_snntorch_imports_ctsnn(tmp_path):
    pytest.importorskip("snntorch")
    from snntorch.import_nir import import_from_nir
    dt = 1e-4  # snntorch's importer: beta = 1 - 1e-4 / tau, input x per step, r = tau / 1e-4
    g = _ctsnn_feedforward(dt, lambda tau: tau / dt)
    cn.write(g, tmp_path / "c.nir")
    torch.set_default_dtype(torch.float32)  # snntorch's spikes are float32 whatever the input
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = import_from_nir(nir.read(str(tmp_path / "c.nir")))
    x = _x(8).float()
    ref = []  # a fresh executor starts at rest (snntorch's reset would make its states float32)
    for t in range(T):
        o = net(x[t])
        ref.append(o[0] if isinstance(o, tuple) else o)
    ours = g.discretize(dt, method="euler", input="zoh")(x)["B"]
    assert ours.sum() > 0
    assert torch.equal(torch.stack(ref).detach(), ours)


@pytest.mark.slow
def test_norse_imports_ctsnn(tmp_path):
    nt = pytest.importorskip("norse.torch")
    dt = 1e-3  # norse's importer: LIFBoxCell(tau_mem_inv = 1 / tau, dt), r = 1
    g = _ctsnn_feedforward(dt, lambda tau: np.ones_like(tau), w=40.0)
    cn.write(g, tmp_path / "c.nir")
    # norse.from_nir fails with nirtorch 2.0.2 + nir 1.0.8 (it type-checks a graph of torch
    # modules, docs/nir.md); norse's own node mapping, run in the graph's (sequential) order:
    from norse.torch.utils.import_nir import _import_norse_module
    h = nir.read(str(tmp_path / "c.nir"))
    order, node = [], "input"
    while True:
        nxt = [b for a, b in h.edges if a == node]
        if not nxt or nxt[0] == "output":
            break
        node = nxt[0]
        order.append(node)
    net = nt.SequentialState(*[_import_norse_module(h.nodes[k], dt=dt) for k in order]).double()
    x = _x(9)
    s, ref = None, []
    for t in range(T):
        o, s = net(x[t], s)
        ref.append(o)
    ours = g.discretize(dt, method="euler", input="zoh")(x)["B"]
    assert ours.sum() > 0
    assert torch.equal(torch.stack(ref).detach(), ours)


def test_cli_simulate_nir(tmp_path, capsys):
    from ctsnn.cli import main
    cn.write(ctsnn.LIF(tau_mem=10e-3, r=1.0, v_th=1.0, n=3), tmp_path / "g.nir")
    # impulses of area 0.02 jump v by r / tau * 0.02 = 2 (a spike), 0.005 by 0.5 (none)
    np.savez(tmp_path / "in.npz", times=[1e-3, 2e-3, 5e-3], neurons=[0, 0, 2], weights=[0.02, 0.005, 0.02])
    rc = main(["simulate", "--nir", str(tmp_path / "g.nir"), "--spikes-file", str(tmp_path / "in.npz"),
               "--dt", "0.1ms", "--t-end", "20ms", "-o", str(tmp_path / "out.npz")])
    assert rc == 0 and "2 spikes" in capsys.readouterr().out
    d = np.load(tmp_path / "out.npz")
    assert list(d["populations"]) == ["neuron"]
    assert np.allclose(d["times_0"], [1e-3, 5e-3], rtol=0, atol=1e-12) and list(d["neurons_0"]) == [0, 2]


def test_conv_and_threshold_nodes(tmp_path):
    """Conv2d + Flatten become one dense weight equal to the convolution; LI + Threshold is a LIF
    without reset; a Scale and a Delay compose into the edge."""
    import torch.nn.functional as F
    rng = np.random.default_rng(5)
    Wc, bc = rng.normal(size=(2, 1, 3, 3)), np.zeros(2)
    n = 2 * 4 * 4
    li = nir.LI(tau=np.full(n, 0.02), r=np.full(n, 2.0), v_leak=np.zeros(n))
    nodes = {"in": nir.Input(np.array([1, 4, 4])),
             "conv": nir.Conv2d(input_shape=(4, 4), weight=Wc, stride=1, padding=1, dilation=1, groups=1, bias=bc),
             "flat": nir.Flatten(input_type={"input": np.array([2, 4, 4])}, start_dim=0, end_dim=-1),
             "scale": nir.Scale(scale=np.full(n, 0.5)), "delay": nir.Delay(delay=np.full(n, 3e-3)),
             "li": li, "thr": nir.Threshold(threshold=np.full(n, 0.7)), "out": nir.Output(np.array([n]))}
    edges = [("in", "conv"), ("conv", "flat"), ("flat", "scale"), ("scale", "delay"), ("delay", "li"),
             ("li", "thr"), ("thr", "out")]
    _write_raw(tmp_path / "c.nir", nodes, edges)
    g = cn.read(tmp_path / "c.nir")
    m = g.populations["li"].model
    assert type(m) is ctsnn.LIF and m.reset == "none" and torch.allclose(m.v_th, torch.tensor(0.7))
    assert g.outputs == {"out": "li"}
    e = g.edges[0]
    x = torch.from_numpy(rng.normal(size=(3, 1, 4, 4)))
    conv = F.conv2d(x, torch.from_numpy(Wc), padding=1).reshape(3, -1).numpy()
    assert np.allclose(x.reshape(3, -1).numpy() @ e.weight.T, conv * 0.5 * (2.0 / 0.02), rtol=1e-12)
    assert np.all(e.delay[e.weight != 0] == 3e-3)


@pytest.mark.slow
def test_norse_two_layers_with_readout(tmp_path):
    """Linear -> LIFBoxCell -> Linear (bias) -> LIBoxCell: the readout's membrane (norse's output)
    equals the LI population's recorded v of the repaired graph."""
    nt = pytest.importorskip("norse.torch")
    torch.manual_seed(1)
    x = _x(10)
    l1, l2 = torch.nn.Linear(NIN, N), torch.nn.Linear(N, 2)
    l1.weight.data *= 3
    net = nt.SequentialState(
        l1, nt.LIFBoxCell(nt.LIFBoxParameters(tau_mem_inv=torch.full((N,), 100.), v_th=torch.full((N,), 0.3),
                                              v_leak=torch.zeros(N))),
        l2, nt.LIBoxCell(nt.LIBoxParameters(tau_mem_inv=torch.full((2,), 50.), v_leak=torch.zeros(2))))
    nir.write(str(tmp_path / "r.nir"), nt.to_nir(net, torch.zeros(NIN)))
    s, ref = None, []
    for t in range(T):
        o, s = net(x[t], s)
        ref.append(o)
    ref = torch.stack(ref).detach()
    g = cn.read(tmp_path / "r.nir", source="norse", dt=1e-3)
    spikes, states = g.discretize()(x, record_states=True)
    assert spikes["1"].sum() > 0 and ref.abs().max() > 0.05
    assert torch.allclose(states["3"][..., 0], ref, rtol=1e-12, atol=1e-14)


def test_groups_in_order_equal_one_network():
    """A feed-forward chain with in-step spikes (a constant drive above threshold) and delays off
    the grid: run group by group (each fed the spikes before it at their exact arrival times)
    it gives the spikes of the whole network run at once on the engine."""
    dt = 1e-3
    rng = np.random.default_rng(7)
    A = ctsnn.Population(ctsnn.LIF(tau_mem=torch.tensor([8e-3, 11e-3, 14e-3]), v_th=1.0), name="A",
                         current=[1.3, 1.6, 2.2])
    Bp = ctsnn.Population(ctsnn.LIF(tau_mem=6e-3, v_th=1.0, n=2), name="B")
    C = ctsnn.Population(ctsnn.LIF(tau_mem=9e-3, v_th=1.0, v_reset=-0.2, n=2), name="C")
    edges = [cn.Edge("A", "B", rng.uniform(0.3, 0.8, (2, 3)), rng.uniform(1.2, 3.7, (2, 3)) * dt),
             cn.Edge("B", "C", rng.uniform(0.5, 1.0, (2, 2)), np.full((2, 2), 2.5 * dt))]
    g = cn.Graph({}, {"A": A, "B": Bp, "C": C}, edges)
    assert g.order() == [["A"], ["B"], ["C"]]
    a = g.run(t_end=0.2, dt=dt)
    res = g.network().run(0.2, dt, record=())
    for i, k in enumerate(["A", "B", "C"]):
        sel = res.spike_population == i
        assert len(a[k][0]) > 5
        assert np.array_equal(a[k][1], res.spike_neuron[sel])
        assert np.allclose(a[k][0], res.spike_times[sel], rtol=0, atol=1e-12)
    assert np.any(np.abs(a["A"][0] / dt - np.rint(a["A"][0] / dt)) > 1e-3)  # spikes inside steps


def test_li_written_back_and_if_current(tmp_path):
    """An LI read from a file is written back as LI; an IF population's constant current (an
    Affine bias) is a ramp: exact spikes at k / (r I), grid spikes every ceil(1 / (r I dt))
    steps."""
    n = 2
    _write_raw(tmp_path / "li.nir", {"in": nir.Input(np.array([n])),
                                     "li": nir.LI(tau=np.full(n, 0.02), r=np.ones(n), v_leak=np.zeros(n)),
                                     "out": nir.Output(np.array([n]))}, [("in", "li"), ("li", "out")])
    cn.write(cn.read(tmp_path / "li.nir"), tmp_path / "li2.nir")
    assert type(nir.read(str(tmp_path / "li2.nir")).nodes["li"]).__name__ == "LI"
    _write_raw(tmp_path / "if.nir", {"in": nir.Input(np.array([n])),
                                     "w": nir.Affine(weight=np.eye(n), bias=np.array([30.0, 45.0])),
                                     "if": nir.IF(r=np.ones(n), v_threshold=np.ones(n)),
                                     "out": nir.Output(np.array([n]))}, [("in", "w"), ("w", "if"), ("if", "out")])
    g = cn.read(tmp_path / "if.nir")
    assert np.allclose(g.populations["if"].current, [30.0, 45.0])
    dt = 2.0 ** -10
    ex = g.run(t_end=200 * dt, dt=dt)["if"]
    grid = g.discretize(dt)(steps=200)["if"]
    for i, rate in enumerate((30.0, 45.0)):
        t = ex[0][ex[1] == i]
        assert np.allclose(t, np.arange(1, len(t) + 1) / rate, rtol=1e-9)  # closed form: k / (r I)
        assert len(t) == int(200 * dt * rate)
        # the grid fires at the end of the step of each crossing and resets there: one spike
        # every ceil(1 / (r I dt)) steps
        assert int(grid[:, i].sum()) == 200 // int(np.ceil(1 / (rate * dt)))


def test_cycle_written_without_delay_node(tmp_path):
    """write(dt=...) leaves out the Delay of cycle edges whose delay is dt (the libraries' form of
    a recurrent layer); read(dt=...) restores it, and the spikes are the same."""
    g = _two_layer_graph()
    cn.write(g, tmp_path / "g.nir", dt=1e-3)
    types = {type(v).__name__ for v in nir.read(str(tmp_path / "g.nir")).nodes.values()}
    delays = [v for v in nir.read(str(tmp_path / "g.nir")).nodes.values() if type(v).__name__ == "Delay"]
    assert "Delay" in types and len(delays) == 1 and np.allclose(delays[0].delay, 2e-3)  # only B -> A keeps one
    h = cn.read(tmp_path / "g.nir", dt=1e-3)
    ev = _grid_events(_x(2)[:, 0], 1e-3)
    a, b = g.run(ev, t_end=T * 1e-3, dt=1e-3), h.run(ev, t_end=T * 1e-3, dt=1e-3)
    for k in a:
        assert len(a[k][0]) > 5 and np.array_equal(a[k][0], b[k][0]) and np.array_equal(a[k][1], b[k][1])


def test_network_input_spikes_checked():
    net = ctsnn.Network([ctsnn.Population(ctsnn.LIF(tau_mem=0.01), n=2)])
    with pytest.raises(ValueError, match="input_spikes"):
        net.run(0.01, 1e-3, input_spikes=([1e-3], [0], [5], [1.0]))   # neuron 5 of 2
    with pytest.raises(ValueError, match="input_spikes"):
        net.run(0.01, 1e-3, input_spikes=([-1e-3], [0], [0], [1.0]))
    res = net.run(0.01, 1e-3, record=(), input_spikes=([2.5e-3, 4e-3], [0, 0], [1, 0], [1.5, 0.5]))
    assert np.allclose(res.spike_times, [2.5e-3]) and list(res.spike_neuron) == [1]  # the jump of 1.5 fires


# ----------------------------------------------------------------------------- recorded states
def test_run_records_membranes_as_simulate():
    """Graph.run records chosen states of chosen neurons on the grid; each recorded trace equals
    ctsnn.simulate (the torch exact path, a separate implementation of the same propagator) of that
    population's model fed with the same events: the graph's input events into A, and A's spikes,
    delayed and weighted by the edge, into B."""
    dt, t_end = 1e-3, 40e-3
    rng = np.random.default_rng(4)
    f64 = dict(dtype=torch.float64)   # float64 throughout, so that spike times compare to rounding
    A = ctsnn.Population(ctsnn.LIF(tau_mem=torch.tensor([10e-3, 12e-3, 15e-3, 20e-3], **f64), r=1.0, v_th=1.0),
                         name="A")
    Bp = ctsnn.Population(ctsnn.CubaLIF(tau_syn=3e-3, tau_mem=8e-3, r=1.0, v_th=torch.tensor([0.3, 0.5, 0.7], **f64)),
                          name="B")
    w_in, w_ab = rng.uniform(0, 0.6, (4, NIN)), rng.uniform(0, 0.5, (3, 4))
    g = cn.Graph({"input": NIN}, {"A": A, "B": Bp},
                 [cn.Edge("input", "A", w_in, np.zeros((4, NIN))), cn.Edge("A", "B", w_ab, np.full((3, 4), 1.5e-3))],
                 {"out": "B"})
    times = np.sort(rng.uniform(0, 30e-3, 60))  # off the grid: no event at a recording time
    chans = rng.integers(0, NIN, 60)
    res = g.run((times, chans), t_end=t_end, dt=dt, record=("v",), record_neurons={"A": "all", "B": [0, 2]})
    assert len(res["A"][0]) > 5 and len(res["B"][0]) > 2
    assert np.allclose(res.t, np.arange(41) * dt)
    assert res.states["A"]["v"].shape == (41, 4) and res.states["B"]["v"].shape == (41, 2)
    assert list(res.recorded["B"]) == [0, 2]
    # the same inputs, one event per synapse, into ctsnn.simulate
    post, pre = np.nonzero(w_in)
    ev = [(times[chans == j], np.full((chans == j).sum(), i), np.full((chans == j).sum(), w_in[i, j]))
          for i, j in zip(post, pre)]
    tr = ctsnn.simulate(A.model, spikes=_sorted_events(ev), t_end=t_end, dt=dt, backend="torch")
    assert np.array_equal(res["A"][1], tr.spike_neurons.numpy())
    np.testing.assert_allclose(res["A"][0], tr.spike_times.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.states["A"]["v"], tr["v"].numpy(), rtol=0, atol=1e-12)
    st, sn = res["A"]
    ev = [(st + 1.5e-3, np.full(len(st), i), w_ab[i, sn]) for i in range(3)]
    tr = ctsnn.simulate(Bp.model, spikes=_sorted_events(ev), t_end=t_end, dt=dt, backend="torch")
    assert np.array_equal(res["B"][1], tr.spike_neurons.numpy())
    np.testing.assert_allclose(res["B"][0], tr.spike_times.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.states["B"]["v"], tr["v"].numpy()[:, [0, 2]], rtol=0, atol=1e-12)


def _sorted_events(parts):
    t, n, w = (np.concatenate(a) for a in zip(*parts))
    o = np.argsort(t, kind="stable")
    return t[o], n[o], w[o]


def test_run_record_arguments_checked():
    g = _two_layer_graph()
    ev = _grid_events(_x(2)[:, 0], 1e-3)
    with pytest.raises(ValueError, match="no population 'C'"):
        g.run(ev, t_end=0.01, dt=1e-3, record_neurons={"C": [0]})
    with pytest.raises(ValueError, match=r"record_neurons\['A'\]"):
        g.run(ev, t_end=0.01, dt=1e-3, record_neurons={"A": [4]})
    with pytest.raises(ValueError, match="no state 'i'"):
        g.run(ev, t_end=0.01, dt=1e-3, record=("i",), record_neurons="all")
    res = g.run(ev, t_end=0.01, dt=1e-3)  # nothing recorded by default, as Network.run
    assert res.states == {} and set(res) == {"A", "B"}
