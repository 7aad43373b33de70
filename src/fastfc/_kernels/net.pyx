"""The whole-network training step behind :class:`fastfc.Net`.

One call of :meth:`NetCore.train_step` runs, without the GIL and without Python per
layer:

1. (optionally) gather the minibatch rows of X by index, casting to the net's dtype;
2. the forward pass: per hidden layer ``z = x @ W`` (GEMM), then in one pass over z
   the bias, the normalisation (batch or layer norm), the activation and dropout;
   the output affine layer;
3. the softmax, SVM or mean-squared-error loss (optionally weighted per sample; the
   softmax cross-entropy optionally against label-smoothed targets), writing dscores;
4. the backward pass, reusing the forward buffers (no dX for the first layer);
5. the update rule over all parameters, with the L2 term ``reg * W`` fused in.

All parameters live in one flat buffer (W1, b1[, gamma1, beta1], W2, ...), their
gradients and the optimiser state in flat buffers of the same layout; the workspaces
are allocated once per batch capacity.  The Python class ``fastfc.net.Net`` owns the
arrays and validates its arguments (through fastfc._validation); this module trusts it
and checks the structure of what it is given only in the debug build
(FASTFC_CYTHON_DEBUG=1).  The one check it makes in every build is the range of the
labels and row indices, on the private copies the step reads (another thread may change
the caller's arrays after any check made before the call); Net's trusted callers turn
it off with ``check_input=False``.
"""
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_C_CONTIGUOUS, PyBUF_FORMAT
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, intptr_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy

import numpy as np

from fastfc._kernels._types cimport floating
from fastfc._kernels._loops_common cimport ffc_update_stats
from fastfc._kernels._dense_loops cimport *
from fastfc._kernels._net_loops cimport *
from fastfc._kernels.blas cimport (POOL_MAX_PARTS, gemm, dot, parallel_begin, parallel_end,
                                   set_thread_compute, thread_bf16, round_bf16,
                                   gather_bf16, gemm_bf16,
                                   parallel_parts, parallel_run, part_range)
from fastfc._kernels.losses cimport softmax_xent_smooth, svm_hinge, mse
from fastfc._kernels.norm cimport (bn_forward_train, bn_forward_test, bn_backward,
                                   ln_forward, ln_backward)
from fastfc._kernels.optim cimport RuleParams, rule_step

cdef enum:
    LOSS_MSE = 2    # the registry's loss_kind of 'mse' (float targets of shape (n, d))

cdef extern from *:
    """
    #ifndef FASTFC_DEBUG_BUILD
    #define FASTFC_DEBUG_BUILD 0
    #endif
    """
    # 1 in the debug build (setup.py: FASTFC_CYTHON_DEBUG=1): the core checks its inputs
    const bint FASTFC_DEBUG_BUILD

# The codes of the normalisations, losses and update rules are those of
# fastfc._registry (NORMALIZATIONS, LOSSES, UPDATE_RULES): Net passes them in.
cdef enum:
    NORM_NONE = 0
    NORM_BATCH = 1
    NORM_LAYER = 2

cdef struct Layer:
    int d_in
    int d_out
    Py_ssize_t w_off        # offsets into the flat parameter / gradient buffers
    Py_ssize_t b_off
    Py_ssize_t g_off        # gamma (normalised hidden layers)
    Py_ssize_t be_off       # beta
    Py_ssize_t end_off      # one past this layer's last parameter
    void* z                 # (n, d_out) affine output, bias added
    void* xhat              # (n, d_out) normalised z
    void* hn                # (n, d_out) gamma * xhat + beta: the activation input
    void* y                 # (n, d_out) activation output (aliases its input unless swish)
    void* a                 # (n, d_out) output after dropout (aliases y without dropout)
    uint8_t* mask           # (n, d_out) dropout mask
    void* mean              # batch norm: (d_out,); layer norm: (n,)
    void* var
    void* inv_std
    void* running_mean      # batch norm running statistics (d_out,)
    void* running_var
    uint16_t* a16           # bf16 steps: (n, d_out) the layer's output, rounded to bf16
    Py_ssize_t w16_off      # bf16 steps: offset of W in NetState.w16


cdef struct NetState:
    int n_layers
    int act
    double alpha
    int norm
    bint dropout
    uint32_t threshold      # keep probability * 2**24
    double drop_scale       # 1 / keep probability
    double bn_eps
    double bn_momentum
    int loss_kind
    double label_smoothing  # softmax: targets (1 - eps) onehot(y) + eps / C (0: one-hot)
    Layer* layers
    void* params
    void* grads
    void* xbuf              # (n, d_in) gathered minibatch
    void* g_a               # two (n, max width) gradient buffers
    void* g_b
    RuleParams opt          # the update rule and its hyper-parameters
    double reg
    void* s1                # optimiser state (velocity / cache / m)
    void* s2                # second optimiser state (adam's v)
    uint64_t drop_key
    uint64_t step
    Py_ssize_t nonfinite     # NaN/inf parameters after the last update
    # bf16 steps (float32 nets whose products run in bfloat16 on this thread): every
    # GEMM operand is rounded once per step and shared by the products that use it
    # (the forward and the dW product share a layer's input, dW and dX the upstream
    # gradient, the forward and dX the weights), instead of being rounded again inside
    # each product.  The loop that writes an operand writes its bf16 copy too (the
    # gather, the activation, dropout, the activation's backward loop); the weights,
    # a normalisation's or the loss's gradient get a pass of their own
    bint bf16
    uint16_t* w16           # all weights, rounded at the start of the step
    uint16_t* x16           # (n, d_in) the minibatch, rounded as it is gathered
    uint16_t* g16           # (n, max width) the upstream gradient of the current layer


