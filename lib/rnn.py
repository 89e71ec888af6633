"""A vanilla character-level RNN in NumPy (KTH DD2424, Assignment 4).

For one time step t, with x_t the one-hot encoding of the input character:

    a_t = W h_{t-1} + U x_t + b        (m,)
    h_t = tanh(a_t)                    (m,)
    o_t = V h_t + c                    (K,)
    p_t = softmax(o_t)                 (K,)

    loss = - sum_t log p_t[y_t]        summed over the T characters of a chunk

Shapes use fixed letters: K vocabulary size, m hidden units, T time steps, B sequences in a batch
(B = 1 in the assignment). Parameters: U (m, K), W (m, m), b (m,), V (K, m), c (K,).

This file holds the recurrence, a_t and h_t, forward and back; lib/cells.py puts the input U x_t + b
and the output layer o_t, p_t and the loss around it, as it does for the other cells, and is the model
the rest of the project calls (cells.RNN). The parameters are views into one flat vector, so the
optimiser, the gradient clip and the "best model" copy each work on a single array. Everything that is
not sequential is one NumPy call for the whole chunk; the two recurrences (h_t from h_{t-1}, and back)
are loops over t in lib/kernels.py.
"""
import numpy as np

from lib import kernels

NAMES = ("U", "W", "b")     # with V and c from lib/cells.py
GATES, STATE = 1, 1         # a_t has m entries; the state carried is h (m,)
WORK = 6                    # floats per unit and character: H, dH, dA and their temporaries
column_sums = kernels.dot_sums  # how the bias gradients sum over the chunk's rows


def shapes(K, m):
    """U (m, K), W (m, m), b (m,)."""
    return ((m, K), (m, m), (m,))


def forward(P, A, h0):
    """h_t = tanh(W h_{t-1} + a_t) over a chunk, with A (T, B, m) the a_t's part U x_t + b.

    Returns H (T + 1, B, m) with H[0] = h0 (B, m) and H[t + 1] = h_t; H again, as the cache of backward;
    and h_T (B, m).
    """
    T, B, m = A.shape
    H = np.empty((T + 1, B, m), dtype=h0.dtype)
    H[0] = h0
    kernels.tanh_recurrence(P.W, A, H)      # a_t = W h_{t-1} + U x_t + b;  h_t = tanh(a_t)
    return H, H, H[T]


def backward(P, dH, H, G, dstates=None):
    """dA (T, B, m) = dL/da_t from dH (T, B, m), the part of dL/dh_t that comes through o_t; dW into G.W.
    dstates: None, or (T, B, m) to receive dL/dh_{t-1} = W^T da_t, the gradient reaching the state before each step."""
    T, B, m = dH.shape
    dA = np.empty_like(dH)
    kernels.tanh_backprop(P.W, dH, H, dA)   # da_t = (dh_t + W^T da_{t+1}) * (1 - h_t^2)
    np.matmul(dA.reshape(T * B, m).T, H[:-1].reshape(T * B, m), out=G.W)   # dW = sum_t da_t h_{t-1}^T
    if dstates is not None:
        np.matmul(dA, P.W, out=dstates)
    return dA


def step(P, h, u):
    """One character: h_t (m,) from h_{t-1} (m,) and u (m,) the input's part U x_t (the column of U of
    the input character; in a deeper layer, U times the h of the layer below), as the state and as the h
    to read."""
    h = np.tanh(P.W @ h + u + P.b)
    return h, h
