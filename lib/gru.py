"""A gated recurrent unit (GRU) for characters in NumPy, with the conventions of lib/rnn.py.

For one time step t, with x_t the one-hot encoding of the input character and sigma the logistic function:

    z_t = sigma(W_z h_{t-1} + U_z x_t + b_z)             update gate            (m,)
    r_t = sigma(W_r h_{t-1} + U_r x_t + b_r)             reset gate             (m,)
    g_t = tanh(W_g (r_t * h_{t-1}) + U_g x_t + b_g)      candidate              (m,)
    h_t = (1 - z_t) * h_{t-1} + z_t * g_t                hidden state           (m,)
    o_t = V h_t + c,  p_t = softmax(o_t)                 scores, probabilities  (K,)

    loss = - sum_t log p_t[y_t]

(Cho et al. 2014, the form with the reset gate applied to h_{t-1} before W_g.) Parameters: the three
input weights stacked in the order z, r, g, U (3m, K), with b (3m,); the gates' recurrent weights W (2m, m)
for z, r; the candidate's Wg (m, m); V (K, m) and c (K,). Views into one flat vector, U stored as its
transpose, as in lib/rnn.py; all biases start at 0.
"""
from typing import NamedTuple

import numpy as np

from lib import kernels
from lib.lstm import sigmoid_
from lib.rnn import flat_views, output_rows, probs_and_losses

NAMES = ("U", "W", "Wg", "b", "V", "c")


class Params(NamedTuple):
    """U (3m, K) and b (3m,) for z, r, g; W (2m, m) for z, r; Wg (m, m); V (K, m), c (K,)."""
    U: np.ndarray
    W: np.ndarray
    Wg: np.ndarray
    b: np.ndarray
    V: np.ndarray
    c: np.ndarray


def shapes(K, m):
    return ((3 * m, K), (2 * m, m), (m, m), (3 * m,), (K, m), (K,))


def n_params(K, m):
    """3m K + 2m m + m m + 3m + K m + K."""
    return sum(int(np.prod(s)) for s in shapes(K, m))


def state_size(m):
    return m


def views(theta, K, m):
    """Split a flat vector theta (n_params,) into Params whose arrays are views of it (as lib/rnn.py does)."""
    return Params(*flat_views(theta, NAMES, shapes(K, m)))


def init_params(K, m, sig, rng, dtype=np.float64):
    """theta: U, W, Wg, V drawn from N(0, sig^2) by rng; the biases 0."""
    theta = np.zeros(n_params(K, m), dtype=dtype)
    P = views(theta, K, m)
    for M in (P.U, P.W, P.Wg, P.V):
        M[...] = sig * rng.standard_normal(M.shape)
    return theta


def forward(P, X, h0, keep=None):
    """Run the cell over a chunk.

    P: Params. X: (T, B) input indices. h0: (B, m) the hidden state before the chunk.
    Returns the cache (H (T+1, B, m), Z (T, B, 3m) with z_t, r_t, g_t after their nonlinearities,
    RH (T, B, m) the products r_t * h_{t-1}) and O (T B, K) the scores o_t.
    """
    T, B = X.shape
    m = P.Wg.shape[0]
    dtype = P.W.dtype
    Z = P.U.T[X] + P.b                      # (T, B, 3m): U x_t + b, then the gates in place
    H, RH = np.empty((T + 1, B, m), dtype), np.empty((T, B, m), dtype)
    H[0] = h0
    WT, WgT = P.W.T, P.Wg.T
    for t in range(T):
        h, zr, g = H[t], Z[t, :, :2 * m], Z[t, :, 2 * m:]
        zr += h @ WT                        # the update and reset gates
        sigmoid_(zr)
        np.multiply(zr[:, m:], h, out=RH[t])  # r_t * h_{t-1}
        g += RH[t] @ WgT                    # the candidate
        np.tanh(g, out=g)
        np.subtract(g, h, out=H[t + 1])     # h_t = h_{t-1} + z_t (g_t - h_{t-1})
        H[t + 1] *= zr[:, :m]
        H[t + 1] += h
    O = output_rows(H, keep) @ P.V.T + P.c  # o_t = V h_t + c (h_t times the dropout mask, if any)
    return (H, Z, RH), O


