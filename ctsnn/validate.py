"""Checks for what enters the package: numbers, tensors, dtypes, shapes and file paths.

Each function states one rule once and raises a ``ValueError`` (or ``TypeError`` for a wrong
kind of object) whose message names the argument, the value given and what to do instead.
``simulate``, ``discretize``/``DiscreteLayer``, the models, ``Trace`` and the readers call these
functions, so a rule and its message are the same everywhere.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

__all__ = ["number", "positive_int", "names", "finite_tensor", "float_input", "shape_last", "existing_file",
           "output_path", "MAX_WORK", "work_bound", "n_steps", "dtype_arg", "choice", "real_values", "call_user",
           "callable_or_none", "tensor_input", "bounded_tensor", "INPUT_MAX", "layer_options",
           "broadcast_shapes"]


def _show(value: Any) -> str:
    s = repr(value)
    return s if len(s) <= 80 else s[:77] + "..."


def number(name: str, value: Any, *, positive: bool = False, nonneg: bool = False,
           lo: float | None = None, hi: float | None = None, finite: bool = True,
           unit: str = "", fix: str = "") -> float:
    """``value`` as a Python float: a real number (not bool, not complex), finite unless
    ``finite=False``, ``> 0`` if ``positive``, ``>= 0`` if ``nonneg``, within ``[lo, hi]``."""
    what = f"{name} must be a real number{' of ' + unit if unit else ''}"
    tail = f"; {fix}" if fix else ""
    if isinstance(value, bool) or isinstance(value, complex) or (
            isinstance(value, Tensor) and (value.is_complex() or value.dtype == torch.bool)):
        raise TypeError(f"{what}, got {_show(value)}{tail}")
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise TypeError(f"{what} (a scalar), got a tensor of shape {tuple(value.shape)}{tail}")
        value = value.detach().reshape(()).item()
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise TypeError(f"{what}, got {_show(value)}{tail}") from None
    if finite and not math.isfinite(x):
        raise ValueError(f"{name} must be finite, got {_show(value)}{tail}")
    if positive and not x > 0:
        raise ValueError(f"{name} must be > 0, got {_show(value)}{tail}")
    if nonneg and not x >= 0:
        raise ValueError(f"{name} must be >= 0, got {_show(value)}{tail}")
    if lo is not None and not x >= lo:
        raise ValueError(f"{name} must be >= {lo:g}, got {_show(value)}{tail}")
    if hi is not None and not x <= hi:
        raise ValueError(f"{name} must be <= {hi:g}, got {_show(value)}{tail}")
    return x


def positive_int(name: str, value: Any, *, minimum: int = 1, fix: str = "") -> int:
    """``value`` as an int ``>= minimum`` (a bool or a non-integral float is refused)."""
    tail = f"; {fix}" if fix else ""
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {_show(value)}{tail}")
    if isinstance(value, float) and not (math.isfinite(value) and value == int(value)):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {_show(value)}{tail}")
    v = int(value)
    if v < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {_show(value)}{tail}")
    return v


def names(name: str, value: Any, what: str = "parameter names") -> tuple[str, ...]:
    """``value`` as a tuple of strings: a sequence of names (a bare string is refused, since
    ``tuple("tau")`` would be its letters)."""
    if isinstance(value, str):
        raise ValueError(f"{name} must be a sequence of {what}, e.g. ({value!r},), got the string {value!r}")
    try:
        out = tuple(value)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of {what}, got {_show(value)}") from None
    for x in out:
        if not isinstance(x, str):
            raise ValueError(f"{name} must hold {what} (strings), got {_show(x)}")
    return out


def float_input(name: str, x: Any, dtype: torch.dtype | None = None) -> Tensor:
    """An input tensor in a floating dtype: integer and bool tensors are converted to ``dtype``
    (default: torch's default dtype); complex ones and non-tensors are refused (``TypeError``)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}; wrap it with "
                        f"torch.as_tensor(...)")
    if x.is_complex():
        raise TypeError(f"{name} must be real, got dtype {x.dtype}; pass its real part (x.real) or a "
                        f"float tensor")
    if not x.is_floating_point():
        return x.to(dtype if dtype is not None and dtype.is_floating_point else torch.get_default_dtype())
    return x


