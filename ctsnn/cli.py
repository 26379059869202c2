"""Command line: ``ctsnn simulate ...``, ``ctsnn plot ...``, ``ctsnn fit ...`` (and ``python -m ctsnn``).

Quantities take units ("10ms", "0.1ms", "2nA", "-70mV", "100Mohm"); a bare number is SI.
Each subcommand is a pair of functions, ``_add_NAME(subparsers)`` and ``_run_NAME(args)``,
listed in ``COMMANDS``.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from .units import parse_quantity, parse_step

__all__ = ["main", "build_parser", "build_model", "MODELS"]

# model name -> (class name in ctsnn, default parameters in SI units for the CLI)
MODELS = {
    "lif": ("LIF", {"tau_mem": 10e-3, "r": 100e6, "v_leak": -70e-3, "v_th": -50e-3, "v_reset": -70e-3}),
    "if": ("IF", {"r": 1 / 200e-12, "v_th": -50e-3, "v_reset": -70e-3}),
    "cubalif": ("CubaLIF", {"tau_syn": 5e-3, "tau_mem": 10e-3, "r": 100e6, "v_leak": -70e-3,
                            "v_th": -50e-3, "v_reset": -70e-3}),
    "alif": ("ALIF", {"tau_mem": 10e-3, "tau_adapt": 100e-3, "adapt_jump": 2e-3, "r": 100e6,
                      "v_leak": -70e-3, "v_th": -50e-3, "v_reset": -70e-3}),
    "lit": ("LIT", {"tau_mem": 10e-3, "r": 100e6, "pos_th": 20e-3, "neg_th": 20e-3}),
    # nonlinear models (no exact propagator: use --method euler or a torchdiffeq method)
    "adex": ("AdEx", {}),
    "qif": ("QIF", {"tau_mem": 10e-3, "v_rest": -70e-3, "v_c": -50e-3, "r": 100e6, "v_reset": -70e-3,
                    "v_peak": 0.0}),
}

_TIME = ("tau_mem", "tau_syn", "tau_adapt", "tau_pos", "tau_neg", "tau_rec", "t_ref", "delay", "tau_w")
_VOLT = ("v_leak", "v_th", "v_reset", "adapt_jump", "pos_th", "neg_th", "bias", "E_L", "V_T", "Delta_T",
         "v_peak", "v_rest", "v_c")


def _dimension(param: str) -> str | None:
    if param in _TIME:
        return "time"
    if param in _VOLT:
        return "voltage"
    if param == "r":
        return "resistance"
    return {"C": "capacitance", "g_L": "conductance", "a": "conductance", "b": "current"}.get(param)


def build_model(name: str, params: dict[str, str | float], *, reset: str | None = None, n: int | None = None):
    """The CLI's model: its defaults, overridden by ``params`` (strings with units allowed)."""
    import ctsnn

    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
    cls_name, defaults = MODELS[name]
    kw = dict(defaults)
    for k, v in params.items():
        kw[k] = parse_quantity(v, _dimension(k), name=k)
    if reset is not None:
        kw["reset"] = reset
    if n is not None:
        kw["n"] = n
    cls = getattr(ctsnn, cls_name)
    try:
        return cls(**kw)
    except TypeError as exc:
        raise ValueError(f"model {name!r}: {exc}") from None


def _param_pairs(items: list[str]) -> dict[str, str]:
    out = {}
    for it in items or []:
        if "=" not in it:
            raise ValueError(f"--param expects NAME=VALUE (e.g. tau_mem=10ms), got {it!r}")
        k, _, v = it.partition("=")
        out[k.strip()] = v.strip()
    return out


