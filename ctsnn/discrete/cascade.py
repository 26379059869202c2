"""The cascade step (``cascade=True``; models with low-pass traces in front of the membrane,
``ctsnn.models.Traced``; tracetorch's ``S*``/``R*`` order).

The traces (synaptic ``i``, recurrent ``r``) are advanced first, each exactly with its input held
over the step (zero-order hold): ``i <- a i + (1 - a) [x]`` and ``r <- g r + (1 - g) [o_{t-1}]``
for ``dt = 1`` (``a = exp(-dt/tau_syn)``, ``g = exp(-dt/tau_rec)``, ``o_{t-1}`` the previous step's
output, passed as ``prev_out``).  Then the membrane decays exactly and receives, as an impulse at
the end of the step, ``dt`` times the drive of the UPDATED traces (``model.cascade_drive``: e.g.
``dt (i + rec_weight r)``), plus ``x`` itself when there is no synapse.

This is not the exact propagator of the coupled ODE (whose membrane sees the trace's whole path
over the step, through the off-diagonal block of ``exp(A dt)``): it is a sequential operator
splitting, traces then membrane, with the convolution ``int e^{-(t1-s)/tau_mem} i(s) ds`` over the
step replaced by its right-endpoint rectangle ``dt i(t1)``, first order in ``dt/tau``.  The events'
jumps act on the membrane only (``constants.step_constants`` masks the traces; the output
reaches the recurrent traces through the next step's ``prev_out``).  ``E, F, B, c`` are those of
``model.cascade_linear_part``.
"""
from __future__ import annotations

from torch import Tensor


def propagate(layer, x: Tensor, y: Tensor, c, prev_out: Tensor | None) -> Tensor:
    """Traces first (zoh), then the membrane driven by the updated traces."""
    m = layer.model
    Ey = c.decay(y)
    u, imp = m.cascade_inputs(x, prev_out)
    drive = (c.B @ u.unsqueeze(-1)).squeeze(-1) + c.c
    y = Ey + (c.F @ drive.unsqueeze(-1)).squeeze(-1) + imp
    return y + layer.dt * m.cascade_drive(y)


def check_model(model) -> None:
    """The cascade needs a model with traces in front of the membrane."""
    if not all(hasattr(model, a) for a in ("cascade_linear_part", "cascade_inputs", "cascade_drive",
                                           "trace_states")):
        raise ValueError(f"cascade=True needs a model with traces in front of the membrane "
                         f"(ctsnn.models.Traced), got {type(model).__name__}")
