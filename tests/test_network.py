"""Networks on the engine (ctsnn/network.py): delivery through projections with delays, Poisson
sources, recording, and bad input; checked against the torch path of ``simulate``."""
import numpy as np
import pytest
import torch

import ctsnn
from ctsnn.engine import engine_available
from ctsnn.network import Network, PoissonSource, Population, Projection

F64 = torch.float64
pytestmark = pytest.mark.skipif(not engine_available(), reason="no C++ compiler")


def cuba(**kw):
    p = dict(tau_syn=2e-3, tau_mem=1e-2, r=0.04, v_leak=-70.0, v_th=-50.0, v_reset=-70.0, t_ref=2e-3)
    p.update(kw)
    return ctsnn.CubaLIF(**p)


def test_poisson_source_equals_its_samples_through_simulate():
    pop = Population(cuba(), 3, current=400.0)
    src = PoissonSource(pop, rate=2000.0, weight=60.0, seed=7)
    net = Network([pop], sources=[src])
    res = net.run(0.05, 1e-4, record=("v", "i"), record_neurons="all")
    times, neurons = src.sample(0.05)
    assert 250 < times.shape[0] < 350                          # 3 x 2 kHz x 50 ms = 300 expected
    tr = ctsnn.simulate(cuba(), torch.full((1, 3), 400.0, dtype=F64), (times, neurons, np.full(times.shape, 60.0)),
                        t_end=0.05, dt=1e-4, record=("v", "i"), dtype=F64, backend="torch")
    assert res.spike_times.shape[0] == tr.n_spikes > 5
    assert np.array_equal(res.spike_neuron, tr.spike_neurons.numpy())
    assert np.abs(res.spike_times - tr.spike_times.numpy()).max() < 1e-12
    assert np.abs(res.states["v"] - tr["v"].numpy()).max() < 1e-9
    assert np.abs(res.states["i"] - tr["i"].numpy()).max() < 1e-9
    assert np.array_equal(res.t, tr.t.numpy())


@pytest.mark.parametrize("d_min", [1e-4, 1.2e-3])
def test_sparse_delays_deliver_at_spike_time_plus_delay(d_min):
    """A -> B with a delay and a weight per synapse: B equals simulate() driven by the input
    spikes at t_A[pre] + delay onto the same neurons. With d_min = 1.2 ms the engine runs slices
    of 11 steps between deliveries (floor(d_min / dt) - 1)."""
    rng = np.random.default_rng(3)
    A = Population(cuba(), 4, current=np.linspace(560, 640, 4))
    B = Population(cuba(), 5, current=480.0)
    m = 30
    pre, post = rng.integers(0, 4, m), rng.integers(0, 5, m)
    w, d = rng.uniform(100, 400, m), rng.uniform(d_min, 3e-3, m)
    d[0] = d_min
    res = Network([A, B], [Projection(A, B, pre, post, w, d)]).run(0.1, 1e-4, record=("v",),
                                                                    record_neurons=[(1, j) for j in range(5)])
    a = res.spike_population == 0
    tA, nA = res.spike_times[a], res.spike_neuron[a]
    assert tA.shape[0] > 10
    arr_t, arr_n, arr_w = [], [], []
    for s in range(m):
        ts = tA[nA == pre[s]]
        arr_t.append(ts + d[s]); arr_n.append(np.full(ts.shape, post[s])); arr_w.append(np.full(ts.shape, w[s]))
    arr_t, arr_n, arr_w = map(np.concatenate, (arr_t, arr_n, arr_w))
    keep = arr_t <= 0.1
    o = np.argsort(arr_t[keep], kind="stable")
    tr = ctsnn.simulate(cuba(), torch.full((1, 5), 480.0, dtype=F64),
                        (arr_t[keep][o], arr_n[keep][o], arr_w[keep][o]), t_end=0.1, dt=1e-4, dtype=F64,
                        backend="torch")
    b = ~a
    assert res.spike_times[b].shape[0] == tr.n_spikes > 3
    assert np.array_equal(res.spike_neuron[b], tr.spike_neurons.numpy())
    assert np.abs(res.spike_times[b] - tr.spike_times.numpy()).max() < 1e-12
    assert np.abs(res.states["v"] - tr["v"].numpy()).max() < 1e-9


