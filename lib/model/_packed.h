/* The gated cells' matrix products at a batch, compiled, with the weights packed once per chunk and the
 * work shared among OpenMP threads: each step's product, the weight gradients, the output layer's and
 * stacked layers' products, and each cell's whole chunk each way (at the end of this file).
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
 * 32 with AVX, 16 otherwise; MR rows by NR = 2 vectors of columns fill 16 of AVX-512's 32 vector registers
 * with sums (MR = 8), 12 of the 16 elsewhere (MR = 6: with 8 sums, as 4 x 2 vectors, a product at B = 32
 * ran at 170 billion operations a second with AVX2 on this machine, at 262 with 12). Each sum runs over
 * k in order, one multiply-add per term, in REAL: the results differ from a BLAS product's in the last
 * bits (its order of summation is its own), as any two BLAS libraries do.
 */
#ifndef PACKED_VBYTES
#if defined(__AVX512F__)
#define PACKED_VBYTES 64
#define PACKED_MR 8
#elif defined(__AVX__)
#define PACKED_VBYTES 32
#define PACKED_MR 6
#else
#define PACKED_VBYTES 16
#define PACKED_MR 6
#endif
#define PACKED_MIN_WORK (1 << 18)   /* multiply-adds below which a product stays on one thread (and
                                       at B <= 4, where NumPy's threads may be busy) */
#define PACKED_ROWS 64              /* rows of A a thread takes at a time, with one panel */
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
 * holds the M columns used. The panels, by PACKED_ROWS rows of A, are shared out among threads; each
 * panel is read PACKED_KC rows at a
 * time, which stay in the L1 cache while every block of MR rows of A passes over them (and A^T's numbers,
 * lda apart, are read from KC rows only: 4 KB apart at m = 256, too many of them would fall into one set
 * of the cache). */
__attribute__((optimize("fp-contract=fast")))
static void F(packed_product)(const REAL *A, Py_ssize_t lda, int transposed, const REAL *Wp, REAL *C,
                              Py_ssize_t M, Py_ssize_t K, Py_ssize_t N)
{
    const Py_ssize_t NR = F(panel_width)(), panels = (N + NR - 1) / NR;
    const Py_ssize_t chunks = (M + PACKED_ROWS - 1) / PACKED_ROWS;
    #pragma omp parallel for collapse(2) schedule(static) if (M > 4 && M * K * N >= PACKED_MIN_WORK)
    for (Py_ssize_t p = 0; p < panels; p++)
        for (Py_ssize_t c = 0; c < chunks; c++) {
            Py_ssize_t j0 = p * NR, cols = N - j0 < NR ? N - j0 : NR;
            Py_ssize_t end = (c + 1) * PACKED_ROWS < M ? (c + 1) * PACKED_ROWS : M;
            for (Py_ssize_t k0 = 0; k0 < K; k0 += PACKED_KC) {   /* a part of the panel that stays in L1 */
                Py_ssize_t kc = K - k0 < PACKED_KC ? K - k0 : PACKED_KC;
                const REAL *panel = Wp + j0 * K + k0 * NR;
                for (Py_ssize_t i0 = c * PACKED_ROWS; i0 < end; i0 += PACKED_MR) {
                    Py_ssize_t rows = end - i0 < PACKED_MR ? end - i0 : PACKED_MR;
                    REAL *out = C + i0 * N + j0;
                    if (transposed)
                        F(micro)(A + k0 * lda + i0, 1, lda, panel, kc, out, N, rows, cols, k0 > 0);
                    else
                        F(micro)(A + i0 * lda + k0, lda, 1, panel, kc, out, N, rows, cols, k0 > 0);
                }
            }
        }
}

/* --- The LSTM's chunk at a batch, both ways in one call. -----------------------------------------------
 *
 * One parallel region runs the whole chunk. At each step the threads share out the panels of the product
 * (each panel's columns, so that each thread keeps its part of the weights in its own cache), wait for one
 * another, then share out the rows (sequences) of the gate arithmetic, and wait again. Shared out by
 * units instead, the gate arithmetic ran 3.4 times slower: the two cores wrote the two halves of the same
 * rows, each pulling the other's cache lines. Forwards the weights are packed with the four gates of a
 * unit side by side (pack_gates: a panel holds NR / 4 units' i, f, q and g columns), so that a panel adds
 * into its units' four columns of z. The gate arithmetic is _typed.h's lstm_forward and lstm_backward. */

/* Wp = the panels of W^T for W (4m, m), each panel the four gates of NR / 4 units (the last padded). */
static void F(pack_gates)(const REAL *restrict W, REAL *restrict Wp, Py_ssize_t m)
{
    const Py_ssize_t NR = F(panel_width)(), u = NR / 4;
    for (Py_ssize_t u0 = 0; u0 < m; u0 += u) {
        REAL *panel = Wp + u0 * 4 * m;                  /* panel u0 / u, NR m numbers */
        for (Py_ssize_t k = 0; k < m; k++)
            for (Py_ssize_t q = 0; q < 4; q++)
                for (Py_ssize_t j = 0; j < u; j++)
                    panel[k * NR + q * u + j] = u0 + j < m ? W[(q * m + u0 + j) * m + k] : (REAL)0;
    }
}

