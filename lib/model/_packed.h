/* The gated cells' per-step matrix products at a batch, with the recurrent weights packed once per chunk.
 *
 * lib/model/_kernels.c includes this file twice, as _typed.h (REAL float or double, SUFFIX f32 or f64).
 * A step of a gated cell at B sequences multiplies a (B, K) matrix by the same weights at every step of the
 * chunk: C (B, N) = A (B, K) Wt, with Wt (K, N) either W^T (forwards: W h_{t-1}) or W (backwards: dz_t W).
 * A BLAS call copies ("packs") the weights into its own layout at every call; at these shapes (B = 32,
 * K = 256, N = 1024: 16.8 million operations) that copy and the call's set-up are most of its time. Here
 * the weights are packed once per chunk (pack), in panels of NR columns, each panel the K rows of its NR
 * columns one after another, the last panel padded with zeros; every step then runs the micro-kernel over
 * the panels (packed_product), MR rows of A by one panel at a time, the MR x NR sums kept in registers. The
 * panels are shared out among OpenMP threads where the product is large enough to gain from them.
 *
 * The vector width follows the machine the module is built for (-march=native): 64 bytes with AVX-512,
 * 32 with AVX, 16 otherwise; MR rows by NR = 2 vectors of columns fill at most 16 (or 8) vector registers
 * with sums. Each sum runs over k in order, one multiply-add per term, in REAL: the results differ from a
 * BLAS product's in the last bits (its order of summation is its own), as any two BLAS libraries do.
 */
#ifndef PACKED_VBYTES
#if defined(__AVX512F__)
#define PACKED_VBYTES 64
#define PACKED_MR 8
#elif defined(__AVX__)
#define PACKED_VBYTES 32
#define PACKED_MR 4
#else
#define PACKED_VBYTES 16
#define PACKED_MR 4
#endif
#define PACKED_MIN_WORK (1 << 18)   /* multiply-adds below which a product stays on one thread (and
                                       at B <= 4, where NumPy's threads may be busy) */
#define PACKED_KC 256               /* rows of a panel read at a time: 32 KB, within the L1 cache */
#define PACKED_NV ((Py_ssize_t)(PACKED_VBYTES / sizeof(REAL)))   /* numbers in a vector */
#endif

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define F(name) CAT(name, SUFFIX)

typedef REAL F(vec) __attribute__((vector_size(PACKED_VBYTES), aligned(sizeof(REAL))));

/* The columns of a panel: two vectors. */
static Py_ssize_t F(panel_width)(void)
{
    return 2 * PACKED_NV;
}

/* Wp (ceil(N / NR) NR K,) = Wt (K, N) in panels, where Wt = W^T (transpose: W is (N, K)) or W (W is (K, N)). */
static void F(pack)(const REAL *restrict W, REAL *restrict Wp, Py_ssize_t K, Py_ssize_t N, int transpose)
{
    const Py_ssize_t NR = F(panel_width)();
    for (Py_ssize_t j0 = 0; j0 < N; j0 += NR) {
        REAL *panel = Wp + j0 * K;
        for (Py_ssize_t k = 0; k < K; k++)
            for (Py_ssize_t j = 0; j < NR; j++)
                panel[k * NR + j] = j0 + j >= N ? (REAL)0 : transpose ? W[(j0 + j) * K + k] : W[k * N + j0 + j];
    }
}

/* C[:rows, :cols] (ldc) = A[:rows] panel, for rows <= MR and cols <= NR, where A's row i, column k is
 * A[i rs + k ks]. Rows past `rows` repeat the last row (their sums are not stored), so that the loop over k
 * is always the same. */
__attribute__((optimize("fp-contract=fast")))   /* one fused multiply-add per term */
static inline void F(micro)(const REAL *restrict A, Py_ssize_t rs, Py_ssize_t ks, const REAL *restrict panel,
                            Py_ssize_t K, REAL *restrict C, Py_ssize_t ldc, Py_ssize_t rows, Py_ssize_t cols,
                            int add)
{
    enum { MR = PACKED_MR };
    const Py_ssize_t NV = PACKED_NV;
    const REAL *a[MR];
    for (int i = 0; i < MR; i++)
        a[i] = A + (i < rows ? i : rows - 1) * rs;
    F(vec) c0[MR], c1[MR];
    for (int i = 0; i < MR; i++)
        c0[i] = c1[i] = (F(vec)){0};
    for (Py_ssize_t k = 0; k < K; k++) {
        F(vec) b0 = *(const F(vec) *)(panel + k * 2 * NV), b1 = *(const F(vec) *)(panel + k * 2 * NV + NV);
        for (int i = 0; i < MR; i++) {
            REAL x = a[i][k * ks];
            c0[i] += x * b0;
            c1[i] += x * b1;
        }
    }
    if (add)
        for (Py_ssize_t i = 0; i < rows; i++)
            for (Py_ssize_t j = 0; j < cols; j++)
                C[i * ldc + j] += j < NV ? c0[i][j] : c1[i][j - NV];
    else if (cols == 2 * NV)
        for (Py_ssize_t i = 0; i < rows; i++) {
            *(F(vec) *)(C + i * ldc) = c0[i];
            *(F(vec) *)(C + i * ldc + NV) = c1[i];
        }
    else
        for (Py_ssize_t i = 0; i < rows; i++)
            for (Py_ssize_t j = 0; j < cols; j++)
                C[i * ldc + j] = j < NV ? c0[i][j] : c1[i][j - NV];
}

/* C (M, N) = A Wt, Wt packed by pack; A (M, K) with rows lda apart, or (transposed) A^T where A (K, lda)
 * holds the M columns used. The panels are shared out among threads; each is read PACKED_KC rows at a
 * time, which stay in the L1 cache while every block of MR rows of A passes over them (and A^T's numbers,
 * lda apart, are read from KC rows only: 4 KB apart at m = 256, too many of them would fall into one set
 * of the cache). */
__attribute__((optimize("fp-contract=fast")))
static void F(packed_product)(const REAL *A, Py_ssize_t lda, int transposed, const REAL *Wp, REAL *C,
                              Py_ssize_t M, Py_ssize_t K, Py_ssize_t N)
{
    const Py_ssize_t NR = F(panel_width)(), panels = (N + NR - 1) / NR;
    #pragma omp parallel for schedule(static) if (M > 4 && M * K * N >= PACKED_MIN_WORK)
    for (Py_ssize_t p = 0; p < panels; p++) {
        Py_ssize_t j0 = p * NR, cols = N - j0 < NR ? N - j0 : NR;
        for (Py_ssize_t k0 = 0; k0 < K; k0 += PACKED_KC) {   /* a part of the panel that stays in L1 */
            Py_ssize_t kc = K - k0 < PACKED_KC ? K - k0 : PACKED_KC;
            const REAL *panel = Wp + j0 * K + k0 * NR;
            for (Py_ssize_t i0 = 0; i0 < M; i0 += PACKED_MR) {
                Py_ssize_t rows = M - i0 < PACKED_MR ? M - i0 : PACKED_MR;
                REAL *out = C + i0 * N + j0;
                if (transposed)
                    F(micro)(A + k0 * lda + i0, 1, lda, panel, kc, out, N, rows, cols, k0 > 0);
                else
                    F(micro)(A + i0 * lda + k0, lda, 1, panel, kc, out, N, rows, cols, k0 > 0);
            }
        }
    }
}

#undef F
#undef CAT
#undef CAT_
