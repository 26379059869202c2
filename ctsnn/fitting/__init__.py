"""Fitting model parameters to recordings (see ``core`` for the method and docs/fitting.md)."""
from .core import FitResult, fit
from .many import ManyFitResult, fit_many
from .metrics import (bootstrap_ci, coincidences, detect_action_potentials, explained_variance, gamma_factor, isi_error,
                      matched_spike_times, van_rossum)
from .protocol import (MODEL_KINDS, RECIPES, ProtocolFit, Recipe, StepSweep, evaluate, fit_protocol, leave_one_out,
                       step_sweep, summarize)
from .transforms import Transform, transform_for

__all__ = ["fit", "FitResult", "fit_many", "ManyFitResult", "van_rossum", "matched_spike_times", "gamma_factor",
           "coincidences", "Transform", "transform_for", "detect_action_potentials", "isi_error", "explained_variance",
           "bootstrap_ci", "fit_protocol", "Recipe", "RECIPES", "ProtocolFit", "StepSweep", "step_sweep", "evaluate",
           "summarize", "leave_one_out", "MODEL_KINDS"]
