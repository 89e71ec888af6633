/* The loops of lib/rnn.py (its two recurrences and the sum that gives its dU), the gather U x_t + b,
 * the clipped AdaGrad and Adam steps of lib/optim.py, and the gate arithmetic of one step of lib/model/gru.py and
 * lib/model/lstm.py (lib/model/_typed.h, in float32 and float64), compiled. lib/model/kernels.py is the only module that
 * calls this one, behind its switch USE_COMPILED.
 *
 * Optional: when this module was not built (no C compiler at install time), the loops run in NumPy where
 * they are written (lib/rnn.py, lib/model/gru.py, lib/model/lstm.py), the optimiser steps in lib/optim.py, and the
 * gather and the row sums in lib/model/kernels.py. For one sequence (B = 1) a NumPy call costs
 * about a microsecond whatever its size, and the recurrences make three calls per time step, so most of
 * an update's time went into call overhead; here each recurrence is one call.
 *
 * Arrays are float64, C-contiguous; shapes as in lib/rnn.py (T steps, B sequences, m hidden units):
 *   tanh_recurrence(W, A, H):        H[t+1] = tanh(W H[t] + A[t]),   W (m, m), A (T, B, m), H (T+1, B, m)
 *   backprop_recurrence(W, dH, H, dA): dA[t] = (dH[t] + W^T dA[t+1]) * (1 - H[t+1]^2), dA[T] = 0
 *   rows_by_index(out, idx, R):      out[k] = sum of the rows R[i] with idx[i] = k,  out (K, m), R (N, m)
 *                                    (float64, or float32)
 *   clip_adagrad(theta, g, mem, clip, eta, eps):
 *       g = clip(g, -clip, clip);  mem += g^2;  theta -= g / sqrt(mem + eps) * eta   (all (n,))
 * The sums inside W h and W^T d run in another order than NumPy's (the tests hold both to 1e-10);
 * clip_adagrad gives the same bits as lib/optim.py (it is compiled with -ffp-contract=off).
 * The gate kernels are described in lib/model/_typed.h, a batch's products in lib/model/_packed.h.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(HAVE_LIBMVEC_IF_AVX2) && defined(__AVX2__)   /* glibc's vectorised tanh, 4 doubles at a time */
#include <immintrin.h>
__m256d _ZGVdN4v_tanh(__m256d);
static void tanh_inplace(double *a, Py_ssize_t n)        /* the vanilla RNN's: its bits are the assignment's */
{
    Py_ssize_t i = 0;
    for (; i + 4 <= n; i += 4)
        _mm256_storeu_pd(a + i, _ZGVdN4v_tanh(_mm256_loadu_pd(a + i)));
    for (; i < n; i++)
        a[i] = tanh(a[i]);
}
#if defined(__AVX512F__)                                  /* the gates': 8 doubles at a time where AVX-512 is */
__m512d _ZGVeN8v_tanh(__m512d);
static void tanh_inplace_f64(double *a, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm512_storeu_pd(a + i, _ZGVeN8v_tanh(_mm512_loadu_pd(a + i)));
    for (; i < n; i++)
        a[i] = tanh(a[i]);
}
#else
#define tanh_inplace_f64 tanh_inplace
#endif
#if defined(__AVX512F__)
__m512 _ZGVeN16v_tanhf(__m512);
static void tanh_inplace_f32(float *a, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(a + i, _ZGVeN16v_tanhf(_mm512_loadu_ps(a + i)));
    for (; i < n; i++)
        a[i] = tanhf(a[i]);
}
#else                                                     /* else 8 at a time */
__m256 _ZGVdN8v_tanhf(__m256);
static void tanh_inplace_f32(float *a, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(a + i, _ZGVdN8v_tanhf(_mm256_loadu_ps(a + i)));
    for (; i < n; i++)
        a[i] = tanhf(a[i]);
}
#endif
#else
static void tanh_inplace(double *a, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++)
        a[i] = tanh(a[i]);
}
static void tanh_inplace_f32(float *a, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++)
        a[i] = tanhf(a[i]);
}
static void tanh_inplace_f64(double *a, Py_ssize_t n)
{
    tanh_inplace(a, n);
}
#endif

#define REAL float
#define SUFFIX f32
#define SQRT sqrtf
#include "_typed.h"
#include "_packed.h"
#undef REAL
#undef SUFFIX
#undef SQRT
#define REAL double
#define SUFFIX f64
#define SQRT sqrt
#include "_typed.h"
#include "_packed.h"
#undef REAL
#undef SUFFIX
#undef SQRT

/* a (m,) = W h + a_in; W (m, m) row-major, four rows at a time so that four sums run side by side. */
static void matvec_add(const double *restrict W, const double *restrict h, const double *restrict a_in,
                       double *restrict a, Py_ssize_t m)
{
    Py_ssize_t i = 0;
    for (; i + 4 <= m; i += 4) {
        const double *w0 = W + i * m, *w1 = w0 + m, *w2 = w1 + m, *w3 = w2 + m;
        double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
        for (Py_ssize_t j = 0; j < m; j++) {
            s0 = fma(w0[j], h[j], s0);
            s1 = fma(w1[j], h[j], s1);
            s2 = fma(w2[j], h[j], s2);
            s3 = fma(w3[j], h[j], s3);
        }
        a[i] = a_in[i] + s0;
        a[i + 1] = a_in[i + 1] + s1;
        a[i + 2] = a_in[i + 2] + s2;
        a[i + 3] = a_in[i + 3] + s3;
    }
    for (; i < m; i++) {
        const double *w = W + i * m;
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (Py_ssize_t j = 0; j < m; j++)
            s = fma(w[j], h[j], s);
        a[i] = a_in[i] + s;
    }
}

