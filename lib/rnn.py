"""A vanilla character-level RNN in NumPy (KTH DD2424, Assignment 4): the whole network, in the order it runs.

For one time step t, with x_t the one-hot encoding of the input character and y_t the next character:

    a_t = W h_{t-1} + U x_t + b        (m,)
    h_t = tanh(a_t)                    (m,)
    o_t = V h_t + c                    (K,)
    p_t = softmax(o_t)                 (K,)
    loss = - sum_t log p_t[y_t]        summed over the T characters of a chunk

and back, from the last step to the first (nothing comes from after the chunk):

    do_t = p_t - onehot(y_t)                       dV = sum_t do_t h_t^T,      dc = sum_t do_t
    dh_t = V^T do_t + W^T da_{t+1}                 dW = sum_t da_t h_{t-1}^T,  dU = sum_t da_t x_t^T
    da_t = dh_t * (1 - h_t^2)                      db = sum_t da_t

Shapes use fixed letters: K vocabulary size, m hidden units, T time steps, B sequences in a batch
(B = 1 in the assignment). Parameters: U (m, K), W (m, m), b (m,), V (K, m), c (K,), views into one
flat vector theta (lib/model/cells.py lays it out), so that the optimiser and the gradient clip each work on a
single array. Everything that is not sequential is one NumPy call for the whole chunk; the two loops over
t are below. lib/model/kernels.py runs the same two loops compiled where it is built (its switch,
kernels.USE_COMPILED); the tests hold the two to 1e-10.

The file reads top to bottom: the parameters, the forward loop, the output layer and the loss, the
backward loop, one chunk (loss_and_grads, what an update calls), and one character (step, what the
sampler calls). lib/model/cells.py builds the same network around the GRU and the LSTM, and stacks layers,
from the pieces here.
"""
import numpy as np

from lib.model import kernels

NAMES = ("U", "W", "b")     # the recurrent layer's parameters; V and c, the output layer's, follow them
GATES, STATE = 1, 1         # a_t has m entries; the state carried from chunk to chunk is h (m,)
WORK = 6                    # floats per unit and character: H, dH, dA and their temporaries


# --- 1. The parameters ------------------------------------------------------------------------------

def shapes(K, m):
    """U (m, K), W (m, m), b (m,)."""
    return ((m, K), (m, m), (m,))


def init_params(P, sig, rng):
    """In place, P's arrays in order (U, W, then V): each weight matrix drawn from N(0, sig^2) by the
    Generator rng; the biases b and c stay zero."""
    for M in P:
        if M.ndim == 2:
            M[...] = sig * rng.standard_normal(M.shape)


# --- 2. Forward: the loop over t ----------------------------------------------------------------------

def forward(P, A, h0):
    """h_t = tanh(W h_{t-1} + a_t) over a chunk, with A (T, B, m) the a_t's input part U x_t + b.

    Returns H (T + 1, B, m) with H[0] = h0 (B, m) and H[t + 1] = h_t; H again, as backward's cache;
    and h_T (B, m).
    """
    T, B, m = A.shape
    H = np.empty((T + 1, B, m), dtype=h0.dtype)
    H[0] = h0
    if kernels.compiled(B, H.dtype):        # the same loop, compiled (lib/model/kernels.py)
        kernels.tanh_recurrence(P.W, A, H)
        return H, H, H[T]
    WT = P.W.T
    for t in range(T):
        np.tanh(np.dot(H[t], WT) + A[t], out=H[t + 1])     # h_t = tanh(W h_{t-1} + U x_t + b)
    return H, H, H[T]


# --- 3. The output layer's softmax, the loss and its gradients --------------------------------------------------------

def probs_and_losses(O, y):
    """p_t = softmax(o_t) for each row of O (N, K), in O's place, and -log p_t[y_t] (N,) for the targets
    y (N,), as logsumexp(o_t) - o_t[y_t], which stays finite where p_t[y_t] underflows to zero."""
    o_max = O.max(axis=1)
    o_y = O[np.arange(len(y)), y]
    O -= o_max[:, None]                     # shifted by the maximum: no overflow in exp
    E = np.exp(O, out=O)
    S = E.sum(axis=1)
    E /= S[:, None]
    return E, np.log(S) + o_max - o_y


