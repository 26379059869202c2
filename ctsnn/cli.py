"""Command line: ``ctsnn simulate ...``, ``ctsnn plot ...``, ``ctsnn fit ...`` (and ``python -m ctsnn``).

Quantities take units ("10ms", "0.1ms", "2nA", "-70mV", "100Mohm"); a bare number is SI.
Each subcommand is a pair of functions, ``_add_NAME(subparsers)`` and ``_run_NAME(args)``,
listed in ``COMMANDS``. Reference: docs/cli.md.

Rules every subcommand keeps:

* nothing heavy is imported at module level (torch, numpy, matplotlib are imported inside the
  subcommands), so ``ctsnn --help`` answers at once;
* every output path is checked before any work starts: its directory must exist, an existing
  file is replaced only with ``--force``, and no output may be one of the command's inputs;
* every error is one line ``ctsnn COMMAND: error: ...`` on stderr with exit status 2 (set
  ``CTSNN_DEBUG=1`` to see the traceback instead); warnings are one line ``... warning: ...``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import warnings
from pathlib import Path

from .units import (format_quantity, parse_quantity, parse_step, parse_unit, plausibility_warning,
                    unit_dimension)

__all__ = ["main", "build_parser", "build_model", "MODELS"]

# model name -> (class name in ctsnn, default parameters in SI units for the CLI). Izhikevich keeps
# his own numbers (mV, a dimensionless current); every other model is in SI.
MODELS = {
    "lif": ("LIF", {"tau_mem": 10e-3, "r": 100e6, "v_leak": -70e-3, "v_th": -50e-3, "v_reset": -70e-3}),
    "if": ("IF", {"r": 1 / 200e-12, "v_th": -50e-3, "v_reset": -70e-3}),
    "cubalif": ("CubaLIF", {"tau_syn": 5e-3, "tau_mem": 10e-3, "r": 100e6, "v_leak": -70e-3,
                            "v_th": -50e-3, "v_reset": -70e-3}),
    "alif": ("ALIF", {"tau_mem": 10e-3, "tau_adapt": 100e-3, "adapt_jump": 2e-3, "r": 100e6,
                      "v_leak": -70e-3, "v_th": -50e-3, "v_reset": -70e-3}),
    "lit": ("LIT", {"tau_mem": 10e-3, "r": 100e6, "pos_th": 20e-3, "neg_th": 20e-3}),
    "duallit": ("DualLIT", {"tau_pos": 10e-3, "tau_neg": 10e-3, "r": 100e6, "pos_th": 20e-3,
                            "neg_th": 20e-3}),
    "mnlif": ("MNLIF", {"tau_mem": 10e-3, "r": 100e6, "v_leak": -70e-3, "theta_inf": -50e-3,
                        "v_reset": -70e-3, "a": 5.0, "b": 10.0, "theta_jump": 2e-3, "tau_w": 100e-3,
                        "w_jump": 1e-3}),
    # nonlinear models (no exact propagator: use --method euler or a torchdiffeq method)
    "adex": ("AdEx", {"C": 281e-12, "g_L": 30e-9, "E_L": -70.6e-3, "V_T": -50.4e-3, "Delta_T": 2e-3,
                      "tau_w": 144e-3, "a": 4e-9, "b": 80.5e-12, "v_reset": -70.6e-3, "v_peak": -40.4e-3}),
    "qif": ("QIF", {"tau_mem": 10e-3, "v_rest": -70e-3, "v_c": -50e-3, "r": 100e6, "v_reset": -70e-3,
                    "v_peak": 0.0}),
    "izhikevich": ("Izhikevich", {"a": 0.02, "b": 0.2, "c": -65.0, "d": 8.0, "v_peak": 30.0}),
}
# not here: Traced (tracetorch's trace-driven LIT: its traces drive the membrane with unit gain per
# unit time, a dimensionless convention that SI quantities from the shell do not fit)


def _model_class(name: str):
    import ctsnn

    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
    return getattr(ctsnn, MODELS[name][0])


def _show_default(value: float, spec) -> str:
    """A default as the help shows it: SI quantities in user units (10ms), others with the unit
    the model declares in brackets (a bare number on the command line)."""
    if spec.dimension is not None:
        return format_quantity(value, spec.dimension, 5).replace(" ", "")
    return f"{value:.5g}" + (f"[{spec.unit}]" if spec.unit else "")


def _model_defaults_text() -> str:
    """The models' defaults with their units, read from each model's parameter declaration
    (imports the models: called when the help of `ctsnn simulate` is shown)."""
    lines = []
    for name, (_cls, defaults) in MODELS.items():
        specs = _model_class(name).declared_params()
        shown = " ".join(f"{k}={_show_default(v, specs[k])}" for k, v in defaults.items())
        lines.append(f"  {name:10s} {shown}")
    own_current = [m for m in MODELS if _model_class(m).current_unit == ""]
    return ("\n".join(lines) + "\n  (a unit in [brackets] is the model's own: give a bare number in it; "
            f"the current of {', '.join(own_current)} is dimensionless, a bare number too)")


def _param_spec(cls, name: str, known) -> "object":
    """The declaration of parameter ``name`` of model class ``cls`` (or of the recording, for the
    fit's observation parameters such as ``r_series``)."""
    spec = cls.declared_params().get(name)
    if spec is None:
        from .fitting.core import OBSERVATION
        spec = OBSERVATION.get(name, (None, None))[1]
    if spec is None:
        raise ValueError(f"model {cls.__name__} has no parameter {name!r}; its parameters are {', '.join(known)}")
    return spec


def _parse_param(name: str, text, spec, what: str | None = None) -> float:
    """``text`` as the value of a parameter declared by ``spec``: with an SI unit a quantity
    ("10ms"; a bare number is SI), with a model's own unit or none a bare number."""
    what = what or name
    if spec.dimension is None and not isinstance(text, (int, float)) and \
            re.search(r"[A-DF-Za-df-zµΩ]", str(text)):
        unit = f"in {spec.unit} " if spec.unit else ""
        raise ValueError(f"{what}: {text!r}: give a bare number {unit}(this model's own unit{'' if spec.unit else 's: dimensionless'}), "
                         f"without a unit")
    _warn_implausible(name, text, spec.dimension)
    return parse_quantity(text, spec.dimension, name=what)


def _warn_implausible(name: str, text, dimension) -> None:
    msg = plausibility_warning(name, text, dimension)
    if msg:
        warnings.warn(msg, UserWarning, stacklevel=2)


def build_model(name: str, params: dict[str, str | float], *, reset: str | None = None, n: int | None = None):
    """The CLI's model: its defaults, overridden by ``params`` (strings with units allowed)."""
    cls = _model_class(name)
    defaults = MODELS[name][1]
    import inspect

    sig = inspect.signature(cls.__init__).parameters
    known = [k for k in sig if k not in ("self", "n", "dtype", "reset")]
    options = cls.declared_options()
    kw = dict(defaults)
    for k, v in params.items():
        if k not in known:
            raise ValueError(f"model {name!r} has no parameter {k!r}; its parameters are {', '.join(known)}")
        if k in options:                              # an option such as adaptation=current
            kw[k] = options[k].check(k, v)
            continue
        # a numeric keyword that is no declared parameter (AdEx's exp_cap) is a bare number
        from .models.base import Param
        spec = cls.declared_params().get(k) or Param()
        kw[k] = _parse_param(k, v, spec)
    if reset is not None:
        if "reset" not in options:
            takes = [m for m in MODELS if "reset" in _model_class(m).declared_options()]
            raise ValueError(f"--reset applies to {', '.join(takes)}, not {name!r}")
        kw["reset"] = reset
    try:
        if n is not None:
            kw["n"] = n
        return cls(**kw)
    except TypeError as exc:
        raise ValueError(f"model {name!r}: {exc}") from None


def _param_pairs(items: list[str], option: str = "--param") -> dict[str, str]:
    out = {}
    for it in items or []:
        if "=" not in it:
            raise ValueError(f"{option} expects NAME=VALUE (e.g. tau_mem=10ms), got {it!r}")
        k, _, v = it.partition("=")
        out[k.strip()] = v.strip()
    return out


# ---------------------------------------------------------------- paths: inputs and outputs
def _check_inputs(*pairs) -> None:
    for option, path in pairs:
        if path is None:
            continue
        p = Path(path)
        if not p.exists():
            raise ValueError(f"{option}: file {str(p)!r} does not exist")
        if p.is_dir():
            raise ValueError(f"{option}: {str(p)!r} is a directory, not a file")


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _check_outputs(outputs, inputs, force: bool) -> None:
    """Refuse, before any work, every output path that cannot or must not be written.

    ``outputs``: (option, path, allowed suffixes or None) for each file the command will write;
    ``inputs``: the files it reads.
    """
    seen: list[tuple[str, Path]] = []
    for option, path, suffixes in outputs:
        if path is None:
            continue
        p = Path(path)
        if suffixes is not None and p.suffix.lower() not in suffixes:
            raise ValueError(f"{option}: {str(p)!r} must end in {' or '.join(sorted(suffixes))}")
        parent = p.parent if str(p.parent) else Path(".")
        if not parent.exists():
            raise ValueError(f"{option}: directory {str(parent)!r} does not exist (create it first)")
        if not parent.is_dir():
            raise ValueError(f"{option}: {str(parent)!r} is not a directory")
        if p.is_dir():
            raise ValueError(f"{option}: {str(p)!r} is a directory; give a file name")
        for inp in inputs:
            if inp is not None and _same_file(p, Path(inp)):
                raise ValueError(f"{option}: {str(p)!r} is an input of this command ({str(inp)!r}); "
                                 f"choose another output name")
        for other_option, q in seen:
            if _same_file(p, q):
                raise ValueError(f"{option} and {other_option} name the same file {str(p)!r}")
        if p.exists():
            if not force:
                raise ValueError(f"{option}: {str(p)!r} exists; pass --force to overwrite it")
            if not os.access(p, os.W_OK):
                raise ValueError(f"{option}: {str(p)!r} is not writable")
        elif not os.access(parent, os.W_OK | os.X_OK):
            raise ValueError(f"{option}: directory {str(parent)!r} is not writable")
        seen.append((option, p))


def _image_suffixes() -> set[str]:
    from matplotlib.backend_bases import FigureCanvasBase

    return {"." + k for k in FigureCanvasBase.get_supported_filetypes()}


# ---------------------------------------------------------------- inputs: current, spikes
def _read_table(path: Path, option: str) -> dict:
    """Columns of a .npz (arrays by key) or .csv (header row, comma separated; a UTF-8 BOM and
    quoted names are fine) as float arrays."""
    import csv

    import numpy as np

    if path.suffix.lower() == ".npz":
        from .io import read_table
        return read_table(path, option)
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
        if len(rows) < 2:
            raise ValueError(f"{option}: {path.name} needs a header row and at least one data row")
        names = [h.strip() for h in rows[0]]
        try:
            data = np.array([[float(c) for c in r] for r in rows[1:]], dtype=np.float64)
        except ValueError as exc:
            raise ValueError(f"{option}: {path.name}: {exc} (every row after the header must be numbers)") from None
        if data.shape[1] != len(names):
            raise ValueError(f"{option}: {path.name} has {len(names)} column names but {data.shape[1]} values per row")
        return {k: data[:, j] for j, k in enumerate(names)}
    raise ValueError(f"{option}: unsupported file type {path.suffix!r} (use .npy, .npz or .csv)")


def _current(args, n_steps: int, dt: float, current_dim: str | None):
    """The injected current from --current steps and/or --current-file, as a [T, n] tensor or float."""
    import numpy as np
    import torch

    total = None
    if args.current_file:
        path = Path(args.current_file)
        factor = parse_unit(args.current_unit, current_dim, name="--current-unit")
        if path.suffix.lower() == ".npy":
            from .io import read_table
            arr = read_table(path, "--current-file")[""]
        else:
            table = _read_table(path, "--current-file")
            if args.current_key is not None:
                if args.current_key not in table:
                    raise ValueError(f"--current-key {args.current_key!r} is not in {path.name}; it has "
                                     f"{sorted(table)}")
                arr = table[args.current_key]
            elif path.suffix.lower() == ".npz":
                arr = table["i"] if "i" in table else table[list(table)[0]]
            else:
                arr = table[list(table)[-1]]
        if arr.dtype.kind not in "fiu" or arr.ndim not in (1, 2):
            raise ValueError(f"--current-file: expected a 1-D or 2-D array of numbers, got {arr.dtype} "
                             f"with shape {arr.shape}")
        arr = np.asarray(arr, dtype=np.float64) * factor
        if not np.isfinite(arr).all():
            raise ValueError("--current-file holds NaN or infinite values")
        if arr.shape[0] != n_steps:
            raise ValueError(f"--current-file has {arr.shape[0]} samples but the simulation has {n_steps} "
                             f"steps (t_end/dt); one sample per step is needed")
        total = torch.as_tensor(arr.reshape(n_steps, -1))
    if args.current:
        t = torch.arange(n_steps, dtype=torch.float64) * dt
        steps = torch.zeros(n_steps, 1, dtype=torch.float64)
        for spec in args.current:
            if current_dim is None and re.search(r"[A-Za-zµ]", spec.partition("@")[0].replace("e", "")):
                raise ValueError(f"--current {spec!r}: this model takes a dimensionless current; give a "
                                 f"bare number (e.g. 10@20ms..180ms)")
            if current_dim is not None:
                _warn_implausible("--current", spec.partition("@")[0], current_dim)
            amp, t0, t1 = parse_step(spec, name="--current", dimension=current_dim)
            steps[(t >= t0 - 1e-12) & (t < t1 - 1e-12), 0] += amp
        total = steps if total is None else total + steps
    return 0.0 if total is None else total


def _spikes(args, n: int, t_end: float, weight_dim: str | None = None):
    """Input spikes from --spikes-file: (times, neurons, weights) in SI, or None; ``weight_dim``:
    the dimension of the state the weights jump (the model's declared input state), which a unit
    given in --spikes-weight-unit must have."""
    import numpy as np
    import torch

    if not args.spikes_file:
        return None
    path = Path(args.spikes_file)
    table = _read_table(path, "--spikes-file")
    keys = {k.lower(): k for k in table}
    tkey = next((keys[k] for k in ("times", "time", "t") if k in keys), None)
    if tkey is None:
        raise ValueError(f"--spikes-file: {path.name} needs a column or array 'times' (has {sorted(table)})")
    times = np.asarray(table[tkey], dtype=np.float64).reshape(-1) * parse_unit(
        args.spikes_time_unit, "time", name="--spikes-time-unit")
    nkey = next((keys[k] for k in ("neurons", "neuron", "index") if k in keys), None)
    wkey = next((keys[k] for k in ("weights", "weight", "w") if k in keys), None)
    neurons = np.zeros(times.size) if nkey is None else np.asarray(table[nkey], dtype=np.float64).reshape(-1)
    if wkey is None:
        raise ValueError(f"--spikes-file: {path.name} needs a column or array 'weights' (the jump of the "
                         f"input state per spike, in --spikes-weight-unit)")
    weights = np.asarray(table[wkey], dtype=np.float64).reshape(-1) * parse_unit(
        args.spikes_weight_unit, weight_dim, name="--spikes-weight-unit")
    if not (times.size == neurons.size == weights.size):
        raise ValueError(f"--spikes-file: times, neurons and weights differ in length "
                         f"({times.size}, {neurons.size}, {weights.size})")
    for what, x in (("times", times), ("weights", weights), ("neurons", neurons)):
        if not np.isfinite(x).all():
            raise ValueError(f"--spikes-file: {what} hold NaN or infinite values")
    if times.size and (times.min() < 0 or times.max() > t_end):
        raise ValueError(f"--spikes-file: spike times must lie in [0, t_end = {t_end:g} s], got "
                         f"{times.min():g}..{times.max():g} s (set --spikes-time-unit if they are not in s)")
    if np.any(neurons != np.round(neurons)) or (neurons.size and (neurons.min() < 0 or neurons.max() >= n)):
        raise ValueError(f"--spikes-file: neuron indices must be integers in 0..{n - 1}")
    return (torch.as_tensor(times), torch.as_tensor(neurons.astype(np.int64)), torch.as_tensor(weights))


def _with_feedback(model, args):
    """Wrap ``model`` in ``ctsnn.Recurrent`` for --feedback / --feedback-file."""
    if args.feedback is None and args.feedback_file is None:
        if args.feedback_delay is not None:
            raise ValueError("--feedback-delay needs --feedback or --feedback-file")
        return model
    import numpy as np
    import torch

    import ctsnn

    if args.feedback is not None and args.feedback_file is not None:
        raise ValueError("give --feedback (each neuron onto itself) or --feedback-file (a matrix), not both")
    delay = 0.0 if args.feedback_delay is None else parse_quantity(args.feedback_delay, "time",
                                                                   name="--feedback-delay")
    if args.feedback is not None:
        weight = parse_quantity(args.feedback, None, name="--feedback")
    else:
        from .io import read_table
        W = read_table(args.feedback_file, "--feedback-file")[""] if args.feedback_file.endswith(".npy") \
            else None
        if W is None:
            raise ValueError("--feedback-file must be a .npy file holding an [n, n] matrix")
        if W.ndim != 2 or W.shape[0] != W.shape[1] or not np.isfinite(W).all():
            raise ValueError(f"--feedback-file: expected a finite square [n, n] matrix, got shape {W.shape}")
        weight = torch.as_tensor(W * parse_unit(args.feedback_unit, None, name="--feedback-unit"),
                                 dtype=torch.get_default_dtype())
    return ctsnn.Recurrent(model, weight, delay=delay)


# ---------------------------------------------------------------- simulate
class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Help with each default shown once: appended unless the help text states it already, and
    left out where there is none (None, empty, a flag)."""

    def _get_help_string(self, action):
        text = action.help or ""
        d = action.default
        if "default" in text or d is None or d is False or d == [] or d == "" or d is argparse.SUPPRESS:
            return text
        return f"{text} (default: {d})"


def _add_simulate(sub) -> None:
    p = sub.add_parser(
        "simulate", help="simulate a neuron and write its trace (.npz)", formatter_class=_Formatter,
        description="Simulate a neuron model with a chosen dt and method; write the trace (.npz) and "
                    "print a summary. Quantities accept units (10ms, -70mV, 2nA, 100Mohm); bare numbers are SI.",
        epilog=None)
    # the defaults come from the models' declarations: read (importing torch) only when shown
    p.lazy_epilog = lambda: ("models and their defaults (override with -p NAME=VALUE):\n" + _model_defaults_text()
                             + "\n\nexample:\n  ctsnn simulate --model lif -p tau_mem=20ms --current "
                               "0.3nA@20ms..180ms --t-end 200ms -o lif.npz --plot lif.png")
    p.add_argument("--model", default="lif", choices=list(MODELS), help="neuron model (defaults below)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="model parameter, repeatable: tau_mem=10ms, r=100Mohm, v_th=-50mV, t_ref=2ms, ...")
    p.add_argument("--reset", choices=["to_value", "subtract", "none"], default=None,
                   help="reset rule of lif, if, cubalif, alif (default: to_value)")
    p.add_argument("--current", action="append", default=[], metavar="AMP[@START..STOP]",
                   help="injected current: DC (2nA) or a step (1.5nA@20ms..120ms, -0.5nA@0..50ms); "
                        "repeatable, summed")
    p.add_argument("--current-file", default=None, metavar="FILE",
                   help="current samples, one per step (.npy, .npz, .csv), added to --current")
    p.add_argument("--current-key", default=None, help="array key (.npz, default 'i') or column name "
                                                       "(.csv, default the last column)")
    p.add_argument("--current-unit", default="A", help="unit of the values in --current-file (A, nA, pA, ...)")
    p.add_argument("--spikes-file", default=None, metavar="FILE",
                   help="input spikes (.npz arrays or .csv columns 'times', 'weights' and optionally "
                        "'neurons'): each jumps the model's input state (v, or i with a synapse) by its weight")
    p.add_argument("--spikes-time-unit", default="s", help="unit of the spike times in --spikes-file")
    p.add_argument("--spikes-weight-unit", default="1",
                   help="unit of the weights in --spikes-file (e.g. mV; default: SI, V or A)")
    p.add_argument("--feedback", default=None, metavar="WEIGHT",
                   help="recurrent self-feedback: each output spike jumps the neuron's own input state "
                        "by WEIGHT (e.g. -2mV); wraps the model in ctsnn.Recurrent")
    p.add_argument("--feedback-file", default=None, metavar="W.npy",
                   help="recurrent all-to-all feedback: an [n, n] matrix, W[i, j] from neuron j onto i")
    p.add_argument("--feedback-unit", default="1", help="unit of the values in --feedback-file (default: SI)")
    p.add_argument("--feedback-delay", default=None, help="delay of the feedback (default: 0)")
    p.add_argument("--n", type=int, default=None, help="number of neurons (identical copies)")
    p.add_argument("--dt", default="0.1ms", help="time step")
    p.add_argument("--t-end", default="200ms", help="duration")
    p.add_argument("--method", default="exact",
                   help="exact (linear models), euler, or a torchdiffeq method: dopri5, dopri8, bosh3, "
                        "fehlberg2, adaptive_heun; fixed grid: rk4, midpoint, heun2, heun3")
    p.add_argument("--rtol", default=None, type=float, help="relative tolerance (adaptive methods)")
    p.add_argument("--atol", default=None, type=float, help="absolute tolerance (adaptive methods)")
    p.add_argument("--step-size", default=None, help="step of the fixed-grid torchdiffeq methods (default: dt)")
    p.add_argument("--events", default=None, choices=("end", "in_step"),
                   help="--method euler only: events at step ends (default, as the discrete libraries) or "
                        "located on Euler's line inside the step")
    p.add_argument("--record", default="all", help="states to record, comma separated, or 'all'")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float64",
                   help="floating-point precision of the simulation (float64: reference accuracy)")
    p.add_argument("-o", "--output", default="trace.npz", help="where to write the trace (.npz)")
    p.add_argument("--plot", metavar="IMAGE", default=None,
                   help="also draw the membrane (or a raster for more than 4 neurons) to this image (.png, .pdf, .svg)")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    _add_simulate_nir(p)


def _run_simulate(args) -> int:
    if getattr(args, "nir", None):
        return _run_simulate_nir(args)
    dt = parse_quantity(args.dt, "time", name="--dt")
    t_end = parse_quantity(args.t_end, "time", name="--t-end")
    if dt <= 0:
        raise ValueError(f"--dt must be > 0, got {args.dt!r}")
    if t_end < 0:
        raise ValueError(f"--t-end must be >= 0, got {args.t_end!r}")
    if args.n is not None and args.n < 1:
        raise ValueError(f"--n must be >= 1, got {args.n}")
    inputs = [args.current_file, args.spikes_file, args.feedback_file]
    _check_inputs(("--current-file", args.current_file), ("--spikes-file", args.spikes_file),
                  ("--feedback-file", args.feedback_file))
    _check_outputs([("-o", args.output, {".npz"}),
                    ("--plot", args.plot, _image_suffixes() if args.plot else None)], inputs, args.force)

    import torch

    import ctsnn

    dtype = getattr(torch, args.dtype)
    with _default_dtype(dtype):
        model = build_model(args.model, _param_pairs(args.param), reset=args.reset, n=args.n)
        model = _with_feedback(model, args)
    from . import validate as _v
    n_steps = _v.n_steps(t_end, dt)
    _v.work_bound("ctsnn simulate", n_steps, model.n)   # before the current is tabulated
    current_dim = unit_dimension(model.current_unit)
    current = _current(args, n_steps, dt, current_dim)
    if isinstance(current, torch.Tensor) and current.shape[1] == 1 and model.n > 1:
        current = current.expand(-1, model.n)
    spikes = _spikes(args, model.n, t_end, model.declared_states()[model.input_state].dimension)
    if args.record == "all":
        record = tuple(model.state_names)
    else:
        record = tuple(s.strip() for s in args.record.split(",") if s.strip())
        unknown = [s for s in record if s not in model.state_names]
        if unknown:
            raise ValueError(f"--record: {args.model} has no state {unknown[0]!r}; its states are "
                             f"{', '.join(model.state_names)}")
    opts = {k: v for k, v in (("rtol", args.rtol), ("atol", args.atol)) if v is not None}
    if args.step_size is not None:
        opts["step_size"] = parse_quantity(args.step_size, "time", name="--step-size")
    if args.events is not None:
        if args.method != "euler":
            raise ValueError(f"--events applies to --method euler, not {args.method!r} (the other methods "
                             f"locate events inside steps)")
        opts["events"] = args.events
    trace = ctsnn.simulate(model, current, spikes, t_end=t_end, dt=dt, method=args.method, record=record,
                           dtype=dtype, progress=not args.quiet, **opts)
    path = trace.save(args.output)
    print(trace.summary())
    print(f"trace written to {path}")
    if args.plot:
        kind = "raster" if trace.n_neurons > 4 or "v" not in trace.states else "membrane"
        print(f"figure written to {_draw(trace, kind, args.plot, None)}")
    return 0


# ---------------------------------------------------------------- simulate --nir
def _add_simulate_nir(p) -> None:
    p.add_argument("--nir", default=None, metavar="GRAPH.nir",
                   help="simulate a NIR graph instead of --model: exact spike times of every population "
                        "(ctsnn.nir.read, then Graph.run); --spikes-file feeds the graph's input (neurons = "
                        "input channels, weights = impulse areas), -o gets the spikes (.npz)")
    p.add_argument("--nir-source", default=None, choices=("snntorch", "norse", "sinabs", "spikingjelly"),
                   help="the library whose exporter wrote the --nir file: its time constants are repaired "
                        "for the step --dt (docs/nir.md)")


def _run_simulate_nir(args) -> int:
    """``ctsnn simulate --nir GRAPH``: read the graph, run it exactly, write the spikes."""
    dt = parse_quantity(args.dt, "time", name="--dt")
    t_end = parse_quantity(args.t_end, "time", name="--t-end")
    if dt <= 0 or t_end < 0:
        raise ValueError(f"--dt must be > 0 and --t-end >= 0, got {args.dt!r}, {args.t_end!r}")
    if args.plot or args.current or args.current_file or args.feedback or args.feedback_file:
        raise ValueError("--nir: the graph holds its own currents and recurrence; --plot, --current, "
                         "--current-file, --feedback and --feedback-file do not apply")
    _check_inputs(("--nir", args.nir), ("--spikes-file", args.spikes_file))
    _check_outputs([("-o", args.output, {".npz"})], [args.nir, args.spikes_file], args.force)
    import numpy as np

    from . import nir as _nir

    graph = _nir.read(args.nir, source=args.nir_source, dt=dt)
    n_in = sum(graph.inputs.values())
    inputs = None
    if args.spikes_file:
        if len(graph.inputs) != 1:
            raise ValueError(f"--spikes-file: the graph has {len(graph.inputs)} inputs; the command line feeds "
                             f"graphs with one")
        inputs = tuple(a.numpy() for a in _spikes(args, n_in, t_end))
    spikes = graph.run(inputs, t_end=t_end, dt=dt)
    names = list(spikes)
    out = {"populations": np.array(names), "dt": dt, "t_end": t_end}
    for i, k in enumerate(names):
        out[f"times_{i}"], out[f"neurons_{i}"] = spikes[k]
    np.savez(args.output, **out)
    for i, k in enumerate(names):
        n = graph.populations[k].n
        print(f"population {k!r} ({type(graph.populations[k].model).__name__}, {n} neurons): "
              f"{len(spikes[k][0])} spikes, {len(spikes[k][0]) / max(t_end, 1e-300) / n:.4g} Hz per neuron")
    print(f"spikes written to {args.output} (times_i, neurons_i for populations[i])")
    return 0


# ---------------------------------------------------------------- plot
def _add_plot(sub) -> None:
    p = sub.add_parser("plot", help="draw a saved trace (membrane, raster or all states)", formatter_class=_Formatter,
                       description="Draw a trace written by `ctsnn simulate` to an image file. The "
                                   "membrane plot reaches the pre-reset value at every exact spike "
                                   "time and shows the threshold and reset levels.")
    p.add_argument("trace", help="trace file (.npz) written by `ctsnn simulate`")
    p.add_argument("-o", "--output", default=None, help="image file (.png, .pdf, .svg); default: "
                                                         "the trace's name with .png")
    p.add_argument("--kind", choices=("membrane", "raster", "states"), default="membrane", help="what to draw")
    p.add_argument("--neurons", default="0", help="flat neuron indices for the membrane, e.g. 0,3")
    p.add_argument("--force", action="store_true", help="overwrite an existing image")


def _run_plot(args) -> int:
    path = Path(args.trace)
    _check_inputs(("trace", args.trace))
    out = args.output or str(path.with_suffix(".png"))
    _check_outputs([("-o", out, _image_suffixes())], [args.trace], args.force)
    try:
        neurons = [int(x) for x in args.neurons.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--neurons must be comma-separated integers, got {args.neurons!r}") from None
    import zipfile

    import numpy as np

    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ValueError("not an npz archive")
        with z:
            keys = set(z.files)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        raise ValueError(f"{str(path)!r} is not an .npz file written by `ctsnn simulate`") from None
    if "spike_times" not in keys:
        if {"t", "v"} <= keys:
            raise ValueError(f"{str(path)!r} is a recording (arrays {', '.join(sorted(keys))}), not a trace "
                             f"written by `ctsnn simulate`; fit it with `ctsnn fit` (its --plot draws it)")
        raise ValueError(f"{str(path)!r} is not a trace written by `ctsnn simulate` (arrays {sorted(keys)})")
    import ctsnn

    trace = ctsnn.Trace.load(path)
    bad = [k for k in neurons if not 0 <= k < trace.n_neurons]
    if bad:
        raise ValueError(f"--neurons: the trace has {trace.n_neurons} neuron(s) "
                         f"(0..{trace.n_neurons - 1}), got {bad[0]}")
    print(f"figure written to {_draw(trace, args.kind, out, neurons)}")
    return 0


def _draw(trace, kind: str, out: str, neurons) -> str:
    from . import plot

    if kind == "membrane":
        ax = plot.membrane(trace, neurons if neurons else 0)
    elif kind == "raster":
        ax = plot.raster(trace, rate=True)
    else:
        ax = plot.states(trace)
    fig = getattr(ax, "figure", None) or ax[0].figure
    fig.savefig(out, dpi=120)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return str(out)


# ---------------------------------------------------------------- fit
def _add_fit(sub) -> None:
    p = sub.add_parser(
        "fit", help="fit model parameters to recorded sweeps (NPZ, CSV, NWB)", formatter_class=_Formatter,
        description="Fit the named parameters of a model to current-clamp recordings by gradients "
                    "through the simulator; print them (ms, mV, MOhm, pA) with standard errors and write a "
                    "JSON result (SI units). Quantities accept units (0.7s, 10ms, -70mV, 100Mohm).",
        epilog="examples:\n"
               "  passive membrane:   ctsnn fit cell.npz --params tau_mem,r,v_leak -p v_th=0V -o fit.json\n"
               "  spike threshold:    ctsnn fit cell.npz --loss spikes --params v_th --spike-metric matched \\\n"
               "                        --mse-weight 0 --bounds v_th=-65mV..-20mV -o fit.json\n"
               "  many cells:         ctsnn fit recordings/ --out-dir fits/ --workers 2 -p v_th=0V\n"
               "see docs/fitting.md and docs/cli.md")
    p.add_argument("data", nargs="+", help="recording files: .npz (arrays t, v, i with units in meta), "
                                           ".csv (columns like t_s,v_V,i_A) or .nwb (current-clamp sweeps); "
                                           "dataset:NAME[:SWEEP] for a recording bundled with ctsnn (dataset:ca1, dataset:b6:183)")
    p.add_argument("--model", default="lif", choices=list(MODELS), help="neuron model")
    p.add_argument("--params", default="tau_mem,r,v_leak",
                   help="parameters to fit, comma separated (r_series: the electrode's series resistance)")
    p.add_argument("--per-sweep", default="", help="parameters fitted separately for each sweep, e.g. v_leak")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="starting / fixed model parameter, repeatable (tau_mem=20ms, v_th=-45mV, ...)")
    p.add_argument("--bounds", action="append", default=[], metavar="NAME=LO..HI",
                   help="keep a fitted parameter inside (LO, HI), e.g. v_th=-65mV..-20mV; repeatable")
    p.add_argument("--units", action="append", default=[], metavar="ARRAY=UNIT",
                   help="unit of an array of .npz / .csv recordings that do not state it: t=s, v=mV, i=pA; "
                        "repeatable")
    p.add_argument("--sweeps", default=None, help="NWB sweep numbers or names, comma separated (default: all)")
    p.add_argument("--window", default=None, metavar="T0..T1",
                   help="time window of every sweep (from its first sample), e.g. 0.7s..2.7s")
    p.add_argument("--exclude", action="append", default=[], metavar="T0..T1",
                   help="leave these times (from each sweep's first sample) out of the loss, e.g. an "
                        "electrode artefact; repeatable")
    p.add_argument("--loss", choices=("mse", "spikes"), default="mse",
                   help="mse: the membrane, for subthreshold data; spikes: spike times (--spike-metric) plus "
                        "--mse-weight times the membrane outside spike windows, for spiking data")
    p.add_argument("--spike-metric", choices=("van_rossum", "matched"), default="van_rossum",
                   help="spike-train distance of --loss spikes: van_rossum (kernel --vr-tau) or matched "
                        "(k-th spike against k-th; continuous as spikes enter the window: use it when the "
                        "start fires at a rate far from the data's)")
    p.add_argument("--spike-weight", default=1.0, type=float, help="weight of the spike distance")
    p.add_argument("--mse-weight", default=1.0, type=float,
                   help="weight of the membrane MSE in --loss spikes (0: spike times only)")
    p.add_argument("--vr-tau", default="10ms", help="time scale of the spike distance")
    p.add_argument("--spike-threshold", default="-20mV", help="recorded spikes are upward crossings of this")
    p.add_argument("--spike-window", default="1ms,4ms", metavar="BEFORE,AFTER",
                   help="membrane samples this long before and after each recorded spike are left out of "
                        "--loss spikes")
    p.add_argument("--optimizer", choices=("lbfgs", "adam", "least_squares"), default="lbfgs",
                   help="lbfgs (strong-Wolfe line search), adam (--lr, fixed steps) or least_squares "
                        "(scipy trust region on the membrane residuals; --loss mse only)")
    p.add_argument("--max-iter", type=int, default=100,
                   help="iterations (lbfgs; up to 3x as many evaluations), steps (adam), or evaluations "
                        "per parameter (least_squares)")
    p.add_argument("--lr", default=0.05, type=float, help="adam's step in the unconstrained coordinates")
    p.add_argument("--tol", default=1e-12, type=float, help="tolerance on the gradient (and 1e-3 tol on the "
                                                             "loss change) that stops lbfgs / least_squares")
    p.add_argument("--method", default="exact", help="simulation method (exact, euler, or a torchdiffeq method "
                                                     "for the nonlinear models)")
    p.add_argument("-o", "--output", default=None,
                   help="where to write the result (JSON, SI units) (default: fit.json; with several cells "
                        "use --out-dir)")
    p.add_argument("--plot", metavar="IMAGE", default=None, help="also draw data, fitted model and residuals")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    _add_fit_recipe(p)
    g = p.add_argument_group(
        "many cells", "A DATA that is a directory or a glob ('data/*.npz'), or any option of this group,\n"
                      "fits each cell on its own: sweeps are grouped by cell (--group-by; NWB sweeps by\n"
                      "their electrode's cell_id where the file states it); one JSON per cell and\n"
                      "summary.csv are written to --out-dir.")
    g.add_argument("--out-dir", metavar="DIR", default=None,
                   help="existing directory for CELL.json (one per cell) and summary.csv")
    g.add_argument("--group-by", metavar="REGEX", default=None,
                   help="regular expression searched in each file name (without its suffix); its group 'cell' "
                        "(or its first group, or the whole match) names the cell "
                        f"(default: {CELL_REGEX!r}: the name up to its first '_', so B6_IDRest_183.npz is cell B6)")
    g.add_argument("--workers", type=int, default=None, metavar="N",
                   help="fit on a local Dask cluster of N single-threaded worker processes (needs the 'dask' extra)")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="fit on an existing Dask cluster, e.g. tcp://10.0.0.5:8786 (used unchanged)")


def _interval(text: str, name: str) -> tuple[float, float]:
    a, sep, b = str(text).partition("..")
    if not sep:
        raise ValueError(f"{name} must look like T0..T1 (e.g. 0.7s..2.7s), got {text!r}")
    return parse_quantity(a, "time", name=name), parse_quantity(b, "time", name=name)


def _load_recordings(paths, sweeps, units=None):
    from . import io

    recs = []
    for path in paths:
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix == ".nwb":
            sel = None if sweeps is None else [int(x) if x.strip().isdigit() else x.strip()
                                               for x in sweeps.split(",") if x.strip()]
            recs += io.load_nwb(p, sweeps=sel)
        elif sweeps is not None:
            raise ValueError(f"--sweeps selects sweeps of NWB files; {p.name} holds one sweep")
        elif suffix == ".npz":
            recs.append(io.load_npz(p, units=units or None))
        elif suffix == ".csv":
            recs.append(io.load_csv(p, units=units or None))
        else:
            raise ValueError(f"{p.name}: unknown data format {suffix!r} (use .npz, .csv or .nwb)")
    return recs


def _bounds(items, model_name: str) -> dict[str, tuple[float, float]]:
    out = {}
    cls = _model_class(model_name)
    for k, v in _param_pairs(items, "--bounds").items():
        lo, sep, hi = v.partition("..")
        if not sep:
            raise ValueError(f"--bounds expects NAME=LO..HI (e.g. v_th=-65mV..-20mV), got {k}={v!r}")
        spec = _param_spec(cls, k, list(cls.declared_params()))
        out[k] = (_parse_param(k, lo, spec, f"--bounds {k}"), _parse_param(k, hi, spec, f"--bounds {k}"))
    return out


def _dataset_path(arg: str) -> str:
    """``dataset:NAME`` or ``dataset:NAME:SWEEP`` names a recording bundled with ctsnn
    (``ctsnn.datasets.path(NAME, sweep=SWEEP)``)."""
    if not arg.startswith("dataset:"):
        return arg
    try:
        from . import datasets
    except ImportError:
        raise ValueError(f"{arg!r}: this installation of ctsnn has no bundled datasets") from None
    name, _, sweep = arg[len("dataset:"):].partition(":")
    if sweep and not sweep.isdigit():
        raise ValueError(f"{arg!r}: the sweep after the data set's name is a number (dataset:b6:183)")
    return str(datasets.path(name, sweep=int(sweep) if sweep else None))


# the default --group-by: the file name up to its first "_" (B6_IDRest_183.npz -> cell "B6"), or the
# whole name where it has none (99111002.nwb -> cell "99111002")
CELL_REGEX = r"^(?P<cell>[^_]+)"
_RECORDING_SUFFIXES = (".npz", ".csv", ".nwb")
_GLOB = re.compile(r"[*?\[]")


def _many_cells(args) -> bool:
    """Whether this ``ctsnn fit`` fits cells one by one: a DATA that is a directory or a glob, or an
    option of the "many cells" group."""
    return (any(Path(f).is_dir() or (_GLOB.search(f) and not Path(f).exists()) for f in args.data)
            or any(x is not None for x in (args.out_dir, args.group_by, args.workers, args.scheduler)))


def _expand_data(items) -> tuple[list[Path], list[Path]]:
    """(recording files, directories given) from DATA: files as they are, a directory's .npz,
    .csv and .nwb files (not recursive), a glob's matches; sorted, each file once."""
    import glob

    files, dirs = [], []
    for item in items:
        p = Path(item)
        if p.is_dir():
            dirs.append(p)
            found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in _RECORDING_SUFFIXES)
            if not found:
                raise ValueError(f"data: directory {item!r} holds no .npz, .csv or .nwb recording")
            files += found
        elif p.exists():
            files.append(p)
        elif _GLOB.search(item):
            found = sorted(Path(q) for q in glob.glob(item) if Path(q).is_file())
            if not found:
                raise ValueError(f"data: the pattern {item!r} matches no file")
            files += found
        else:
            raise ValueError(f"data: file {item!r} does not exist")
    out, seen = [], set()
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            out.append(f)
    stems: dict[tuple, Path] = {}
    for f in out:
        other = stems.setdefault((f.parent.resolve(), f.stem), f)
        if other != f:
            raise ValueError(f"data: {str(other)!r} and {str(f)!r} look like the same sweep in two formats; "
                             f"select one, e.g. with a glob such as '{f.parent}/*{other.suffix}'")
    return out, dirs


