// Fused multi-step kernel of ``DiscreteLayer``: the whole time loop of one discretised model in
// compiled code, parallel over neurons.  It executes the step matrices that ``discretize``
// derived from the model (E = exp(A dt) or dA = dt A, F c, the input vector, the event rows G,
// thresholds theta, jumps (J, k), output scales); it holds no dynamics of its own.  The
// arithmetic is the same, operation by operation and in the same order, as
// ``DiscreteLayer.step`` (sums over states left to right, no fused multiply-add: built with
// -ffp-contract=off), so both paths give bit-identical results (tests/test_kernels.py).
//
// Compile-time configuration (-D flags, one shared library per configuration, see build.py):
//   SCALAR float|double; NS states (1..3); NE events (1..2);
//   MODE 0 impulse (z = E a + Fc + w x), 1 zoh (z = E a + F (b x + c)),
//        2 impulse_start (z = E (a + w x) + Fc);
//   EULER 1: E a is evaluated as a + (dt A) a (the matrix passed is dt A);
//   AT_ZERO 1: s = [g >= 0], else [g > 0];  SIMUL 1: every event decided before any jump;
//   SPLIT 1: g = m - L with m = z_iv G_iv, L = theta - sum_{j != iv} G_j z_j (sinabs);
//   MULTI 1: n = trunc(m / L) [m > 0] spikes (translated states weighted by n);
//   HASMIN 1: z = max(z, lo) after the jumps;  IV: index of the clamp state;
//   PSHARED 1: one parameter column shared by all neurons (else one per neuron);
//   RDELAY 1|2: delayed reset (the previous step's jumps applied before | after the decay;
//   forward only);  SPARSE 1: the output as a list of nonzero events, not a dense [T, B, n];
//   INSTEP 1 (NS = NE = 1, MODE 1, exact): threshold crossings located inside the step in closed
//   form on the exact solution v(s) = v_inf + (v0 - v_inf) e^{A s} of the held drive, the jump
//   applied there and the rest of the step propagated from it (several events per step);
//   LINA 1: A != 0 for every neuron (LIF), 0: A = 0 for every neuron (IF).
//
// Parameters are per neuron, structure of arrays: P[p * n + j] (p as laid out by the offsets
// below).  G [NE][NS], J [NE][NS][NS], lo [NS] are shared by all neurons.
#include <cstdint>
#include <cmath>

#include "crossing.h"

#ifndef SCALAR
#define SCALAR float
#endif
typedef SCALAR T;
typedef int64_t i64;

#define SS (NS * NS)
// parameter offsets (rows of P)
#define P_E 0
#if MODE == 1
#define P_F (P_E + SS)
#define P_B (P_F + SS)
#define P_C (P_B + NS)
#define P_EV (P_C + NS)
#else
#define P_FC (P_E + SS)
#define P_W (P_FC + NS)
#define P_EV (P_W + NS)
#endif
#define P_TH P_EV
#define P_K (P_TH + NE)
#define P_SC (P_K + NE * NS)
#if INSTEP
#define P_A (P_SC + NE)
#define P_DT (P_A + 1)
#define P_NIA (P_DT + 1)  // -1/A (0 where A = 0), rounded once from float64
#define NP (P_NIA + 1)
#else
#define NP (P_SC + NE)
#endif
#define MAXEV 1000
// below this many element-steps a call runs on one thread (waking a team costs more)
#define PAR_MIN (1 << 16)
// PGRAD 0: no parameter needs a gradient, so backward accumulates none (the input and initial-state
// gradients are unchanged)
#ifndef PGRAD
#define PGRAD 1
#endif
#if PGRAD
#define ACC(a, v) ((a) += (double)(v))
#else
#define ACC(a, v) ((void)(a), (void)(v))  // no effect (and no unused-variable warning)
#endif

#include <cstdlib>
#include <vector>

// sparse output (SPARSE 1): the nonzero outputs as (step, flat element index, value), malloc'd
// here, copied and freed (ctsnn_free) by the caller; sorted by step, then element
struct Event {
    i64 t, m;
    T v, off;  // off: the in-step time of an INSTEP event (else -1: the end of the step)
};
struct Sparse {
    i64 n;
    i64* step;
    i64* index;
    T* value;
    T* offset;
};

// elements per block (blk, an argument of both entry points): the state of a block stays in
// cache while the time loop runs over it, and each step streams blk contiguous inputs and outputs
#define BLK blk

