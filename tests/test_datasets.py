"""ctsnn.datasets: the bundled recordings are found, read in SI units, and declared as package data."""
import fnmatch
import re
from pathlib import Path

import numpy as np
import pytest

import ctsnn
from ctsnn import datasets

ROOT = Path(__file__).resolve().parents[1]


def test_list_and_paths():
    assert datasets.list() == ["b6", "ca1"]
    assert all(isinstance(datasets.describe(n), str) for n in datasets.list())
    for s in (181, 182, 183, 184, 185):
        p = datasets.path("b6", sweep=s)
        assert p.name == f"B6_IDRest_{s}.npz" and p.is_file()
    assert datasets.path("b6", sweep=183, format="csv").is_file()
    assert datasets.path("ca1").name == "99111002.nwb" and datasets.path("CA1").is_file()
    # every file lies inside the package: nothing outside the repository or installation is read
    pkg = Path(ctsnn.__file__).resolve().parent
    assert pkg in datasets.path("ca1").resolve().parents
    assert (datasets.ROOT / "PROVENANCE.md").is_file()
    assert (datasets.ROOT / "hippocampus_ca1" / "data-provenance.txt").is_file()


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="unknown data set 'b7'.*'b6', 'ca1'"):
        datasets.path("b7")
    with pytest.raises(ValueError, match="needs sweep="):
        datasets.path("b6")
    with pytest.raises(ValueError, match="sweep=186"):
        datasets.path("b6", sweep=186)
    with pytest.raises(ValueError, match="sweep=181.*only as CSV"):
        datasets.path("b6", sweep=181, format="csv")
    with pytest.raises(ValueError, match="format='mat'"):
        datasets.path("b6", sweep=183, format="mat")
    with pytest.raises(ValueError, match="sweep=3.*one NWB file"):
        datasets.path("ca1", sweep=3)


def test_b6_loads_as_recordings():
    recs = datasets.load_b6()
    assert [r.name for r in recs] == [f"B6_IDRest_{s}" for s in range(181, 186)]
    one = datasets.load_b6(183)
    assert isinstance(one, ctsnn.Recording) and len(one) == 12000
    assert one.dt == pytest.approx(2.5e-4, rel=1e-9)
    np.testing.assert_array_equal(one.v, recs[2].v)
    # SI units: volts and amperes; the step of sweep 183 is about 225 pA and the cell fires
    assert -0.09 < float(np.median(one.v[:2000])) < -0.05
    step = one.current[(one.t > 0.8) & (one.t < 2.6)]
    assert float(np.median(step)) == pytest.approx(225e-12, rel=0.02)
    assert 50 < len(one.spikes()) < 90
    csv = datasets.load_b6(183, format="csv")
    np.testing.assert_allclose(csv.v, one.v, rtol=0, atol=1e-7)
    assert datasets.load("b6", [185, 181])[0].name == "B6_IDRest_185"


def test_ca1_loads_selected_sweeps():
    pytest.importorskip("pynwb")
    recs = datasets.load_ca1(sweeps=[6, 7])
    assert [r.meta["number"] for r in recs] == [6, 7]
    assert all(r.dt == pytest.approx(1e-4, rel=1e-9) for r in recs)
    assert len(datasets.load("ca1")) == 16


def test_every_bundled_file_is_package_data():
    """A non-editable install copies only what pyproject.toml lists: every data file must match."""
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r'"ctsnn\.datasets" = \[(.*?)\]', text, re.S)
    assert block, "pyproject.toml lists no package data for ctsnn.datasets"
    globs = re.findall(r'"([^"]+)"', block.group(1))
    files = [p.relative_to(datasets.ROOT).as_posix() for p in datasets.ROOT.rglob("*")
             if p.is_file() and p.suffix not in (".py", ".pyc")]
    assert len(files) >= 9
    missing = [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)]
    assert not missing, f"not declared as package data in pyproject.toml: {missing}"
