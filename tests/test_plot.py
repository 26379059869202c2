"""The figures draw what the trace says: checked on the artists' data, not on pixels."""
import math

import matplotlib
import numpy as np
import pytest
import torch

import ctsnn
from ctsnn import plot

matplotlib.use("Agg")
TAU = 10e-3


def _line(ax, gid):
    lines = [ln for ln in ax.get_lines() if ln.get_gid() == gid]
    assert len(lines) == 1, [ln.get_gid() for ln in ax.get_lines()]
    return lines[0]


@pytest.fixture(scope="module")
def lif_trace():
    # a coarse recording grid (2 ms) on purpose: the spikes fall between samples
    return ctsnn.simulate(ctsnn.LIF(tau_mem=TAU, v_th=1.0, v_reset=0.0), 1.5, t_end=0.1, dt=2e-3,
                          dtype=torch.float64)


def test_membrane_reaches_the_pre_reset_peak_at_every_exact_spike_time(lif_trace, tmp_path):
    tr = lif_trace
    ax = plot.membrane(tr)
    ln = _line(ax, "membrane-0")
    x, y = np.asarray(ln.get_xdata()), np.asarray(ln.get_ydata())
    scale = 1e3                                 # t_end < 2 s: the axis is in ms
    assert tr.n_spikes > 5
    for ts, pre, post in zip(tr.spike_times.tolist(), tr.spike_pre[:, 0].tolist(), tr.spike_post[:, 0].tolist()):
        at = np.nonzero(np.abs(x - ts * scale) < 1e-9)[0]
        assert at.size >= 2, ts
        # first the left limit (threshold), then the right limit (reset), at the same time
        assert y[at[0]] == pytest.approx(pre, abs=1e-12) and y[at[1]] == pytest.approx(post, abs=1e-12)
    assert max(y) == pytest.approx(1.0, abs=1e-12)            # the line really reaches threshold
    assert float(tr["v"].max()) < 0.99                         # ... which no grid sample does
    assert np.all(np.diff(x) >= 0)
    th = _line(ax, "threshold-0")
    assert np.allclose(th.get_ydata(), 1.0)
    assert np.allclose(_line(ax, "reset-0").get_ydata(), 0.0)
    marks = _line(ax, "spikes-0")
    assert np.allclose(marks.get_xdata(), tr.spike_times.numpy() * scale)
    assert "(ms)" in ax.get_xlabel() and "(V)" in ax.get_ylabel()
    path = plot.save(ax, tmp_path / "m.png")
    img = matplotlib.image.imread(path)
    assert img.shape[0] > 100 and img.std() > 0.01


def test_membrane_physiological_units_and_moving_threshold():
    model = ctsnn.ALIF(tau_mem=TAU, tau_adapt=0.1, adapt_jump=2e-3, r=100e6, v_leak=-70e-3,
                       v_th=-50e-3, v_reset=-70e-3)
    tr = ctsnn.simulate(model, 0.4e-9, t_end=0.2, dt=1e-3, record="all", dtype=torch.float64)
    ax = plot.membrane(tr)
    assert "(mV)" in ax.get_ylabel()
    th = _line(ax, "threshold-0")
    x, y = np.asarray(th.get_xdata()), np.asarray(th.get_ydata())
    # the threshold is v_th + b: at each spike it reads v_th + b(t-) = v(t-), then jumps by adapt_jump
    for k, ts in enumerate(tr.spike_times.tolist()):
        at = np.nonzero(np.abs(x - ts * 1e3) < 1e-9)[0]
        b_pre = float(tr.spike_pre[k, 1])
        assert y[at[0]] == pytest.approx((-50e-3 + b_pre) * 1e3, abs=1e-9)
        assert y[at[1]] - y[at[0]] == pytest.approx(2.0, abs=1e-9)      # 2 mV jump
        assert float(tr.spike_pre[k, 0]) == pytest.approx(-50e-3 + b_pre, abs=1e-12)