# An update over fewer parameters than this runs on the calling thread: handing slices
# of it to the pool costs more than it saves (the same bound as optim.pyx's PARALLEL_MIN).
cdef Py_ssize_t UPDATE_SPLIT_MIN = 65536
# A gather of fewer elements than this runs on the calling thread.
cdef Py_ssize_t GATHER_SPLIT_MIN = 65536
# bf16 steps round each operand once (NetState.bf16); False leaves the rounding to each
# product, as for any float32 GEMM under a bf16 compute dtype -- the same bits, for the
# tests that check it (_set_preround)
cdef bint _PREROUND = True


def _set_preround(bint on):
    """Whether bf16 steps round each operand once per step (True, the default) or in
    every product; returns the previous setting.  For tests: both give the same bits."""
    global _PREROUND
    old = _PREROUND
    _PREROUND = on
    return bool(old)


cdef inline uint64_t _layer_key(NetState* st, int i) noexcept nogil:
    return ffc_splitmix64(st.drop_key ^ ffc_splitmix64(st.step * 0x100000001b3ULL + <uint64_t>i))


cdef void _forward(NetState* st, const floating* X, Py_ssize_t n, bint train) noexcept nogil:
    """Forward pass; the scores end in layers[L-1].z."""
    cdef floating* P = <floating*>st.params
    cdef const floating* x_in = X
    cdef const uint16_t* x16 = st.x16
    cdef Layer* ly
    cdef int i, d_in, d
    cdef floating* z
    cdef floating* act_in
    cdef floating* y
    cdef const floating* bias
    cdef uint16_t* r16
    cdef bint drop
    for i in range(st.n_layers - 1):
        ly = &st.layers[i]
        d_in = ly.d_in
        d = ly.d_out
        z = <floating*>ly.z
        # z = x_in @ W
        if floating is float and st.bf16:
            gemm_bf16(False, False, <int>n, d, d_in, 1, x16, d_in, st.w16 + ly.w16_off, d,
                      0, z, d)
        else:
            gemm(False, False, <int>n, d, d_in, <floating>1, x_in, d_in, P + ly.w_off, d,
                 <floating>0, z, d)
        if st.norm == NORM_NONE:
            act_in = z
            bias = P + ly.b_off
        else:
            # z += b, then normalise z into hn
            if floating is float:
                ffc_bias_act_inplace_s(FFC_ACT_IDENTITY, z, P + ly.b_off, n, d, 0)
            else:
                ffc_bias_act_inplace_d(FFC_ACT_IDENTITY, z, P + ly.b_off, n, d, 0)
            act_in = <floating*>ly.hn
            bias = NULL
            if st.norm == NORM_BATCH:
                if train:
                    bn_forward_train(z, n, d, P + ly.g_off, P + ly.be_off,
                                     <floating>st.bn_eps, <floating>st.bn_momentum,
                                     <floating*>ly.running_mean, <floating*>ly.running_var,
                                     act_in, <floating*>ly.xhat, <floating*>ly.mean,
                                     <floating*>ly.var, <floating*>ly.inv_std)
                else:
                    bn_forward_test(z, n, d, P + ly.g_off, P + ly.be_off,
                                    <floating>st.bn_eps, <floating*>ly.running_mean,
                                    <floating*>ly.running_var, act_in, NULL,
                                    <floating*>ly.inv_std)
            else:
                ln_forward(z, n, d, P + ly.g_off, P + ly.be_off, <floating>st.bn_eps,
                           act_in, <floating*>ly.xhat, <floating*>ly.mean,
                           <floating*>ly.inv_std)
        # y = f(act_in + bias).  A bf16 step has the last loop that writes the layer's
        # output (the activation, or dropout's scaling) also write its bf16 copy, the
        # next products' operand
        y = <floating*>ly.y
        drop = st.dropout and train
        r16 = NULL
        if floating is float and st.bf16:
            r16 = ly.a16
            x16 = ly.a16
        if st.act == FFC_ACT_SWISH:
            if floating is float:
                if r16 != NULL and not drop:
                    ffc_bias_swish_r16(act_in, bias, y, n, d, r16)
                else:
                    ffc_bias_swish_s(act_in, bias, y, n, d)
            else:
                ffc_bias_swish_d(act_in, bias, y, n, d)
        else:
            if floating is float:
                if r16 != NULL and not drop:
                    ffc_bias_act_r16(st.act, act_in, bias, n, d, <float>st.alpha, r16)
                else:
                    ffc_bias_act_inplace_s(st.act, act_in, bias, n, d, <float>st.alpha)
            else:
                ffc_bias_act_inplace_d(st.act, act_in, bias, n, d, st.alpha)
        if drop:
            # a = y * mask / p
            ffc_dropout_mask(ly.mask, n * d, st.threshold, _layer_key(st, i))
            if floating is float:
                if r16 != NULL:
                    ffc_dropout_apply_r16(y, ly.mask, <float>st.drop_scale, <float*>ly.a,
                                          n * d, r16)
                else:
                    ffc_dropout_apply_s(y, ly.mask, <float>st.drop_scale, <float*>ly.a, n * d)
            else:
                ffc_dropout_apply_d(y, ly.mask, st.drop_scale, <double*>ly.a, n * d)
            x_in = <floating*>ly.a
        else:
            x_in = y
    ly = &st.layers[st.n_layers - 1]
    # scores = x_in @ W_L + b_L: the rows start as b_L and GEMM adds the product onto
    # them (the order dense.affine_forward uses, so both round alike)
    if floating is float:
        ffc_fill_rows_s(<floating*>ly.z, P + ly.b_off, n, ly.d_out)
    else:
        ffc_fill_rows_d(<floating*>ly.z, P + ly.b_off, n, ly.d_out)
    if floating is float and st.bf16:
        gemm_bf16(False, False, <int>n, ly.d_out, ly.d_in, 1, x16, ly.d_in,
                  st.w16 + ly.w16_off, ly.d_out, 1, <float*>ly.z, ly.d_out)
    else:
        gemm(False, False, <int>n, ly.d_out, ly.d_in, <floating>1, x_in, ly.d_in,
             P + ly.w_off, ly.d_out, <floating>1, <floating*>ly.z, ly.d_out)


