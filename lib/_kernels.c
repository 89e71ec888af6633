/* The two recurrences of lib/rnn.py, the sum that gives its dU, and the clipped AdaGrad step of
 * lib/optim.py, compiled.
 *
 * Optional: when this module was not built (no C compiler at install time), lib/rnn.py and
 * lib/optim.py run the same computations as NumPy calls. For one sequence (B = 1) a NumPy call costs
 * about a microsecond whatever its size, and the recurrences make three calls per time step, so most of
 * an update's time went into call overhead; here each recurrence is one call.
 *
 * Arrays are float64, C-contiguous; shapes as in lib/rnn.py (T steps, B sequences, m hidden units):
 *   tanh_recurrence(W, A, H):        H[t+1] = tanh(W H[t] + A[t]),   W (m, m), A (T, B, m), H (T+1, B, m)
 *   backprop_recurrence(W, dH, H, dA): dA[t] = (dH[t] + W^T dA[t+1]) * (1 - H[t+1]^2), dA[T] = 0
 *   rows_by_index(out, idx, R):      out[k] = sum of the rows R[i] with idx[i] = k,  out (K, m), R (N, m)
 *   clip_adagrad(theta, g, mem, clip, eta, eps):
 *       g = clip(g, -clip, clip);  mem += g^2;  theta -= g / sqrt(mem + eps) * eta   (all (n,))
 * The sums inside W h and W^T d run in another order than NumPy's (the tests hold both to 1e-10);
 * clip_adagrad gives the same bits as lib/optim.py (it is compiled with -ffp-contract=off).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

#if defined(HAVE_LIBMVEC_IF_AVX2) && defined(__AVX2__)   /* glibc's vectorised tanh, 4 doubles at a time */
#include <immintrin.h>
__m256d _ZGVdN4v_tanh(__m256d);
static void tanh_inplace(double *a, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    for (; i + 4 <= n; i += 4)
        _mm256_storeu_pd(a + i, _ZGVdN4v_tanh(_mm256_loadu_pd(a + i)));
    for (; i < n; i++)
        a[i] = tanh(a[i]);
}
#else
static void tanh_inplace(double *a, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++)
        a[i] = tanh(a[i]);
}
#endif

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

static PyObject *rows_by_index(PyObject *self, PyObject *args)
{
    PyObject *oout, *oidx, *oR;
    Py_ssize_t K, N, m;
    Py_buffer idx;
    if (!PyArg_ParseTuple(args, "OOOnnn", &oout, &oidx, &oR, &K, &N, &m))
        return NULL;
    if (PyObject_GetBuffer(oidx, &idx, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return NULL;
    const long long *ix = idx.buf;
    int bad = idx.itemsize != sizeof(long long) || (strcmp(idx.format, "q") != 0 && strcmp(idx.format, "l") != 0) ||
              idx.len != N * (Py_ssize_t)sizeof(long long);
    if (bad)
        PyErr_Format(PyExc_ValueError, "idx: expected %zd int64 numbers, got %zd bytes of format '%s'",
                     N, idx.len, idx.format);
    for (Py_ssize_t i = 0; !bad && i < N; i++)
        if (ix[i] < 0 || ix[i] >= K) {
            PyErr_Format(PyExc_ValueError, "idx[%zd] = %lld is outside 0..%zd", i, ix[i], K - 1);
            bad = 1;
        }
    Array a[] = {{oout, K * m, 1, "out"}, {oR, N * m, 0, "R"}};
    if (bad || !borrow(a, 2)) {
        PyBuffer_Release(&idx);
        return NULL;
    }
    double *o = a[0].view.buf;
    const double *r = a[1].view.buf;
    Py_BEGIN_ALLOW_THREADS
    memset(o, 0, K * m * sizeof(double));
    for (Py_ssize_t i = 0; i < N; i++)
        add_row(o + ix[i] * m, r + i * m, m);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&idx);
    release(a, 2);
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
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels", NULL, -1, methods};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
