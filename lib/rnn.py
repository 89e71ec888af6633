"""A vanilla character-level RNN in NumPy (KTH DD2424, Assignment 4).

For one time step t, with x_t the one-hot encoding of the input character:

    a_t = W h_{t-1} + U x_t + b        (m,)
    h_t = tanh(a_t)                    (m,)
    o_t = V h_t + c                    (K,)
    p_t = softmax(o_t)                 (K,)

    loss = - sum_t log p_t[y_t]        summed over the T characters of a chunk

Shapes use fixed letters: K vocabulary size, m hidden units, T time steps, B sequences in a batch
(B = 1 in the assignment). Parameters: U (m, K), W (m, m), V (K, m), b (m,), c (K,).

The five parameters are views into one flat vector, so the optimiser, the gradient clip and the "best
model" copy each work on a single array. U is stored as its transpose, so that the column U[:, x] of an
input character is contiguous in memory. Everything that is not sequential is one NumPy call for the
whole chunk; the two recurrences (h_t from h_{t-1}, and back) are loops over t in lib/kernels.py.
"""
from typing import NamedTuple

import numpy as np

from lib import kernels

NAMES = ("U", "W", "V", "b", "c")


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


def state_size(m):
    """The width of the hidden state carried from chunk to chunk: h (m,)."""
    return m


def views(theta, K, m):
    """Split a flat vector theta (n_params,) into Params whose arrays are views of it."""
    return Params(*flat_views(theta, NAMES, shapes(K, m)))


def flat_views(theta, names, dims):
    """The arrays of the given names and shapes (dims), in order, as views of the flat vector theta; U
    (rows, K) laid out as U^T, so that the column U[:, x] of an input character is contiguous (every cell)."""
    out, i = [], 0
    for name, s in zip(names, dims):
        n = int(np.prod(s))
        block = theta[i:i + n]
        out.append(block.reshape(s[::-1]).T if name == "U" else block.reshape(s))
        i += n
    return out


def init_params(K, m, sig, rng, dtype=np.float64):
    """theta (n_params,): U, W, V drawn from N(0, sig^2) by the Generator rng; b and c zero."""
    theta = np.zeros(n_params(K, m), dtype=dtype)
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


def forward(P, X, h0, keep=None):
    """Run the recurrence over a chunk.

    P: Params. X: (T, B) input indices. h0: (B, m) hidden state before the chunk. keep: None, or (T B, m)
    dropout's mask on h_t before the output layer (0, or 1 / (1 - p) for a unit kept; beyond the assignment).
    Returns H (T + 1, B, m) with H[0] = h0 and H[t + 1] = h_t, and O (T B, K) the scores o_t.
    """
    T, B = X.shape
    m = h0.shape[-1]
    A_in = P.U.T[X] + P.b                   # (T, B, m): U x_t + b for all t at once
    H = np.empty((T + 1, B, m), dtype=h0.dtype)
    H[0] = h0
    kernels.tanh_recurrence(P.W, A_in, H)   # a_t = W h_{t-1} + U x_t + b;  h_t = tanh(a_t)
    O = output_rows(H, keep) @ P.V.T + P.c  # (T B, K): o_t = V h_t + c, one matrix product
    return H, O


def output_rows(H, keep=None):
    """(T B, m): h_1 .. h_T of H (T + 1, B, m) as the rows the output layer reads, times the dropout mask
    keep (T B, m) when there is one (every cell's output layer)."""
    Hs = H[1:].reshape(-1, H.shape[-1])
    return Hs if keep is None else Hs * keep


def loss_and_grads(P, X, Y, h0, out=None, keep=None):
    """Summed cross-entropy of a chunk, the gradients of all five parameters and the last state.

    P: Params. X, Y: (T,) or (T, B) input and target indices. h0: (m,) or (B, m).
    out: optional Params to write the gradients into (for example views of a flat buffer).
    keep: optional dropout mask (T B, m) on h_t before the output layer (see forward).
    Returns (loss, grads: Params, hT) with hT shaped like h0.
    """
    X, Y = np.asarray(X), np.asarray(Y)
    single = X.ndim == 1
    if single:
        X, Y, h0 = X[:, None], Y[:, None], h0[None, :]
    T, B = X.shape
    K, m = P.V.shape
    H, O = forward(P, X, h0, keep)          # (T+1, B, m), (T B, K)
    y = Y.reshape(-1)
    Pr, losses = probs_and_losses(O, y)     # p_t (T B, K); -log p_t[y_t] (T B,)

    G = out if out is not None else views(np.empty(n_params(K, m), dtype=O.dtype), K, m)
    dO = Pr                                 # (T B, K): dL/do_t = p_t - onehot(y_t)
    dO[np.arange(T * B), y] -= 1.0
    np.matmul(dO.T, output_rows(H, keep), out=G.V)   # dV = sum_t do_t h_t^T
    ones = np.ones(T * B, dtype=O.dtype)
    np.dot(ones, dO, out=G.c)               # dc = sum_t do_t
    dH = dO @ P.V if keep is None else (dO @ P.V) * keep
    dH = dH.reshape(T, B, m)                # the part of dL/dh_t that comes through o_t
    dA = np.empty((T, B, m), dtype=O.dtype)
    kernels.tanh_backprop(P.W, dH, H, dA)   # da_t = (dh_t + W^T da_{t+1}) * (1 - h_t^2)
    dA = dA.reshape(T * B, m)
    np.matmul(dA.T, H[:-1].reshape(T * B, m), out=G.W)      # dW = sum_t da_t h_{t-1}^T
    np.dot(ones, dA, out=G.b)               # db = sum_t da_t
    kernels.add_rows(G.U.T, X.reshape(-1), dA)              # dU = sum_t da_t x_t^T
    hT = H[T, 0] if single else H[T]
    return float(losses.sum()), G, hT.copy()


def scores(P, X, h0):
    """O (T B, K) the scores o_t of a chunk X (T, B) from h0 (B, m), and the last state (B, m)."""
    H, O = forward(P, X, h0)
    return O, H[-1]


def step(P, h, x):
    """One character: the next hidden state (m,) and the scores o (K,) after input index x from h (m,)."""
    h = np.tanh(P.W @ h + P.U[:, x] + P.b)
    return h, P.V @ h + P.c


def work_bytes(T, B, K, m, itemsize=8):
    """About the memory one update of a chunk needs (the hidden states and the gradients of the activations)."""
    return itemsize * T * B * (6 * m + 3 * K)
