/*
 * gemm_dispatch.h -- the GEMM backends fastfc can call, and which one serves which shape.
 *
 * Backend 0 is SciPy's OpenBLAS, reached through scipy.linalg.cython_blas (blas.pyx
 * calls it itself; its slot here stays empty).  The others are CBLAS libraries loaded at
 * first use by fastfc._gemm: MKL (libmkl_rt) and a private OpenBLAS (the
 * scipy-openblas32 wheel).  Their function pointers are filled in from Python.
 *
 * A route says which backend computes the float32 products of one shape
 * (m, n, k, transposes, the pool's parts).  Routes come from the on-disk cache or from
 * timing the backends at the first product of that shape (blas.pyx).  The table is a
 * hash table, append-only and read without a lock: an entry is written completely
 * before its `used` flag publishes it (release/acquire); writers take a spin lock.
 *
 * The bfloat16 part: which bf16 GEMM serves the products (fastfc's own is in
 * bf16_gemm.h), float -> bf16 rounding (round to nearest, ties to even; NaN stays
 * a quiet NaN), the conversion of a row-major operand.  Like the pool, this header has
 * static state: only fastfc._kernels.blas includes it.
 */
#ifndef FASTFC_GEMM_DISPATCH_H
#define FASTFC_GEMM_DISPATCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "loops_common.h"
#include "bf16_gemm.h"

#define FFC_BK_OPENBLAS 0
#define FFC_BK_MKL 1
#define FFC_BK_PRIVATE 2
#define FFC_BK_N 3
#define FFC_MAX_ROUTES 512

/* CBLAS enums (row-major, no transpose, transpose) */
#define FFC_CBLAS_ROW 101
#define FFC_CBLAS_N 111
#define FFC_CBLAS_T 112

typedef void (*ffc_cblas_sgemm)(int, int, int, int, int, int, float, const float *, int,
                                const float *, int, float, float *, int);
typedef void (*ffc_cblas_dgemm)(int, int, int, int, int, int, double, const double *, int,
                                const double *, int, double, double *, int);
typedef void (*ffc_cblas_bf16)(int, int, int, int, int, int, float, const uint16_t *, int,
                               const uint16_t *, int, float, float *, int);
typedef int (*ffc_threads_local)(int);

typedef struct {
    ffc_cblas_sgemm sgemm;
    ffc_cblas_dgemm dgemm;
    ffc_cblas_bf16 bf16;              /* NULL: no bf16 GEMM */
    ffc_threads_local set_local;      /* NULL: the library already runs one thread */
} ffc_backend;

static ffc_backend ffc_backends[FFC_BK_N];

/* The bfloat16 GEMM in use (NULL: none), and the thread-count setter called with 1
 * around each call (NULL: it runs one thread): MKL's cblas_gemm_bf16bf16f32 or fastfc's
 * own (bf16_gemm.h), as fastfc._gemm chose. */
static ffc_cblas_bf16 ffc_bf16_gemm = NULL;
static ffc_threads_local ffc_bf16_local = NULL;

typedef struct {
    int m, n, k, flags, backend;
    int used;                         /* published last (release): the fields are valid */
} ffc_route;

/* A step that wanted fastfc's pool but found it owned by another thread's step runs its
 * products whole on its own thread.  Under "auto" it still takes the routes a pooled
 * step takes (the same parts and no-SciPy bit), so that which backend computes a
 * product -- and so its float32 bits -- does not depend on what other threads do.
 * ffc_busy_parts: the parts that step asked for (0: not in such a step);
 * ffc_busy_split: whether its products would have been split (SciPy's OpenBLAS on one
 * thread), as _split_gemm says for the pool's owner. */
static __thread int ffc_busy_parts = 0;
static __thread int ffc_busy_split = 0;

/* open addressing, linear probing; at most FFC_MAX_ROUTES of the 2x as many slots used */
#define FFC_ROUTE_SLOTS (2 * FFC_MAX_ROUTES)
static ffc_route ffc_slots[FFC_ROUTE_SLOTS];
static int ffc_order[FFC_MAX_ROUTES];  /* slots in the order the routes were added */
static int ffc_n_routes = 0;
static int ffc_route_lock = 0;
static long ffc_routes_timed = 0;     /* routes chosen by timing (not from the cache) */

/* flags of a route: bit 0 trans_a, bit 1 trans_b, bit 2 set when SciPy's OpenBLAS is not
 * a candidate (it runs its own threads inside a step whose pool splits the products of
 * the other backends), bits 3.. the pool's parts */
static inline int ffc_route_flags(int trans_a, int trans_b, int parts, int no_scipy)
{
    return (trans_a ? 1 : 0) | (trans_b ? 2 : 0) | (no_scipy ? 4 : 0) | (parts << 3);
}

static inline unsigned ffc_route_hash(int m, int n, int k, int flags)
{
    uint64_t h = (uint64_t)(uint32_t)m * 0x9e3779b97f4a7c15ULL;
    h ^= (uint64_t)(uint32_t)n * 0xc2b2ae3d27d4eb4fULL;
    h ^= (uint64_t)(uint32_t)k * 0x165667b19e3779f9ULL;
    h ^= (uint64_t)(uint32_t)flags * 0x27d4eb2f165667c5ULL;
    h ^= h >> 29;
    return (unsigned)(h % FFC_ROUTE_SLOTS);
}

