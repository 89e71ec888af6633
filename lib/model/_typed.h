/* The kernels written once for both element types: the gate arithmetic of one time step of lib/model/gru.py
 * and lib/model/lstm.py, and the clipped Adam step of lib/optim.py.
 *
 * lib/model/_kernels.c includes this file twice: with REAL float and SUFFIX f32, and with REAL double and
 * SUFFIX f64. Each gate function does, for the B rows of one step, what the NumPy loop body of the cell
 * does between its matrix products (for a batch, inside the chunk loops of lib/model/_packed.h, a share
 * of the rows each; for B <= 4 the *_seq loops below, products included), in the same order of
 * operations. Arrays are C-contiguous, rows of a batch one after another; m is the number of
 * units.
 *
 * The letters are those of the cells' docstrings: LSTM gates i, f, q, g stacked in z (B, 4m), state s;
 * GRU gates z, r, g stacked in a (B, 3m) (called z in lib/model/gru.py), candidate input r * h.
 */
#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define F(name) CAT(name, SUFFIX)

/* a (n,) = logistic(a), as (1 + tanh(a / 2)) / 2, like kernels.sigmoid_. */
static void F(sigmoid_inplace)(REAL *a, Py_ssize_t n)
{
    for (Py_ssize_t j = 0; j < n; j++)
        a[j] *= (REAL)0.5;
    F(tanh_inplace)(a, n);
    for (Py_ssize_t j = 0; j < n; j++)
        a[j] = (a[j] + (REAL)1.0) * (REAL)0.5;
}

/* dh (m,) = (dh + carry) + dh_out, or dh + dh_out where carry is NULL. */
static void F(add_carry)(REAL *restrict dh, const REAL *restrict carry, const REAL *restrict dh_out, Py_ssize_t m)
{
    if (carry)
        for (Py_ssize_t j = 0; j < m; j++)
            dh[j] = (dh[j] + carry[j]) + dh_out[j];
    else
        for (Py_ssize_t j = 0; j < m; j++)
            dh[j] = dh[j] + dh_out[j];
}

/* LSTM, forward: z += Wh (the recurrent part, from a product; NULL: z holds it already); the gates'
 * nonlinearities in z's place; s = f s_prev + i g; ts = tanh(s); h = q ts. z, wh (B, 4m); s_prev, s, ts,
 * h (B, m). */
static void F(lstm_forward)(REAL *restrict z, const REAL *restrict wh, const REAL *restrict s_prev,
                            REAL *restrict s, REAL *restrict ts, REAL *restrict h, Py_ssize_t B, Py_ssize_t m)
{
    for (Py_ssize_t b = 0; b < B; b++) {
        REAL *zb = z + b * 4 * m;
        if (wh)
            for (Py_ssize_t j = 0; j < 4 * m; j++)
                zb[j] += wh[b * 4 * m + j];
        F(sigmoid_inplace)(zb, 3 * m);
        F(tanh_inplace)(zb + 3 * m, m);
        const REAL *i = zb, *f = zb + m, *q = zb + 2 * m, *g = zb + 3 * m;
        const REAL *sp = s_prev + b * m;
        REAL *sb = s + b * m, *tb = ts + b * m, *hb = h + b * m;
        for (Py_ssize_t j = 0; j < m; j++) {
            sb[j] = f[j] * sp[j] + i[j] * g[j];
            tb[j] = sb[j];
        }
        F(tanh_inplace)(tb, m);
        for (Py_ssize_t j = 0; j < m; j++)
            hb[j] = q[j] * tb[j];
    }
}

/* LSTM, backward through one step: dh += (carry) + dh_out (carry: a gradient to add first, or NULL);
 * ds += dh q (1 - ts^2); dz of the four gates' pre-activations; ds *= f (dL/ds_{t-1} through s_t).
 * z (B, 4m) the gates; s_prev, ts, dh_out, carry, dh, ds (B, m); dz (B, 4m). */
