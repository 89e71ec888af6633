"""A plain reference implementation, written the way a student would first write it.

One-hot column vectors, a Python loop over time in both directions, an outer product per step, and
a separate clip and AdaGrad update per parameter. It is deliberately simple and slow: the tests check
the fast code in lib/rnn.py against it, and benchmarks/ measures the speed-up over it.
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