// parameter p of neuron j; PSHARED: every neuron shares the parameters (one column)
#if PSHARED
#define PV(p) P[(p)]
#else
#define PV(p) P[(p) * n + j]
#endif
// the row of parameter p for the block starting at neuron j0, read as R(p)[jj * PS] (one column,
// PS = 0, when every neuron shares the parameters)
#if PSHARED
#define PS 0
#define R(p) (P + (p))
#else
#define PS 1
#define R(p) (P + (p) * n + j0)
#endif

extern "C" int ctsnn_nparams() { return NP; }

static inline T heav(T g) {
#if AT_ZERO
    return g >= (T)0 ? (T)1 : (T)0;
#else
    return g > (T)0 ? (T)1 : (T)0;
#endif
}

// input map for one element: a (pre-step state) -> z (post-input state)
static inline void input_map(const T* a, T x, const T* P, i64 n, i64 j, T* z) {
    T ey[NS];
    for (int i = 0; i < NS; ++i) {
#if MODE == 2
        T acc = (a[0] + PV(P_W + 0) * x) * PV(P_E + i * NS + 0);
        for (int k = 1; k < NS; ++k) acc = acc + (a[k] + PV(P_W + k) * x) * PV(P_E + i * NS + k);
#else
        T acc = PV(P_E + i * NS + 0) * a[0];
        for (int k = 1; k < NS; ++k) acc = acc + PV(P_E + i * NS + k) * a[k];
#endif
        ey[i] = acc;
    }
#if EULER
    // y + (dA y): the torch path adds the increment to the state it was computed from
    for (int i = 0; i < NS; ++i) {
#if MODE == 2
        ey[i] = (a[i] + PV(P_W + i) * x) + ey[i];
#else
        ey[i] = a[i] + ey[i];
#endif
    }
#endif
#if MODE == 0
    for (int i = 0; i < NS; ++i) z[i] = (ey[i] + PV(P_FC + i)) + PV(P_W + i) * x;
#elif MODE == 1
    T d[NS];
    for (int k = 0; k < NS; ++k) d[k] = PV(P_B + k) * x + PV(P_C + k);
    for (int i = 0; i < NS; ++i) {
        T acc = PV(P_F + i * NS + 0) * d[0];
        for (int k = 1; k < NS; ++k) acc = acc + PV(P_F + i * NS + k) * d[k];
        z[i] = ey[i] + acc;
    }
#else
    for (int i = 0; i < NS; ++i) z[i] = ey[i] + PV(P_FC + i);
#endif
}

static inline T event_g(const T* z, const T* G, int e, const T* P, i64 n, i64 j) {
    T acc = z[0] * G[e * NS + 0];
    for (int k = 1; k < NS; ++k) acc = acc + z[k] * G[e * NS + k];
    return acc - PV(P_TH + e);
}

// increment u = (J z - z) + k of event e
static inline void jump_inc(const T* z, const T* J, int e, const T* P, i64 n, i64 j, T* u) {
    for (int i = 0; i < NS; ++i) {
        T acc = z[0] * J[(e * NS + i) * NS + 0];
        for (int k = 1; k < NS; ++k) acc = acc + z[k] * J[(e * NS + i) * NS + k];
        u[i] = (acc - z[i]) + PV(P_K + e * NS + i);
    }
}