static void F(lstm_backward)(const REAL *restrict z, const REAL *restrict s_prev, const REAL *restrict ts,
                             const REAL *restrict dh_out, const REAL *restrict carry, REAL *restrict dh,
                             REAL *restrict ds, REAL *restrict dz, Py_ssize_t B, Py_ssize_t m)
{
    for (Py_ssize_t b = 0; b < B; b++) {
        const REAL *i = z + b * 4 * m, *f = i + m, *q = i + 2 * m, *g = i + 3 * m;
        const REAL *sp = s_prev + b * m, *tb = ts + b * m, *dho = dh_out + b * m;
        const REAL *cb = carry ? carry + b * m : NULL;
        REAL *dhb = dh + b * m, *dsb = ds + b * m;
        REAL *di = dz + b * 4 * m, *df = di + m, *dq = di + 2 * m, *dg = di + 3 * m;
        F(add_carry)(dhb, cb, dho, m);
        for (Py_ssize_t j = 0; j < m; j++) {
            REAL d = dhb[j];
            REAL dsj = dsb[j] + d * q[j] * ((REAL)1.0 - tb[j] * tb[j]);
            di[j] = dsj * g[j] * (i[j] * ((REAL)1.0 - i[j]));
            df[j] = dsj * sp[j] * (f[j] * ((REAL)1.0 - f[j]));
            dq[j] = d * tb[j] * (q[j] * ((REAL)1.0 - q[j]));
            dg[j] = dsj * i[j] * ((REAL)1.0 - g[j] * g[j]);
            dsb[j] = dsj * f[j];
        }
    }
}

/* GRU, forward, first half: the update and reset gates z, r = logistic(a + W h) in a's place, and
 * rh = r h, the candidate's input. a (B, 3m) (its first 2m columns), wh (B, 2m), h, rh (B, m). */
static void F(gru_gates)(REAL *restrict a, const REAL *restrict wh, const REAL *restrict h, REAL *restrict rh,
                         Py_ssize_t B, Py_ssize_t m)
{
    for (Py_ssize_t b = 0; b < B; b++) {
        REAL *ab = a + b * 3 * m;
        const REAL *whb = wh + b * 2 * m, *hb = h + b * m;
        REAL *rhb = rh + b * m;
        for (Py_ssize_t j = 0; j < 2 * m; j++)
            ab[j] += whb[j];
        F(sigmoid_inplace)(ab, 2 * m);
        for (Py_ssize_t j = 0; j < m; j++)
            rhb[j] = ab[m + j] * hb[j];
    }
}

/* GRU, forward, second half: the candidate g = tanh(a_g + Wg rh) in a's place, and the new state
 * h_new = h + z (g - h). a (B, 3m) (its last m columns), wgrh, h, h_new (B, m). */
static void F(gru_state)(REAL *restrict a, const REAL *restrict wgrh, const REAL *restrict h, REAL *restrict h_new,
                         Py_ssize_t B, Py_ssize_t m)
{
    for (Py_ssize_t b = 0; b < B; b++) {
        REAL *ab = a + b * 3 * m, *g = ab + 2 * m;
        const REAL *z = ab, *wb = wgrh + b * m, *hb = h + b * m;
        REAL *hn = h_new + b * m;
        for (Py_ssize_t j = 0; j < m; j++)
            g[j] += wb[j];
        F(tanh_inplace)(g, m);
        for (Py_ssize_t j = 0; j < m; j++)
            hn[j] = (g[j] - hb[j]) * z[j] + hb[j];
    }
}

/* GRU, backward, first half: dh = (dh + carry) + dh_out (carry: W^T [dz; dr] of the step after, or NULL);
 * dg and dz of the pre-activations into da (B, 3m) (columns g and z). a (B, 3m) the gates, h (B, m). */
static void F(gru_backward_a)(const REAL *restrict a, const REAL *restrict h, const REAL *restrict dh_out,
                              const REAL *restrict carry, REAL *restrict dh, REAL *restrict da,
                              Py_ssize_t B, Py_ssize_t m)
{
    for (Py_ssize_t b = 0; b < B; b++) {
        const REAL *z = a + b * 3 * m, *g = z + 2 * m, *hb = h + b * m, *dho = dh_out + b * m;
        const REAL *cb = carry ? carry + b * m : NULL;
        REAL *dhb = dh + b * m, *dz = da + b * 3 * m, *dg = dz + 2 * m;
        F(add_carry)(dhb, cb, dho, m);
        for (Py_ssize_t j = 0; j < m; j++) {
            REAL d = dhb[j];
            dg[j] = d * z[j] * ((REAL)1.0 - g[j] * g[j]);
            dz[j] = d * (g[j] - hb[j]) * (z[j] * ((REAL)1.0 - z[j]));
        }
    }
}

/* GRU, backward, second half, given drh = Wg^T dg (B, m): dr into da's middle columns, and
 * dh = dh (1 - z) + drh r, the gradient reaching h_{t-1} but through W. */
static void F(gru_backward_b)(const REAL *restrict a, const REAL *restrict h, const REAL *restrict drh,
                              REAL *restrict dh, REAL *restrict da, Py_ssize_t B, Py_ssize_t m)
{
    for (Py_ssize_t b = 0; b < B; b++) {
        const REAL *z = a + b * 3 * m, *r = z + m, *hb = h + b * m, *drb = drh + b * m;
        REAL *dhb = dh + b * m, *dr = da + b * 3 * m + m;
        for (Py_ssize_t j = 0; j < m; j++) {
            dr[j] = drb[j] * hb[j] * (r[j] * ((REAL)1.0 - r[j]));
            dhb[j] = dhb[j] * ((REAL)1.0 - z[j]) + drb[j] * r[j];
        }
    }
}

