/*
 * bf16_gemm.h -- fastfc's own bfloat16 GEMM: C (float32) = alpha * op(A) @ op(B) + beta * C
 * with A and B in bfloat16, products summed in float32.  One thread per call (fastfc's
 * pool splits a large product into parts, as for the other one-thread backends).
 *
 * Why: MKL's bf16 GEMM uses AVX512-BF16 and AMX on Intel CPUs only; on an AMD Zen 4,
 * which has AVX512-BF16, it emulates bf16 and runs slower than float32.  This kernel
 * runs VDPBF16PS (two bf16 products summed into each float32 lane, twice the
 * multiply-adds of a float32 FMA) on any CPU that has it, whatever the vendor.
 *
 * Layout (as in the BLIS family of GEMMs): C is cut into blocks of FFC_SB_NC columns and
 * the sum over k into blocks of FFC_SB_KC; for each, op(B)'s block is packed into
 * panels of FFC_SB_NR columns and op(A)'s rows, FFC_SB_MC at a time, into panels of
 * FFC_SB_MR rows.  Both are packed as *pairs*: element (k, k+1) of a row of op(A), or of
 * a column of op(B), share one 32-bit word (k even in the low half), which is what
 * VDPBF16PS multiplies lane by lane.  Rows past m, columns past n and the second half
 * of a pair past k are packed as zeros.  The micro-kernel keeps a 12 x 32 tile of C in
 * 24 zmm registers and, per pair of k, broadcasts one word of A per row against two
 * vectors of B.
 *
 * Two micro-kernels share the packing and the loops: the AVX512-BF16 one (compiled for
 * that ISA with a target attribute, chosen at run time from CPUID, never at build time)
 * and a portable one in plain C that does the same arithmetic in the same order
 * (tests run it on any CPU, to check the packing and the edges).  VDPBF16PS flushes
 * denormal inputs and results to zero; the portable kernel does not, which is within
 * the tolerance the tests state.
 *
 * Like gemm_dispatch.h, which includes it, this header has static state (per-thread
 * packing buffers): only fastfc._kernels.blas includes it.
 */
#ifndef FASTFC_BF16_GEMM_H
#define FASTFC_BF16_GEMM_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && !defined(FFC_NO_AVX512BF16) && \
    ((defined(__clang__) && __clang_major__ >= 9) || \
     (defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10))
#define FFC_SB_SIMD 1
#include <cpuid.h>
#include <immintrin.h>
#define FFC_SB_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#else
#define FFC_SB_SIMD 0
#endif

#define FFC_SB_MR 12            /* rows of the micro-tile */
#define FFC_SB_NR 32            /* columns of the micro-tile: two zmm of float32 */
#define FFC_SB_KC 256           /* k per packed block (128 pairs: a B panel is 16 KiB) */
#define FFC_SB_MC 192           /* rows of op(A) per packed block (96 KiB) */
#define FFC_SB_NC 2048          /* columns of op(B) per packed block (1 MiB) */

/* Whether this CPU (and the OS, which must save the zmm state) can run the AVX512-BF16
 * micro-kernel: CPUID leaf 7 (AVX512F, BW, VL; sub-leaf 1: AVX512_BF16) and XCR0. */
#if FFC_SB_SIMD
static int ffc_sb_cpu_ok(void)
{
    unsigned a, b, c, d, lo, hi;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27)))      /* OSXSAVE */
        return 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0xe6u) != 0xe6u)          /* SSE, AVX, opmask, ZMM0-15 and ZMM16-31 state */
        return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return 0;
    if (!(b & (1u << 16)) || !(b & (1u << 30)) || !(b & (1u << 31)) || a < 1)
        return 0;
    __get_cpuid_count(7, 1, &a, &b, &c, &d);
    return (a & (1u << 5)) != 0;
}
#endif

/* ------------------------------------------------------------------ packing */

static inline uint32_t ffc_sb_pair(uint16_t lo, uint16_t hi)
{
    return (uint32_t)lo | ((uint32_t)hi << 16);
}

/* C tile (mr x nr, leading dimension ldc) = alpha * sum + (load_c ? beta * C : 0), where
 * sum is the 12 x 32 product of kp pairs of packed A and B */
