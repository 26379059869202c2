"""Reused memory for the fused kernels' large tensors: outputs, recorded states, input gradients
and the buffers a graph keeps for its backward.

A fresh tensor of hundreds of MB costs page faults on first touch: the OS maps and zeroes every
4 kB page (about 0.1 s for 500 MB on the development VM, two to three times the kernel that fills
it), and glibc gives such blocks back to the OS when they are freed, so every call pays again.
``empty`` hands out tensors whose memory comes back here once the tensor and every view of it are
gone (a graph's saved buffers: once its backward has run, or the graph is dropped), and gives it to
the next request of the same size and dtype, as PyTorch's caching allocator does on GPUs.  A
handed-out tensor is never shared with anything alive.

Only tensors of at least ``MIN_BYTES`` (256 kB) are pooled.  At most
``CTSNN_POOL_MB`` megabytes (environment, default 2048) of free memory are kept, the oldest
dropped first; ``CTSNN_POOL_MB=0`` turns the pool off, and ``empty_cache()`` frees what it holds.
A pooled tensor is an ordinary CPU tensor, except that its storage cannot be resized
(``resize_`` to a larger size raises).
"""
from __future__ import annotations

import math
import os
import threading
import weakref
from collections import OrderedDict

import torch
from torch import Tensor

MIN_BYTES = 256 << 10
_SIZES = {torch.float32: 4, torch.float64: 8, torch.bool: 1, torch.uint8: 1, torch.int32: 4, torch.int64: 8}
_lock = threading.Lock()
_free: "OrderedDict[int, tuple[tuple, Tensor]]" = OrderedDict()  # id -> (key, flat tensor), oldest first
_by_key: dict[tuple, dict[int, Tensor]] = {}  # (dtype, numel) -> {id: flat tensor}
_held = 0  # bytes in _free


def limit_bytes() -> int:
    """The most free memory the pool keeps (``CTSNN_POOL_MB``, default 2048 MB)."""
    raw = os.environ.get("CTSNN_POOL_MB", "2048")
    try:
        mb = float(raw)
    except ValueError:
        raise ValueError(f"CTSNN_POOL_MB must be a number of megabytes, got {raw!r}") from None
    return max(0, int(mb * (1 << 20)))


def empty(shape, dtype: torch.dtype) -> Tensor:
    """An uninitialised contiguous CPU tensor, like ``torch.empty(shape, dtype=dtype)``, on memory
    reused from an earlier tensor of the same size and dtype when one has been freed."""
    global _held
    numel = math.prod(shape)
    nbytes = numel * _SIZES.get(dtype, 0)  # 0: a dtype numpy cannot hold, never pooled
    if nbytes < MIN_BYTES or limit_bytes() == 0:
        return torch.empty(shape, dtype=dtype)
    key, base = (dtype, numel), None
    with _lock:
        same = _by_key.get(key)
        if same:
            i, base = same.popitem()  # the most recently freed: likeliest still in cache
            del _free[i]
            _held -= nbytes
    if base is None:
        base = torch.empty(numel, dtype=dtype)
    arr = base.numpy()  # the handed-out tensor holds arr; when it and its views die, arr dies
    weakref.finalize(arr, _give, key, base, nbytes).atexit = False
    return torch.from_numpy(arr).view(shape)


def _give(key, base: Tensor, nbytes: int):
    global _held
    cap = limit_bytes()
    with _lock:
        i = id(base)
        _free[i] = (key, base)
        _by_key.setdefault(key, {})[i] = base
        _held += nbytes
        while _free and _held > cap:
            j, (k, old) = _free.popitem(last=False)
            del _by_key[k][j]
            _held -= k[1] * _SIZES[k[0]]


def held_bytes() -> int:
    """Free memory the pool holds now."""
    return _held


def empty_cache():
    """Free the memory the pool holds (tensors handed out are not affected)."""
    global _held
    with _lock:
        _free.clear()
        _by_key.clear()
        _held = 0
