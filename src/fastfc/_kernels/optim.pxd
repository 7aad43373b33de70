# In-place update rules: w is updated, dw is read, state arrays are updated.
# Every rule uses g = dw + reg * w (reg = 0: plain dw).  `stats` (may be NULL) collects
# the sum of squares of the old weights and the count of non-finite new weights.
from fastfc._kernels._types cimport floating
from fastfc._kernels._loops_common cimport ffc_update_stats

# One update rule and its hyper-parameters.  `rule` is the rule's code
# (fastfc._registry.UPDATE_RULES[name].code); a rule ignores the fields it does not use.
# Hyper-parameters come in as double (the Python floats they were given as); each rule
# forms its coefficients (1 - beta, 1 - beta**t) in double and rounds each one once to
# the array's type, as NumPy does for `float32_array * python_float`.
ctypedef struct RuleParams:
    int rule
    double lr
    double mom              # the momentum rules
    double decay_rate       # the decaying average of squared gradients
    double beta1            # the two moment averages
    double beta2
    double epsilon
    double weight_decay     # decoupled weight decay (adamw)
    bint counts_steps       # the rule keeps a step counter t (the caller advances it)
    long long t             # the step number, already incremented

cdef void rule_step(const RuleParams* r, floating* w, const floating* dw, floating* s1,
                    floating* s2, Py_ssize_t size, floating reg,
                    ffc_update_stats* stats) noexcept nogil
