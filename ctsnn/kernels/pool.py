"""Reused memory for the fused kernels' large tensors: outputs, recorded states, input gradients
and the buffers a graph keeps for its backward.

A fresh tensor of hundreds of MB costs page faults on first touch: the OS maps and zeroes every
4 kB page (about 0.1 s for 500 MB on the development VM, two to three times the kernel that fills
it), and glibc gives such blocks back to the OS when they are freed, so every call pays again.
``empty`` hands out tensors whose memory comes back here once the tensor and every view of it are
gone (a graph's saved buffers: once its backward has run, or the graph is dropped), and gives it to
the next request of the same size and dtype, as PyTorch's caching allocator does on GPUs.  A
handed-out tensor is never shared with anything alive.

Only tensors of at least ``MIN_BYTES`` are pooled (glibc reuses smaller blocks itself).  At most
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

import torch
from torch import Tensor

MIN_BYTES = 8 << 20
_DTYPES = (torch.float32, torch.float64, torch.bool, torch.uint8, torch.int32, torch.int64)
_lock = threading.Lock()
_free: list[Tensor] = []  # flat tensors not handed out, oldest first


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
    numel = math.prod(shape)
    nbytes = numel * torch.empty((), dtype=dtype).element_size()
    if nbytes < MIN_BYTES or dtype not in _DTYPES or limit_bytes() == 0:
        return torch.empty(shape, dtype=dtype)
    base = None
    with _lock:
        for i, b in enumerate(_free):
            if b.dtype == dtype and b.numel() == numel:
                base = _free.pop(i)
                break
    if base is None:
        base = torch.empty(numel, dtype=dtype)
    arr = base.numpy()  # the handed-out tensor holds arr; when it and its views die, arr dies
    weakref.finalize(arr, _give, base)
    return torch.from_numpy(arr).view(shape)


def _give(base: Tensor):
    cap = limit_bytes()
    with _lock:
        _free.append(base)
        total = sum(b.numel() * b.element_size() for b in _free)
        while _free and total > cap:
            old = _free.pop(0)
            total -= old.numel() * old.element_size()


def held_bytes() -> int:
    """Free memory the pool holds now."""
    with _lock:
        return sum(b.numel() * b.element_size() for b in _free)


def empty_cache():
    """Free the memory the pool holds (tensors handed out are not affected)."""
    with _lock:
        _free.clear()