/* y (rows,) = W x, W (rows, cols) row-major, four rows at a time so that four sums run side by side. */
static void F(matvec)(const REAL *restrict W, const REAL *restrict x, REAL *restrict y, Py_ssize_t rows,
                      Py_ssize_t cols)
{
    Py_ssize_t i = 0;
    for (; i + 4 <= rows; i += 4) {
        const REAL *w0 = W + i * cols, *w1 = w0 + cols, *w2 = w1 + cols, *w3 = w2 + cols;
        REAL s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
        for (Py_ssize_t j = 0; j < cols; j++) {
            s0 += w0[j] * x[j];
            s1 += w1[j] * x[j];
            s2 += w2[j] * x[j];
            s3 += w3[j] * x[j];
        }
        y[i] = s0;
        y[i + 1] = s1;
        y[i + 2] = s2;
        y[i + 3] = s3;
    }
    for (; i < rows; i++) {
        const REAL *w = W + i * cols;
        REAL s = 0;
#pragma omp simd reduction(+ : s)
        for (Py_ssize_t j = 0; j < cols; j++)
            s += w[j] * x[j];
        y[i] = s;
    }
}

/* g (cols,) = W^T d, W (rows, cols) row-major, four rows of W per pass over g. */
static void F(matvec_t)(const REAL *restrict W, const REAL *restrict d, REAL *restrict g, Py_ssize_t rows,
                        Py_ssize_t cols)
{
    for (Py_ssize_t j = 0; j < cols; j++)
        g[j] = 0;
    Py_ssize_t i = 0;
    for (; i + 4 <= rows; i += 4) {
        const REAL *w0 = W + i * cols, *w1 = w0 + cols, *w2 = w1 + cols, *w3 = w2 + cols;
        const REAL d0 = d[i], d1 = d[i + 1], d2 = d[i + 2], d3 = d[i + 3];
        for (Py_ssize_t j = 0; j < cols; j++)
            g[j] += w0[j] * d0 + w1[j] * d1 + w2[j] * d2 + w3[j] * d3;
    }
    for (; i < rows; i++) {
        const REAL *w = W + i * cols;
        for (Py_ssize_t j = 0; j < cols; j++)
            g[j] += w[j] * d[i];
    }
}

/* For a few sequences (B <= 4), where a BLAS call per step costs more than its arithmetic: whole chunks,
 * the products included (the matrix-vector products above); tmp: the caller's scratch. */

/* GRU forward over T steps: Z (T, B, 3m) in place (the gates), H (T + 1, B, m) with H[0] given, RH (T, B, m);
 * each step as gru_gates and gru_state, with W h and Wg (r h) from matvec. */
static void F(gru_forward_seq)(REAL *restrict Z, const REAL *restrict W, const REAL *restrict Wg, REAL *restrict H,
                               REAL *restrict RH, REAL *restrict tmp, Py_ssize_t T, Py_ssize_t B, Py_ssize_t m)
{
    for (Py_ssize_t k = 0; k < T * B; k++) {           /* row k of Z: step k / B; H rows k (h_{t-1}), k + B (h_t) */
        REAL *z = Z + k * 3 * m;
        const REAL *h = H + k * m;
        F(matvec)(W, h, tmp, 2 * m, m);
        F(gru_gates)(z, tmp, h, RH + k * m, 1, m);
        F(matvec)(Wg, RH + k * m, tmp, m, m);
        F(gru_state)(z, tmp, h, H + (k + B) * m, 1, m);
    }
}

/* GRU backward over T steps, from the last: dZ (T, B, 3m) from dH (T, B, m); dh, carry (B, m) scratch. */
static void F(gru_backward_seq)(const REAL *restrict Z, const REAL *restrict H, const REAL *restrict dH,
                                const REAL *restrict W, const REAL *restrict Wg, REAL *restrict dZ,
                                REAL *restrict tmp, Py_ssize_t T, Py_ssize_t B, Py_ssize_t m)
{
    REAL *dh = tmp, *carry = tmp + B * m, *drh = tmp + 2 * B * m;     /* (B, m), (B, m), (m,) */
    for (Py_ssize_t b = 0; b < B * m; b++)
        dh[b] = 0;
    for (Py_ssize_t t = T - 1; t >= 0; t--)
        for (Py_ssize_t b = 0; b < B; b++) {
            Py_ssize_t k = t * B + b;
            const REAL *a = Z + k * 3 * m, *h = H + k * m;
            REAL *da = dZ + k * 3 * m, *d = dh + b * m, *c = carry + b * m;
            F(gru_backward_a)(a, h, dH + k * m, t == T - 1 ? NULL : c, d, da, 1, m);
            F(matvec_t)(Wg, da + 2 * m, drh, m, m);
            F(gru_backward_b)(a, h, drh, d, da, 1, m);
            F(matvec_t)(W, da, c, 2 * m, m);
        }
}