def test_two_populations_equal_recurrent_block_matrix():
    """Excitatory and inhibitory populations joined all-to-all with one delay equal one
    ``Recurrent`` population with the block weight matrix (torch path). 50 ms: the network
    amplifies rounding differences (4e-16 s in a spike time moves a 300 pA jump of i by 8e-11),
    to 3e-11 s in spike times by 100 ms."""
    rng = np.random.default_rng(0)
    nE, nI, delay = 4, 2, 1.5e-3
    W = rng.uniform(0, 150, (nE + nI, nE + nI))
    W[:, nE:] *= -3.0                                        # inhibitory columns
    cur = np.linspace(530, 700, nE + nI)
    E, I = Population(cuba(), nE, current=cur[:nE]), Population(cuba(), nI, current=cur[nE:])
    projs = [Projection.all_to_all(P, Q, W[qs][:, ps], delay=delay)
             for P, ps in ((E, slice(0, nE)), (I, slice(nE, None))) for Q, qs in ((E, slice(0, nE)), (I, slice(nE, None)))]
    res = Network([E, I], projs).run(0.05, 1e-4, record=("v", "i"), record_neurons="all")
    rec = ctsnn.Recurrent(cuba(), weight=torch.tensor(W), delay=delay)
    tr = ctsnn.simulate(rec, torch.tensor(cur)[None], t_end=0.05, dt=1e-4, record=("v", "i"), dtype=F64,
                        backend="torch")
    glob = res.spike_neuron + np.where(res.spike_population == 1, nE, 0)
    assert res.spike_times.shape[0] == tr.n_spikes > 10
    assert np.array_equal(glob, tr.spike_neurons.numpy())
    assert np.abs(res.spike_times - tr.spike_times.numpy()).max() < 1e-12
    assert np.abs(res.states["v"] - tr["v"].numpy()).max() < 1e-9
    # the same through simulate(): Recurrent with a delay >= dt runs on the engine
    te = ctsnn.simulate(rec, torch.tensor(cur)[None], t_end=0.05, dt=1e-4, record=("v",), dtype=F64)
    assert te.stats["backend"] == "engine" and torch.equal(te.spike_neurons, tr.spike_neurons)


def test_bad_projections_raise_before_running():
    A, B = Population(cuba(), 3), Population(cuba(), 2)
    with pytest.raises(ValueError, match="post_idx has index 2 out of range"):
        Projection(A, B, [0, 1], [0, 2])
    with pytest.raises(ValueError, match="pre_idx has index -1"):
        Projection(A, B, [-1], [0])
    with pytest.raises(ValueError, match="pre_idx has 2 entries but post_idx has 1"):
        Projection(A, B, [0, 1], [0])
    with pytest.raises(ValueError, match="weight has 3 entries but there are 2 synapses"):
        Projection(A, B, [0, 1], [0, 1], weight=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="weight must be finite"):
        Projection(A, B, [0, 1], [0, 1], weight=[1.0, float("nan")])
    with pytest.raises(ValueError, match="delay must be >= dt"):
        Projection(A, B, [0], [0], delay=-1e-3)
    net = Network([A, B], [Projection(A, B, [0, 1], [0, 1], delay=[2e-3, 5e-5])])
    with pytest.raises(ValueError, match=r"delay 5e-05 s is below the step dt=0.0001 s; the minimum delay is dt"):
        net.run(0.01, 1e-4)
    with pytest.raises(ValueError, match="rate must be finite and > 0"):
        PoissonSource(A, rate=-5.0)
    with pytest.raises(ValueError, match="not in populations"):
        Network([A], [Projection(A, B, [0], [0])])