typedef void (*ffc_sb_ukr)(int kp, const uint32_t *ap, const uint32_t *bp, float *c,
                           int ldc, int mr, int nr, float alpha, float beta, int load_c);
/* out[c] = (s0[c], s1[c]) for c < cols: two rows of bf16 into a row of pairs */
typedef void (*ffc_sb_ilv)(const uint16_t *s0, const uint16_t *s1, int cols, uint32_t *out);
/* out[p * width + r] = (src[r * ld + 2p], src[r * ld + 2p + 1]) for r < rows, p < np:
 * `rows` rows whose pairs are contiguous, transposed into pair-major panels */
typedef void (*ffc_sb_tpairs)(const uint16_t *src, size_t ld, int rows, int width, int np,
                              uint32_t *out);

/* the packing and micro-kernel functions of one ISA */
typedef struct {
    ffc_sb_ukr ukr;
    ffc_sb_ilv ilv;
    ffc_sb_tpairs tpairs;
} ffc_sb_kit;

static void ffc_sb_interleave_c(const uint16_t *s0, const uint16_t *s1, int cols,
                                uint32_t *out)
{
    for (int c = 0; c < cols; ++c)
        out[c] = ffc_sb_pair(s0[c], s1[c]);
}

static void ffc_sb_tpairs_c(const uint16_t *src, size_t ld, int rows, int width, int np,
                            uint32_t *out)
{
    for (int r = 0; r < rows; ++r) {
        const uint16_t *s = src + r * ld;
        for (int p = 0; p < np; ++p)
            out[(size_t)p * width + r] = ffc_sb_pair(s[2 * p], s[2 * p + 1]);
    }
}

#if FFC_SB_SIMD
FFC_SB_TARGET static void ffc_sb_interleave_avx512(const uint16_t *s0, const uint16_t *s1,
                                                   int cols, uint32_t *out)
{
    int c = 0;
    for (; c + 16 <= cols; c += 16) {
        __m512i lo = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(s0 + c)));
        __m512i hi = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(s1 + c)));
        _mm512_storeu_si512((void *)(out + c), _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
    }
    if (c < cols) {                 /* the last 1..15 columns, masked */
        __mmask16 m = (__mmask16)((1u << (cols - c)) - 1u);
        __m512i lo = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, s0 + c));
        __m512i hi = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, s1 + c));
        _mm512_mask_storeu_epi32((void *)(out + c), m,
                                 _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
    }
}

/* ffc_sb_tpairs_c, 4 rows x 16 pairs at a time: 4 x 4 transposes of 32-bit words inside
 * each 128-bit lane, each lane stored as 4 words of one pair; the rest in plain C */
FFC_SB_TARGET static void ffc_sb_tpairs_avx512(const uint16_t *src, size_t ld, int rows,
                                               int width, int np, uint32_t *out)
{
    int p0 = 0, rows4 = rows & ~3;
    for (; p0 + 16 <= np; p0 += 16) {
        for (int g = 0; g < rows4; g += 4) {
            const uint16_t *s = src + g * ld + 2 * p0;
            __m512i v0 = _mm512_loadu_si512((const void *)s);
            __m512i v1 = _mm512_loadu_si512((const void *)(s + ld));
            __m512i v2 = _mm512_loadu_si512((const void *)(s + 2 * ld));
            __m512i v3 = _mm512_loadu_si512((const void *)(s + 3 * ld));
            __m512i t0 = _mm512_unpacklo_epi32(v0, v1), t1 = _mm512_unpackhi_epi32(v0, v1);
            __m512i t2 = _mm512_unpacklo_epi32(v2, v3), t3 = _mm512_unpackhi_epi32(v2, v3);
            /* u_i, lane q: rows g..g+3 of pair p0 + 4q + i */
            __m512i u0 = _mm512_unpacklo_epi64(t0, t2), u1 = _mm512_unpackhi_epi64(t0, t2);
            __m512i u2 = _mm512_unpacklo_epi64(t1, t3), u3 = _mm512_unpackhi_epi64(t1, t3);
            uint32_t *o = out + (size_t)p0 * width + g;
#define FFC_SB_LANE(q)                                                                  \
            _mm_storeu_si128((__m128i *)(o + (size_t)(4 * q + 0) * width),              \
                             _mm512_extracti32x4_epi32(u0, q));                         \
            _mm_storeu_si128((__m128i *)(o + (size_t)(4 * q + 1) * width),              \
                             _mm512_extracti32x4_epi32(u1, q));                         \
            _mm_storeu_si128((__m128i *)(o + (size_t)(4 * q + 2) * width),              \
                             _mm512_extracti32x4_epi32(u2, q));                         \
            _mm_storeu_si128((__m128i *)(o + (size_t)(4 * q + 3) * width),              \
                             _mm512_extracti32x4_epi32(u3, q));
            FFC_SB_LANE(0) FFC_SB_LANE(1) FFC_SB_LANE(2) FFC_SB_LANE(3)
#undef FFC_SB_LANE
        }
    }
    if (p0 < np)
        ffc_sb_tpairs_c(src + 2 * p0, ld, rows4, width, np - p0, out + (size_t)p0 * width);
    if (rows4 < rows)
        ffc_sb_tpairs_c(src + rows4 * ld, ld, rows - rows4, width, np, out + rows4);
}
#endif


