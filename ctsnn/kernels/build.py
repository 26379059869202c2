"""Compile ``step.cpp`` on first use (one small shared library per configuration) and cache it.

Nothing is compiled at install time.  The first call of a configuration runs the system C++
compiler (``$CXX`` or ``g++``/``c++``/``clang++``; about a second) and stores the library under
``$CTSNN_CACHE`` (default ``$XDG_CACHE_HOME/ctsnn`` or ``~/.cache/ctsnn``), keyed by the source,
the flags, the compiler and the CPU; later calls (and later processes) load it from there.
Without a compiler, or with ``CTSNN_KERNELS=0``, ``available()`` is False and ``DiscreteLayer``
uses its pure-torch path (same results).  The cache is checked before use (see "cache integrity"
below): a directory that is unusable, not private, or a library whose bytes do not match the
hash recorded when it was built sends the layer to the torch path with one warning, never an
exception or a crash.  ``clear_cache()`` deletes the libraries.
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
        d = cache_dir()
        why = _usable_dir(d)
        if why is not None:
            return _give_up(key, f"the kernel cache {str(d)!r} is unusable: {why}")
        out = d / f"ctsnn_{src.stem}_{h.hexdigest()[:20]}.so"
        try:
            with _dir_lock(d):  # one compile per library, also between processes
                if not out.exists() or not Path(str(out) + ".sha256").exists():  # none, or not recorded: build
                    fd, tmp = tempfile.mkstemp(suffix=".so", dir=d)
                    os.close(fd)
                    t0 = time.perf_counter()
                    res = subprocess.run([cxx, *flags, *dflags, str(src), "-o", tmp], capture_output=True, text=True)
                    if res.returncode != 0:
                        os.unlink(tmp)
                        msg = res.stderr.strip()[-2000:]
                        _FAILED[key] = msg
                        warnings.warn(f"ctsnn: could not compile the fused kernel ({cxx}); using the torch path."
                                      f"\n{msg}", RuntimeWarning, stacklevel=3)
                        return None
                    _install(tmp, out)
                    compile_seconds[key] = time.perf_counter() - t0
                why = _verify(out)
        except OSError as exc:
            return _give_up(key, f"the kernel cache {str(d)!r} is unusable: {exc}")
        if why is not None:
            return _give_up(key, f"the cached library {str(out)!r} is not loaded: {why}; run "
                                 f"ctsnn.kernels.clear_cache() to rebuild it")
        lib = ctypes.CDLL(str(out))
        _LIBS[key] = lib
        return lib


# ------------------------------------------------------------------ cache integrity
# Each library is stored with the sha256 of its bytes (``<name>.so.sha256``), written by the process
# that compiled it, and checked before every load: a truncated file (which ``dlopen`` would map and
# die on with SIGBUS), or one changed since it was built, is never loaded; a library without a
# recorded hash (planted under the expected name, or left by an older version) is rebuilt over.  The cache directory must belong to the user and be writable by nobody else.

_WARNED: set = set()


def _give_up(key, why: str):
    """Record that configuration ``key`` runs on the torch path; warn once per reason."""
    _FAILED[key] = why
    if why not in _WARNED:
        _WARNED.add(why)
        warnings.warn(f"ctsnn: {why}; using the torch path (same results, slower). Set CTSNN_CACHE to a "
                      f"private writable directory, or CTSNN_KERNELS=0 to silence this", RuntimeWarning,
                      stacklevel=4)
    return None


def _usable_dir(d: Path) -> str | None:
    """None if ``d`` is (or could be made) a private writable directory, else why not."""
    try:
        if not d.exists():
            if d.is_symlink():
                return "it is a dangling symbolic link"
            d.mkdir(parents=True, mode=0o700)
        if not d.is_dir():
            return "it is not a directory"
        st = d.stat()
    except OSError as exc:
        return f"cannot create or read it ({exc.strerror or exc})"
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return f"it belongs to another user (uid {st.st_uid})"
    if st.st_mode & 0o022:
        return f"it is writable by others (mode {oct(st.st_mode & 0o777)}); chmod go-w it"
    if not os.access(d, os.W_OK | os.X_OK):
        return "it is not writable"
    return None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _install(tmp: str, out: Path) -> None:
    """Move a freshly built library into place together with its recorded hash."""
    digest = _sha256(Path(tmp))
    fd, htmp = tempfile.mkstemp(suffix=".sha256", dir=out.parent)
    with os.fdopen(fd, "w") as fh:
        fh.write(digest + "\n")
    os.replace(htmp, str(out) + ".sha256")
    os.replace(tmp, out)


def _verify(out: Path) -> str | None:
    """None if ``out`` is ours and its bytes match the recorded hash, else why not."""
    rec = Path(str(out) + ".sha256")
    try:
        st = out.stat()
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            return f"it belongs to another user (uid {st.st_uid})"
        if st.st_mode & 0o022:
            return f"it is writable by others (mode {oct(st.st_mode & 0o777)})"
        if not rec.exists():
            return "no recorded hash (not built by ctsnn here)"
        want = rec.read_text().strip()
        if _sha256(out) != want:
            return "its sha256 does not match the recorded hash (truncated or replaced)"
    except OSError as exc:
        return f"cannot read it ({exc.strerror or exc})"
    return None


class _dir_lock:
    """An exclusive lock on ``d/.lock`` (advisory, between processes; a no-op without fcntl)."""

    def __init__(self, d: Path):
        self.path, self.fh = d / ".lock", None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return self
        self.fh = open(self.path, "a")
        fcntl.flock(self.fh, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self.fh is not None:
            self.fh.close()  # releases the lock
        return False


def clear_cache() -> int:
    """Delete the compiled kernel libraries (and their hashes) from the cache directory
    (``cache_dir()``, ``$CTSNN_CACHE``); they are rebuilt on next use.  Libraries already loaded by
    this process stay in use until it exits.  Returns the number of files removed."""
    d = cache_dir()
    removed = 0
    with _LOCK:
        if d.is_dir():
            for f in list(d.glob("ctsnn_*.so")) + list(d.glob("ctsnn_*.so.sha256")) + list(d.glob("tmp*.so")):
                try:
                    f.unlink()
                    removed += 1
                except OSError:
                    pass
        _FAILED.clear()
        _WARNED.clear()
    return removed