cdef void _backward(NetState* st, const floating* X, Py_ssize_t n) noexcept nogil:
    """Backward pass from dscores (in g_a) to every parameter gradient (no dX)."""
    cdef floating* P = <floating*>st.params
    cdef floating* dP = <floating*>st.grads
    cdef floating* G = <floating*>st.g_a
    cdef floating* G2 = <floating*>st.g_b
    cdef floating* tmp
    cdef const floating* x_in
    cdef const uint16_t* x16
    cdef floating* act_in
    cdef Layer* ly
    cdef Layer* prev
    cdef int i, d_in, d
    cdef bint g16_done
    for i in range(st.n_layers - 1, -1, -1):
        ly = &st.layers[i]
        d_in = ly.d_in
        d = ly.d_out
        g16_done = False            # st.g16 holds bf16(G) already
        if i < st.n_layers - 1:
            # G holds d(loss)/d(a_i); undo dropout, activation and normalisation
            if st.dropout:
                if floating is float:
                    ffc_dropout_apply_s(G, ly.mask, <float>st.drop_scale, G, n * d)
                else:
                    ffc_dropout_apply_d(G, ly.mask, st.drop_scale, G, n * d)
            act_in = <floating*>(ly.z if st.norm == NORM_NONE else ly.hn)
            if floating is float:
                if st.bf16 and st.norm == NORM_NONE:
                    # the last loop that writes G: it writes the bf16 copy too
                    ffc_act_backward_r16(st.act, act_in, <float*>ly.y, G, n * d,
                                         <float>st.alpha, st.g16)
                    g16_done = True
                else:
                    ffc_act_backward_s(st.act, act_in, <float*>ly.y, G, n * d,
                                       <float>st.alpha)
            else:
                ffc_act_backward_d(st.act, act_in, <double*>ly.y, G, n * d, st.alpha)
            if st.norm == NORM_BATCH:
                bn_backward(G, <floating*>ly.xhat, n, d, P + ly.g_off, <floating*>ly.inv_std,
                            G, dP + ly.g_off, dP + ly.be_off)
            elif st.norm == NORM_LAYER:
                ln_backward(G, <floating*>ly.xhat, n, d, P + ly.g_off, <floating*>ly.inv_std,
                            G, dP + ly.g_off, dP + ly.be_off)
        if i == 0:
            x_in = X
            x16 = st.x16
        else:
            prev = &st.layers[i - 1]
            x_in = <floating*>(prev.a if st.dropout else prev.y)
            x16 = prev.a16
        # dW = x_in.T @ G
        if floating is float and st.bf16:
            if not g16_done:
                # G came from the loss or a normalisation's backward pass
                round_bf16(G, d, n, d, st.g16)
            gemm_bf16(True, False, d_in, d, <int>n, 1, x16, d_in, st.g16, d, 0,
                      dP + ly.w_off, d)
        else:
            gemm(True, False, d_in, d, <int>n, <floating>1, x_in, d_in, G, d, <floating>0,
                 dP + ly.w_off, d)
        # db = G.sum(axis=0)
        if floating is float:
            ffc_col_sum_s(G, n, d, dP + ly.b_off)
        else:
            ffc_col_sum_d(G, n, d, dP + ly.b_off)
        if i > 0:
            # G2 = G @ W.T
            if floating is float and st.bf16:
                gemm_bf16(False, True, <int>n, d_in, d, 1, st.g16, d, st.w16 + ly.w16_off,
                          d, 0, G2, d_in)
            else:
                gemm(False, True, <int>n, d_in, d, <floating>1, G, d, P + ly.w_off, d,
                     <floating>0, G2, d_in)
            tmp = G
            G = G2
            G2 = tmp


cdef double _weights_sq(NetState* st, floating dummy) noexcept nogil:
    """sum over layers of (W ** 2).sum()"""
    cdef floating* P = <floating*>st.params
    cdef double total = 0
    cdef int i
    cdef Layer* ly
    for i in range(st.n_layers):
        ly = &st.layers[i]
        if floating is float:
            total += ffc_sum_sq_s(P + ly.w_off, ly.b_off - ly.w_off)
        else:
            total += ffc_sum_sq_d(P + ly.w_off, ly.b_off - ly.w_off)
    return total


ctypedef struct UpdateTask:
    NetState* st
    bint is_float
    ffc_update_stats weights[POOL_MAX_PARTS]
    ffc_update_stats others[POOL_MAX_PARTS]