def _current(args, n_steps: int, dt: float, n: int):
    """The injected current from --current steps and/or --current-file, as a [T, n] tensor or float."""
    import numpy as np
    import torch

    total = None
    if args.current_file:
        path = Path(args.current_file)
        if path.suffix == ".npy":
            arr = np.load(path)
        elif path.suffix == ".npz":
            with np.load(path) as z:
                key = args.current_key or ("i" if "i" in z else z.files[0])
                arr = z[key]
        elif path.suffix == ".csv":
            arr = np.genfromtxt(path, delimiter=",", names=True)
            key = args.current_key or arr.dtype.names[-1]
            arr = arr[key]
        else:
            raise ValueError(f"--current-file: unsupported file type {path.suffix!r} (use .npy, .npz or .csv)")
        arr = np.asarray(arr, dtype=np.float64) * parse_quantity(args.current_unit, "current", name="--current-unit")
        if arr.shape[0] != n_steps:
            raise ValueError(f"--current-file has {arr.shape[0]} samples but the simulation has {n_steps} "
                             f"steps (t_end/dt); one sample per step is needed")
        total = torch.as_tensor(arr.reshape(n_steps, -1))
    if args.current:
        t = torch.arange(n_steps, dtype=torch.float64) * dt
        steps = torch.zeros(n_steps, 1, dtype=torch.float64)
        for spec in args.current:
            amp, t0, t1 = parse_step(spec, name="--current")
            steps[(t >= t0 - 1e-12) & (t < t1 - 1e-12), 0] += amp
        total = steps if total is None else total + steps
    return 0.0 if total is None else total


def _add_simulate(sub) -> None:
    p = sub.add_parser(
        "simulate", help="simulate a neuron and write its trace (.npz)",
        description="Simulate a neuron model with a chosen dt and method; write the trace (.npz) and "
                    "print a summary. Quantities accept units (10ms, -70mV, 2nA, 100Mohm); bare numbers are SI.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default="lif", choices=sorted(MODELS), help="neuron model")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="model parameter, repeatable: tau_mem=10ms, r=100Mohm, v_leak=-70mV, v_th=-50mV, "
                        "v_reset=-70mV, t_ref=2ms, tau_syn=5ms, tau_adapt=100ms, adapt_jump=2mV, ... "
                        f"(defaults per model: {', '.join(f'{k}: {v[1]}' for k, v in MODELS.items())})")
    p.add_argument("--reset", choices=["to_value", "subtract", "none"], default=None,
                   help="reset rule (default: the model's, to_value)")
    p.add_argument("--current", action="append", default=[], metavar="AMP[@START..STOP]",
                   help="injected current: DC (2nA) or a step (1.5nA@20ms..120ms); repeatable, summed")
    p.add_argument("--current-file", default=None, help="current samples, one per step (.npy, .npz, .csv)")
    p.add_argument("--current-key", default=None, help="array key (.npz) or column name (.csv)")
    p.add_argument("--current-unit", default="A", help="unit of the values in --current-file")
    p.add_argument("--n", type=int, default=None, help="number of neurons (identical copies)")
    p.add_argument("--dt", default="0.1ms", help="time step")
    p.add_argument("--t-end", default="200ms", help="duration")
    p.add_argument("--method", default="exact",
                   help="exact, euler, or a torchdiffeq method (dopri5, dopri8, bosh3, fehlberg2, "
                        "adaptive_heun; rk4, midpoint, heun2, heun3)")
    p.add_argument("--rtol", default=None, type=float, help="relative tolerance (adaptive methods)")
    p.add_argument("--atol", default=None, type=float, help="absolute tolerance (adaptive methods)")
    p.add_argument("--step-size", default=None, help="step of the fixed-grid torchdiffeq methods (default: dt)")
    p.add_argument("--record", default="all", help="states to record, comma separated, or 'all'")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    p.add_argument("-o", "--output", default="trace.npz", help="where to write the trace (.npz)")
    p.add_argument("--plot", metavar="PNG", default=None,
                   help="also draw the membrane (or a raster for more than 4 neurons) to this image")
    p.add_argument("--quiet", action="store_true", help="no progress line")