def finite_tensor(name: str, x: Tensor, fix: str = "") -> Tensor:
    """Refuse NaN or Inf anywhere in ``x`` (one vectorised pass, no gradient). Skipped while
    ``torch.compile`` traces (a data-dependent branch would break the graph); eager calls check."""
    if torch.compiler.is_compiling():
        return x
    with torch.no_grad():
        ok = bool(torch.isfinite(x).all()) if x.numel() else True
    if not ok:
        with torch.no_grad():
            bad = ~torch.isfinite(x)
            first = tuple(int(i) for i in bad.nonzero()[0])
            val = float(x.detach()[first])
        raise ValueError(f"{name} contains NaN or Inf ({int(bad.sum())} of {x.numel()} values; first "
                         f"{val} at index {first}){'; ' + fix if fix else ''}")
    return x


def shape_last(name: str, x: Tensor, n: int, what: str = "neurons") -> None:
    """The last axis of ``x`` must be ``n`` (or the model has one neuron, broadcast)."""
    if x.dim() == 0:
        raise ValueError(f"{name} must have a last axis of {n} {what}, got a scalar tensor")
    if n != 1 and x.shape[-1] != n:
        raise ValueError(f"{name}: last axis {x.shape[-1]} does not match model.n = {n} {what} "
                         f"(shape {tuple(x.shape)}); the last axis is the neuron axis")


def existing_file(name: str, path: Any) -> Path:
    """``path`` must name an existing regular file."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a file path (str or Path), got {_show(path)}")
    p = Path(path)
    if not p.exists():
        raise ValueError(f"{name}: file {str(p)!r} does not exist")
    if p.is_dir():
        raise ValueError(f"{name}: {str(p)!r} is a directory, not a file")
    return p


def output_path(name: str, path: Any) -> Path:
    """A path to write: not an existing directory, and its parent directory must exist (it is
    never created silently)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a file path (str or Path), got {_show(path)}")
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{name}: {str(p)!r} is an existing directory; give a file name inside it")
    parent = p.parent
    if not parent.is_dir():
        raise ValueError(f"{name}: directory {str(parent)!r} does not exist; create it first")
    return p


#: the largest ``steps x neurons`` a run may take without ``max_steps`` (or ``CTSNN_MAX_WORK``)
MAX_WORK = 10**10


def work_bound(what: str, steps: int, neurons: int, max_work: Any = None, hint: str = "check t_end and dt") -> None:
    """Refuse a run of ``steps x neurons`` above the limit: ``max_work`` if given, else the
    environment variable ``CTSNN_MAX_WORK``, else :data:`MAX_WORK` (1e10 neuron-steps: about an
    hour of the exact method on one core)."""
    limit = max_work
    if limit is None:
        env = os.environ.get("CTSNN_MAX_WORK")
        if env:
            try:
                limit = float(env)
            except ValueError:
                raise ValueError(f"CTSNN_MAX_WORK must be a number of neuron-steps, got {env!r}") from None
    limit = MAX_WORK if limit is None else number("max_work", limit, positive=True, finite=False)
    work = float(steps) * float(max(neurons, 1))
    if work > limit:
        raise ValueError(f"{what}: {steps:.3g} steps x {neurons} neuron(s) = {work:.3g} neuron-steps exceeds "
                         f"the limit of {limit:.3g}; {hint}, or raise the limit with "
                         f"max_work=... (or the environment variable CTSNN_MAX_WORK)")


_WARNED: set = set()


