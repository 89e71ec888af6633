"""What a trained network learned, and how much one run is worth (notebook 8).

    features(text)                    simple features of each character a person can name
    hidden_states(cfg, theta, data)   h_t of every character, read in order
    units_for(H, feats)               the unit whose activation is most correlated with each feature
    gradient_norms(cfg, theta, ...)   ||dL_t / dh_{t-k}|| against k: how far back the loss still reaches

Karpathy, Johnson and Fei-Fei ("Visualizing and Understanding Recurrent Networks", 2015) looked for such
units in LSTMs; the code here is this project's own.
"""
import numpy as np

from lib import rnn
from lib.model import cells

VOWELS = set("aeiouyAEIOUY")


def features(text):
    """{name: (N,) float} for each character of text: 1.0 where the feature holds, 0.0 elsewhere
    (position in the line: the count itself). What holds after reading text[t] is at index t."""
    n = len(text)
    out = {name: np.zeros(n) for name in (
        "inside quotation marks", "inside brackets", "position in the line", "start of a word",
        "in an upper-case (speaker) line", "after sentence punctuation", "a vowel next")}
    quote = bracket = after_stop = False
    column, line_upper, letters, prev = 0, True, 0, "\n"
    for t, ch in enumerate(text):
        if ch == '"':
            quote = not quote
        bracket = (bracket or ch in "[(") and ch not in "])"
        column = 0 if ch == "\n" else column + 1
        if prev == "\n":
            line_upper = True
        if ch.isalpha() and ch.islower():
            line_upper = False
        after_stop = ch in ".!?" or (after_stop and not ch.isalpha())
        out["inside quotation marks"][t] = quote
        out["inside brackets"][t] = bracket
        out["position in the line"][t] = column
        out["start of a word"][t] = ch.isalpha() and not prev.isalpha()
        letters = letters + ch.isalpha() if column else 0
        out["in an upper-case (speaker) line"][t] = line_upper and letters > 0
        out["after sentence punctuation"][t] = after_stop
        out["a vowel next"][t] = t + 1 < n and text[t + 1] in VOWELS
        prev = ch
    return out


def hidden_states(cfg, theta, K, data, h0=None, chunk=1000):
    """H (N, m): the hidden state h_t after each character of data (indices), read in order from h0 (or
    zero). For the LSTM, h_t (not the cell state)."""
    cell = cells.of(cfg)
    P = cell.views(theta, K, cfg.m)
    h = np.zeros((1, cell.state_size(cfg.m)), theta.dtype) if h0 is None else h0
    out = []
    for s in range(0, len(data), chunk):
        H, _, h = cell.forward(P, data[s:s + chunk][:, None], h)
        out.append(H[1:, 0])
    return np.concatenate(out)


def unit_panels(found, text, H, near=2000, n=400, top=4):
    """(title, text, activations) of the top units of found (insight.units_for, the strongest first) over
    n characters of text from the first line that starts at or after `near` (earlier in a short text):
    each unit's activation H[:, unit] signed so that +1 means "the feature holds" (for plots.unit_texts and
    show.show_activations)."""
    line = text.find("\n", min(near, max(len(text) - n, 0)))
    start = line + 1 if 0 <= line < len(text) - 1 else 0
    ranked = sorted((f for f in found if f[1] is not None), key=lambda f: -abs(f[2]))[:top]
    return [(f"unit {u}: {name} (r = {r:+.2f})", text[start:start + n], H[start:start + n, u] * np.sign(r))
            for name, u, r in ranked]


def correlations(H, f):
    """(m,) the Pearson correlation of each unit's activation in H (N, m) with the feature f (N,)."""
    Hc, fc = H - H.mean(axis=0), f - f.mean()
    denom = np.sqrt((Hc * Hc).sum(axis=0) * (fc * fc).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (Hc * fc[:, None]).sum(axis=0) / denom
    return np.nan_to_num(r)


def units_for(H, feats):
    """[(feature, unit, r)]: for each feature the unit whose activation is most correlated with it (r
    its correlation, either sign); unit None for a feature that never changes in the text (none to find)."""
    rows = []
    for name, f in feats.items():
        if f.min() == f.max():
            rows.append((name, None, 0.0))
            continue
        r = correlations(H, f)
        u = int(np.argmax(np.abs(r)))
        rows.append((name, u, float(r[u])))
    return rows


def gradient_norms(cfg, theta, K, data, starts, span):
    """(len(starts), span + 1): ||dL_t / dh_{t-k}|| for k = 0 .. span, where L_t is the loss of predicting
    data[t + 1] at t = start + span, the state read in from zero over the `span` characters before.

    One backward pass per start, with dL/dh only at step t: the cell's backward gives the gradient that
    reaches the state before each step, whose h part is dL_t/dh_{t-k} (for the LSTM, with the gradient
    that flows through the cell state s included, and s_{t-k} held fixed). With stacked layers, h_{t-k}
    is all the layers' h together for k >= 1, and the top layer's (what the loss reads) for k = 0."""
    cell = cells.of(cfg)
    P = cell.views(theta, K, cfg.m)
    G = cell.views(np.empty_like(theta), K, cfg.m)          # the weights' gradients, not needed here
    m = cfg.m
    out = np.empty((len(starts), span + 1))
    for row, start in enumerate(starts):
        X = data[start:start + span + 1][:, None]
        y = int(data[start + span + 1])
        H, cache, _ = cell.forward(P, X, np.zeros((1, cell.state_size(m)), theta.dtype))
        dO = rnn.softmax(H[-1, 0] @ P.V.T + P.c)
        dO[y] -= 1.0
        dH = np.zeros((span + 1, 1, m), theta.dtype)
        dH[-1, 0] = P.V.T @ dO              # dL_t / dh_t through o_t, at the last step only
        dstates = np.empty((span + 1, 1, cell.state_size(m)), theta.dtype)
        cell.backward(P, dH, cache, G, X, dstates=dstates)
        h_parts = dstates.reshape(span + 1, cell.layers, -1)[:, :, :m]   # each layer's h (an LSTM's s left out)
        out[row, 0] = np.linalg.norm(dH[-1, 0])
        out[row, 1:] = np.linalg.norm(h_parts[:0:-1].reshape(span, -1), axis=1)   # dL/dh_{t-k} reaches the state before step t-k+1
    return out
