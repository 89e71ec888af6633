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
for z, r; the candidate's Wg (m, m); V (K, m) and c (K,), the output layer, from lib/model/cells.py, which puts
the input U x_t + b and the output layer around the equations here; all biases start at 0.
"""
import numpy as np

from lib.model import kernels
from lib.model.kernels import row_sums, sigmoid_

NAMES = ("U", "W", "Wg", "b")   # with V and c from lib/model/cells.py
GATES, STATE = 3, 1             # z, r, g; the state carried is h (m,)
WORK = 10                       # floats per unit and character: the gates and their gradients, H, RH, dH
column_sums = row_sums        # how the bias gradients sum over the chunk's rows (as they always have)


def shapes(K, m):
    """U (3m, K), W (2m, m), Wg (m, m), b (3m,)."""
    return ((3 * m, K), (2 * m, m), (m, m), (3 * m,))


def forward(P, Z, h0):
    """Run the cell over a chunk; Z (T, B, 3m) the input's part U x_t + b of z, r and g, then (in place)
    the gates z_t, r_t, g_t after their nonlinearities. h0: (B, m) the hidden state before the chunk.
    Returns H (T + 1, B, m), the cache (H, Z, RH (T, B, m) the products r_t * h_{t-1}), and h_T (B, m).
    """
    T, B, _ = Z.shape
    m = P.Wg.shape[0]
    dtype = P.W.dtype
    H, RH = np.empty((T + 1, B, m), dtype), np.empty((T, B, m), dtype)
    H[0] = h0
    if kernels.gates_compiled(dtype):       # the same loop, compiled (lib/model/kernels.py)
        kernels.gru_forward(P, Z, H, RH)
        return H, (H, Z, RH), H[T]
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
    return H, (H, Z, RH), H[T]


def backward(P, dH, cache, G, dstates=None):
    """dZ (T, B, 3m) = dL/da for the pre-activations of z, r, g, from dH (T, B, m) the part of dL/dh_t
    that comes through o_t; dW and dWg into G. dstates: None, or (T, B, m) to receive dL/dh_{t-1}, the
    gradient reaching the state before each step."""
    H, Z, RH = cache
    T, B, m = dH.shape
    dZ = np.empty_like(Z)
    if kernels.gates_compiled(dH.dtype):    # the same loop, compiled (lib/model/kernels.py)
        kernels.gru_backward(P, np.ascontiguousarray(dH), H, Z, dZ, dstates)
    else:
        dh = np.zeros((B, m), dH.dtype)
        for t in reversed(range(T)):
            h, z, r, g = H[t], Z[t, :, :m], Z[t, :, m:2 * m], Z[t, :, 2 * m:]
            dz, dr, dg = dZ[t, :, :m], dZ[t, :, m:2 * m], dZ[t, :, 2 * m:]
            dh += dH[t]                     # dL/dh_t: through o_t, and through step t + 1
            np.multiply(dh * z, 1.0 - g * g, out=dg)                  # candidate
            np.multiply(dh * (g - h), z * (1.0 - z), out=dz)          # update gate
            drh = dg @ P.Wg                 # dL/d(r_t h_{t-1})
            np.multiply(drh * h, r * (1.0 - r), out=dr)               # reset gate
            dh *= 1.0 - z                   # dL/dh_{t-1}: directly, through r_t h_{t-1}, through the gates
            dh += drh * r
            dh += dZ[t, :, :2 * m] @ P.W
            if dstates is not None:
                dstates[t] = dh
    dZf, fast = dZ.reshape(T * B, 3 * m), kernels.packs(B, dH.dtype)    # fast: compiled products
    kernels.weight_gradient(dZf, H[:-1].reshape(T * B, m), G.W, fast)     # dW = sum_t [dz_t; dr_t] h_{t-1}^T
    kernels.weight_gradient(dZf, RH.reshape(T * B, m), G.Wg, fast, 2 * m)   # dWg = sum_t dg_t (r_t h_{t-1})^T
    return dZ


def step(P, h, u):
    """One character: h_t (m,) from h_{t-1} (m,) and u (3m,) the input's part U x_t, as the state and
    as the h to read."""
    m = P.Wg.shape[0]
    a = u + P.b
    zr = sigmoid_(a[:2 * m] + P.W @ h)
    g = np.tanh(a[2 * m:] + P.Wg @ (zr[m:] * h))
    h = h + zr[:m] * (g - h)
    return h, h
