"""In-place update loops for sgd, sgd_momentum, sgd_nesterov_momentum, rmsprop, adam and
adamw, and the running average of weights (``ema_update``).

The equations (g = dw + reg * w):

* sgd:       w -= lr * g
* momentum:  v = mom * v - lr * g;  w += v
* nesterov:  v' = mom * v - lr * g;  w += v' + mom * (v' - v);  v = v'
* rmsprop:   c = dr * c + (1 - dr) * g**2;  w -= lr * g / (sqrt(c) + eps)
* adam:      Kingma & Ba (ICLR 2015): m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g**2;
             w -= lr * (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps)
* adamw:     Loshchilov & Hutter (ICLR 2019): w *= 1 - lr * wd, then the Adam step

A rule is selected by its code, ``fastfc._registry.UPDATE_RULES[name].code``, the same
numbers as the enum below.  These kernels trust their callers (fastfc.optim and
fastfc.net.Net check every argument first).
"""
from libc.math cimport pow

from fastfc._kernels._optim_loops cimport *
from fastfc._kernels.blas cimport (POOL_MAX_PARTS, parallel_begin, parallel_end,
                                   parallel_run, part_range)

# the rules' codes: fastfc._registry.UPDATE_RULES[name].code
cdef enum:
    RULE_SGD = 0
    RULE_MOMENTUM = 1
    RULE_NESTEROV = 2
    RULE_RMSPROP = 3
    RULE_ADAM = 4
    RULE_ADAMW = 5


# Coefficients: every hyper-parameter arrives as a double (the Python float it was
# given as).  Derived coefficients (1 - beta, 1 - beta**t) are formed in double and each
# coefficient is rounded once to the array's type: exactly what NumPy does with
# `float32_array * python_float` (NEP 50: the Python float is a weak scalar, cast to
# float32 before the float32 multiply).  Forming 1 - beta2 in float32 instead would make
# it 0.0009999871 for beta2 = 0.999, 1.3e-5 relative too low.


cdef void sgd_step(floating* w, const floating* dw, Py_ssize_t size,
                   double lr, floating reg, ffc_update_stats* stats) noexcept nogil:
    """w -= lr * (dw + reg * w)"""
    if floating is float:
        ffc_sgd_s(w, dw, size, <float>lr, reg, stats)
    else:
        ffc_sgd_d(w, dw, size, lr, reg, stats)


cdef void momentum_step(floating* w, const floating* dw, floating* v, Py_ssize_t size,
                        double lr, double mom, floating reg,
                        ffc_update_stats* stats) noexcept nogil:
    """v = mom * v - lr * g; w += v"""
    if floating is float:
        ffc_sgd_momentum_s(w, dw, v, size, <float>lr, <float>mom, reg, stats)
    else:
        ffc_sgd_momentum_d(w, dw, v, size, lr, mom, reg, stats)


cdef void nesterov_step(floating* w, const floating* dw, floating* v, Py_ssize_t size,
                        double lr, double mom, floating reg,
                        ffc_update_stats* stats) noexcept nogil:
    """v' = mom * v - lr * g; w += v' + mom * (v' - v)"""
    if floating is float:
        ffc_sgd_nesterov_s(w, dw, v, size, <float>lr, <float>mom, reg, stats)
    else:
        ffc_sgd_nesterov_d(w, dw, v, size, lr, mom, reg, stats)


cdef void rmsprop_step(floating* w, const floating* dw, floating* cache, Py_ssize_t size,
                       double lr, double decay_rate, double eps,
                       floating reg, ffc_update_stats* stats) noexcept nogil:
    """c = dr * c + (1 - dr) * g**2; w -= lr * g / (sqrt(c) + eps)"""
    cdef double keep = 1.0 - decay_rate
    if floating is float:
        ffc_rmsprop_s(w, dw, cache, size, <float>lr, <float>decay_rate, <float>keep,
                      <float>eps, reg, stats)
    else:
        ffc_rmsprop_d(w, dw, cache, size, lr, decay_rate, keep, eps, reg, stats)