/* op(A) rows [i0, i0 + mc), k in [p0, p0 + kc) -> panels of MR rows, pair-major:
 * dst[panel][p][r] = (A(i, 2p), A(i, 2p + 1)) */
static void ffc_sb_pack_a(const ffc_sb_kit *kit, int trans, const uint16_t *a, int lda,
                          int i0, int mc, int p0, int kc, uint32_t *dst)
{
    int kp = (kc + 1) / 2;
    for (int r0 = 0; r0 < mc; r0 += FFC_SB_MR) {
        uint32_t *panel = dst + (size_t)r0 * kp;
        int rows = mc - r0 < FFC_SB_MR ? mc - r0 : FFC_SB_MR;
        if (!trans) {               /* A(i, k) = a[i * lda + k]: pairs are contiguous */
            const uint16_t *src = a + (size_t)(i0 + r0) * lda + p0;
            kit->tpairs(src, (size_t)lda, rows, FFC_SB_MR, kc / 2, panel);
            if (kc & 1)
                for (int r = 0; r < rows; ++r)
                    panel[(size_t)(kp - 1) * FFC_SB_MR + r] = src[(size_t)r * lda + kc - 1];
        } else {                    /* A(i, k) = a[k * lda + i]: rows k and k + 1 interleave */
            for (int p = 0; p < kp; ++p) {
                const uint16_t *s0 = a + (size_t)(p0 + 2 * p) * lda + i0 + r0;
                uint32_t *out = panel + (size_t)p * FFC_SB_MR;
                if (2 * p + 1 < kc)
                    kit->ilv(s0, s0 + lda, rows, out);
                else
                    for (int r = 0; r < rows; ++r)
                        out[r] = s0[r];
            }
        }
        for (int r = rows; r < FFC_SB_MR; ++r)
            for (int p = 0; p < kp; ++p)
                panel[(size_t)p * FFC_SB_MR + r] = 0;
    }
}

/* op(B) k in [p0, p0 + kc), columns [j0, j0 + nc) -> panels of NR columns, pair-major:
 * dst[panel][p][c] = (B(2p, j), B(2p + 1, j)) */
