"""Parameter declarations (``PARAMS``/``OPTIONS`` of each model class): every parameter a model
has is declared, the constructor and assignments enforce the declared sign, order and choices,
and the readers (fitting transforms, command line, trace geometry) take what they need from it."""
import math

import pytest
import torch

import ctsnn
from ctsnn.fitting.transforms import transform_for
from ctsnn.models import Param

TAU = 1e-2


def _models():
    lif = ctsnn.LIF(TAU)
    yield "LIF", lif
    yield "IF", ctsnn.IF()
    yield "CubaLIF", ctsnn.CubaLIF(tau_syn=2e-3, tau_mem=TAU)
    yield "ALIF", ctsnn.ALIF(TAU, 0.1, 0.2, tau_syn=2e-3)
    yield "LIT", ctsnn.LIT(TAU, tau_syn=2e-3)
    yield "DualLIT", ctsnn.DualLIT(TAU, 2 * TAU)
    yield "Traced", ctsnn.models.Traced(ctsnn.DualLIT(TAU, 2 * TAU), tau_syn=3e-3, tau_rec=4e-3, rec_weight=0.5)
    yield "Recurrent", ctsnn.Recurrent(lif, tau_rec=5e-3, rec_weight=0.3)
    yield "AdEx", ctsnn.AdEx()
    yield "QIF", ctsnn.QIF(TAU)
    yield "Izhikevich", ctsnn.Izhikevich()


@pytest.mark.parametrize("name,model", list(_models()), ids=[n for n, _ in _models()])
def test_every_parameter_is_declared_and_its_sign_enforced(name, model):
    for key, value in model.params().items():
        spec = model.param_spec(key)                       # raises if undeclared
        assert isinstance(spec, Param) and (spec.time_constant <= (spec.sign == "positive"))
        if "." in key or value.dim() or model.__class__ in (ctsnn.Recurrent, ctsnn.models.Traced):
            continue
        bad = {"positive": [0.0, -1.0], "nonneg": [-1.0]}.get(spec.sign, [])
        for b in bad:
            with pytest.raises(ValueError, match=key):
                model.replace(**{key: b})
            with pytest.raises(ValueError, match=key):
                setattr(model, key, b)
            assert float(getattr(model, key)) == float(value)     # rolled back


def test_declared_orders_are_checked_and_off_without_reset():
    for model, (up, lo) in ((ctsnn.LIF(TAU), ("v_th", "v_reset")), (ctsnn.QIF(TAU), ("v_c", "v_rest")),
                            (ctsnn.Izhikevich(), ("v_peak", "c")), (ctsnn.AdEx(), ("v_peak", "v_reset"))):
        assert (up, lo) in model.orders()
        with pytest.raises(ValueError, match=f"{lo} must be below {up}"):
            model.replace(**{lo: float(getattr(model, up)) + 1.0})
    assert ctsnn.LIF(TAU, reset="none", v_reset=5.0).orders() == ()     # v_reset unused
    assert ctsnn.Recurrent(ctsnn.LIF(TAU), 0.1).orders() == (("base.v_th", "base.v_reset"),)


def test_options_are_checked_on_assignment_and_rolled_back():
    alif = ctsnn.ALIF(TAU, 0.1, 0.2)
    with pytest.raises(ValueError, match=r"adaptation must be one of \('threshold', 'current'\), got 'bogus'"):
        alif.adaptation = "bogus"
    assert alif.adaptation == "threshold"
    assert alif.event_geometry()["events"][0]["coef"] == {"v": 1.0, "b": -1.0}     # v crosses v_th + b
    alif.adaptation = "current"                                                     # accepted, and it acts
    assert alif.event_geometry()["events"][0]["coef"] == {"v": 1.0}
    assert alif.config()["adaptation"] == "current"
    with pytest.raises(ValueError, match="subtract='threshold' needs"):
        alif.subtract = "threshold"
    assert alif.subtract == "v_th"
    lif = ctsnn.LIF(TAU)
    with pytest.raises(ValueError, match="reset must be one of"):
        lif.reset = "zero"
    assert lif.reset == "to_value"


def test_event_geometry_is_read_from_the_model():
    g = ctsnn.LIT(TAU, pos_th=1.0, neg_th=0.5, bias=0.25).event_geometry()
    assert [e["coef"] for e in g["events"]] == [{"v": 1.0}, {"v": -1.0}]
    assert [e["offset"] for e in g["events"]] == [[0.75], [0.75]]          # pos_th - bias, neg_th + bias
    assert all(e["reset"] == {} for e in g["events"])                       # subtract: no fixed level
    g = ctsnn.LIF(TAU, v_th=torch.tensor([1.0, 2.0]), v_reset=-0.5).event_geometry()
    assert g["events"][0]["offset"] == [1.0, 2.0] and g["events"][0]["reset"] == {"v": [-0.5, -0.5]}
    assert ctsnn.Izhikevich().event_geometry()["voltage_unit"] == "mV"


