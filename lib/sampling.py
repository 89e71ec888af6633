"""Drawing text from a trained network, one character at a time, and scoring a text with it.

These work for any cell module (lib/rnn.py, and the gated cells beside it): each provides
step(P, h, x) -> (h, o) for one character and scores(P, X, h0) -> (O, hT) for a chunk.
"""
import numpy as np

from lib.rnn import probs_and_losses


def next_char_probs(o, temperature=1.0, top_p=1.0):
    """p (K,) from the scores o (K,): p = softmax(o / tau) with tau the temperature, then the nucleus.

    top_p keeps only the smallest set of most probable characters whose probability reaches top_p.
    Computed as exp((o - max o) / tau), so that a tiny temperature gives the most probable character
    (the others underflow to zero) rather than a division overflowing to NaN.
    """
    with np.errstate(over="ignore", under="ignore"):
        z = (o - o.max()) / temperature
    p = np.exp(z)
    p /= p.sum()
    if top_p < 1.0:
        order = np.argsort(-p, kind="stable")
        before = np.cumsum(p[order]) - p[order]     # probability of the characters ranked above
        keep = order[before < top_p]
        q = np.zeros_like(p)
        q[keep] = p[keep]
        p = q / q.sum()
    return p


def check_settings(temperature, top_p):
    """ValueError naming the setting unless temperature is a positive finite number and top_p in (0, 1]."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not 0 < temperature < float("inf"):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}.")
    if isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p!r}.")


def sample(cell, P, h0, x0, n, rng, temperature=1.0, top_p=1.0, prime=()):
    """Generate n character indices with cell's step function.

    P: the cell's Params. h0: (S,) starting hidden state. x0: index of the first input character.
    prime: indices fed through the network before sampling; the last one then serves as x0.
    Each draw takes the first index whose cumulative probability exceeds a uniform number from rng.
    Returns (indices (n,) int, h (S,) the hidden state after the last input).
    """
    check_settings(temperature, top_p)
    h = np.array(h0)
    inputs = list(prime) or [x0]
    for x in inputs[:-1]:
        h, _ = cell.step(P, h, x)
    x = inputs[-1]
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        h, o = cell.step(P, h, x)
        cp = np.cumsum(next_char_probs(o, temperature, top_p))
        x = min(int(np.searchsorted(cp, rng.random() * cp[-1], side="right")), len(cp) - 1)
        out[i] = x
    return out, h


def step_losses(cell, P, X, Y, h0):
    """The cross-entropy -log p_t[y_t] of each step and sequence (T B,), no gradients.

    X, Y: (T,) or (T, B); h0: (S,) or (B, S).
    """
    X, Y = np.asarray(X), np.asarray(Y)
    if X.ndim == 1:
        X, Y, h0 = X[:, None], Y[:, None], h0[None, :]
    O, _ = cell.scores(P, X, h0)
    return probs_and_losses(O, Y.reshape(-1))[1]


def _chunk_losses(cell, P, data, h0, chunk):
    """(losses (n,), h (1, S)) for each chunk of predicting data[1:] from data[:-1], the state carried."""
    h = h0
    for s in range(0, len(data) - 1, chunk):
        X = data[s:min(s + chunk, len(data) - 1)][:, None]
        Y = data[s + 1:s + 1 + len(X)]
        O, h = cell.scores(P, X, h)
        yield probs_and_losses(O, Y)[1], h


def text_loss(cell, P, data, h0, chunk=1000):
    """Read a text in order and score it: the mean cross-entropy per character (nats) of predicting
    data[1:] from data[:-1], the hidden state carried through from h0 (1, S).
    data: (N,) indices. Returns (loss, h (1, S) the hidden state after the last input)."""
    h, total = h0, 0.0
    for losses, h in _chunk_losses(cell, P, data, h0, chunk):
        total += losses.sum()
    return float(total / (len(data) - 1)), h


def text_losses(cell, P, data, h0, chunk=1000):
    """The cross-entropy (nats) of each prediction of data[1:] from data[:-1] (N - 1,), read as text_loss."""
    return np.concatenate([losses for losses, _ in _chunk_losses(cell, P, data, h0, chunk)])