static void ffc_sb_pack_b(const ffc_sb_kit *kit, int trans, const uint16_t *b, int ldb,
                          int p0, int kc, int j0, int nc, uint32_t *dst)
{
    int kp = (kc + 1) / 2;
    if (!trans) {                   /* B(k, j) = b[k * ldb + j]: rows k and k + 1 interleave */
        /* row pair by row pair (the source read in order), into every panel */
        for (int p = 0; p < kp; ++p) {
            const uint16_t *s0 = b + (size_t)(p0 + 2 * p) * ldb + j0;
            for (int c0 = 0; c0 < nc; c0 += FFC_SB_NR) {
                uint32_t *out = dst + (size_t)c0 * kp + (size_t)p * FFC_SB_NR;
                int cols = nc - c0 < FFC_SB_NR ? nc - c0 : FFC_SB_NR;
                if (2 * p + 1 < kc) {
                    kit->ilv(s0 + c0, s0 + ldb + c0, cols, out);
                } else {
                    for (int c = 0; c < cols; ++c)
                        out[c] = s0[c0 + c];
                }
                for (int c = cols; c < FFC_SB_NR; ++c)
                    out[c] = 0;
            }
        }
        return;
    }
    for (int c0 = 0; c0 < nc; c0 += FFC_SB_NR) {   /* B(k, j) = b[j * ldb + k]: pairs contiguous */
        uint32_t *panel = dst + (size_t)c0 * kp;
        int cols = nc - c0 < FFC_SB_NR ? nc - c0 : FFC_SB_NR;
        const uint16_t *src = b + (size_t)(j0 + c0) * ldb + p0;
        kit->tpairs(src, (size_t)ldb, cols, FFC_SB_NR, kc / 2, panel);
        if (kc & 1)
            for (int c = 0; c < cols; ++c)
                panel[(size_t)(kp - 1) * FFC_SB_NR + c] = src[(size_t)c * ldb + kc - 1];
        for (int c = cols; c < FFC_SB_NR; ++c)
            for (int p = 0; p < kp; ++p)
                panel[(size_t)p * FFC_SB_NR + c] = 0;
    }
}

/* ------------------------------------------------------------------ micro-kernels */


static inline float ffc_sb_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* the portable micro-kernel: VDPBF16PS's order, the odd product of a pair added first */
static void ffc_sb_ukr_c(int kp, const uint32_t *ap, const uint32_t *bp, float *c, int ldc,
                         int mr, int nr, float alpha, float beta, int load_c)
{
    float acc[FFC_SB_MR][FFC_SB_NR];
    memset(acc, 0, sizeof acc);
    for (int p = 0; p < kp; ++p) {
        const uint32_t *av = ap + (size_t)p * FFC_SB_MR;
        const uint32_t *bv = bp + (size_t)p * FFC_SB_NR;
        for (int r = 0; r < FFC_SB_MR; ++r) {
            float a0 = ffc_sb_f32((uint16_t)av[r]), a1 = ffc_sb_f32((uint16_t)(av[r] >> 16));
            for (int j = 0; j < FFC_SB_NR; ++j) {
                float s = acc[r][j] + a1 * ffc_sb_f32((uint16_t)(bv[j] >> 16));
                acc[r][j] = s + a0 * ffc_sb_f32((uint16_t)bv[j]);
            }
        }
    }
    for (int r = 0; r < mr; ++r)
        for (int j = 0; j < nr; ++j) {
            float v = alpha * acc[r][j];
            c[(size_t)r * ldc + j] = load_c ? v + beta * c[(size_t)r * ldc + j] : v;
        }
}