// events and jumps of one element; z in/out; returns the output; g_out (if not null) gets g_e
static inline T events(T* z, const T* G, const T* J, const T* lo, const T* P, i64 n, i64 j, T* g_out) {
    T out = (T)0;
#if SIMUL
    T s[NE];
    for (int e = 0; e < NE; ++e) {
        T g = event_g(z, G, e, P, n, j);
        if (g_out) g_out[e] = g;
        s[e] = heav(g);
    }
    for (int e = 0; e < NE; ++e) {
        T u[NS];
        jump_inc(z, J, e, P, n, j, u);
        for (int i = 0; i < NS; ++i) z[i] = z[i] + s[e] * u[i];
    }
    for (int e = 0; e < NE; ++e) out = out + s[e] * PV(P_SC + e);
#else
    for (int e = 0; e < NE; ++e) {
        T s, cnt;
#if SPLIT
        T mem = z[IV] * G[e * NS + IV];
        T rest = (T)0;
        {
            T acc = (0 == IV ? (T)0 : G[e * NS + 0]) * z[0];
            for (int k = 1; k < NS; ++k) acc = acc + (k == IV ? (T)0 : G[e * NS + k]) * z[k];
            rest = acc;
        }
        T level = PV(P_TH + e) - rest;
        T g = mem - level;
        if (g_out) g_out[e] = g;
        s = heav(g);
#if MULTI
        T q = mem / level;
        cnt = std::trunc(q) * (mem > (T)0 ? (T)1 : (T)0);
        s = cnt >= (T)1 ? (T)1 : (T)0;
#else
        cnt = s;
#endif
#else
        T g = event_g(z, G, e, P, n, j);
        if (g_out) g_out[e] = g;
        s = heav(g);
        cnt = s;
#endif
        T u[NS];
        jump_inc(z, J, e, P, n, j, u);
        for (int i = 0; i < NS; ++i) {
#if MULTI
            T wgt = J[(e * NS + i) * NS + i] == (T)1 ? cnt : s;
#else
            T wgt = s;
#endif
            z[i] = z[i] + wgt * u[i];
        }
        out = out + cnt * PV(P_SC + e);
    }
#endif
#if HASMIN
    for (int i = 0; i < NS; ++i) z[i] = z[i] < lo[i] ? lo[i] : z[i];
#endif
    return out;
}

#if INSTEP
// One step with in-step events: z holds the grid step's end state E a + F d (from input_map);
// vs = a[0] is the state at the step start.  With v(s) = v_inf + (v0 - v_inf) e^{A s}
// (v_inf = -d / A), a crossing of v_th from v0 at time ts is at tau = ts + log1p(q) / A,
// q = (v_th - v0) / (v0 - v_inf), and e^{A (tau - ts)} = (v_th - v_inf) / (v0 - v_inf): the
// propagator over the rest of the step is e^{A (dt - ts)} (v0 - v_inf) / (v_th - v_inf), so no
// exponential is evaluated (tau itself, a log1p, only where it is recorded).  A = 0 (IF):
// tau = ts + (v_th - v0) / d.  Returns the output.
static inline T in_step(T vs, T* z, T x, const T* P, i64 n, i64 j, const T* G, const T* J, i64 t, i64 mm,
                        std::vector<Event>* evs, int* overflow, T ts, T rest, int cnt) {
    // (ts, rest = e^{A (dt - ts)}, cnt): where a previous call or pass stopped (0, E, 0 at the start)
    const T d = PV(P_B) * x + PV(P_C);
    const T A = PV(P_A), dt = PV(P_DT), th = PV(P_TH), g0 = G[0];
    const T vth = th / g0;
    const T vinf = d * PV(P_NIA);  // -d / A
    T o = (T)0;
    while (z[0] * g0 - th >= (T)0) {
        T tau = ts;
        const bool above = vs * g0 - th >= (T)0;  // at or above threshold already: tau = ts
        if (!above) {
            if (A != (T)0) {
                if (evs) tau = ts + crossing_time_leaky(vs, vth, vinf, A);
            } else {
                tau = ts + crossing_time_flat(vs, vth, d);
            }
        }
        if (!(tau >= ts)) tau = ts;
        if (!(tau <= dt)) tau = dt;
        o = o + PV(P_SC);
        if (evs) evs->push_back(Event{t, mm, PV(P_SC), tau});
        if (++cnt >= MAXEV) {
            *overflow = 1;
            break;
        }
        const T vprev = vs;
        vs = vth + ((vth * J[0] - vth) + PV(P_K));  // the jump, applied at the crossing
        if (A != (T)0) {
            rest = rest * (above ? (T)1 : crossing_decay(vprev, vth, vinf));
            if (rest > (T)1) rest = (T)1;
            z[0] = vinf + (vs - vinf) * rest;
        } else {
            ts = tau;
            z[0] = vs + d * (dt - tau);
        }
        ts = tau;
    }
    return o;
}
#endif

