"""The loops the model cannot vectorise, compiled where that pays, with their NumPy equivalents.

lib/_kernels.c compiles the vanilla RNN's two recurrences, the sum that gives its dU and the clipped
AdaGrad step, and (lib/_typed.h) the gate arithmetic of one step of the GRU and the LSTM, in float32 and
float64, between the matrix products that stay NumPy's; lib/gru.py and lib/lstm.py call those. It is built by `pip install -e .` when a C compiler is present; without it, or with
USE_COMPILED switched off (the benchmark and the tests do, to compare), the NumPy code below does the
same work. For one sequence a NumPy call costs about a microsecond whatever its size and the
recurrences make three calls per time step, so compiled they are about twice as fast; for batches of
more than KERNEL_MAX_B sequences one NumPy matrix product per time step is faster than B compiled ones.
Both give the same results to 1e-10 (the sums run in another order), and the AdaGrad step the same bits.
"""
import ctypes
import sys

import numpy as np

from lib import optim

try:
    from lib import _kernels
except ImportError:                         # not built: the NumPy code below does the same work
    _kernels = None

USE_COMPILED = _kernels is not None
KERNEL_MAX_B = 4


def keep_freed_memory():
    """Ask glibc's malloc to keep the memory an update frees for the next one: arrays up to 32 MB come
    from the heap rather than fresh mmap pages, and the heap is handed back to the system only when more
    than 256 MB of it is free. Without this, each update's arrays (tens of MB at B = 32) are returned and
    faulted in again, page by page: about 15% of a gated update at B = 32, m = 256. Values are untouched.
    Elsewhere than on glibc, nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 * 2**20)        # M_MMAP_THRESHOLD
        libc.mallopt(-1, 256 * 2**20)       # M_TRIM_THRESHOLD
    except (OSError, AttributeError):       # another C library: it keeps its own policy
        pass


def compiled(B=1, dtype=np.float64):
    """Whether the recurrences of a batch of B sequences of this dtype run compiled."""
    return USE_COMPILED and B <= KERNEL_MAX_B and dtype == np.float64


def gates_compiled(dtype):
    """Whether the gated cells' per-step arithmetic runs compiled (lib/_typed.h) for arrays of dtype."""
    return USE_COMPILED and dtype in (np.float32, np.float64)


def dot_sums(A, out):
    """out = the sum of the rows of A (N, n), as one matrix-vector product with ones (the vanilla RNN's)."""
    np.dot(np.ones(len(A), dtype=A.dtype), A, out=out)


def row_sums(A, out):
    """out = the sum of the rows of A (N, n), as np.sum adds them (the gated cells'; another order)."""
    np.sum(A, axis=0, out=out)


def sigmoid_(a):
    """The logistic function in a's place, as (1 + tanh(a / 2)) / 2 (no overflow for any a)."""
    a *= 0.5
    np.tanh(a, out=a)
    a += 1.0
    a *= 0.5
    return a


def tanh_recurrence(W, A_in, H):
    """H[t + 1] = tanh(W H[t] + A_in[t]) for t < T, in H's place.

    W (m, m); A_in (T, B, m); H (T + 1, B, m) with H[0] = h0 given.
    """
    T, B, m = A_in.shape
    if compiled(B, H.dtype):
        _kernels.tanh_recurrence(W, A_in, H, T, B, m)
        return
    WT = W.T
    for t in range(T):
        np.tanh(np.dot(H[t], WT) + A_in[t], out=H[t + 1])


def tanh_backprop(W, dH, H, dA):
    """dA[t] = (dH[t] + W^T dA[t + 1]) * (1 - H[t + 1]^2) for t = T-1 .. 0, with dA[T] = 0, in dA's place.

    W (m, m); dH (T, B, m): the part of dL/dh_t that comes through o_t; H (T + 1, B, m); dA (T, B, m).
    """
    T, B, m = dH.shape
    if compiled(B, H.dtype):
        _kernels.backprop_recurrence(W, dH, H, dA, T, B, m)
        return
    D = 1.0 - H[1:] * H[1:]                 # (T, B, m): tanh'(a_t) = 1 - h_t^2
    da = np.zeros((B, m), dtype=dH.dtype)
    for t in reversed(range(T)):
        da = np.multiply(np.dot(da, W) + dH[t], D[t], out=dA[t])


def gather_plus(table, idx, bias):
    """table[idx] + bias: (idx's shape, n) from table (K, n), bias (n,); compiled, one pass (the same
    numbers, each an addition of two), where table is C-contiguous."""
    if not (USE_COMPILED and table.flags.c_contiguous and table.dtype in (np.float32, np.float64)
            and bias.dtype == table.dtype):
        return table[idx] + bias
    K, n = table.shape
    idx = np.asarray(idx)
    out = np.empty(idx.shape + (n,), table.dtype)
    _kernels.gather_plus(out, table, np.ascontiguousarray(idx, dtype=np.int64), np.ascontiguousarray(bias), K,
                         idx.size, n)
    return out


def add_rows(out, idx, R):
    """out[k] = the sum of the rows R[i] with idx[i] = k, in out's place: out (K, m), idx (N,), R (N, m).

    With one-hot rows x_i this is X^T R (dU^T of the model); compiled it adds each row where it belongs.
    """
    K, m = out.shape
    if USE_COMPILED and out.flags.c_contiguous and out.dtype in (np.float32, np.float64) and R.dtype == out.dtype:
        _kernels.rows_by_index(out, np.ascontiguousarray(idx, dtype=np.int64), R, K, len(idx), m)
        return
    Xhot = np.zeros((len(idx), K), dtype=R.dtype)
    Xhot[np.arange(len(idx)), idx] = 1.0
    np.matmul(Xhot.T, R, out=out)


def clip_adam_(theta, g, m1, m2, t, eta, beta1, beta2, eps, clip, scale, tmp):
    """g *= scale (the loss normalised), optim.clip_(g, clip), then optim.adam_step_: one compiled pass
    over the arrays (the same bits), else the three steps."""
    if USE_COMPILED and theta.dtype in (np.float32, np.float64):
        _kernels.clip_adam(theta, g, m1, m2, scale, clip, beta1, beta2, eta / (1 - beta1 ** t), 1 / (1 - beta2 ** t),
                           eps)
        return
    if scale != 1.0:
        g *= scale
    optim.clip_(g, clip)
    optim.adam_step_(theta, g, m1, m2, t, eta, beta1, beta2, eps, tmp)


def clip_adagrad_(theta, g, mem, clip, eta, eps, tmp):
    """optim.clip_(g, clip), then optim.adagrad_step_: one compiled pass over the arrays (the same bits),
    else the two functions."""
    if USE_COMPILED and theta.dtype == np.float64:
        _kernels.clip_adagrad(theta, g, mem, clip, eta, eps)
    else:
        optim.clip_(g, clip)
        optim.adagrad_step_(theta, g, mem, eta, eps, tmp)