def _run_simulate(args) -> int:
    import torch

    import ctsnn

    dt = parse_quantity(args.dt, "time", name="--dt")
    t_end = parse_quantity(args.t_end, "time", name="--t-end")
    if dt <= 0:
        raise ValueError(f"--dt must be > 0, got {args.dt!r}")
    if t_end < 0:
        raise ValueError(f"--t-end must be >= 0, got {args.t_end!r}")
    dtype = getattr(torch, args.dtype)
    with _default_dtype(dtype):
        model = build_model(args.model, _param_pairs(args.param), reset=args.reset, n=args.n)
    n_steps = max(0, math.ceil(t_end / dt - 1e-9))
    current = _current(args, n_steps, dt, model.n)
    if isinstance(current, torch.Tensor) and args.n and current.shape[1] == 1:
        current = current.expand(-1, args.n)
    record = tuple(model.state_names) if args.record == "all" else tuple(s for s in args.record.split(",") if s)
    opts = {k: v for k, v in (("rtol", args.rtol), ("atol", args.atol)) if v is not None}
    if args.step_size is not None:
        opts["step_size"] = parse_quantity(args.step_size, "time", name="--step-size")
    trace = ctsnn.simulate(model, current, t_end=t_end, dt=dt, method=args.method, record=record,
                           dtype=dtype, progress=not args.quiet, **opts)
    path = trace.save(args.output)
    print(trace.summary())
    print(f"trace written to {path}")
    if args.plot:
        kind = "raster" if trace.n_neurons > 4 or "v" not in trace.states else "membrane"
        print(f"figure written to {_draw(trace, kind, args.plot, None)}")
    return 0


def _add_plot(sub) -> None:
    p = sub.add_parser("plot", help="draw a saved trace (membrane, raster or all states)",
                       description="Draw a trace written by `ctsnn simulate` to an image file. The "
                                   "membrane plot reaches the pre-reset value at every exact spike "
                                   "time and shows the threshold and reset levels.")
    p.add_argument("trace", help="trace file (.npz) written by `ctsnn simulate`")
    p.add_argument("-o", "--output", default=None, help="image file (.png, .pdf, .svg); default: "
                                                         "the trace's name with .png")
    p.add_argument("--kind", choices=("membrane", "raster", "states"), default="membrane")
    p.add_argument("--neurons", default="0", help="flat neuron indices for the membrane, e.g. 0,3")


def _run_plot(args) -> int:
    import ctsnn

    path = Path(args.trace)
    if not path.exists():
        raise ValueError(f"trace file {str(path)!r} does not exist")
    trace = ctsnn.Trace.load(path)
    try:
        neurons = [int(x) for x in args.neurons.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--neurons must be comma-separated integers, got {args.neurons!r}") from None
    out = args.output or str(path.with_suffix(".png"))
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
    plot.save(ax, out)
    return out


def _add_fit(sub) -> None:
    p = sub.add_parser(
        "fit", help="fit model parameters to recorded sweeps (NPZ, CSV, NWB)",
        description="Fit the named parameters of a model to current-clamp recordings by gradients "
                    "through the simulator; print them with standard errors and write a JSON result. "
                    "Quantities accept units (0.7s, 10ms, -70mV, 100Mohm).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("data", nargs="+", help="recording files: .npz (arrays t, v, i with units in meta), "
                                           ".csv (columns like t_s,v_V,i_A) or .nwb (current-clamp sweeps)")
    p.add_argument("--model", default="lif", choices=sorted(MODELS), help="neuron model")
    p.add_argument("--params", default="tau_mem,r,v_leak",
                   help="parameters to fit, comma separated (r_series: the electrode's series resistance)")
    p.add_argument("--per-sweep", default="", help="parameters fitted separately for each sweep, e.g. v_leak")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="starting / fixed model parameter, repeatable (tau_mem=20ms, v_th=-45mV, ...)")
    p.add_argument("--sweeps", default=None, help="NWB sweep numbers or names, comma separated (default: all)")
    p.add_argument("--window", default=None, metavar="T0..T1", help="time window of every sweep (from its first sample), e.g. 0.7s..2.7s")
    p.add_argument("--exclude", action="append", default=[], metavar="T0..T1",
                   help="leave these times (from each sweep's first sample) out of the loss, e.g. an "
                        "electrode artefact; repeatable")
    p.add_argument("--loss", choices=("mse", "spikes"), default="mse")
    p.add_argument("--optimizer", choices=("lbfgs", "adam", "least_squares"), default="lbfgs")
    p.add_argument("--max-iter", type=int, default=100)
    p.add_argument("-o", "--output", default="fit.json", help="where to write the result (JSON)")
    p.add_argument("--plot", metavar="PNG", default=None, help="also draw data, fitted model and residuals")
    p.add_argument("--quiet", action="store_true", help="no progress line")