cdef void _update_part_t(UpdateTask* task, int part, int nparts,
                         floating dummy) noexcept nogil:
    """Slice `part` of every weight and bias segment (16-element aligned)."""
    cdef NetState* st = task.st
    cdef floating* P = <floating*>st.params
    cdef floating* dP = <floating*>st.grads
    cdef floating* s1 = <floating*>st.s1
    cdef floating* s2 = <floating*>st.s2
    cdef int i
    cdef Layer* ly
    cdef Py_ssize_t o, lo, hi
    for i in range(st.n_layers):
        ly = &st.layers[i]
        part_range(ly.b_off - ly.w_off, part, nparts, 16, &lo, &hi)
        o = ly.w_off + lo
        if hi > lo:
            rule_step(&st.opt, P + o, dP + o, s1 + o if s1 != NULL else NULL,
                      s2 + o if s2 != NULL else NULL, hi - lo, <floating>st.reg,
                      &task.weights[part])
        part_range(ly.end_off - ly.b_off, part, nparts, 16, &lo, &hi)
        o = ly.b_off + lo
        if hi > lo:
            rule_step(&st.opt, P + o, dP + o, s1 + o if s1 != NULL else NULL,
                      s2 + o if s2 != NULL else NULL, hi - lo, <floating>0,
                      &task.others[part])


cdef void _update_part(void* arg, int part, int nparts) noexcept nogil:
    cdef UpdateTask* task = <UpdateTask*>arg
    if task.is_float:
        _update_part_t(task, part, nparts, <float>0)
    else:
        _update_part_t(task, part, nparts, <double>0)


cdef double _update(NetState* st, floating dummy) noexcept nogil:
    """One step of the update rule over every parameter; L2 (reg * W) on weights only.

    Returns sum(W ** 2) over the weights before the update (for the loss) and sets
    st.nonfinite to the number of NaN/inf parameters after it, both from the same pass.
    Inside a parallel step every thread of the pool updates one slice of each segment.
    """
    cdef UpdateTask task
    cdef int p
    cdef double sumsq = 0
    cdef Py_ssize_t nonfinite = 0
    task.st = st
    task.is_float = floating is float
    for p in range(POOL_MAX_PARTS):
        task.weights[p].sumsq = 0
        task.weights[p].nonfinite = 0
        task.others[p].sumsq = 0
        task.others[p].nonfinite = 0
    if st.opt.counts_steps:
        st.opt.t += 1
    if st.layers[st.n_layers - 1].end_off < UPDATE_SPLIT_MIN:
        _update_part(&task, 0, 1)       # too small to pay for the pool
    else:
        parallel_run(_update_part, &task)   # one part here unless the pool is ours
    for p in range(POOL_MAX_PARTS):
        sumsq += task.weights[p].sumsq
        nonfinite += task.weights[p].nonfinite + task.others[p].nonfinite
    st.nonfinite = nonfinite
    return sumsq


cdef Py_ssize_t _bad_label(const intptr_t* y, Py_ssize_t n, Py_ssize_t c) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if y[i] < 0 or y[i] >= c:
            return i
    return -1


cdef void _gather(const void* X, bint x_is_float, const intptr_t* idx, Py_ssize_t n,
                  Py_ssize_t d, floating* out) noexcept nogil:
    if floating is float:
        if x_is_float:
            ffc_gather_rows_f_s(<const float*>X, idx, n, d, out)
        else:
            ffc_gather_rows_d_s(<const double*>X, idx, n, d, out)
    else:
        if x_is_float:
            ffc_gather_rows_f_d(<const float*>X, idx, n, d, out)
        else:
            ffc_gather_rows_d_d(<const double*>X, idx, n, d, out)


ctypedef struct GatherTask:
    const char* X
    bint x_is_float
    bint out_is_float
    const intptr_t* idx
    Py_ssize_t n, d
    char* out


cdef void _gather_part(void* arg, int part, int nparts) noexcept nogil:
    """Rows [lo, hi) of a split gather (random rows: latency-bound, so worth two cores)."""
    cdef GatherTask* g = <GatherTask*>arg
    cdef Py_ssize_t lo, hi
    cdef const char* X = g.X
    cdef const intptr_t* idx = g.idx
    part_range(g.n, part, nparts, 1, &lo, &hi)
    if hi <= lo:
        return
    if idx != NULL:
        idx += lo
    else:
        X += lo * g.d * (sizeof(float) if g.x_is_float else sizeof(double))
    if g.out_is_float:
        _gather(X, g.x_is_float, idx, hi - lo, g.d, <float*>g.out + lo * g.d)
    else:
        _gather(X, g.x_is_float, idx, hi - lo, g.d, <double*>g.out + lo * g.d)


cdef void _gather_rows(const void* X, bint x_is_float, const intptr_t* idx, Py_ssize_t n,
                       Py_ssize_t d, floating* out) noexcept nogil:
    """_gather, split over the pool for a large minibatch inside a parallel step."""
    cdef GatherTask g
    if parallel_parts() < 2 or n * d < GATHER_SPLIT_MIN:
        _gather(X, x_is_float, idx, n, d, out)
        return
    g.X = <const char*>X
    g.x_is_float = x_is_float
    g.out_is_float = floating is float
    g.idx = idx
    g.n = n
    g.d = d
    g.out = <char*>out
    parallel_run(_gather_part, &g)


