"""Fitting model parameters to recordings (see ``core`` for the method and docs/fitting.md)."""
from .core import FitResult, fit
from .many import ManyFitResult, fit_many
from .metrics import coincidences, gamma_factor, matched_spike_times, van_rossum
from .transforms import Transform, transform_for

__all__ = ["fit", "FitResult", "fit_many", "ManyFitResult", "van_rossum", "matched_spike_times", "gamma_factor",
           "coincidences", "Transform", "transform_for"]