cdef void adam_step(floating* w, const floating* dw, floating* m, floating* v,
                    Py_ssize_t size, double lr, double beta1, double beta2,
                    double eps, floating reg, long long t,
                    ffc_update_stats* stats) noexcept nogil:
    """Adam step number t (t >= 1, already incremented)."""
    cdef double keep1 = 1.0 - beta1
    cdef double keep2 = 1.0 - beta2
    # Python's float ** int: pow() in double
    cdef double bc1 = 1.0 - pow(beta1, <double>t)
    cdef double bc2 = 1.0 - pow(beta2, <double>t)
    if floating is float:
        ffc_adam_s(w, dw, m, v, size, <float>lr, <float>beta1, <float>keep1, <float>beta2,
                   <float>keep2, <float>eps, reg, <float>bc1, <float>bc2, stats)
    else:
        ffc_adam_d(w, dw, m, v, size, lr, beta1, keep1, beta2, keep2, eps, reg, bc1, bc2,
                   stats)


cdef void adamw_step(floating* w, const floating* dw, floating* m, floating* v,
                     Py_ssize_t size, double lr, double beta1, double beta2,
                     double eps, double weight_decay, floating reg, long long t,
                     ffc_update_stats* stats) noexcept nogil:
    """AdamW step number t: w *= 1 - lr * weight_decay, then Adam's step."""
    cdef double keep1 = 1.0 - beta1
    cdef double keep2 = 1.0 - beta2
    cdef double bc1 = 1.0 - pow(beta1, <double>t)
    cdef double bc2 = 1.0 - pow(beta2, <double>t)
    cdef double shrink = 1.0 - lr * weight_decay
    if floating is float:
        ffc_adamw_s(w, dw, m, v, size, <float>lr, <float>beta1, <float>keep1, <float>beta2,
                    <float>keep2, <float>eps, reg, <float>bc1, <float>bc2, <float>shrink,
                    stats)
    else:
        ffc_adamw_d(w, dw, m, v, size, lr, beta1, keep1, beta2, keep2, eps, reg, bc1, bc2,
                    shrink, stats)


cdef void rule_step(const RuleParams* r, floating* w, const floating* dw, floating* s1,
                    floating* s2, Py_ssize_t size, floating reg,
                    ffc_update_stats* stats) noexcept nogil:
    """One update of `size` values with rule r.rule (s1, s2: its state, or NULL)."""
    if r.rule == RULE_SGD:
        sgd_step(w, dw, size, r.lr, reg, stats)
    elif r.rule == RULE_MOMENTUM:
        momentum_step(w, dw, s1, size, r.lr, r.mom, reg, stats)
    elif r.rule == RULE_NESTEROV:
        nesterov_step(w, dw, s1, size, r.lr, r.mom, reg, stats)
    elif r.rule == RULE_RMSPROP:
        rmsprop_step(w, dw, s1, size, r.lr, r.decay_rate, r.epsilon, reg, stats)
    elif r.rule == RULE_ADAM:
        adam_step(w, dw, s1, s2, size, r.lr, r.beta1, r.beta2, r.epsilon, reg, r.t, stats)
    else:
        adamw_step(w, dw, s1, s2, size, r.lr, r.beta1, r.beta2, r.epsilon, r.weight_decay,
                   reg, r.t, stats)


# ----------------------------------------------------------------- def twins
# Each twin updates w in place and returns the number of NaN/inf values in the new w
# (counted in the same pass), which the Solver uses as its divergence guard.  A large
# array is updated in slices over fastfc's thread pool (the rules are elementwise, so
# the result is the same as in one pass).

# arrays smaller than this are updated on the calling thread (a hand-off costs more)
cdef Py_ssize_t PARALLEL_MIN = 65536

ctypedef struct RuleTask:
    RuleParams params
    bint is_float
    char* w
    const char* dw
    char* s1
    char* s2
    Py_ssize_t size
    double reg
    ffc_update_stats stats[POOL_MAX_PARTS]


cdef void _rule_slice(RuleTask* k, Py_ssize_t lo, Py_ssize_t hi, ffc_update_stats* st,
                      floating dummy) noexcept nogil:
    rule_step(&k.params, <floating*>k.w + lo, <const floating*>k.dw + lo,
              <floating*>k.s1 + lo if k.s1 != NULL else NULL,
              <floating*>k.s2 + lo if k.s2 != NULL else NULL, hi - lo, <floating>k.reg, st)


