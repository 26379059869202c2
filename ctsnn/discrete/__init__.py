"""Discrete-time layers derived from a continuous ``NeuronModel``.

``discretize(model, dt, **options)`` returns a ``DiscreteLayer`` that steps the model on a grid of
spacing ``dt`` (seconds).  Below threshold the model is ``dy/dt = A y + B u + c``
(``model.linear_part()``); one step is

* ``method="exact"``:  ``y <- E y + F (B u + c)`` with ``E = exp(A dt)``,
  ``F = int_0^dt exp(A s) ds`` (``ctsnn.solvers.propagator``),
* ``method="euler"``:  ``y <- (I + dt A) y + dt (B u + c)``, evaluated as ``y + (dt A) y + ...``.

Then for each event ``e`` (``g = y G^T - theta``) the spike is ``s_e = H(g_e)`` with a surrogate
gradient, and the affine jump is applied softly: ``y <- y + s_e (y J_e^T + k_e - y)``.  The output
is ``sum_e s_e * event_signs[e] * output_scale(e)``.  Parameters stay the continuous ones (tau,
v_th), so ``to_model()`` returns the model and discretising it at another ``dt`` keeps the
physical time constants.

The pieces (each module's docstring states its equations):

* ``options``:   ``Options`` (every option, its default and allowed values) and the tables of
  which options combine and which the fused kernel runs; read by the layer, the fused planner
  (``ctsnn.kernels.fused.plan``) and the error messages;
* ``constants``: ``StepConstants`` (``E, F, B, c``, events, jumps, output scales) derived from the
  model (or from learned decays, ``learn_decay=True``);
* ``grid``:      the core step: input conventions (``impulse``, ``impulse_start``, ``zoh``),
  recurrent feedback, ``state_map``, refractory hold, ``state_min``;
* ``firing``:    the reset variants: sequential events (with the membrane / level split of
  ``threshold_grad=False``, level surrogates and ``multi_spike``), simultaneous events
  (tracetorch), delayed reset (snntorch, ``reset_order``);
* ``cascade``:   traces first, then the membrane (``cascade=True``, tracetorch's traced layers);
* ``in_step``:   spikes located inside the step in closed form (``events="in_step"``);
* ``result``:    ``RunResult`` (what ``run`` and ``stream`` return) and ``Spikes`` (sparse events,
  named as ``ctsnn.Trace`` names them);
* ``layer``:     ``DiscreteLayer`` (the module: model, ``dt``, options, step constants and
  ``step``) and ``discretize``;
* ``run``:       running it: one step (``forward``), a sequence (``run``), a long stream in
  bounded memory (``stream``), each on the fused kernel or the torch loop.

Execution: ``run`` takes the fused kernel (``ctsnn.kernels``, the same arithmetic compiled; see
docs/performance.md) where ``options.FUSED_TORCH_ONLY`` allows, else the torch loop over the
step (``backend="torch"`` forces it).
"""
from .constants import StepConstants
from .layer import DiscreteLayer, discretize
from .options import Options
from .result import RunResult, Spikes

__all__ = ["DiscreteLayer", "discretize", "Options", "RunResult", "Spikes", "StepConstants"]