def _cell_of(path: Path, regex: re.Pattern) -> str:
    m = regex.search(path.stem)
    if m is None:
        raise ValueError(f"--group-by {regex.pattern!r} does not match the file name {path.stem!r} "
                         f"({path.name}); give a pattern every file name matches")
    if "cell" in regex.groupindex:
        name = m.group("cell")
    else:
        name = m.group(1) if regex.groups else m.group(0)
    if not name:
        raise ValueError(f"--group-by {regex.pattern!r} gives an empty cell name for {path.name}")
    return name


def _group_cells(files, regex: re.Pattern) -> dict[str, list]:
    """cell -> [(file, None) for .npz / .csv, (file, [sweep names]) for .nwb]: NWB sweeps by their
    electrode's cell_id where the file states it, everything else by ``regex`` on the file name."""
    from . import io

    cells: dict[str, list] = {}
    for f in files:
        if f.suffix.lower() == ".nwb":
            by_cell: dict[str, list] = {}
            for s in io.nwb_cells(f):
                by_cell.setdefault(s["cell_id"] or _cell_of(f, regex), []).append(s["name"])
            for cell, sweeps in by_cell.items():
                cells.setdefault(cell, []).append((f, sweeps))
        elif f.suffix.lower() in (".npz", ".csv"):
            cells.setdefault(_cell_of(f, regex), []).append((f, None))
        else:
            raise ValueError(f"data: {f.name}: unknown data format {f.suffix!r} (use .npz, .csv or .nwb)")
    return cells


