"""The CA1 passive fit of docs/fitting.md through the command line, timed: wall and CPU time of
the whole command (start-up, NWB reading, fit, standard errors, figure) and the fit's own count of
iterations and evaluations.

    python benchmarks/fit_ca1_cli.py PATH/TO/99111002.nwb OUTDIR
"""
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

nwb, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
cmd = [sys.executable, "-m", "ctsnn", "fit", str(nwb), "--sweeps", "6,7,8,9,10", "--window", "5ms..131.2ms",
       "--exclude", "31.2ms..32.7ms", "--params", "tau_mem,r_series", "--per-sweep", "v_leak,r",
       "-p", "tau_mem=20ms", "-p", "r=100Mohm", "-p", "v_leak=-10mV", "-p", "v_th=1V", "-p", "v_reset=0V",
       "-o", str(out / "ca1.json"), "--force", "--quiet"]
t0 = time.perf_counter()
subprocess.run(cmd, check=True)
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
d = json.loads((out / "ca1.json").read_text())
print(f"CA1 fit via the CLI: wall {wall:.1f} s, CPU {ru.ru_utime + ru.ru_stime:.1f} s; fit alone "
      f"{d['wall_time_s']:.1f} s wall, {d['n_iter']} iterations, {d['n_eval']} evaluations; "
      f"tau_mem = {d['values']['tau_mem'] * 1e3:.2f} ms")
