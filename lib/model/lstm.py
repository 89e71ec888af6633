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
V (K, m) and c (K,), the output layer, from lib/model/cells.py, which puts the input U x_t + b and the output
layer around the equations here. The state carried from chunk to chunk is [h, s] (2m,). The forget
gate's bias starts at 1, so that an untrained cell keeps its memory (Jozefowicz, Zaremba and Sutskever
2015); all other biases start at 0.
"""
import numpy as np

from lib.model import kernels
from lib.model.kernels import row_sums, sigmoid_

NAMES = ("U", "W", "b")     # with V and c from lib/model/cells.py
GATES, STATE = 4, 2         # i, f, q, g; the state carried is [h, s] (2m,)
WORK = 13                   # floats per unit and character: the gates and their gradients, H, S, tanh(s), dH
column_sums = row_sums        # how the bias gradients sum over the chunk's rows (as they always have)


def shapes(K, m):
    """U (4m, K), W (4m, m), b (4m,)."""
    return ((4 * m, K), (4 * m, m), (4 * m,))


def init_biases(b, m):
    """The forget gate's bias starts at 1."""
    b[m:2 * m] = 1.0


def forward(P, Z, hs0):
    """Run the cell over a chunk; Z (T, B, 4m) the input's part U x_t + b of the four gates, then (in
    place) the gates i, f, q, g after their nonlinearities. hs0: (B, 2m) the state [h, s] before the chunk.
    Returns H (T + 1, B, m), the cache (H, S (T + 1, B, m), Z, TS (T, B, m) tanh(s_t)), and [h_T, s_T] (B, 2m).
    """
    T, B, _ = Z.shape
    m = P.W.shape[1]
    dtype = P.W.dtype
    H, S = np.empty((T + 1, B, m), dtype), np.empty((T + 1, B, m), dtype)
    TS = np.empty((T, B, m), dtype)
    H[0], S[0] = hs0[:, :m], hs0[:, m:]
    if kernels.gates_compiled(dtype):       # the same loop, compiled (lib/model/kernels.py)
        kernels.lstm_forward(P, Z, H, S, TS)
        return H, (H, S, Z, TS), np.concatenate([H[T], S[T]], axis=1)
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
    return H, (H, S, Z, TS), np.concatenate([H[T], S[T]], axis=1)


def backward(P, dH, cache, G, dstates=None):
    """dZ (T, B, 4m) = dL/da for the four gates' pre-activations, from dH (T, B, m) the part of dL/dh_t
    that comes through o_t; dW into G.W. dstates: None, or (T, B, 2m) to receive dL/d[h_{t-1}, s_{t-1}],
    the gradient reaching the state before each step."""
    H, S, Z, TS = cache
    T, B, m = dH.shape
    dZ = np.empty_like(Z)
    if kernels.gates_compiled(dH.dtype):    # the same loop, compiled (lib/model/kernels.py)
        kernels.lstm_backward(P, np.ascontiguousarray(dH), S, Z, TS, dZ, dstates)
    else:
        dh, ds = np.zeros((B, m), dH.dtype), np.zeros((B, m), dH.dtype)
        for t in reversed(range(T)):
            z, dz = Z[t], dZ[t]
            i, f, q, g = z[:, :m], z[:, m:2 * m], z[:, 2 * m:3 * m], z[:, 3 * m:]
            dh += dH[t]                     # dL/dh_t: through o_t, and through step t + 1
            ds += dh * q * (1.0 - TS[t] * TS[t])    # dL/ds_t: through h_t, and through s_{t+1}
            np.multiply(ds * g, i * (1.0 - i), out=dz[:, :m])                     # input gate
            np.multiply(ds * S[t], f * (1.0 - f), out=dz[:, m:2 * m])             # forget gate
            np.multiply(dh * TS[t], q * (1.0 - q), out=dz[:, 2 * m:3 * m])        # output gate
            np.multiply(ds * i, 1.0 - g * g, out=dz[:, 3 * m:])                   # candidate
            ds *= f                         # dL/ds_{t-1} through s_t
            np.matmul(dz, P.W, out=dh)      # dL/dh_{t-1} through the gates
            if dstates is not None:
                dstates[t, :, :m], dstates[t, :, m:] = dh, ds
    kernels.weight_gradient(dZ.reshape(T * B, 4 * m), H[:-1].reshape(T * B, m), G.W,    # dW = sum_t dz_t h_{t-1}^T
                            kernels.packs(B, dH.dtype))
    return dZ


def step(P, hs, u):
    """One character: the next state [h, s] (2m,) from [h, s] and u (4m,) the input's part U x_t, and h (m,)."""
    m = P.W.shape[1]
    h, s = hs[:m], hs[m:]
    z = P.W @ h + u + P.b
    sigmoid_(z[:3 * m])
    np.tanh(z[3 * m:], out=z[3 * m:])
    s = z[m:2 * m] * s + z[:m] * z[3 * m:]
    h = z[2 * m:3 * m] * np.tanh(s)
    return np.concatenate([h, s]), h