/* g (m,) += W^T d; W (m, m) row-major, four rows of W per pass over g. */
static void matvec_t_add(const double *restrict W, const double *restrict d, double *restrict g, Py_ssize_t m)
{
    Py_ssize_t i = 0;
    for (; i + 4 <= m; i += 4) {
        const double *w0 = W + i * m, *w1 = w0 + m, *w2 = w1 + m, *w3 = w2 + m;
        double d0 = d[i], d1 = d[i + 1], d2 = d[i + 2], d3 = d[i + 3];
#pragma omp simd
        for (Py_ssize_t j = 0; j < m; j++)
            g[j] = fma(w3[j], d3, fma(w2[j], d2, fma(w1[j], d1, fma(w0[j], d0, g[j]))));
    }
    for (; i < m; i++) {
        const double *w = W + i * m;
        double di = d[i];
#pragma omp simd
        for (Py_ssize_t j = 0; j < m; j++)
            g[j] = fma(w[j], di, g[j]);
    }
}

/* g (m,) *= 1 - h^2, the derivative of tanh at the a whose tanh is h. */
static void times_tanh_derivative(double *restrict g, const double *restrict h, Py_ssize_t m)
{
    for (Py_ssize_t j = 0; j < m; j++)
        g[j] *= 1.0 - h[j] * h[j];
}

static void add_row(double *restrict out, const double *restrict r, Py_ssize_t m)
{
    for (Py_ssize_t j = 0; j < m; j++)
        out[j] += r[j];
}

static void add_row_f32(float *restrict out, const float *restrict r, Py_ssize_t m)
{
    for (Py_ssize_t j = 0; j < m; j++)
        out[j] += r[j];
}

static void clip_adagrad_step(double *restrict theta, double *restrict g, double *restrict mem, Py_ssize_t n,
                              double clip, double eta, double eps)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        double x = g[i] > clip ? clip : (g[i] < -clip ? -clip : g[i]);
        g[i] = x;
        mem[i] += x * x;
        theta[i] -= x / sqrt(mem[i] + eps) * eta;
    }
}

/* An argument borrowed as n contiguous float64 numbers (n < 0: as many as it holds). */
typedef struct {
    PyObject *obj;
    Py_ssize_t n;
    int writable;
    const char *name;
    Py_buffer view;
} Array;

static void release(Array *a, int count)
{
    for (int i = 0; i < count; i++)
        PyBuffer_Release(&a[i].view);
}

/* release, for arrays of which some (optional ones given as None) were never borrowed */
static void release_some(Array *a, int count)
{
    for (int i = 0; i < count; i++)
        if (a[i].view.obj != NULL)
            PyBuffer_Release(&a[i].view);
}

/* Borrow the memory of each of a[0 .. count-1]; on failure release what was borrowed, set a BufferError
 * or a ValueError that names the argument, and return 0. */
static int borrow(Array *a, int count)
{
    for (int i = 0; i < count; i++) {
        Py_buffer *v = &a[i].view;
        int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (a[i].writable ? PyBUF_WRITABLE : 0);
        if (PyObject_GetBuffer(a[i].obj, v, flags) < 0) {
            release(a, i);
            return 0;
        }
        if (a[i].n < 0 && v->len % (Py_ssize_t)sizeof(double) == 0)
            a[i].n = v->len / (Py_ssize_t)sizeof(double);
        if (strcmp(v->format, "d") != 0 || v->len != a[i].n * (Py_ssize_t)sizeof(double)) {
            PyErr_Format(PyExc_ValueError, "%s: expected %zd float64 numbers, got %zd bytes of format '%s'",
                         a[i].name, a[i].n, v->len, v->format);
            release(a, i + 1);
            return 0;
        }
    }
    return 1;
}

static PyObject *tanh_recurrence(PyObject *self, PyObject *args)
{
    PyObject *oW, *oA, *oH;
    Py_ssize_t T, B, m;
    if (!PyArg_ParseTuple(args, "OOOnnn", &oW, &oA, &oH, &T, &B, &m))
        return NULL;
    Array a[] = {{oW, m * m, 0, "W"}, {oA, T * B * m, 0, "A"}, {oH, (T + 1) * B * m, 1, "H"}};
    if (!borrow(a, 3))
        return NULL;
    const double *w = a[0].view.buf, *a_in = a[1].view.buf;
    double *h = a[2].view.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; k < T * B; k++) {          /* row k of A; rows of H: k (h_{t-1}), k + B (h_t) */
        matvec_add(w, h + k * m, a_in + k * m, h + (k + B) * m, m);
        tanh_inplace(h + (k + B) * m, m);
    }
    Py_END_ALLOW_THREADS
    release(a, 3);
    Py_RETURN_NONE;
}

static PyObject *backprop_recurrence(PyObject *self, PyObject *args)
{
    PyObject *oW, *odH, *oH, *odA;
    Py_ssize_t T, B, m;
    if (!PyArg_ParseTuple(args, "OOOOnnn", &oW, &odH, &oH, &odA, &T, &B, &m))
        return NULL;
    Array a[] = {{oW, m * m, 0, "W"}, {odH, T * B * m, 0, "dH"}, {oH, (T + 1) * B * m, 0, "H"},
                 {odA, T * B * m, 1, "dA"}};
    if (!borrow(a, 4))
        return NULL;
    const double *w = a[0].view.buf, *dh = a[1].view.buf, *h = a[2].view.buf;
    double *da = a[3].view.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = T * B - 1; k >= 0; k--) {     /* row k of dA is step k / B; k + B the step after */
        memcpy(da + k * m, dh + k * m, m * sizeof(double));
        if (k + B < T * B)
            matvec_t_add(w, da + (k + B) * m, da + k * m, m);
        times_tanh_derivative(da + k * m, h + (k + B) * m, m);
    }
    Py_END_ALLOW_THREADS
    release(a, 4);
    Py_RETURN_NONE;
}

