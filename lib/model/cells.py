"""One protocol for the recurrent cells: the network around a cell, the same for all of them.

A network reads x_t (the one-hot encoding of a character), runs one recurrent layer (the cell) and an
output layer:

    a_t = U x_t + b                    (G m,)   the input's part of the cell's pre-activations
    h_t = the cell's step from h_{t-1} and a_t  (m,)
    o_t = V h_t + c                    (K,)
    p_t = softmax(o_t)                 (K,)     loss = - sum_t log p_t[y_t]

The cells, by name; each module holds its own equations (forward and backward) and nothing else:

    rnn   lib/rnn.py    the vanilla RNN of the assignment (the default)
    gru   lib/model/gru.py    a gated recurrent unit
    lstm  lib/model/lstm.py   a long short-term memory cell

A cell module provides
    NAMES                 its layer's parameters, U first (G m, K) and b (G m,) among them
    GATES, STATE          G, the pre-activations per unit; the width of the carried state in units of m
    WORK                  the floats per unit and character that forward and backward keep
    shapes(K, m)          the shapes of NAMES
    forward(P, A, h0)     A (T, B, G m) = U x_t + b (used in place), h0 (B, STATE m) ->
                          (H (T + 1, B, m) with H[0] the h of h0, cache, the state after the chunk)
    backward(P, dH, cache, G, dstates=None)   dH (T, B, m) = dL/dh_t through o_t -> dA (T, B, G m) =
                          dL/da_t, with the gradients of the cell's other weights (not U, b) written into
                          G, and (given dstates (T, B, S)) the gradient reaching the state before each step
    step(P, h, x)         one character -> (the state after it, its h)
    column_sums(A, out)   the sum of A's rows into out, for the bias gradients: each cell keeps the order of
                          summation it has always had (rnn.column_sums or kernels.row_sums), so its
                          numbers stay the same bit for bit
and optionally init_biases(b, m) for biases that do not start at zero.

Cell(module) builds the rest from these and from lib/rnn.py's output layer (probs_and_losses,
output_backward) and initialisation: the flat parameter vector and its views (Params), stacked layers,
dropout, the loss and gradients of a chunk, scores, one step with scores, and memory estimates. For one
layer of the vanilla RNN without dropout (the assignment), a chunk is lib/rnn.py's loss_and_grads, as
written there.
"""
from collections import namedtuple

import numpy as np

from lib import config, rnn
from lib.model import gru, kernels, lstm


def flat_views(theta, names, dims):
    """The arrays of the given names and shapes (dims), in order, as views of the flat vector theta; U
    (rows, K) laid out as U^T, so that the column U[:, x] of an input character is contiguous."""
    out, i = [], 0
    for name, s in zip(names, dims):
        n = int(np.prod(s))
        block = theta[i:i + n]
        out.append(block.reshape(s[::-1]).T if name == "U" else block.reshape(s))
        i += n
    return out


def output_rows(H, keep=None):
    """(T B, m): h_1 .. h_T of H (T + 1, B, m) as the rows the output layer reads, times the dropout mask
    keep (T B, m) when there is one (0, or 1 / (1 - p) for a unit kept)."""
    Hs = H[1:].reshape(-1, H.shape[-1])
    return Hs if keep is None else Hs * keep


