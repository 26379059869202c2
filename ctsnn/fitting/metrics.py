"""Spike-train distances and coincidence measures (numpy for reporting, torch for losses)."""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["van_rossum", "matched_spike_times", "gamma_factor", "coincidences", "detect_action_potentials",
           "isi_error", "explained_variance", "bootstrap_ci"]


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


def detect_action_potentials(t, v, prominence: float = 0.03, max_width: float = 3e-3,
                             min_width: float = 0.15e-3) -> np.ndarray:
    """Times (s) of the action potentials in the membrane trace ``v`` (V) sampled at ``t``.

    An action potential is a peak of ``v`` that stands out by at least ``prominence`` (V) above
    the higher of the two troughs around it (``scipy.signal.find_peaks``' prominence) and is
    narrower than ``max_width`` (s) at half that height, and wider than ``min_width`` (s) and
    1.5 samples there: a one-sample excursion is an electrical artefact, not an action potential
    (the CA1 recording has three, 0.09-0.12 ms wide at 10 kHz, against 0.26 ms and more for its
    action potentials). Its time is the upward crossing of the
    half-height level ``peak - prominence / 2`` just before the peak, linearly interpolated: a
    time near the onset of the upstroke that does not depend on the cell's resting level (a
    fixed level such as -20 mV fails on a depolarised cell) nor on the peak's height.
    """
    from scipy.signal import find_peaks

    t = np.asarray(t, dtype=float)
    v = np.asarray(v, dtype=float)
    if t.size < 3:
        return np.zeros(0)
    dt = float(np.median(np.diff(t)))
    lo = max(float(min_width) / dt, 1.5)
    peaks, props = find_peaks(v, prominence=float(prominence), width=(lo, max(max_width / dt, lo)))
    out = []
    for p, pr in zip(peaks, props["prominences"]):
        level = v[p] - 0.5 * pr
        j = p
        while j > 0 and v[j - 1] >= level:
            j -= 1
        if j == 0:
            out.append(t[p])
            continue
        # v[j - 1] < level <= v[j]
        frac = (level - v[j - 1]) / (v[j] - v[j - 1])
        out.append(t[j - 1] + frac * (t[j] - t[j - 1]))
    return np.asarray(out, dtype=float)


def isi_error(model, data) -> float:
    """Mean absolute relative error of the rank-matched inter-spike intervals,
    ``mean_j |isi_model_j - isi_data_j| / isi_data_j`` over ``j < min(n_model, n_data) - 1``
    (the adaptation profile: the k-th interval against the k-th); NaN when either train has fewer
    than two spikes."""
    a = np.diff(np.sort(np.asarray(model, dtype=float)))
    b = np.diff(np.sort(np.asarray(data, dtype=float)))
    k = min(a.size, b.size)
    if k == 0:
        return float("nan")
    return float(np.mean(np.abs(a[:k] - b[:k]) / b[:k]))


def explained_variance(model, data) -> float:
    """``1 - var(model - data) / var(data)`` (1: every sample explained; 0: no better than the
    data's mean; negative: worse). NaN for fewer than two samples or a constant ``data``."""
    model = np.asarray(model, dtype=float)
    data = np.asarray(data, dtype=float)
    if data.size < 2 or not np.var(data) > 0:
        return float("nan")
    return float(1.0 - np.var(model - data) / np.var(data))


def bootstrap_ci(values, statistic=np.mean, level: float = 0.95, n_boot: int = 2000, seed: int = 0):
    """Percentile bootstrap confidence interval ``(lo, hi)`` of ``statistic`` over ``values``
    (NaNs dropped): ``n_boot`` resamples with replacement, the ``(1 - level) / 2`` and
    ``(1 + level) / 2`` quantiles of the statistic. ``(nan, nan)`` without values; one value
    gives ``(x, x)`` (no spread to resample)."""
    x = np.asarray(values, dtype=float).ravel()
    x = x[np.isfinite(x)]
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    if x.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(int(n_boot), x.size))
    try:                        # numpy reductions (np.mean, np.median) take all resamples at once
        stats = np.asarray(statistic(x[idx], axis=1), dtype=float)
        if stats.shape != (int(n_boot),):
            raise TypeError
    except TypeError:
        stats = np.array([statistic(x[i]) for i in idx])
    a = (1 - level) / 2
    return float(np.quantile(stats, a)), float(np.quantile(stats, 1 - a))


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
