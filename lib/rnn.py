"""A vanilla character-level RNN in NumPy (KTH DD2424, Assignment 4).

For one time step t, with x_t the one-hot encoding of the input character:

    a_t = W h_{t-1} + U x_t + b        (m,)
    h_t = tanh(a_t)                    (m,)
    o_t = V h_t + c                    (K,)
    p_t = softmax(o_t)                 (K,)

    loss = - sum_t log p_t[y_t]        summed over the T characters of a chunk

Shapes use fixed letters: K vocabulary size, m hidden units, T time steps, B sequences in a batch
(B = 1 in the assignment). Parameters: U (m, K), W (m, m), V (K, m), b (m,), c (K,).

The five parameters are views into one flat float64 vector, so the optimiser, the gradient clip and
the "best model" copy each work on a single array. U is stored as its transpose, so that the column
U[:, x] of an input character is contiguous in memory.

Everything that is not sequential runs as one NumPy call for the whole chunk. The two recurrences (h_t
from h_{t-1}, and back) are Python loops over t below; for a few sequences at a time the same loops run
compiled (lib/_kernels.c, built at install when a C compiler is present), since there a NumPy call costs
more than its arithmetic.
"""
from typing import NamedTuple

import numpy as np

try:
    from lib import _kernels
except ImportError:                        # not built: the NumPy loops below do the same work
    _kernels = None

NAMES = ("U", "W", "V", "b", "c")
# lib/_kernels.c compiles the two recurrences, the sum that gives dU and the clipped AdaGrad step. They
# run when built (USE_KERNELS; the benchmark and the tests switch them off to compare), the recurrences
# for batches of up to KERNEL_MAX_B sequences: compiled, they are faster up to B = 4 to 8 here, and
# beyond that one NumPy matrix product per time step is faster than B compiled ones.
USE_KERNELS = _kernels is not None
KERNEL_MAX_B = 4


def compiled(B=1):
    """Whether the recurrences of a batch of B sequences run compiled (lib/_kernels.c)."""
    return USE_KERNELS and B <= KERNEL_MAX_B


class Params(NamedTuple):
    """The five parameter (or gradient) arrays: U (m, K), W (m, m), V (K, m), b (m,), c (K,)."""
    U: np.ndarray
    W: np.ndarray
    V: np.ndarray
    b: np.ndarray
    c: np.ndarray


def shapes(K, m):
    """The shape of each parameter, in the order of NAMES."""
    return ((m, K), (m, m), (K, m), (m,), (K,))


def n_params(K, m):
    """The number of scalars in the model: m K + m m + K m + m + K."""
    return sum(int(np.prod(s)) for s in shapes(K, m))


def views(theta, K, m):
    """Split a flat vector theta (n_params,) into Params whose arrays are views of it."""
    out, i = [], 0
    for name, s in zip(NAMES, shapes(K, m)):
        n = int(np.prod(s))
        block = theta[i:i + n]
        out.append(block.reshape(K, m).T if name == "U" else block.reshape(s))   # U laid out as U^T
        i += n
    return Params(*out)


def init_params(K, m, sig, rng):
    """theta (n_params,): U, W, V drawn from N(0, sig^2) by the Generator rng; b and c zero."""
    theta = np.zeros(n_params(K, m))
    P = views(theta, K, m)
    for M in (P.U, P.W, P.V):
        M[...] = sig * rng.standard_normal(M.shape)
    return theta


def softmax(O, axis=-1):
    """Softmax along axis, shifted by the maximum for stability."""
    E = np.exp(O - O.max(axis=axis, keepdims=True))
    E /= E.sum(axis=axis, keepdims=True)
    return E


def probs_and_losses(O, y):
    """P = softmax of each row of O (N, K), computed in O's place, and -log P[i, y_i] (N,) as
    logsumexp(o_i) - o_i[y_i], which stays finite where P[i, y_i] underflows to zero."""
    o_max = O.max(axis=1)
    o_y = O[np.arange(len(y)), y]
    O -= o_max[:, None]
    E = np.exp(O, out=O)
    S = E.sum(axis=1)
    E /= S[:, None]
    return E, np.log(S) + o_max - o_y


def forward(P, X, h0):
    """Run the recurrence over a chunk.

    P: Params. X: (T, B) input indices. h0: (B, m) hidden state before the chunk.
    Returns H (T + 1, B, m) with H[0] = h0 and H[t + 1] = h_t, and O (T B, K) the scores o_t.
    """
    T, B = X.shape
    m = h0.shape[-1]
    A_in = P.U.T[X] + P.b                  # (T, B, m): U x_t + b for all t at once
    H = np.empty((T + 1, B, m))
    H[0] = h = h0
    if compiled(B):
        _kernels.tanh_recurrence(P.W, A_in, H, T, B, m)     # the loop below, compiled
    else:
        WT = P.W.T
        for a_in, h_t in zip(A_in, H[1:]): # a_t = W h_{t-1} + U x_t + b;  h_t = tanh(a_t)
            h = np.tanh(np.dot(h, WT) + a_in, out=h_t)
    O = H[1:].reshape(T * B, m) @ P.V.T + P.c    # (T B, K): o_t = V h_t + c, one matrix product
    return H, O