def test_raster_marker_positions_are_the_spike_times():
    torch.manual_seed(0)
    model = ctsnn.LIT(tau_mem=TAU, pos_th=1.0, neg_th=1.0, n=6)
    cur = (torch.rand(300, 6, dtype=torch.float64) - 0.5) * 8
    tr = ctsnn.simulate(model, cur, t_end=0.3, dt=1e-3, record=())
    rax, pax = plot.raster(tr, rate=True, rate_bin=0.01)
    pos, neg = _line(rax, "raster-positive"), _line(rax, "raster-negative")
    for ln, sgn in ((pos, 1), (neg, -1)):
        sel = tr.spike_signs == sgn
        assert sel.sum() > 5
        assert np.array_equal(ln.get_xdata(), tr.spike_times[sel].numpy() * 1e3)
        assert np.array_equal(ln.get_ydata(), tr.spike_neurons[sel].numpy().astype(float))
    assert pos.get_color() != neg.get_color()
    # the rate panel integrates to the spike count
    rate = [p for p in pax.patches if p.get_gid() == "rate"][0]
    counts = np.asarray(rate.get_data()[0]) * 0.01 * 6
    assert counts.sum() == pytest.approx(tr.n_spikes)
    assert "(ms)" in pax.get_xlabel() and "Hz" in pax.get_ylabel()


def test_raster_from_arrays_and_groups():
    times = np.array([0.1, 0.2, 0.3, 0.4])
    neurons = np.array([0, 3, 1, 2])
    ax = plot.raster((times, neurons), groups={"exc": [0, 1], "inh": [2, 3]})
    ln = _line(ax, "raster-positive")
    assert np.array_equal(ln.get_ydata(), [0, 3, 1, 2])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["exc", "inh"]
    with pytest.raises(ValueError, match="neuron indices"):
        plot.raster((times, neurons[:3]))


def test_states_has_one_panel_per_state():
    model = ctsnn.CubaLIF(tau_syn=5e-3, tau_mem=TAU)
    tr = ctsnn.simulate(model, spikes=([0.01, 0.012], [0, 0], [3.0, 3.0]), t_end=0.05, dt=1e-3,
                        record="all", dtype=torch.float64)
    axes = plot.states(tr)
    assert len(axes) == 2
    i_line = _line(axes[1], "state-i")
    # the synaptic current jumps by 3 at the exact input time 10 ms... (a grid time here)
    assert np.max(i_line.get_ydata()) == pytest.approx(float(tr["i"].max()), abs=1e-12)
    assert axes[0].get_shared_x_axes().joined(axes[0], axes[1])
    with pytest.raises(ValueError, match="recorded"):
        plot.states(ctsnn.simulate(model, 1.0, t_end=0.01, dt=1e-3, record=()))


def test_compare_shows_spike_time_differences():
    model = ctsnn.LIF(tau_mem=TAU)
    ref = ctsnn.simulate(model, 1.5, t_end=0.1, dt=1e-3, dtype=torch.float64)
    eu = ctsnn.simulate(model, 1.5, t_end=0.1, dt=1e-3, method="euler", dtype=torch.float64)
    top, bot = plot.compare([ref, eu], ["exact", "euler"])
    d = _line(bot, "difference-1")
    m = min(ref.n_spikes, eu.n_spikes)
    assert np.allclose(d.get_ydata(), (eu.spike_times[:m] - ref.spike_times[:m]).numpy() * 1e3)
    assert np.allclose(_line(bot, "difference-0").get_ydata(), 0)
    assert len([ln for ln in top.get_lines() if ln.get_gid() == "membrane-0"]) == 2
    with pytest.raises(ValueError, match="labels"):
        plot.compare([ref, eu], ["one"])


def test_fi_curve_matches_the_closed_form_rate():
    model = ctsnn.LIF(tau_mem=TAU)
    currents = [0.5, 1.5, 2.0, 3.0]
    ax = plot.fi_curve(model, currents, t_end=1.0, dt=1e-3, data=([1.5, 2.0], [80.0, 140.0]))
    y = _line(ax, "fi-model").get_ydata()
    # below rheobase no spikes; above, floor(1 s / T) spikes with T = tau ln(I/(I - 1))
    expected = [0.0] + [math.floor(1.0 / (TAU * math.log(i / (i - 1.0)))) for i in currents[1:]]
    assert np.allclose(y, expected)
    assert np.array_equal(_line(ax, "fi-data").get_xdata(), [1.5, 2.0])
    assert "Hz" in ax.get_ylabel()


def test_membrane_rejects_missing_state_and_bad_neuron(lif_trace):
    with pytest.raises(ValueError, match="recorded"):
        plot.membrane(lif_trace, state="i")
    with pytest.raises(ValueError, match="out of range"):
        plot.membrane(lif_trace, neurons=3)