#if FFC_SB_SIMD
/* the AVX512-BF16 micro-kernel: 24 accumulators, one VDPBF16PS per row and vector */
FFC_SB_TARGET static void ffc_sb_ukr_avx512(int kp, const uint32_t *ap, const uint32_t *bp,
                                            float *c, int ldc, int mr, int nr, float alpha,
                                            float beta, int load_c)
{
    __m512 x0 = _mm512_setzero_ps(), y0 = x0, x1 = x0, y1 = x0, x2 = x0, y2 = x0,
           x3 = x0, y3 = x0, x4 = x0, y4 = x0, x5 = x0, y5 = x0, x6 = x0, y6 = x0,
           x7 = x0, y7 = x0, x8 = x0, y8 = x0, x9 = x0, y9 = x0, x10 = x0, y10 = x0,
           x11 = x0, y11 = x0;
    for (int r = 0; r < mr; ++r) {      /* the C tile is read or written at the end */
        _mm_prefetch((const char *)(c + (size_t)r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + (size_t)r * ldc + 16), _MM_HINT_T0);
    }
    for (int p = 0; p < kp; ++p) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512((const void *)bp);
        __m512bh b1 = (__m512bh)_mm512_loadu_si512((const void *)(bp + 16));
        __m512bh av;
#define FFC_SB_ROW(r)                                                \
        av = (__m512bh)_mm512_set1_epi32((int)ap[r]);                \
        x##r = _mm512_dpbf16_ps(x##r, av, b0);                       \
        y##r = _mm512_dpbf16_ps(y##r, av, b1);
        FFC_SB_ROW(0) FFC_SB_ROW(1) FFC_SB_ROW(2) FFC_SB_ROW(3) FFC_SB_ROW(4) FFC_SB_ROW(5)
        FFC_SB_ROW(6) FFC_SB_ROW(7) FFC_SB_ROW(8) FFC_SB_ROW(9) FFC_SB_ROW(10) FFC_SB_ROW(11)
#undef FFC_SB_ROW
        ap += FFC_SB_MR;
        bp += FFC_SB_NR;
    }
    __mmask16 m0 = nr >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nr) - 1u);
    __mmask16 m1 = nr >= 32 ? (__mmask16)0xffff
                            : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1u) : (__mmask16)0;
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#define FFC_SB_STORE(r)                                                              \
    if (r < mr) {                                                                    \
        float *cr = c + (size_t)(r) * ldc;                                           \
        __m512 u = _mm512_mul_ps(va, x##r), v = _mm512_mul_ps(va, y##r);            \
        if (load_c) {                                                                \
            u = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, cr), u);               \
            v = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, cr + 16), v);          \
        }                                                                            \
        _mm512_mask_storeu_ps(cr, m0, u);                                            \
        _mm512_mask_storeu_ps(cr + 16, m1, v);                                       \
    }
    FFC_SB_STORE(0) FFC_SB_STORE(1) FFC_SB_STORE(2) FFC_SB_STORE(3) FFC_SB_STORE(4)
    FFC_SB_STORE(5) FFC_SB_STORE(6) FFC_SB_STORE(7) FFC_SB_STORE(8) FFC_SB_STORE(9)
    FFC_SB_STORE(10) FFC_SB_STORE(11)
#undef FFC_SB_STORE
}
#endif

/* ------------------------------------------------------------------ the product */

static const ffc_sb_kit ffc_sb_kit_c = {ffc_sb_ukr_c, ffc_sb_interleave_c, ffc_sb_tpairs_c};
#if FFC_SB_SIMD
static const ffc_sb_kit ffc_sb_kit_avx512 = {ffc_sb_ukr_avx512, ffc_sb_interleave_avx512,
                                             ffc_sb_tpairs_avx512};
#endif

/* this thread's packing buffers (64-byte aligned), allocated at its first product and
 * kept for the thread's life (like the bf16 operand scratch of gemm_dispatch.h) */
static __thread uint32_t *ffc_sb_buf = NULL;

