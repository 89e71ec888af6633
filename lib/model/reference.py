"""Plain reference implementations, written the way a student would first write them.

One-hot column vectors, a Python loop over time in both directions, an outer product per step, and
a separate clip and AdaGrad update per parameter. It is deliberately simple and slow: the tests check
the fast code in lib/rnn.py and lib/model/cells.py against it, and benchmarks/ measures the speed-up over it.
Parameters are a dict of column-vector arrays: U (m, K), W (m, m), V (K, m), b (m, 1), c (K, 1).
"""
import numpy as np


def loss_and_grads(params, inputs, targets, hprev):
    """inputs, targets: lists of T indices; hprev (m, 1). Returns loss, grads (dict), h_T (m, 1)."""
    U, W, V, b, c = (params[k] for k in ("U", "W", "V", "b", "c"))
    K = U.shape[1]
    x, h, p = {}, {-1: np.copy(hprev)}, {}
    loss = 0.0
    for t in range(len(inputs)):
        x[t] = np.zeros((K, 1))
        x[t][inputs[t]] = 1.0
        a = W @ h[t - 1] + U @ x[t] + b
        h[t] = np.tanh(a)
        o = V @ h[t] + c
        e = np.exp(o - np.max(o))
        p[t] = e / np.sum(e)
        loss += -np.log(p[t][targets[t], 0])
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    dh_next = np.zeros_like(h[0])
    for t in reversed(range(len(inputs))):
        do = np.copy(p[t])
        do[targets[t]] -= 1.0
        grads["V"] += do @ h[t].T
        grads["c"] += do
        dh = V.T @ do + dh_next
        da = (1.0 - h[t] * h[t]) * dh
        grads["b"] += da
        grads["U"] += da @ x[t].T
        grads["W"] += da @ h[t - 1].T
        dh_next = W.T @ da
    return loss, grads, h[len(inputs) - 1]


def train(data, K, m=100, seq_length=25, eta=0.1, sig=0.01, eps=1e-8, clip=5.0, steps=100, seed=0):
    """The assignment's AdaGrad loop over the index list data, with no sampling or checkpoints.

    Returns (params dict, losses list, smooth_losses list, hprev (m, 1)).
    """
    rng = np.random.default_rng(seed)
    params = {
        "U": sig * rng.standard_normal((m, K)),
        "W": sig * rng.standard_normal((m, m)),
        "V": sig * rng.standard_normal((K, m)),
        "b": np.zeros((m, 1)),
        "c": np.zeros((K, 1)),
    }
    mem = {k: np.zeros_like(v) for k, v in params.items()}
    hprev = np.zeros((m, 1))
    e = 0
    losses, smooth_losses, smooth = [], [], None
    for step in range(steps):
        if e + seq_length + 1 > len(data):
            e, hprev = 0, np.zeros((m, 1))
        inputs = data[e:e + seq_length]
        targets = data[e + 1:e + seq_length + 1]
        loss, grads, hprev = loss_and_grads(params, inputs, targets, hprev)
        smooth = loss if smooth is None else 0.999 * smooth + 0.001 * loss
        losses.append(loss)
        smooth_losses.append(smooth)
        for k in params:
            g = np.clip(grads[k], -clip, clip)
            mem[k] += g * g
            params[k] -= eta * g / np.sqrt(mem[k] + eps)
        e += seq_length
    return params, losses, smooth_losses, hprev


# --- the gated cells, written the same plain way ---------------------------------------------------
# Parameters are dicts of separate matrices per gate: for the GRU Uz, Ur, Ug (m, K), Wz, Wr, Wg (m, m),
# bz, br, bg (m, 1); for the LSTM Ui, Uf, Uq, Ug, Wi, Wf, Wq, Wg, bi, bf, bq, bg; both with V (K, m), c (K, 1).

def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _output_step(V, c, h, target):
    o = V @ h + c
    e = np.exp(o - np.max(o))
    p = e / np.sum(e)
    return p, -np.log(p[target, 0])


def _output_back(V, p, h, target, grads):
    """Add step t's output-layer gradients to grads["V"] and grads["c"]; returns dL_t/dh_t through o_t."""
    do = np.copy(p)
    do[target] -= 1.0
    grads["V"] += do @ h.T
    grads["c"] += do
    return V.T @ do