cdef void _rule_part(void* arg, int part, int nparts) noexcept nogil:
    cdef RuleTask* k = <RuleTask*>arg
    cdef Py_ssize_t lo, hi
    part_range(k.size, part, nparts, 16, &lo, &hi)
    if hi <= lo:
        return
    if k.is_float:
        _rule_slice(k, lo, hi, &k.stats[part], <float>0)
    else:
        _rule_slice(k, lo, hi, &k.stats[part], <double>0)


cdef Py_ssize_t _run_rule(RuleTask* k) noexcept nogil:
    """Run the update (in parts when w is large and the pool is free); NaN/inf count."""
    cdef int p, token = 0
    cdef Py_ssize_t nonfinite = 0
    for p in range(POOL_MAX_PARTS):
        k.stats[p].sumsq = 0
        k.stats[p].nonfinite = 0
    if k.size >= PARALLEL_MIN:
        token = parallel_begin()
    parallel_run(_rule_part, k)         # one part on this thread unless the pool is ours
    parallel_end(token)
    for p in range(POOL_MAX_PARTS):
        nonfinite += k.stats[p].nonfinite
    return nonfinite


cdef void _task(RuleTask* k, int rule, floating* w, const floating* dw, floating* s1,
                floating* s2, Py_ssize_t size, double lr, double a, double b, double eps,
                double reg, long long t, double weight_decay=0) noexcept nogil:
    """a: momentum (sgd_momentum, nesterov), decay_rate (rmsprop) or beta1; b: beta2."""
    k.params.rule = rule
    k.params.lr = lr
    k.params.mom = a
    k.params.decay_rate = a
    k.params.beta1 = a
    k.params.beta2 = b
    k.params.epsilon = eps
    k.params.weight_decay = weight_decay
    k.params.counts_steps = False      # t arrives already advanced
    k.params.t = t
    k.is_float = floating is float
    k.w = <char*>w
    k.dw = <const char*>dw
    k.s1 = <char*>s1
    k.s2 = <char*>s2
    k.size = size
    k.reg = reg


def _sgd(floating[::1] w, const floating[::1] dw, double lr, floating reg=0):
    cdef RuleTask k
    _task(&k, RULE_SGD, &w[0], &dw[0], <floating*>NULL, <floating*>NULL, w.shape[0],
          lr, 0, 0, 0, reg, 0)
    cdef Py_ssize_t nonfinite
    with nogil:
        nonfinite = _run_rule(&k)
    return nonfinite


def _sgd_momentum(floating[::1] w, const floating[::1] dw, floating[::1] v,
                  double lr, double mom, floating reg=0):
    cdef RuleTask k
    _task(&k, RULE_MOMENTUM, &w[0], &dw[0], &v[0], <floating*>NULL, w.shape[0],
          lr, mom, 0, 0, reg, 0)
    cdef Py_ssize_t nonfinite
    with nogil:
        nonfinite = _run_rule(&k)
    return nonfinite


def _sgd_nesterov_momentum(floating[::1] w, const floating[::1] dw, floating[::1] v,
                           double lr, double mom, floating reg=0):
    cdef RuleTask k
    _task(&k, RULE_NESTEROV, &w[0], &dw[0], &v[0], <floating*>NULL, w.shape[0],
          lr, mom, 0, 0, reg, 0)
    cdef Py_ssize_t nonfinite
    with nogil:
        nonfinite = _run_rule(&k)
    return nonfinite


def _rmsprop(floating[::1] w, const floating[::1] dw, floating[::1] cache,
             double lr, double decay_rate, double eps, floating reg=0):
    cdef RuleTask k
    _task(&k, RULE_RMSPROP, &w[0], &dw[0], &cache[0], <floating*>NULL, w.shape[0],
          lr, decay_rate, 0, eps, reg, 0)
    cdef Py_ssize_t nonfinite
    with nogil:
        nonfinite = _run_rule(&k)
    return nonfinite


