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

/* Borrow obj's memory as n contiguous float64 numbers (any number if n < 0; writable if asked); on
 * failure a BufferError or ValueError that names the argument, and 0. */
static int get_doubles(PyObject *obj, Py_buffer *view, Py_ssize_t n, int writable, const char *name)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0)
        return 0;
    if (n < 0 && view->len % (Py_ssize_t)sizeof(double) == 0)
        n = view->len / (Py_ssize_t)sizeof(double);
    if (strcmp(view->format, "d") != 0 || view->len != n * (Py_ssize_t)sizeof(double)) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd float64 numbers, got %zd bytes of format '%s'",
                     name, n, view->len, view->format);
        PyBuffer_Release(view);
        return 0;
    }
    return 1;
}

static PyObject *tanh_recurrence(PyObject *self, PyObject *args)
{
    PyObject *oW, *oA, *oH;
    Py_ssize_t T, B, m;
    Py_buffer W, A, H;
    if (!PyArg_ParseTuple(args, "OOOnnn", &oW, &oA, &oH, &T, &B, &m))
        return NULL;
    if (!get_doubles(oW, &W, m * m, 0, "W"))
        return NULL;
    if (!get_doubles(oA, &A, T * B * m, 0, "A")) {
        PyBuffer_Release(&W);
        return NULL;
    }
    if (!get_doubles(oH, &H, (T + 1) * B * m, 1, "H")) {
        PyBuffer_Release(&W);
        PyBuffer_Release(&A);
        return NULL;
    }
    const double *w = W.buf, *a_in = A.buf;
    double *h = H.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; k < T * B; k++) {          /* row k of A; rows of H: k (h_{t-1}), k + B (h_t) */
        matvec_add(w, h + k * m, a_in + k * m, h + (k + B) * m, m);
        tanh_inplace(h + (k + B) * m, m);
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&W);
    PyBuffer_Release(&A);
    PyBuffer_Release(&H);
    Py_RETURN_NONE;
}

static PyObject *backprop_recurrence(PyObject *self, PyObject *args)
{
    PyObject *oW, *odH, *oH, *odA;
    Py_ssize_t T, B, m;
    Py_buffer W, dH, H, dA;
    if (!PyArg_ParseTuple(args, "OOOOnnn", &oW, &odH, &oH, &odA, &T, &B, &m))
        return NULL;
    if (!get_doubles(oW, &W, m * m, 0, "W"))
        return NULL;
    if (!get_doubles(odH, &dH, T * B * m, 0, "dH")) {
        PyBuffer_Release(&W);
        return NULL;
    }
    if (!get_doubles(oH, &H, (T + 1) * B * m, 0, "H")) {
        PyBuffer_Release(&W);
        PyBuffer_Release(&dH);
        return NULL;
    }
    if (!get_doubles(odA, &dA, T * B * m, 1, "dA")) {
        PyBuffer_Release(&W);
        PyBuffer_Release(&dH);
        PyBuffer_Release(&H);
        return NULL;
    }
    const double *w = W.buf, *dh = dH.buf, *h = H.buf;
    double *da = dA.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = T * B - 1; k >= 0; k--) {     /* row k of dA is step k / B; k + B the step after */
        memcpy(da + k * m, dh + k * m, m * sizeof(double));
        if (k + B < T * B)
            matvec_t_add(w, da + (k + B) * m, da + k * m, m);
        times_tanh_derivative(da + k * m, h + (k + B) * m, m);
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&W);
    PyBuffer_Release(&dH);
    PyBuffer_Release(&H);
    PyBuffer_Release(&dA);
    Py_RETURN_NONE;
}

static PyObject *clip_adagrad(PyObject *self, PyObject *args)
{
    PyObject *otheta, *og, *omem;
    double clip, eta, eps;
    Py_buffer theta, g, mem;
    if (!PyArg_ParseTuple(args, "OOOddd", &otheta, &og, &omem, &clip, &eta, &eps))
        return NULL;
    if (!get_doubles(otheta, &theta, -1, 1, "theta"))
        return NULL;
    Py_ssize_t n = theta.len / (Py_ssize_t)sizeof(double);
    if (!get_doubles(og, &g, n, 1, "g")) {
        PyBuffer_Release(&theta);
        return NULL;
    }
    if (!get_doubles(omem, &mem, n, 1, "mem")) {
        PyBuffer_Release(&theta);
        PyBuffer_Release(&g);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    clip_adagrad_step(theta.buf, g.buf, mem.buf, n, clip, eta, eps);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&theta);
    PyBuffer_Release(&g);
    PyBuffer_Release(&mem);
    Py_RETURN_NONE;
}

static PyObject *rows_by_index(PyObject *self, PyObject *args)
{
    PyObject *oout, *oidx, *oR;
    Py_ssize_t K, N, m;
    Py_buffer out, idx, R;
    if (!PyArg_ParseTuple(args, "OOOnnn", &oout, &oidx, &oR, &K, &N, &m))
        return NULL;
    if (PyObject_GetBuffer(oidx, &idx, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return NULL;
    if (idx.itemsize != sizeof(long long) || (strcmp(idx.format, "q") != 0 && strcmp(idx.format, "l") != 0) ||
        idx.len != N * (Py_ssize_t)sizeof(long long)) {
        PyErr_Format(PyExc_ValueError, "idx: expected %zd int64 numbers, got %zd bytes of format '%s'",
                     N, idx.len, idx.format);
        PyBuffer_Release(&idx);
        return NULL;
    }
    const long long *ix = idx.buf;
    for (Py_ssize_t i = 0; i < N; i++)
        if (ix[i] < 0 || ix[i] >= K) {
            PyErr_Format(PyExc_ValueError, "idx[%zd] = %lld is outside 0..%zd", i, ix[i], K - 1);
            PyBuffer_Release(&idx);
            return NULL;
        }
    if (!get_doubles(oout, &out, K * m, 1, "out")) {
        PyBuffer_Release(&idx);
        return NULL;
    }
    if (!get_doubles(oR, &R, N * m, 0, "R")) {
        PyBuffer_Release(&idx);
        PyBuffer_Release(&out);
        return NULL;
    }
    double *o = out.buf;
    const double *r = R.buf;
    Py_BEGIN_ALLOW_THREADS
    memset(o, 0, K * m * sizeof(double));
    for (Py_ssize_t i = 0; i < N; i++)
        add_row(o + ix[i] * m, r + i * m, m);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&idx);
    PyBuffer_Release(&out);
    PyBuffer_Release(&R);
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
