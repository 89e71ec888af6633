"""A long short-term memory (LSTM) cell for characters in NumPy, with the conventions of lib/rnn.py.

For one time step t, with x_t the one-hot encoding of the input character and sigma the logistic function:

    i_t = sigma(W_i h_{t-1} + U_i x_t + b_i)       input gate             (m,)
    f_t = sigma(W_f h_{t-1} + U_f x_t + b_f)       forget gate            (m,)
    q_t = sigma(W_q h_{t-1} + U_q x_t + b_q)       output gate            (m,)
    g_t = tanh(W_g h_{t-1} + U_g x_t + b_g)        candidate              (m,)
    s_t = f_t * s_{t-1} + i_t * g_t                cell state (memory)    (m,)
    h_t = q_t * tanh(s_t)                          hidden state           (m,)
    o_t = V h_t + c,  p_t = softmax(o_t)           scores, probabilities  (K,)

    loss = - sum_t log p_t[y_t]

(Hochreiter and Schmidhuber 1997, with the forget gate of Gers, Schmidhuber and Cummins 2000; the
letters q for the output gate and s for the cell state are those of Goodfellow, Bengio and Courville's
Deep Learning, so that o_t and c keep their meaning from the vanilla RNN.)

The four gates' parameters are stacked in the order i, f, q, g: U (4m, K), W (4m, m), b (4m,); with
V (K, m) and c (K,). The state carried from chunk to chunk is [h, s] (2m,). Parameters are views into one
flat vector, U stored as its transpose, as in lib/rnn.py. The forget gate's bias starts at 1, so that
an untrained cell keeps its memory (Jozefowicz, Zaremba and Sutskever 2015); all other biases start at 0.
"""
from typing import NamedTuple

import numpy as np

from lib import kernels
from lib.rnn import flat_views, output_rows, probs_and_losses

NAMES = ("U", "W", "b", "V", "c")


class Params(NamedTuple):
    """U (4m, K), W (4m, m), b (4m,): the gates i, f, q, g stacked; V (K, m), c (K,)."""
    U: np.ndarray
    W: np.ndarray
    b: np.ndarray
    V: np.ndarray
    c: np.ndarray


def shapes(K, m):
    return ((4 * m, K), (4 * m, m), (4 * m,), (K, m), (K,))


def n_params(K, m):
    """4m K + 4m m + 4m + K m + K."""
    return sum(int(np.prod(s)) for s in shapes(K, m))


def state_size(m):
    """The state carried from chunk to chunk: [h, s] (2m,)."""
    return 2 * m


def views(theta, K, m):
    """Split a flat vector theta (n_params,) into Params whose arrays are views of it (as lib/rnn.py does)."""
    return Params(*flat_views(theta, NAMES, shapes(K, m)))


def init_params(K, m, sig, rng, dtype=np.float64):
    """theta: U, W, V drawn from N(0, sig^2) by rng; the forget gate's bias 1, the other biases 0."""
    theta = np.zeros(n_params(K, m), dtype=dtype)
    P = views(theta, K, m)
    for M in (P.U, P.W, P.V):
        M[...] = sig * rng.standard_normal(M.shape)
    P.b[m:2 * m] = 1.0
    return theta


def sigmoid_(a):
    """The logistic function in a's place, as (1 + tanh(a / 2)) / 2 (no overflow for any a)."""
    a *= 0.5
    np.tanh(a, out=a)
    a += 1.0
    a *= 0.5
    return a


def forward(P, X, hs0, keep=None):
    """Run the cell over a chunk.

    P: Params. X: (T, B) input indices. hs0: (B, 2m) the state [h, s] before the chunk.
    Returns the cache (H (T+1, B, m), S (T+1, B, m), Z (T, B, 4m) the gates i, f, q, g after their
    nonlinearities, TS (T, B, m) tanh(s_t)) and O (T B, K) the scores o_t.
    """
    T, B = X.shape
    m = P.W.shape[1]
    dtype = P.W.dtype
    Z = P.U.T[X] + P.b                      # (T, B, 4m): U x_t + b, then the gates in place
    H, S = np.empty((T + 1, B, m), dtype), np.empty((T + 1, B, m), dtype)
    TS = np.empty((T, B, m), dtype)
    H[0], S[0] = hs0[:, :m], hs0[:, m:]
    WT = P.W.T
    for t in range(T):
        z = Z[t]
        z += H[t] @ WT                      # W h_{t-1} + U x_t + b, for the four gates
        sigmoid_(z[:, :3 * m])
        np.tanh(z[:, 3 * m:], out=z[:, 3 * m:])
        i, f, q, g = z[:, :m], z[:, m:2 * m], z[:, 2 * m:3 * m], z[:, 3 * m:]
        np.multiply(f, S[t], out=S[t + 1])  # s_t = f_t s_{t-1} + i_t g_t
        S[t + 1] += i * g
        np.tanh(S[t + 1], out=TS[t])
        np.multiply(q, TS[t], out=H[t + 1])  # h_t = q_t tanh(s_t)
    O = output_rows(H, keep) @ P.V.T + P.c  # o_t = V h_t + c (h_t times the dropout mask, if any)
    return (H, S, Z, TS), O