/* slot of the route of this shape, or of the empty slot where it would go */
static inline int ffc_route_slot(int m, int n, int k, int flags)
{
    unsigned i = ffc_route_hash(m, n, k, flags);
    for (;;) {
        const ffc_route *r = &ffc_slots[i];
        if (!__atomic_load_n(&r->used, __ATOMIC_ACQUIRE))
            return (int)i;
        if (r->m == m && r->n == n && r->k == k && r->flags == flags)
            return (int)i;
        i = (i + 1) % FFC_ROUTE_SLOTS;
    }
}

/* backend of a route, or -1 if the shape has none */
static inline int ffc_route_find(int m, int n, int k, int flags)
{
    const ffc_route *r = &ffc_slots[ffc_route_slot(m, n, k, flags)];
    return __atomic_load_n(&r->used, __ATOMIC_ACQUIRE) ? r->backend : -1;
}

/* add a route unless the shape has one (or the table is full); returns the route's backend */
static int ffc_route_add(int m, int n, int k, int flags, int backend, int timed)
{
    int found;
    while (__atomic_exchange_n(&ffc_route_lock, 1, __ATOMIC_ACQUIRE))
        ;
    found = ffc_route_find(m, n, k, flags);
    if (found < 0 && ffc_n_routes < FFC_MAX_ROUTES) {
        int slot = ffc_route_slot(m, n, k, flags);
        ffc_route *r = &ffc_slots[slot];
        r->m = m;
        r->n = n;
        r->k = k;
        r->flags = flags;
        r->backend = backend;
        __atomic_store_n(&r->used, 1, __ATOMIC_RELEASE);
        ffc_order[ffc_n_routes] = slot;
        __atomic_store_n(&ffc_n_routes, ffc_n_routes + 1, __ATOMIC_RELEASE);
        if (timed)
            ffc_routes_timed += 1;
        found = backend;
    } else if (found < 0) {
        found = backend;
    }
    __atomic_store_n(&ffc_route_lock, 0, __ATOMIC_RELEASE);
    return found;
}

/* route i in the order of addition (0 <= i < ffc_n_routes) */
static inline const ffc_route *ffc_route_at(int i)
{
    return &ffc_slots[ffc_order[i]];
}

/* Forget every route.  Only safe while no GEMM runs (the Python caller's contract). */
static void ffc_routes_clear(void)
{
    while (__atomic_exchange_n(&ffc_route_lock, 1, __ATOMIC_ACQUIRE))
        ;
    __atomic_store_n(&ffc_n_routes, 0, __ATOMIC_RELEASE);
    for (int i = 0; i < FFC_ROUTE_SLOTS; ++i)
        __atomic_store_n(&ffc_slots[i].used, 0, __ATOMIC_RELEASE);
    ffc_routes_timed = 0;
    __atomic_store_n(&ffc_route_lock, 0, __ATOMIC_RELEASE);
}

/* a monotonic clock in seconds, for timing the backends */
static double ffc_seconds(void)
{
    struct timespec ts;
#if defined(_WIN32)
    timespec_get(&ts, TIME_UTC);
#else
    clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------ bfloat16 */

/* out[i, j] = bf16(x[i, j]) (ffc_bf16_of, loops_common.h) for rows [lo, hi) of an
   (n, d) block with leading dimension ld (out has leading dimension d) */
static FFC_HOT void ffc_bf16_rows(const float *FFC_RESTRICT x, ptrdiff_t ld, ptrdiff_t lo,
                                  ptrdiff_t hi, ptrdiff_t d, uint16_t *FFC_RESTRICT out)
{
    for (ptrdiff_t i = lo; i < hi; ++i) {
        const float *src = x + i * ld;
        uint16_t *dst = out + i * d;
        for (ptrdiff_t j = 0; j < d; ++j)
            dst[j] = ffc_bf16_of(src[j]);
    }
}

/* The compute dtype of float32 products on this thread while a Net step runs: -1 follows
 * the process-wide setting (fastfc.set_compute_dtype), 0 float32, 1 bfloat16.  A Net
 * with its own compute_dtype sets it for the length of its step and restores it. */
static __thread int ffc_compute_local = -1;

/* per-thread scratch for the bf16 operands; grows, never shrinks */
static __thread uint16_t *ffc_bf16_scratch = NULL;
static __thread size_t ffc_bf16_scratch_size = 0;

/* room for `count` bf16 values on this thread, or NULL if out of memory */
static uint16_t *ffc_bf16_buffer(size_t count)
{
    if (count > ffc_bf16_scratch_size) {
        uint16_t *p = (uint16_t *)realloc(ffc_bf16_scratch, count * sizeof(uint16_t));
        if (p == NULL)
            return NULL;
        ffc_bf16_scratch = p;
        ffc_bf16_scratch_size = count;
    }
    return ffc_bf16_scratch;
}

#endif /* FASTFC_GEMM_DISPATCH_H */
