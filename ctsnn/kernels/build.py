"""Compile ``step.cpp`` on first use (one small shared library per configuration) and cache it.

Nothing is compiled at install time.  The first call of a configuration runs the system C++
compiler (``$CXX`` or ``g++``/``c++``/``clang++``; about a second) and stores the library under
``$CTSNN_CACHE`` (default ``$XDG_CACHE_HOME/ctsnn`` or ``~/.cache/ctsnn``), keyed by the source,
the flags, the compiler and the CPU; later calls (and later processes) load it from there.
Without a compiler, or with ``CTSNN_KERNELS=0``, ``available()`` is False and ``DiscreteLayer``
uses its pure-torch path (same results).
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import time
import warnings
from pathlib import Path

_SRC = Path(__file__).with_name("step.cpp")
_LOCK = threading.Lock()
_LIBS: dict[tuple, ctypes.CDLL] = {}
_FAILED: dict[tuple, str] = {}  # configurations that did not compile (not retried)
#: seconds spent compiling, per configuration key (cold start), for benchmarks and docs
compile_seconds: dict[tuple, float] = {}

_FLAGS = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math", "-fPIC", "-shared", "-fopenmp", "-std=c++17"]


def _compiler() -> str | None:
    return _find_compiler(os.environ.get("CXX"), os.environ.get("PATH"))


@functools.lru_cache(maxsize=8)
def _find_compiler(cxx, path) -> str | None:
    for c in (cxx, "g++", "c++", "clang++"):
        if c and shutil.which(c, path=path):
            return shutil.which(c, path=path)
    return None


def _cpu_tag() -> str:
    tag = platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("model name", "flags", "Features")):
                    tag += line
                    if line.startswith(("flags", "Features")):
                        break
    except OSError:
        pass
    return tag


def cache_dir() -> Path:
    base = os.environ.get("CTSNN_CACHE")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) / "ctsnn" if xdg else Path.home() / ".cache" / "ctsnn"


def available() -> bool:
    """Whether fused kernels can be used here (a C++ compiler, and not disabled by CTSNN_KERNELS=0)."""
    return os.environ.get("CTSNN_KERNELS", "1") != "0" and _compiler() is not None


def load(defines: dict[str, object], source: str = "step.cpp") -> ctypes.CDLL | None:
    """The library for one configuration (``-D`` defines) of ``source`` (a file beside this one:
    ``step.cpp``, ``engine.cpp``), compiled and cached on first use; None (with one warning) if
    it cannot be built."""
    if not available():
        return None
    cxx = _compiler()
    src = _SRC.with_name(source)
    key = tuple(sorted(defines.items())) + (("CXX", cxx), ("SRC", source))
    lib = _LIBS.get(key)
    if lib is not None or key in _FAILED:
        return lib
    with _LOCK:
        lib = _LIBS.get(key)
        if lib is not None or key in _FAILED:
            return lib
        flags = _FLAGS + (["-march=native"] if platform.machine() in ("x86_64", "AMD64") else [])
        dflags = [f"-D{k}={v}" for k, v in sorted(defines.items())]
        h = hashlib.sha256()
        for part in (src.read_bytes(), _SRC.with_name("crossing.h").read_bytes(),  # the shared header
                     " ".join(flags + dflags).encode(), cxx.encode(), _cpu_tag().encode()):
            h.update(part)
        out = cache_dir() / f"ctsnn_{src.stem}_{h.hexdigest()[:20]}.so"
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
            os.close(fd)
            t0 = time.perf_counter()
            res = subprocess.run([cxx, *flags, *dflags, str(src), "-o", tmp], capture_output=True, text=True)
            if res.returncode != 0:
                os.unlink(tmp)
                msg = res.stderr.strip()[-2000:]
                _FAILED[key] = msg
                warnings.warn(f"ctsnn: could not compile the fused kernel ({cxx}); using the torch path.\n{msg}",
                              RuntimeWarning, stacklevel=3)
                return None
            os.replace(tmp, out)
            compile_seconds[key] = time.perf_counter() - t0
        lib = ctypes.CDLL(str(out))
        _LIBS[key] = lib
        return lib
