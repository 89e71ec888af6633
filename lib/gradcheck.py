"""Gradient checking: the analytic gradients of lib/rnn.py against centred finite differences.

For every entry theta_i of every parameter (float64):
    g_n = (L(theta_i + h) - L(theta_i - h)) / (2 h)
    relative error = |g_a - g_n| / max(eps, |g_a| + |g_n|)
The difference L(+h) - L(-h) is summed step by step, sum_t (l_t(+h) - l_t(-h)), which loses less to
rounding than subtracting two whole-chunk losses of about T ln K.
"""
import numpy as np

from lib import rnn, sampling


def numerical_grads(P, X, Y, h0, h=1e-4, cell=rnn):
    """Centred-difference gradients of the chunk loss, as Params shaped like P (which is restored)."""
    grads = []
    for A in P:
        G = np.zeros(A.shape)
        for i in np.ndindex(A.shape):
            old = A[i]
            A[i] = old + h
            plus = sampling.step_losses(cell, P, X, Y, h0)
            A[i] = old - h
            minus = sampling.step_losses(cell, P, X, Y, h0)
            A[i] = old
            G[i] = np.sum(plus - minus) / (2 * h)
        grads.append(G)
    return type(P)(*grads)


def relative_errors(ga, gn, eps=1e-9):
    """|ga - gn| / max(eps, |ga| + |gn|), element-wise."""
    return np.abs(ga - gn) / np.maximum(eps, np.abs(ga) + np.abs(gn))


def check(P, X, Y, h0, h=1e-4, eps=1e-9, cell=rnn):
    """Compare analytic and numerical gradients for all five parameters.

    Returns a list of rows (dicts): parameter, shape, entries, max and mean relative error,
    max absolute error, the largest |gradient|.
    """
    _, ga, _ = cell.loss_and_grads(P, X, Y, h0)
    gn = numerical_grads(P, X, Y, h0, h, cell)
    rows = []
    for name, a, n in zip(cell.NAMES, ga, gn):
        rel = relative_errors(a, n, eps)
        rows.append({"parameter": name, "shape": "x".join(map(str, a.shape)), "entries": a.size,
                     "max_rel_error": float(rel.max()), "mean_rel_error": float(rel.mean()),
                     "max_abs_error": float(np.abs(a - n).max()), "max_abs_grad": float(np.abs(a).max())})
    return rows


def markdown_table(rows):
    """The rows of check() as a Markdown table."""
    lines = ["| parameter | shape | entries | max relative error | mean relative error | max absolute error |",
             "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['parameter']} | {r['shape']} | {r['entries']} | {r['max_rel_error']:.2e} | "
                     f"{r['mean_rel_error']:.2e} | {r['max_abs_error']:.2e} |")
    return "\n".join(lines)