def euler_stability(model, dt: float, where: str, cascade: bool = False) -> None:
    """Warn (once per model kind, dt and bound) when forward Euler's step ``dt`` exceeds
    ``1 / max(-Re lambda)`` over the eigenvalues ``lambda`` of the model's linear part ``A``: the
    Euler factor ``1 + dt lambda`` (``1 - dt/tau`` for a time constant ``tau``) is then negative,
    so the state overshoots its fixed point and oscillates, where the exact decay ``e^{-dt/tau}``
    is in (0, 1); beyond ``dt = 2 tau`` it grows without bound."""
    import warnings
    lin = (model.cascade_linear_part(torch.float64) if cascade and hasattr(model, "cascade_linear_part")
           else model.linear_part(torch.float64))
    if lin is None:
        return
    with torch.no_grad():
        lam = torch.linalg.eigvals(lin[0].detach().cpu().to(torch.float64))
        rate = float((-lam.real).max())
    if not rate > 0 or not dt * rate > 1.0:
        return
    key = (where, type(model).__name__, float(dt), rate)
    if key in _WARNED:
        return
    _WARNED.add(key)
    tau = 1.0 / rate
    warnings.warn(f"{where}: dt = {dt:g} s exceeds the fastest time constant of {type(model).__name__} "
                  f"(tau = {tau:.3g} s): forward Euler's decay factor 1 - dt/tau = {1 - dt * rate:.3g} is negative "
                  f"(the state overshoots and oscillates{'; it diverges since dt > 2 tau' if dt * rate > 2 else ''}). "
                  f"Use dt < tau (dt << tau for accuracy) or method='exact'", RuntimeWarning, stacklevel=3)


def n_steps(t_end: float, dt: float) -> int:
    """The number of grid steps of a run: ``ceil(t_end / dt)`` (a ratio within 1e-9 of an integer
    counts as that integer), and at least one step when ``t_end > 0``: a ``dt`` longer than
    ``t_end`` (even by many orders of magnitude) is one step, never none."""
    if t_end <= 0:
        return 0
    return max(1, math.ceil(t_end / dt - 1e-9))


def dtype_arg(name: str, dtype: Any) -> torch.dtype | None:
    """``None`` or a floating-point ``torch.dtype``."""
    if dtype is None:
        return None
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"{name} must be a torch floating dtype such as torch.float64, got {_show(dtype)}")
    if not dtype.is_floating_point:
        raise ValueError(f"{name} must be a floating dtype (torch.float32 or torch.float64), got {dtype}")
    return dtype


def choice(name: str, value: Any, options: tuple, fix: str = "") -> Any:
    """``value`` must be one of ``options`` (compared with ``==``; a non-hashable value is refused)."""
    try:
        ok = any(value == o and type(value) is type(o) for o in options)
    except Exception:  # noqa: BLE001 - a value whose comparison fails is not one of the options
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {', '.join(repr(o) for o in options)}, got {_show(value)}"
                         f"{'; ' + fix if fix else ''}")
    return value


def real_values(name: str, value: Any, dtype: torch.dtype, device=None, *, limit: float | None = None) -> Tensor:
    """A number, sequence or array as a real tensor of ``dtype``: bools, complex numbers, strings and
    other objects are refused with a ``TypeError`` naming ``name``; NaN, Inf and (with ``limit``)
    magnitudes above ``limit`` with a ``ValueError``."""
    if isinstance(value, (bool, str, bytes, complex)) or value is None:
        raise TypeError(f"{name} must be a real number, an array or a tensor, got {_show(value)}"
                        + ("; give the value in SI units as a number (the command line takes units)"
                           if isinstance(value, str) else ""))
    if isinstance(value, Tensor):
        t = value
    else:
        try:
            import numpy as np
            a = np.asarray(value)
            if a.dtype.kind not in "fiub":
                raise TypeError
            t = torch.as_tensor(a)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"{name} must be a real number, an array or a tensor, got {_show(value)}") from None
    if t.is_complex():
        raise TypeError(f"{name} must be real, got dtype {t.dtype}; pass its real part or a float tensor")
    finite_tensor(name, t)
    if limit is not None and t.numel() and not torch.compiler.is_compiling():
        with torch.no_grad():
            big = float(t.detach().abs().max())
        if big > limit:
            raise ValueError(f"{name} has a value of magnitude {big:.3g}, above {limit:g}: products with the "
                             f"model's parameters would overflow; check its unit (SI)")
    t = t.to(device=device, dtype=dtype) if device is not None else t.to(dtype=dtype)
    return finite_tensor(name, t, fix=f"a value overflows {dtype}")