/* LSTM forward over T steps: Z (T, B, 4m) in place, H, S (T + 1, B, m) with row 0 given, TS (T, B, m); each
 * step as lstm_forward, with W h from matvec. */
static void F(lstm_forward_seq)(REAL *restrict Z, const REAL *restrict W, REAL *restrict H, REAL *restrict S,
                                REAL *restrict TS, REAL *restrict tmp, Py_ssize_t T, Py_ssize_t B, Py_ssize_t m)
{
    for (Py_ssize_t k = 0; k < T * B; k++) {
        F(matvec)(W, H + k * m, tmp, 4 * m, m);
        F(lstm_forward)(Z + k * 4 * m, tmp, S + k * m, S + (k + B) * m, TS + k * m, H + (k + B) * m, 1, m);
    }
}

/* LSTM backward over T steps, from the last: dZ (T, B, 4m) from dH (T, B, m); dh, ds (B, m) scratch. */
static void F(lstm_backward_seq)(const REAL *restrict Z, const REAL *restrict S, const REAL *restrict TS,
                                 const REAL *restrict dH, const REAL *restrict W, REAL *restrict dZ,
                                 REAL *restrict tmp, Py_ssize_t T, Py_ssize_t B, Py_ssize_t m)
{
    REAL *dh = tmp, *ds = tmp + B * m;                                  /* (B, m) each */
    for (Py_ssize_t b = 0; b < B * m; b++)
        dh[b] = ds[b] = 0;
    for (Py_ssize_t t = T - 1; t >= 0; t--)
        for (Py_ssize_t b = 0; b < B; b++) {
            Py_ssize_t k = t * B + b;
            F(lstm_backward)(Z + k * 4 * m, S + k * m, TS + k * m, dH + k * m, NULL, dh + b * m, ds + b * m,
                             dZ + k * 4 * m, 1, m);
            F(matvec_t)(W, dZ + k * 4 * m, dh + b * m, 4 * m, m);
        }
}

/* out (N, n) = table[idx[i]] + bias for each row i: the inputs' part U x_t + b of a layer, gathered. */
static void F(gather_plus)(REAL *restrict out, const REAL *restrict table, const long long *restrict idx,
                           const REAL *restrict bias, Py_ssize_t N, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < N; i++) {
        const REAL *row = table + idx[i] * n;
        REAL *o = out + i * n;
        for (Py_ssize_t j = 0; j < n; j++)
            o[j] = row[j] + bias[j];
    }
}

/* g = clip(g * scale, -clip, clip), then one Adam step, with the coefficients rounded to REAL first and
 * the operations in the order of optim.clip_ and optim.adam_step_, so that the bits are the same:
 *   m1 = m1 beta1 + (1 - beta1) g;  m2 = m2 beta2 + g^2 (1 - beta2)
 *   theta -= (m1 / (sqrt(m2 c2) + eps)) c1      with c2 = 1 / (1 - beta2^t), c1 = eta / (1 - beta1^t) */
static void F(clip_adam)(REAL *restrict theta, REAL *restrict g, REAL *restrict m1, REAL *restrict m2, Py_ssize_t n,
                         double scale, double clip, double beta1, double beta2, double c1, double c2, double eps)
{
    const REAL s = (REAL)scale, hi = (REAL)clip, lo = -(REAL)clip, b1 = (REAL)beta1, b2 = (REAL)beta2;
    const REAL a1 = (REAL)(1 - beta1), a2 = (REAL)(1 - beta2), k1 = (REAL)c1, k2 = (REAL)c2, e = (REAL)eps;
    for (Py_ssize_t j = 0; j < n; j++) {
        REAL x = g[j] * s;
        x = x > hi ? hi : (x < lo ? lo : x);
        g[j] = x;
        m1[j] = m1[j] * b1 + a1 * x;
        m2[j] = m2[j] * b2 + (x * x) * a2;
        theta[j] -= (m1[j] / (SQRT(m2[j] * k2) + e)) * k1;
    }
}

#undef F
#undef CAT
#undef CAT_