cdef double _step(NetState* st, const void* X, bint x_is_float, bint gather,
                  const intptr_t* idx, const intptr_t* labels, const void* targets,
                  const void* weights, Py_ssize_t n, bint train,
                  bint backward, bint update, floating dummy) noexcept nogil:
    """Forward [+ loss + backward [+ update]]; returns the data loss (0 without labels
    or targets).  ``weights``: per-sample weights of the loss, or NULL."""
    cdef const floating* x_in
    cdef Layer* last = &st.layers[st.n_layers - 1]
    cdef double loss = 0
    cdef double sumsq = 0
    cdef Py_ssize_t d0 = st.layers[0].d_in
    cdef int i
    cdef Layer* ly
    if floating is float and st.bf16:
        for i in range(st.n_layers):
            ly = &st.layers[i]
            round_bf16(<float*>st.params + ly.w_off, ly.d_out, ly.d_in, ly.d_out,
                       st.w16 + ly.w16_off)
    if gather:
        if floating is float and st.bf16 and x_is_float:
            # the rows go straight to bf16: the float32 minibatch is never needed (xbuf
            # stays unfilled; a bf16 step's products read x16 only)
            gather_bf16(<const float*>X, idx, n, d0, st.x16)
        else:
            _gather_rows(X, x_is_float, idx, n, d0, <floating*>st.xbuf)
        x_in = <floating*>st.xbuf
    else:
        x_in = <const floating*>X
    if floating is float and st.bf16 and not (gather and x_is_float):
        round_bf16(x_in, d0, n, d0, st.x16)
    _forward(st, x_in, n, train)
    if labels == NULL and targets == NULL:
        return 0
    if st.loss_kind == 0:
        # label_smoothing 0 runs the plain softmax_xent (bit-identical)
        loss = softmax_xent_smooth(<floating*>last.z, labels, <const floating*>weights, n,
                                   last.d_out, st.label_smoothing, <floating*>st.g_a)
    elif st.loss_kind == LOSS_MSE:
        loss = mse(<floating*>last.z, <const floating*>targets, <const floating*>weights, n,
                   last.d_out, <floating*>st.g_a)
    else:
        loss = svm_hinge(<floating*>last.z, labels, <const floating*>weights, n,
                         last.d_out, <floating*>st.g_a)
    if backward:
        _backward(st, x_in, n)
    if update:
        # the update pass also sums the squares of the weights it starts from
        sumsq = _update(st, dummy)
    elif st.reg != 0:
        sumsq = _weights_sq(st, dummy)
    if st.reg != 0:
        loss += 0.5 * st.reg * sumsq
    return loss