def test_fit_transforms_follow_the_declaration():
    pos, nonneg, signed = Param("s", "positive"), Param("s", "nonneg", scale=1e-3), Param("V")
    assert transform_for("x", 0.02, spec=pos).kind == "log"
    assert transform_for("x", 0.0, spec=nonneg).kind == "softplus"
    assert transform_for("x", 2e-3, spec=nonneg).kind == "log"
    t = transform_for("x", -0.07, spec=signed)
    assert t.kind == "affine" and t.scale == pytest.approx(0.07)
    z = torch.tensor(0.3, dtype=torch.float64)
    assert float(transform_for("x", 0.02, spec=pos)(z)) == pytest.approx(0.02 * math.exp(0.3))
    with pytest.raises(ValueError, match="must start > 0"):
        transform_for("x", -1.0, spec=pos)


def test_command_line_reads_units_from_the_declaration():
    from ctsnn.cli import build_model
    m = build_model("izhikevich", {"c": "-60", "a": "0.03"})
    assert float(m.c) == -60.0 and float(m.a) == 0.03                   # his units: bare numbers
    with pytest.raises(ValueError, match="bare number in mV"):
        build_model("izhikevich", {"c": "-60mV"})
    assert float(build_model("lif", {"tau_mem": "20ms"}).tau_mem) == pytest.approx(0.02)
    assert float(build_model("adex", {"b": "60pA"}).b) == pytest.approx(60e-12)   # AdEx b: a current
    with pytest.raises(ValueError, match="adaptation must be one of"):
        build_model("alif", {"adaptation": "sometimes"})
    with pytest.raises(ValueError, match="--reset applies to lif, if, cubalif, alif"):
        build_model("qif", {}, reset="subtract")


def test_states_are_declared_once_and_kept_by_the_trace(tmp_path):
    alif = ctsnn.ALIF(TAU, 0.1, 0.1, adaptation="current", tau_syn=5e-3)
    assert {k: s.unit for k, s in alif.declared_states().items()} == {"v": "V", "i": "A", "b": "V"}
    assert alif.declared_states()["b"].dimension == "voltage"
    # a wrapper keeps its model's declarations and adds its own
    rec = ctsnn.models.Recurrent(alif, tau_rec=TAU)
    assert {k: s.unit for k, s in rec.declared_states().items()} == {"v": "V", "i": "A", "b": "V", "r": ""}
    tr = ctsnn.simulate(rec, 1.0, t_end=2e-3, dt=1e-3, record="all")
    assert ctsnn.Trace.load(tr.save(tmp_path / "t.npz")).thresholds["state_units"] == \
        {"v": "V", "i": "A", "b": "V", "r": ""}

    class Undeclared(ctsnn.LIF):
        pass
    m = Undeclared(TAU)
    m.state_names = ("v", "x")
    with pytest.raises(ValueError, match="declares no state 'x'"):
        m.declared_states()


def test_fit_starts_at_the_fixed_point_of_the_linear_part():
    from ctsnn.fitting.core import _steady_state
    I0 = torch.tensor(2e-10, dtype=torch.float64)
    v_leak = torch.tensor(-0.07, dtype=torch.float64, requires_grad=True)
    si = dict(r=1e8, v_leak=v_leak, v_th=0.0, v_reset=-0.08)
    for m in (ctsnn.LIF(TAU, **si), ctsnn.CubaLIF(2e-3, TAU, **si),
              ctsnn.ALIF(TAU, 0.1, 1e-3, adaptation="current", tau_syn=2e-3, **si)):
        y = _steady_state(m, I0)
        assert set(y) == set(m.state_names)
        # closed form: v = v_leak + r I(0); the synaptic current and the adaptation decay to 0
        assert float(y["v"].detach()) == pytest.approx(-0.07 + 1e8 * 2e-10, abs=1e-15)
        assert all(float(y[k].detach()) == 0 for k in m.state_names if k != "v")
        assert float(torch.autograd.grad(y["v"].sum(), v_leak)[0]) == pytest.approx(1.0, abs=1e-14)
    # LIT has no leak potential: rest at r I(0); IF has no rest under a current, AdEx no linear part
    assert float(_steady_state(ctsnn.LIT(TAU, r=3.0), torch.tensor(0.5, dtype=torch.float64))["v"]) == \
        pytest.approx(1.5, abs=1e-15)
    assert _steady_state(ctsnn.IF(), I0) is None and _steady_state(ctsnn.AdEx(), I0) is None


def test_cli_spike_weights_take_the_unit_of_the_declared_input_state(tmp_path, capsys):
    from ctsnn.cli import main
    with open(tmp_path / "in.csv", "w") as fh:
        fh.write("times,weights\n10,5\n")
    argv = ["simulate", "--spikes-file", str(tmp_path / "in.csv"), "--spikes-time-unit", "ms",
            "--t-end", "20ms", "-o", str(tmp_path / "out.npz"), "--quiet", "--force"]
    # CubaLIF's input spikes jump i, declared in amperes: a weight in mV is refused, one in pA is taken
    assert main(argv + ["--model", "cubalif", "--spikes-weight-unit", "mV"]) != 0
    assert "expected a unit of current" in capsys.readouterr().err
    assert main(argv + ["--model", "cubalif", "--spikes-weight-unit", "pA", "--record", "all"]) == 0
    tr = ctsnn.Trace.load(tmp_path / "out.npz")      # the weight 5 pA jumped i by 5e-12 A at 10 ms
    assert float(tr["i"].max()) == pytest.approx(5e-12, rel=1e-12)
