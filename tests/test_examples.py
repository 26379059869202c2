"""Every script in examples/ runs headless and writes the figures it promises."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
SLOW = {"raster"}          # ~15 s: a 100-neuron recurrent network with 16 000 input spikes
OWN_TEST = {"fit_b6"}      # minutes; run (and its numbers checked) by tests/test_fit.py


@pytest.mark.parametrize("script", [pytest.param(p, marks=pytest.mark.slow) if p.stem in SLOW else p
                                    for p in EXAMPLES if p.stem not in OWN_TEST],
                         ids=[p.stem for p in EXAMPLES if p.stem not in OWN_TEST])
def test_example_runs(script, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, str(script), str(tmp_path)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    pngs = list(tmp_path.glob("*.png"))
    assert pngs, f"{script.name} wrote no figure"
    for p in pngs:
        assert p.stat().st_size > 10_000, p