cdef class NetCore:
    """Pointers and settings of one Net; see fastfc.net.Net for the public interface."""
    cdef NetState st
    cdef readonly bint is_float
    cdef readonly Py_ssize_t capacity
    cdef readonly object dims
    cdef readonly object dtype
    cdef list _keep           # workspace arrays kept alive while pointers use them
    cdef object _params, _grads, _state1, _state2, _running, _scores
    cdef object _ybuf, _ibuf  # the step's own copies of the labels and the row indices
    cdef intptr_t* _ydata     # their data (set when they are allocated)
    cdef intptr_t* _idata
    # the compute dtype of this Net's float32 products: -1 the process-wide one, 0 float32,
    # 1 bfloat16 (fastfc.net.Net checks that a bf16 GEMM is loaded before it sets 1)
    cdef public int compute
    cdef object _b16          # the bf16 operands of bf16 steps (uint16), made on demand
    cdef Py_ssize_t _b16_cap  # the capacity they were made for (-1: none)

    def __cinit__(self):
        self.st.layers = NULL
        self.compute = -1
        self._b16 = None
        self._b16_cap = -1

    def __init__(self, dims, dtype, int act, double alpha, int norm, double keep_prob,
                 double bn_eps, double bn_momentum, int loss_kind, uint64_t drop_key):
        cdef int i
        cdef Py_ssize_t off = 0
        cdef Layer* ly
        self.dims = tuple(int(d) for d in dims)
        self.dtype = np.dtype(dtype)
        self.is_float = self.dtype == np.float32
        self.capacity = 0
        self._keep = []
        self._ybuf = np.zeros(1, dtype=np.intp)
        self._ibuf = np.zeros(1, dtype=np.intp)
        self._ydata = <intptr_t*><size_t>self._ybuf.ctypes.data
        self._idata = <intptr_t*><size_t>self._ibuf.ctypes.data
        st = &self.st
        st.n_layers = len(self.dims) - 1
        st.layers = <Layer*>calloc(st.n_layers, sizeof(Layer))
        if st.layers == NULL:
            raise MemoryError()
        st.act = act
        st.alpha = alpha
        st.norm = norm
        st.dropout = keep_prob < 1.0
        st.threshold = <uint32_t>(keep_prob * 16777216.0 + 0.5)
        st.drop_scale = 1.0 / keep_prob
        st.bn_eps = bn_eps
        st.bn_momentum = bn_momentum
        st.loss_kind = loss_kind
        st.label_smoothing = 0
        st.drop_key = drop_key
        st.step = 0
        st.nonfinite = 0
        st.bf16 = False
        st.w16 = st.x16 = st.g16 = NULL
        st.opt.rule = 0             # set_optimizer chooses the rule before any step
        st.opt.lr = 1e-2
        st.opt.counts_steps = False
        st.opt.weight_decay = 0
        st.opt.t = 0
        st.reg = 0
        st.s1 = NULL
        st.s2 = NULL
        for i in range(st.n_layers):
            ly = &st.layers[i]
            ly.d_in = self.dims[i]
            ly.d_out = self.dims[i + 1]
            ly.w_off = off
            off += <Py_ssize_t>ly.d_in * ly.d_out
            ly.b_off = off
            off += ly.d_out
            if norm != NORM_NONE and i < st.n_layers - 1:
                ly.g_off = off
                off += ly.d_out
                ly.be_off = off
                off += ly.d_out
            ly.end_off = off

    def __dealloc__(self):
        free(self.st.layers)

    def layout(self):
        """[(name, offset, shape)] of every parameter in the flat buffer, in order."""
        cdef Layer* ly
        out = []
        for i in range(self.st.n_layers):
            ly = &self.st.layers[i]
            out.append((f"W{i + 1}", ly.w_off, (ly.d_in, ly.d_out)))
            out.append((f"b{i + 1}", ly.b_off, (ly.d_out,)))
            if self.st.norm != NORM_NONE and i < self.st.n_layers - 1:
                out.append((f"gamma{i + 1}", ly.g_off, (ly.d_out,)))
                out.append((f"beta{i + 1}", ly.be_off, (ly.d_out,)))
        return out

    @property
    def n_params(self):
        return self.st.layers[self.st.n_layers - 1].end_off

    def bind(self, params, grads, running):
        """Point the kernels at the flat parameter and gradient buffers and, for batch
        norm, at the running statistics [(mean, var)] of each hidden layer."""
        self._params = params
        self._grads = grads
        self._running = running
        self.st.params = _data_ptr(params, self.dtype, self.n_params)
        self.st.grads = _data_ptr(grads, self.dtype, self.n_params)
        if self.st.norm == NORM_BATCH:
            for i in range(self.st.n_layers - 1):
                mean, var = running[i]
                self.st.layers[i].running_mean = _data_ptr(mean, self.dtype, self.dims[i + 1])
                self.st.layers[i].running_var = _data_ptr(var, self.dtype, self.dims[i + 1])

    def set_optimizer(self, int rule, double lr, double mom, double decay_rate,
                      double beta1, double beta2, double epsilon, bint counts_steps,
                      long long t, state1, state2, double weight_decay=0):
        """Select the update rule, its hyper-parameters and flat state buffers
        (weight_decay: the decoupled decay of adamw)."""
        self.st.opt.rule = rule
        self.st.opt.weight_decay = weight_decay
        self.st.opt.counts_steps = counts_steps
        self.st.opt.lr = lr
        self.st.opt.mom = mom
        self.st.opt.decay_rate = decay_rate
        self.st.opt.beta1 = beta1
        self.st.opt.beta2 = beta2
        self.st.opt.epsilon = epsilon
        self.st.opt.t = t
        self._state1 = state1
        self._state2 = state2
        self.st.s1 = NULL if state1 is None else _data_ptr(state1, self.dtype, self.n_params)
        self.st.s2 = NULL if state2 is None else _data_ptr(state2, self.dtype, self.n_params)

    property learning_rate:
        def __get__(self):
            return self.st.opt.lr

        def __set__(self, double value):
            self.st.opt.lr = value

    property reg:
        def __get__(self):
            return self.st.reg

        def __set__(self, double value):
            self.st.reg = value

    property label_smoothing:
        """eps of the softmax loss's targets (1 - eps) onehot(y) + eps / C; the caller
        (Net) keeps it in [0, 1) and 0 for the other losses."""
        def __get__(self):
            return self.st.label_smoothing

        def __set__(self, double value):
            self.st.label_smoothing = value

    property t:
        def __get__(self):
            return self.st.opt.t

        def __set__(self, long long value):
            self.st.opt.t = value

    property step:
        """Number of training steps taken (keys the dropout masks)."""
        def __get__(self):
            return self.st.step

        def __set__(self, uint64_t value):
            self.st.step = value

    property nonfinite:
        """NaN or infinite parameters found after the last update (0 when healthy)."""
        def __get__(self):
            return self.st.nonfinite

    property drop_key:
        def __get__(self):
            return self.st.drop_key

        def __set__(self, uint64_t value):
            self.st.drop_key = value

    def ensure_capacity(self, Py_ssize_t n):
        """Allocate the workspaces for minibatches of up to n rows (grow only)."""
        if n <= self.capacity:
            return
        self._allocate(max(n, 2 * self.capacity) if self.capacity else n)

    def shrink(self, Py_ssize_t n):
        """Bring the workspaces down to n rows (0: free them) if they are larger."""
        if n < self.capacity:
            self._allocate(n)

    @property
    def workspace_bytes(self):
        """Bytes held by the batch workspaces (not the parameters or optimiser state)."""
        return sum(a.nbytes for a in self._keep) + (self._b16.nbytes if self._b16 is not None
                                                    else 0)

    cdef _ensure_b16(self):
        """Point NetState's bf16 operands at storage for the current capacity."""
        cdef Layer* ly
        cdef int i
        cdef Py_ssize_t cap = self.capacity, off = 0, size
        cdef uint16_t* base
        if self._b16_cap == cap:
            return
        width = max(self.dims[1:])
        size = cap * (self.dims[0] + width) + 1
        for i in range(self.st.n_layers):
            ly = &self.st.layers[i]
            size += <Py_ssize_t>ly.d_in * ly.d_out
            if i < self.st.n_layers - 1:
                size += cap * ly.d_out
        self._b16 = None
        self._b16 = np.empty(size, dtype=np.uint16)
        base = <uint16_t*><size_t>self._b16.ctypes.data
        self.st.x16 = base
        off = cap * self.dims[0]
        self.st.g16 = base + off
        off += cap * width
        for i in range(self.st.n_layers):
            ly = &self.st.layers[i]
            ly.w16_off = off
            off += <Py_ssize_t>ly.d_in * ly.d_out
        self.st.w16 = base
        for i in range(self.st.n_layers - 1):
            ly = &self.st.layers[i]
            ly.a16 = base + off
            off += cap * ly.d_out
        self._b16_cap = cap

    def _allocate(self, Py_ssize_t cap):
        """(Re)create every workspace for `cap` rows; cap 0 frees them."""
        keep = []
        cdef Layer* ly
        cdef int i
        self._b16 = None            # made again, for the new capacity, by a bf16 step
        self._b16_cap = -1
        self.st.bf16 = False
        if cap == 0:
            self.st.xbuf = NULL
            self.st.g_a = NULL
            self.st.g_b = NULL
            for i in range(self.st.n_layers):
                ly = &self.st.layers[i]
                ly.z = ly.xhat = ly.hn = ly.y = ly.a = NULL
                ly.mean = ly.var = ly.inv_std = NULL
                ly.mask = NULL
            self._scores = None
            self._keep = keep
            self.capacity = 0
            return
        width = max(self.dims[1:])
        self.st.xbuf = _alloc(keep, (cap, self.dims[0]), self.dtype)
        self.st.g_a = _alloc(keep, (cap, width), self.dtype)
        self.st.g_b = _alloc(keep, (cap, width), self.dtype)
        for i in range(self.st.n_layers):
            ly = &self.st.layers[i]
            d = ly.d_out
            ly.z = _alloc(keep, (cap, d), self.dtype)
            if i == self.st.n_layers - 1:
                self._scores = keep[len(keep) - 1]
                continue
            if self.st.norm != NORM_NONE:
                ly.xhat = _alloc(keep, (cap, d), self.dtype)
                ly.hn = _alloc(keep, (cap, d), self.dtype)
                rows = d if self.st.norm == NORM_BATCH else cap
                ly.mean = _alloc(keep, (rows,), self.dtype)
                ly.var = _alloc(keep, (rows,), self.dtype)
                ly.inv_std = _alloc(keep, (rows,), self.dtype)
            act_in = ly.hn if self.st.norm != NORM_NONE else ly.z
            ly.y = _alloc(keep, (cap, d), self.dtype) if self.st.act == FFC_ACT_SWISH else act_in
            if self.st.dropout:
                ly.a = _alloc(keep, (cap, d), self.dtype)
                ly.mask = <uint8_t*>_alloc(keep, (cap, d), np.dtype(np.uint8))
            else:
                ly.a = ly.y
                ly.mask = NULL
        self._keep = keep
        self.capacity = cap

    cdef intptr_t* _copy_ints(self, Py_buffer* src, Py_ssize_t n, bint labels):
        """Copy n intp values out of a caller's buffer into the core's own (grow-only)
        buffer, under the GIL: the step reads the copy, which no other thread can
        change, never the caller's array."""
        buf = self._ybuf if labels else self._ibuf
        if buf.shape[0] < n:
            buf = np.zeros(max(n, 2 * buf.shape[0]), dtype=np.intp)
            if labels:
                self._ybuf = buf
                self._ydata = <intptr_t*><size_t>buf.ctypes.data
            else:
                self._ibuf = buf
                self._idata = <intptr_t*><size_t>buf.ctypes.data
        cdef intptr_t* dst = self._ydata if labels else self._idata
        if n > 0:
            memcpy(dst, src.buf, n * sizeof(intptr_t))
        return dst

    def run(self, X, y, indices, bint train, bint backward, bint update,
            sample_weight=None, bint check=True):
        """Forward [+ loss, backward, update] on a minibatch; returns the loss.

        X: C-contiguous float32/float64 array with rows of dims[0] features (any
        trailing shape), or the whole data set when ``indices`` (intp, non-empty) picks
        the rows.  y: intp labels, one per row (softmax, svm), C-contiguous targets of
        the net's dtype with n * n_outputs values (mse), or None (forward only).
        sample_weight: None or n values of the net's dtype (>= 0, finite, positive
        sum); like float targets it is read in place.  The caller (fastfc.net.Net)
        guarantees all of this; the debug build checks it.  ``check``: check the range
        of the labels and indices (on the private copies) before any work; a trusted
        caller whose values are known to be in range passes False.
        """
        cdef Py_buffer xb
        cdef Py_buffer yb
        cdef Py_buffer ib
        cdef Py_buffer tb
        cdef Py_buffer wb
        cdef bint have_t = False
        cdef bint have_w = False
        cdef const void* targets = NULL
        cdef const void* weights = NULL
        cdef char want = b'f' if self.is_float else b'd'
        cdef const intptr_t* labels = NULL
        cdef const intptr_t* idx = NULL
        cdef Py_ssize_t n, rows, bad
        cdef bint x_is_float, gather
        cdef double loss
        cdef int token, old_compute = -1
        cdef bint own
        cdef Py_ssize_t d0 = self.dims[0]
        cdef bint check_values = check or FASTFC_DEBUG_BUILD
        PyObject_GetBuffer(X, &xb, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)
        try:
            x_is_float = xb.format[0] == b'f' and xb.format[1] == 0
            if FASTFC_DEBUG_BUILD:
                if not x_is_float and not (xb.format[0] == b'd' and xb.format[1] == 0):
                    raise TypeError(f"X must be float32 or float64, got format {xb.format!r}")
                if xb.itemsize == 0 or xb.len % (xb.itemsize * d0) != 0:
                    raise ValueError(f"X does not hold rows of {d0} features")
            rows = xb.len // (xb.itemsize * d0)
            if indices is None:
                n = rows
                gather = x_is_float != self.is_float   # a cast: idx stays NULL
            else:
                gather = True
                PyObject_GetBuffer(indices, &ib, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)
                try:
                    if FASTFC_DEBUG_BUILD and ib.itemsize != sizeof(intptr_t):
                        raise TypeError("indices must be an intp array")
                    n = ib.len // sizeof(intptr_t)
                    # used as a private copy: another thread may change the caller's
                    # array while the step runs without the GIL
                    idx = self._copy_ints(&ib, n, False)
                finally:
                    PyBuffer_Release(&ib)
                if check_values and n > 0:
                    bad = _bad_label(idx, n, rows)
                    if bad >= 0:
                        raise ValueError(f"indices[{bad}] = {idx[bad]} is outside [0, {rows})")
            if FASTFC_DEBUG_BUILD and n == 0:
                raise ValueError("X must hold at least one sample")
            if y is not None and self.st.loss_kind == LOSS_MSE:
                # float targets are read in place (a change by another thread while the
                # step runs can only change values, never where the step reads)
                PyObject_GetBuffer(y, &tb, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)
                have_t = True
                if FASTFC_DEBUG_BUILD:
                    if tb.format[0] != want or tb.format[1] != 0:
                        raise TypeError(f"y must hold {self.dtype} targets, got format "
                                        f"{tb.format!r}")
                    n_out = self.dims[self.st.n_layers]
                    if tb.len // tb.itemsize != n * n_out:
                        raise ValueError(f"y has {tb.len // tb.itemsize} values for {n} "
                                         f"samples of {n_out} outputs")
                targets = tb.buf
            elif y is not None:
                PyObject_GetBuffer(y, &yb, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)
                try:
                    if FASTFC_DEBUG_BUILD:
                        if yb.itemsize != sizeof(intptr_t):
                            raise TypeError("y must be an intp array")
                        if yb.len // <Py_ssize_t>sizeof(intptr_t) != n:
                            raise ValueError(f"y has {yb.len // sizeof(intptr_t)} labels "
                                             f"for {n} samples")
                    labels = self._copy_ints(&yb, n, True)
                finally:
                    PyBuffer_Release(&yb)
                if check_values:
                    n_classes = self.dims[self.st.n_layers]
                    bad = _bad_label(labels, n, n_classes)
                    if bad >= 0:
                        raise ValueError(f"y[{bad}] = {labels[bad]} is outside "
                                         f"[0, {n_classes}) for {n_classes} classes")
            if sample_weight is not None and y is not None:
                PyObject_GetBuffer(sample_weight, &wb, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)
                have_w = True
                if FASTFC_DEBUG_BUILD:
                    if wb.format[0] != want or wb.format[1] != 0:
                        raise TypeError(f"sample_weight must hold {self.dtype} values, got "
                                        f"format {wb.format!r}")
                    if wb.len // wb.itemsize != n:
                        raise ValueError(f"sample_weight has {wb.len // wb.itemsize} values "
                                         f"for {n} samples")
                weights = wb.buf
            self.ensure_capacity(n)
            # Every step owns the pool when it can, so the BLAS runs single-threaded in
            # all of them, as it always did (a step's rounding does not change with the
            # BLAS's own choice of threads).  Only large products, updates and gathers
            # are handed to the workers (blas's split bound, UPDATE_SPLIT_MIN,
            # GATHER_SPLIT_MIN): a small step runs whole on this thread, wakes no
            # worker, and costs two calls to the BLAS's thread setter.
            # a net with its own compute dtype sets this thread's for the step (a net
            # without one leaves the thread on the process-wide setting, untouched)
            own = self.compute != -1
            if own:
                old_compute = set_thread_compute(self.compute)
            try:
                self.st.bf16 = _PREROUND and self.is_float and thread_bf16()
                if self.st.bf16:
                    self._ensure_b16()
            except BaseException:
                if own:
                    set_thread_compute(old_compute)
                raise
            with nogil:
                token = parallel_begin()
                if self.is_float:
                    loss = _step(&self.st, xb.buf, x_is_float, gather, idx, labels,
                                 targets, weights, n, train, backward, update, <float>0)
                else:
                    loss = _step(&self.st, xb.buf, x_is_float, gather, idx, labels,
                                 targets, weights, n, train, backward, update, <double>0)
                parallel_end(token)
                if own:
                    set_thread_compute(old_compute)
            if update:
                self.st.step += 1
        finally:
            if have_w:
                PyBuffer_Release(&wb)
            if have_t:
                PyBuffer_Release(&tb)
            PyBuffer_Release(&xb)
        return loss

    def scores(self, Py_ssize_t n):
        """A view (n, num_classes) of the scores written by the last call."""
        return self._scores[:n]


cdef void* _alloc(list keep, shape, dtype) except NULL:
    """A zeroed workspace array, kept alive in `keep`; returns its address."""
    arr = np.zeros(shape, dtype=dtype)
    keep.append(arr)
    return _data_ptr(arr, arr.dtype, arr.size)


cdef void* _data_ptr(arr, dtype, Py_ssize_t size) except NULL:
    """Address of a C-contiguous array of `dtype` with at least `size` elements."""
    if not isinstance(arr, np.ndarray) or arr.dtype != dtype or not arr.flags.c_contiguous \
            or arr.size < size:
        raise ValueError(f"internal buffer must be a C-contiguous {dtype} array of "
                         f"{size} elements")
    return <void*><size_t>arr.ctypes.data
