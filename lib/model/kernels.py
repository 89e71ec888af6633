"""The accelerator: the model's loops compiled (lib/model/_kernels.c, lib/model/_typed.h), behind one switch.

The models hold their own loops over time in NumPy (lib/rnn.py, lib/model/gru.py, lib/model/lstm.py) and ask here
first, in one style:

    if kernels.compiled(B, dtype):          # rnn.py; gru.py and lstm.py ask kernels.gates_compiled(dtype)
        kernels.tanh_recurrence(W, A, H)    # the same loop, compiled
        return ...
    for t in range(T): ...                  # the loop in NumPy, the reference the tests hold it to

USE_COMPILED is the switch: True where `pip install -e .` could build lib/model/_kernels.c (a C compiler was
present); the tests and benchmarks switch it off to compare. For one sequence a NumPy call costs about a
microsecond whatever its size and a recurrence makes three calls per time step, so compiled it is about
twice as fast; for batches of more than KERNEL_MAX_B sequences one NumPy matrix product per time step is
faster than B compiled ones. Both give the same results to 1e-10 (the sums run in another order), and
the optimiser steps the same bits. This module is the only one that calls the compiled module.
"""
import ctypes
import sys
from contextlib import contextmanager

import numpy as np

from lib import optim

try:
    from lib.model import _kernels
except ImportError:                         # not built: the models' NumPy loops do the same work
    _kernels = None

BUILT = _kernels is not None      # lib/model/_kernels.c was compiled at install time
USE_COMPILED = BUILT              # the switch: the compiled loops where they apply, else NumPy's
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


def _openblas_threads():
    """(get, set) of the number of threads of the OpenBLAS NumPy runs its products with, or None (another
    BLAS, or not Linux): found among the libraries this process has loaded."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and line.count("/")}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas_", "64_"), ("scipy_openblas_", ""), ("openblas_", "64_"),
                               ("openblas_", "")):
            get, put = (getattr(lib, f"{prefix}{verb}_num_threads{suffix}", None) for verb in ("get", "set"))
            if get and put:
                get.restype, put.argtypes = ctypes.c_int, [ctypes.c_int]
                return get, put
    return None


@contextmanager
def blas_on_one_thread(when=True):
    """While the block runs, NumPy's products run on one thread (when is true and NumPy's BLAS is an
    OpenBLAS that says how). OpenBLAS's worker threads busy-wait for up to about a tenth of a second after
    each call; beside the threads of the compiled products (lib/model/_packed.h) they take the cores those
    need: a gated update at B = 32 took 2.7 times as long. The gated cells' batch training runs inside this
    block; the NumPy products left there (validation's and the sampler's, one sequence at a time) are
    small."""
    threads = _openblas_threads() if when else None
    if threads is None:
        yield
        return
    get, put = threads
    before = get()
    put(1)
    try:
        yield
    finally:
        put(before)


def compiled(B=1, dtype=np.float64):
    """Whether the recurrences of a batch of B sequences of this dtype run compiled."""
    return USE_COMPILED and B <= KERNEL_MAX_B and dtype == np.float64


def packs(B, dtype):
    """Whether the gated cells' products at B sequences are the compiled ones of lib/model/_packed.h, their
    weights packed once per chunk and their panels shared among threads: for a batch (B > KERNEL_MAX_B)."""
    return gates_compiled(dtype) and B > KERNEL_MAX_B


def gates_compiled(dtype):
    """Whether the gated cells' per-step arithmetic runs compiled (lib/model/_typed.h) for arrays of dtype."""
    return USE_COMPILED and dtype in (np.float32, np.float64)


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


def tanh_recurrence(W, A, H):
    """H[t + 1] = tanh(W H[t] + A[t]) for t < T, in H's place (lib/rnn.py's forward loop).
    W (m, m); A (T, B, m); H (T + 1, B, m) with H[0] = h0 given."""
    T, B, m = A.shape
    _kernels.tanh_recurrence(W, A, H, T, B, m)