/* The calling thread's share [*p0, *p1) of n panels or rows, inside a parallel region (all of them outside
 * one, or without OpenMP). */
static void F(share)(Py_ssize_t n, Py_ssize_t *p0, Py_ssize_t *p1)
{
    int id = 0, nth = 1;
#ifdef _OPENMP
    id = omp_get_thread_num();
    nth = omp_get_num_threads();
#endif
    *p0 = n * id / nth;
    *p1 = n * (id + 1) / nth;
}

/* C[:, panels p0 .. p1] (M, N; ldc N) = A (M, K; rows lda apart) Wt, Wt packed by pack: one thread's part. */
__attribute__((optimize("fp-contract=fast")))
static void F(panels_product)(const REAL *A, Py_ssize_t lda, const REAL *Wp, REAL *C, Py_ssize_t M, Py_ssize_t K,
                              Py_ssize_t N, Py_ssize_t p0, Py_ssize_t p1)
{
    const Py_ssize_t NR = F(panel_width)();
    for (Py_ssize_t p = p0; p < p1; p++) {
        Py_ssize_t cols = N - p * NR < NR ? N - p * NR : NR;
        for (Py_ssize_t k0 = 0; k0 < K; k0 += PACKED_KC)
            for (Py_ssize_t i0 = 0; i0 < M; i0 += PACKED_MR)
                F(micro)(A + i0 * lda + k0, lda, 1, Wp + p * NR * K + k0 * NR, K - k0 < PACKED_KC ? K - k0 : PACKED_KC,
                         C + i0 * N + p * NR, N, M - i0 < PACKED_MR ? M - i0 : PACKED_MR, cols, k0 > 0);
    }
}

/* LSTM forwards over a chunk at a batch: Z (T, B, 4m) the inputs' parts, then the gates; H, S (T + 1, B, m)
 * from H[0], S[0]; TS (T, B, m); Wp from pack_gates. */
__attribute__((optimize("fp-contract=fast")))
static void F(lstm_forward_batch)(REAL *Z, const REAL *Wp, REAL *H, REAL *S, REAL *TS, Py_ssize_t T,
                                  Py_ssize_t B, Py_ssize_t m)
{
    const Py_ssize_t NR = F(panel_width)(), u = NR / 4, panels = (m + u - 1) / u;
    #pragma omp parallel if (B > 4 && B * m * m >= PACKED_MIN_WORK / 4)
    {
        Py_ssize_t p0, p1, b0, b1;
        F(share)(panels, &p0, &p1);
        F(share)(B, &b0, &b1);
        REAL tile[PACKED_MR * 2 * PACKED_NV];
        for (Py_ssize_t t = 0; t < T; t++) {
            REAL *z = Z + t * B * 4 * m;
            const REAL *h = H + t * B * m;
            for (Py_ssize_t p = p0; p < p1; p++)
                for (Py_ssize_t i0 = 0; i0 < B; i0 += PACKED_MR) {
                    Py_ssize_t rows = B - i0 < PACKED_MR ? B - i0 : PACKED_MR;
                    for (Py_ssize_t k0 = 0; k0 < m; k0 += PACKED_KC)
                        F(micro)(h + i0 * m + k0, m, 1, Wp + p * NR * m + k0 * NR,
                                 m - k0 < PACKED_KC ? m - k0 : PACKED_KC, tile, NR, rows, NR, k0 > 0);
                    const Py_ssize_t n = m - p * u < u ? m - p * u : u;    /* the panel's units */
                    for (Py_ssize_t i = 0; i < rows; i++)
                        for (Py_ssize_t q = 0; q < 4; q++) {
                            REAL *to = z + (i0 + i) * 4 * m + q * m + p * u;
                            const REAL *from = tile + i * NR + q * u;
                            if (n == u)
                                for (Py_ssize_t j = 0; j < 2 * PACKED_NV / 4; j++)
                                    to[j] += from[j];
                            else
                                for (Py_ssize_t j = 0; j < n; j++)
                                    to[j] += from[j];
                        }
                }
            #pragma omp barrier
            const Py_ssize_t r = (t * B + b0) * m;         /* this thread's rows */
            F(lstm_forward)(z + b0 * 4 * m, NULL, S + r, S + r + B * m, TS + r, H + r + B * m, b1 - b0, m);
            #pragma omp barrier
        }
    }
}

/* LSTM backwards over a chunk at a batch: dZ (T, B, 4m) from dH (T, B, m); Wp the panels of W (4m, m)
 * itself (pack, not transposed); dh, ds (B, m) zeros, then scratch. */