static PyObject *clip_adagrad(PyObject *self, PyObject *args)
{
    PyObject *otheta, *og, *omem;
    double clip, eta, eps;
    if (!PyArg_ParseTuple(args, "OOOddd", &otheta, &og, &omem, &clip, &eta, &eps))
        return NULL;
    Array a[] = {{otheta, -1, 1, "theta"}, {og, -1, 1, "g"}, {omem, -1, 1, "mem"}};
    if (!borrow(a, 1))
        return NULL;
    a[1].n = a[2].n = a[0].n;                          /* g and mem: as many numbers as theta */
    if (!borrow(a + 1, 2)) {
        release(a, 1);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    clip_adagrad_step(a[0].view.buf, a[1].view.buf, a[2].view.buf, a[0].n, clip, eta, eps);
    Py_END_ALLOW_THREADS
    release(a, 3);
    Py_RETURN_NONE;
}

static int borrow_real(Array *a, int count);
static void release_some(Array *a, int count);

/* idx as N int64 indices, each in 0 .. K - 1; else 0 with a ValueError that says which. */
static int borrow_indices(PyObject *o, Py_buffer *idx, Py_ssize_t N, Py_ssize_t K)
{
    if (PyObject_GetBuffer(o, idx, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return 0;
    const long long *ix = idx->buf;
    if (idx->itemsize != sizeof(long long) || (strcmp(idx->format, "q") != 0 && strcmp(idx->format, "l") != 0) ||
        idx->len != N * (Py_ssize_t)sizeof(long long)) {
        PyErr_Format(PyExc_ValueError, "idx: expected %zd int64 numbers, got %zd bytes of format '%s'",
                     N, idx->len, idx->format);
        PyBuffer_Release(idx);
        return 0;
    }
    for (Py_ssize_t i = 0; i < N; i++)
        if (ix[i] < 0 || ix[i] >= K) {
            PyErr_Format(PyExc_ValueError, "idx[%zd] = %lld is outside 0..%zd", i, ix[i], K - 1);
            PyBuffer_Release(idx);
            return 0;
        }
    return 1;
}


static PyObject *rows_by_index(PyObject *self, PyObject *args)
{
    PyObject *oout, *oidx, *oR;
    Py_ssize_t K, N, m;
    Py_buffer idx;
    if (!PyArg_ParseTuple(args, "OOOnnn", &oout, &oidx, &oR, &K, &N, &m))
        return NULL;
    if (!borrow_indices(oidx, &idx, N, K))
        return NULL;
    const long long *ix = idx.buf;
    Array a[] = {{oout, K * m, 1, "out"}, {oR, N * m, 0, "R"}};
    int size = borrow_real(a, 2);                    /* float64, or float32 */
    if (!size) {
        PyBuffer_Release(&idx);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    memset(a[0].view.buf, 0, K * m * size);
    for (Py_ssize_t i = 0; i < N; i++)
        if (size == 8)
            add_row((double *)a[0].view.buf + ix[i] * m, (const double *)a[1].view.buf + i * m, m);
        else
            add_row_f32((float *)a[0].view.buf + ix[i] * m, (const float *)a[1].view.buf + i * m, m);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&idx);
    release_some(a, 2);
    Py_RETURN_NONE;
}

/* The gate kernels' arguments: count arrays of one element type (float32 or float64, the type of the
 * first), a[k].n numbers each; an argument given as None is passed as NULL where a[k].writable is 2
 * (optional). Returns 4 or 8 (the element size) with every buffer borrowed, or 0 with an error set. */
static int borrow_real(Array *a, int count)
{
    int size = 0;
    for (int i = 0; i < count; i++) {
        Py_buffer *v = &a[i].view;
        if (a[i].obj == Py_None && a[i].writable == 2) {
            v->obj = NULL;
            v->buf = NULL;
            continue;
        }
        int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (a[i].writable == 1 ? PyBUF_WRITABLE : 0);
        if (PyObject_GetBuffer(a[i].obj, v, flags) < 0) {
            release_some(a, i);
            return 0;
        }
        int here = strcmp(v->format, "f") == 0 ? 4 : strcmp(v->format, "d") == 0 ? 8 : 0;
        if (size == 0)
            size = here;
        if (here == 0 || here != size || v->len != a[i].n * here) {
            PyErr_Format(PyExc_ValueError, "%s: expected %zd numbers of the first array's type (float32 or "
                         "float64), got %zd bytes of format '%s'", a[i].name, a[i].n, v->len, v->format);
            release_some(a, i + 1);
            return 0;
        }
    }
    return size;
}

#define BUF(k, type) ((type)a[k].view.buf)

static PyObject *lstm_forward(PyObject *self, PyObject *args)
{
    PyObject *o[6];
    Py_ssize_t B, m;
    if (!PyArg_ParseTuple(args, "OOOOOOnn", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &B, &m))
        return NULL;
    Array a[] = {{o[0], 4 * B * m, 1, "z"}, {o[1], 4 * B * m, 0, "wh"}, {o[2], B * m, 0, "s_prev"},
                 {o[3], B * m, 1, "s"}, {o[4], B * m, 1, "ts"}, {o[5], B * m, 1, "h"}};
    int size = borrow_real(a, 6);
    if (!size)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (size == 4)
        lstm_forward_f32(BUF(0, float *), BUF(1, float *), BUF(2, float *), BUF(3, float *), BUF(4, float *),
                         BUF(5, float *), B, m);
    else
        lstm_forward_f64(BUF(0, double *), BUF(1, double *), BUF(2, double *), BUF(3, double *),
                         BUF(4, double *), BUF(5, double *), B, m);
    Py_END_ALLOW_THREADS
    release_some(a, 6);
    Py_RETURN_NONE;
}

static PyObject *lstm_backward(PyObject *self, PyObject *args)
{
    PyObject *o[8];
    Py_ssize_t B, m;
    if (!PyArg_ParseTuple(args, "OOOOOOOOnn", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7], &B, &m))
        return NULL;
    Array a[] = {{o[0], 4 * B * m, 0, "z"}, {o[1], B * m, 0, "s_prev"}, {o[2], B * m, 0, "ts"},
                 {o[3], B * m, 0, "dh_out"}, {o[4], B * m, 2, "carry"}, {o[5], B * m, 1, "dh"},
                 {o[6], B * m, 1, "ds"}, {o[7], 4 * B * m, 1, "dz"}};
    int size = borrow_real(a, 8);
    if (!size)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (size == 4)
        lstm_backward_f32(BUF(0, float *), BUF(1, float *), BUF(2, float *), BUF(3, float *), BUF(4, float *),
                          BUF(5, float *), BUF(6, float *), BUF(7, float *), B, m);
    else
        lstm_backward_f64(BUF(0, double *), BUF(1, double *), BUF(2, double *), BUF(3, double *),
                          BUF(4, double *), BUF(5, double *), BUF(6, double *), BUF(7, double *), B, m);
    Py_END_ALLOW_THREADS
    release_some(a, 8);
    Py_RETURN_NONE;
}

static PyObject *gru_gates(PyObject *self, PyObject *args)
{
    PyObject *o[4];
    Py_ssize_t B, m;
    if (!PyArg_ParseTuple(args, "OOOOnn", &o[0], &o[1], &o[2], &o[3], &B, &m))
        return NULL;
    Array a[] = {{o[0], 3 * B * m, 1, "a"}, {o[1], 2 * B * m, 0, "wh"}, {o[2], B * m, 0, "h"},
                 {o[3], B * m, 1, "rh"}};
    int size = borrow_real(a, 4);
    if (!size)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (size == 4)
        gru_gates_f32(BUF(0, float *), BUF(1, float *), BUF(2, float *), BUF(3, float *), B, m);
    else
        gru_gates_f64(BUF(0, double *), BUF(1, double *), BUF(2, double *), BUF(3, double *), B, m);
    Py_END_ALLOW_THREADS
    release_some(a, 4);
    Py_RETURN_NONE;
}

static PyObject *gru_state(PyObject *self, PyObject *args)
{
    PyObject *o[4];
    Py_ssize_t B, m;
    if (!PyArg_ParseTuple(args, "OOOOnn", &o[0], &o[1], &o[2], &o[3], &B, &m))
        return NULL;
    Array a[] = {{o[0], 3 * B * m, 1, "a"}, {o[1], B * m, 0, "wgrh"}, {o[2], B * m, 0, "h"},
                 {o[3], B * m, 1, "h_new"}};
    int size = borrow_real(a, 4);
    if (!size)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (size == 4)
        gru_state_f32(BUF(0, float *), BUF(1, float *), BUF(2, float *), BUF(3, float *), B, m);
    else
        gru_state_f64(BUF(0, double *), BUF(1, double *), BUF(2, double *), BUF(3, double *), B, m);
    Py_END_ALLOW_THREADS
    release_some(a, 4);
    Py_RETURN_NONE;
}

static PyObject *gru_backward_a(PyObject *self, PyObject *args)
{
    PyObject *o[6];
    Py_ssize_t B, m;
    if (!PyArg_ParseTuple(args, "OOOOOOnn", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &B, &m))
        return NULL;
    Array a[] = {{o[0], 3 * B * m, 0, "a"}, {o[1], B * m, 0, "h"}, {o[2], B * m, 0, "dh_out"},
                 {o[3], B * m, 2, "carry"}, {o[4], B * m, 1, "dh"}, {o[5], 3 * B * m, 1, "da"}};
    int size = borrow_real(a, 6);
    if (!size)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (size == 4)
        gru_backward_a_f32(BUF(0, float *), BUF(1, float *), BUF(2, float *), BUF(3, float *), BUF(4, float *),
                           BUF(5, float *), B, m);
    else
        gru_backward_a_f64(BUF(0, double *), BUF(1, double *), BUF(2, double *), BUF(3, double *),
                           BUF(4, double *), BUF(5, double *), B, m);
    Py_END_ALLOW_THREADS
    release_some(a, 6);
    Py_RETURN_NONE;
}

static PyObject *gru_backward_b(PyObject *self, PyObject *args)
{
    PyObject *o[5];
    Py_ssize_t B, m;
    if (!PyArg_ParseTuple(args, "OOOOOnn", &o[0], &o[1], &o[2], &o[3], &o[4], &B, &m))
        return NULL;
    Array a[] = {{o[0], 3 * B * m, 0, "a"}, {o[1], B * m, 0, "h"}, {o[2], B * m, 0, "drh"},
                 {o[3], B * m, 1, "dh"}, {o[4], 3 * B * m, 1, "da"}};
    int size = borrow_real(a, 5);
    if (!size)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (size == 4)
        gru_backward_b_f32(BUF(0, float *), BUF(1, float *), BUF(2, float *), BUF(3, float *), BUF(4, float *),
                           B, m);
    else
        gru_backward_b_f64(BUF(0, double *), BUF(1, double *), BUF(2, double *), BUF(3, double *),
                           BUF(4, double *), B, m);
    Py_END_ALLOW_THREADS
    release_some(a, 5);
    Py_RETURN_NONE;
}

static PyObject *gather_plus(PyObject *self, PyObject *args)
{
    PyObject *oout, *otable, *oidx, *obias;
    Py_ssize_t K, N, n;
    Py_buffer idx;
    if (!PyArg_ParseTuple(args, "OOOOnnn", &oout, &otable, &oidx, &obias, &K, &N, &n))
        return NULL;
    if (!borrow_indices(oidx, &idx, N, K))
        return NULL;
    Array a[] = {{oout, N * n, 1, "out"}, {otable, K * n, 0, "table"}, {obias, n, 0, "bias"}};
    int size = borrow_real(a, 3);
    if (!size) {
        PyBuffer_Release(&idx);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    if (size == 4)
        gather_plus_f32(BUF(0, float *), BUF(1, float *), idx.buf, BUF(2, float *), N, n);
    else
        gather_plus_f64(BUF(0, double *), BUF(1, double *), idx.buf, BUF(2, double *), N, n);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&idx);
    release_some(a, 3);
    Py_RETURN_NONE;
}

static PyObject *gru_forward_seq(PyObject *self, PyObject *args)
{
    PyObject *o[6];
    Py_ssize_t T, B, m;
    if (!PyArg_ParseTuple(args, "OOOOOOnnn", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &T, &B, &m))
        return NULL;
    Array a[] = {{o[0], T * B * 3 * m, 1, "Z"}, {o[1], 2 * m * m, 0, "W"}, {o[2], m * m, 0, "Wg"},
                 {o[3], (T + 1) * B * m, 1, "H"}, {o[4], T * B * m, 1, "RH"},
                 {o[5], 2 * m, 1, "scratch"}};
    int size = borrow_real(a, 6);
    if (!size)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (size == 4)
        gru_forward_seq_f32(BUF(0, float *), BUF(1, float *), BUF(2, float *), BUF(3, float *), BUF(4, float *), BUF(5, float *), T, B, m);
    else
        gru_forward_seq_f64(BUF(0, double *), BUF(1, double *), BUF(2, double *), BUF(3, double *), BUF(4, double *), BUF(5, double *), T, B, m);
    Py_END_ALLOW_THREADS
    release_some(a, 6);
    Py_RETURN_NONE;
}

static PyObject *gru_backward_seq(PyObject *self, PyObject *args)
{
    PyObject *o[7];
    Py_ssize_t T, B, m;
    if (!PyArg_ParseTuple(args, "OOOOOOOnnn", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &T, &B, &m))
        return NULL;
    Array a[] = {{o[0], T * B * 3 * m, 0, "Z"}, {o[1], (T + 1) * B * m, 0, "H"}, {o[2], T * B * m, 0, "dH"},
                 {o[3], 2 * m * m, 0, "W"}, {o[4], m * m, 0, "Wg"}, {o[5], T * B * 3 * m, 1, "dZ"},
                 {o[6], (2 * B + 1) * m, 1, "scratch"}};
    int size = borrow_real(a, 7);
    if (!size)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (size == 4)
        gru_backward_seq_f32(BUF(0, float *), BUF(1, float *), BUF(2, float *), BUF(3, float *), BUF(4, float *), BUF(5, float *), BUF(6, float *), T, B, m);
    else
        gru_backward_seq_f64(BUF(0, double *), BUF(1, double *), BUF(2, double *), BUF(3, double *), BUF(4, double *), BUF(5, double *), BUF(6, double *), T, B, m);
    Py_END_ALLOW_THREADS
    release_some(a, 7);
    Py_RETURN_NONE;
}

static PyObject *lstm_forward_seq(PyObject *self, PyObject *args)
{
    PyObject *o[6];
    Py_ssize_t T, B, m;
    if (!PyArg_ParseTuple(args, "OOOOOOnnn", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &T, &B, &m))
        return NULL;
    Array a[] = {{o[0], T * B * 4 * m, 1, "Z"}, {o[1], 4 * m * m, 0, "W"}, {o[2], (T + 1) * B * m, 1, "H"},
                 {o[3], (T + 1) * B * m, 1, "S"}, {o[4], T * B * m, 1, "TS"},
                 {o[5], 4 * m, 1, "scratch"}};
    int size = borrow_real(a, 6);
    if (!size)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (size == 4)
        lstm_forward_seq_f32(BUF(0, float *), BUF(1, float *), BUF(2, float *), BUF(3, float *), BUF(4, float *), BUF(5, float *), T, B, m);
    else
        lstm_forward_seq_f64(BUF(0, double *), BUF(1, double *), BUF(2, double *), BUF(3, double *), BUF(4, double *), BUF(5, double *), T, B, m);
    Py_END_ALLOW_THREADS
    release_some(a, 6);
    Py_RETURN_NONE;
}

static PyObject *lstm_backward_seq(PyObject *self, PyObject *args)
{
    PyObject *o[7];
    Py_ssize_t T, B, m;
    if (!PyArg_ParseTuple(args, "OOOOOOOnnn", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &T, &B, &m))
        return NULL;
    Array a[] = {{o[0], T * B * 4 * m, 0, "Z"}, {o[1], (T + 1) * B * m, 0, "S"}, {o[2], T * B * m, 0, "TS"},
                 {o[3], T * B * m, 0, "dH"}, {o[4], 4 * m * m, 0, "W"}, {o[5], T * B * 4 * m, 1, "dZ"},
                 {o[6], 2 * B * m, 1, "scratch"}};
    int size = borrow_real(a, 7);
    if (!size)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (size == 4)
        lstm_backward_seq_f32(BUF(0, float *), BUF(1, float *), BUF(2, float *), BUF(3, float *), BUF(4, float *), BUF(5, float *), BUF(6, float *), T, B, m);
    else
        lstm_backward_seq_f64(BUF(0, double *), BUF(1, double *), BUF(2, double *), BUF(3, double *), BUF(4, double *), BUF(5, double *), BUF(6, double *), T, B, m);
    Py_END_ALLOW_THREADS
    release_some(a, 7);
    Py_RETURN_NONE;
}

/* The numbers (of `item` bytes) in the panels of a (K, N) product's weights (_packed.h's pack; pack_gates's
 * for W (4m, m) are as many as pack's for K = m, N = 4m). */
static Py_ssize_t panels_size(Py_ssize_t K, Py_ssize_t N, int item)
{
    Py_ssize_t NR = item == 4 ? panel_width_f32() : panel_width_f64();
    return (N + NR - 1) / NR * NR * K;
}

/* 4 for an array of float32, else 8 (borrow_real then refuses what is neither); 0 with an exception set. */
static int item_size(PyObject *obj)
{
    Py_buffer probe;
    if (PyObject_GetBuffer(obj, &probe, PyBUF_FORMAT) < 0)
        return 0;
    int size = strcmp(probe.format, "f") == 0 ? 4 : 8;
    PyBuffer_Release(&probe);
    return size;
}

static PyObject *packed_size(PyObject *self, PyObject *args)
{
    Py_ssize_t K, N, itemsize;
    if (!PyArg_ParseTuple(args, "nnn", &K, &N, &itemsize))
        return NULL;
    return PyLong_FromSsize_t(panels_size(K, N, (int)itemsize));
}

static PyObject *pack(PyObject *self, PyObject *args)
{
    PyObject *o[2];
    Py_ssize_t K, N;
    int transpose;
    if (!PyArg_ParseTuple(args, "OOnnp", &o[0], &o[1], &K, &N, &transpose))
        return NULL;
    int item = item_size(o[0]);             /* the element size decides the panels' width */
    if (!item)
        return NULL;
    Array a[] = {{o[0], K * N, 0, "W"}, {o[1], panels_size(K, N, item), 1, "Wp"}};
    int size = borrow_real(a, 2);
    if (!size)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (size == 4)
        pack_f32(BUF(0, float *), BUF(1, float *), K, N, transpose);
    else
        pack_f64(BUF(0, double *), BUF(1, double *), K, N, transpose);
    Py_END_ALLOW_THREADS
    release_some(a, 2);
    Py_RETURN_NONE;
}

static PyObject *packed_product(PyObject *self, PyObject *args)
{
    PyObject *o[3];
    Py_ssize_t offset, lda, M, K, N;
    int transposed;
    if (!PyArg_ParseTuple(args, "OnnpOOnnn", &o[0], &offset, &lda, &transposed, &o[1], &o[2], &M, &K, &N))
        return NULL;
    if (offset < 0 || offset + (transposed ? M : K) > lda) {
        PyErr_SetString(PyExc_ValueError, "packed_product: the columns of A used must lie within its rows");
        return NULL;
    }
    int item = item_size(o[1]);
    if (!item)
        return NULL;
    Array a[] = {{o[0], (transposed ? K : M) * lda, 0, "A"}, {o[1], panels_size(K, N, item), 0, "Wp"},
                 {o[2], M * N, 1, "C"}};
    int size = borrow_real(a, 3);
    if (!size)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (size == 4)
        packed_product_f32(BUF(0, float *) + offset, lda, transposed, BUF(1, float *), BUF(2, float *), M, K, N);
    else
        packed_product_f64(BUF(0, double *) + offset, lda, transposed, BUF(1, double *), BUF(2, double *), M, K, N);
    Py_END_ALLOW_THREADS
    release_some(a, 3);
    Py_RETURN_NONE;
}


static PyObject *pack_gates(PyObject *self, PyObject *args)
{
    PyObject *o[2];
    Py_ssize_t m;
    if (!PyArg_ParseTuple(args, "OOn", &o[0], &o[1], &m))
        return NULL;
    int item = item_size(o[0]);
    if (!item)
        return NULL;
    Array a[] = {{o[0], 4 * m * m, 0, "W"}, {o[1], panels_size(m, 4 * m, item), 1, "Wp"}};
    int size = borrow_real(a, 2);
    if (!size)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (size == 4)
        pack_gates_f32(BUF(0, float *), BUF(1, float *), m);
    else
        pack_gates_f64(BUF(0, double *), BUF(1, double *), m);
    Py_END_ALLOW_THREADS
    release_some(a, 2);
    Py_RETURN_NONE;
}

static PyObject *lstm_forward_batch(PyObject *self, PyObject *args)
{
    PyObject *o[5];
    Py_ssize_t T, B, m;
    if (!PyArg_ParseTuple(args, "OOOOOnnn", &o[0], &o[1], &o[2], &o[3], &o[4], &T, &B, &m))
        return NULL;
    int item = item_size(o[0]);
    if (!item)
        return NULL;
    Array a[] = {{o[0], T * B * 4 * m, 1, "Z"}, {o[1], panels_size(m, 4 * m, item), 0, "Wp"},
                 {o[2], (T + 1) * B * m, 1, "H"}, {o[3], (T + 1) * B * m, 1, "S"}, {o[4], T * B * m, 1, "TS"}};
    int size = borrow_real(a, 5);
    if (!size)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (size == 4)
        lstm_forward_batch_f32(BUF(0, float *), BUF(1, float *), BUF(2, float *), BUF(3, float *), BUF(4, float *),
                               T, B, m);
    else
        lstm_forward_batch_f64(BUF(0, double *), BUF(1, double *), BUF(2, double *), BUF(3, double *),
                               BUF(4, double *), T, B, m);
    Py_END_ALLOW_THREADS
    release_some(a, 5);
    Py_RETURN_NONE;
}

static PyObject *lstm_backward_batch(PyObject *self, PyObject *args)
{
    PyObject *o[8];
    Py_ssize_t T, B, m;
    if (!PyArg_ParseTuple(args, "OOOOOOOOnnn", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7], &T, &B, &m))
        return NULL;
    int item = item_size(o[0]);
    if (!item)
        return NULL;
    Array a[] = {{o[0], T * B * 4 * m, 0, "Z"}, {o[1], (T + 1) * B * m, 0, "S"}, {o[2], T * B * m, 0, "TS"},
                 {o[3], T * B * m, 0, "dH"}, {o[4], panels_size(4 * m, m, item), 0, "Wp"},
                 {o[5], T * B * 4 * m, 1, "dZ"}, {o[6], B * m, 1, "dh"}, {o[7], B * m, 1, "ds"}};
    int size = borrow_real(a, 8);
    if (!size)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (size == 4)
        lstm_backward_batch_f32(BUF(0, float *), BUF(1, float *), BUF(2, float *), BUF(3, float *), BUF(4, float *),
                                BUF(5, float *), BUF(6, float *), BUF(7, float *), T, B, m);
    else
        lstm_backward_batch_f64(BUF(0, double *), BUF(1, double *), BUF(2, double *), BUF(3, double *),
                                BUF(4, double *), BUF(5, double *), BUF(6, double *), BUF(7, double *), T, B, m);
    Py_END_ALLOW_THREADS
    release_some(a, 8);
    Py_RETURN_NONE;
}

static PyObject *gru_forward_batch(PyObject *self, PyObject *args)
{
    PyObject *o[7];
    Py_ssize_t T, B, m;
    if (!PyArg_ParseTuple(args, "OOOOOOOnnn", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &T, &B, &m))
        return NULL;
    int item = item_size(o[0]);
    if (!item)
        return NULL;
    Array a[] = {{o[0], T * B * 3 * m, 1, "Z"}, {o[1], panels_size(m, 2 * m, item), 0, "Wp"},
                 {o[2], panels_size(m, m, item), 0, "Wgp"}, {o[3], (T + 1) * B * m, 1, "H"},
                 {o[4], T * B * m, 1, "RH"}, {o[5], B * 2 * m, 1, "wh"}, {o[6], B * m, 1, "wg"}};
    int size = borrow_real(a, 7);
    if (!size)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (size == 4)
        gru_forward_batch_f32(BUF(0, float *), BUF(1, float *), BUF(2, float *), BUF(3, float *), BUF(4, float *),
                              BUF(5, float *), BUF(6, float *), T, B, m);
    else
        gru_forward_batch_f64(BUF(0, double *), BUF(1, double *), BUF(2, double *), BUF(3, double *),
                              BUF(4, double *), BUF(5, double *), BUF(6, double *), T, B, m);
    Py_END_ALLOW_THREADS
    release_some(a, 7);
    Py_RETURN_NONE;
}

static PyObject *gru_backward_batch(PyObject *self, PyObject *args)
{
    PyObject *o[9];
    Py_ssize_t T, B, m;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOnnn", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7], &o[8],
                          &T, &B, &m))
        return NULL;
    int item = item_size(o[0]);
    if (!item)
        return NULL;
    Array a[] = {{o[0], T * B * 3 * m, 0, "Z"}, {o[1], (T + 1) * B * m, 0, "H"}, {o[2], T * B * m, 0, "dH"},
                 {o[3], panels_size(2 * m, m, item), 0, "Wp"}, {o[4], panels_size(m, m, item), 0, "Wgp"},
                 {o[5], T * B * 3 * m, 1, "dZ"}, {o[6], B * m, 1, "dh"}, {o[7], B * m, 1, "drh"},
                 {o[8], B * m, 1, "carry"}};
    int size = borrow_real(a, 9);
    if (!size)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (size == 4)
        gru_backward_batch_f32(BUF(0, float *), BUF(1, float *), BUF(2, float *), BUF(3, float *), BUF(4, float *),
                               BUF(5, float *), BUF(6, float *), BUF(7, float *), BUF(8, float *), T, B, m);
    else
        gru_backward_batch_f64(BUF(0, double *), BUF(1, double *), BUF(2, double *), BUF(3, double *),
                               BUF(4, double *), BUF(5, double *), BUF(6, double *), BUF(7, double *),
                               BUF(8, double *), T, B, m);
    Py_END_ALLOW_THREADS
    release_some(a, 9);
    Py_RETURN_NONE;
}

