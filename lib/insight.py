"""What a trained network learned, and how much one run is worth (notebook 8).

    features(text)                    simple features of each character a person can name
    hidden_states(cfg, theta, data)   h_t of every character, read in order
    units_for(H, feats)               the unit whose activation is most correlated with each feature
    gradient_norms(cfg, theta, ...)   ||dL_t / dh_{t-k}|| against k: how far back the loss still reaches
    seed_runs(configs, ...)           the same set-up with several seeds, in parallel processes (joblib)

Karpathy, Johnson and Fei-Fei ("Visualizing and Understanding Recurrent Networks", 2015) looked for such
units in LSTMs; the code here is this project's own.
"""
import numpy as np

from lib import cells, rnn

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
        X = data[s:s + chunk][:, None]
        cache, _ = cell.forward(P, X, h)
        H = cache if cfg.cell == "rnn" else cache[0]
        out.append(H[1:, 0, :cfg.m])
        h = H[-1] if cfg.cell != "lstm" else np.concatenate([cache[0][-1], cache[1][-1]], axis=1)
    return np.concatenate(out)


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
    For the vanilla RNN and the LSTM (through its hidden state h; the gradient also flows through s)."""
    cell = cells.of(cfg)
    P = cell.views(theta, K, cfg.m)
    m = cfg.m
    out = np.empty((len(starts), span + 1))
    for row, start in enumerate(starts):
        X = data[start:start + span + 1][:, None]
        y = int(data[start + span + 1])
        cache, O = cell.forward(P, X, np.zeros((1, cell.state_size(m)), theta.dtype))
        dO = rnn.softmax(O[-1:])[0]
        dO[y] -= 1.0
        dh = P.V.T @ dO                                     # dL_t / dh_t through o_t
        if cfg.cell == "rnn":
            H = cache
            for k in range(span + 1):
                out[row, k] = np.linalg.norm(dh)
                da = dh * (1.0 - H[span + 1 - k, 0] ** 2)   # through tanh at step t - k
                dh = P.W.T @ da
        elif cfg.cell == "lstm":
            H, S, Z, TS = cache
            ds = np.zeros(m)
            for k in range(span + 1):
                t = span - k
                out[row, k] = np.linalg.norm(dh)
                i, f, q, g = (Z[t, 0, j * m:(j + 1) * m] for j in range(4))
                ds = ds + dh * q * (1.0 - TS[t, 0] ** 2)
                dz = np.concatenate([ds * g * i * (1 - i), ds * S[t, 0] * f * (1 - f),
                                     dh * TS[t, 0] * q * (1 - q), ds * i * (1 - g * g)])
                ds, dh = ds * f, P.W.T @ dz
        else:
            raise ValueError(f"gradient_norms is written for the rnn and lstm cells, not {cfg.cell!r}.")
    return out


def _one_run(cfg, corpus, folder, max_seconds, overwrite):
    from lib.runs import run
    state, vocab, summary = run(cfg, corpus, folder, overwrite=overwrite, progress=False, log=lambda line: None,
                                show_samples=False, max_seconds=max_seconds)
    return state, summary


def seed_runs(configs, corpus, folders, n_jobs=-1, backend="loky", max_seconds=None, overwrite=False):
    """[(state, summary)] of a run of each config in its folder (corpus: a path, or None for the default
    corpus), in parallel processes: n_jobs -1 uses
    every core. backend "loky" runs on this machine; with dask.distributed installed and a Client made,
    backend "dask" spreads them over a cluster. Each process uses one thread for its matrix products."""
    from joblib import Parallel, delayed, parallel_config
    threads = {"inner_max_num_threads": 1} if backend == "loky" else {}
    with parallel_config(backend=backend, n_jobs=n_jobs, **threads):
        return Parallel()(delayed(_one_run)(cfg, None if corpus is None else str(corpus), str(folder), max_seconds,
                                            overwrite) for cfg, folder in zip(configs, folders))