def loss_and_grads(P, X, Y, hs0, out=None, keep=None):
    """Summed cross-entropy of a chunk, the gradients of all parameters and the last state.

    X, Y: (T,) or (T, B) indices; hs0: (2m,) or (B, 2m). out: optional Params for the gradients.
    keep: optional dropout mask (T B, m) on h_t before the output layer (see lib/rnn.py's forward).
    Returns (loss, grads: Params, the last state shaped like hs0).
    """
    X, Y = np.asarray(X), np.asarray(Y)
    single = X.ndim == 1
    if single:
        X, Y, hs0 = X[:, None], Y[:, None], hs0[None, :]
    T, B = X.shape
    K, m = P.V.shape
    (H, S, Z, TS), O = forward(P, X, hs0, keep)
    y = Y.reshape(-1)
    dO, losses = probs_and_losses(O, y)     # p_t, in O's place
    G = out if out is not None else views(np.empty(n_params(K, m), dtype=O.dtype), K, m)
    dO[np.arange(T * B), y] -= 1.0          # dL/do_t = p_t - onehot(y_t)
    np.matmul(dO.T, output_rows(H, keep), out=G.V)
    ones = np.ones(T * B, dtype=O.dtype)
    np.dot(ones, dO, out=G.c)               # dc = sum_t do_t (as lib/rnn.py sums it)
    dH = (dO @ P.V if keep is None else (dO @ P.V) * keep).reshape(T, B, m)   # dL/dh_t through o_t
    dZ = np.empty_like(Z)                   # (T, B, 4m): dL/da for the four gates' pre-activations
    dh, ds = np.zeros((B, m), O.dtype), np.zeros((B, m), O.dtype)
    for t in reversed(range(T)):
        z, dz = Z[t], dZ[t]
        i, f, q, g = z[:, :m], z[:, m:2 * m], z[:, 2 * m:3 * m], z[:, 3 * m:]
        dh += dH[t]                         # dL/dh_t: through o_t, and through step t + 1
        ds += dh * q * (1.0 - TS[t] * TS[t])    # dL/ds_t: through h_t, and through s_{t+1}
        np.multiply(ds * g, i * (1.0 - i), out=dz[:, :m])                     # input gate
        np.multiply(ds * S[t], f * (1.0 - f), out=dz[:, m:2 * m])             # forget gate
        np.multiply(dh * TS[t], q * (1.0 - q), out=dz[:, 2 * m:3 * m])        # output gate
        np.multiply(ds * i, 1.0 - g * g, out=dz[:, 3 * m:])                   # candidate
        ds *= f                             # dL/ds_{t-1} through s_t
        np.matmul(dz, P.W, out=dh)          # dL/dh_{t-1} through the gates
    dZ = dZ.reshape(T * B, 4 * m)
    np.matmul(dZ.T, H[:-1].reshape(T * B, m), out=G.W)      # dW = sum_t dz_t h_{t-1}^T
    np.dot(ones, dZ, out=G.b)
    kernels.add_rows(G.U.T, X.reshape(-1), dZ)              # dU = sum_t dz_t x_t^T
    last = np.concatenate([H[T], S[T]], axis=1)
    return float(losses.sum()), G, (last[0] if single else last)


def scores(P, X, hs0):
    """O (T B, K) the scores of a chunk X (T, B) from the state hs0 (B, 2m), and the last state (B, 2m)."""
    (H, S, _, _), O = forward(P, X, hs0)
    return O, np.concatenate([H[-1], S[-1]], axis=1)


def step(P, hs, x):
    """One character: the next state [h, s] (2m,) and the scores o (K,) after input index x."""
    m = P.W.shape[1]
    h, s = hs[:m], hs[m:]
    z = P.W @ h + P.U[:, x] + P.b
    sigmoid_(z[:3 * m])
    np.tanh(z[3 * m:], out=z[3 * m:])
    s = z[m:2 * m] * s + z[:m] * z[3 * m:]
    h = z[2 * m:3 * m] * np.tanh(s)
    return np.concatenate([h, s]), P.V @ h + P.c


def work_bytes(T, B, K, m, itemsize=8):
    """About the memory one update of a chunk needs (the cache and the gradients of the activations)."""
    return itemsize * T * B * (4 * m * 2 + 5 * m + 3 * K)
