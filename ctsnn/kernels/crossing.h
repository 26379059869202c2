// The threshold crossing of one state under a held drive, in closed form: the one place it is
// written for the compiled code (step.cpp's in-step events of discretize, and the event engine's
// first guess for one-state models). Its Python mirror is ctsnn.events.crossing_time (discretize's
// torch in-step path); tests/test_events.py checks that the two give the same spike times.
//
// With dv/ds = A v + d (A = -1/tau, or 0 for IF) the exact solution from v0 is
//   v(s) = v_inf + (v0 - v_inf) e^{A s},  v_inf = -d / A          (A != 0)
//   v(s) = v0 + d s                                               (A == 0)
// so v reaches v_th after
//   tau = log1p((v_th - v0) / (v0 - v_inf)) / A                   (A != 0)
//   tau = (v_th - v0) / d                                         (A == 0),
// and moving the start of a propagation from 0 to tau divides its factor e^{A s} by
//   e^{A tau} = (v_th - v_inf) / (v0 - v_inf),
// i.e. multiplies it by crossing_decay = (v0 - v_inf) / (v_th - v_inf), with no exponential.
#pragma once
#include <cmath>

template <class T>
static inline T crossing_time_leaky(T v0, T vth, T vinf, T A) {
    return std::log1p((vth - v0) / (v0 - vinf)) / A;
}

template <class T>
static inline T crossing_time_flat(T v0, T vth, T d) {
    return (vth - v0) / d;
}

template <class T>
static inline T crossing_decay(T v0, T vth, T vinf) {
    return (v0 - vinf) / (vth - vinf);
}
