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
for z, r; the candidate's Wg (m, m); V (K, m) and c (K,), the output layer, from lib/cells.py, which puts
the input U x_t + b and the output layer around the equations here; all biases start at 0.
"""
import numpy as np

from lib import kernels
from lib.kernels import row_sums, sigmoid_

NAMES = ("U", "W", "Wg", "b")   # with V and c from lib/cells.py
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
    (_forward_compiled if kernels.gates_compiled(dtype) else _forward_steps)(P, Z, H, RH)
    return H, (H, Z, RH), H[T]


def _forward_steps(P, Z, H, RH):
    """forward's time steps in NumPy: the reference that the compiled steps are tested against."""
    m = P.Wg.shape[0]
    WT, WgT = P.W.T, P.Wg.T
    for t in range(len(Z)):
        h, zr, g = H[t], Z[t, :, :2 * m], Z[t, :, 2 * m:]
        zr += h @ WT                        # the update and reset gates
        sigmoid_(zr)
        np.multiply(zr[:, m:], h, out=RH[t])  # r_t * h_{t-1}
        g += RH[t] @ WgT                    # the candidate
        np.tanh(g, out=g)
        np.subtract(g, h, out=H[t + 1])     # h_t = h_{t-1} + z_t (g_t - h_{t-1})
        H[t + 1] *= zr[:, :m]
        H[t + 1] += h


def _forward_compiled(P, Z, H, RH):
    """The same steps: the products W h_{t-1} and Wg (r_t h_{t-1}) in NumPy, the rest compiled; for a few
    sequences, the whole chunk in one compiled call, products included."""
    T, B, m = RH.shape
    if B <= kernels.KERNEL_MAX_B:
        kernels._kernels.gru_forward_seq(Z, P.W, P.Wg, H, RH, np.empty(2 * m, P.W.dtype), T, B, m)
        return
    WT, WgT = P.W.T, P.Wg.T
    wh, wg = np.empty((B, 2 * m), P.W.dtype), np.empty((B, m), P.W.dtype)
    for t in range(T):
        np.matmul(H[t], WT, out=wh)
        kernels._kernels.gru_gates(Z[t], wh, H[t], RH[t], B, m)
        np.matmul(RH[t], WgT, out=wg)
        kernels._kernels.gru_state(Z[t], wg, H[t], H[t + 1], B, m)


def backward(P, dH, cache, G, dstates=None):
    """dZ (T, B, 3m) = dL/da for the pre-activations of z, r, g, from dH (T, B, m) the part of dL/dh_t
    that comes through o_t; dW and dWg into G. dstates: None, or (T, B, m) to receive dL/dh_{t-1}, the
    gradient reaching the state before each step."""
    H, Z, RH = cache
    T, B, m = dH.shape
    dZ = np.empty_like(Z)
    steps = _backward_compiled if kernels.gates_compiled(dH.dtype) else _backward_steps
    steps(P, np.ascontiguousarray(dH), H, Z, dZ, dstates)
    dZf = dZ.reshape(T * B, 3 * m)
    np.matmul(dZf[:, :2 * m].T, H[:-1].reshape(T * B, m), out=G.W)     # dW = sum_t [dz_t; dr_t] h_{t-1}^T
    np.matmul(dZf[:, 2 * m:].T, RH.reshape(T * B, m), out=G.Wg)        # dWg = sum_t dg_t (r_t h_{t-1})^T
    return dZ


def _backward_steps(P, dH, H, Z, dZ, dstates):
    """backward's time steps in NumPy, from the last to the first: dZ, and dstates if given."""
    T, B, m = dH.shape
    dh = np.zeros((B, m), dH.dtype)
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
        if dstates is not None:
            dstates[t] = dh


def _backward_compiled(P, dH, H, Z, dZ, dstates):
    """The same steps: two compiled calls around the product with Wg; the product with W (carry) is
    added to dh at the start of the step before, in the same order as the NumPy steps add it. For a few
    sequences (and no dstates), the whole chunk in one compiled call."""
    T, B, m = dH.shape
    if B <= kernels.KERNEL_MAX_B and dstates is None:
        kernels._kernels.gru_backward_seq(Z, H, dH, P.W, P.Wg, dZ, np.empty((2 * B + 1) * m, dH.dtype), T, B, m)
        return
    dh, drh, carry = np.zeros((B, m), dH.dtype), np.empty((B, m), dH.dtype), np.empty((B, m), dH.dtype)
    for t in reversed(range(T)):
        kernels._kernels.gru_backward_a(Z[t], H[t], dH[t], None if t == T - 1 else carry, dh, dZ[t], B, m)
        np.matmul(dZ[t, :, 2 * m:], P.Wg, out=drh)
        kernels._kernels.gru_backward_b(Z[t], H[t], drh, dh, dZ[t], B, m)
        np.matmul(dZ[t, :, :2 * m], P.W, out=carry)
        if dstates is not None:
            np.add(dh, carry, out=dstates[t])


def step(P, h, u):
    """One character: h_t (m,) from h_{t-1} (m,) and u (3m,) the input's part U x_t, as the state and
    as the h to read."""
    m = P.Wg.shape[0]
    a = u + P.b
    zr = sigmoid_(a[:2 * m] + P.W @ h)
    g = np.tanh(a[2 * m:] + P.Wg @ (zr[m:] * h))
    h = h + zr[:m] * (g - h)
    return h, h
