"""What the libraries' NIR exports mean when read literally, and after ctsnn's repair.

For each library: a Linear + LIF network (snntorch also a recurrent RLeaky) exported by the
library (or, where its exporter fails on the installed versions, the graph its own node mapping
writes), run by the library on random input spikes, and by ctsnn's layer stack read (a) as the
file says (``ctsnn.nir.read(path)``, NIR's equations, exact propagator) and (b) with the adapter
(``read(path, source=..., dt=...)``).  Prints the file's fields and the number of output spikes
that differ from the library's own.  Usage: python benchmarks/nir_exports.py
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

import nir
import ctsnn.nir as cn

warnings.filterwarnings("ignore")
T, B, NIN, N, DT = 200, 4, 5, 4, 1e-3


def x_of(seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, NIN, generator=g) < 0.3).to(dtype)


def report(name, graph, ref, x, node):
    nd = next(v for k, v in graph.nodes.items() if k == node)
    fields = {k: np.round(np.asarray(getattr(nd, k)).reshape(-1)[:1], 6).tolist()
              for k in ("tau", "tau_mem", "tau_syn", "r", "v_leak", "v_threshold", "v_reset", "w_in") if hasattr(nd, k)}
    lit = cn.read(graph, dt=DT)  # dt only gives a cycle its one-step delay
    fix = cn.read(graph, source=name.split()[0], dt=DT)
    o_lit = lit.discretize(DT)(x)[list(lit.populations)[-1]]
    o_fix = fix.discretize(DT)(x)[list(fix.populations)[-1]]
    ref = ref.to(o_fix.dtype)
    print(f"{name:28s} file {type(nd).__name__} {fields}")
    print(f"{'':28s} library {int(ref.sum())} spikes; literal read: {int(o_lit.sum())} spikes, "
          f"{int((o_lit != ref).sum())} entries differ; adapter: {int((o_fix != ref).sum())} differ")


def main():
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    import snntorch as snn
    from snntorch import utils
    from snntorch.export_nir import export_to_nir
    for rec in (False, True):
        dtype = torch.float32 if rec else torch.float64
        lin = torch.nn.Linear(NIN, N)
        lin.weight.data *= 3
        lif = (snn.RLeaky(beta=torch.full((N,), 0.85), threshold=torch.ones(N), linear_features=N, init_hidden=True)
               if rec else snn.Leaky(beta=torch.full((N,), 0.85), threshold=torch.ones(N), init_hidden=True))
        net = torch.nn.Sequential(lin, lif).to(dtype)
        g = export_to_nir(net, torch.zeros(NIN, dtype=dtype))
        utils.reset(net)
        x = x_of(1, dtype)
        ref = torch.stack([net(x[t]) for t in range(T)]).detach()
        report(f"snntorch {'RLeaky' if rec else 'Leaky'}", g, ref, x, "1.lif" if rec else "1")
    import norse.torch as nt
    for cell in ("LIFBoxCell", "LIFCell"):
        lin = torch.nn.Linear(NIN, N)
        lin.weight.data *= 3
        lin.bias.data.zero_()
        c = (nt.LIFBoxCell(nt.LIFBoxParameters(tau_mem_inv=torch.full((N,), 100.), v_th=torch.full((N,), 0.3),
                                               v_leak=torch.zeros(N)), dt=DT) if cell == "LIFBoxCell" else
             nt.LIFCell(nt.LIFParameters(tau_mem_inv=torch.full((N,), 100.), tau_syn_inv=torch.full((N,), 200.),
                                         v_th=torch.full((N,), 0.3), v_leak=torch.zeros(N),
                                         v_reset=torch.zeros(N)), dt=DT))
        net = nt.SequentialState(lin, c)
        g = nt.to_nir(net, torch.zeros(NIN), dt=DT)
        x = x_of(2)
        s, ref = None, []
        for t in range(T):
            o, s = net(x[t], s)
            ref.append(o)
        report(f"norse {cell}", g, torch.stack(ref).detach(), x, "1")
    import sinabs.layers as sl
    from sinabs.nir import _extract_sinabs_module
    for kind in ("LIF", "IAF"):
        lin = torch.nn.Linear(NIN, N)
        lin.weight.data *= 8
        net = torch.nn.Sequential(lin, sl.LIF(tau_mem=5.0) if kind == "LIF" else sl.IAF())
        x = x_of(3)
        ref = net(x.transpose(0, 1)).transpose(0, 1).detach()
        g = nir.NIRGraph(nodes={"input": nir.Input(np.array([NIN])), "0": _extract_sinabs_module(net[0]),
                                "1": _extract_sinabs_module(net[1]), "output": nir.Output(np.array([N]))},
                         edges=[("input", "0"), ("0", "1"), ("1", "output")], type_check=False)
        report(f"sinabs {kind}", g, ref, x, "1")
    from spikingjelly.activation_based import functional, layer, neuron
    from spikingjelly.activation_based.nir_exchange import to_nir as sjt
    for kind in ("LIFNode", "IFNode"):
        lin = layer.Linear(NIN, N)
        lin.weight.data *= 6
        net = torch.nn.Sequential(lin, neuron.LIFNode(tau=2.0) if kind == "LIFNode" else neuron.IFNode())
        mp = sjt._ModuleMapper(net, torch.zeros(B, NIN))
        g = nir.NIRGraph.from_list(*[mp.map_dict[type(m)](m) for m in net])
        functional.reset_net(net)
        x = x_of(4)
        ref = torch.stack([net(x[t]) for t in range(T)]).detach()
        report(f"spikingjelly {kind}", g, ref, x, [k for k in g.nodes if k.startswith(("lif", "if"))][0])


if __name__ == "__main__":
    main()
