"""Discrete-time layers derived from a continuous ``NeuronModel``.

``discretize(model, dt)`` returns a ``DiscreteLayer`` that steps the model on a grid of
spacing ``dt`` (seconds).  Below threshold the model is ``dy/dt = A y + B u + c``
(``model.linear_part()``); one step is

* ``method="exact"``:  ``y <- E y + F (B u + c)`` with ``E = exp(A dt)``,
  ``F = int_0^dt exp(A s) ds`` (``ctsnn.solvers.propagator``),
* ``method="euler"``:  ``y <- (I + dt A) y + dt (B u + c)``, evaluated in the increment form
  ``y + (dt A) y + dt (B u + c)`` (``dt A`` is ``matrices(...).dA``): forming ``I + dt A`` first
  would round ``1 - dt/tau`` and lose float32 precision when ``dt << tau``.

Input conventions (``x`` has shape ``[*batch, n]``):

* ``input="zoh"``: ``x`` is a current held over the step (``u = input_channels(x)``).
* ``input="impulse"``: ``x`` is added to the model's input state at the END of the step,
  after the decay (``y <- E y + F c + spike_input(x)``), i.e. the peers' ``mem = beta*mem + x``.
* ``input="impulse_start"``: ``x`` is added at the START of the step and then propagated with
  the rest of the state (``y <- E (y + spike_input(x)) + F c``): an input spike arriving just
  after the previous grid point (sinabs' synapse ``i = alpha_syn (i + x)``).

Then for each event ``e`` (``g = y G^T - theta``) the spike is ``s_e = H(g_e)`` with a surrogate
gradient, and the affine jump is applied softly: ``y <- y + s_e (y J_e^T + k_e - y)``.
With ``simultaneous_events=True`` all ``s_e`` are computed from the same state before any
jump is applied (tracetorch's order; it matters for soft, non-binary spikes).
The output is ``sum_e s_e * event_signs[e] * output_scale(e)``.  Parameters stay the continuous ones (tau, v_th),
so ``to_model()`` returns the model and discretising it at another ``dt`` keeps the physical
time constants.

Delayed reset (``reset_delay=True``, snntorch's default): the carried state is the PRE-reset
state; the previous step's spikes are re-derived from it (``detach_reset`` cuts their gradient)
and their jumps applied at the next step, ``reset_order="before_decay"`` (the exact order of
the ODE: jump, then propagate) or ``"after_decay"`` (snntorch's subtract reset,
``mem = beta*mem + x - s*th``: the reset is not decayed; relative to the ODE this subtracts
``(1-beta)*th`` less per spike).  The per-step arithmetic lives in ``DiscreteLayer.step`` only.

Options used by step-based peers (sinabs):

* ``threshold_grad=False``: the event function is split as ``g_e = m_e - L_e`` with the membrane
  part ``m_e = G[e, v] y_v`` (``v`` = the model's ``clamp_state``) and the level
  ``L_e = theta_e - sum_{j != v} G[e, j] y_j`` (for ALIF: ``L = v_th + b``); the surrogate
  gradient then flows to ``v`` only, ``L`` is a constant in the spike's backward pass.
  Surrogates with ``uses_level = True`` (``single_exponential``, ...) are called as
  ``spike_fn(g, L)``: their width scales with the current threshold.
* ``multi_spike=True``: ``n_e = trunc(m_e / L_e)`` spikes when ``m_e > 0`` (``floor((m-L)/L) + 1``
  for ``m >= L``), forward value ``n_e``, backward the surrogate of ``s_e``.  This is NOT the
  discretisation of an ODE: it is the number of subtract resets by the same level ``L`` that bring
  ``m`` back below ``L`` within one step (leak and adaptation between them neglected).  The jump
  increment ``(y J^T + k - y)_j`` of state ``j`` is weighted by ``n_e`` when the jump of ``j`` is a
  translation (``J[j, j] = 1``: subtract reset, adaptation increment) and by ``min(n_e, 1)``
  otherwise (reset to a value happens once); the output is ``n_e`` events.
* ``detach_reset``: True / False, or the names of the states whose jump does not carry the
  spike's gradient (sinabs' ``MembraneReset``: ``("v",)``).
* ``state_min={"v": v_min}``: after the jumps, ``y_j <- max(y_j, v_min)`` (sinabs' ``min_v_mem``;
  a clamp, not part of the ODE).

Recurrent feedback (``Recurrent`` with ``weight`` [n], [n, n] or a module such as ``nn.Linear`` /
``nn.Conv2d``, ``delay`` 0 or ``dt``): the previous step's output ``o_{t-1}`` (passed as
``prev_out``; zeros at the start) is an impulse into the target state at the end of step t,
together with the input: ``y <- E y + ... + e_target * W(o_{t-1})``.  A grid cannot order events
inside one step, so zero delay is delivered one step later too (snntorch's ``RLeaky``).  A module's
bias is added every step (``prev_out=None`` counts as no spikes).  (A one-to-one ``Recurrent``
without delay has no ``feedback``: its ``V s`` is part of the jump map, applied with the reset.)

Cascade step (``cascade=True``; models with low-pass traces in front of the membrane,
``ctsnn.models.Traced``): the traces (synaptic ``i``, recurrent ``r``) are advanced first, each
exactly with its input held over the step (zero-order hold): ``i <- a i + (1 - a) [x]`` and
``r <- g r + (1 - g) [o_{t-1}]`` for ``dt = 1`` (``a = exp(-dt/tau_syn)``, ``g = exp(-dt/tau_rec)``,
``o_{t-1}`` the previous step's output, passed as ``prev_out``).  Then the membrane decays
exactly and receives, as an impulse at the end of the step, ``dt`` times the drive of the
UPDATED traces (``model.cascade_drive``: e.g. ``dt (i + rec_weight r)``), plus ``x`` itself when
there is no synapse (``input="impulse"``).  This is not the exact propagator of the coupled
ODE (whose membrane sees the trace's whole path over the step, through the off-diagonal block
of ``exp(A dt)``): it is a sequential operator splitting, traces then membrane, with the
convolution ``int e^{-(t1-s)/tau_mem} i(s) ds`` over the step replaced by its right-endpoint
rectangle ``dt i(t1)``, first order in ``dt/tau``; it is tracetorch's ``S*``/``R*`` order.  The
events' jumps act on the membrane only (the output reaches the recurrent traces through the
next step's ``prev_out``, delivered one step later as with ``Recurrent``).

``state_map`` (optional callable on ``y [*batch, n, S]``) is applied after the subthreshold
update (and delayed jumps) and before the threshold test, e.g. snntorch's ``state_quant``.

``events="in_step"`` (one-state models, ``input="zoh"``, exact; no gradient): instead of testing the
threshold at the grid points, each crossing is located inside its step in closed form on the exact
solution of the held current, the jump applied there and the rest of the step propagated from it
(``DiscreteLayer._step_in_step``); the spike times equal ``simulate(method="exact")``.

Execution: ``run`` takes the fused kernel (``ctsnn.kernels``, the same arithmetic compiled; see
docs/performance.md) where it applies, else the torch loop over ``step`` (``backend="torch"``
forces it); ``run(output="sparse")`` and ``stream`` return ``Spikes`` (only the nonzero outputs).

``learn_decay=True``: the learnable parameter is the per-step decay ``d = diag(E)`` itself
(``nn.Parameter`` ``decay`` ``[n|1, S]``, clamped to [0, 1] in use; needs a diagonal ``A``), with
``E = diag(d)`` and ``F = diag(dt (1 - d) / (-ln d))`` (``dt`` where ``d = 1``; ``F = dt I``
for ``method="euler"``).  By default the continuous parameters are the learnable ones.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from . import surrogate as _surrogate
from . import validate as _v
from .models.base import NeuronModel
from .solvers.propagator import propagator


@dataclass
class Spikes:
    """Sparse output of a discrete run (``run(..., output="sparse")``, ``stream``): event ``k`` is the
    nonzero output ``value[k]`` (1, a spike count, or a signed scale) of element ``index[k]`` (flat
    over ``shape[1:]``) at grid step ``step[k]``, i.e. in ``(step dt, (step + 1) dt]``."""

    step: Tensor
    index: Tensor
    value: Tensor
    shape: tuple
    dt: float
    offset: Tensor | None = None  # in-step time of each event (``events="in_step"``), else None

    def __len__(self) -> int:
        return int(self.step.numel())

    @property
    def times(self) -> Tensor:
        """Event times in seconds: ``step dt + offset`` for in-step events, else the end of the
        event's step (where a grid layer reports its spikes)."""
        if self.offset is not None:
            return self.step.to(torch.float64) * self.dt + self.offset.to(torch.float64)
        return (self.step + 1).to(torch.float64) * self.dt

    def dense(self) -> Tensor:
        """The dense output ``[T, *shape[1:]]`` (events of one element in one step summed)."""
        out = torch.zeros(self.shape[0], math.prod(self.shape[1:]), dtype=self.value.dtype)
        out.index_put_((self.step.long(), self.index.long()), self.value, accumulate=True)  # in-step: several
        return out.reshape(self.shape)

    @staticmethod
    def from_dense(out: Tensor, dt: float) -> "Spikes":
        flat = out.reshape(out.shape[0], -1)
        step, index = torch.nonzero(flat, as_tuple=True)
        return Spikes(step, index, flat[step, index], tuple(out.shape), dt)


