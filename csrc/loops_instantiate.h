/*
 * loops_instantiate.h -- compiles the loop template named by FFC_TEMPLATE twice, for
 * float (suffix _s) and for double (suffix _d).  No include guard on purpose: every
 * csrc/<concern>_loops.h includes this once, with FFC_TEMPLATE set to its own name.
 */
#ifndef FFC_TEMPLATE
#error "define FFC_TEMPLATE (the header to instantiate) before including loops_instantiate.h"
#endif

#define FFC_REAL float
#define FFC_SUF(name) name##_s
#define FFC_EXP expf
#define FFC_LOG logf
#define FFC_SQRT sqrtf
#define FFC_TANH tanhf
#include FFC_TEMPLATE
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
#include FFC_TEMPLATE
#undef FFC_REAL
#undef FFC_SUF
#undef FFC_EXP
#undef FFC_LOG
#undef FFC_SQRT
#undef FFC_TANH