def loss_and_grads(P, X, Y, h0, out=None, keep=None):
    """Summed cross-entropy of a chunk, the gradients of all parameters and the last state.

    X, Y: (T,) or (T, B) indices; h0: (m,) or (B, m). out: optional Params for the gradients.
    keep: optional dropout mask (T B, m) on h_t before the output layer (see lib/rnn.py's forward).
    Returns (loss, grads: Params, hT shaped like h0).
    """
    X, Y = np.asarray(X), np.asarray(Y)
    single = X.ndim == 1
    if single:
        X, Y, h0 = X[:, None], Y[:, None], h0[None, :]
    T, B = X.shape
    K, m = P.V.shape
    (H, Z, RH), O = forward(P, X, h0, keep)
    y = Y.reshape(-1)
    dO, losses = probs_and_losses(O, y)
    G = out if out is not None else views(np.empty(n_params(K, m), dtype=O.dtype), K, m)
    dO[np.arange(T * B), y] -= 1.0          # dL/do_t = p_t - onehot(y_t)
    np.matmul(dO.T, output_rows(H, keep), out=G.V)
    ones = np.ones(T * B, dtype=O.dtype)
    np.dot(ones, dO, out=G.c)               # dc = sum_t do_t (as lib/rnn.py sums it)
    dH = (dO @ P.V if keep is None else (dO @ P.V) * keep).reshape(T, B, m)   # dL/dh_t through o_t
    dZ = np.empty_like(Z)                   # (T, B, 3m): dL/da for the pre-activations of z, r, g
    dh = np.zeros((B, m), O.dtype)
    for t in reversed(range(T)):
        h, z, r, g = H[t], Z[t, :, :m], Z[t, :, m:2 * m], Z[t, :, 2 * m:]
        dz, dr, dg = dZ[t, :, :m], dZ[t, :, m:2 * m], dZ[t, :, 2 * m:]
        dh += dH[t]                         # dL/dh_t: through o_t, and through step t + 1
        np.multiply(dh * z, 1.0 - g * g, out=dg)                  # candidate
        np.multiply(dh * (g - h), z * (1.0 - z), out=dz)          # update gate
        drh = dg @ P.Wg                     # dL/d(r_t h_{t-1})
        np.multiply(drh * h, r * (1.0 - r), out=dr)               # reset gate
        dh *= 1.0 - z                       # dL/dh_{t-1}: directly, through r_t h_{t-1}, through the gates
        dh += drh * r
        dh += dZ[t, :, :2 * m] @ P.W
    dZ = dZ.reshape(T * B, 3 * m)
    np.matmul(dZ[:, :2 * m].T, H[:-1].reshape(T * B, m), out=G.W)     # dW = sum_t [dz_t; dr_t] h_{t-1}^T
    np.matmul(dZ[:, 2 * m:].T, RH.reshape(T * B, m), out=G.Wg)        # dWg = sum_t dg_t (r_t h_{t-1})^T
    np.dot(ones, dZ, out=G.b)
    kernels.add_rows(G.U.T, X.reshape(-1), dZ)                          # dU = sum_t dz_t x_t^T
    hT = H[T, 0] if single else H[T]
    return float(losses.sum()), G, hT.copy()


def scores(P, X, h0):
    """O (T B, K) the scores of a chunk X (T, B) from h0 (B, m), and the last state (B, m)."""
    (H, _, _), O = forward(P, X, h0)
    return O, H[-1]


def step(P, h, x):
    """One character: the next hidden state (m,) and the scores o (K,) after input index x from h (m,)."""
    m = P.Wg.shape[0]
    a = P.U[:, x] + P.b
    zr = sigmoid_(a[:2 * m] + P.W @ h)
    g = np.tanh(a[2 * m:] + P.Wg @ (zr[m:] * h))
    h = h + zr[:m] * (g - h)
    return h, P.V @ h + P.c


def work_bytes(T, B, K, m, itemsize=8):
    """About the memory one update of a chunk needs (the cache and the gradients of the activations)."""
    return itemsize * T * B * (3 * m * 2 + 4 * m + 3 * K)