def loss_and_grads(P, X, Y, h0, out=None):
    """Summed cross-entropy of a chunk, the gradients of all five parameters and the last state.

    P: Params. X, Y: (T,) or (T, B) input and target indices. h0: (m,) or (B, m).
    out: optional Params to write the gradients into (for example views of a flat buffer).
    Returns (loss, grads: Params, hT) with hT shaped like h0.
    """
    X, Y = np.asarray(X), np.asarray(Y)
    single = X.ndim == 1
    if single:
        X, Y, h0 = X[:, None], Y[:, None], h0[None, :]
    T, B = X.shape
    K, m = P.V.shape
    H, O = forward(P, X, h0)               # (T+1, B, m), (T B, K)
    rows, y = np.arange(T * B), Y.reshape(-1)
    Pr, losses = probs_and_losses(O, y)    # p_t (T B, K); -log p_t[y_t] (T B,)
    loss = losses.sum()

    G = out if out is not None else views(np.empty(n_params(K, m)), K, m)
    dO = Pr                                # (T B, K): dL/do_t = p_t - onehot(y_t)
    dO[rows, y] -= 1.0
    Hs = H[1:].reshape(T * B, m)           # (T B, m): h_1 .. h_T
    np.matmul(dO.T, Hs, out=G.V)           # dV = sum_t do_t h_t^T
    ones = np.ones(T * B)
    np.dot(ones, dO, out=G.c)              # dc = sum_t do_t
    dH_out = (dO @ P.V).reshape(T, B, m)   # the part of dL/dh_t that comes through o_t
    dA = np.empty((T, B, m))
    if compiled(B):
        _kernels.backprop_recurrence(P.W, dH_out, H, dA, T, B, m)
    else:
        D = 1.0 - H[1:] * H[1:]            # (T, B, m): tanh'(a_t) = 1 - h_t^2
        da = np.zeros((B, m))
        for dh, d, da_t in zip(dH_out[::-1], D[::-1], dA[::-1]):
            da = np.multiply(np.dot(da, P.W) + dh, d, out=da_t)   # (dh_t + W^T da_{t+1}) * tanh'(a_t)
    dA = dA.reshape(T * B, m)
    np.matmul(dA.T, H[:-1].reshape(T * B, m), out=G.W)       # dW = sum_t da_t h_{t-1}^T
    np.dot(ones, dA, out=G.b)              # db = sum_t da_t
    if USE_KERNELS and G.U.T.flags.c_contiguous:    # dU = sum_t da_t x_t^T: da_t added to column x_t
        _kernels.rows_by_index(G.U.T, np.ascontiguousarray(X.reshape(-1), dtype=np.int64), dA, K, T * B, m)
    else:                                  # the same with x_t one-hot, as one matrix product
        Xhot = np.zeros((T * B, K))
        Xhot[rows, X.reshape(-1)] = 1.0
        np.matmul(Xhot.T, dA, out=G.U.T)
    hT = H[T, 0] if single else H[T]
    return float(loss), G, hT.copy()


def step_losses(P, X, Y, h0):
    """The cross-entropy -log p_t[y_t] of each step and sequence (T B,), no gradients.

    X, Y: (T,) or (T, B); h0: (m,) or (B, m).
    """
    X, Y = np.asarray(X), np.asarray(Y)
    if X.ndim == 1:
        X, Y, h0 = X[:, None], Y[:, None], h0[None, :]
    _, O = forward(P, X, h0)
    return probs_and_losses(O, Y.reshape(-1))[1]


def text_loss(P, data, h0=None, chunk=1000):
    """Read a text in order and score it: the mean cross-entropy per character (nats) of predicting
    data[1:] from data[:-1], the hidden state carried through from h0 ((1, m); zero by default).
    data: (N,) indices. Returns (loss, h (1, m) the hidden state after the last input)."""
    h = np.zeros((1, P.W.shape[0])) if h0 is None else h0
    total = 0.0
    for s in range(0, len(data) - 1, chunk):
        X = data[s:min(s + chunk, len(data) - 1)][:, None]
        Y = data[s + 1:s + 1 + len(X)]
        H, O = forward(P, X, h)
        total += probs_and_losses(O, Y)[1].sum()
        h = H[-1]
    return float(total / (len(data) - 1)), h


def next_char_probs(o, temperature=1.0, top_p=1.0):
    """p (K,) from the logits o (K,): p proportional to softmax(o)^(1/temperature), then nucleus.

    top_p keeps only the smallest set of most probable characters whose probability reaches top_p.
    """
    p = softmax(o / temperature)
    if top_p < 1.0:
        order = np.argsort(-p, kind="stable")
        before = np.cumsum(p[order]) - p[order]     # probability of the characters ranked above
        keep = order[before < top_p]
        q = np.zeros_like(p)
        q[keep] = p[keep]
        p = q / q.sum()
    return p


def sample(P, h0, x0, n, rng, temperature=1.0, top_p=1.0, prime=()):
    """Generate n character indices.

    P: Params. h0: (m,) starting hidden state. x0: index of the first input character.
    prime: indices fed through the network before sampling; the last one then serves as x0.
    Each draw takes the first index whose cumulative probability exceeds a uniform number from rng.
    Returns (indices (n,) int, h (m,) the hidden state after the last input).
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    h = np.array(h0, dtype=float)
    inputs = list(prime) or [x0]
    for x in inputs[:-1]:
        h = np.tanh(P.W @ h + P.U[:, x] + P.b)
    x = inputs[-1]
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        h = np.tanh(P.W @ h + P.U[:, x] + P.b)
        p = next_char_probs(P.V @ h + P.c, temperature, top_p)
        cp = np.cumsum(p)
        x = min(int(np.searchsorted(cp, rng.random() * cp[-1], side="right")), len(p) - 1)
        out[i] = x
    return out, h