// Forward over T steps.  x[t, b, j] at x[t * sxt + b * sxb + j] (sxt may be 0: held input);
// blk elements per block; y0 [B, n, NS] the initial state, y [B, n, NS] gets the final one (y0
// may be y); out [T, B, n]; optional: states [T, B, n, NS] (state after each step), z0
// [T, B, n, NS] (state after the input, before the events) and g [T, B, n, NE] for backward.
extern "C" void ctsnn_forward(const T* x, i64 Tn, i64 sxt, i64 sxb, i64 B, i64 n, i64 blk, const T* y0,
                              T* y, const T* P, const T* G, const T* J, const T* lo, T* out, T* states,
                              T* z0s, T* gs,
                              int nthreads, Sparse* sp, int* flags) {
    const i64 nblk = (n + BLK - 1) / BLK;
    const i64 M = B * n;
#if SPARSE
    std::vector<std::vector<Event>> blocks(B * nblk);
#else
    (void)sp;
#endif
#pragma omp parallel for schedule(static) num_threads(nthreads) if (B * nblk > 1 && M * Tn >= PAR_MIN)
    for (i64 bb = 0; bb < B * nblk; ++bb) {
#if SPARSE
        std::vector<Event>& evs = blocks[bb];
#endif
        const i64 b = bb / nblk, j0 = (bb % nblk) * BLK;
        const i64 len = (j0 + BLK <= n) ? BLK : n - j0;
        std::vector<T> ysv(NS * BLK);
        T* ys = ysv.data();
#if INSTEP && SPARSE
        std::vector<i64> clv(BLK);  // elements at threshold after the grid step, and their start states
        std::vector<T> cav(BLK);
        i64* cl = clv.data();
        T* ca = cav.data();
#elif INSTEP
        std::vector<T> crv(BLK), ctv(BLK);  // after the first event: e^{A (dt - tau)}, and tau (A = 0)
        T* cr = crv.data();
        T* ct = ctv.data();
#endif
        for (i64 jj = 0; jj < len; ++jj)
            for (int i = 0; i < NS; ++i) ys[i * BLK + jj] = y0[(b * n + j0 + jj) * NS + i];
        for (i64 t = 0; t < Tn; ++t) {
            const T* xt = x + t * sxt + b * sxb + j0;
#if !SPARSE
            T* ot = out + t * M + b * n + j0;
#endif
#if INSTEP
#if SPARSE
            // the grid step of every element, a branch-free list of those that reach threshold, then
            // their in-step events (NS = NE = 1)
            const T g0 = G[0];
            i64 nc = 0;
            for (i64 jj = 0; jj < len; ++jj) {
                const i64 j = j0 + jj;
                T a[1] = {ys[jj]}, z[1];
                input_map(a, xt[jj], P, n, j, z);
                ys[jj] = z[0];
                cl[nc] = jj;
                ca[nc] = a[0];
                nc += (z[0] * g0 - PV(P_TH) >= (T)0) ? 1 : 0;
            }
            for (i64 c = 0; c < nc; ++c) {
                const i64 jj = cl[c], j = j0 + jj;
                T z[1] = {ys[jj]};
                in_step(ca[c], z, xt[jj], P, n, j, G, J, t, b * n + j, &evs, flags, (T)0, PV(P_E), 0);
                ys[jj] = z[0];
            }
#else
            // dense output: the grid step and the first in-step event of every element in simple
            // vectorised loops (no spike time is needed: see in_step); the rare elements still at
            // threshold after it continue in in_step
            const T g0 = G[0], J00 = J[0];
            int again = 0;
#if LINA
            T* __restrict zr = cr;
            const T* __restrict rNIA = R(P_NIA);
#else
            T* __restrict zt = ct;
            const T* __restrict rDT = R(P_DT);
#endif
            T* __restrict yv = ys;
            const T* __restrict xv = xt;
            T* __restrict ov = ot;
            const T* __restrict rTH = R(P_TH);
            const T* __restrict rB = R(P_B);
            const T* __restrict rC = R(P_C);
            const T* __restrict rE = R(P_E);
            const T* __restrict rF = R(P_F);
            const T* __restrict rK = R(P_K);
            const T* __restrict rSC = R(P_SC);
            for (i64 jj = 0; jj < len; ++jj) {  // the grid step and the first event
                const i64 k = jj * PS;
                const T a0 = yv[jj], th = rTH[k], vth = th / g0;
                const T d = rB[k] * xv[jj] + rC[k];
                const T z0 = rE[k] * a0 + rF[k] * d;  // input_map (NS = 1, MODE 1, exact)
                const T ga = a0 * g0 - th, gz = z0 * g0 - th;
                const T vp = vth + ((vth * J00 - vth) + rK[k]);
#if LINA
                const T vinf = d * rNIA[k];
                const T ratio = crossing_decay(a0, vth, vinf);  // e^{-A tau} of the first crossing
                const T rl = rE[k] * (ga >= (T)0 ? (T)1 : ratio);
                const T rest = rl > (T)1 ? (T)1 : rl;
                const T zn = vinf + (vp - vinf) * rest;
                zr[jj] = rest;
#else
                const T ql = crossing_time_flat(a0, vth, d);  // A = 0: the crossing time
                const T q = ga >= (T)0 ? (T)0 : ql;
                const T zn = vp + d * (rDT[k] - q);
                zt[jj] = q;
#endif
                const T zf = gz >= (T)0 ? zn : z0;
                yv[jj] = zf;
                ov[jj] = (gz >= (T)0 ? (T)1 : (T)0) * rSC[k];  // = sc or 0, exactly
                again += (gz >= (T)0 && zf * g0 - th >= (T)0) ? 1 : 0;
            }
            if (again)
                for (i64 jj = 0; jj < len; ++jj) {
                    const i64 j = j0 + jj;
                    if (!(ot[jj] != (T)0 && ys[jj] * g0 - PV(P_TH) >= (T)0)) continue;
                    T z[1] = {ys[jj]};
                    const T vp = PV(P_TH) / g0 + ((PV(P_TH) / g0 * J00 - PV(P_TH) / g0) + PV(P_K));
                    ot[jj] = ot[jj] + in_step(vp, z, xt[jj], P, n, j, G, J, t, b * n + j, nullptr, flags, ct[jj],
                                              cr[jj], 1);  // (tau, e^{A (dt - tau)}) of the first event
                    ys[jj] = z[0];
                }
#endif
            if (states)
                for (i64 jj = 0; jj < len; ++jj) states[t * M + b * n + j0 + jj] = ys[jj];
#else
#if !RDELAY && !SPARSE
            if (!z0s && !gs && !states) {  // nothing stored per step: a loop the compiler vectorises
                T* __restrict ysr = ys;
                const T* __restrict xr = xt;
                T* __restrict orow = ot;
                for (i64 jj = 0; jj < len; ++jj) {
                    const i64 j = j0 + jj;
                    T a[NS], z[NS];
                    for (int i = 0; i < NS; ++i) a[i] = ysr[i * BLK + jj];
                    input_map(a, xr[jj], P, n, j, z);
                    orow[jj] = events(z, G, J, lo, P, n, j, nullptr);
                    for (int i = 0; i < NS; ++i) ysr[i * BLK + jj] = z[i];
                }
                continue;
            }
#endif
#pragma GCC ivdep
            for (i64 jj = 0; jj < len; ++jj) {
                const i64 j = j0 + jj;
                T a[NS], z[NS];
                for (int i = 0; i < NS; ++i) a[i] = ys[i * BLK + jj];
                const i64 m = t * M + b * n + j;
#if RDELAY
                // delayed reset: the carried state is pre-reset; its spikes' jumps are applied now
                T sp[NE];
                for (int e = 0; e < NE; ++e) sp[e] = heav(event_g(a, G, e, P, n, j));
#if RDELAY == 1
                for (int e = 0; e < NE; ++e) {
                    T u[NS];
                    jump_inc(a, J, e, P, n, j, u);
                    for (int i = 0; i < NS; ++i) a[i] = a[i] + sp[e] * u[i];
                }
#endif
                input_map(a, xt[jj], P, n, j, z);
#if RDELAY == 2
                for (int e = 0; e < NE; ++e) {
                    T u[NS];
                    jump_inc(z, J, e, P, n, j, u);
                    for (int i = 0; i < NS; ++i) z[i] = z[i] + sp[e] * u[i];
                }
#endif
                T o = (T)0;
                for (int e = 0; e < NE; ++e) o = o + heav(event_g(z, G, e, P, n, j)) * PV(P_SC + e);
#else
                input_map(a, xt[jj], P, n, j, z);
                if (z0s)
                    for (int i = 0; i < NS; ++i) z0s[m * NS + i] = z[i];
                T o = events(z, G, J, lo, P, n, j, gs ? gs + m * NE : nullptr);
#endif
#if SPARSE
                if (o != (T)0) evs.push_back(Event{t, b * n + j, o, (T)-1});
#else
                ot[jj] = o;
#endif
                if (states)
                    for (int i = 0; i < NS; ++i) states[m * NS + i] = z[i];
                for (int i = 0; i < NS; ++i) ys[i * BLK + jj] = z[i];
            }
#endif
        }
        for (i64 jj = 0; jj < len; ++jj)
            for (int i = 0; i < NS; ++i) y[(b * n + j0 + jj) * NS + i] = ys[i * BLK + jj];
    }
#if SPARSE
    i64 total = 0;
    for (auto& v : blocks) total += (i64)v.size();
    sp->n = total;
    sp->step = (i64*)std::malloc(sizeof(i64) * (total ? total : 1));
    sp->index = (i64*)std::malloc(sizeof(i64) * (total ? total : 1));
    sp->value = (T*)std::malloc(sizeof(T) * (total ? total : 1));
    sp->offset = (T*)std::malloc(sizeof(T) * (total ? total : 1));
    // counting sort by step; blocks are in element order, so each step's events come out sorted by
    // element (and one element's events in one step in time order)
    std::vector<i64> pos(Tn + 1, 0);
    for (auto& v : blocks)
        for (auto& e : v) ++pos[e.t + 1];
    for (i64 t = 0; t < Tn; ++t) pos[t + 1] += pos[t];
    for (auto& v : blocks)
        for (auto& e : v) {
            const i64 k = pos[e.t]++;
            sp->step[k] = e.t;
            sp->index[k] = e.m;
            sp->value[k] = e.v;
            sp->offset[k] = e.off;
        }
#endif
}

