# In-place update rules: w is updated, dw is read, state arrays are updated.
# Every rule uses g = dw + reg * w (reg = 0: plain dw).  `stats` (may be NULL) collects
# the sum of squares of the old weights and the count of non-finite new weights.
from fastfc._kernels._types cimport floating
from fastfc._kernels._loops_common cimport ffc_update_stats

# Hyper-parameters come in as double (the Python floats they were given as); each kernel
# forms its coefficients (1 - beta, 1 - beta**t) in double and rounds each one once to
# the array's type, as NumPy does for `float32_array * python_float`.
cdef void sgd_step(floating* w, const floating* dw, Py_ssize_t size,
                   double lr, floating reg, ffc_update_stats* stats) noexcept nogil
cdef void momentum_step(floating* w, const floating* dw, floating* v, Py_ssize_t size,
                        double lr, double mom, floating reg,
                        ffc_update_stats* stats) noexcept nogil
cdef void nesterov_step(floating* w, const floating* dw, floating* v, Py_ssize_t size,
                        double lr, double mom, floating reg,
                        ffc_update_stats* stats) noexcept nogil
cdef void rmsprop_step(floating* w, const floating* dw, floating* cache, Py_ssize_t size,
                       double lr, double decay_rate, double eps,
                       floating reg, ffc_update_stats* stats) noexcept nogil
cdef void adam_step(floating* w, const floating* dw, floating* m, floating* v,
                    Py_ssize_t size, double lr, double beta1, double beta2,
                    double eps, floating reg, long long t,
                    ffc_update_stats* stats) noexcept nogil

# The five rules by code (fastfc._kernels.net.RULE_CODES), with their hyper-parameters;
# a rule ignores the fields it does not use.
cdef enum:
    RULE_SGD = 0
    RULE_MOMENTUM = 1
    RULE_NESTEROV = 2
    RULE_RMSPROP = 3
    RULE_ADAM = 4

ctypedef struct RuleParams:
    int rule
    double lr
    double mom              # sgd_momentum, sgd_nesterov_momentum
    double decay_rate       # rmsprop
    double beta1            # adam
    double beta2
    double epsilon          # rmsprop, adam
    long long t             # adam: the step number, already incremented

cdef void rule_step(const RuleParams* r, floating* w, const floating* dw, floating* s1,
                    floating* s2, Py_ssize_t size, floating reg,
                    ffc_update_stats* stats) noexcept nogil