def gru_loss_and_grads(params, inputs, targets, hprev):
    """inputs, targets: lists of T indices; hprev (m, 1). Returns loss, grads (dict), h_T (m, 1)."""
    P = params
    K = P["Uz"].shape[1]
    x, h, z, r, g, p = {}, {-1: np.copy(hprev)}, {}, {}, {}, {}
    loss = 0.0
    for t in range(len(inputs)):
        x[t] = np.zeros((K, 1))
        x[t][inputs[t]] = 1.0
        z[t] = _sigmoid(P["Wz"] @ h[t - 1] + P["Uz"] @ x[t] + P["bz"])
        r[t] = _sigmoid(P["Wr"] @ h[t - 1] + P["Ur"] @ x[t] + P["br"])
        g[t] = np.tanh(P["Wg"] @ (r[t] * h[t - 1]) + P["Ug"] @ x[t] + P["bg"])
        h[t] = (1 - z[t]) * h[t - 1] + z[t] * g[t]
        p[t], step_loss = _output_step(P["V"], P["c"], h[t], targets[t])
        loss += step_loss
    grads = {k: np.zeros_like(v) for k, v in P.items()}
    dh_next = np.zeros_like(h[0])
    for t in reversed(range(len(inputs))):
        dh = _output_back(P["V"], p[t], h[t], targets[t], grads) + dh_next
        dg = dh * z[t] * (1 - g[t] ** 2)
        dz = dh * (g[t] - h[t - 1]) * z[t] * (1 - z[t])
        drh = P["Wg"].T @ dg
        dr = drh * h[t - 1] * r[t] * (1 - r[t])
        for gate, d, hin in (("z", dz, h[t - 1]), ("r", dr, h[t - 1]), ("g", dg, r[t] * h[t - 1])):
            grads["W" + gate] += d @ hin.T
            grads["U" + gate] += d @ x[t].T
            grads["b" + gate] += d
        dh_next = dh * (1 - z[t]) + drh * r[t] + P["Wz"].T @ dz + P["Wr"].T @ dr
    return loss, grads, h[len(inputs) - 1]


def lstm_loss_and_grads(params, inputs, targets, hprev, sprev):
    """inputs, targets: lists of T indices; hprev, sprev (m, 1). Returns loss, grads, h_T, s_T."""
    P = params
    K = P["Ui"].shape[1]
    x, h, s, gates, p = {}, {-1: np.copy(hprev)}, {-1: np.copy(sprev)}, {}, {}
    loss = 0.0
    for t in range(len(inputs)):
        x[t] = np.zeros((K, 1))
        x[t][inputs[t]] = 1.0
        a = {k: P["W" + k] @ h[t - 1] + P["U" + k] @ x[t] + P["b" + k] for k in "ifqg"}
        i, f, q, g = _sigmoid(a["i"]), _sigmoid(a["f"]), _sigmoid(a["q"]), np.tanh(a["g"])
        gates[t] = (i, f, q, g)
        s[t] = f * s[t - 1] + i * g
        h[t] = q * np.tanh(s[t])
        p[t], step_loss = _output_step(P["V"], P["c"], h[t], targets[t])
        loss += step_loss
    grads = {k: np.zeros_like(v) for k, v in P.items()}
    dh_next, ds_next = np.zeros_like(h[0]), np.zeros_like(s[0])
    for t in reversed(range(len(inputs))):
        i, f, q, g = gates[t]
        dh = _output_back(P["V"], p[t], h[t], targets[t], grads) + dh_next
        ds = ds_next + dh * q * (1 - np.tanh(s[t]) ** 2)
        d = {"i": ds * g * i * (1 - i), "f": ds * s[t - 1] * f * (1 - f),
             "q": dh * np.tanh(s[t]) * q * (1 - q), "g": ds * i * (1 - g ** 2)}
        dh_next = np.zeros_like(dh)
        for k in "ifqg":
            grads["W" + k] += d[k] @ h[t - 1].T
            grads["U" + k] += d[k] @ x[t].T
            grads["b" + k] += d[k]
            dh_next += P["W" + k].T @ d[k]
        ds_next = ds * f
    T = len(inputs)
    return loss, grads, h[T - 1], s[T - 1]