def test_composes_into_given_axes():
    from matplotlib.figure import Figure

    fig = Figure()
    a, b = fig.subplots(1, 2)
    tr = ctsnn.simulate(ctsnn.LIF(tau_mem=TAU), 1.5, t_end=0.05, dt=1e-3)
    assert plot.membrane(tr, ax=a) is a
    assert plot.raster(tr, ax=b) is b


def test_match_spikes_is_one_to_one_and_survives_a_missed_spike():
    ref = np.array([0.010, 0.020, 0.030, 0.040])
    other = np.array([0.0201, 0.0302, 0.0403])            # the first spike is missed
    i_ref, i_o = plot.match_spikes(ref, other)
    assert i_ref.tolist() == [1, 2, 3] and i_o.tolist() == [0, 1, 2]
    # matching by index would have paired 0.010 with 0.0201; an extra spike is left unmatched too
    i_ref, i_o = plot.match_spikes(ref, np.array([0.010, 0.015, 0.020, 0.030, 0.040]))
    assert i_ref.tolist() == [0, 1, 2, 3] and i_o.tolist() == [0, 2, 3, 4]
    assert plot.match_spikes(ref, []) [0].size == 0


def test_compare_differences_when_one_run_misses_a_spike():
    model = ctsnn.LIF(tau_mem=TAU)
    # input spikes of weight 1.5 > v_th fire the neuron at their exact times; the second run
    # misses the first input and gets the others 0.1, 0.2, 0.3 ms late
    ref = ctsnn.simulate(model, spikes=([0.010, 0.020, 0.030, 0.040], [0] * 4, 1.5), t_end=0.05,
                         dt=1e-3, dtype=torch.float64)
    other = ctsnn.simulate(model, spikes=([0.0201, 0.0302, 0.0403], [0] * 3, 1.5), t_end=0.05,
                           dt=1e-3, dtype=torch.float64)
    assert np.allclose(ref.spike_times.numpy(), [0.010, 0.020, 0.030, 0.040], atol=1e-15)
    top, bot = plot.compare([ref, other], ["ref", "other"])
    d = _line(bot, "difference-1")
    assert np.allclose(d.get_xdata(), [20.0, 30.0, 40.0], atol=1e-9)          # ms
    assert np.allclose(d.get_ydata(), [0.1, 0.2, 0.3], atol=1e-9)            # ms
    assert "1 missed" in d.get_label()


def test_adaptive_threshold_without_recorded_b_is_drawn_only_at_spikes():
    model = ctsnn.ALIF(tau_mem=TAU, tau_adapt=0.1, adapt_jump=0.2)
    tr = ctsnn.simulate(model, 3.0, t_end=0.1, dt=1e-3, dtype=torch.float64)   # records v only
    ax = plot.membrane(tr)
    th = _line(ax, "threshold-0")
    assert th.get_linestyle() == "None"
    x, y = np.asarray(th.get_xdata()), np.asarray(th.get_ydata())
    assert np.allclose(x[::2], tr.spike_times.numpy() * 1e3)
    assert np.allclose(y[::2], 1.0 + tr.spike_pre[:, 1].numpy())              # v_th + b(t-)
    assert np.allclose(y[1::2] - y[::2], 0.2)                                  # the jump of b
    assert np.allclose(y[::2], tr.spike_pre[:, 0].numpy())                     # v meets it


def test_saved_and_loaded_trace_draws_the_same_limits(lif_trace, tmp_path):
    # `ctsnn plot` draws from a .npz: the spike limits and thresholds must survive the round trip
    back = ctsnn.Trace.load(lif_trace.save(tmp_path / "t.npz"))
    t0, v0 = plot.membrane_polyline(lif_trace)
    t1, v1 = plot.membrane_polyline(back)
    assert np.array_equal(t0, t1) and np.array_equal(v0, v1)
    assert np.allclose(_line(plot.membrane(back), "threshold-0").get_ydata(), 1.0)


