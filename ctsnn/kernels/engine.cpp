// Event engine for models that are linear below threshold (see ctsnn/engine.py).
//
// It executes what the model declares and nothing else: per parameter group the linear part
// (A, B, c) of dy/dt = A y + B u + c, the event rows G and offsets theta (g_e = G_e . y -
// theta_e, a spike on the upward zero crossing), the jump maps y+ = J_e y- + k_e, the output
// value of each event, the refractory period and the index of the clamped state.  Input spikes
// arrive as state increments (the model's ``spike_input``), projections add w * value to one
// target state after a delay.
//
// Per element (one neuron of one batch row) and grid step [t0, t0 + h] the state is propagated
// exactly (y(s) = E(s) y + F(s) b) from input to input: whole steps with E(dt), F(dt) from
// [[E, F], [0, I]] = exp([[A, I], [0, 0]] dt) (Taylor series after scaling, then squaring; once
// per parameter group), a cut of length L with the polynomial y + L phi_1(L A) (A y + b) whose
// coefficients A^k / (k + 1)! are tabulated per group (substep_table; no exponential per input).  Each stretch is checked for
// an upward crossing (end-point sign change, or for S > 1 a maximum of g above 0 inside it:
// dg/dt > 0 at the start and < 0 at the end), which is located on the exact solution by the
// Illinois method (the maximum first, where there is one); the state is propagated to it, the
// jump applied and integration resumed, so several events per step are handled in order.
// Refractory elements hold the clamped state and are released at their exact time.  The
// decisions (armed events, immediate events, release, tolerances) follow the torch path of
// ``simulate(method="exact")`` (ctsnn/solvers/exact.py) step for step, so both give the same
// spike times to rounding.
//
// Elements are independent within a step (projection delays are >= dt), and within a slice of
// L = floor(d_min / dt) - 1 steps (d_min the shortest delay; nothing sent inside a slice arrives
// inside it), so each slice runs in parallel over elements; its spikes then cross the
// projections, step by step, into a ring buffer of ceil(max_delay / dt) + 2 slots, one list per
// (slot, post element).
//
// Compile-time configuration: NS states (1..8), NE events (1..2).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <time.h>
#include <vector>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "crossing.h"

#ifndef NS
#define NS 1
#endif
#ifndef NE
#define NE 1
#endif

typedef int64_t i64;
// lanes of the lockstep fast path: NV vectors of VW doubles (GCC/Clang vector extensions)
#define VW 4
#define NV 2
#define LANES (VW * NV)
typedef double vd __attribute__((vector_size(8 * VW)));
typedef long long vl __attribute__((vector_size(8 * VW)));
static const double INF = std::numeric_limits<double>::infinity();
static const double EPS = std::numeric_limits<double>::epsilon();

// --------------------------------------------------------------------------- propagator
// (E, F) of dy/dt = A y + b over tau.  NS = 1: E = e^{a tau}, F = tau phi_1(a tau).  Otherwise
// the augmented exponential in block form: with X = [[A tau, I tau], [0, 0]] / 2^q every power
// keeps the form [[P, Q], [0, 0]], so Horner's scheme R = I + X R / k runs on the two S x S
// blocks (R11 <- I + A' R11 / k, R12 <- (A' R12 + I tau') / k), and squaring
// [[R11, R12], [0, I]]^2 = [[R11^2, R11 R12 + R12], [0, I]].
struct Prop {
    double E[NS * NS], F[NS * NS];
};

static void propagator(const double* A, double tau, Prop& P) {
#if NS == 1
    const double x = A[0] * tau;
    P.E[0] = std::exp(x);
    P.F[0] = x == 0.0 ? tau : tau * (std::expm1(x) / x);
#else
    double norm = tau;  // columns of the identity block
    for (int j = 0; j < NS; ++j) {
        double s = 0.0;
        for (int i = 0; i < NS; ++i) s += std::fabs(A[i * NS + j] * tau);
        norm = std::max(norm, s);
    }
    int q = 0;  // the smallest q with norm / 2^q <= 1/2
    if (norm > 0.5) {
        int ex;
        const double mant = std::frexp(norm / 0.5, &ex);  // norm / 0.5 = mant 2^ex, mant in [1/2, 1)
        q = mant == 0.5 ? ex - 1 : ex;
    }
    const double sc = std::ldexp(1.0, -q);
    double X[NS * NS];
    for (int i = 0; i < NS * NS; ++i) X[i] = (A[i] * tau) * sc;
    const double ts = tau * sc;
    // the degree: the smallest m (<= 18) whose truncation term theta^(m+1) / (m+1)! is below
    // 2^-56 for the scaled norm theta <= 1/2 (m = 18 at theta = 1/2 leaves 2e-23, far below)
    const double theta = norm * sc;
    int deg = 1;
    for (double term = theta; deg < 18; ++deg) {
        term = term * theta / (deg + 1);
        if (term <= 1.3877787807814457e-17) break;
    }
    double R1[NS * NS], R2[NS * NS], T1[NS * NS], T2[NS * NS];
    for (int i = 0; i < NS; ++i)
        for (int j = 0; j < NS; ++j) {
            R1[i * NS + j] = (i == j ? 1.0 : 0.0) + X[i * NS + j] / deg;
            R2[i * NS + j] = (i == j ? ts : 0.0) / deg;
        }
    static const double inv[18] = {0, 1.0, 1.0 / 2, 1.0 / 3, 1.0 / 4, 1.0 / 5, 1.0 / 6, 1.0 / 7, 1.0 / 8,
                                   1.0 / 9, 1.0 / 10, 1.0 / 11, 1.0 / 12, 1.0 / 13, 1.0 / 14, 1.0 / 15,
                                   1.0 / 16, 1.0 / 17};
    for (int k = deg - 1; k >= 1; --k) {
        const double ik = inv[k];
        for (int i = 0; i < NS; ++i)
            for (int j = 0; j < NS; ++j) {
                double a = 0.0, b = 0.0;
                for (int l = 0; l < NS; ++l) {
                    a += X[i * NS + l] * R1[l * NS + j];
                    b += X[i * NS + l] * R2[l * NS + j];
                }
                T1[i * NS + j] = (i == j ? 1.0 : 0.0) + a * ik;
                T2[i * NS + j] = (b + (i == j ? ts : 0.0)) * ik;
            }
        std::memcpy(R1, T1, sizeof R1);
        std::memcpy(R2, T2, sizeof R2);
    }
    for (int r = 0; r < q; ++r) {
        for (int i = 0; i < NS; ++i)
            for (int j = 0; j < NS; ++j) {
                double a = 0.0, b = 0.0;
                for (int l = 0; l < NS; ++l) {
                    a += R1[i * NS + l] * R1[l * NS + j];
                    b += R1[i * NS + l] * R2[l * NS + j];
                }
                T1[i * NS + j] = a;
                T2[i * NS + j] = b + R2[i * NS + j];
            }
        std::memcpy(R1, T1, sizeof R1);
        std::memcpy(R2, T2, sizeof R2);
    }
    std::memcpy(P.E, R1, sizeof R1);
    std::memcpy(P.F, R2, sizeof R2);
#endif
}

// y(L) for a sub-step L without a matrix exponential (S > 1): with w = A y + b,
//   y(L) = y + L phi_1(L A) w,   phi_1(X) = sum_k X^k / (k + 1)!,
// evaluated by Horner's scheme on the vector (v <- w + (L / (j + 1)) A v, j = K..1) with the
// smallest degree K whose first omitted term theta^(K+1) / (K+2)! (theta = L ||A||_1) is below
// 2^-56.  It only uses A and b of the model, needs no special case for coincident eigenvalues
// (tau_syn = tau_mem) and costs K matrix-vector products (K = 6..10 for theta <= 0.05, the
// W6 workloads); the caller uses it for theta <= 1/2 (A is balanced, so theta is of the size of
// L / tau) and the scaled exponential otherwise.
static const double SUBSTEP_THETA = 0.5;