def test_threads_give_identical_results():
    """A balanced network (Brunel-like, 400 + 100 neurons, fixed in-degree, delay 1.5 ms, Poisson
    drive) on 1 and on 2 threads: the same spikes and recorded states, bit for bit (elements are
    split between the threads; the ring buffer is filled per post element in pre order)."""
    E, I = Population(cuba(v_reset=-60.0), 400), Population(cuba(v_reset=-60.0), 100)
    J, d = 40.0, 1.5e-3
    projs = [Projection.fixed_indegree(E, Q, 40, J, d, seed=k) for k, Q in enumerate((E, I))]
    projs += [Projection.fixed_indegree(I, Q, 10, -5 * J, d, seed=10 + k) for k, Q in enumerate((E, I))]
    net = Network([E, I], projs, [PoissonSource(Q, 12000.0, J, seed=20 + k) for k, Q in enumerate((E, I))])
    # 200 steps only: on a machine with more runnable jobs than cores each of the two barriers per
    # step can wait for a time slice
    runs = [net.run(0.02, 1e-4, record=("v", "i"), record_neurons=[(0, 3), (1, 7)], threads=t) for t in (1, 2)]
    assert runs[0].spike_times.shape[0] > 200
    # each engine thread's CPU time: one thread at threads=1, and never more than the process used
    assert len(runs[0].stats["thread_cpu_s"]) == 1
    for r in runs:
        tc = r.stats["thread_cpu_s"]
        assert min(tc) > 0 and sum(tc) <= r.stats["cpu_time_s"] * 1.01 + 1e-3
    for r in runs[1:]:
        assert np.array_equal(r.spike_times, runs[0].spike_times)
        assert np.array_equal(r.spike_population, runs[0].spike_population)
        assert np.array_equal(r.spike_neuron, runs[0].spike_neuron)
        for k in ("v", "i"):
            assert np.array_equal(r.states[k], runs[0].states[k])


def test_poisson_streams_of_neighbouring_neurons_are_independent():
    """Each neuron's train comes from its own stream: neighbouring neurons share no arrival
    intervals (start states one increment apart would give the same sequence shifted by one)."""
    pop = Population(cuba(), 50)
    times, neurons = PoissonSource(pop, rate=1000.0, seed=3).sample(0.2)
    iv = [np.diff(np.concatenate([[0.0], times[neurons == j]])) for j in range(50)]
    for j in range(49):
        assert np.intersect1d(np.round(iv[j], 15), np.round(iv[j + 1], 15)).size == 0
    counts = np.bincount(neurons, minlength=50)
    assert abs(counts.mean() - 200) < 10 and np.corrcoef(counts[:-1], counts[1:])[0, 1] < 0.5


def test_population_initial_equals_simulate_initial():
    """``Population(initial={"v": v0})`` starts the network where ``simulate(initial=...)`` starts
    the same neurons (torch path): equal spike times and traces."""
    v0 = np.array([-69.0, -55.0, -50.5, -62.0])
    pop = Population(cuba(), 4, current=560.0, initial={"v": v0})
    res = Network([pop]).run(0.03, 1e-4, record=("v", "i"), record_neurons="all")
    tr = ctsnn.simulate(cuba(), torch.full((1, 4), 560.0, dtype=F64), t_end=0.03, dt=1e-4,
                        initial={"v": torch.tensor(v0)[None]}, record=("v", "i"), dtype=F64, backend="torch")
    assert np.array_equal(res.states["v"][0], v0)
    assert res.spike_times.shape[0] == tr.n_spikes > 4
    assert np.array_equal(res.spike_neuron, tr.spike_neurons.numpy())
    assert np.abs(res.spike_times - tr.spike_times.numpy()).max() < 1e-12
    for k in ("v", "i"):
        assert np.abs(res.states[k] - tr[k].numpy()[:, 0]).max() < 1e-9
    with pytest.raises(ValueError, match="initial names 'u', which is not a state of CubaLIF"):
        Population(cuba(), 4, initial={"u": 0.0})
    with pytest.raises(ValueError, match=r"initial\['v'\] must be a number or \[n=4\] values"):
        Population(cuba(), 4, initial={"v": [1.0, 2.0]})
    with pytest.raises(ValueError, match="contains NaN"):
        Population(cuba(), 4, initial={"v": float("nan")})
