"""The compiled loops (lib/model/_kernels.c) against the NumPy code they replace."""
import shutil
import sysconfig

import numpy as np
import pytest

from lib import optim
from lib.model import cells, kernels

try:
    from lib.model import _kernels as native      # the compiled module itself, for its own argument checks
except ImportError:
    native = None

pytestmark = pytest.mark.fast


def test_kernels_are_built_where_a_compiler_is():
    """`pip install -e .` (make setup) builds lib.model._kernels whenever a C compiler is present;
    without it every update would silently run about 1.5x slower."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        pytest.skip(f"no C compiler ({cc}): lib/ runs its NumPy loops")
    assert kernels.BUILT, "lib.model._kernels was not built: run `make setup` (pip install -e .)"
    assert kernels.compiled(1) and not kernels.compiled(32)


def loss_grads_state(P, X, Y, h0):
    loss, G, hT = cells.RNN.loss_and_grads(P, X, Y, h0)
    return loss, [a.copy() for a in G], hT


@pytest.mark.parametrize("B,m", [(1, 100), (3, 7), (4, 33), (6, 20)])
def test_compiled_and_numpy_loops_agree(B, m, monkeypatch):
    """Same loss, gradients and last state to 1e-10, as the plain reference is held to (the sums run
    in another order); m not a multiple of 4 exercises the kernels' remainder loops; B = 6 runs NumPy's
    recurrences beside the compiled dU."""
    K, T = 11, 25
    rng = np.random.default_rng(B)
    theta = rng.standard_normal(cells.RNN.n_params(K, m)) / np.sqrt(m)     # a trained network's scale
    P = cells.RNN.views(theta, K, m)
    X, Y, h0 = rng.integers(0, K, (T, B)), rng.integers(0, K, (T, B)), np.tanh(rng.standard_normal((B, m)))
    fast = loss_grads_state(P, X, Y, h0)
    monkeypatch.setattr(kernels, "USE_COMPILED", False)
    slow = loss_grads_state(P, X, Y, h0)
    assert abs(fast[0] - slow[0]) <= 1e-10
    for a, b in zip(fast[1], slow[1]):
        assert np.max(np.abs(a - b)) <= 1e-10
    assert np.max(np.abs(fast[2] - slow[2])) <= 1e-10


def test_compiled_clip_adagrad_gives_the_same_bits():
    if not kernels.BUILT:
        pytest.skip("lib.model._kernels is not built (test_kernels_are_built_where_a_compiler_is says why)")
    rng = np.random.default_rng(0)
    n = 10_001
    theta, mem = rng.standard_normal(n), rng.random(n) * 10
    g = rng.standard_normal(n) * 4
    g[:5] = [7.0, -7.0, 5.0, -5.0, 0.0]
    mem[:3] = 0.0
    t1, g1, m1 = theta.copy(), g.copy(), mem.copy()
    native.clip_adagrad(t1, g1, m1, 5.0, 0.1, 1e-8)
    t2, g2, m2 = theta.copy(), g.copy(), mem.copy()
    optim.clip_(g2, 5.0)
    optim.adagrad_step_(t2, g2, m2, 0.1, 1e-8, np.empty(n))
    assert np.array_equal(g1, g2) and np.array_equal(m1, m2) and np.array_equal(t1, t2)
    assert np.abs(g1).max() == 5.0


def test_kernels_refuse_wrong_arrays():
    if not kernels.BUILT:
        pytest.skip("lib.model._kernels is not built")
    T, B, m = 3, 1, 4
    W, A, H = np.zeros((m, m)), np.zeros((T, B, m)), np.zeros((T + 1, B, m))
    with pytest.raises(ValueError, match="A: expected 12 float64"):
        native.tanh_recurrence(W, A.astype(np.float32), H, T, B, m)
    with pytest.raises(ValueError, match="H: expected 16"):
        native.tanh_recurrence(W, A, H[:-1], T, B, m)
    with pytest.raises((ValueError, BufferError)):
        native.tanh_recurrence(np.zeros((m, 2 * m))[:, ::2], A, H, T, B, m)    # not contiguous
    with pytest.raises(ValueError, match="W: expected 25"):
        native.tanh_recurrence(W, A, H, T, B, m + 1)
    ro = np.zeros((T + 1, B, m))
    ro.setflags(write=False)
    with pytest.raises((ValueError, BufferError)):
        native.tanh_recurrence(W, A, ro, T, B, m)                            # H is written
    with pytest.raises(ValueError, match="idx\\[1\\] = 7 is outside 0..6"):
        native.rows_by_index(np.zeros((7, m)), np.array([0, 7]), np.zeros((2, m)), 7, 2, m)
    with pytest.raises(ValueError, match="idx: expected 2 int64"):
        native.rows_by_index(np.zeros((7, m)), np.array([0, 1], np.int32), np.zeros((2, m)), 7, 2, m)
    with pytest.raises(ValueError, match="idx\\[2\\] = -1 is outside 0..6"):
        native.gather_plus(np.zeros((3, m)), np.zeros((7, m)), np.array([0, 6, -1]), np.zeros(m), 7, 3, m)
    with pytest.raises(ValueError, match="bias: expected 4 numbers of the first array's type"):
        native.gather_plus(np.zeros((1, m)), np.zeros((7, m)), np.array([0]), np.zeros(m, np.float32), 7, 1, m)
    with pytest.raises(ValueError, match="carry: expected 8 numbers"):
        native.gru_backward_a(*[np.zeros((2, 3 * m))] + [np.zeros((2, m))] * 2 + [np.zeros(3)] +
                                        [np.zeros((2, m)), np.zeros((2, 3 * m))], 2, m)
    with pytest.raises(ValueError, match="g: expected 5"):
        native.clip_adagrad(np.zeros(5), np.zeros(4), np.zeros(5), 5.0, 0.1, 1e-8)


def gated_everything(cell, P, X, Y, h0, keep):
    """loss, gradients, last state, and the gradients reaching each step's state (cell.backward's dstates)."""
    loss, G, hT = cell.loss_and_grads(P, X, Y, h0, keep=keep)
    G = [a.copy() for a in G]
    T, B = X.shape
    H, caches, _ = cell.forward(P, X, h0)
    dH = np.random.default_rng(9).standard_normal((T, B, P.V.shape[1])).astype(H.dtype)
    dstates = np.empty((T, B, cell.state_size(P.V.shape[1])), H.dtype)
    cell.backward(P, dH, caches, cell.views(np.empty(cell.n_params(*P.V.shape), H.dtype), *P.V.shape), X,
                  dstates=dstates)
    return loss, G, hT, dstates


@pytest.mark.parametrize("name", ["gru", "lstm"])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 2e-4)])
@pytest.mark.parametrize("B,m,layers", [(1, 37, 1), (3, 16, 1), (5, 9, 2), (9, 40, 1), (17, 21, 2), (32, 64, 1),
                                          (33, 70, 2)])
def test_compiled_gates_agree_with_the_numpy_steps(name, dtype, tol, B, m, layers, monkeypatch):
    """The gated cells' compiled steps (lib/model/_typed.h) against their NumPy steps, the readable reference:
    loss, every gradient, the last state and the gradients through time, to 1e-10 in float64 (float32:
    to its own precision); m = 37 and 9 exercise the vector loops' remainders; B = 5 and more the
    products of a batch (lib/model/_packed.h), their rows and columns past whole blocks among them; B = 32
    and 33 are large enough for the chunk to run on threads (where the machine has several cores)."""
    if not kernels.BUILT:
        pytest.skip("lib.model._kernels is not built")
    cell, K, T = cells.get(name, layers), 13, 17
    rng = np.random.default_rng(B)
    theta = (rng.standard_normal(cell.n_params(K, m)) / np.sqrt(m)).astype(dtype)
    P = cell.views(theta, K, m)
    X, Y = rng.integers(0, K, (T, B)), rng.integers(0, K, (T, B))
    h0 = np.tanh(rng.standard_normal((B, cell.state_size(m)))).astype(dtype)
    keep = np.where(rng.random((layers, T * B, m)) < 0.2, 0.0, 1.25).astype(dtype)
    assert kernels.gates_compiled(np.dtype(dtype))
    fast = gated_everything(cell, P, X, Y, h0, keep)
    monkeypatch.setattr(kernels, "USE_COMPILED", False)
    slow = gated_everything(cell, P, X, Y, h0, keep)
    assert abs(fast[0] - slow[0]) <= tol * abs(slow[0])
    for a, b in zip(fast[1] + [fast[2], fast[3]], slow[1] + [slow[2], slow[3]]):
        assert a.dtype == dtype and np.max(np.abs(a - b)) <= tol * max(1.0, np.max(np.abs(b)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_clip_adam_gives_the_same_bits(dtype):
    """The loss scaled, clipped and one Adam step in one compiled pass: the same bits as optim.clip_ and
    optim.adam_step_, in either type (the coefficients rounded to it as NumPy rounds them)."""
    if not kernels.BUILT:
        pytest.skip("lib.model._kernels is not built")
    rng = np.random.default_rng(0)
    n = 1001
    a = [rng.standard_normal(n).astype(dtype), None, rng.standard_normal(n).astype(dtype) * 0.1,
         np.abs(rng.standard_normal(n)).astype(dtype) * 0.01]
    b = [x if x is None else x.copy() for x in a]
    for t in (1, 2, 30):
        g = (rng.standard_normal(n) * 40).astype(dtype)
        a[1], b[1] = g.copy(), g.copy()
        kernels.clip_adam_(a[0], a[1], a[2], a[3], t, 0.003, 0.9, 0.999, 1e-8, 5.0, 0.25, None)
        kernels.USE_COMPILED = False
        try:
            kernels.clip_adam_(b[0], b[1], b[2], b[3], t, 0.003, 0.9, 0.999, 1e-8, 5.0, 0.25, np.empty(n, dtype))
        finally:
            kernels.USE_COMPILED = True
        assert all(np.array_equal(x, y) for x, y in zip(a, b)), t
    assert np.abs(a[1]).max() == 5.0


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-13), (np.float32, 1e-5)])
@pytest.mark.parametrize("M,K,N,offset,extra", [(32, 256, 1024, 0, 0), (1, 1, 1, 0, 0), (9, 40, 160, 3, 2),
                                                (17, 33, 70, 0, 5), (8, 64, 32, 0, 0), (5, 7, 3, 1, 1)])
@pytest.mark.parametrize("transpose", [True, False])
def test_packed_products_are_numpys_products(dtype, tol, M, K, N, offset, extra, transpose):
    """The compiled products of a batch's steps, the weights packed once (lib/model/_packed.h), against NumPy's
    products: A Wt with Wt = W^T or W, A's columns from an offset within longer rows, and the product
    of A's transpose (a weight gradient); shapes past whole blocks of rows and panels of columns."""
    if not kernels.BUILT:
        pytest.skip("lib.model._kernels is not built")
    rng = np.random.default_rng(M * K + N)
    W = rng.standard_normal((N, K) if transpose else (K, N)).astype(dtype)
    Wt = W.T if transpose else W
    packed = kernels.Packed(W, transpose)
    A = rng.standard_normal((M, offset + K + extra)).astype(dtype)
    out = np.full((M, N), np.nan, dtype)
    packed.product(A, out, offset)
    want = A[:, offset:offset + K].astype(np.float64) @ Wt
    assert np.max(np.abs(out - want)) <= tol * np.sqrt(K) * max(1.0, np.max(np.abs(want)))
    AT = rng.standard_normal((K, offset + M + extra)).astype(dtype)      # M of its columns, transposed
    out = np.full((M, N), np.nan, dtype)
    packed.product_of_transpose(AT, out, offset)
    want = AT[:, offset:offset + M].T.astype(np.float64) @ Wt
    assert np.max(np.abs(out - want)) <= tol * np.sqrt(K) * max(1.0, np.max(np.abs(want)))


def test_packed_products_refuse_columns_outside_a_row():
    if not kernels.BUILT:
        pytest.skip("lib.model._kernels is not built")
    packed = kernels.Packed(np.zeros((4, 3)), transpose=False)
    with pytest.raises(ValueError, match="the columns of A used must lie within its rows"):
        packed.product(np.zeros((2, 5)), np.zeros((2, 3)), offset=2)
    with pytest.raises(ValueError, match="A: expected 8 numbers"):
        native.packed_product(np.zeros((2, 5)), 0, 4, False, packed.panels, np.zeros((2, 3)), 2, 4, 3)


def test_numpys_products_run_on_one_thread_inside_the_block_and_as_before_after_it():
    """The gated cells' batch training runs NumPy's products on one thread (their workers' busy wait would
    take the cores of the compiled products' threads); the count before is restored after."""
    threads = kernels._openblas_threads()
    if threads is None:
        pytest.skip("NumPy's BLAS is not an OpenBLAS that can say its threads")
    get, put = threads
    before = get()
    with kernels.blas_on_one_thread():
        assert get() == 1
    assert get() == before
    with kernels.blas_on_one_thread(when=False):
        assert get() == before