// The two polynomials' shared start: w = A y0 + b (the rate at y0), and the degree K, the
// smallest whose first omitted term (L |A|)^(K+1) / (K+2)! is below 2^-56 (at most 30).
static inline int substep_start(const double* A, const double* b, const double* y0, double L, double anorm,
                                double* w) {
    for (int i = 0; i < NS; ++i) {
        double s = 0.0;
        for (int j = 0; j < NS; ++j) s += A[i * NS + j] * y0[j];
        w[i] = s + b[i];
    }
    const double theta = L * anorm;
    int K = 0;
    for (double c = 0.5 * theta; c > 1.3877787807814457e-17 && K < 30;) {
        ++K;
        c *= theta / (K + 2);
    }
    return K;
}

static inline void substep(const double* A, const double* b, const double* y0, double L, double anorm,
                           double* out) {
    double w[NS], v[NS], t[NS];
    const int K = substep_start(A, b, y0, L, anorm, w);
    for (int i = 0; i < NS; ++i) v[i] = w[i];
    for (int j = K; j >= 1; --j) {
        const double f = L / (j + 1);
        for (int i = 0; i < NS; ++i) {
            double s = 0.0;
            for (int l = 0; l < NS; ++l) s += A[i * NS + l] * v[l];
            t[i] = s;
        }
        for (int i = 0; i < NS; ++i) v[i] = w[i] + t[i] * f;
    }
    for (int i = 0; i < NS; ++i) out[i] = y0[i] + L * v[i];
}

// The same polynomial with the matrix coefficients C_k = A^k / (k + 1)! precomputed per group
// (phi_1(L A) = sum_k L^k C_k by Horner's scheme in the scalar L, the S^2 entries independent,
// then one matrix-vector product): used where the group's table exists (degree <= kmax).
static inline void substep_table(const double* C, int kmax, const double* A, const double* b,
                                 const double* y0, double L, double anorm, double* out) {
    double w[NS], P[NS * NS];
    const int K = substep_start(A, b, y0, L, anorm, w);
    if (K > kmax) {
        substep(A, b, y0, L, anorm, out);
        return;
    }
    for (int q = 0; q < NS * NS; ++q) P[q] = C[K * NS * NS + q];
    for (int k = K - 1; k >= 0; --k)
        for (int q = 0; q < NS * NS; ++q) P[q] = P[q] * L + C[k * NS * NS + q];
    for (int i = 0; i < NS; ++i) {
        double s = 0.0;
        for (int j = 0; j < NS; ++j) s += P[i * NS + j] * w[j];
        out[i] = y0[i] + L * s;
    }
}

static inline double norm1(const double* A) {  // max column sum of |A|
    double nrm = 0.0;
    for (int j = 0; j < NS; ++j) {
        double s = 0.0;
        for (int i = 0; i < NS; ++i) s += std::fabs(A[i * NS + j]);
        nrm = std::max(nrm, s);
    }
    return nrm;
}

static inline void apply(const Prop& P, const double* y, const double* b, double* out) {
    for (int i = 0; i < NS; ++i) {
        double a = 0.0, c = 0.0;
        for (int j = 0; j < NS; ++j) a += P.E[i * NS + j] * y[j];
        for (int j = 0; j < NS; ++j) c += P.F[i * NS + j] * b[j];
        out[i] = a + c;
    }
}

// --------------------------------------------------------------------------- model data
struct Model {
    // per parameter group g (ng groups; element m uses group (m % n) when ng > 1, else 0)
    const double* A;      // [ng, S, S]
    const double* Bm;     // [ng, S, U]
    const double* c;      // [ng, S]
    const double* theta;  // [ng, E]
    const double* kj;     // [ng, E, S]
    const double* val;    // [ng, E]  output value of each event (sign * scale)
    const double* tref;   // [ng] or null
    const double* G;      // [E, S]
    const double* J;      // [E, S, S]
    const double* D;      // [S] state scaling (powers of two): stored state = y / D
    int U, ic, hidden;
    i64 n, ng;
    double dt;
    std::vector<Prop> Pdt;  // E(dt), F(dt) per group
    std::vector<double> anorm;  // ||A||_1 per group (the sub-step degree)
    int kmax = -1;              // degree of the coefficient tables (-1: none)
    std::vector<double> coef;   // per group C_0 .. C_kmax (A^k / (k + 1)!), [ng, kmax + 1, S, S]
};

struct Spike {
    double t;
    i64 elem;
    i64 seq;
    int e;
    double pre[NS], post[NS];
};

struct Fired {  // a spike of an element, for the projections: its step, offset in it, event
    i64 k;
    double off;
    int e;
};

struct Arrival {
    double t;
    int target;
    double amount;
};

struct InputRef {  // one input inside the current step
    double t;
    int kind;     // 0: external (inc row), 1: single-state increment
    i64 ref;      // row of the external increments, or the target state
    double amount;
};