def _interval(text: str, name: str) -> tuple[float, float]:
    a, sep, b = str(text).partition("..")
    if not sep:
        raise ValueError(f"{name} must look like T0..T1 (e.g. 0.7s..2.7s), got {text!r}")
    return parse_quantity(a, "time", name=name), parse_quantity(b, "time", name=name)


def _load_recordings(paths, sweeps):
    from . import io

    recs = []
    for path in paths:
        p = Path(path)
        if not p.exists():
            raise ValueError(f"data file {str(p)!r} does not exist")
        suffix = p.suffix.lower()
        if suffix == ".nwb":
            sel = None if sweeps is None else [int(x) if x.strip().isdigit() else x.strip()
                                               for x in sweeps.split(",") if x.strip()]
            recs += io.load_nwb(p, sweeps=sel)
        elif sweeps is not None:
            raise ValueError(f"--sweeps selects sweeps of NWB files; {p.name} holds one sweep")
        elif suffix == ".npz":
            recs.append(io.load_npz(p))
        elif suffix == ".csv":
            recs.append(io.load_csv(p))
        else:
            raise ValueError(f"{p.name}: unknown data format {suffix!r} (use .npz, .csv or .nwb)")
    return recs


def _run_fit(args) -> int:
    import ctsnn

    recs = _load_recordings(args.data, args.sweeps)
    # --exclude and --window are times from each sweep's first sample
    for ex in args.exclude:
        t0, t1 = _interval(ex, "--exclude")
        recs = [r.exclude(r.t[0] + t0, r.t[0] + t1) for r in recs]
    if args.window:
        t0, t1 = _interval(args.window, "--window")
        recs = [r.window(r.t[0] + t0, r.t[0] + t1) for r in recs]
    params = tuple(x.strip() for x in args.params.split(",") if x.strip())
    per_sweep = tuple(x.strip() for x in args.per_sweep.split(",") if x.strip())
    init = _param_pairs(args.param)
    model_kw = {k: v for k, v in init.items() if k != "r_series"}
    model = build_model(args.model, model_kw)
    start = {"r_series": parse_quantity(init["r_series"], "resistance", name="r_series")} if "r_series" in init else None
    print(f"fitting {', '.join(params + per_sweep)} of {args.model} to {len(recs)} sweep(s): "
          + ", ".join(r.name for r in recs), file=sys.stderr)
    res = ctsnn.fit(model, recs, params=params, per_sweep=per_sweep, init=start, loss=args.loss,
                    optimizer=args.optimizer, max_iter=args.max_iter, progress=not args.quiet)
    print(res.summary())
    res.to_json(args.output)
    print(f"result written to {args.output}")
    if args.plot:
        from . import plot

        plot.save(plot.fit(res)[0], args.plot)
        print(f"figure written to {args.plot}")
    return 0


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ctsnn", description="Continuous-time spiking neuron simulator. Times in SI seconds; the "
                                  "CLI accepts units (10ms, 0.1ms, 2nA, -70mV).")
    from . import __version__
    parser.add_argument("--version", action="version", version=f"ctsnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add, _run in COMMANDS.values():
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _add, run = COMMANDS[args.command]
    try:
        return run(args)
    except ValueError as exc:
        print(f"ctsnn {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