def softmax(o, axis=-1):
    """Softmax along axis, shifted by the maximum for stability."""
    E = np.exp(o - o.max(axis=axis, keepdims=True))
    E /= E.sum(axis=axis, keepdims=True)
    return E


def output_backward(P, dO, Hs, y, G, column_sums):
    """From the probabilities dO (N, K) (overwritten with do_t) of the rows Hs (N, m): dV and dc into G;
    returns dL/dh_t through o_t (N, m). column_sums: how the cell sums dc over the rows."""
    dO[np.arange(len(y)), y] -= 1.0         # do_t = p_t - onehot(y_t)
    np.matmul(dO.T, Hs, out=G.V)            # dV = sum_t do_t h_t^T
    column_sums(dO, G.c)                    # dc = sum_t do_t
    return dO @ P.V                         # V^T do_t, each row


def column_sums(A, out):
    """out = the sum of the rows of A (N, n), as one matrix-vector product with ones (the bias gradients
    of this cell; the gated cells sum in NumPy's order, kernels.row_sums)."""
    np.dot(np.ones(len(A), dtype=A.dtype), A, out=out)


# --- 4. Backward: the loop over t, from the last step to the first ----------------------------------------

def backward(P, dH, H, G, dstates=None):
    """dA (T, B, m) = dL/da_t from dH (T, B, m), the part of dL/dh_t that comes through o_t; dW into G.W.
    dstates: None, or (T, B, m) to receive dL/dh_{t-1} = W^T da_t, the gradient reaching the state before
    each step."""
    T, B, m = dH.shape
    dA = np.empty_like(dH)
    if kernels.compiled(B, H.dtype):        # the same loop, compiled (lib/model/kernels.py)
        kernels.tanh_backprop(P.W, dH, H, dA)
    else:
        D = 1.0 - H[1:] * H[1:]             # (T, B, m): tanh'(a_t) = 1 - h_t^2
        da = np.zeros((B, m), dtype=dH.dtype)
        for t in reversed(range(T)):
            # da_t = (dh_t + W^T da_{t+1}) (1 - h_t^2)
            da = np.multiply(np.dot(da, P.W) + dH[t], D[t], out=dA[t])
    np.matmul(dA.reshape(T * B, m).T, H[:-1].reshape(T * B, m), out=G.W)   # dW = sum_t da_t h_{t-1}^T
    if dstates is not None:
        np.matmul(dA, P.W, out=dstates)
    return dA


# --- 5. One chunk: what an update of the assignment calls ---------------------------------------------

def loss_and_grads(P, X, Y, h0, G):
    """The summed loss of a chunk, its gradients and the last state.

    P: the parameters (U, W, b, V, c). X, Y: (T, B) input and target indices. h0: (B, m).
    G: Params of the same shapes, into which the gradients are written.
    Returns (loss, G, h_T (B, m)).
    """
    T, B = X.shape
    m = P.W.shape[0]
    A = kernels.gather_plus(P.U.T, X, P.b)  # (T, B, m): U x_t + b for all t at once (U's columns of X)
    H, _, h_last = forward(P, A, h0)        # (T + 1, B, m): h_0 .. h_T
    Hs = H[1:].reshape(T * B, m)            # (T B, m): the h_t the output layer reads
    y = Y.reshape(-1)
    O = Hs @ P.V.T + P.c                    # (T B, K): o_t = V h_t + c, one matrix product
    dO, losses = probs_and_losses(O, y)     # p_t (T B, K), in O's place; -log p_t[y_t] (T B,)
    dH = output_backward(P, dO, Hs, y, G, column_sums)  # dV, dc; dL/dh_t through o_t (T B, m)
    dA = backward(P, dH.reshape(T, B, m), H, G).reshape(T * B, m)   # dW; da_t
    column_sums(dA, G.b)                    # db = sum_t da_t
    kernels.add_rows(G.U.T, X.reshape(-1), dA)   # dU = sum_t da_t x_t^T (rows of dU^T by input character)
    return float(losses.sum()), G, h_last.copy()


# --- 6. One character: what the sampler calls ----------------------------------------------------------

def step(P, h, u):
    """One character: h_t (m,) from h_{t-1} (m,) and u (m,) the input's part U x_t (the column of U of
    the input character; in a deeper layer, U times the h of the layer below), as the state and as the h
    to read (o_t = V h_t + c is the caller's: lib/model/cells.py)."""
    h = np.tanh(P.W @ h + u + P.b)
    return h, h