static uint32_t *ffc_sb_buffers(void)
{
    if (ffc_sb_buf == NULL) {
        size_t words = (size_t)FFC_SB_MC * (FFC_SB_KC / 2)
                       + (size_t)FFC_SB_NC * (FFC_SB_KC / 2);
        void *raw = malloc(words * sizeof(uint32_t) + 64);
        if (raw == NULL)
            return NULL;
        ffc_sb_buf = (uint32_t *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
    }
    return ffc_sb_buf;
}

/* C = alpha * op(A) @ op(B) + beta * C, row-major, with the functions of `kit`.  Returns
 * 0, or -1 (C untouched) when the packing buffers could not be allocated. */
static int ffc_sb_gemm(const ffc_sb_kit *kit, int trans_a, int trans_b, int m, int n, int k,
                       float alpha, const uint16_t *a, int lda, const uint16_t *b, int ldb,
                       float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0)
        return 0;
    if (k <= 0) {                   /* C = beta * C (beta == 0 writes zeros, NaN or not) */
        for (int i = 0; i < m; ++i)
            for (int j = 0; j < n; ++j)
                c[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[(size_t)i * ldc + j];
        return 0;
    }
    uint32_t *ap = ffc_sb_buffers();
    if (ap == NULL)
        return -1;
    uint32_t *bp = ap + (size_t)FFC_SB_MC * (FFC_SB_KC / 2);
    for (int jc = 0; jc < n; jc += FFC_SB_NC) {
        int nc = n - jc < FFC_SB_NC ? n - jc : FFC_SB_NC;
        for (int pc = 0; pc < k; pc += FFC_SB_KC) {
            int kc = k - pc < FFC_SB_KC ? k - pc : FFC_SB_KC;
            int kp = (kc + 1) / 2;
            /* the first block of k applies beta (not reading C when it is 0); the
               others add to what the earlier ones stored */
            int load_c = pc > 0 || beta != 0.0f;
            float bscale = pc > 0 ? 1.0f : beta;
            ffc_sb_pack_b(kit, trans_b, b, ldb, pc, kc, jc, nc, bp);
            for (int ic = 0; ic < m; ic += FFC_SB_MC) {
                int mc = m - ic < FFC_SB_MC ? m - ic : FFC_SB_MC;
                ffc_sb_pack_a(kit, trans_a, a, lda, ic, mc, pc, kc, ap);
                for (int jr = 0; jr < nc; jr += FFC_SB_NR) {
                    int nr = nc - jr < FFC_SB_NR ? nc - jr : FFC_SB_NR;
                    for (int ir = 0; ir < mc; ir += FFC_SB_MR) {
                        int mr = mc - ir < FFC_SB_MR ? mc - ir : FFC_SB_MR;
                        kit->ukr(kp, ap + (size_t)ir * kp, bp + (size_t)jr * kp,
                            c + (size_t)(ic + ir) * ldc + jc + jr, ldc, mr, nr, alpha,
                            bscale, load_c);
                    }
                }
            }
        }
    }
    return 0;
}

/* CBLAS-shaped entry points (row-major only: fastfc's callers always pass 101), so
 * that blas.pyx calls them like MKL's cblas_gemm_bf16bf16f32.  If the packing buffers
 * (1.1 MiB, once per thread) cannot be allocated, a plain loop with no packing computes
 * the product: slow, never wrong. */
static void ffc_sb_naive(int trans_a, int trans_b, int m, int n, int k, float alpha,
                         const uint16_t *a, int lda, const uint16_t *b, int ldb, float beta,
                         float *c, int ldc)
{
    for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) {
            float s = 0.0f;
            for (int p = 0; p < k; ++p) {
                uint16_t x = trans_a ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                uint16_t y = trans_b ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
                s += ffc_sb_f32(x) * ffc_sb_f32(y);
            }
            float *cij = c + (size_t)i * ldc + j;
            *cij = beta == 0.0f ? alpha * s : alpha * s + beta * *cij;
        }
}

static void ffc_sb_cblas_portable(int layout, int ta, int tb, int m, int n, int k,
                                  float alpha, const uint16_t *a, int lda, const uint16_t *b,
                                  int ldb, float beta, float *c, int ldc)
{
    (void)layout;
    if (ffc_sb_gemm(&ffc_sb_kit_c, ta == 112, tb == 112, m, n, k, alpha, a, lda, b, ldb,
                    beta, c, ldc) != 0)
        ffc_sb_naive(ta == 112, tb == 112, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

#if FFC_SB_SIMD
static void ffc_sb_cblas_avx512(int layout, int ta, int tb, int m, int n, int k,
                                float alpha, const uint16_t *a, int lda, const uint16_t *b,
                                int ldb, float beta, float *c, int ldc)
{
    (void)layout;
    if (ffc_sb_gemm(&ffc_sb_kit_avx512, ta == 112, tb == 112, m, n, k, alpha, a, lda, b,
                    ldb, beta, c, ldc) != 0)
        ffc_sb_naive(ta == 112, tb == 112, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
#endif

/* the AVX512-BF16 entry point when this build has it and the CPU runs it, else NULL */
static void *ffc_sb_native(void)
{
#if FFC_SB_SIMD
    if (ffc_sb_cpu_ok())
        return (void *)ffc_sb_cblas_avx512;
#endif
    return NULL;
}

static void *ffc_sb_portable(void)
{
    return (void *)ffc_sb_cblas_portable;
}

#endif /* FASTFC_BF16_GEMM_H */