extern "C" void ctsnn_free(void* p) { std::free(p); }

#if !SPLIT && !SIMUL && !HASMIN && !RDELAY && !INSTEP
// Backward (reverse time) of the non-split, sequential-event step with soft jumps
// y <- y + s_e (J_e y + k_e - y):
//   dL/dz^(e) = lam + s_e (J_e^T lam - lam) + dg_e G_e,
//   dg_e = dsdg_e (lam . u_e [unless DETACH] + go sc_e),   u_e = J_e z^(e) - z^(e) + k_e,
// then through the input map.  dsdg [T, B, n, NE] is the surrogate's ds/dg at the saved g (the
// caller evaluates the surrogate).  Inputs: x, y_init [B, n, NS], z0 [T, B, n, NS], gout
// [T, B, n] (dL/dout), gst [T, B, n, NS] (dL/dstates, may be null), lam [B, n, NS] in: dL/dy_T, out: dL/dy_init.  Outputs: gx [T, B, n] (may
// be null), gP [NP, B, n] summed over time, in double.
extern "C" void ctsnn_backward(const T* x, i64 Tn, i64 sxt, i64 sxb, i64 B, i64 n, i64 blk, const T* yinit,
                               const T* P, const T* G, const T* J, const T* z0s, const T* dsdg,
                               const T* gout, const T* gst, T* lam, T* gx, double* gP, int detach,
                               int nthreads) {
    const i64 M = B * n;
    const i64 nblk = (n + BLK - 1) / BLK;
#pragma omp parallel for schedule(static) num_threads(nthreads) if (B * nblk > 1 && M * Tn >= PAR_MIN)
    for (i64 bb = 0; bb < B * nblk; ++bb) {
        const i64 b = bb / nblk, j0 = (bb % nblk) * BLK;
        const i64 len = (j0 + BLK <= n) ? BLK : n - j0;
        std::vector<double> accv(NP * BLK);
        std::vector<T> lsv(NS * BLK);
        double* acc = accv.data();
        T* ls = lsv.data();
        for (int p = 0; p < NP; ++p)
            for (i64 jj = 0; jj < len; ++jj) acc[p * BLK + jj] = 0.0;
        for (i64 jj = 0; jj < len; ++jj)
            for (int i = 0; i < NS; ++i) ls[(i) * BLK + jj] = lam[(b * n + j0 + jj) * NS + i];
#if NS == 1 && NE == 1
        // one state, one event (LIF, IF): the same recursion as the general loop below, written
        // so that it vectorises (row pointers, no per-element branch or conditional load)
        std::vector<T> zero(BLK, (T)0), scratch(BLK);
        const T* __restrict rE = R(P_E);
        const T* __restrict rTH = R(P_TH);
        const T* __restrict rK = R(P_K);
        const T* __restrict rSC = R(P_SC);
#if MODE == 1
        const T* __restrict rF = R(P_F);
        const T* __restrict rB = R(P_B);
        const T* __restrict rC = R(P_C);
#else
        const T* __restrict rW = R(P_W);
#endif
        const T G0 = G[0], J00 = J[0];
        double* __restrict aTH = acc + P_TH * BLK;
        double* __restrict aSC = acc + P_SC * BLK;
        double* __restrict aK = acc + P_K * BLK;
        double* __restrict aE = acc + P_E * BLK;
#if MODE == 1
        double* __restrict aF = acc + P_F * BLK;
        double* __restrict aB = acc + P_B * BLK;
        double* __restrict aC = acc + P_C * BLK;
#else
        double* __restrict aFC = acc + P_FC * BLK;
#endif
        T* __restrict lv = ls;
        for (i64 t = Tn - 1; t >= 0; --t) {
            const i64 mt0 = t * M + b * n + j0;
            const T* __restrict xr = x + t * sxt + b * sxb + j0;
            const T* __restrict zr = z0s + mt0;
            const T* __restrict zp = t > 0 ? z0s + mt0 - M : zero.data();
            const T* __restrict yi = yinit + b * n + j0;
            const T* __restrict dr = dsdg + mt0;
            const T* __restrict gr = gout + mt0;
            const T* __restrict sr = gst ? gst + mt0 : zero.data();
            T* __restrict gxr = gx ? gx + mt0 : scratch.data();
            const T keep = t > 0 ? (T)1 : (T)0;  // the pre-step state: previous post-event state, or yinit
            for (i64 jj = 0; jj < len; ++jj) {
                const i64 k = jj * PS;
                const T th = rTH[k], kk = rK[k], xv = xr[jj], go = gr[jj];
                const T l = lv[jj] + sr[jj];
                const T z0 = zr[jj];
                const T s = heav(z0 * G0 - th);
                const T u = (z0 * J00 - z0) + kk;
                const T ds0 = go * rSC[k];
                const T ds = detach ? ds0 : ds0 + l * u;
                const T dg = ds * dr[jj];
                ACC(aTH[jj], -dg);
                ACC(aSC[jj], go * s);
                ACC(aK[jj], s * l);
                const T l1 = (l + s * (J00 * l - l)) + dg * G0;
                const T zq = zp[jj];
                const T sq = heav(zq * G0 - th);
                const T aprev = zq + sq * ((zq * J00 - zq) + kk);
                const T a = keep != (T)0 ? aprev : yi[jj];
#if MODE == 2
                const T src = a + rW[k] * xv;
#else
                const T src = a;
#endif
#if MODE == 0
                ACC(aFC[jj], l1);
                T gxv = rW[k] * l1;
#elif MODE == 1
                const T dd = rF[k] * l1;
                const T dk = rB[k] * xv + rC[k];
                ACC(aF[jj], l1 * dk);
                ACC(aB[jj], dd * xv);
                ACC(aC[jj], dd);
                T gxv = rB[k] * dd;
#else
                ACC(aFC[jj], l1);
                T gxv = (T)0;
#endif
                ACC(aE[jj], l1 * src);
#if EULER
                const T nl = l1 + rE[k] * l1;
#else
                const T nl = rE[k] * l1;
#endif
#if MODE == 2
                gxv = rW[k] * nl;
#endif
                gxr[jj] = gxv;
                lv[jj] = nl;
            }
        }
#else
        for (i64 t = Tn - 1; t >= 0; --t) {
            for (i64 jj = 0; jj < len; ++jj) {
                const i64 j = j0 + jj, m = b * n + j, mt = t * M + m;
                const T xv = x[t * sxt + b * sxb + j];
                (void)xv;  // MODE 0 does not need it
                const T go = gout[mt];
                T l[NS];
                for (int i = 0; i < NS; ++i) l[i] = gst ? ls[(i) * BLK + jj] + gst[mt * NS + i] : ls[(i) * BLK + jj];
                // recompute the event chain from z0
                T zc[NE + 1][NS], u[NE][NS], s[NE];
                for (int i = 0; i < NS; ++i) zc[0][i] = z0s[mt * NS + i];
                for (int e = 0; e < NE; ++e) {
                    s[e] = heav(event_g(zc[e], G, e, P, n, j));
                    jump_inc(zc[e], J, e, P, n, j, u[e]);
                    for (int i = 0; i < NS; ++i) zc[e + 1][i] = zc[e][i] + s[e] * u[e][i];
                }
                for (int e = NE - 1; e >= 0; --e) {
                    T ds = go * PV(P_SC + e);
                    if (!detach) {
                        T dot = (T)0;
                        for (int i = 0; i < NS; ++i) dot = dot + l[i] * u[e][i];
                        ds = ds + dot;
                    }
                    const T dg = ds * dsdg[mt * NE + e];
                    ACC(acc[(P_TH + e) * BLK + jj], -dg);
                    ACC(acc[(P_SC + e) * BLK + jj], go * s[e]);
                    for (int i = 0; i < NS; ++i) ACC(acc[(P_K + e * NS + i) * BLK + jj], s[e] * l[i]);
                    T nl[NS];
                    for (int i = 0; i < NS; ++i) {
                        T jt = (T)0;
                        for (int k = 0; k < NS; ++k) jt = jt + J[(e * NS + k) * NS + i] * l[k];
                        nl[i] = l[i] + s[e] * (jt - l[i]) + dg * G[e * NS + i];
                    }
                    for (int i = 0; i < NS; ++i) l[i] = nl[i];
                }
                // l = dL/dz0; the pre-step state a: the previous step's post-event state
                T a[NS];
                if (t > 0) {
                    const i64 mp = mt - M;
                    for (int i = 0; i < NS; ++i) a[i] = z0s[mp * NS + i];
                    for (int e = 0; e < NE; ++e) {
                        T se = heav(event_g(a, G, e, P, n, j)), ue[NS];
                        jump_inc(a, J, e, P, n, j, ue);
                        for (int i = 0; i < NS; ++i) a[i] = a[i] + se * ue[i];
                    }
                } else {
                    for (int i = 0; i < NS; ++i) a[i] = yinit[m * NS + i];
                }
                T src[NS];  // the vector E multiplies
#if MODE == 2
                for (int k = 0; k < NS; ++k) src[k] = a[k] + PV(P_W + k) * xv;
#else
                for (int k = 0; k < NS; ++k) src[k] = a[k];
#endif
                T gxv = (T)0;
#if MODE == 0
                for (int i = 0; i < NS; ++i) {
                    ACC(acc[(P_FC + i) * BLK + jj], l[i]);
                    gxv = gxv + PV(P_W + i) * l[i];
                }
#elif MODE == 1
                for (int k = 0; k < NS; ++k) {
                    T dd = (T)0;
                    for (int i = 0; i < NS; ++i) dd = dd + PV(P_F + i * NS + k) * l[i];
                    const T dk = PV(P_B + k) * xv + PV(P_C + k);
                    for (int i = 0; i < NS; ++i) ACC(acc[(P_F + i * NS + k) * BLK + jj], l[i] * dk);
                    ACC(acc[(P_B + k) * BLK + jj], dd * xv);
                    ACC(acc[(P_C + k) * BLK + jj], dd);
                    gxv = gxv + PV(P_B + k) * dd;
                }
#else
                for (int i = 0; i < NS; ++i) ACC(acc[(P_FC + i) * BLK + jj], l[i]);
#endif
                for (int i = 0; i < NS; ++i)
                    for (int k = 0; k < NS; ++k) ACC(acc[(P_E + i * NS + k) * BLK + jj], l[i] * src[k]);
                T nl[NS];
                for (int k = 0; k < NS; ++k) {
                    T v = (T)0;
                    for (int i = 0; i < NS; ++i) v = v + PV(P_E + i * NS + k) * l[i];
#if EULER
                    v = l[k] + v;
#endif
                    nl[k] = v;
                }
#if MODE == 2
                for (int k = 0; k < NS; ++k) gxv = gxv + PV(P_W + k) * nl[k];
#endif
                if (gx) gx[mt] = gxv;
                for (int k = 0; k < NS; ++k) ls[(k) * BLK + jj] = nl[k];
            }
        }
#endif
        for (i64 jj = 0; jj < len; ++jj) {
            const i64 m = b * n + j0 + jj;
            for (int i = 0; i < NS; ++i) lam[m * NS + i] = ls[(i) * BLK + jj];
            if (gP)
                for (int p = 0; p < NP; ++p) gP[p * M + m] = acc[(p) * BLK + jj];
        }
    }
}
#endif