static double thread_cpu_now() {  // CPU seconds of the calling thread
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

struct Result {
    std::vector<Spike> spikes;
    std::vector<double> thread_cpu;  // CPU seconds of each thread in the parallel region
    int status = 0;  // 0 ok, 1 too many events
    i64 bad_elem = -1;
    double bad_t = 0.0;
};

// splitmix64: the Poisson sources' random stream (mirrored in ctsnn/network.py)
static inline uint64_t splitmix64(uint64_t& s) {
    uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline double next_interval(uint64_t& s, double rate) {
    const double u = (double)((splitmix64(s) >> 11) + 1) * 0x1.0p-53;  // (0, 1]
    return -std::log(u) / rate;
}

// --------------------------------------------------------------------------- one element
struct Elem {
    double y[NS];
    bool armed[NE];
    double ref_until;
    double clamp_val;
    i64 seq;
};

struct Stepper {
    const Model& M;
    const double* Ag;
    const double* th;
    const double* kg;
    const double* vg;
    double tr;
    bool has_ref;
    double b[NS];  // drive B u + c of this step
    double t0;
    i64 m;
    Elem* el;
    std::vector<Spike>* out;
    std::vector<Fired>* fired;  // the element's spikes of this slice of steps, for projections
    int max_events;
    Result* res;
    int stop = 0;
    const Prop* Pdt = nullptr;  // E(dt), F(dt) of the group (the same numbers as propagator(A, dt))
    double anorm = 0.0;         // ||A||_1 of the group
    const double* coef = nullptr;  // its table C_k (or null)
    i64 kstep = 0;                 // the grid step (t0 = kstep dt)

    inline void gvals(const double* y, double* g) const {
        for (int e = 0; e < NE; ++e) {
            double s = 0.0;
            for (int i = 0; i < NS; ++i) s += y[i] * M.G[e * NS + i];
            g[e] = s - th[e];
        }
    }
    inline void gdots(const double* y, double* gd) const {  // G (A y + b)
        double f[NS];
        for (int i = 0; i < NS; ++i) {
            double s = 0.0;
            for (int j = 0; j < NS; ++j) s += Ag[i * NS + j] * y[j];
            f[i] = s + b[i];
        }
        for (int e = 0; e < NE; ++e) {
            double s = 0.0;
            for (int i = 0; i < NS; ++i) s += f[i] * M.G[e * NS + i];
            gd[e] = s;
        }
    }
    inline void prop(const double* y0, double L, double* out_) const {
        if (L == 0.0) {
            for (int i = 0; i < NS; ++i) out_[i] = y0[i];
            return;
        }
        if (L == M.dt) {
            apply(*Pdt, y0, b, out_);
            return;
        }
#if NS > 1
        if (L * anorm <= SUBSTEP_THETA) {
            if (coef) substep_table(coef, M.kmax, Ag, b, y0, L, anorm, out_);
            else substep(Ag, b, y0, L, anorm, out_);
            return;
        }
#endif
        Prop P;
        propagator(Ag, L, P);
        apply(P, y0, b, out_);
    }
    inline bool in_ref_at(double s) const { return has_ref && (el->ref_until - t0) > s; }

    // Illinois method on f with f(lo) < 0 <= f(hi): the bracket end hi once hi - lo <= xtol
    template <class F>
    double illinois(F f, double lo, double hi, double flo, double fhi, double xtol) const {
        int side = 0;
        for (int it = 0; it < 200; ++it) {
            if (!(hi - lo > xtol)) break;
            const double denom = fhi - flo;
            double x = hi - fhi * (hi - lo) / (denom > 0 ? denom : 1.0);
            const double mid = 0.5 * (lo + hi);
            if (!((x > lo) && (x < hi) && (denom > 0))) x = mid;
            const double fx = f(x);
            const bool up = fx >= 0, down = fx < 0;
            if (up && side == 1) flo = 0.5 * flo;
            if (down && side == -1) fhi = 0.5 * fhi;
            if (up) { hi = x; fhi = fx; side = 1; }
            if (down) { lo = x; flo = fx; side = -1; }
            if (fx == 0) { lo = x; hi = x; }
        }
        return hi;
    }

    // earliest event of the element in (s, bnd]: (time, event); event -1: refractory release
    // safeguarded Newton on g_e(y(x)) in [lo, hi] (g(lo) < 0 <= g(hi)), dg/dt = G_e (A y + b):
    // Newton steps while they stay inside the bracket, else the Illinois step; stops once a step
    // or the bracket is below xtol.  Agrees with the Illinois result of the torch path to xtol.
    // dlo, dhi: dg/dt at lo and hi where known (else NaN): the first guess is then the root of
    // the cubic Hermite interpolant of g on [lo, hi] (error O(H^4), so one or two Newton steps on
    // the exact solution remain), found by a few Newton steps on the cubic from the secant point.
    double newton(const double* y0, double s, int e, double lo, double hi, double flo, double fhi,
                  double xtol, double dlo = NAN, double dhi = NAN) const {
        int side = 0;
        double x = hi - fhi * (hi - lo) / (fhi - flo > 0 ? fhi - flo : 1.0);
        if (std::isfinite(dlo) && std::isfinite(dhi) && fhi - flo > 0) {
            const double H = hi - lo, m0 = dlo * H, m1 = dhi * H;
            double u = -flo / (fhi - flo);
            for (int it = 0; it < 4; ++it) {
                const double u2 = u * u, u3 = u2 * u;
                const double p = (2 * u3 - 3 * u2 + 1) * flo + (u3 - 2 * u2 + u) * m0 + (-2 * u3 + 3 * u2) * fhi +
                                 (u3 - u2) * m1;
                const double dp = (6 * u2 - 6 * u) * flo + (3 * u2 - 4 * u + 1) * m0 + (-6 * u2 + 6 * u) * fhi +
                                  (3 * u2 - 2 * u) * m1;
                if (!(dp > 0)) break;
                const double un = u - p / dp;
                if (!(un > 0 && un < 1)) break;
                u = un;
            }
            const double xh = lo + u * H;
            if (xh > lo && xh < hi) x = xh;
        }
#if NS == 1
        {   // one state: the closed-form crossing (crossing.h) as the first guess
            const double Gv = M.G[e], A = Ag[0], d = b[0], vth = th[e] / Gv, v0 = y0[0];
            const double xc = s + (A != 0.0 ? crossing_time_leaky(v0, vth, -d / A, A)
                                             : crossing_time_flat(v0, vth, d));
            if (xc > lo && xc < hi) x = xc;
        }
#endif
        if (!(x > lo && x < hi)) x = 0.5 * (lo + hi);
        for (int it = 0; it < 200; ++it) {
            double yx[NS], g[NE], gd[NE];
            prop(y0, x - s, yx);
            gvals(yx, g);
            const double fx = g[e];
            if (fx == 0) return x;
            if (fx > 0) {
                if (side == 1) flo = 0.5 * flo;
                hi = x; fhi = fx; side = 1;
            } else {
                if (side == -1) fhi = 0.5 * fhi;
                lo = x; flo = fx; side = -1;
            }
            if (!(hi - lo > xtol)) return hi;
            gdots(yx, gd);
            double xn = gd[e] != 0 ? x - fx / gd[e] : lo - 1.0;
            if (!(xn > lo && xn < hi)) {
                const double denom = fhi - flo;
                xn = hi - fhi * (hi - lo) / (denom > 0 ? denom : 1.0);
                if (!(xn > lo && xn < hi)) xn = 0.5 * (lo + hi);
            } else if (std::fabs(xn - x) <= xtol) {
                // converged: the answer is the bracket's upper end (g >= 0 there, as in the
                // Illinois method of the torch path, so that the jump is taken at or past the
                // crossing): x itself when g(x) >= 0, else a point just above the root
                if (fx >= 0) return x;
                xn = std::min(hi, std::max(xn, x) + xtol);
            }
            x = xn;
        }
        return hi;
    }

    // earliest event of the element in (s, bnd]: (time, event); event -1: refractory release.
    // yb gets the state at bnd when it was computed (have_yb).
    void first_event(const double* y0, double s, double bnd, double& tev, int& eev, double* yb,
                     bool& have_yb, const double* yknown = nullptr) const {
        tev = INF;
        eev = -2;
        have_yb = false;
        if (in_ref_at(s)) {
            const double rel = el->ref_until - t0;
            if (rel <= bnd) { tev = rel; eev = -1; }
            return;
        }
        double g0[NE], gb[NE], gd0[NE], gdb[NE];
        if (yknown) {  // the caller's prop(y0, bnd - s)
            for (int i = 0; i < NS; ++i) yb[i] = yknown[i];
        } else {
            prop(y0, bnd - s, yb);
        }
        have_yb = true;
        gvals(y0, g0);
        gvals(yb, gb);
        if (M.hidden) { gdots(y0, gd0); gdots(yb, gdb); }
        const double xtol = 4 * EPS * std::max(std::fabs(bnd), M.dt);
        for (int e = 0; e < NE; ++e) {
            double te = (el->armed[e] && g0[e] >= 0) ? s : INF;
            double hi_end = bnd, ghi = gb[e];
            bool up = g0[e] < 0 && gb[e] >= 0;
            if (M.hidden && g0[e] < 0 && gb[e] < 0 && gd0[e] > 0 && gdb[e] < 0) {
                auto neg_gdot = [&](double x) {
                    double yx[NS], gd[NE];
                    prop(y0, x - s, yx);
                    gdots(yx, gd);
                    return -gd[e];
                };
                const double tm = illinois(neg_gdot, s, bnd, -gd0[e], -gdb[e], xtol);
                double ym[NS], gm[NE];
                prop(y0, tm - s, ym);
                gvals(ym, gm);
                up = gm[e] >= 0;
                if (up) { hi_end = tm; ghi = gm[e]; }
            }
            if (up && te > s)
                te = std::min(te, M.hidden ? newton(y0, s, e, s, hi_end, g0[e], ghi, xtol, gd0[e],
                                                    hi_end == bnd ? gdb[e] : 0.0)
                                           : newton(y0, s, e, s, hi_end, g0[e], ghi, xtol));
            if (te < tev) { tev = te; eev = e; }
        }
    }

    void fire(const double* pre, double off, int e, double* post) {
        const double* J = M.J + e * NS * NS;
        for (int i = 0; i < NS; ++i) {
            double s = 0.0;
            for (int j = 0; j < NS; ++j) s += pre[j] * J[i * NS + j];
            post[i] = s + kg[e * NS + i];
        }
        Spike sp;
        sp.t = t0 + off;
        sp.elem = m;
        sp.seq = el->seq++;
        sp.e = e;
        for (int i = 0; i < NS; ++i) { sp.pre[i] = pre[i] * M.D[i]; sp.post[i] = post[i] * M.D[i]; }
        out->push_back(sp);
        if (fired) fired->push_back({kstep, off, e});
        if (M.tref) {
            el->ref_until = t0 + off + tr;
            el->clamp_val = post[M.ic];
        }
        double gpre[NE], gpost[NE];
        gvals(pre, gpre);
        gvals(post, gpost);
        for (int k = 0; k < NE; ++k) el->armed[k] = (gpost[k] < 0) || (gpost[k] >= 0 && gpost[k] < gpre[k]);
    }

    // propagate from a to bnd (offsets in the step), handling every event on the way
    void segment(double a, double bnd, const Prop* Pfull) {
        double* y = el->y;
        double y1[NS], g0[NE], g1[NE];
        if (Pfull) apply(*Pfull, y, b, y1);
        else prop(y, bnd - a, y1);
        gvals(y, g0);
        gvals(y1, g1);
        bool special = has_ref && el->ref_until > t0 + a;
        double gd0[NE], gd1[NE];
        if (M.hidden) { gdots(y, gd0); gdots(y1, gd1); }
        for (int e = 0; e < NE; ++e) {
            bool c = (g0[e] < 0 && g1[e] >= 0) || (el->armed[e] && g0[e] >= 0);
            if (M.hidden) c = c || (g0[e] < 0 && g1[e] < 0 && gd0[e] > 0 && gd1[e] < 0);
            special = special || c;
        }
        if (!special) {
            for (int e = 0; e < NE; ++e) el->armed[e] = el->armed[e] || g1[e] < 0;
            for (int i = 0; i < NS; ++i) y[i] = y1[i];
            return;
        }
        double y0[NS];
        for (int i = 0; i < NS; ++i) y0[i] = y[i];
        double s = a;
        for (int it = 0; it < max_events; ++it) {
            double tev, yb[NS];
            int eev;
            bool have_yb;
            first_event(y0, s, bnd, tev, eev, yb, have_yb, it == 0 ? y1 : nullptr);
            const bool ref = in_ref_at(s);
            if (std::isinf(tev)) {
                double g[NE];
                if (!have_yb) prop(y0, bnd - s, yb);
                if (ref) yb[M.ic] = el->clamp_val;
                gvals(yb, g);
                for (int e = 0; e < NE; ++e) el->armed[e] = el->armed[e] || g[e] < 0;
                for (int i = 0; i < NS; ++i) y[i] = yb[i];
                return;
            }
            double yat[NS];
            prop(y0, tev - s, yat);
            if (ref) yat[M.ic] = el->clamp_val;
            if (eev >= 0) {
                double post[NS];
                fire(yat, tev, eev, post);
                for (int i = 0; i < NS; ++i) y0[i] = post[i];
            } else {
                for (int i = 0; i < NS; ++i) y0[i] = yat[i];
            }
            s = tev;
        }
        stop = 1;
        for (int i = 0; i < NS; ++i) y[i] = y0[i];
    }
};

// --------------------------------------------------------------------------- the run
struct Run {
    Model M;
    std::vector<Elem> els;
    // inputs
    const double* u;
    i64 u_rows, u_stride;
    const i64* in_ptr;
    const double* in_t;
    const double* in_inc;
    std::vector<i64> in_pos;
    const i64* ps_ptr;
    const double* ps_rate;
    const double* ps_w;
    const int* ps_tgt;
    uint64_t* ps_state;
    double* ps_next;
    // projections, CSR by pre element, posts sorted within each pre
    const i64* syn_ptr;
    const i64* syn_post;
    const double* syn_w;
    const double* syn_d;
    const int* syn_tgt;
    i64 nslots;
    std::vector<std::vector<Arrival>> ring;            // [nslots * Mn]
    std::vector<std::vector<Fired>> step_fired;  // per element, its spikes of this slice of steps
    // recording
    i64 stride, n_rec_e;
    int n_rec_s;
    const int* rec_s;
    std::vector<i64> rec_pos;  // element -> its column in the record, or -1
    double* rec_out;
    double t_end;
    int max_events;
    Result* res;

    std::vector<double> wconst, bconst;  // F(dt) (B u + c) and B u + c per element (input held)
    i64 k_first = 0;

    // Whole steps k0, k0 + 1, ... (< k1) of element m without inputs in which nothing happens (no
    // candidate event, no release): the same operations as the general path (Stepper::segment,
    // or its refractory branch) without its bookkeeping, the state kept in registers.  Returns
    // the first step it did not take (the general path runs that one).
    i64 fast_run(i64 m, i64 k0, i64 k1) {
        Elem& el = els[m];
        const i64 g = M.ng > 1 ? (m % M.n) : 0;
        const Prop& P = M.Pdt[g];
        const double dt = M.dt;
        const double* th = M.theta + g * NE;
        const double* Ag = M.A + g * NS * NS;
        const bool has_ref = M.tref != nullptr;
        const bool held = !wconst.empty();
        double next_in = in_pos[m] < in_ptr[m + 1] ? in_t[in_pos[m]] : INF;
        if (ps_ptr)
            for (i64 q = ps_ptr[m]; q < ps_ptr[m + 1]; ++q) next_in = std::min(next_in, ps_next[q]);
        double y[NS], w[NS], b[NS], g0[NE], gd0[NE] = {}, gd1[NE] = {};
        bool armed[NE], gd_ok = false;
        for (int i = 0; i < NS; ++i) y[i] = el.y[i];
        for (int e = 0; e < NE; ++e) armed[e] = el.armed[e];
        if (held)
            for (int i = 0; i < NS; ++i) { w[i] = wconst[m * NS + i]; b[i] = bconst[m * NS + i]; }
        for (int e = 0; e < NE; ++e) {
            double sg = 0.0;
            for (int i = 0; i < NS; ++i) sg += y[i] * M.G[e * NS + i];
            g0[e] = sg - th[e];
        }
        i64 k = k0;
        for (; k < k1; ++k) {
            const double t0 = k * dt;
            if (!(t_end - t0 >= dt)) break;                        // a short last step
            if (next_in <= t0 + dt) break;                         // an input in this step
            if (syn_ptr && !ring[(k % nslots) * (i64)els.size() + m].empty()) break;
            if (!held) {
                const double* um = u + (u_rows > 1 ? k : 0) * u_stride + m * M.U;
                for (int i = 0; i < NS; ++i) {
                    double sm = 0.0;
                    for (int q = 0; q < M.U; ++q) sm += M.Bm[(g * NS + i) * M.U + q] * um[q];
                    b[i] = sm + M.c[g * NS + i];
                }
                for (int i = 0; i < NS; ++i) {
                    double c = 0.0;
                    for (int j = 0; j < NS; ++j) c += P.F[i * NS + j] * b[j];
                    w[i] = c;
                }
            }
            double y1[NS], g1[NE];
            for (int i = 0; i < NS; ++i) {
                double sa = 0.0;
                for (int j = 0; j < NS; ++j) sa += P.E[i * NS + j] * y[j];
                y1[i] = sa + w[i];
            }
            const bool ref = has_ref && el.ref_until > t0;
            if (ref) {
                if (el.ref_until - t0 <= dt) break;               // released inside the step
                y1[M.ic] = el.clamp_val;
            }
            for (int e = 0; e < NE; ++e) {
                double sg = 0.0;
                for (int i = 0; i < NS; ++i) sg += y1[i] * M.G[e * NS + i];
                g1[e] = sg - th[e];
            }
            if (!ref) {
                bool cand = false;
                for (int e = 0; e < NE; ++e)
                    cand = cand || (g0[e] < 0 && g1[e] >= 0) || (armed[e] && g0[e] >= 0);
                if (cand) break;
                if (M.hidden) {
                    // dg/dt = G (A y + b) at both ends; with the input held, the end value of one
                    // step is the start value of the next (the same expression of the same state)
                    double f0[NS], f1[NS];
                    if (!(held && gd_ok)) {
                        for (int i = 0; i < NS; ++i) {
                            double a0 = 0.0;
                            for (int j = 0; j < NS; ++j) a0 += Ag[i * NS + j] * y[j];
                            f0[i] = a0 + b[i];
                        }
                        for (int e = 0; e < NE; ++e) {
                            double sg = 0.0;
                            for (int i = 0; i < NS; ++i) sg += f0[i] * M.G[e * NS + i];
                            gd0[e] = sg;
                        }
                    }
                    for (int i = 0; i < NS; ++i) {
                        double a1 = 0.0;
                        for (int j = 0; j < NS; ++j) a1 += Ag[i * NS + j] * y1[j];
                        f1[i] = a1 + b[i];
                    }
                    for (int e = 0; e < NE; ++e) {
                        double sg = 0.0;
                        for (int i = 0; i < NS; ++i) sg += f1[i] * M.G[e * NS + i];
                        gd1[e] = sg;
                        if (g0[e] < 0 && g1[e] < 0 && gd0[e] > 0 && gd1[e] < 0) cand = true;
                    }
                    if (cand) break;
                    gd_ok = true;
                }
            }
            for (int e = 0; e < NE; ++e) { armed[e] = armed[e] || g1[e] < 0; g0[e] = g1[e]; gd0[e] = gd1[e]; }
            if (ref) gd_ok = false;
            for (int i = 0; i < NS; ++i) y[i] = y1[i];
            if (rec_out && (k + 1) % stride == 0 && rec_pos[m] >= 0) {
                const i64 row = (k + 1) / stride - k_first / stride;
                for (int sj = 0; sj < n_rec_s; ++sj)
                    rec_out[(row * n_rec_e + rec_pos[m]) * n_rec_s + sj] = y[rec_s[sj]] * M.D[rec_s[sj]];
            }
        }
        for (int i = 0; i < NS; ++i) el.y[i] = y[i];
        for (int e = 0; e < NE; ++e) el.armed[e] = armed[e];
        return k;
    }

    // Steps k0 .. k1-1 of the elements m0 .. m0+nl-1 (nl <= LANES) in lockstep, the input held
    // (wconst): the quiet step of fast_run (the same operations in the same order, so the same
    // bits) for all lanes at once, in arrays the compiler vectorises; a lane with an input, a
    // candidate event or a release in the step goes through the general path (step) for that
    // step and rejoins.  Returns 1 when an element stopped (too many events): bad_m, bad_k.
    int run_block(i64 m0, int nl, i64 k0, i64 k1, std::vector<Spike>& spk, std::vector<InputRef>& inputs,
                  i64& bad_m, i64& bad_k, volatile int* stop_flag) {
        const double dt = M.dt;
        const bool has_ref = M.tref != nullptr;
        const i64 Mn = (i64)els.size();
        // lane l lives in vector l / VW, slot l % VW; flags are integer masks (-1 true, 0 false)
        vd y[NS][NV], E[NS * NS][NV], A[NS * NS][NV], w[NS][NV], b[NS][NV], th[NE][NV], g0[NE][NV];
        vd gd0[NE][NV];  // dg/dt at the start of the step, G (A y + b) (carried: the end value of the last)
        vd ru[NV], cv[NV], nx[NV];
        vl armed[NE][NV], spec[NV], ring_in[NV];
        i64 mm[LANES];
        for (int l = 0; l < LANES; ++l) mm[l] = m0 + std::min(l, nl - 1);  // padding repeats the last
        auto next_input = [&](i64 m) {
            double t = in_pos[m] < in_ptr[m + 1] ? in_t[in_pos[m]] : INF;
            if (ps_ptr)
                for (i64 q = ps_ptr[m]; q < ps_ptr[m + 1]; ++q) t = std::min(t, ps_next[q]);
            return t;
        };
        auto load = [&](int l) {
            const int v = l / VW, o = l % VW;
            const Elem& el = els[mm[l]];
            for (int i = 0; i < NS; ++i) y[i][v][o] = el.y[i];
            for (int e = 0; e < NE; ++e) armed[e][v][o] = el.armed[e] ? -1 : 0;
            ru[v][o] = el.ref_until;
            cv[v][o] = el.clamp_val;
            nx[v][o] = next_input(mm[l]);
            for (int e = 0; e < NE; ++e) {
                double sg = 0.0;
                for (int i = 0; i < NS; ++i) sg += el.y[i] * M.G[e * NS + i];
                g0[e][v][o] = sg - th[e][v][o];
            }
            if (M.hidden) {
                double f0[NS];
                for (int i = 0; i < NS; ++i) {
                    double a0 = 0.0;
                    for (int j = 0; j < NS; ++j) a0 += A[i * NS + j][v][o] * el.y[j];
                    f0[i] = a0 + b[i][v][o];
                }
                for (int e = 0; e < NE; ++e) {
                    double s0 = 0.0;
                    for (int i = 0; i < NS; ++i) s0 += f0[i] * M.G[e * NS + i];
                    gd0[e][v][o] = s0;
                }
            }
        };
        auto store = [&](int l) {
            const int v = l / VW, o = l % VW;
            Elem& el = els[mm[l]];
            for (int i = 0; i < NS; ++i) el.y[i] = y[i][v][o];
            for (int e = 0; e < NE; ++e) el.armed[e] = armed[e][v][o] != 0;
        };
        for (int l = 0; l < LANES; ++l) {
            const int v = l / VW, o = l % VW;
            const i64 m = mm[l];
            const i64 g = M.ng > 1 ? (m % M.n) : 0;
            for (int q = 0; q < NS * NS; ++q) { E[q][v][o] = M.Pdt[g].E[q]; A[q][v][o] = M.A[g * NS * NS + q]; }
            for (int i = 0; i < NS; ++i) { w[i][v][o] = wconst[m * NS + i]; b[i][v][o] = bconst[m * NS + i]; }
            for (int e = 0; e < NE; ++e) th[e][v][o] = M.theta[g * NE + e];
            load(l);
        }
        const int ic = M.ic;
        const bool hidden = M.hidden;
        double Gs[NE * NS];
        for (int q = 0; q < NE * NS; ++q) Gs[q] = M.G[q];
        const vd zero = {};
        for (i64 k = k0; k < k1; ++k) {
            if (stop_flag && *stop_flag) break;
            const double t0 = k * dt, tend = t0 + dt;
            const bool rec_now = rec_out && (k + 1) % stride == 0;
            if (!(t_end - t0 >= dt)) {                                   // a short last step
                for (int l = 0; l < nl; ++l) {
                    store(l);
                    if (step(mm[l], k, row_of(k), spk, inputs)) { bad_m = mm[l]; bad_k = k; return 1; }
                    load(l);
                }
                continue;
            }
            for (int v = 0; v < NV; ++v) ring_in[v] = vl{} ;
            if (syn_ptr)
                for (int l = 0; l < LANES; ++l)
                    ring_in[l / VW][l % VW] = ring[(k % nslots) * Mn + mm[l]].empty() ? 0 : -1;
            vl any = {};
            for (int v = 0; v < NV; ++v) {
                // the quiet step of fast_run, sums in the same order
                vd y1[NS];
                for (int i = 0; i < NS; ++i) {
                    vd sa = zero;
                    for (int j = 0; j < NS; ++j) sa += E[i * NS + j][v] * y[j][v];
                    y1[i] = sa + w[i][v];
                }
                const vl refm = has_ref ? (vl)(ru[v] > t0) : vl{};
                vl sp = (refm & (vl)(ru[v] - t0 <= dt)) | (vl)(nx[v] <= tend) | ring_in[v];
                y1[ic] = refm ? cv[v] : y1[ic];
                vl cand = {};
                vd g1[NE], gd1[NE];
                for (int e = 0; e < NE; ++e) {
                    vd sg = zero;
                    for (int i = 0; i < NS; ++i) sg += y1[i] * Gs[e * NS + i];
                    g1[e] = sg - th[e][v];
                    cand |= ((vl)(g0[e][v] < 0) & (vl)(g1[e] >= 0)) | (armed[e][v] & (vl)(g0[e][v] >= 0));
                }
                if (hidden) {
                    vd f1[NS];
                    for (int i = 0; i < NS; ++i) {
                        vd a1 = zero;
                        for (int j = 0; j < NS; ++j) a1 += A[i * NS + j][v] * y1[j];
                        f1[i] = a1 + b[i][v];
                    }
                    for (int e = 0; e < NE; ++e) {
                        vd s1 = zero;
                        for (int i = 0; i < NS; ++i) s1 += f1[i] * Gs[e * NS + i];
                        gd1[e] = s1;
                        cand |= (vl)(g0[e][v] < 0) & (vl)(g1[e] < 0) & (vl)(gd0[e][v] > 0) & (vl)(s1 < 0);
                    }
                }
                sp |= ~refm & cand;
                spec[v] = sp;
                any |= sp;
                for (int e = 0; e < NE; ++e) {
                    armed[e][v] = sp ? armed[e][v] : (armed[e][v] | (vl)(g1[e] < 0));
                    g0[e][v] = sp ? g0[e][v] : g1[e];
                    // gd1 = G (A y1 + b) of the committed state (clamp included): the next start value
                    if (hidden) gd0[e][v] = sp ? gd0[e][v] : gd1[e];
                }
                for (int i = 0; i < NS; ++i) y[i][v] = sp ? y[i][v] : y1[i];
            }
            bool anyb = false;
            for (int o = 0; o < VW; ++o) anyb = anyb || any[o] != 0;
            if (!anyb && !rec_now && !syn_ptr) continue;
            for (int l = 0; l < nl; ++l) {
                const i64 m = mm[l];
                if (spec[l / VW][l % VW]) {
                    store(l);
                    if (step(m, k, row_of(k), spk, inputs)) { bad_m = m; bad_k = k; return 1; }
                    load(l);
                } else {
                    if (rec_now && rec_pos[m] >= 0) {
                        const i64 row = (k + 1) / stride - k_first / stride;
                        for (int sj = 0; sj < n_rec_s; ++sj)
                            rec_out[(row * n_rec_e + rec_pos[m]) * n_rec_s + sj] =
                                y[rec_s[sj]][l / VW][l % VW] * M.D[rec_s[sj]];
                    }
                }
            }
        }
        for (int l = 0; l < nl; ++l) store(l);
        return 0;
    }

    i64 row_of(i64 k) const {  // the record row written after step k (row 0: the start), or -1
        return ((k + 1) % stride == 0) ? (k + 1) / stride - k_first / stride : -1;
    }

    // grid step k of element m; returns 1 when it stopped (too many events)
    int step(i64 m, i64 k, i64 row, std::vector<Spike>& spk, std::vector<InputRef>& inputs) {
        const double dt = M.dt;
        const double t0 = k * dt;
        const double h = std::min(dt, t_end - t0);
        const i64 g = M.ng > 1 ? (m % M.n) : 0;
        const bool coupled = syn_ptr != nullptr;
        Stepper st{M, M.A + g * NS * NS, M.theta + g * NE, M.kj + g * NE * NS, M.val + g * NE,
                   M.tref ? M.tref[g] : 0.0, M.tref != nullptr, {}, t0, m, &els[m], &spk,
                   coupled ? &step_fired[m] : nullptr, max_events, res};
        st.kstep = k;
        const double* um = u + (u_rows > 1 ? k : 0) * u_stride + m * M.U;
        for (int i = 0; i < NS; ++i) {  // the drive B u + c of this step
            double s = 0.0;
            for (int q = 0; q < M.U; ++q) s += M.Bm[(g * NS + i) * M.U + q] * um[q];
            st.b[i] = s + M.c[g * NS + i];
        }
        st.Pdt = &M.Pdt[g];
        st.anorm = M.anorm[g];
        if (M.kmax >= 0) st.coef = M.coef.data() + g * (M.kmax + 1) * NS * NS;
        // this step's inputs in time order (external first at equal times)
        inputs.clear();
        const double tend = t0 + h;
        i64& p = in_pos[m];
        while (p < in_ptr[m + 1] && in_t[p] <= tend) {
            inputs.push_back({in_t[p], 0, p, 0.0});
            ++p;
        }
        if (coupled) {
            const i64 Mn = (i64)els.size();
            if (m + 2 < Mn) {  // the arrivals of a later element: written at random by route, rarely in cache
                const auto& nx = ring[(k % nslots) * Mn + m + 2];
                const char* p0 = (const char*)nx.data();
                const size_t bytes = nx.size() * sizeof(Arrival);
                for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(p0 + o);
            }
            auto& ar = ring[(k % nslots) * Mn + m];
            for (auto& x : ar) inputs.push_back({x.t, 1, x.target, x.amount});
            ar.clear();
        }
        if (ps_ptr)
            for (i64 q = ps_ptr[m]; q < ps_ptr[m + 1]; ++q)
                while (ps_next[q] <= tend) {
                    inputs.push_back({ps_next[q], 1, ps_tgt[q], ps_w[q] / M.D[ps_tgt[q]]});
                    ps_next[q] += next_interval(ps_state[q], ps_rate[q]);
                }
        // stable insertion sort by time (the order std::stable_sort gives; a step holds a handful
        // of inputs, and stable_sort's buffer was a malloc and a free per neuron and step)
        for (size_t i = 1; i < inputs.size(); ++i) {
            const InputRef x = inputs[i];
            size_t j = i;
            for (; j > 0 && x.t < inputs[j - 1].t; --j) inputs[j] = inputs[j - 1];
            inputs[j] = x;
        }
        size_t ip = 0;
        double* y = els[m].y;
        auto apply_until = [&](double t) {
            while (ip < inputs.size() && inputs[ip].t <= t) {
                const InputRef& r = inputs[ip];
                if (r.kind == 0)
                    for (int i = 0; i < NS; ++i) y[i] += in_inc[r.ref * NS + i];
                else
                    y[r.ref] += r.amount;
                ++ip;
            }
        };
        double a = 0.0;
        while (true) {
            apply_until(t0 + a);
            if (a >= h) break;
            const double nt = ip < inputs.size() ? inputs[ip].t : INF;
            const double bnd = std::min(h, nt - t0);
            if (bnd <= a) {
                apply_until(nt);
                continue;
            }
            const Prop* Pf = (a == 0.0 && bnd == dt) ? &M.Pdt[g] : nullptr;
            st.segment(a, bnd, Pf);
            if (st.stop) return 1;
            a = bnd;
        }
        if (rec_out && row >= 0 && rec_pos[m] >= 0)
            for (int s = 0; s < n_rec_s; ++s)
                rec_out[(row * n_rec_e + rec_pos[m]) * n_rec_s + s] = y[rec_s[s]] * M.D[rec_s[s]];
        return 0;
    }

    // deliver the spikes of steps k0 .. k1-1 to the posts in [lo, hi), step by step and within a
    // step pre by pre (so that every post's arrival list has the order of per-step delivery);
    // cur: a cursor per pre element into its list (the caller's, zeroed)
    void route(i64 k0, i64 k1, i64 lo, i64 hi, std::vector<size_t>& cur) {
        const double dt = M.dt;
        const i64 Mn = (i64)els.size();
        std::fill(cur.begin(), cur.end(), 0);
        for (i64 k = k0; k < k1; ++k) {
            const double t0 = k * dt;
            for (i64 pre = 0; pre < Mn; ++pre) {
                const auto& fl = step_fired[pre];
                size_t& c = cur[pre];
                if (c >= fl.size() || fl[c].k != k) continue;
                const i64 g = M.ng > 1 ? (pre % M.n) : 0;
                const i64* b0 = syn_post + syn_ptr[pre];
                const i64* b1 = syn_post + syn_ptr[pre + 1];
                const i64 s0 = std::lower_bound(b0, b1, lo) - syn_post;
                const i64 s1 = std::lower_bound(b0, b1, hi) - syn_post;
                for (; c < fl.size() && fl[c].k == k; ++c) {
                    const Fired& f = fl[c];
                    const double ts = t0 + f.off;
                    const double v = M.val[g * NE + f.e];
                    for (i64 q = s0; q < s1; ++q) {
                        const double ta = ts + syn_d[q];
                        // the step that applies it: t_ka < ta <= t_ka + dt, at the earliest the next one
                        i64 ka = (i64)std::floor(ta / dt);
                        while (ka > 0 && (ka - 1) * dt + dt >= ta) --ka;
                        while (ka * dt + dt < ta) ++ka;
                        if (ka <= k) ka = k + 1;
                        const int tg = syn_tgt[q];
                        ring[(ka % nslots) * Mn + syn_post[q]].push_back({ta, tg, syn_w[q] * v / M.D[tg]});
                    }
                }
            }
        }
    }
};

extern "C" {

// Runs n_steps grid steps of M elements; see ctsnn/engine.py for the layout of every argument.
// Returns a handle (Result*) to query with ctsnn_engine_* and free with ctsnn_engine_free.
void* ctsnn_engine_run(i64 Mn, i64 n, i64 ng, const double* A, const double* Bm, const double* c,
                       const double* theta, const double* kj, const double* val, const double* tref,
                       const double* G, const double* J, const double* D, int U, int ic, int hidden,
                       double dt, double t_end, i64 n_steps, i64 k_start,
                       const double* u, i64 u_rows, i64 u_stride,
                       const i64* in_ptr, const double* in_t, const double* in_inc,
                       const i64* syn_ptr, const i64* syn_post, const double* syn_w, const double* syn_d,
                       const int* syn_tgt, double max_delay,
                       const i64* ps_ptr, const double* ps_rate, const double* ps_w, const int* ps_tgt,
                       uint64_t* ps_state, double* ps_next,
                       i64 stride, i64 n_rec_e, const i64* rec_e, int n_rec_s, const int* rec_s,
                       double* rec_out, double* y, unsigned char* armed, double* ref_until,
                       double* clamp_val, i64* seqs, int max_events, int nthreads) {
    Result* res = new Result();
    Run R;
    Model& M = R.M;
    M.A = A; M.Bm = Bm; M.c = c; M.theta = theta; M.kj = kj; M.val = val; M.tref = tref;
    M.G = G; M.J = J; M.D = D; M.U = U; M.ic = ic; M.hidden = hidden; M.n = n; M.ng = ng; M.dt = dt;
    M.Pdt.resize(ng);
    M.anorm.resize(ng);
    for (i64 g = 0; g < ng; ++g) {
        propagator(A + g * NS * NS, dt, M.Pdt[g]);
        M.anorm[g] = norm1(A + g * NS * NS);
    }
#if NS > 1
    {   // coefficient tables up to the degree that L <= dt needs (while they stay small)
        double th = 0.0;
        for (i64 g = 0; g < ng; ++g) th = std::max(th, dt * M.anorm[g]);
        int K = 0;
        for (double c = 0.5 * th; c > 1.3877787807814457e-17 && K < 30;) {
            ++K;
            c *= th / (K + 2);
        }
        if (th <= SUBSTEP_THETA && (double)ng * (K + 1) * NS * NS <= 16.0e6) {
            M.kmax = K;
            const int SS = NS * NS;
            M.coef.assign(ng * (K + 1) * SS, 0.0);
            for (i64 g = 0; g < ng; ++g) {
                double* C = M.coef.data() + g * (K + 1) * SS;
                const double* Ag = A + g * SS;
                for (int i = 0; i < NS; ++i) C[i * NS + i] = 1.0;
                for (int k = 1; k <= K; ++k)
                    for (int i = 0; i < NS; ++i)
                        for (int j = 0; j < NS; ++j) {
                            double s2 = 0.0;
                            for (int l = 0; l < NS; ++l) s2 += Ag[i * NS + l] * C[(k - 1) * SS + l * NS + j];
                            C[k * SS + i * NS + j] = s2 / (k + 1);
                        }
            }
        }
    }
#endif
    R.els.resize(Mn);
    for (i64 m = 0; m < Mn; ++m) {
        Elem& el = R.els[m];
        for (int i = 0; i < NS; ++i) el.y[i] = y[m * NS + i] / D[i];
        for (int e = 0; e < NE; ++e) el.armed[e] = armed[m * NE + e] != 0;
        el.ref_until = ref_until[m];
        el.clamp_val = clamp_val[m] / D[ic];
        el.seq = seqs[m];
    }
    R.u = u; R.u_rows = u_rows; R.u_stride = u_stride;
    R.in_ptr = in_ptr; R.in_t = in_t; R.in_inc = in_inc;
    R.in_pos.assign(in_ptr, in_ptr + Mn);
    R.ps_ptr = ps_ptr; R.ps_rate = ps_rate; R.ps_w = ps_w; R.ps_tgt = ps_tgt; R.ps_state = ps_state;
    R.ps_next = ps_next;
    R.syn_ptr = syn_ptr; R.syn_post = syn_post; R.syn_w = syn_w; R.syn_d = syn_d; R.syn_tgt = syn_tgt;
    const bool coupled = syn_ptr != nullptr;
    R.nslots = coupled ? (i64)std::ceil(max_delay / dt) + 2 : 0;
    if (coupled) {
        R.ring.resize(R.nslots * Mn);
        R.step_fired.resize(Mn);
    }
    R.stride = stride; R.n_rec_e = n_rec_e; R.n_rec_s = n_rec_s; R.rec_s = rec_s; R.rec_out = rec_out;
    R.rec_pos.assign(Mn, -1);
    for (i64 q = 0; q < n_rec_e; ++q) R.rec_pos[rec_e[q]] = q;
    R.t_end = t_end;
    R.k_first = k_start;
    R.max_events = max_events;
    if (u_rows == 1 && ng >= 1) {
        R.wconst.resize(Mn * NS);
        R.bconst.resize(Mn * NS);
        for (i64 m = 0; m < Mn; ++m) {
            const i64 g = ng > 1 ? (m % n) : 0;
            const double* um = u + m * U;
            double b[NS];
            for (int i = 0; i < NS; ++i) {
                double s = 0.0;
                for (int q = 0; q < U; ++q) s += Bm[(g * NS + i) * U + q] * um[q];
                b[i] = s + c[g * NS + i];
                R.bconst[m * NS + i] = b[i];
            }
            for (int i = 0; i < NS; ++i) {
                double a = 0.0;
                for (int j = 0; j < NS; ++j) a += M.Pdt[g].F[i * NS + j] * b[j];
                R.wconst[m * NS + i] = a;
            }
        }
    }
    R.res = res;
    auto row_of = [&](i64 k) -> i64 {  // row 0: the state at the start
        return ((k + 1) % stride == 0) ? (k + 1) / stride - k_start / stride : -1;
    };
#ifdef _OPENMP
    int nth = std::max(1, std::min<int>(nthreads, (int)std::max<i64>(1, Mn / 16)));
#else
    int nth = 1;
#endif
    std::vector<std::vector<Spike>> spk(nth);
    const bool vec = !R.wconst.empty();  // the input held: lanes of LANES elements in lockstep
    const i64 nblk = (Mn + LANES - 1) / LANES;
    res->thread_cpu.assign(nth, 0.0);
    if (!coupled) {
        // independent elements: each runs all its steps (no barrier per step)
        volatile int stop = 0;
#pragma omp parallel num_threads(nth)
        {
#ifdef _OPENMP
            const int tid = omp_get_thread_num();
#else
            const int tid = 0;
#endif
            const double cpu0 = thread_cpu_now();
            std::vector<InputRef> inputs;
            if (vec) {
#pragma omp for schedule(dynamic, 2)
                for (i64 blk = 0; blk < nblk; ++blk) {
                    const i64 m0 = blk * LANES;
                    i64 bm = -1, bk = -1;
                    if (R.run_block(m0, (int)std::min<i64>(LANES, Mn - m0), k_start, k_start + n_steps, spk[tid],
                                    inputs, bm, bk, &stop)) {
#pragma omp critical
                        {
                            if (!stop || bk * dt < res->bad_t || (bk * dt == res->bad_t && bm < res->bad_elem)) {
                                res->bad_elem = bm;
                                res->bad_t = bk * dt;
                            }
                            stop = 1;
                        }
                    }
                }
            } else
#pragma omp for schedule(dynamic, 16)
            for (i64 m = 0; m < Mn; ++m) {
                for (i64 k = k_start; k < k_start + n_steps && !stop; ++k) {
                    k = R.fast_run(m, k, k_start + n_steps);
                    if (k >= k_start + n_steps) break;
                    if (R.step(m, k, row_of(k), spk[tid], inputs)) {
#pragma omp critical
                        {
                            if (!stop || k * dt < res->bad_t) { res->bad_elem = m; res->bad_t = k * dt; }
                            stop = 1;
                        }
                        break;
                    }
                }
            }
            res->thread_cpu[tid] = thread_cpu_now() - cpu0;
        }
        if (stop) res->status = 1;
    } else {
        int any_stop = 0;
        std::vector<int> stop(nth, 0);
        // the slice: a spike at t >= k dt with delay d arrives in step ka >= k + d / dt - 1, so with
        // L <= d_min / dt - 1 nothing sent in a slice of L steps arrives inside it (as NEST's
        // min_delay slices); a margin of 1e-9 for rounding, and L = 1 for d_min < 2 dt
        i64 L = 1;
        {
            const i64 nnz = syn_ptr[Mn];
            double dmin = INF;
            for (i64 q = 0; q < nnz; ++q) dmin = std::min(dmin, syn_d[q]);
            if (nnz == 0) L = std::max<i64>(1, n_steps);
            else {
                const double r = std::floor(dmin / dt * (1 - 1e-9)) - 1;
                if (r > 1) L = (i64)std::min(r, 1e9);
            }
        }
#pragma omp parallel num_threads(nth)
        {
#ifdef _OPENMP
            const int tid = omp_get_thread_num();
#else
            const int tid = 0;
#endif
            const double cpu0 = thread_cpu_now();
            std::vector<InputRef> inputs;
            std::vector<size_t> cur(Mn, 0);
            auto fail = [&](i64 bm, i64 bk) {  // the earliest failing step, and its first element
#pragma omp critical
                {
                    if (res->bad_elem < 0 || bk * dt < res->bad_t || (bk * dt == res->bad_t && bm < res->bad_elem)) {
                        res->bad_elem = bm;
                        res->bad_t = bk * dt;
                    }
                }
            };
            // slices of L steps: no spike sent inside a slice arrives inside it, so every element
            // runs the whole slice on its own; the slice's spikes then cross the projections
            for (i64 k0 = k_start; k0 < k_start + n_steps; k0 += L) {
                const i64 k1 = std::min(k0 + L, k_start + n_steps);
                if (vec) {
#pragma omp for schedule(static)
                    for (i64 blk = 0; blk < nblk; ++blk) {
                        if (stop[tid]) continue;
                        const i64 m0 = blk * LANES;
                        const int nl = (int)std::min<i64>(LANES, Mn - m0);
                        for (int l = 0; l < nl; ++l) R.step_fired[m0 + l].clear();
                        i64 bm = -1, bk = -1;
                        if (R.run_block(m0, nl, k0, k1, spk[tid], inputs, bm, bk, nullptr)) {
                            stop[tid] = 1;
                            fail(bm, bk);
                        }
                    }
                } else
#pragma omp for schedule(static)
                for (i64 m = 0; m < Mn; ++m) {
                    if (stop[tid]) continue;
                    R.step_fired[m].clear();
                    for (i64 k = k0; k < k1; ++k) {
                        k = R.fast_run(m, k, k1);
                        if (k >= k1) break;
                        if (R.step(m, k, row_of(k), spk[tid], inputs)) {
                            stop[tid] = 1;
                            fail(m, k);
                            break;
                        }
                    }
                }
                // (the loop's implicit barrier has passed: every thread reads the same flags)
                int stopped = 0;
                for (int q = 0; q < nth; ++q) stopped |= stop[q];
                if (stopped) break;
                R.route(k0, k1, Mn * tid / nth, Mn * (tid + 1) / nth, cur);
#pragma omp barrier
            }
            res->thread_cpu[tid] = thread_cpu_now() - cpu0;
        }
        for (int q = 0; q < nth; ++q) any_stop |= stop[q];
        if (any_stop) res->status = 1;
    }
    for (i64 m = 0; m < Mn; ++m) {
        const Elem& el = R.els[m];
        for (int i = 0; i < NS; ++i) y[m * NS + i] = el.y[i] * D[i];
        for (int e = 0; e < NE; ++e) armed[m * NE + e] = el.armed[e] ? 1 : 0;
        ref_until[m] = el.ref_until;
        clamp_val[m] = el.clamp_val * D[ic];
        seqs[m] = el.seq;
    }
    for (int q = 0; q < nth; ++q) {
        res->spikes.insert(res->spikes.end(), spk[q].begin(), spk[q].end());
        std::vector<Spike>().swap(spk[q]);
    }
    return res;
}

int ctsnn_engine_status(void* h, i64* bad_elem, double* bad_t) {
    Result* r = (Result*)h;
    *bad_elem = r->bad_elem;
    *bad_t = r->bad_t;
    return r->status;
}

i64 ctsnn_engine_nspikes(void* h) { return (i64)((Result*)h)->spikes.size(); }

// the number of threads of the run, and (out != null) the CPU seconds each spent in it
int ctsnn_engine_thread_cpu(void* h, double* out) {
    const Result* r = (const Result*)h;
    if (out)
        for (size_t q = 0; q < r->thread_cpu.size(); ++q) out[q] = r->thread_cpu[q];
    return (int)r->thread_cpu.size();
}

void ctsnn_engine_spikes(void* h, double* t, i64* elem, i64* seq, i64* ev, double* pre, double* post) {
    Result* r = (Result*)h;
    const i64 K = (i64)r->spikes.size();
    for (i64 q = 0; q < K; ++q) {
        const Spike& s = r->spikes[q];
        t[q] = s.t;
        elem[q] = s.elem;
        seq[q] = s.seq;
        ev[q] = s.e;
        for (int i = 0; i < NS; ++i) {
            if (pre) pre[q * NS + i] = s.pre[i];
            if (post) post[q * NS + i] = s.post[i];
        }
    }
}

void ctsnn_engine_free(void* h) { delete (Result*)h; }

// The CSR order of n synapses by (pre, post): two stable counting sorts (by post, then by pre),
// O(n + M); ptr [M + 1] gets the row starts.
void ctsnn_engine_csr_order(i64 n, const i64* pre, const i64* post, i64 Mn, i64* order, i64* ptr) {
    std::vector<i64> pos(Mn + 1, 0), tmp(n);
    for (i64 s = 0; s < n; ++s) ++pos[post[s] + 1];
    for (i64 m = 0; m < Mn; ++m) pos[m + 1] += pos[m];
    for (i64 s = 0; s < n; ++s) tmp[pos[post[s]]++] = s;
    std::fill(pos.begin(), pos.end(), 0);
    for (i64 s = 0; s < n; ++s) ++pos[pre[s] + 1];
    for (i64 m = 0; m < Mn; ++m) pos[m + 1] += pos[m];
    for (i64 m = 0; m <= Mn; ++m) ptr[m] = pos[m];
    for (i64 q = 0; q < n; ++q) {
        const i64 s = tmp[q];
        order[pos[pre[s]]++] = s;
    }
}

// y(L) = E(L) y0 + F(L) b for one A [S, S] (as the engine stores it), by the propagator the engine
// uses for a sub-step (which = 0: the Taylor polynomial of phi_1 where L ||A||_1 <= 1/2, else the
// scaled exponential; which = 1: always the scaled exponential).  For the tests.
void ctsnn_engine_propagate(const double* A, const double* b, const double* y0, double L, int which,
                            double* out) {
    const double an = norm1(A);
#if NS > 1
    if (which == 0 && L * an <= SUBSTEP_THETA) {
        substep(A, b, y0, L, an, out);
        return;
    }
#endif
    Prop P;
    propagator(A, L, P);
    apply(P, y0, b, out);
}

}  // extern "C"
