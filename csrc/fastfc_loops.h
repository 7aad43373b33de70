/*
 * fastfc_loops.h -- the elementwise and row-wise loops of fastfc's kernels.
 *
 * Plain C so that the compiler sees `restrict` pointers and simple counted loops it
 * can vectorise.  Every loop exists twice, for float (suffix _s) and double (suffix _d):
 * fastfc_loops_impl.h is the template and is included once per type below.
 *
 * Conventions: matrices are row-major and contiguous, `n` is the number of rows
 * (samples), `d` the number of columns (features).  No loop allocates, raises or
 * checks its arguments: the Python wrappers do that before a kernel is called.
 */
#ifndef FASTFC_LOOPS_H
#define FASTFC_LOOPS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#if defined(_MSC_VER)
#define FFC_RESTRICT __restrict
#else
#define FFC_RESTRICT __restrict__
#endif

#define FFC_REAL float
#define FFC_SUF(name) name##_s
#define FFC_EXP expf
#define FFC_LOG logf
#define FFC_SQRT sqrtf
#define FFC_TANH tanhf
#include "fastfc_loops_impl.h"
#undef FFC_REAL
#undef FFC_SUF
#undef FFC_EXP
#undef FFC_LOG
#undef FFC_SQRT
#undef FFC_TANH

#define FFC_REAL double
#define FFC_SUF(name) name##_d
#define FFC_EXP exp
#define FFC_LOG log
#define FFC_SQRT sqrt
#define FFC_TANH tanh
#include "fastfc_loops_impl.h"
#undef FFC_REAL
#undef FFC_SUF
#undef FFC_EXP
#undef FFC_LOG
#undef FFC_SQRT
#undef FFC_TANH

#endif /* FASTFC_LOOPS_H */
