"""Recurrence: a population's own output events fed back into its state.

``Recurrent(model, weight=V)``      one-to-one: neuron j's output event s_j (its sign times its
                                    output scale) jumps neuron j's ``target`` state by V_j s_j;
``Recurrent(model, weight=W)``      all-to-all, ``W`` ``[n, n]`` (W[post, pre], as nn.Linear):
                                    neuron i's target jumps by W[i, j] s_j;
``Recurrent(model, weight=module)``  a linear (or affine) map, e.g. ``nn.Linear`` / ``nn.Conv2d``,
                                    applied to the output events ``[..., n]``; only on a grid
                                    (``discretize``), where it is delivered like the tensors;
either after ``delay`` >= 0 seconds. With ``tau_rec`` the feedback goes through a trace state

    tau_rec dr/dt = -r,   r -> r + s at each own output event,
    tau_x dx/dt   = ... + rec_weight r      for the target state x (tau_x = -1/A[x, x]; 1 if A[x, x] = 0)

A one-to-one feedback without delay is part of the neuron's own jump map; all-to-all, module or
delayed feedback is delivered by the simulator (``feedback``).  On a grid (``discretize``) the
feedback of step t's output events is an impulse input at the end of step t+1 (delay = dt).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .base import NeuronModel, Param, State, check_param

__all__ = ["Recurrent", "Feedback"]


@dataclass
class Feedback:
    """Output events that the simulator must route: ``weight`` [n] (one-to-one) or [n, n]."""

    weight: Tensor  # or an nn.Module mapping the output events [..., n] to increments
    delay: float
    target: int

    @property
    def all_to_all(self) -> bool:
        return not isinstance(self.weight, Tensor) or self.weight.dim() == 2

    def apply(self, out: Tensor) -> Tensor:
        """Increments ``[..., n]`` of the target state caused by output events ``out`` ``[..., n]``."""
        w = self.weight
        if not isinstance(w, Tensor):
            return w(out)
        w = w.to(out.dtype)
        return out @ w.T if w.dim() == 2 else out * w


class Recurrent(NeuronModel):
    """Wrap ``model`` so that its own output events feed back (see the module docstring)."""

    PARAMS = {
        "weight": Param("", doc="feedback weight, in units of the target state per output event"),
        "tau_rec": Param("s", "positive", time_constant=True, doc="time constant of the feedback trace r"),
        "rec_weight": Param("", doc="coupling of the trace r into the target state"),
    }
    # the wrapped model's states keep their declarations (``declared_states``)
    STATES = {"r": State("", "feedback trace of the output events (jumps by each event's size)")}

    def __init__(self, model: NeuronModel, weight=None, *, delay: float = 0.0, target: str | None = None,
                 tau_rec=None, rec_weight=None):
        super().__init__()
        if not isinstance(model, NeuronModel):
            raise TypeError(f"Recurrent: model must be a ctsnn NeuronModel, got {type(model).__name__}")
        self.base = model
        self.voltage_unit, self.current_unit = model.voltage_unit, model.current_unit
        self.state_names = tuple(model.state_names) + (("r",) if tau_rec is not None else ())
        self.event_names, self.event_signs = model.event_names, model.event_signs
        self.input_state, self.clamp_state = model.input_state, model.clamp_state
        self.target = target or model.input_state
        if self.target not in model.state_names:
            raise ValueError(f"Recurrent: target {self.target!r} is not a state of {type(model).__name__}; its "
                             f"states are {model.state_names}")
        self._target_index = model.state_index(self.target)
        try:
            self.delay = float(delay)
        except (TypeError, ValueError):
            raise ValueError(f"delay must be a number of seconds, got {delay!r}") from None
        if not (self.delay >= 0 and self.delay < float("inf")):
            raise ValueError(f"delay must be finite and >= 0, got {delay!r}")
        if tau_rec is not None:
            if weight is not None:
                raise ValueError("give either weight (direct feedback) or tau_rec and rec_weight "
                                 "(trace feedback), not both")
            if self.delay != 0:
                raise ValueError("trace feedback (tau_rec) acts without delay; delay must be 0")
            self._set_param("tau_rec", tau_rec)
            self._set_param("rec_weight", 1.0 if rec_weight is None else rec_weight)
            self.mode = "trace"
        else:
            if weight is None:
                raise ValueError("Recurrent needs weight (V per neuron or W [n, n]) or tau_rec")
            if rec_weight is not None:
                raise ValueError("rec_weight belongs to trace feedback; pass tau_rec too")
            if isinstance(weight, torch.nn.Module):
                self.mode = "map"
                self.weight = weight  # a submodule: its parameters are this model's
                self._options = {"delay": self.delay, "target": self.target}
                self.validate()
                return
            w = weight if isinstance(weight, Tensor) else torch.as_tensor(weight, dtype=model.param_dtype())
            if w.dim() == 2:
                if w.shape[0] != w.shape[1]:
                    raise ValueError(f"all-to-all weight must be square [n, n], got {tuple(w.shape)}")
                with torch.no_grad():
                    if not bool(torch.isfinite(w).all()):
                        raise ValueError("weight must be finite")
                self.mode = "all_to_all"
                if w.requires_grad and not isinstance(w, torch.nn.Parameter):
                    object.__setattr__(self, "weight", w)
                elif isinstance(w, torch.nn.Parameter):
                    self.register_parameter("weight", w)
                else:
                    self.register_buffer("weight", w.clone())
                self._param_keys.append("weight")
            else:
                self._set_param("weight", weight)
                self.mode = "one_to_one"
        self._options = {"delay": self.delay, "target": self.target}
        self.validate()

    # delegation ----------------------------------------------------------
    def param_dtype(self):
        return self.base.param_dtype()

    @property
    def n(self) -> int:
        n = self.base.n
        if self.mode == "all_to_all":
            m = int(self.weight.shape[0])
            if n not in (1, m):
                raise ValueError(f"W is [{m}, {m}] but the model has {n} neurons")
            return m
        for k in ("weight", "tau_rec", "rec_weight"):
            if k in self._param_keys:
                t = getattr(self, k)
                if t.dim() == 1 and t.shape[0] not in (1, n):
                    if n != 1:
                        raise ValueError(f"{k} has {t.shape[0]} entries but the model has {n} neurons")
                    n = int(t.shape[0])
        return n

    def config(self):
        raise NotImplementedError("use Recurrent(model.replace(...), ...) to change a wrapped model")

    def params(self):
        out = {f"base.{k}": v for k, v in self.base.params().items()}
        out.update({k: getattr(self, k) for k in self._param_keys})
        return out

    def refractory_period(self, dtype=None, device=None):
        return self.base.refractory_period(dtype, device)

    @property
    def n_inputs(self):
        return self.base.n_inputs

    def input_channels(self, u):
        return self.base.input_channels(u)

    def spike_input(self, w):
        return self._pad(self.base.spike_input(w))

    @property
    def linear_input(self) -> bool:
        return self.base.linear_input

    def init_state(self, shape, dtype, device=None):
        return self._pad(self.base.init_state(shape, dtype, device))

    def output_scale(self, e, dtype=None, device=None):
        return self.base.output_scale(e, dtype, device)

    def _pad(self, y: Tensor) -> Tensor:
        if self.mode != "trace":
            return y
        return torch.cat([y, y.new_zeros(y.shape[:-1] + (1,))], dim=-1)

    # dynamics -------------------------------------------------------------
    def _trace_coupling(self, A0: Tensor, dtype, device) -> Tensor:
        it = self._target_index
        a = -A0[:, it, it]
        coup = torch.where(a != 0, a, torch.ones_like(a))
        return self.p("rec_weight", dtype, device) * coup

    def linear_part(self, dtype=None, device=None):
        lin = self.base.linear_part(dtype, device)
        if lin is None or self.mode != "trace":
            return lin
        A0, B0, c0 = lin
        dtype = A0.dtype
        tau_r = self.p("tau_rec", dtype, device)
        coup = self._trace_coupling(A0, dtype, device)
        m = max(A0.shape[0], tau_r.shape[0], coup.shape[0])
        S0 = A0.shape[-1]
        A = torch.zeros(m, S0 + 1, S0 + 1, dtype=dtype, device=device)
        A[:, :S0, :S0] = A0
        A[:, self._target_index, S0] = coup
        A[:, S0, S0] = -1.0 / tau_r
        B = torch.cat([B0.expand(m, -1, -1), B0.new_zeros(m, 1, B0.shape[-1])], dim=1)
        c = torch.cat([c0.expand(m, -1), c0.new_zeros(m, 1)], dim=1)
        return A, B, c

    def drift(self, t, y, u):
        if self.mode != "trace":
            return self.base.drift(t, y, u)
        d0 = self.base.drift(t, y[..., :-1], u)
        r = y[..., -1]
        lin = self.base.linear_part(y.dtype, y.device)
        if lin is None:
            coup = self.p("rec_weight", y.dtype, y.device)
        else:
            coup = self._trace_coupling(lin[0], y.dtype, y.device)
        d0 = d0.clone()
        d0[..., self._target_index] = d0[..., self._target_index] + coup * r
        dr = -r / self.p("tau_rec", y.dtype, y.device)
        return torch.cat([d0, dr.unsqueeze(-1)], dim=-1)

    def event_matrix(self, dtype=None, device=None):
        G = self.base.event_matrix(dtype, device)
        if self.mode == "trace":
            G = torch.cat([G, G.new_zeros(G.shape[0], 1)], dim=1)
        return G

    def event_offset(self, dtype=None, device=None):
        return self.base.event_offset(dtype, device)

    def jump_map(self, e, dtype=None, device=None):
        J0, k0 = self.base.jump_map(e, dtype, device)
        dtype = J0.dtype
        s = self.event_signs[e] * self.output_scale(e, dtype, device)
        if self.mode == "trace":
            S0 = J0.shape[0]
            J = torch.eye(S0 + 1, dtype=dtype, device=device)
            J[:S0, :S0] = J0
            m = max(k0.shape[0], s.shape[0])
            k = torch.cat([k0.expand(m, -1), s.expand(m).unsqueeze(-1)], dim=-1)
            return J, k
        if self.mode == "one_to_one" and self.delay == 0:
            fb = self.p("weight", dtype, device) * s
            m = max(k0.shape[0], fb.shape[0])
            k = k0.expand(m, -1).clone()
            k[:, self._target_index] = k[:, self._target_index] + fb.expand(m)
            return J0, k
        return J0, k0

    @property
    def feedback(self) -> Feedback | None:
        """Feedback the simulator must deliver (all-to-all, or delayed), else None."""
        if self.mode == "trace" or (self.mode == "one_to_one" and self.delay == 0):
            return None
        return Feedback(self.weight, self.delay, self._target_index)
