"""ctsnn.io: Recording validation, NPZ/CSV round trips through real files, NWB reading, spike detection."""
from pathlib import Path

import numpy as np
import pytest

import ctsnn
from ctsnn.io import Recording, detect_spikes, load_csv, load_npz, load_nwb

from ctsnn import datasets

CA1 = datasets.path("ca1")
B6 = datasets.path("b6", sweep=183).parent


def _rec(n=100, dt=1e-4):
    t = np.arange(n) * dt
    return t, -0.07 + 0.01 * np.sin(2 * np.pi * 10 * t), np.full(n, 1e-10)


def test_units_converted_to_si_and_dt():
    t, v, i = _rec()
    r = Recording(t * 1e3, v * 1e3, i * 1e12, time_unit="ms", v_unit="mV", current_unit="pA")
    np.testing.assert_allclose(r.t, t, rtol=1e-15, atol=1e-18)
    np.testing.assert_allclose(r.v, v, rtol=1e-15)
    np.testing.assert_allclose(r.current, i, rtol=1e-15)
    assert r.dt == pytest.approx(1e-4, rel=1e-12)
    assert ctsnn.Recording is Recording


def test_bad_input_errors():
    t, v, i = _rec()
    with pytest.raises(ValueError, match="different lengths"):
        Recording(t, v[:-1], i)
    t2 = t.copy(); t2[5] = t2[4]
    with pytest.raises(ValueError, match="strictly increasing"):
        Recording(t2, v, i)
    v2 = v.copy(); v2[7] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        Recording(t, v2, i)
    r = Recording(t, v2, i, mask_nan=True)
    assert r.mask.sum() == t.size - 1 and not r.mask[7]
    with pytest.raises(ValueError, match="unit"):
        Recording(t, v, i, v_unit="pA")
    with pytest.raises(ValueError, match="missing"):
        Recording(t, v, i, v_unit=None)
    t3 = t.copy(); t3[50:] += 1e-5
    with pytest.raises(ValueError, match="not uniformly sampled"):
        Recording(t3, v, i).dt
    r = Recording(t, v, i)
    with pytest.raises(ValueError, match="outside the recording"):
        r.window(0.005, 1.0)
    w = r.window(0.002, 0.005)
    assert w.t[0] == pytest.approx(0.002) and w.t[-1] == pytest.approx(0.005)


def test_detect_spikes_interpolates_crossing_and_refractory():
    dt = 1e-4
    t = np.arange(1000) * dt
    # a ramp crossing 0 V at a known off-grid time, then a second crossing inside the refractory window
    v = np.full_like(t, -0.07)
    tc = 0.01234
    k = int(tc / dt)
    v[k] = -0.01; v[k + 1] = -0.01 + 0.02 * ((t[k + 1] - t[k]) / dt)  # linear through 0 at t[k]+0.5 dt
    v[k + 2:k + 5] = 0.02
    v[k + 5] = -0.05; v[k + 6] = 0.01  # re-crossing 0.6 ms later: refractory (2 ms) suppresses it
    v[k + 7:] = -0.07
    v[800] = 0.01  # a later spike
    s = detect_spikes(t, v, threshold=0.0, refractory=2e-3)
    assert len(s) == 2
    assert s[0] == pytest.approx(t[k] + 0.5 * dt, abs=1e-12)
    assert s[1] == pytest.approx(t[799] + dt * 0.07 / 0.08, abs=1e-12)
    assert len(detect_spikes(t, v, threshold=0.0, refractory=0.0)) == 3


def test_npz_and_csv_round_trip(tmp_path):
    t, v, i = _rec()
    np.savez(tmp_path / "a.npz", time=t * 1e3, vm=v * 1e3, im=i * 1e9)
    r = load_npz(tmp_path / "a.npz", t="time", v="vm", current="im", units={"time": "ms", "vm": "mV", "im": "nA"})
    np.testing.assert_allclose(r.v, v, rtol=1e-14); np.testing.assert_allclose(r.current, i, rtol=1e-14)
    with pytest.raises(ValueError, match="unit"):
        load_npz(tmp_path / "a.npz", t="time", v="vm", current="im")
    with pytest.raises(ValueError, match="no array"):
        load_npz(tmp_path / "a.npz", t="x", v="vm", current="im", units={"x": "s", "vm": "mV", "im": "nA"})
    np.savetxt(tmp_path / "a.csv", np.c_[t, v, i], delimiter=",", header="t_s,v_V,i_A", comments="", fmt="%.17g")
    r2 = load_csv(tmp_path / "a.csv")
    np.testing.assert_array_equal(r2.t, t); np.testing.assert_array_equal(r2.v, v)
    np.testing.assert_array_equal(r2.current, i)


def test_b6_csv_equals_npz():
    a = load_csv(B6 / "B6_IDRest_183.csv")
    b = load_npz(B6 / "B6_IDRest_183.npz", units={"t": "s", "v": "V", "i": "A"})
    assert a.dt == pytest.approx(2.5e-4, rel=1e-9) and len(a) == 12000
    np.testing.assert_allclose(a.v, b.v, rtol=0, atol=1e-7)  # the CSV stores 6 significant digits
    assert 10 < len(b.spikes(threshold=-0.02)) < 200


def test_ca1_nwb_in_si():
    recs = load_nwb(CA1)
    assert len(recs) == 16
    r = recs[0]
    assert len(r) == 7168 and r.dt == pytest.approx(1e-4, rel=1e-9)
    # step amplitudes -2.0 .. +1.0 nA in 0.2 nA steps, read via the file's conversion to amperes
    steps = sorted(float(np.median(x.current[1000:4000]) - np.median(x.current[:300])) for x in recs)
    np.testing.assert_allclose(steps, np.linspace(-2e-9, 1e-9, 16), atol=0.02e-9)
    assert all(-0.2 < float(np.median(x.v[:300])) < 0.05 for x in recs)  # volts, not mV
    one = load_nwb(CA1, sweeps=[recs[3].meta["number"]])
    assert len(one) == 1 and one[0].name == recs[3].name
    with pytest.raises(ValueError, match="no sweep"):
        load_nwb(CA1, sweeps=[99999])
