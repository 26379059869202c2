"""Copies of stateful dialect layers.

The states a layer carries between calls are outputs of its last forward pass: non-leaf tensors,
which ``copy.deepcopy`` and ``pickle`` refuse.  ``DetachedCopies`` (a mixin in front of
``nn.Module``) copies and pickles them detached, as a checkpoint holds them; the layer itself is
left as it is (its states keep their graph).
"""
from __future__ import annotations

import copy

from torch import Tensor


def detached(value):
    """``value`` with every non-leaf tensor in it (one level of dict, list or tuple) detached."""
    if isinstance(value, Tensor):
        return value.detach() if value.grad_fn is not None else value
    if isinstance(value, dict):
        return type(value)((k, detached(v) if isinstance(v, Tensor) else v) for k, v in value.items())
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(detached(v) if isinstance(v, Tensor) else v for v in value)
    return value


class DetachedCopies:
    """``copy.deepcopy`` and ``pickle`` of a module whose attributes hold graph-attached states."""

    def __getstate__(self):
        return {k: detached(v) for k, v in super().__getstate__().items()}

    def __deepcopy__(self, memo):
        cls = type(self)
        new = cls.__new__(cls)
        memo[id(self)] = new
        new.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        return new