def test_headless_without_pyplot_and_lazy_import(tmp_path):
    # no MPLBACKEND, no DISPLAY: importing ctsnn.plot loads no matplotlib, drawing never loads pyplot
    import os
    import subprocess
    import sys

    code = (
        "import sys, ctsnn, ctsnn.plot as p\n"
        "assert 'matplotlib' not in sys.modules\n"
        "tr = ctsnn.simulate(ctsnn.LIF(tau_mem=0.01), 1.5, t_end=0.05, dt=1e-3)\n"
        f"p.save(p.membrane(tr), {str(tmp_path / 'h.png')!r}); p.save(p.raster(tr), {str(tmp_path / 'r.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "DISPLAY", "WAYLAND_DISPLAY")}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "h.png").stat().st_size > 5000 and (tmp_path / "r.png").stat().st_size > 5000


def test_compare_log_scale_draws_absolute_differences():
    model = ctsnn.LIF(tau_mem=TAU)
    ref = ctsnn.simulate(model, 1.5, t_end=0.1, dt=1e-3, dtype=torch.float64)
    eu = ctsnn.simulate(model, 1.5, t_end=0.1, dt=1e-3, method="euler", dtype=torch.float64)
    top, bot = plot.compare([ref, eu], ["exact", "euler"], diff_scale="log")
    assert bot.get_yscale() == "log"
    assert not [ln for ln in bot.get_lines() if ln.get_gid() == "difference-0"]    # all zero
    i_r, i_e = plot.match_spikes(ref.spike_times.numpy(), eu.spike_times.numpy())
    d = (eu.spike_times.numpy()[i_e] - ref.spike_times.numpy()[i_r]) * 1e3
    assert np.allclose(_line(bot, "difference-1").get_ydata(), np.abs(d[d != 0]))
    with pytest.raises(ValueError, match="diff_scale"):
        plot.compare([ref, eu], diff_scale="symlog")


def test_nonlinear_models_draw_the_cut_off_and_their_units():
    # AdEx (SI volts): cut-off v_peak and reset v_reset lines, the line reaches v_peak at each spike
    ad = ctsnn.AdEx()
    tr = ctsnn.simulate(ad, 1e-9, t_end=0.1, dt=1e-3, method="dopri5", dtype=torch.float64)
    assert tr.n_spikes >= 2
    ax = plot.membrane(tr)
    assert "(mV)" in ax.get_ylabel()
    assert np.allclose(_line(ax, "threshold-0").get_ydata(), -40.4)
    assert np.allclose(_line(ax, "reset-0").get_ydata(), -70.6)
    x, y = _line(ax, "membrane-0").get_data()
    for ts in tr.spike_times.tolist():
        at = np.nonzero(np.abs(np.asarray(x) - ts * 1e3) < 1e-9)[0]
        assert np.asarray(y)[at[0]] == pytest.approx(-40.4, abs=1e-6)
    # Izhikevich states its voltages in mV already: no rescaling, and the unit says mV
    iz = ctsnn.simulate(ctsnn.Izhikevich(), 10.0, t_end=0.05, dt=1e-3, method="dopri5", dtype=torch.float64)
    ax = plot.membrane(iz)
    assert "(mV)" in ax.get_ylabel()
    assert np.allclose(_line(ax, "threshold-0").get_ydata(), 30.0)
    assert max(_line(ax, "membrane-0").get_ydata()) == pytest.approx(30.0, abs=1e-6)


def test_raster_rate_per_neuron_of_the_given_population():
    times = np.array([0.01, 0.02, 0.03, 0.31])
    neurons = np.array([0, 1, 1, 0])
    rax, pax = plot.raster((times, neurons), rate=True, rate_bin=0.1, t_end=0.4, n_neurons=10)
    rate = [p for p in pax.patches if p.get_gid() == "rate"][0]
    hz, edges = np.asarray(rate.get_data()[0]), np.asarray(rate.get_data()[1])
    assert np.allclose(edges, [0, 100, 200, 300, 400])                   # ms
    assert np.allclose(hz, [3 / 0.1 / 10, 0, 0, 1 / 0.1 / 10])            # spikes / bin / neuron
    assert rax.get_ylim() == (-0.5, 9.5) and rax.get_xlim() == (0, 400)
    with pytest.raises(ValueError, match="n_neurons"):
        plot.raster((times, neurons), n_neurons=1)
    with pytest.raises(ValueError, match="rate_bin"):
        plot.raster((times, neurons), rate=True, rate_bin=0)


def test_membrane_neuron_indices_in_any_integer_form():
    tr = ctsnn.simulate(ctsnn.LIF(tau_mem=TAU, n=3), torch.full((20, 2, 3), 1.5, dtype=torch.float64),
                        t_end=0.02, dt=1e-3)
    for sel in (4, np.int64(4), torch.tensor(4), [4], np.array([4]), torch.tensor([4])):
        ax = plot.membrane(tr, neurons=sel)
        assert np.array_equal(_line(ax, "membrane-4").get_ydata(), plot.membrane_polyline(tr, 4)[1])
    with pytest.raises(ValueError, match="integer"):
        plot.membrane(tr, neurons=[0.5])
    with pytest.raises(ValueError, match="integer"):
        plot.membrane(tr, neurons=[])


def _state_plot_examples():
    """One instance (and the solver that runs it) of every public model class, with the variants
    whose states differ (ALIF's two adaptations, with and without a synapse; wrappers)."""
    M = ctsnn.models
    si = dict(r=100e6, v_leak=-0.07, v_th=-0.05, v_reset=-0.07)
    return [
        (M.LIF(TAU, **si), "exact"), (M.IF(r=1 / 200e-12, v_th=-0.05, v_reset=-0.07), "exact"),
        (M.CubaLIF(5e-3, TAU, **si), "exact"),
        (M.ALIF(TAU, 0.1, 2e-3, **si), "exact"),
        (M.ALIF(TAU, 0.1, 2e-3, adaptation="current", tau_syn=5e-3, **si), "exact"),
        (M.LIT(TAU, tau_syn=5e-3), "exact"), (M.DualLIT(TAU, 2 * TAU), "exact"),
        (M.Traced(M.DualLIT(TAU, 2 * TAU), tau_syn=5e-3, tau_rec=TAU), "euler"),
        (M.Recurrent(M.CubaLIF(5e-3, TAU), tau_rec=TAU), "exact"),
        (M.AdEx(), "euler"), (M.QIF(TAU), "euler"), (M.Izhikevich(), "euler"),
        (M.MNLIF(TAU, **{k: si[k] for k in ("r", "v_leak", "v_reset")}, theta_inf=-0.05, a=5.0), "exact"),
    ]


def _shown_unit(declared):
    """The units an axis may show for a declared unit: SI volts and amperes get a prefix by
    magnitude; any other unit is shown as declared."""
    return {"V": {"mV", "V"}, "A": {"pA", "nA", "A"}}.get(declared, {declared})


def test_every_state_axis_is_labelled_with_its_declared_unit():
    examples = _state_plot_examples()
    public = {getattr(ctsnn.models, k) for k in ctsnn.models.__all__}
    public = {c for c in public if isinstance(c, type) and issubclass(c, ctsnn.models.NeuronModel)
              and c is not ctsnn.models.NeuronModel}
    assert public <= {type(m) for m, _ in examples}, "a model class has no example here"
    for model, method in examples:
        tr = ctsnn.simulate(model, 3e-10, t_end=5e-3, dt=1e-3, method=method, record="all",
                            dtype=torch.float64)
        declared = model.declared_states()
        assert tuple(declared) == model.state_names
        axes = plot.states(tr)
        assert len(axes) == len(declared), (type(model).__name__, len(axes))
        for ax, (name, spec) in zip(axes, declared.items()):
            label = ax.get_ylabel()
            shown = label[len(name) + 2:-1] if label != name else ""
            assert label.startswith(name) and shown in _shown_unit(spec.unit), (type(model).__name__, label, spec)
    # ALIF with current adaptation: b enters tau_mem dv/dt = ... - b, a voltage (as adapt_jump),
    # and i is a current; the labels say so however the states are named
    alif = ctsnn.ALIF(TAU, 0.1, 2e-3, adaptation="current", tau_syn=5e-3, r=100e6, v_leak=-0.07,
                      v_th=-0.05, v_reset=-0.07)
    tr = ctsnn.simulate(alif, 3e-10, spikes=([0.01], [0], [2e-10]), t_end=0.05, dt=1e-3, record="all",
                        dtype=torch.float64)
    axes = plot.states(tr)
    assert [a.get_ylabel() for a in axes] == ["v (mV)", "i (pA)", "b (mV)"]
    # drawn in the unit of the label: the current's peak (the 200 pA input spike) in pA
    assert np.max(_line(axes[1], "state-i").get_ydata()) == pytest.approx(200.0, rel=1e-9)
