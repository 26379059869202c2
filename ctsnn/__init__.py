"""ctsnn: continuous-time spiking neurons on PyTorch.

Each neuron model is stated once as an ODE with event functions and jump maps; ``simulate``
integrates it (exact propagator with in-step spike times, Euler, ...). Times are SI seconds.
"""
from . import io
from .fitting import FitResult, fit
from .io import Recording
from .models import ALIF, IF, LIF, LIT, CubaLIF, DualLIT, NeuronModel, Recurrent
from .models import QIF, AdEx, Izhikevich
from .simulate import SimulationError, simulate
from .trace import Trace
from .discrete import DiscreteLayer, discretize

__version__ = "0.1.0"

__all__ = ["NeuronModel", "LIF", "IF", "CubaLIF", "ALIF", "LIT", "DualLIT", "Recurrent",
           "AdEx", "QIF", "Izhikevich", "simulate", "SimulationError", "Trace", "__version__",
           "discretize", "DiscreteLayer", "Recording", "io", "fit", "FitResult"]