class Cell:
    """A network of one cell's recurrent layers (layers of them, stacked) and the output layer: the
    cell's NAMES for the first layer, the same names numbered from 2 for each layer above it (U2, W2,
    b2, ...), then V (K, m) and c (K,). A layer above the first reads the h_t of the one below through
    its own U (G m, m), where the first reads x_t; the state carried from chunk to chunk is the layers'
    states side by side (layers S m)."""

    def __init__(self, name, module, layers=1):
        self.name, self.module, self.layers = name, module, layers
        self.layer_names = [module.NAMES] + [tuple(f"{n}{l}" for n in module.NAMES) for l in range(2, layers + 1)]
        self.names = sum(self.layer_names, ()) + ("V", "c")
        self.Params = namedtuple(f"{name.upper()}Params", self.names)
        self.Layer = namedtuple(f"{name.upper()}Layer", module.NAMES)

    def __repr__(self):
        return f"Cell({self.name!r})" if self.layers == 1 else f"Cell({self.name!r}, layers={self.layers})"

    def shapes(self, K, m):
        """The shape of each parameter, in the order of names."""
        return self.module.shapes(K, m) + self.module.shapes(m, m) * (self.layers - 1) + ((K, m), (K,))

    def n_params(self, K, m):
        return sum(int(np.prod(s)) for s in self.shapes(K, m))

    def state_size(self, m):
        """The width of the state carried from chunk to chunk (m a layer; 2m for the LSTM's [h, s])."""
        return self.module.STATE * m * self.layers

    def views(self, theta, K, m):
        """Split a flat vector theta (n_params,) into Params whose arrays are views of it."""
        return self.Params(*flat_views(theta, self.names, self.shapes(K, m)))

    def layer(self, P, l):
        """Layer l's arrays (l = 0 the first) of Params P, under the cell module's names (U, W, b, ...)."""
        return self.Layer(*(getattr(P, name) for name in self.layer_names[l]))

    def init_params(self, K, m, sig, rng, dtype=np.float64):
        """theta (n_params,): the weight matrices, in the order of names, drawn from N(0, sig^2) by the
        Generator rng; the biases zero, unless the cell starts some elsewhere (the LSTM's forget gate)."""
        theta = np.zeros(self.n_params(K, m), dtype=dtype)
        P = self.views(theta, K, m)
        rnn.init_params(P, sig, rng)        # the assignment's: every weight matrix from N(0, sig^2), in order
        if hasattr(self.module, "init_biases"):
            for l in range(self.layers):
                self.module.init_biases(self.layer(P, l).b, m)
        return theta

    def compiled_products(self, B, dtype):
        """Whether this cell's products at B sequences are the compiled ones of lib/model/_packed.h, on threads
        (a gated cell's batch; NumPy's own run on one thread meanwhile: kernels.blas_on_one_thread)."""
        return self.module is not rnn and kernels.packs(B, dtype)

    def forward(self, P, X, h0, keep=None):
        """(H (T + 1, B, m) of the top layer, the caches of all layers, the state after the chunk (B, S))
        for the inputs X (T, B) from h0 (B, S). keep: the dropout masks (layers, T B, m) while training;
        keep[l] for l >= 1 is on the h of layer l - 1 where layer l reads it (keep[0] is the output layer's)."""
        T, B = X.shape
        width = self.module.STATE * P.V.shape[1]         # one layer's part of the state
        caches, lasts, H = [], [], None
        for l in range(self.layers):
            L = self.layer(P, l)
            if l == 0:
                A = kernels.gather_plus(L.U.T, X, L.b)  # a_t = U x_t + b for all t at once: U's columns of X
            else:                           # a_t = U_l h_t (of the layer below) + b_l, one product
                below = output_rows(H, None if keep is None else keep[l])
                A = (kernels.product(below, L.U, transpose=True) if self.compiled_products(B, below.dtype)
                     else below @ L.U.T)
                A = (A + L.b).reshape(T, B, -1)
            H, cache, last = self.module.forward(L, A, h0[:, l * width:(l + 1) * width])
            caches.append((H, cache))
            lasts.append(last)
        return H, caches, lasts[0] if self.layers == 1 else np.concatenate(lasts, axis=1)

    def backward(self, P, dH, caches, G, X, keep=None, dstates=None):
        """The gradients of every recurrent layer's parameters into G (U, b and the cell's own of each),
        from dH (T, B, m) = dL/dh_t of the top layer through o_t. X (T, B): the inputs; keep: as forward's.
        dstates: None, or (T, B, S) to receive the gradient reaching each layer's state before each step."""
        T, B, m = dH.shape
        width = self.module.STATE * m
        for l in reversed(range(self.layers)):
            L, GL = self.layer(P, l), self.layer(G, l)
            part = None if dstates is None else dstates[:, :, l * width:(l + 1) * width]
            dA = self.module.backward(L, dH, caches[l][1], GL, part)   # dL/da_t, and the recurrent weights'
            dA = dA.reshape(T * B, -1)
            self.module.column_sums(dA, GL.b)                          # db = sum_t da_t
            if l == 0:
                kernels.add_rows(GL.U.T, X.reshape(-1), dA)             # dU = sum_t da_t x_t^T
                break
            mask = None if keep is None else keep[l]
            fast = self.compiled_products(B, dA.dtype)
            kernels.weight_gradient(dA, output_rows(caches[l - 1][0], mask), GL.U, fast)   # dU_l = sum_t da_t h_t^T
            dH = kernels.product(dA, L.U) if fast else dA @ L.U   # dL/dh_t of the layer below, through its input
            if mask is not None:
                dH *= mask
            dH = dH.reshape(T, B, m)

    def loss_and_grads(self, P, X, Y, h0, out=None, keep=None):
        """Summed cross-entropy of a chunk, the gradients of all parameters and the last state.

        P: Params. X, Y: (T,) or (T, B) input and target indices. h0: (S,) or (B, S).
        out: optional Params to write the gradients into (for example views of a flat buffer).
        keep: optional dropout masks (layers, T B, m) (or (T B, m) for one layer): on h_t before the
        output layer (keep[0]) and between layers (beyond the assignment).
        Returns (loss, grads: Params, the last state shaped like h0).
        """
        X, Y = np.asarray(X), np.asarray(Y)
        single = X.ndim == 1
        if single:
            X, Y, h0 = X[:, None], Y[:, None], h0[None, :]
        T, B = X.shape
        K, m = P.V.shape
        G = out if out is not None else self.views(np.empty(self.n_params(K, m), dtype=P.V.dtype), K, m)
        if keep is None and self.layers == 1 and self.module is rnn:   # the assignment's network, as written
            loss, G, last = rnn.loss_and_grads(P, X, Y, h0, G)
            return loss, G, (last[0] if single else last)
        keep = None if keep is None else keep.reshape(self.layers, T * B, m)
        top = None if keep is None else keep[0]
        H, caches, last = self.forward(P, X, h0, keep)
        Hs = output_rows(H, top)
        y = Y.reshape(-1)
        fast = self.compiled_products(B, P.V.dtype)
        O = kernels.output_scores(Hs, P.V, P.c) if fast else Hs @ P.V.T + P.c
        dO, losses = rnn.probs_and_losses(O, y)                     # p_t (T B, K); -log p_t[y_t] (T B,)
        dH = (kernels if fast else rnn).output_backward(P, dO, Hs, y, G, self.module.column_sums)   # dV, dc; dh_t
        if top is not None:
            dH *= top
        self.backward(P, dH.reshape(T, B, m), caches, G, X, keep)
        last = last.copy()
        return float(losses.sum()), G, (last[0] if single else last)

    def scores(self, P, X, h0):
        """O (T B, K) the scores o_t of a chunk X (T, B) from h0 (B, S), and the last state (B, S)."""
        H, _, last = self.forward(P, X, h0)
        return output_rows(H) @ P.V.T + P.c, last

    def step(self, P, h, x):
        """One character: the next state (S,) and the scores o (K,) after input index x from h (S,)."""
        width = len(h) // self.layers
        states, top = [], None
        for l in range(self.layers):
            L = self.layer(P, l)
            u = L.U[:, x] if l == 0 else L.U @ top      # the input's part: U x_t, or U_l h_t of the layer below
            state, top = self.module.step(L, h[l * width:(l + 1) * width], u)
            states.append(state)
        return (states[0] if self.layers == 1 else np.concatenate(states)), P.V @ top + P.c

    def work_bytes(self, T, B, K, m, itemsize=8):
        """About the memory one update of a chunk needs (the caches and the gradients of the activations)."""
        return itemsize * T * B * (self.module.WORK * m * self.layers + 3 * K)


CELLS = {name: Cell(name, module) for name, module in (("rnn", rnn), ("gru", gru), ("lstm", lstm))}
assert tuple(CELLS) == config.CELLS
RNN = CELLS["rnn"]
_STACKED = {}


def get(name, layers=1):
    """The Cell called name, with this many layers."""
    if name not in CELLS:
        raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {name!r}.")
    if layers == 1:
        return CELLS[name]
    if (name, layers) not in _STACKED:
        _STACKED[(name, layers)] = Cell(name, CELLS[name].module, layers)
    return _STACKED[(name, layers)]


def of(cfg):
    """The Cell of a Config."""
    return get(cfg.cell, cfg.layers)