def tanh_backprop(W, dH, H, dA):
    """dA[t] = (dH[t] + W^T dA[t + 1]) * (1 - H[t + 1]^2) for t = T-1 .. 0, in dA's place (lib/rnn.py's
    backward loop). W (m, m); dH, dA (T, B, m); H (T + 1, B, m)."""
    T, B, m = dH.shape
    _kernels.backprop_recurrence(W, dH, H, dA, T, B, m)


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


# --- the gated cells' loops (lib/model/gru.py, lib/model/lstm.py): for a few sequences, the whole chunk is one
# call, products included. For a batch, the products are compiled, their weights packed once for the chunk
# (lib/model/_packed.h), and each cell's chunk is one call each way (with dstates asked for, one call per
# product and step). So are the weight gradients and the output layer's products.

class Packed:
    """The weights of a product, packed once (for a chunk's steps, say): C (M, N) = A[:, offset:offset + K] Wt,
    Wt = W^T (transpose; W (N, K)) or W (W (K, N))."""

    def __init__(self, W, transpose):
        self.K, self.N = (W.shape[1], W.shape[0]) if transpose else W.shape
        self.panels = np.empty(_kernels.packed_size(self.K, self.N, W.itemsize), W.dtype)
        _kernels.pack(W, self.panels, self.K, self.N, transpose)

    def product(self, A, out, offset=0):
        """out (B, N) = A[:, offset:offset + K] Wt, A (B, lda) C-contiguous."""
        _kernels.packed_product(A, offset, A.shape[1], False, self.panels, out, A.shape[0], self.K, self.N)

    def product_of_transpose(self, A, out, offset=0):
        """out (M, N) = A[:, offset:offset + M]^T Wt, A (K, lda) C-contiguous: a weight gradient, the sum
        over a chunk's rows (with Wt the inputs of the chunk's steps, packed)."""
        _kernels.packed_product(A, offset, A.shape[1], True, self.panels, out, out.shape[0], self.K, self.N)


def weight_gradient(dZ, X, out, compiled, offset=0):
    """out (M, n) = dZ[:, offset:offset + M]^T X, the sum over the rows of dZ (T B, G m) and X (T B, n): a
    weight's gradient over a chunk. compiled: the compiled product (where a batch's products are: packs),
    else NumPy's."""
    if compiled:
        Packed(np.ascontiguousarray(X), transpose=False).product_of_transpose(dZ, out, offset)
    else:
        np.matmul(dZ[:, offset:offset + out.shape[0]].T, X, out=out)


def product(A, W, transpose=False):
    """A W^T (transpose) or A W, A (N, K) with W (M, K) or (K, M): compiled, for a batch of the gated cells."""
    packed = Packed(W, transpose)
    out = np.empty((A.shape[0], packed.N), A.dtype)
    packed.product(np.ascontiguousarray(A), out)
    return out


def output_scores(Hs, V, c):
    """O (N, K) = Hs V^T + c, the output layer's scores (lib/rnn.py), its product compiled (for a batch of the
    gated cells, where NumPy's products run on one thread: blas_on_one_thread)."""
    O = product(Hs, V, transpose=True)
    O += c
    return O


def output_backward(P, dO, Hs, y, G, column_sums):
    """rnn.output_backward, its two products compiled: dV, dc into G, and dL/dh_t through o_t (N, m)."""
    dO[np.arange(len(y)), y] -= 1.0         # do_t = p_t - onehot(y_t)
    weight_gradient(dO, Hs, G.V, compiled=True)                   # dV = sum_t do_t h_t^T
    column_sums(dO, G.c)                    # dc = sum_t do_t
    return product(dO, P.V)                 # V^T do_t, each row


