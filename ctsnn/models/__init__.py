"""Neuron models: each is a drift, affine event functions and affine jumps (see ``base``)."""
from .base import NeuronModel, Option, Param, State, check_param
from .lif import ALIF, IF, LIF, CubaLIF
from .nonlinear import QIF, AdEx, Izhikevich
from .recurrent import Feedback, Recurrent
from .ternary import LIT, DualLIT, Traced
from .threshold import MNLIF

__all__ = ["NeuronModel", "check_param", "Param", "Option", "State", "LIF", "IF", "CubaLIF", "ALIF", "LIT", "DualLIT", "Traced",
           "Recurrent", "Feedback", "AdEx", "QIF", "Izhikevich", "MNLIF"]