def _adam(floating[::1] w, const floating[::1] dw, floating[::1] m, floating[::1] v,
          double lr, double beta1, double beta2, double eps, long long t,
          floating reg=0):
    cdef RuleTask k
    _task(&k, RULE_ADAM, &w[0], &dw[0], &m[0], &v[0], w.shape[0],
          lr, beta1, beta2, eps, reg, t)
    cdef Py_ssize_t nonfinite
    with nogil:
        nonfinite = _run_rule(&k)
    return nonfinite


def _adamw(floating[::1] w, const floating[::1] dw, floating[::1] m, floating[::1] v,
           double lr, double beta1, double beta2, double eps, long long t,
           double weight_decay, floating reg=0):
    cdef RuleTask k
    _task(&k, RULE_ADAMW, &w[0], &dw[0], &m[0], &v[0], w.shape[0],
          lr, beta1, beta2, eps, reg, t, weight_decay)
    cdef Py_ssize_t nonfinite
    with nogil:
        nonfinite = _run_rule(&k)
    return nonfinite


def _update(int rule, floating[::1] w, const floating[::1] dw, s1, s2, double lr,
            double mom, double decay_rate, double beta1, double beta2, double epsilon,
            long long t, double weight_decay=0, floating reg=0):
    """Update w in place with the rule of code `rule` (s1, s2: its state arrays or None);
    returns the number of NaN/inf values in the new w."""
    # s1 and s2 are untyped so that None does not steer the fused-type dispatch
    cdef floating[::1] s1v
    cdef floating[::1] s2v
    cdef floating* p1 = NULL
    cdef floating* p2 = NULL
    if s1 is not None:
        s1v = s1
        p1 = &s1v[0]
    if s2 is not None:
        s2v = s2
        p2 = &s2v[0]
    cdef RuleTask k
    _task(&k, rule, &w[0], &dw[0], p1, p2, w.shape[0], lr, 0, 0, epsilon, reg, t,
          weight_decay)
    k.params.mom = mom
    k.params.decay_rate = decay_rate
    k.params.beta1 = beta1
    k.params.beta2 = beta2
    cdef Py_ssize_t nonfinite
    with nogil:
        nonfinite = _run_rule(&k)
    return nonfinite


# ----------------------------------------------------------------- weight averaging

ctypedef struct EmaTask:
    bint is_float
    char* avg
    const char* w
    Py_ssize_t size
    double decay
    double keep


cdef void ema_step(floating* avg, const floating* w, Py_ssize_t size, double decay,
                   double keep) noexcept nogil:
    """avg = decay * avg + keep * w (keep = 1 - decay; each rounded once to the type)."""
    if floating is float:
        ffc_ema_s(avg, w, size, <float>decay, <float>keep)
    else:
        ffc_ema_d(avg, w, size, decay, keep)


cdef void _ema_part(void* arg, int part, int nparts) noexcept nogil:
    cdef EmaTask* k = <EmaTask*>arg
    cdef Py_ssize_t lo, hi
    part_range(k.size, part, nparts, 16, &lo, &hi)
    if hi <= lo:
        return
    if k.is_float:
        ema_step(<float*>k.avg + lo, <const float*>k.w + lo, hi - lo, k.decay, k.keep)
    else:
        ema_step(<double*>k.avg + lo, <const double*>k.w + lo, hi - lo, k.decay, k.keep)


def ema_update(floating[::1] avg, const floating[::1] w, double decay):
    """avg = decay * avg + (1 - decay) * w, in place, in one pass (over fastfc's pool
    when the arrays are large).  avg and w: flat, C-contiguous, one float type and one
    length (the caller checks); decay is used as given."""
    if avg.shape[0] != w.shape[0]:
        raise ValueError(f"avg has {avg.shape[0]} values but w has {w.shape[0]}")
    cdef EmaTask k
    cdef int token = 0
    k.is_float = floating is float
    k.avg = <char*>&avg[0] if avg.shape[0] else NULL
    k.w = <const char*>&w[0] if w.shape[0] else NULL
    k.size = avg.shape[0]
    k.decay = decay
    k.keep = 1.0 - decay
    if k.size == 0:
        return
    with nogil:
        if k.size >= PARALLEL_MIN:
            token = parallel_begin()
        parallel_run(_ema_part, &k)
        parallel_end(token)
