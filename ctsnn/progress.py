"""A progress line with an ETA on stderr for long loops (``simulate``, ``DiscreteLayer.stream``).

``Progress(total, what, enabled)``: ``enabled=True`` always prints, ``False`` never, ``None``
(the default of the callers) prints only once the run is expected to take more than
``AUTO_SECONDS`` in all (judged after the first second), so short runs stay silent.
"""
from __future__ import annotations

import sys
import time

AUTO_SECONDS = 5.0


class Progress:
    def __init__(self, total: int, what: str, enabled: bool | None = None, every: float = 0.5):
        self.total, self.what, self.enabled, self.every = int(total), what, enabled, every
        self.start = self.last = time.perf_counter()
        self.shown = False

    def update(self, k: int, extra: str = "") -> None:
        if self.enabled is False or self.total <= 0:
            return
        now = time.perf_counter()
        if now - self.last < self.every:
            return
        el = now - self.start
        eta = el / k * (self.total - k) if k > 0 else float("inf")
        if self.enabled is None and not (el > 1.0 and el + eta > AUTO_SECONDS):
            return
        self.last, self.shown = now, True
        print(f"\r{self.what}: step {k}/{self.total} ({100 * k / self.total:5.1f}%), {el:.0f} s elapsed, "
              f"ETA {_fmt(eta)}{extra}   ", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.shown or self.enabled:
            el = time.perf_counter() - self.start
            print(f"\r{self.what}: step {self.total}/{self.total} (100.0%), {el:.1f} s" + " " * 20,
                  file=sys.stderr, flush=True)


def _fmt(s: float) -> str:
    if s != s or s == float("inf"):
        return "?"
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"