class _Growing:
    """Spike events appended chunk by chunk into buffers that double when full (few, large
    allocations: the memory kept is the events', not the allocator's fragments)."""

    def __init__(self):
        self.n, self.bufs = 0, None

    def __len__(self):
        return self.n

    def append(self, sp: Spikes) -> None:
        cols = [sp.step, sp.index, sp.value] + ([] if sp.offset is None else [sp.offset])
        k = cols[0].numel()
        if self.bufs is None:
            self.bufs = [torch.empty(max(k, 1 << 16), dtype=c.dtype) for c in cols]
        if self.n + k > self.bufs[0].numel():
            cap = max(2 * self.bufs[0].numel(), self.n + k)
            self.bufs = [torch.cat([b[:self.n], b.new_empty(cap - self.n)]) for b in self.bufs]
        for b, c in zip(self.bufs, cols):
            b[self.n:self.n + k] = c
        self.n += k

    def spikes(self, shape, dt) -> Spikes:
        cols = [b[:self.n].clone() for b in self.bufs]
        return Spikes(cols[0], cols[1], cols[2], tuple(shape), dt, cols[3] if len(cols) > 3 else None)


class StepMatrices(tuple):
    """``(E, F, B, c)`` of one step (``step_constants`` appends the event constants);
    ``dA = dt A`` for ``method="euler"`` (else None); ``A`` the continuous matrix (``events="in_step"``)."""

    dA: Tensor | None = None
    A: Tensor | None = None
    nia: Tensor | None = None
    t_ref: Tensor | None = None  # refractory period [n|1] (s) when the model has one > 0, else None