def _file_name(cell: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", cell).strip(".") or "cell"


def _run_fit_many(args) -> int:
    """``ctsnn fit`` over many cells: group the sweeps, fit each cell (in sequence or on Dask),
    write CELL.json per cell and summary.csv into --out-dir."""
    if args.output is not None:
        raise ValueError("-o names one result; with several cells (a directory or glob DATA, or a "
                         "'many cells' option) give --out-dir DIR for CELL.json and summary.csv")
    if args.plot is not None:
        raise ValueError("--plot draws one fit; fit a single cell's files to draw it")
    if args.out_dir is None:
        raise ValueError("fitting cells one by one writes one JSON per cell and summary.csv: give --out-dir DIR "
                         "(an existing directory)")
    if args.workers is not None and args.scheduler is not None:
        raise ValueError("give --workers N (a local cluster) or --scheduler ADDRESS (an existing one), not both")
    from .validate import positive_int
    if args.workers is not None:
        positive_int("--workers", args.workers)
    positive_int("--max-iter", args.max_iter)
    try:
        regex = re.compile(args.group_by if args.group_by is not None else CELL_REGEX)
    except re.error as exc:
        raise ValueError(f"--group-by {args.group_by!r} is not a regular expression: {exc}") from None
    files, dirs = _expand_data(args.data)
    out_dir = Path(args.out_dir)
    if not out_dir.is_dir():
        raise ValueError(f"--out-dir: {args.out_dir!r} is not an existing directory (create it first)")
    for d in dirs:
        if _same_file(out_dir, d):
            raise ValueError(f"--out-dir: {args.out_dir!r} is a data directory of this command; the results "
                             f"(and summary.csv, a CSV) would mix with the recordings: choose another directory")
    if args.workers is not None or args.scheduler is not None:
        from .fitting.many import _distributed

        _distributed()   # the 'dask' extra, before any work
    from . import io

    cells = _group_cells(files, regex)
    names = {cell: _file_name(cell) for cell in cells}
    clash = [c for c in cells if list(names.values()).count(names[c]) > 1]
    if clash:
        raise ValueError(f"cells {clash} would share an output file name; give --group-by a pattern that "
                         f"names them apart")
    outputs = [(f"--out-dir ({cell})", out_dir / f"{names[cell]}.json", None) for cell in cells]
    outputs.append(("--out-dir (summary)", out_dir / "summary.csv", None))
    _check_outputs(outputs, files, args.force)

    params = tuple(x.strip() for x in args.params.split(",") if x.strip())
    per_sweep = tuple(x.strip() for x in args.per_sweep.split(",") if x.strip())
    bounds = _bounds(args.bounds, args.model)
    before, sep, after = args.spike_window.partition(",")
    if not sep:
        raise ValueError(f"--spike-window expects BEFORE,AFTER (e.g. 1ms,4ms), got {args.spike_window!r}")
    window = (parse_quantity(before, "time", name="--spike-window"),
              parse_quantity(after, "time", name="--spike-window"))
    vr_tau = parse_quantity(args.vr_tau, "time", name="--vr-tau")
    spike_threshold = parse_quantity(args.spike_threshold, "voltage", name="--spike-threshold")
    init = _param_pairs(args.param)
    model_kw = {k: v for k, v in init.items() if k != "r_series"}
    model = build_model(args.model, model_kw)
    start = None
    if "r_series" in init:
        start = {"r_series": parse_quantity(init["r_series"], "resistance", name="r_series")}
    if args.optimizer == "least_squares" and args.loss != "mse":
        raise ValueError("--optimizer least_squares fits the membrane residuals: use it with --loss mse")
    excludes = [_interval(ex, "--exclude") for ex in args.exclude]
    win = _interval(args.window, "--window") if args.window else None
    units = _param_pairs(args.units, "--units")
    sel = None if args.sweeps is None else [x.strip() for x in args.sweeps.split(",") if x.strip()]

    # read each cell here; a cell whose files cannot be read or cut is reported, the others go on
    data, load_errors = {}, {}
    for cell, parts in cells.items():
        try:
            recs = []
            for f, sweeps in parts:
                if sweeps is not None:
                    want = sweeps if sel is None else [s for s in sweeps if s in sel or str(io._sweep_number(s)) in sel]
                    recs += io.load_nwb(f, sweeps=want) if want else []
                else:
                    recs += _load_recordings([f], None, units)
            if not recs:
                raise ValueError(f"no sweep selected (--sweeps {args.sweeps})")
            for t0, t1 in excludes:
                recs = [r.exclude(r.t[0] + t0, r.t[0] + t1) for r in recs]
            if win is not None:
                recs = [r.window(r.t[0] + win[0], r.t[0] + win[1]) for r in recs]
            data[cell] = recs
        except (ValueError, OSError) as exc:
            load_errors[cell] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    if not args.quiet:
        where = (f"a local Dask cluster of {args.workers} worker(s)" if args.workers else
                 f"the Dask cluster at {args.scheduler}" if args.scheduler else "this process, one after another")
        print(f"fitting {', '.join(params + per_sweep)} of {args.model} to {len(cells)} cell(s) "
              f"({len(files)} file(s)) on {where}", file=sys.stderr)
    from .fitting.many import ManyFitResult, fit_many

    kw = dict(per_sweep=per_sweep, init=start, bounds=bounds, loss=args.loss, optimizer=args.optimizer,
              max_iter=args.max_iter, lr=args.lr, tol=args.tol, spike_threshold=spike_threshold,
              spike_window=window, spike_weight=args.spike_weight, vr_tau=vr_tau,
              spike_metric=args.spike_metric, mse_weight=args.mse_weight, method=args.method)
    if data:
        client = None
        if args.scheduler is not None:
            from .fitting.many import _distributed

            try:
                client = _distributed().Client(args.scheduler, timeout="30s")
            except OSError as exc:
                raise ValueError(f"--scheduler: cannot connect to {args.scheduler!r}: {exc}") from None
        try:
            if getattr(args, "recipe", None) is not None:
                res = fit_many(data, recipe=_recipe(args), client=client, workers=args.workers,
                               progress=not args.quiet)
            else:
                res = fit_many(data, model, params=params, client=client, workers=args.workers,
                               progress=not args.quiet, **kw)
        finally:
            if client is not None:
                client.close()
    else:
        res = ManyFitResult(cells=[])
    res.cells = list(cells)
    res.errors.update(load_errors)
    for cell in load_errors:
        res.n_sweeps.setdefault(cell, 0)
    for cell in cells:
        path = out_dir / f"{names[cell]}.json"
        if cell in res.results:
            d = res.results[cell].to_dict()
            if cell in res.spike_counts:
                d["spike_counts"]["model_total"], d["spike_counts"]["recorded_total"] = res.spike_counts[cell]
        else:
            d = {"success": False, "error": res.errors[cell]}
        d = {"cell": cell, "files": sorted({str(f) for f, _ in cells[cell]}), **d}
        with open(path, "w") as fh:
            fh.write(json.dumps(d, indent=2) + "\n")
    res.to_csv(out_dir / "summary.csv")
    print(res.summary())
    print(f"results written to {out_dir}/ ({len(cells)} JSON file(s) and summary.csv)")
    return 0 if res.ok else 1


def _add_fit_recipe(p) -> None:
    p.add_argument("--recipe", choices=("step",), default=None,
                   help="fit with a recipe instead of --model/--params: 'step' (step protocols: passive "
                        "membrane, then LIF and both ALIFs on spike counts, first-spike latency and ISIs of "
                        "the whole step, the model chosen on a held-out sweep; see docs/fitting.md)")
    p.add_argument("--models", default=None, metavar="LIST",
                   help="with --recipe step: the candidate models, comma separated, from lif, alif_threshold, "
                        "alif_current, mnlif, adex (default: lif,alif_threshold,alif_current; adex is fitted by "
                        "gradients through Euler and costs minutes per cell)")


def _recipe(args):
    """The recipe named by --recipe, with --models as its candidates when given."""
    from dataclasses import replace

    from .fitting.protocol import RECIPES

    recipe = RECIPES[args.recipe]
    if args.models is not None:
        recipe = replace(recipe, models=tuple(m.strip() for m in args.models.split(",") if m.strip()))
    return recipe


# options a recipe sets itself: (attribute, option, default)
_RECIPE_SETS = (("params", "--params", "tau_mem,r,v_leak"), ("per_sweep", "--per-sweep", ""), ("param", "-p", []),
                ("bounds", "--bounds", []), ("loss", "--loss", "mse"), ("window", "--window", None),
                ("plot", "--plot", None))


def _check_recipe_args(args) -> None:
    given = [opt for attr, opt, default in _RECIPE_SETS if getattr(args, attr, default) != default]
    if given:
        raise ValueError(f"--recipe {args.recipe} chooses the models, parameters and losses itself and uses "
                         f"whole sweeps; {', '.join(given)} cannot be given with it")


def _run_fit_recipe(args) -> int:
    """``ctsnn fit DATA --recipe step``: one cell's sweeps with ``fit_protocol``; JSON to -o."""
    from .fitting.protocol import fit_protocol

    args.output = args.output or "fit.json"
    for f in args.data:
        _check_inputs(("data", f))
    _check_outputs([("-o", args.output, None)], args.data, args.force)
    recs = _load_recordings(args.data, args.sweeps, _param_pairs(args.units, "--units"))
    for ex in args.exclude:
        t0, t1 = _interval(ex, "--exclude")
        recs = [r.exclude(r.t[0] + t0, r.t[0] + t1) for r in recs]
    if not args.quiet:
        print(f"fitting recipe {args.recipe!r} to {len(recs)} sweep(s): " + ", ".join(r.name for r in recs),
              file=sys.stderr)
    res = fit_protocol(recs, _recipe(args), progress=not args.quiet)
    print(res.summary())
    print("  per sweep (recorded/model spikes, latency error, Gamma 4 ms, subthreshold EV):")
    for row in res.train:
        lat = row["latency_error"]
        print(f"    {row['sweep']}: {row['n_data']}/{row['n_model']}, "
              f"{'n/a' if lat != lat else f'{lat * 1e3:+.2f} ms'}, {row['gamma']:.2f}, {row['ev']:.2f}")
    res.to_json(args.output)
    print(f"result written to {args.output}")
    return 0 if res.success else 1


def _run_fit(args) -> int:
    args.data = [_dataset_path(f) for f in args.data]
    if getattr(args, "models", None) is not None and getattr(args, "recipe", None) is None:
        raise ValueError("--models chooses the candidates of a recipe: give it with --recipe step")
    if getattr(args, "recipe", None) is not None:
        _check_recipe_args(args)
        _recipe(args)          # an unknown model is refused before any data is read
        if not _many_cells(args):
            return _run_fit_recipe(args)
    if _many_cells(args):
        return _run_fit_many(args)
    args.output = args.output or "fit.json"
    for f in args.data:
        _check_inputs(("data", f))
    _check_outputs([("-o", args.output, None),
                    ("--plot", args.plot, _image_suffixes() if args.plot else None)], args.data, args.force)
    from .validate import positive_int
    positive_int("--max-iter", args.max_iter)
    params = tuple(x.strip() for x in args.params.split(",") if x.strip())
    per_sweep = tuple(x.strip() for x in args.per_sweep.split(",") if x.strip())
    bounds = _bounds(args.bounds, args.model)
    before, sep, after = args.spike_window.partition(",")
    if not sep:
        raise ValueError(f"--spike-window expects BEFORE,AFTER (e.g. 1ms,4ms), got {args.spike_window!r}")
    window = (parse_quantity(before, "time", name="--spike-window"),
              parse_quantity(after, "time", name="--spike-window"))
    vr_tau = parse_quantity(args.vr_tau, "time", name="--vr-tau")
    spike_threshold = parse_quantity(args.spike_threshold, "voltage", name="--spike-threshold")
    init = _param_pairs(args.param)
    model_kw = {k: v for k, v in init.items() if k != "r_series"}

    import ctsnn

    units = _param_pairs(args.units, "--units")
    recs = _load_recordings(args.data, args.sweeps, units)
    # --exclude and --window are times from each sweep's first sample
    for ex in args.exclude:
        t0, t1 = _interval(ex, "--exclude")
        recs = [r.exclude(r.t[0] + t0, r.t[0] + t1) for r in recs]
    if args.window:
        t0, t1 = _interval(args.window, "--window")
        recs = [r.window(r.t[0] + t0, r.t[0] + t1) for r in recs]
    model = build_model(args.model, model_kw)
    start = None
    if "r_series" in init:
        start = {"r_series": parse_quantity(init["r_series"], "resistance", name="r_series")}
    if args.optimizer == "least_squares" and args.loss != "mse":
        raise ValueError("--optimizer least_squares fits the membrane residuals: use it with --loss mse")
    n_samples = sum(len(r) for r in recs)
    if not args.quiet:
        print(f"fitting {', '.join(params + per_sweep)} of {args.model} to {len(recs)} sweep(s) "
              f"({n_samples} samples): " + ", ".join(r.name for r in recs), file=sys.stderr)
    res = ctsnn.fit(model, recs, params=params, per_sweep=per_sweep, init=start, bounds=bounds, loss=args.loss,
                    optimizer=args.optimizer, max_iter=args.max_iter, lr=args.lr, tol=args.tol,
                    spike_threshold=spike_threshold, spike_window=window, spike_weight=args.spike_weight,
                    vr_tau=vr_tau, spike_metric=args.spike_metric, mse_weight=args.mse_weight,
                    method=args.method, progress=not args.quiet)
    print(res.summary())
    if args.loss == "spikes":
        counts = ", ".join(f"{r.name} {int(r.spikes(spike_threshold).size)}/{int(tr.n_spikes)}"
                           for r, tr in zip(recs, res.traces))
        print(f"  spikes (recorded/model): {counts}")
    text = res.to_json()
    with open(args.output, "w") as fh:
        fh.write(text + "\n")
    print(f"result written to {args.output}")
    if args.plot:
        from . import plot

        fig = plot.fit(res)[0]
        fig = getattr(fig, "figure", None) or fig
        fig.savefig(args.plot, dpi=120)
        print(f"figure written to {args.plot}")
    return 0 if res.success else 1


class _default_dtype:
    def __init__(self, dtype):
        self.dtype = dtype

    def __enter__(self):
        import torch
        self.old = torch.get_default_dtype()
        torch.set_default_dtype(self.dtype)

    def __exit__(self, *exc):
        import torch
        torch.set_default_dtype(self.old)


COMMANDS = {"simulate": (_add_simulate, _run_simulate), "plot": (_add_plot, _run_plot),
            "fit": (_add_fit, _run_fit)}


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors as one line too (and a pointer to --help)."""

    lazy_epilog = None

    def format_help(self):
        if self.lazy_epilog is not None:
            self.epilog, self.lazy_epilog = self.lazy_epilog(), None
        return super().format_help()

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(
        prog="ctsnn", formatter_class=_Formatter,
        description="Continuous-time spiking neuron simulator. The Python API takes SI units (s, V, A, "
                    "ohm); the command line accepts units (10ms, 0.1ms, 2nA, -70mV, 100Mohm), and a bare "
                    "number is SI.",
        epilog="`ctsnn COMMAND --help` lists each command's options; reference: docs/cli.md.\n"
               "Errors: one line on stderr, exit status 2 (CTSNN_DEBUG=1 shows the traceback).")
    parser.add_argument("--version", action="version", version=f"ctsnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add, _run in COMMANDS.values():
        add(sub)
    return parser


_NEGATIVE = re.compile(r"^-(\d|\.\d)")


def _attach_negative_values(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """``--current -0.5nA@0..50ms`` as ``--current=-0.5nA@0..50ms``: argparse would take a value
    that starts with '-' and is not a plain number for an option and stop with an error."""
    takes_value = set()
    stack = [parser]
    while stack:
        p = stack.pop()
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
            elif action.option_strings and action.nargs != 0:
                takes_value.update(s for s in action.option_strings if s.startswith("--"))
    out, i = [], 0
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            out += argv[i:]
            break
        if tok in takes_value and i + 1 < len(argv) and _NEGATIVE.match(argv[i + 1]):
            out.append(f"{tok}={argv[i + 1]}")
            i += 2
            continue
        out.append(tok)
        i += 1
    return out


def _one_line(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, (ValueError, OSError)) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``); returns the exit status:
    0 success, 1 a fit that did not converge, 2 an error (one line on stderr)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(_attach_negative_values(argv, parser))
    _add, run = COMMANDS[args.command]
    prefix = f"ctsnn {args.command}"

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{prefix}: warning: {' '.join(str(message).split())}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        try:
            return run(args)
        except KeyboardInterrupt:
            print(f"{prefix}: interrupted", file=sys.stderr)
            return 130
        except Exception as exc:  # every error is one line, the traceback only on request
            if os.environ.get("CTSNN_DEBUG"):
                raise
            print(f"{prefix}: error: {_one_line(exc)}", file=sys.stderr)
            return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