__attribute__((optimize("fp-contract=fast")))
static void F(lstm_backward_batch)(const REAL *Z, const REAL *S, const REAL *TS, const REAL *dH, const REAL *Wp,
                                   REAL *dZ, REAL *dh, REAL *ds, Py_ssize_t T, Py_ssize_t B, Py_ssize_t m)
{
    const Py_ssize_t NR = F(panel_width)(), panels = (m + NR - 1) / NR;
    #pragma omp parallel if (B > 4 && B * m * m >= PACKED_MIN_WORK / 4)
    {
        Py_ssize_t p0, p1, b0, b1;
        F(share)(panels, &p0, &p1);
        F(share)(B, &b0, &b1);
        for (Py_ssize_t t = T - 1; t >= 0; t--) {
            const Py_ssize_t at = t * B + b0;               /* this thread's rows */
            F(lstm_backward)(Z + at * 4 * m, S + at * m, TS + at * m, dH + at * m, NULL, dh + b0 * m, ds + b0 * m,
                             dZ + at * 4 * m, b1 - b0, m);
            #pragma omp barrier
            F(panels_product)(dZ + t * B * 4 * m, 4 * m, Wp, dh, B, 4 * m, m, p0, p1);   /* dz_t W, all rows */
            #pragma omp barrier
        }
    }
}

/* --- The GRU's chunk at a batch, both ways in one call, as the LSTM's: per step two products (W h_{t-1},
 * then Wg (r h_{t-1})), each shared by panels, and the gate arithmetic after each, shared by rows, with a
 * wait between each; the gate arithmetic is _typed.h's own (gru_gates, gru_state, gru_backward_a, _b). */

/* GRU forwards over a chunk at a batch: Z (T, B, 3m) the inputs' parts, then the gates; H (T + 1, B, m) from
 * H[0]; RH (T, B, m); Wp, Wgp the panels of W^T (W (2m, m)) and Wg^T (pack); wh (B, 2m), wg (B, m) scratch. */
static void F(gru_forward_batch)(REAL *Z, const REAL *Wp, const REAL *Wgp, REAL *H, REAL *RH, REAL *wh, REAL *wg,
                                 Py_ssize_t T, Py_ssize_t B, Py_ssize_t m)
{
    const Py_ssize_t NR = F(panel_width)();
    #pragma omp parallel if (B > 4 && B * m * m >= PACKED_MIN_WORK / 4)
    {
        Py_ssize_t p0, p1, q0, q1, b0, b1;
        F(share)((2 * m + NR - 1) / NR, &p0, &p1);
        F(share)((m + NR - 1) / NR, &q0, &q1);
        F(share)(B, &b0, &b1);
        for (Py_ssize_t t = 0; t < T; t++) {
            REAL *z = Z + t * B * 3 * m, *h = H + t * B * m, *rh = RH + t * B * m;
            F(panels_product)(h, m, Wp, wh, B, m, 2 * m, p0, p1);       /* W h_{t-1} */
            #pragma omp barrier
            F(gru_gates)(z + b0 * 3 * m, wh + b0 * 2 * m, h + b0 * m, rh + b0 * m, b1 - b0, m);
            #pragma omp barrier
            F(panels_product)(rh, m, Wgp, wg, B, m, m, q0, q1);         /* Wg (r_t h_{t-1}) */
            #pragma omp barrier
            F(gru_state)(z + b0 * 3 * m, wg + b0 * m, h + b0 * m, h + (B + b0) * m, b1 - b0, m);
            #pragma omp barrier
        }
    }
}

/* GRU backwards over a chunk at a batch: dZ (T, B, 3m) from dH (T, B, m); Wp, Wgp the panels of W (2m, m)
 * and Wg (m, m) themselves (pack, not transposed); dh (B, m) zeros, then scratch; drh, carry (B, m) scratch. */
static void F(gru_backward_batch)(const REAL *Z, const REAL *H, const REAL *dH, const REAL *Wp, const REAL *Wgp,
                                  REAL *dZ, REAL *dh, REAL *drh, REAL *carry, Py_ssize_t T, Py_ssize_t B,
                                  Py_ssize_t m)
{
    const Py_ssize_t NR = F(panel_width)();
    #pragma omp parallel if (B > 4 && B * m * m >= PACKED_MIN_WORK / 4)
    {
        Py_ssize_t q0, q1, b0, b1;
        F(share)((m + NR - 1) / NR, &q0, &q1);
        F(share)(B, &b0, &b1);
        for (Py_ssize_t t = T - 1; t >= 0; t--) {
            const Py_ssize_t at = t * B + b0;               /* this thread's rows */
            const REAL *a = Z + at * 3 * m, *h = H + at * m;
            REAL *dz = dZ + t * B * 3 * m;                  /* every row's */
            F(gru_backward_a)(a, h, dH + at * m, t == T - 1 ? NULL : carry + b0 * m, dh + b0 * m, dz + b0 * 3 * m,
                              b1 - b0, m);
            #pragma omp barrier
            F(panels_product)(dz + 2 * m, 3 * m, Wgp, drh, B, m, m, q0, q1);     /* dg_t Wg */
            #pragma omp barrier
            F(gru_backward_b)(a, h, drh + b0 * m, dh + b0 * m, dz + b0 * 3 * m, b1 - b0, m);
            #pragma omp barrier
            F(panels_product)(dz, 3 * m, Wp, carry, B, 2 * m, m, q0, q1);        /* [dz_t dr_t] W */
            #pragma omp barrier
        }
    }
}

#undef F
#undef CAT
#undef CAT_