static PyObject *clip_adam(PyObject *self, PyObject *args)
{
    PyObject *o[4];
    double scale, clip, beta1, beta2, c1, c2, eps;
    if (!PyArg_ParseTuple(args, "OOOOddddddd", &o[0], &o[1], &o[2], &o[3], &scale, &clip, &beta1, &beta2, &c1,
                          &c2, &eps))
        return NULL;
    Array a[] = {{o[0], -1, 1, "theta"}, {o[1], 0, 1, "g"}, {o[2], 0, 1, "m1"}, {o[3], 0, 1, "m2"}};
    Py_buffer probe;                                  /* theta's length sets the others' */
    if (PyObject_GetBuffer(o[0], &probe, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return NULL;
    Py_ssize_t n = probe.itemsize ? probe.len / probe.itemsize : 0;
    PyBuffer_Release(&probe);
    for (int k = 0; k < 4; k++)
        a[k].n = n;
    int size = borrow_real(a, 4);
    if (!size)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (size == 4)
        clip_adam_f32(BUF(0, float *), BUF(1, float *), BUF(2, float *), BUF(3, float *), n, scale, clip, beta1,
                      beta2, c1, c2, eps);
    else
        clip_adam_f64(BUF(0, double *), BUF(1, double *), BUF(2, double *), BUF(3, double *), n, scale, clip,
                      beta1, beta2, c1, c2, eps);
    Py_END_ALLOW_THREADS
    release_some(a, 4);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"tanh_recurrence", tanh_recurrence, METH_VARARGS,
     "tanh_recurrence(W, A, H, T, B, m): H[t+1] = tanh(W H[t] + A[t]) for t < T, in H's place."},
    {"backprop_recurrence", backprop_recurrence, METH_VARARGS,
     "backprop_recurrence(W, dH, H, dA, T, B, m): dA[t] = (dH[t] + W^T dA[t+1]) * (1 - H[t+1]^2)."},
    {"rows_by_index", rows_by_index, METH_VARARGS,
     "rows_by_index(out, idx, R, K, N, m): out[k] = sum of the rows R[i] with idx[i] = k."},
    {"clip_adagrad", clip_adagrad, METH_VARARGS,
     "clip_adagrad(theta, g, mem, clip, eta, eps): clip g, then one AdaGrad step, in place."},
    {"lstm_forward", lstm_forward, METH_VARARGS,
     "lstm_forward(z, wh, s_prev, s, ts, h, B, m): one LSTM step's gates and state (lib/model/_typed.h)."},
    {"lstm_backward", lstm_backward, METH_VARARGS,
     "lstm_backward(z, s_prev, ts, dh_out, carry, dh, ds, dz, B, m): one LSTM step backwards (lib/model/_typed.h)."},
    {"gru_gates", gru_gates, METH_VARARGS, "gru_gates(a, wh, h, rh, B, m): a GRU step's z, r and r h."},
    {"gru_state", gru_state, METH_VARARGS, "gru_state(a, wgrh, h, h_new, B, m): a GRU step's g and new h."},
    {"gru_backward_a", gru_backward_a, METH_VARARGS,
     "gru_backward_a(a, h, dh_out, carry, dh, da, B, m): dh, then dg and dz of one GRU step."},
    {"gru_backward_b", gru_backward_b, METH_VARARGS,
     "gru_backward_b(a, h, drh, dh, da, B, m): dr and dh (but through W) of one GRU step."},
    {"gather_plus", gather_plus, METH_VARARGS,
     "gather_plus(out, table, idx, bias, K, N, n): out[i] = table[idx[i]] + bias, for N rows of n."},
    {"gru_forward_seq", gru_forward_seq, METH_VARARGS,
     "gru_forward_seq(Z, W, Wg, H, RH, scratch (2m), T, B, m): a chunk of a GRU forwards, products included (small B)."},
    {"gru_backward_seq", gru_backward_seq, METH_VARARGS,
     "gru_backward_seq(Z, H, dH, W, Wg, dZ, scratch ((2B + 1) m), T, B, m): a chunk of a GRU backwards, products included."},
    {"lstm_forward_seq", lstm_forward_seq, METH_VARARGS,
     "lstm_forward_seq(Z, W, H, S, TS, scratch (4m), T, B, m): a chunk of an LSTM forwards, products included (small B)."},
    {"lstm_backward_seq", lstm_backward_seq, METH_VARARGS,
     "lstm_backward_seq(Z, S, TS, dH, W, dZ, scratch (2B m), T, B, m): a chunk of an LSTM backwards, products included."},
    {"packed_size", packed_size, METH_VARARGS,
     "packed_size(K, N, itemsize): the numbers pack writes for a (K, N) product's weights (lib/model/_packed.h)."},
    {"pack", pack, METH_VARARGS,
     "pack(W, Wp, K, N, transpose): Wp = the panels of W^T (W (N, K)) or of W (W (K, N)), padded."},
    {"packed_product", packed_product, METH_VARARGS,
     "packed_product(A, offset, lda, transposed, Wp, C, M, K, N): C (M, N) = A[:, offset:offset + K] Wt, or "
     "A[:, offset:offset + M]^T Wt, Wt packed in Wp."},
    {"pack_gates", pack_gates, METH_VARARGS,
     "pack_gates(W, Wp, m): Wp = the panels of W^T, W (4m, m), the four gates of each unit side by side."},
    {"lstm_forward_batch", lstm_forward_batch, METH_VARARGS,
     "lstm_forward_batch(Z, Wp, H, S, TS, T, B, m): a chunk of an LSTM forwards at a batch (lib/model/_packed.h)."},
    {"lstm_backward_batch", lstm_backward_batch, METH_VARARGS,
     "lstm_backward_batch(Z, S, TS, dH, Wp, dZ, dh, ds, T, B, m): a chunk of an LSTM backwards at a batch."},
    {"gru_forward_batch", gru_forward_batch, METH_VARARGS,
     "gru_forward_batch(Z, Wp, Wgp, H, RH, wh, wg, T, B, m): a chunk of a GRU forwards at a batch (lib/model/_packed.h)."},
    {"gru_backward_batch", gru_backward_batch, METH_VARARGS,
     "gru_backward_batch(Z, H, dH, Wp, Wgp, dZ, dh, drh, carry, T, B, m): a chunk of a GRU backwards at a batch."},
    {"clip_adam", clip_adam, METH_VARARGS,
     "clip_adam(theta, g, m1, m2, scale, clip, beta1, beta2, c1, c2, eps): scale and clip g, one Adam step."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels", NULL, -1, methods};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