def gru_forward(P, Z, H, RH):
    """lib/model/gru.py's forward loop: Z (T, B, 3m) the gates, in place; H (T + 1, B, m); RH (T, B, m)."""
    T, B, m = RH.shape
    if B <= KERNEL_MAX_B:
        _kernels.gru_forward_seq(Z, P.W, P.Wg, H, RH, np.empty(2 * m, P.W.dtype), T, B, m)
        return
    WT, WgT = Packed(P.W, transpose=True), Packed(P.Wg, transpose=True)
    wh, wg = np.empty((B, 2 * m), P.W.dtype), np.empty((B, m), P.W.dtype)
    _kernels.gru_forward_batch(Z, WT.panels, WgT.panels, H, RH, wh, wg, T, B, m)   # the whole chunk


def gru_backward(P, dH, H, Z, dZ, dstates):
    """lib/model/gru.py's backward loop: dZ (T, B, 3m), and dstates (T, B, m) if given. The product with W
    (carry) is added to dh at the start of the step before, in the order the NumPy loop adds it."""
    T, B, m = dH.shape
    if B <= KERNEL_MAX_B and dstates is None:
        _kernels.gru_backward_seq(Z, H, dH, P.W, P.Wg, dZ, np.empty((2 * B + 1) * m, dH.dtype), T, B, m)
        return
    W, Wg = Packed(P.W, transpose=False), Packed(P.Wg, transpose=False)
    dh, drh, carry = np.zeros((B, m), dH.dtype), np.empty((B, m), dH.dtype), np.empty((B, m), dH.dtype)
    if dstates is None:                     # the whole chunk in one call
        _kernels.gru_backward_batch(Z, H, dH, W.panels, Wg.panels, dZ, dh, drh, carry, T, B, m)
        return
    for t in reversed(range(T)):
        _kernels.gru_backward_a(Z[t], H[t], dH[t], None if t == T - 1 else carry, dh, dZ[t], B, m)
        Wg.product(dZ[t], drh, offset=2 * m)                # dg_t Wg
        _kernels.gru_backward_b(Z[t], H[t], drh, dh, dZ[t], B, m)
        W.product(dZ[t], carry)                             # [dz_t dr_t] W
        if dstates is not None:
            np.add(dh, carry, out=dstates[t])


def lstm_forward(P, Z, H, S, TS):
    """lib/model/lstm.py's forward loop: Z (T, B, 4m) the gates, in place; H, S (T + 1, B, m); TS (T, B, m)."""
    T, B, m = TS.shape
    if B <= KERNEL_MAX_B:
        _kernels.lstm_forward_seq(Z, P.W, H, S, TS, np.empty(4 * m, P.W.dtype), T, B, m)
        return
    panels = np.empty(_kernels.packed_size(m, 4 * m, P.W.itemsize), P.W.dtype)   # as many as pack's
    _kernels.pack_gates(P.W, panels, m)     # each unit's four gates side by side
    _kernels.lstm_forward_batch(Z, panels, H, S, TS, T, B, m)


def lstm_backward(P, dH, S, Z, TS, dZ, dstates):
    """lib/model/lstm.py's backward loop: dZ (T, B, 4m), and dstates (T, B, 2m) if given."""
    T, B, m = dH.shape
    if B <= KERNEL_MAX_B and dstates is None:
        _kernels.lstm_backward_seq(Z, S, TS, dH, P.W, dZ, np.empty(2 * B * m, dH.dtype), T, B, m)
        return
    W = Packed(P.W, transpose=False)
    dh, ds = np.zeros((B, m), dH.dtype), np.zeros((B, m), dH.dtype)
    if dstates is None:                     # the whole chunk in one call
        _kernels.lstm_backward_batch(Z, S, TS, dH, W.panels, dZ, dh, ds, T, B, m)
        return
    for t in reversed(range(T)):
        _kernels.lstm_backward(Z[t], S[t], TS[t], dH[t], None, dh, ds, dZ[t], B, m)
        W.product(dZ[t], dh)                # dz_t W
        if dstates is not None:
            dstates[t, :, :m], dstates[t, :, m:] = dh, ds
