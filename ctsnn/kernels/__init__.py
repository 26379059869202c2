"""Fused kernels: ``DiscreteLayer.run``'s whole time loop in compiled code (``step.cpp``),
compiled on first use and cached (``build.py``), called through ``fused.py``."""
from .build import available, cache_dir

__all__ = ["available", "cache_dir"]
