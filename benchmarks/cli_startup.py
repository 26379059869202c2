"""Start-up time of the command line: ``python -m ctsnn --help`` and ``simulate --help`` in fresh
processes (median of 5), and whether torch / numpy were imported (they must not be).

Run from the repository root: ``python benchmarks/cli_startup.py``.
"""
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
env = dict(os.environ, PYTHONPATH=str(ROOT))
env.pop("PYTHONDONTWRITEBYTECODE", None)   # as installed: compiled modules cached
for args in (["--help"], ["simulate", "--help"], ["fit", "--help"]):
    ts = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ctsnn", *args], env=env, check=True, capture_output=True)
        ts.append(time.perf_counter() - t0)
    print(f"ctsnn {' '.join(args):16s} median {statistics.median(ts):.3f} s (min {min(ts):.3f} s)")
ts = []
for _ in range(5):
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
    ts.append(time.perf_counter() - t0)
print(f"bare interpreter start       median {statistics.median(ts):.3f} s (the floor)")
code = "import sys, ctsnn.cli; ctsnn.cli.build_parser(); print('torch' in sys.modules, 'numpy' in sys.modules)"
out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True).stdout
print(f"torch, numpy imported by the parser: {out.strip()}")
