"""Start-up time of the command line: ``python -m ctsnn --help`` and ``simulate --help`` in fresh
processes (median of 5), and whether torch / numpy were imported (they must not be); then, in
fresh processes, ``import torch``, ``import ctsnn`` and the first and second ``simulate`` calls
(medians of 5), and whether the first call imported sympy (torch's symbolic shapes: it must not).

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

# the first simulate call of a fresh process (the import of ctsnn and torch counted apart): modules
# that torch imports lazily on a first use (sympy through torch.broadcast_shapes) land here
code = ("import time, sys; t0 = time.perf_counter(); import torch; t1 = time.perf_counter(); import ctsnn; "
        "lif = ctsnn.LIF(tau_mem=10e-3, v_th=1.0, reset='to_value'); t2 = time.perf_counter(); "
        "ctsnn.simulate(lif, current=1.2, t_end=0.2, dt=1e-3); t3 = time.perf_counter(); "
        "ctsnn.simulate(lif, current=1.2, t_end=0.2, dt=1e-3); t4 = time.perf_counter(); "
        "print(t1 - t0, t2 - t1, t3 - t2, t4 - t3, int('sympy' in sys.modules))")
rows = []
for _ in range(5):
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True).stdout
    rows.append([float(v) for v in out.split()])
torch_s, model_s, first, second, sym = (statistics.median(r[k] for r in rows) for k in range(5))
print(f"import torch                 median {torch_s:.3f} s")
print(f"import ctsnn, make a LIF     median {model_s:.3f} s")
print(f"first simulate call          median {first:.3f} s (second call {second * 1e3:.1f} ms; sympy imported: "
      f"{bool(sym)})")