def call_user(name: str, fn, *args):
    """Call a user-supplied callable; an exception it raises becomes a ``ValueError`` naming ``name``
    and the arguments (the original is chained as its cause)."""
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - any failure of the user's code is reported the same way
        raise ValueError(f"{name}{tuple(args)!r} raised {type(exc).__name__}: {exc}") from exc


def callable_or_none(name: str, value: Any) -> Any:
    """``None`` or a callable."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable (or None), got {_show(value)}")
    return value


def tensor_input(name: str, x: Any, dtype: torch.dtype | None = None, *, min_dim: int = 0) -> Tensor:
    """The input of a layer's forward: a real tensor (int and bool converted to ``dtype`` or the
    default float dtype; complex, NaN, Inf and magnitudes above ``INPUT_MAX`` refused) with at
    least ``min_dim`` axes: the checks a discrete layer's ``run`` makes, so a dialect's step need
    not repeat them."""
    x = float_input(name, x, dtype)
    if x.dim() < min_dim:
        raise ValueError(f"{name} needs at least {min_dim} axes, got shape {tuple(x.shape)}")
    return bounded_tensor(name, x)


#: the largest magnitude of a layer's input or state: products with the step matrices stay finite
INPUT_MAX = 1e100


def bounded_tensor(name: str, x: Tensor, limit: float = INPUT_MAX, fix: str = "") -> Tensor:
    """Refuse NaN, Inf or a magnitude above ``limit`` in ``x``: one reduction (``max |x|``, NaN
    propagates), the same cost as a finiteness test. Skipped while ``torch.compile`` traces."""
    if torch.compiler.is_compiling() or not x.numel():
        return x
    with torch.no_grad():
        big = float(x.detach().abs().max())
    if not math.isfinite(big):
        return finite_tensor(name, x, fix)
    if big > limit:
        raise ValueError(f"{name} has a value of magnitude {big:.3g}, above {limit:g} (the step would overflow); "
                         f"check its scale")
    return x


def layer_options(layer, choices: dict) -> None:
    """The string options of a ``DiscreteLayer`` (``choices``: option -> allowed values, the
    table of ``ctsnn.discrete.options``), checked at each call (they are plain attributes that a
    user may reassign): each must still be one of its values."""
    d = layer.__dict__
    for name, options in choices.items():
        if name in d and d[name] not in options:
            choice(f"layer.{name}", d[name], options, fix="build a new layer with ctsnn.discretize(...) instead")


def broadcast_shapes(*shapes) -> tuple[int, ...]:
    """The broadcast of ``shapes`` (tuples of ints) by numpy's and torch's rule: aligned from the
    last axis, each axis's sizes equal or 1.  Raises ``RuntimeError`` when they do not broadcast,
    as ``torch.broadcast_shapes`` does.  Plain integer arithmetic: ``torch.broadcast_shapes``
    imports torch's symbolic-shape machinery (sympy) on its first call, about a second of a fresh
    process's first ``simulate``."""
    ndim = max((len(s) for s in shapes), default=0)
    out = [1] * ndim
    for s in shapes:
        for k, size in enumerate(s, start=ndim - len(s)):
            size = int(size)
            if size < 0:
                raise RuntimeError(f"shape {tuple(s)} has a negative size")
            if out[k] == 1:
                out[k] = size
            elif size != 1 and size != out[k]:
                raise RuntimeError(f"shapes {[tuple(x) for x in shapes]} do not broadcast (axis {k - ndim}: "
                                   f"{out[k]} and {size})")
    return tuple(out)
