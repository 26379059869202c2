"""Spike-train distances and coincidence measures (numpy for reporting, torch for losses)."""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["van_rossum", "matched_spike_times", "gamma_factor", "coincidences"]


def van_rossum(a: torch.Tensor, b: torch.Tensor, tau: float) -> torch.Tensor:
    """Squared van Rossum distance between spike trains ``a`` and ``b`` (s), kernel e^{-t/tau}.

    With causal exponential kernels the L2 distance of the filtered trains has the closed form
    ``D^2 = 1/2 [sum_ij e^{-|a_i - a_j|/tau} + sum_ij e^{-|b_i - b_j|/tau}
    - 2 sum_ij e^{-|a_i - b_j|/tau}]`` (in units of tau), differentiable in every spike time.
    """
    def k(x, y):
        if x.numel() == 0 or y.numel() == 0:
            return x.new_zeros(())
        return torch.exp(-torch.abs(x[:, None] - y[None, :]) / tau).sum()

    a = torch.as_tensor(a, dtype=torch.float64)
    b = torch.as_tensor(b, dtype=a.dtype, device=a.device)
    return 0.5 * (k(a, a) + k(b, b) - 2 * k(a, b))


def matched_spike_times(a: torch.Tensor, b: torch.Tensor, t_end: float) -> torch.Tensor:
    """Sum of squared differences of the k-th spike times of ``a`` and ``b`` (s^2), the trains
    sorted and the shorter one padded with ``t_end`` (the end of the observation window).

    ``L = sum_k (a_k - b_k)^2`` over the common spikes ``+ sum`` over the surplus spikes of
    ``(t_end - x_k)^2``. With tonic firing new spikes enter (and leave) the window at ``t_end``,
    where their padded term is zero, so ``L`` is continuous as the spike count changes (unlike a
    loss on counts) and differentiable in every spike time; it fails to be continuous only where
    a spike is born inside the window (a grazing threshold crossing).
    """
    a = torch.sort(torch.as_tensor(a, dtype=torch.float64).reshape(-1)).values
    b = torch.sort(torch.as_tensor(b, dtype=a.dtype, device=a.device).reshape(-1)).values
    n = max(a.numel(), b.numel())
    pad = lambda x: torch.cat([x, x.new_full((n - x.numel(),), float(t_end))])  # noqa: E731
    return ((pad(a) - pad(b)) ** 2).sum()


def coincidences(model, data, window: float) -> int:
    """Number of data spikes with a model spike within ``window`` s (each model spike used once)."""
    model = np.sort(np.asarray(model, dtype=float))
    data = np.sort(np.asarray(data, dtype=float))
    used = np.zeros(model.size, dtype=bool)
    n = 0
    for t in data:
        j = np.searchsorted(model, t - window)
        while j < model.size and model[j] <= t + window:
            if not used[j]:
                used[j] = True
                n += 1
                break
            j += 1
    return n


def gamma_factor(model, data, window: float = 4e-3, duration: float | None = None) -> float:
    """Kistler et al. (1997) / Jolivet et al. (2008) coincidence factor Gamma.

    ``Gamma = (N_coinc - <N_coinc>) / (1/2 (N_data + N_model)) / (1 - 2 nu_data window)``, with
    ``<N_coinc> = 2 nu_data window N_model`` the coincidences expected by chance from a Poisson
    train of the data's rate ``nu_data``. 1 means every spike matched within ``window``; 0 chance.
    """
    model = np.asarray(model, dtype=float)
    data = np.asarray(data, dtype=float)
    if data.size == 0 and model.size == 0:
        return 1.0
    if duration is None:
        both = np.concatenate([model, data])
        duration = float(both.max() - min(both.min(), 0.0)) if both.size else 1.0
    nu = data.size / duration
    expected = 2 * nu * window * model.size
    norm = 1 - 2 * nu * window
    n = coincidences(model, data, window)
    return float((n - expected) / (0.5 * (data.size + model.size)) / norm)
