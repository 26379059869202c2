"""Fused kernels: ``DiscreteLayer.run``'s whole time loop in compiled code (``step.cpp``),
compiled on first use and cached (``build.py``), called through ``fused.py``; its large tensors
reuse freed memory (``pool.py``)."""
from .build import available, cache_dir, clear_cache
from .pool import empty_cache

__all__ = ["available", "cache_dir", "clear_cache", "empty_cache"]