class DiscreteLayer(nn.Module):
    """Model stepped on a fixed ``dt`` grid; see the module docstring for the equations."""

    def __init__(self, model: NeuronModel, dt: float, method: str = "exact", input: str = "impulse",
                 surrogate="atan", surrogate_kw: dict | None = None, reset_delay: bool = False,
                 reset_order: str = "before_decay", detach_reset=False, multi_spike: bool = False,
                 threshold_grad: bool = True, state_min: dict | None = None, state_map=None,
                 learn_decay: bool = False, simultaneous_events: bool = False,
                 cascade: bool = False, backend: str = "auto", events: str = "grid") -> None:
        super().__init__()
        if events not in ("grid", "in_step"):
            raise ValueError(f"events must be 'grid' or 'in_step', got {events!r}")
        self.events = events
        if backend not in ("auto", "torch", "fused"):
            raise ValueError(f"backend must be 'auto', 'torch' or 'fused', got {backend!r}")
        self.backend = backend
        self.last_backend: str | None = None
        self.simultaneous_events = bool(simultaneous_events)
        self.cascade = bool(cascade)
        if self.cascade:
            if not all(hasattr(model, a) for a in ("cascade_linear_part", "cascade_inputs", "cascade_drive",
                                                   "trace_states")):
                raise ValueError(f"cascade=True needs a model with traces in front of the membrane "
                                 f"(ctsnn.models.Traced), got {type(model).__name__}")
            if input != "impulse" or reset_delay or learn_decay:
                raise ValueError("cascade=True needs input='impulse' and does not support reset_delay "
                                 "or learn_decay")
        if reset_order not in ("before_decay", "after_decay"):
            raise ValueError(f"reset_order must be 'before_decay' or 'after_decay', got {reset_order!r}")
        self.reset_delay, self.reset_order = bool(reset_delay), reset_order
        if not isinstance(model, NeuronModel):
            raise ValueError(f"model must be a ctsnn NeuronModel, got {type(model).__name__}")
        dt = _v.number("dt", dt, positive=True, unit="seconds", fix="give the grid step in seconds, e.g. dt=1e-3")
        if method not in ("exact", "euler"):
            raise ValueError(f"method must be 'exact' or 'euler', got {method!r}")
        if input not in ("impulse", "zoh", "impulse_start"):
            raise ValueError(f"input must be 'impulse', 'impulse_start' or 'zoh', got {input!r}")
        if not self.cascade and model.linear_part() is None:
            raise ValueError(f"discretize needs a model with a linear part; {type(model).__name__} is nonlinear")
        self.feedback = getattr(model, "feedback", None)
        if self.feedback is not None and not (self.feedback.delay == 0
                                              or abs(self.feedback.delay - dt) <= 1e-9 * dt):
            raise ValueError(f"discretize delivers recurrent feedback one step later: the Recurrent delay "
                             f"must be 0 or dt = {dt}, got {self.feedback.delay}")
        if state_map is not None and not callable(state_map):
            raise ValueError(f"state_map must be callable or None, got {state_map!r}")
        self.model, self.dt, self.method, self.input = model, dt, method, input
        self.state_map = state_map
        self.spike_fn = _surrogate.get(surrogate, **(surrogate_kw or {}))
        # detach_reset: bool, or the names of the states whose jump is detached
        if isinstance(detach_reset, (bool, int)):
            self.detach_reset, self._detach_states = bool(detach_reset), None
        else:
            names = (detach_reset,) if isinstance(detach_reset, str) else tuple(detach_reset)
            for nm in names:
                if nm not in model.state_names:
                    raise ValueError(f"detach_reset: {type(model).__name__} has no state {nm!r}; "
                                     f"its states are {model.state_names}")
            self.detach_reset, self._detach_states = False, names
        self.multi_spike, self.threshold_grad = bool(multi_spike), bool(threshold_grad)
        self.state_min = dict(state_min or {})
        for nm, val in self.state_min.items():
            if nm not in model.state_names:
                raise ValueError(f"state_min: {type(model).__name__} has no state {nm!r}; "
                                 f"its states are {model.state_names}")
            if not math.isfinite(float(val)):
                raise ValueError(f"state_min[{nm!r}] must be finite, got {val!r}")
        self._split = (self.multi_spike or not self.threshold_grad
                       or getattr(self.spike_fn, "uses_level", False))
        if self.simultaneous_events and (self.reset_delay or self._split or self._detach_states is not None
                                         or self.state_min):
            raise ValueError("simultaneous_events does not support reset_delay, multi_spike, "
                             "threshold_grad=False, level surrogates, per-state detach_reset or state_min")
        if self.reset_delay and (self._split or self._detach_states is not None or self.state_min):
            raise ValueError("reset_delay=True does not support multi_spike, threshold_grad=False, "
                             "level surrogates, per-state detach_reset or state_min")
        self.learn_decay = bool(learn_decay)
        if events == "in_step":
            bad = [name for name, on in (("method='euler'", method != "exact"), ("input != 'zoh'", input != "zoh"),
                                          ("reset_delay", reset_delay), ("multi_spike", multi_spike),
                                          ("threshold_grad=False", not threshold_grad),
                                          ("simultaneous_events", simultaneous_events), ("state_min", state_min),
                                          ("state_map", state_map is not None), ("learn_decay", learn_decay),
                                          ("recurrent feedback", self.feedback is not None),
                                          ("cascade", self.cascade)) if on]
            if model.n_states != 1 or model.n_events != 1:
                bad.append(f"{type(model).__name__} ({model.n_states} states, {model.n_events} events; "
                           "in-step events need one of each: LIF, IF)")
            if bad:
                raise ValueError("events='in_step' (spikes located inside the step on the exact solution of a "
                                 "held current) does not support: " + ", ".join(bad))
        self._check_refractory(model.refractory_period(torch.float64))
        tr0 = model.refractory_period(torch.float64)
        self.__dict__["_has_t_ref"] = tr0 is not None and bool((tr0 > 0).any())
        if method == "euler":
            _v.euler_stability(model, dt, "discretize(method='euler')", cascade=self.cascade)
        if self.learn_decay:
            with torch.no_grad():
                E = self._model_matrices(torch.float64)[0]
            d = torch.diagonal(E, dim1=-2, dim2=-1)
            if not torch.equal(torch.diag_embed(d), E):
                raise ValueError("learn_decay needs a model with uncoupled states (diagonal A); "
                                 f"{type(model).__name__} couples its states")
            self.decay = nn.Parameter(d.to(model.param_dtype()).clone())

    @property
    def dt(self) -> float:
        """The grid step (s); setting it re-derives the step matrices on the next call."""
        return self.__dict__["_dt"]

    @dt.setter
    def dt(self, value) -> None:
        value = _v.number("dt", value, positive=True, unit="seconds",
                          fix="give the grid step in seconds, e.g. dt=1e-3")
        fb = getattr(self, "feedback", None)
        if fb is not None and not (fb.delay == 0 or abs(fb.delay - value) <= 1e-9 * value):
            raise ValueError(f"discretize delivers recurrent feedback one step later: the Recurrent delay "
                             f"must be 0 or dt = {value}, got {fb.delay}")
        self.__dict__["_dt"] = value

    def _check_refractory(self, t_ref: Tensor | None) -> None:
        """Refuse the layer options that cannot honour a refractory period ``t_ref > 0``."""
        if t_ref is None or not bool((t_ref > 0).any()):
            return
        bad = [nm for nm, on in (("reset_delay", self.reset_delay), ("simultaneous_events", self.simultaneous_events),
                                 ("cascade", self.cascade), ("multi_spike", self.multi_spike)) if on]
        if bad:
            raise ValueError(f"t_ref > 0 (a refractory period of {type(self.model).__name__}) is not supported "
                             f"with {', '.join(bad)}; set t_ref=0 or drop those options")

    def to_model(self) -> NeuronModel:
        """The continuous model; with ``learn_decay`` a LIF-like model gets ``tau_mem = -dt/ln(d)``."""
        if not self.learn_decay:
            return self.model
        if "tau_mem" not in self.model.params() or self.decay.shape[-1] != 1:
            raise ValueError(f"to_model: learned decay factors have no {type(self.model).__name__} parameter "
                             "to go back to (only single-state models with tau_mem)")
        d = self.decay.detach()[:, 0].clamp(0, 1)
        if not bool(((d > 0) & (d < 1)).all()):
            raise ValueError("to_model: a learned decay of 0 or 1 has no finite tau_mem")
        return self.model.replace(tau_mem=(-self.dt / torch.log(d)).squeeze(0) if d.shape[0] == 1
                                  else -self.dt / torch.log(d))

    def matrices(self, dtype, device=None):
        """``(E [n|1,S,S], F [n|1,S,S], B, c)`` of one step, derived from ``model.linear_part``
        (or from the learned ``decay`` with ``learn_decay``)."""
        if not self.learn_decay:
            return self._model_matrices(dtype, device)
        _, _, B, c = self._model_matrices(dtype, device)
        d = self.decay.to(dtype=dtype, device=device).clamp(0, 1)
        if self.method == "exact":
            one = d >= 1
            ds = torch.where(one | (d <= 0), torch.full_like(d, 0.5), d)
            f = torch.where(one, torch.ones_like(d), (1 - ds) / (-torch.log(ds)))
            f = torch.where(d <= 0, torch.zeros_like(d), f) * self.dt
        else:
            f = torch.full_like(d, self.dt)
        return torch.diag_embed(d), torch.diag_embed(f), B, c

    def _model_matrices(self, dtype, device=None):
        # built in float64 and rounded once to ``dtype`` (so a float32 E = exp(-dt/tau) is
        # the correctly rounded decay, e.g. exactly a peer's float32 beta)
        wide = torch.float64 if dtype in (torch.float32, torch.float16, torch.bfloat16) else dtype
        A, B, c = (self.model.cascade_linear_part(wide, device) if self.cascade
                   else self.model.linear_part(wide, device))
        dA = None
        if self.method == "exact":
            E, F = propagator(A, self.dt)
        else:
            eye = torch.eye(A.shape[-1], dtype=wide, device=device)
            dA = self.dt * A
            E = eye + dA
            F = (self.dt * eye).expand_as(A)
        mats = StepMatrices((E.to(dtype), F.to(dtype), B.to(dtype), c.to(dtype)))
        mats.dA = None if dA is None else dA.to(dtype)
        return mats

    def init_state(self, batch_shape, dtype=torch.float32, device=None) -> Tensor:
        """Resting state ``[*batch_shape, n, S]`` (``S + 1`` with a refractory period: the last
        column is the time left in it, 0)."""
        y = self.model.init_state(tuple(batch_shape) + (self.model.n,), dtype, device)
        tr = self.model.refractory_period(torch.float64)
        if tr is not None and bool((tr > 0).any()):
            y = torch.cat([y, torch.zeros_like(y[..., :1])], -1)
        return y

    def step(self, x: Tensor, y: Tensor, mats, prev_out: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One grid step: ``x [*batch, n]``, ``y [*batch, n, S]`` -> ``(out, y)``; ``mats`` from
        ``step_constants``; ``prev_out`` is the previous step's output (recurrent feedback; None =
        no spikes)."""
        if self.events == "in_step":
            return self._step_in_step(x, y, mats)
        E, F, B, c, G, theta, jumps, scales = mats
        dA = getattr(mats, "dA", None)
        m = self.model
        held = None
        if getattr(mats, "t_ref", None) is not None:  # last column: time left in the refractory period
            rem, y = y[..., -1], y[..., :-1]
            held = rem > 1e-9 * self.dt
            y_start = y
        pending = []
        if self.reset_delay:  # spikes of the previous step, re-derived from the carried state
            for e in range(G.shape[0]):
                s = self.spike_fn(y @ G[e] - theta[..., e])
                pending.append(s.detach() if self.detach_reset else s)
            if self.reset_order == "before_decay":
                y = self._jumps(y, pending, jumps)
        # E y, or y + (dt A) y for Euler (see the module docstring)
        Ey = (E @ y.unsqueeze(-1)).squeeze(-1) if dA is None else y + (dA @ y.unsqueeze(-1)).squeeze(-1)
        if self.cascade:  # traces first (zoh), then the membrane driven by the updated traces
            u, imp = m.cascade_inputs(x, prev_out)
            drive = (B @ u.unsqueeze(-1)).squeeze(-1) + c
            y = Ey + (F @ drive.unsqueeze(-1)).squeeze(-1) + imp
            y = y + self.dt * m.cascade_drive(y)
        elif self.input == "zoh":
            drive = (B @ m.input_channels(x).unsqueeze(-1)).squeeze(-1) + c
            y = Ey + (F @ drive.unsqueeze(-1)).squeeze(-1)
        elif self.input == "impulse_start":
            y0 = y + m.spike_input(x)
            Ey0 = (E @ y0.unsqueeze(-1)).squeeze(-1) if dA is None else y0 + (dA @ y0.unsqueeze(-1)).squeeze(-1)
            y = Ey0 + (F @ c.unsqueeze(-1)).squeeze(-1)
        else:
            y = Ey + (F @ c.unsqueeze(-1)).squeeze(-1) + m.spike_input(x)
        if self.feedback is not None:  # previous step's output -> weight -> impulse (None = no spikes)
            inc = torch.zeros_like(y)
            inc[..., self.feedback.target] = self.feedback.apply(
                torch.zeros_like(x) if prev_out is None else prev_out)
            y = y + inc
        if self.reset_delay and self.reset_order == "after_decay":
            y = self._jumps(y, pending, jumps)
        if self.state_map is not None:
            y = self.state_map(y)
        if held is not None:  # refractory: the clamp state keeps its step-start (post-jump) value, no event
            hv = torch.zeros(m.n_states, dtype=torch.bool, device=y.device)
            hv[m.state_index(m.clamp_state)] = True
            y = torch.where(held.unsqueeze(-1) & hv, y_start, y)
            free = (~held).to(y.dtype)
            fired = torch.zeros_like(held)
        if self.reset_delay:
            out = torch.zeros_like(x)
            for e in range(G.shape[0]):
                s = self.spike_fn(y @ G[e] - theta[..., e])
                out = out + s * scales[e]
            return out, y
        out = torch.zeros_like(x)
        if self.simultaneous_events:  # every event decided from the same post-input state
            spikes = [self.spike_fn(y @ G[e] - theta[..., e]) for e in range(G.shape[0])]
            y = self._jumps(y, [s.detach() if self.detach_reset else s for s in spikes], jumps)
            for e, s in enumerate(spikes):
                out = out + s * scales[e]
            return out, y
        for e in range(G.shape[0]):
            if not self._split:
                g = y @ G[e] - theta[..., e]
                s = self.spike_fn(g)
                n = s
            else:
                s, n = self._fire(y, G[e], theta[..., e])
            if held is not None:
                s, n = s * free, n * free
                fired = fired | (n.detach() != 0)
            J, k = jumps[e]
            if not self._split and self._detach_states is None:
                sr = s.detach() if self.detach_reset else s
                y = y + sr.unsqueeze(-1) * ((y @ J.T - y) + k)
            else:
                y = y + self._jump_weights(s, n, J) * ((y @ J.T - y) + k)
            out = out + n * scales[e]
        if self.state_min:
            lo = torch.full((m.n_states,), -float("inf"), dtype=y.dtype, device=y.device)
            for nm, val in self.state_min.items():
                lo[m.state_index(nm)] = float(val)
            y = torch.clamp(y, min=lo)
        if held is not None:
            rem = torch.where(fired, mats.t_ref.to(y.dtype),
                              torch.where(held, (rem - self.dt).clamp(min=0), torch.zeros_like(rem)))
            y = torch.cat([y, rem.unsqueeze(-1)], -1)
        return out, y

    def _step_in_step(self, x: Tensor, y: Tensor, mats, sink: list | None = None) -> tuple[Tensor, Tensor]:
        """One step with ``events="in_step"`` (one state, one event, held current ``x``): the grid
        step ``z = E y + F (B x + c)``; while ``z`` is at or above threshold, the crossing is located
        in closed form on ``v(s) = v_inf + (v0 - v_inf) e^{A s}`` (``v_inf = -d/A``, ``d = B x + c``):
        from ``v0`` at ``t0``, ``tau = t0 + log1p(q) / A`` with ``q = (v_th - v0) / (v0 - v_inf)``
        (``t0 + (v_th - v0) / d`` for ``A = 0``); the jump is applied at ``tau`` and the rest of the
        step propagated with ``e^{A (dt - tau)} = e^{A (dt - t0)} (v0 - v_inf) / (v_th - v_inf)`` (no
        exponential is evaluated).  ``sink`` collects ``(flat element index, tau, value)`` of each
        event.  The same arithmetic as the fused kernel (step.cpp, ``in_step``), up to the rounding
        of log1p.

        Refractory period (``t_ref > 0``; the state's last column is the time ``r`` left in it at the
        step start): ``v`` is held until ``min(r, dt)`` and propagated from there,
        ``v(dt) = v_inf + (v - v_inf) e^{A (dt - r)}``; after an event at ``tau`` it is held at its
        post-jump value until ``tau + t_ref`` (released inside the step when that is before ``dt``,
        the time left carried to the next step otherwise), as ``simulate(method="exact")`` does."""
        from .simulate import SimulationError
        E, F, B, c, G, theta, jumps, scales = mats
        m = self.model
        tref = getattr(mats, "t_ref", None)
        if tref is not None:
            rem0, y = y[..., -1], y[..., :-1]
        drive = (B @ m.input_channels(x).unsqueeze(-1)).squeeze(-1) + c
        z = (E @ y.unsqueeze(-1)).squeeze(-1) + (F @ drive.unsqueeze(-1)).squeeze(-1)
        d, a, g0, th = drive[..., 0], mats.A[..., 0, 0], G[0, 0], theta[..., 0]
        J, k = jumps[0]
        sc, k0, dt = scales[0], k[..., 0], self.dt
        vth = th / g0
        lin = a != 0
        vinf = d * mats.nia[..., 0, 0]
        one = torch.ones_like(a)
        vs, ze = y[..., 0], z[..., 0]
        ts = torch.zeros_like(ze)
        rest = E[..., 0, 0] * torch.ones_like(ze)
        out = torch.zeros_like(ze)
        if tref is not None:
            tref = tref.to(ze.dtype)
            held = rem0 > 0
            hs = torch.clamp(rem0, max=dt)  # released at hs (dt: held over the whole step)
            rest_h = torch.exp(a * (dt - hs))
            ze = torch.where(held, torch.where(lin, vinf + (vs - vinf) * rest_h, vs + d * (dt - hs)), ze)
            rest = torch.where(held, rest_h, rest)
            ts = torch.where(held, hs, ts)
            rem_out = torch.clamp(rem0 - dt, min=0)
            ze = torch.where(rem0 >= dt, vs, ze)
        active = ze * g0 - th >= 0
        if tref is not None:
            active = active & (rem0 < dt)
        count = 0
        while bool(active.any()):
            above = vs * g0 - th >= 0
            q = (vth - vs) / (vs - vinf)
            tau = torch.where(above, ts, torch.where(lin, ts + torch.log1p(q) / torch.where(lin, a, one),
                                                     ts + (vth - vs) / d))
            tau = torch.where(tau >= ts, tau, ts)
            tau = torch.where(tau <= dt, tau, torch.full_like(tau, dt))
            out = out + torch.where(active, sc, torch.zeros_like(out))
            if sink is not None:
                idx = torch.nonzero(active.reshape(-1), as_tuple=True)[0]
                sink.append((idx, tau.reshape(-1)[idx], torch.broadcast_to(sc, active.shape).reshape(-1)[idx]))
            count += 1
            if count >= 1000:
                raise SimulationError("events='in_step': more than 1000 events of one neuron in one step "
                                      "(a reset at or above threshold?)")
            v_new = vth + ((vth * J[0, 0] - vth) + k0)
            if tref is None:
                rest_new = torch.clamp(rest * torch.where(above, torch.ones_like(vs), (vs - vinf) / (vth - vinf)),
                                       max=1.0)
                ze_new = torch.where(lin, vinf + (v_new - vinf) * rest_new, v_new + d * (dt - tau))
                ts_new = tau
            else:  # held at v_new until tau + t_ref
                rel = tau + tref
                ts_new = torch.clamp(rel, max=dt)
                rest_new = torch.exp(a * (dt - ts_new))
                ze_new = torch.where(lin, vinf + (v_new - vinf) * rest_new, v_new + d * (dt - ts_new))
                ze_new = torch.where(rel >= dt, v_new * torch.ones_like(ze_new), ze_new)
                rem_out = torch.where(active, torch.clamp(rel - dt, min=0), rem_out)
            vs = torch.where(active, v_new, vs)
            rest = torch.where(active, rest_new, rest)
            ts = torch.where(active, ts_new, ts)
            ze = torch.where(active, ze_new, ze)
            active = active & (ze * g0 - th >= 0)
            if tref is not None:
                active = active & (ts < dt)
        if tref is not None:
            return out, torch.stack([ze, rem_out], -1)
        return out, ze.unsqueeze(-1)

    def _fire(self, y: Tensor, Ge: Tensor, theta_e: Tensor) -> tuple[Tensor, Tensor]:
        """``(s, n)`` of one event with the membrane / level split (module docstring):
        ``g = m - L``; ``s = H(g)`` with the surrogate gradient; ``n`` the spike count
        (``= s`` unless ``multi_spike``)."""
        iv = self.model.state_index(self.model.clamp_state)
        G_rest = Ge.clone()
        G_rest[iv] = 0.0
        mem = y[..., iv] * Ge[iv]
        level = theta_e - y @ G_rest
        g = mem - (level if self.threshold_grad else level.detach())
        if getattr(self.spike_fn, "uses_level", False):
            s = self.spike_fn(g, level.detach())
        else:
            s = self.spike_fn(g)
        if not self.multi_spike:
            return s, s
        with torch.no_grad():
            count = torch.div(mem, level, rounding_mode="trunc") * (mem > 0)
            once = (count >= 1).to(s.dtype)
        return s + (once - s).detach(), s + (count - s).detach()

    def _jump_weights(self, s: Tensor, n: Tensor, J: Tensor) -> Tensor:
        """Per-state weight ``[..., S]`` of a jump increment: ``n`` for translated states
        (``J[j, j] = 1``) when ``multi_spike``, else ``s``; detached for ``detach_reset`` states."""
        S = J.shape[-1]
        w = s.unsqueeze(-1).expand(s.shape + (S,))
        if self.multi_spike:
            add = (torch.diagonal(J) == 1).to(s.dtype)
            w = n.unsqueeze(-1) * add + w * (1 - add)
        if self.detach_reset:
            return w.detach()
        if self._detach_states is not None:
            d = torch.zeros(S, dtype=s.dtype, device=s.device)
            for nm in self._detach_states:
                d[self.model.state_index(nm)] = 1.0
            w = w.detach() * d + w * (1 - d)
        return w

    @staticmethod
    def _jumps(y: Tensor, spikes, jumps) -> Tensor:
        """Soft affine jumps ``y + s_e (y J_e^T + k_e - y)`` for every event ``e``."""
        for s, (J, k) in zip(spikes, jumps):
            y = y + s.unsqueeze(-1) * ((y @ J.T - y) + k)
        return y

    def step_constants(self, dtype, device=None):
        """What ``step`` needs, computed once per call of ``forward``/``run``: the matrices
        ``(E, F, B, c)``, the event matrix ``G``, thresholds ``theta``, jumps ``[(J_e, k_e)]`` and
        signed output scales ``[sign_e * output_scale_e]``."""
        m = self.model
        G = m.event_matrix(dtype, device)
        mats = self.matrices(dtype, device)
        jumps = [m.jump_map(e, dtype, device) for e in range(G.shape[0])]
        if self.cascade:  # the events' jumps act on the membrane states only (module docstring)
            mask = torch.ones(m.n_states, dtype=dtype, device=device)
            for nm in m.trace_states:
                mask[m.state_index(nm)] = 0.0
            jumps = [(J, k * mask) for J, k in jumps]
        out = StepMatrices(tuple(mats) + (
            G, m.event_offset(dtype, device), jumps,
            [float(m.event_signs[e]) * m.output_scale(e, dtype, device) for e in range(G.shape[0])]))
        out.dA = getattr(mats, "dA", None)
        tr = m.refractory_period(dtype, device)
        if tr is not None and torch.compiler.is_compiling():
            # a data-dependent branch cannot be traced: whether t_ref > 0 is what the last eager
            # call (or the construction) saw; an eager call after changing t_ref updates it
            if self.__dict__.get("_has_t_ref", False):
                out.t_ref = tr.detach()
        elif tr is not None and bool((tr > 0).any()):
            self.__dict__["_has_t_ref"] = True
            self._check_refractory(tr)
            out.t_ref = tr.detach()
        elif tr is not None:
            self.__dict__["_has_t_ref"] = False
        if self.events == "in_step":
            out.A = m.linear_part(dtype, device)[0]
            A64 = m.linear_part(torch.float64, device)[0]
            out.nia = torch.where(A64 != 0, -1.0 / torch.where(A64 != 0, A64, torch.ones_like(A64)),
                                  torch.zeros_like(A64)).to(dtype)  # -1/A, rounded once
        return out

    def _tensors(self) -> list[Tensor]:
        """The tensors the step constants are made from (parameters, buffers, model parameters)."""
        return list(self.parameters()) + list(self.buffers()) + list(self.model.params().values())

    def _config_key(self) -> tuple:
        """The plain settings the step constants depend on besides tensors: ``dt``, ``method``,
        ``input``, the model's ``reset`` / ``adaptation`` / ... (every str, number or bool attribute
        of the layer, its model and their submodules), so that changing one after a run re-derives
        the constants."""
        plain = (str, int, float, bool, type(None))
        return tuple(tuple(sorted((k, v) for k, v in vars(mod).items()
                                  if isinstance(v, plain) and k not in ("last_backend", "training")))
                     for mod in self.modules())

    def _constants(self, dtype, device, ts: list[Tensor]):
        """``step_constants``, reused between calls while no parameter needs a gradient and none
        changed (keyed by identity and in-place version counter); ``ts``: ``_tensors()``."""
        if torch.compiler.is_compiling() or any(t.requires_grad for t in ts):  # traced: no cache
            return self.step_constants(dtype, device)
        key = (dtype, str(device), tuple(t._version for t in ts), self._config_key())
        cache = self.__dict__.get("_const_cache")  # (key, tensors held so their ids stay theirs, consts)
        if (cache is None or cache[0] != key or len(cache[1]) != len(ts)
                or any(a is not b for a, b in zip(cache[1], ts))):
            cache = (key, ts, self.step_constants(dtype, device))
            self.__dict__["_const_cache"] = cache
        return cache[2]

    def __getstate__(self):
        """Copies (``copy.deepcopy``, ``pickle``) leave out the constants cache (``_constants``): it
        holds the fused kernel's ctypes handles, which cannot be copied; the next call rebuilds it."""
        state = super().__getstate__()
        state.pop("_const_cache", None)
        return state

    def forward(self, x: Tensor, state: Tensor | None = None,
                prev_out: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One step: ``layer(x, state, prev_out=None) -> (out, state)``; ``state=None`` starts at
        rest; ``prev_out`` (the previous step's ``out``) feeds a recurrent model's feedback."""
        x = self._input(x, 1)
        ts = self._tensors()  # once per call: the constants' cache key and the gradient test
        mats = self._constants(x.dtype, x.device, ts)
        state = self._state(state, x.shape, x, mats)
        grad = self._needs_grad(x, state, ts)
        if self.backend != "torch" and self.feedback is None and not grad and not torch.compiler.is_compiling():
            from .kernels import fused  # one step through the fused kernel (no gradient)
            xs = x.unsqueeze(0)
            why = fused.plan(self, xs, False, mats)
            if why is None:
                self.last_backend = "fused"
                out, y = fused.run(self, xs, state, mats)
                return out[0], y
            if self.backend == "fused":
                raise ValueError(f"backend='fused' cannot run this layer: {why}")
        self.last_backend = "torch"
        if self.events == "in_step":
            if grad:
                raise ValueError("events='in_step' runs without gradients (its spikes have no surrogate); for "
                                 "gradients through in-step spike times use ctsnn.simulate(method='exact')")
            with torch.no_grad():
                return self._step_in_step(x, state, mats)
        return self.step(x, state, mats, prev_out)

    def _input(self, x, min_dim: int) -> Tensor:
        """``x`` checked: a real tensor (integer / bool converted to the model's dtype), at least
        ``min_dim`` axes, last axis the neuron axis, finite (one vectorised pass)."""
        x = _v.float_input("x", x, self.model.param_dtype())
        if x.dim() < min_dim:
            raise ValueError(f"x: needs {'[T, *batch, n]' if min_dim == 2 else '[*batch, n]'}, got shape "
                             f"{tuple(x.shape)}")
        _v.shape_last("x", x, self.model.n)
        _v.finite_tensor("x", x, "the discrete layer has no meaning for NaN or Inf input")
        return x

    def _state(self, state, shape, x: Tensor, mats) -> Tensor:
        """The initial state: rest when None, else checked (finite, ``S`` trailing columns; a
        refractory layer appends the time left in the refractory period, 0 when not given)."""
        S = self.model.n_states
        ref = getattr(mats, "t_ref", None) is not None
        if state is None:
            state = self.model.init_state(tuple(shape), x.dtype, x.device)
        else:
            state = _v.float_input("state", state, x.dtype)
            width = (S, S + 1) if ref else (S,)
            if state.dim() == 0 or state.shape[-1] not in width:
                raise ValueError(f"state: needs a trailing axis of {' or '.join(map(str, width))} "
                                 f"({self.model.state_names}{' + time left refractory' if ref else ''}), "
                                 f"got shape {tuple(state.shape)}")
            _v.finite_tensor("state", state, "start from rest with state=None")
            if state.shape[-1] == S + 1:
                return state
        if ref:
            state = torch.cat([state, torch.zeros_like(state[..., :1])], -1)
        return state

    def _empty_run(self, x, state, record_states, out, output):
        """``run`` of zero steps: empty output, the initial state (broadcast to the batch)."""
        self.last_backend = "torch"
        y = torch.broadcast_to(state, tuple(x.shape[1:]) + (state.shape[-1],)).clone()
        if output == "sparse":
            e = torch.zeros(0, dtype=torch.int64)
            return Spikes(e, e, torch.zeros(0, dtype=x.dtype), tuple(x.shape), self.dt,
                          torch.zeros(0, dtype=x.dtype) if self.events == "in_step" else None), y
        res = (torch.zeros_like(x) if out is None else out, y)
        return res + (x.new_zeros((0,) + tuple(y.shape)),) if record_states else res

    @staticmethod
    def _needs_grad(x: Tensor, state: Tensor, ts: list[Tensor]) -> bool:
        return torch.is_grad_enabled() and (x.requires_grad or state.requires_grad
                                            or any(t.requires_grad for t in ts))

    def run(self, x: Tensor, state: Tensor | None = None, record_states: bool = False,
            prev_out: Tensor | None = None, out: Tensor | None = None, output: str = "dense"):
        """Time-major sequence ``x [T, *batch, n]`` -> ``(out [T, ...], final state[, states [T, ..., S]])``;
        ``prev_out`` is the output of the step before ``x[0]`` (recurrent feedback; to continue a run
        pass the last ``out``); ``out`` (optional, ``x``'s shape and dtype) receives the output, to
        reuse one buffer over many calls (runs without gradients).  ``output="sparse"`` returns
        ``(Spikes, final state)`` instead: only the nonzero outputs (no gradient; no dense
        ``[T, ...]`` tensor is made on the fused path).

        The whole loop runs in the fused kernel (``ctsnn.kernels``) when the layer and the call
        allow it (``backend="auto"``, the default; ``last_backend`` says which ran), else in
        torch step by step; both give the same results."""
        if output not in ("dense", "sparse"):
            raise ValueError(f"output must be 'dense' or 'sparse', got {output!r}")
        x = self._input(x, 2)
        ts = self._tensors()  # once per call: the constants' cache key and the gradient test
        mats = self._constants(x.dtype, x.device, ts)
        state = self._state(state, x.shape[1:], x, mats)
        if out is not None and (not isinstance(out, Tensor) or out.shape != x.shape or out.dtype != x.dtype
                                or not out.is_contiguous() or out.requires_grad):
            raise ValueError(f"out: needs a contiguous {x.dtype} tensor of shape {tuple(x.shape)} that does not "
                             f"require grad, got " + (f"{out.dtype} {tuple(out.shape)}" if isinstance(out, Tensor)
                                                      else type(out).__name__))
        if x.shape[0] == 0:  # no steps: the same answer from every backend
            return self._empty_run(x, state, record_states, out, output)
        grad = self._needs_grad(x, state, ts)
        if out is not None and grad:
            raise ValueError("run(out=...) is for runs without gradients (torch.no_grad(), or no input or "
                             "parameter that requires grad)")
        if self.events == "in_step" and grad and output == "dense":
            raise ValueError("events='in_step' runs without gradients (its spikes have no surrogate); for "
                             "gradients through in-step spike times use ctsnn.simulate(method='exact')")
        if output == "sparse":
            if record_states or out is not None:
                raise ValueError("output='sparse' records no states and takes no out= buffer")
            grad = False
        if self.backend != "torch" and not torch.compiler.is_compiling():  # the kernel is opaque to it
            from .kernels import fused
            why = fused.plan(self, x, grad, mats)
            if why is None:
                self.last_backend = "fused"
                if output == "sparse":
                    step, index, value, offset, y = fused.run_sparse(self, x, state, mats)
                    return Spikes(step, index, value, tuple(x.shape), self.dt,
                                  offset if self.events == "in_step" else None), y
                return fused.run(self, x, state, mats, record_states, out)
            if self.backend == "fused":
                raise ValueError(f"backend='fused' cannot run this layer: {why}")
        self.last_backend = "torch"
        if self.events == "in_step":
            return self._run_in_step(x, state, mats, record_states, out, output)
        outs, states = [], []
        o = prev_out
        for t in range(x.shape[0]):
            o, state = self.step(x[t], state, mats, o)
            outs.append(o)
            if record_states:
                states.append(state)
        if output == "sparse":
            with torch.no_grad():
                return Spikes.from_dense(torch.stack(outs), self.dt), state.detach()
        res = (torch.stack(outs) if out is None else torch.stack(outs, out=out), state)
        return res + (torch.stack(states),) if record_states else res

    @torch.no_grad()
    def _run_in_step(self, x, state, mats, record_states, out, output):
        """The torch loop of ``events="in_step"`` (see ``_step_in_step``)."""
        outs, states, events = [], [], []
        for t in range(x.shape[0]):
            sink = [] if output == "sparse" else None
            o, state = self._step_in_step(x[t], state, mats, sink)
            outs.append(o)
            if record_states:
                states.append(state)
            for idx, tau, val in sink or ():
                events.append((torch.full_like(idx, t), idx, val, tau))
        if output == "sparse":
            if not events:
                e = torch.zeros(0, dtype=torch.int64)
                return Spikes(e, e, torch.zeros(0, dtype=x.dtype), tuple(x.shape), self.dt,
                              torch.zeros(0, dtype=x.dtype)), state
            step, index, value, tau = (torch.cat(v) for v in zip(*events))
            order = torch.argsort(step * math.prod(x.shape[1:]) + index, stable=True)
            return Spikes(step[order], index[order], value[order], tuple(x.shape), self.dt, tau[order]), state
        res = (torch.stack(outs) if out is None else torch.stack(outs, out=out), state)
        return res + (torch.stack(states),) if record_states else res

    def stream(self, source, steps: int | None = None, chunk: int = 1000, state: Tensor | None = None,
               progress: bool = False, callback=None) -> tuple[Spikes, Tensor]:
        """Run a long simulation in bounded memory: the input is taken ``chunk`` steps at a time and
        only the sparse spikes and the state are kept -> ``(Spikes, final state)`` (no gradient;
        steps and indices stored as int32 where they fit: 12 bytes per spike in float32).

        ``source``: a tensor ``[T, *batch, n]`` (read chunk by chunk; a first axis of 1 is held
        for ``steps`` steps), or a callable ``source(t0, t1) -> x [t1 - t0, *batch, n]`` (then
        ``steps`` is required).  ``callback(spikes)``, if given, receives each chunk's ``Spikes``
        (steps counted from the start) and nothing is kept: memory stays bounded by the chunk
        whatever the number of spikes (the returned ``Spikes`` is then empty).  ``progress``
        prints a progress line to stderr."""
        import sys
        import time
        if not (isinstance(chunk, int) and chunk > 0):
            raise ValueError(f"chunk must be a positive int, got {chunk!r}")
        if isinstance(source, Tensor):
            if source.dim() < 2:
                raise ValueError(f"source: needs [T, *batch, n], got shape {tuple(source.shape)}")
            held = source.shape[0] == 1
            total = int(steps) if steps is not None else source.shape[0]
            if not held and total > source.shape[0]:
                raise ValueError(f"steps = {total} but the source has {source.shape[0]} steps")

            def get(t0, t1):
                return source.expand((t1 - t0,) + tuple(source.shape[1:])) if held else source[t0:t1]
        elif callable(source):
            if steps is None:
                raise ValueError("steps is required when source is a callable")
            total, get = int(steps), source
        else:
            raise ValueError(f"source must be a tensor or a callable (t0, t1) -> x, got {type(source).__name__}")
        if total < 0:
            raise ValueError(f"steps must be >= 0, got {total}")
        kept, shape, t0, n_events, started = _Growing(), None, 0, 0, time.perf_counter()
        with torch.no_grad():
            while t0 < total:
                t1 = min(total, t0 + chunk)
                x = get(t0, t1)
                if x.shape[0] != t1 - t0:
                    raise ValueError(f"source({t0}, {t1}) returned {x.shape[0]} steps, expected {t1 - t0}")
                if shape is None:
                    shape = tuple(x.shape[1:])
                elif tuple(x.shape[1:]) != shape:
                    raise ValueError(f"source({t0}, {t1}) returned shape {tuple(x.shape[1:])}, expected {shape}")
                sp, state = self.run(x, state, output="sparse")
                small = total < 2**31 and math.prod(shape) < 2**31
                itype = torch.int32 if small else torch.int64
                part = Spikes((sp.step + t0).to(itype), sp.index.to(itype), sp.value, (total,) + shape, self.dt,
                              sp.offset)
                n_events += len(part)
                if callback is not None:
                    callback(part)
                else:
                    kept.append(part)
                t0 = t1
                if progress:
                    el = time.perf_counter() - started
                    print(f"\rstream: step {t0}/{total} ({100 * t0 / max(total, 1):.0f}%), "
                          f"{n_events} events, {el:.1f} s", end="", file=sys.stderr)
        if progress:
            print(file=sys.stderr)
        if shape is None:
            raise ValueError("stream: no steps to run")
        if not len(kept):
            e = torch.zeros(0, dtype=torch.int64)
            return Spikes(e, e, torch.zeros(0, dtype=state.dtype), (total,) + shape, self.dt), state
        return kept.spikes((total,) + shape, self.dt), state


def discretize(model: NeuronModel, dt: float, method: str = "exact", input: str = "impulse",
               surrogate="atan", reset_delay: bool = False, reset_order: str = "before_decay",
               detach_reset=False, multi_spike: bool = False, threshold_grad: bool = True,
               state_min: dict | None = None, state_map=None, learn_decay: bool = False,
               simultaneous_events: bool = False, cascade: bool = False, backend: str = "auto",
               events: str = "grid",
               **surrogate_kw) -> DiscreteLayer:
    """``DiscreteLayer`` stepping ``model`` on a ``dt`` grid (seconds); see module docstring."""
    return DiscreteLayer(model, dt, method=method, input=input, surrogate=surrogate,
                         surrogate_kw=surrogate_kw, reset_delay=reset_delay,
                         reset_order=reset_order, detach_reset=detach_reset,
                         multi_spike=multi_spike, threshold_grad=threshold_grad,
                         state_min=state_min, state_map=state_map, learn_decay=learn_decay,
                         simultaneous_events=simultaneous_events, cascade=cascade, backend=backend,
                         events=events)
