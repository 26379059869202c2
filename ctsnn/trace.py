"""Trace: what a simulation recorded.

* ``t`` ``[R]`` recorded times (s, float64) and states by name, ``trace["v"]`` ``[R, *shape]``
  (the value at each recorded time, after any jump at that time);
* every output event: ``spike_times`` (s, float64, sorted, exact in-step times), ``spike_neurons``
  (flat index into ``shape``), ``spike_signs`` (+1/-1), ``spike_values`` (sign times output
  scale), ``spike_events`` (which event function), and the state's left and right limits at each
  event (``spike_pre`` / ``spike_post`` ``[K, S]``: pre-reset peak and post-reset value);
* ``stats``: solver statistics.

``save(path)`` / ``Trace.load(path)`` round-trip through ``.npz`` without loss.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["Trace"]


@dataclass
class Trace:
    t: Tensor
    states: dict[str, Tensor]
    state_names: tuple[str, ...]
    shape: tuple[int, ...]
    spike_times: Tensor
    spike_neurons: Tensor
    spike_signs: Tensor
    spike_values: Tensor
    spike_events: Tensor
    spike_pre: Tensor
    spike_post: Tensor
    dt: float
    t_end: float
    method: str
    model: str = ""
    stats: dict[str, Any] = field(default_factory=dict)
    event_names: tuple[str, ...] = ("spike",)
    thresholds: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ access
    def __getitem__(self, name: str) -> Tensor:
        try:
            return self.states[name]
        except KeyError:
            raise KeyError(f"state {name!r} was not recorded; recorded: {sorted(self.states)} "
                           f"(pass record=(...) to simulate)") from None

    def __contains__(self, name: str) -> bool:
        return name in self.states

    @property
    def n_neurons(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    @property
    def n_spikes(self) -> int:
        return int(self.spike_times.shape[0])

    def spikes(self, neuron: int | None = None, sign: int | None = None) -> Tensor:
        """Spike times (s) of one flat neuron index (or all), optionally of one sign."""
        mask = torch.ones_like(self.spike_neurons, dtype=torch.bool)
        if neuron is not None:
            mask &= self.spike_neurons == int(neuron)
        if sign is not None:
            mask &= self.spike_signs == int(sign)
        return self.spike_times[mask]

    def spike_counts(self) -> Tensor:
        """Number of output events per neuron, shaped like ``shape``."""
        counts = torch.bincount(self.spike_neurons.cpu(), minlength=self.n_neurons)
        return counts.reshape(self.shape)

    def rates(self) -> Tensor:
        """Mean firing rate per neuron (Hz) over [0, t_end]."""
        return self.spike_counts().double() / max(self.t_end, 1e-300)

    def limit(self, name: str, side: str = "pre") -> Tensor:
        """State ``name`` just before (``"pre"``) or after (``"post"``) each event ``[K]``."""
        i = self.state_names.index(name)
        return (self.spike_pre if side == "pre" else self.spike_post)[:, i]

    def summary(self, first: int = 5) -> str:
        lines = [f"{self.model} simulated for {self.t_end:g} s with dt={self.dt:g} s, method={self.method}",
                 f"neurons: {self.n_neurons} (shape {self.shape}), output events: {self.n_spikes}"]
        if self.n_spikes:
            rate = self.n_spikes / max(self.t_end, 1e-300) / self.n_neurons
            lines.append(f"mean rate: {rate:.4g} Hz per neuron")
            ts = ", ".join(f"{float(x):.9g}" for x in self.spike_times[:first])
            lines.append(f"first spike times (s): {ts}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ io
    def detach(self) -> "Trace":
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["states"] = {k: v.detach() for k, v in self.states.items()}
        for k in ("t", "spike_times", "spike_neurons", "spike_signs", "spike_values", "spike_events",
                  "spike_pre", "spike_post"):
            d[k] = d[k].detach()
        return Trace(**d)

    def save(self, path: str | Path) -> Path:
        """Write the trace to ``path`` (.npz, lossless: float64 times, original state dtype)."""
        from .validate import output_path
        output_path("path", path)  # not a directory; its folder exists (never created silently)
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")
            output_path("path", path)  # the name actually written
        arrays = {"t": self.t, "spike_times": self.spike_times, "spike_neurons": self.spike_neurons,
                  "spike_signs": self.spike_signs, "spike_values": self.spike_values,
                  "spike_events": self.spike_events, "spike_pre": self.spike_pre,
                  "spike_post": self.spike_post}
        out = {k: v.detach().cpu().numpy() for k, v in arrays.items()}
        for k, v in self.states.items():
            out[f"state__{k}"] = v.detach().cpu().numpy()
        meta = {"state_names": list(self.state_names), "shape": list(self.shape), "dt": self.dt,
                "t_end": self.t_end, "method": self.method, "model": self.model,
                "stats": _jsonable(self.stats), "event_names": list(self.event_names),
                "thresholds": _jsonable(self.thresholds), "format": "ctsnn.Trace/1"}
        out["meta"] = np.array(json.dumps(meta))
        np.savez(path, **out)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Trace":
        """Read a trace written by ``save``; a file that is not one, or whose contents are not
        consistent (see ``check``), gives one ``ValueError`` naming the file and the problem."""
        import zipfile

        from .validate import existing_file
        p = existing_file("path", path)
        try:
            with np.load(p, allow_pickle=False) as z:
                files = set(z.files)
                missing = sorted({"meta", *_ARRAYS} - files)
                if missing:
                    raise ValueError(f"no entr{'y' if len(missing) == 1 else 'ies'} {missing}")
                meta = json.loads(str(z["meta"]))
                if not isinstance(meta, dict):
                    raise ValueError("its 'meta' entry is not a JSON object")
                states = {k[len("state__"):]: torch.from_numpy(z[k].copy()) for k in z.files
                          if k.startswith("state__")}
                arr = {k: torch.from_numpy(z[k].copy()) for k in _ARRAYS}
            lost = sorted({"state_names", "shape", "dt", "t_end", "method"} - set(meta))
            if lost:
                raise ValueError(f"its metadata lacks {lost}")
            tr = cls(states=states, state_names=tuple(meta["state_names"]), shape=tuple(meta["shape"]),
                     dt=float(meta["dt"]), t_end=float(meta["t_end"]), method=str(meta["method"]),
                     model=str(meta.get("model", "")), stats=dict(meta.get("stats", {})),
                     event_names=tuple(meta.get("event_names", ("spike",))),
                     thresholds=dict(meta.get("thresholds", {})), **arr)
            tr.check()
        except json.JSONDecodeError as exc:
            raise ValueError(f"{str(p)!r} is not a valid ctsnn trace: its 'meta' entry is not JSON "
                             f"(JSONDecodeError: {exc})") from None
        except ValueError as exc:
            raise ValueError(f"{str(p)!r} is not a valid ctsnn trace: {exc}") from None
        except (zipfile.BadZipFile, EOFError, KeyError, OSError, TypeError, RuntimeError) as exc:
            raise ValueError(f"{str(p)!r} is not a readable ctsnn trace (.npz written by Trace.save): "
                             f"{type(exc).__name__}: {exc}") from None
        return tr

    def check(self) -> None:
        """Raise ``ValueError`` unless the trace is consistent: increasing finite times ``t``; state
        arrays ``[len(t), *shape]``; ``K`` events with finite, sorted times in ``[t[0], t_end]``,
        neuron indices inside ``shape``, ``spike_pre``/``spike_post`` ``[K, S]``."""
        if not (math.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"dt = {self.dt!r} is not a positive number")
        if not (math.isfinite(self.t_end) and self.t_end >= 0):
            raise ValueError(f"t_end = {self.t_end!r} is not a finite number >= 0")
        if any((not isinstance(d, int)) or d < 0 for d in self.shape):
            raise ValueError(f"shape {self.shape} is not a tuple of sizes")
        t = self.t
        if t.dim() != 1 or not bool(torch.isfinite(t).all()):
            raise ValueError("the recorded times t are not a finite 1-D array")
        if t.numel() > 1 and not bool((t[1:] > t[:-1]).all()):
            raise ValueError("the recorded times t are not increasing")
        for k, v in self.states.items():
            if k not in self.state_names:
                raise ValueError(f"state {k!r} is not one of the state names {self.state_names}")
            if tuple(v.shape) != (t.numel(),) + tuple(self.shape):
                raise ValueError(f"state {k!r} has shape {tuple(v.shape)}, expected "
                                 f"{(t.numel(),) + tuple(self.shape)} (len(t), *shape)")
        K = self.spike_times.numel()
        for k in ("spike_times", "spike_neurons", "spike_signs", "spike_values", "spike_events"):
            a = getattr(self, k)
            if a.dim() != 1 or a.numel() != K:
                raise ValueError(f"{k} has shape {tuple(a.shape)}, expected ({K},) like spike_times")
        S = len(self.state_names)
        for k in ("spike_pre", "spike_post"):
            a = getattr(self, k)
            if tuple(a.shape) != (K, S):
                raise ValueError(f"{k} has shape {tuple(a.shape)}, expected ({K}, {S}) (events, states)")
        if K:
            st = self.spike_times.detach().double()
            if not bool(torch.isfinite(st).all()):
                raise ValueError("spike_times contains NaN or Inf")
            lo = float(t[0]) if t.numel() else 0.0
            if float(st.min()) < lo or float(st.max()) > self.t_end * (1 + 1e-12) + 1e-300:
                raise ValueError(f"spike_times span {float(st.min()):g}..{float(st.max()):g} s, outside "
                                 f"[{lo:g}, {self.t_end:g}] s")
            if bool((st[1:] < st[:-1]).any()):
                raise ValueError("spike_times are not sorted")
            nn_ = self.spike_neurons
            if nn_.is_floating_point() or bool(((nn_ < 0) | (nn_ >= self.n_neurons)).any()):
                raise ValueError(f"spike_neurons must be integers in [0, {self.n_neurons})")


_ARRAYS = ("t", "spike_times", "spike_neurons", "spike_signs", "spike_values", "spike_events", "spike_pre",
           "spike_post")


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Tensor):
        return x.detach().cpu().tolist()
    if isinstance(x, (np.generic,)):
        return x.item()
    return x
