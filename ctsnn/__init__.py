"""ctsnn: continuous-time spiking neurons on PyTorch.

Each neuron model is stated once as an ODE with event functions and jump maps; ``simulate``
integrates it (exact propagator with in-step spike times, Euler, ...). Times are SI seconds.

The public names below are imported on first use (PEP 562), so that ``import ctsnn`` and the
command line's ``--help`` do not pay for importing torch; ``ctsnn.LIF`` etc. behave as if they
had been imported here.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> submodule that defines it
_LAZY = {
    "NeuronModel": "models", "LIF": "models", "IF": "models", "CubaLIF": "models", "ALIF": "models",
    "LIT": "models", "DualLIT": "models", "Recurrent": "models", "AdEx": "models", "QIF": "models",
    "Izhikevich": "models", "MNLIF": "models",
    "simulate": "simulate", "SimulationError": "errors",
    "Trace": "trace",
    "discretize": "discrete", "DiscreteLayer": "discrete", "Spikes": "discrete", "RunResult": "discrete",
    "Recording": "io",
    "fit": "fitting", "FitResult": "fitting",
    "Network": "network", "Population": "network", "Projection": "network", "PoissonSource": "network",
}

__all__ = ["NeuronModel", "LIF", "IF", "CubaLIF", "ALIF", "LIT", "DualLIT", "Recurrent",
           "AdEx", "QIF", "Izhikevich", "MNLIF", "simulate", "SimulationError", "Trace", "__version__",
           "discretize", "DiscreteLayer", "Spikes", "RunResult", "Recording", "io", "fit", "FitResult",
           "Network", "Population", "Projection", "PoissonSource"]

if TYPE_CHECKING:  # what static tools see: the same names, imported eagerly
    from . import io
    from .discrete import DiscreteLayer, RunResult, Spikes, discretize
    from .fitting import FitResult, fit
    from .io import Recording
    from .models import ALIF, IF, LIF, LIT, MNLIF, QIF, AdEx, CubaLIF, DualLIT, Izhikevich, NeuronModel, Recurrent
    from .network import Network, PoissonSource, Population, Projection
    from .errors import SimulationError
    from .simulate import simulate
    from .trace import Trace


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    if not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f".{name}", __name__)   # ctsnn.io, ctsnn.models, ctsnn.plot, ...
    raise AttributeError(f"module 'ctsnn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """The package module. Importing the submodule ``ctsnn.simulate`` would bind the name
    ``simulate`` to that module; the public ``ctsnn.simulate`` is the function, so the import
    system's binding of that one name is skipped (the module stays in ``sys.modules``)."""

    def __setattr__(self, name, value):
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
