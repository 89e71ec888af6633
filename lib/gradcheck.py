"""Gradient checking: the analytic gradients of a network (lib/model/cells.py, with lib/rnn.py, gru.py or lstm.py) against
finite differences, entry by entry.

    python -m lib.gradcheck --cell rnn|gru|lstm --m 5

prints the table and exits with 1 when any parameter's largest relative error is 1e-6 or more.

For every entry theta_i of every parameter (float64), with the centred difference of the assignment
(order 2) or the five-point stencil (order 4, the command's default):
    order 2:  g_n = (L(theta_i + h) - L(theta_i - h)) / (2 h)                       error O(h^2)
    order 4:  g_n = (8 (L(+h) - L(-h)) - (L(+2h) - L(-2h))) / (12 h)                error O(h^4)
    relative error = |g_a - g_n| / max(floor, |g_a| + |g_n|)
Differences are summed step by step, sum_t (l_t(+h) - l_t(-h)), which loses less to rounding than
subtracting two whole-chunk losses of about T ln K. The order-2 estimate's own error is about 3e-11 here
(an LSTM entry whose gradient is 1.4e-5 came out 1.03e-6 apart at h = 1e-4, and further apart at smaller
h, where rounding grows): too coarse to hold the gated cells to 1e-6; order 4 at h = 1e-3 is not.

The floor: the rounding of the step losses alone puts about 2^-52 ||l||_2 (|stencil| / h) into any g_n
(||l||_2 the norm of the T B step losses; |stencil| 1 for order 2, 1.5 for order 4), so an entry whose
gradient is smaller than that over the tolerance cannot be resolved to 1e-6: it is measured against the
floor = that rounding / 1e-6 (or eps, if larger), that is, by its absolute error. This matters in stacked
layers, where the first layer's U has entries of about 1e-6 (their absolute errors, about 5e-12, are the
same as everywhere else; measured against their own size they read 2e-6).
"""
import time

import numpy as np

from lib import reading
from lib.model import cells

TOLERANCE = 1e-6
STEP = {2: 1e-4, 4: 1e-3}   # h by order: the assignment's 1e-4 for the centred difference (at 1e-3 its O(h^2)
                            # error alone is about 4e-5), and 1e-3 for the five-point stencil
MAX_SECONDS = 1800  # the command refuses a check it estimates to take longer


def numerical_grads(P, X, Y, h0, h=1e-4, cell=cells.RNN, order=2):
    """Finite-difference gradients of the chunk loss (order 2 or 4), as Params shaped like P (restored)."""
    offsets = (1, -1) if order == 2 else (1, -1, 2, -2)
    grads = []
    for A in P:
        G = np.zeros(A.shape)
        for i in np.ndindex(A.shape):
            old, L = A[i], {}
            for k in offsets:
                A[i] = old + k * h
                L[k] = reading.step_losses(cell, P, X, Y, h0)
            A[i] = old
            if order == 2:
                G[i] = np.sum(L[1] - L[-1]) / (2 * h)
            else:
                G[i] = np.sum(8 * (L[1] - L[-1]) - (L[2] - L[-2])) / (12 * h)
        grads.append(G)
    return type(P)(*grads)


def estimate(P, X, Y, h0, cell, order):
    """Seconds a check of every entry of P would take: one loss evaluation, timed, times the evaluations
    (2 or 4 a entry)."""
    t0 = time.perf_counter()
    for _ in range(3):
        reading.step_losses(cell, P, X, Y, h0)
    per_eval = (time.perf_counter() - t0) / 3
    return per_eval * sum(a.size for a in P) * (2 if order == 2 else 4)


def relative_errors(ga, gn, eps=1e-9):
    """|ga - gn| / max(eps, |ga| + |gn|), element-wise."""
    return np.abs(ga - gn) / np.maximum(eps, np.abs(ga) + np.abs(gn))


def floor(P, X, Y, h0, h, cell=cells.RNN, order=2):
    """The smallest |g_a| + |g_n| that finite differences resolve to TOLERANCE: the rounding of the step
    losses, 2^-52 ||l||_2 |stencil| / h, over TOLERANCE (see the module's docstring)."""
    stencil = 1.0 if order == 2 else 1.5
    return 2.0 ** -52 * float(np.linalg.norm(reading.step_losses(cell, P, X, Y, h0))) * stencil / h / TOLERANCE


def check(P, X, Y, h0, h=1e-4, eps=1e-9, cell=cells.RNN, order=2):
    """Compare analytic and numerical gradients for every parameter.

    Returns a list of rows (dicts): parameter, shape, entries, max and mean relative error (measured
    against max(eps, floor(), |g_a| + |g_n|)), max absolute error, the largest |gradient|, the floor.
    """
    _, ga, _ = cell.loss_and_grads(P, X, Y, h0)
    gn = numerical_grads(P, X, Y, h0, h, cell, order)
    least = max(eps, floor(P, X, Y, h0, h, cell, order))
    rows = []
    for name, a, n in zip(cell.names, ga, gn):
        rel = relative_errors(a, n, least)
        rows.append({"parameter": name, "shape": "x".join(map(str, a.shape)), "entries": a.size,
                     "max_rel_error": float(rel.max()), "mean_rel_error": float(rel.mean()),
                     "max_abs_error": float(np.abs(a - n).max()), "max_abs_grad": float(np.abs(a).max()),
                     "floor": least})
    return rows


HEADER = ["parameter", "shape", "entries", "max relative error", "mean relative error", "max absolute error"]


def table_rows(rows):
    """The rows of check() as the cells of a table under HEADER (lib/report/show.py's table)."""
    return [[r["parameter"], r["shape"], r["entries"], f"{r['max_rel_error']:.2e}", f"{r['mean_rel_error']:.2e}",
             f"{r['max_abs_error']:.2e}"] for r in rows]


def main(argv=None):
    from lib.util.cli import Parser
    from lib.config import arg_type, positive_int, positive_number
    from lib.data import load_corpus
    from lib.report.show import markdown_table
    p = Parser(prog="python -m lib.gradcheck", description="Check a cell's gradients entry by entry.")
    p.add_argument("--cell", default="rnn", choices=list(cells.CELLS), help="the cell whose gradients are checked "
                                                                           "(default rnn, the assignment's)")
    p.add_argument("--m", type=positive_int, default=5, help="hidden units (default 5: every entry is checked)")
    p.add_argument("--layers", type=arg_type("layers"), default=1, help="recurrent layers stacked (default 1)")
    p.add_argument("--batch", type=positive_int, default=2,
                   help="sequences, each from its own random state (default 2)")
    p.add_argument("--seq-length", type=positive_int, default=25, help="characters per sequence, T (default 25)")
    p.add_argument("--sig", type=positive_number, default=0.1, help="standard deviation of the random weights")
    p.add_argument("--h", type=positive_number, default=None,
                   help=f"the finite-difference step (default {STEP[4]:g} for order 4, {STEP[2]:g} for order 2)")
    p.add_argument("--order", type=int, default=4, choices=(2, 4),
                   help="4: the five-point stencil (default); 2: the centred difference of the assignment")
    p.add_argument("--seed", type=arg_type("seed"), default=0,
                   help="draws the random weights and states (default 0)")
    p.add_argument("--data", help="corpus (default: data/goblet_book.txt, else the default corpus)")
    args = p.parse_args(argv)
    if args.h is None:
        args.h = STEP[args.order]
    if args.m * args.batch * args.seq_length > 20_000:
        raise ValueError("--m, --batch and --seq-length this large would take hours entry by entry; use m = 5.")
    cell = cells.get(args.cell, args.layers)
    corpus = load_corpus(args.data, args.batch * (args.seq_length + 1))
    K, T, B, m = corpus.vocab.K, args.seq_length, args.batch, args.m
    rng = np.random.default_rng(args.seed)
    theta = cell.init_params(K, m, args.sig, rng)
    theta += args.sig * rng.standard_normal(theta.size)         # biases too, so that every entry matters
    P = cell.views(theta, K, m)
    starts = np.arange(B) * (corpus.n_chars // B - T - 1) // max(B - 1, 1) if B > 1 else np.zeros(1, int)
    pos = np.arange(T)[:, None] + starts
    X, Y = corpus.data[pos].astype(np.int64), corpus.data[pos + 1].astype(np.int64)
    h0 = np.tanh(rng.standard_normal((B, cell.state_size(m))))
    seconds = estimate(P, X, Y, h0, cell, args.order)
    if seconds > MAX_SECONDS:
        raise ValueError(f"Checking all {theta.size:,} entries would take about {seconds / 3600:.1f} hours here; "
                         f"use a smaller --m (5 checks every entry in seconds), --batch or --seq-length.")
    _, ga, _ = cell.loss_and_grads(P, X, Y, h0)
    least, largest = floor(P, X, Y, h0, args.h, cell, args.order), max(float(np.abs(g).max()) for g in ga)
    if least >= largest:
        raise ValueError(f"--h {args.h:g} is too small for the check to fail: the rounding of the losses, divided "
                         f"by so small a step, puts every entry below the floor of {least:.1e} (the largest gradient "
                         f"is {largest:.1e}). Use the default step, {STEP[args.order]:g}.")
    print(f"checking {theta.size:,} entries, about {seconds:.0f} s", flush=True)
    rows = check(P, X, Y, h0, h=args.h, cell=cell, order=args.order)
    print(f"cell {args.cell}, {args.layers} layer{'s' * (args.layers > 1)}, K = {K}, m = {m}, B = {B}, T = {T}, "
          f"order {args.order}, h = {args.h}; "
          f"{sum(r['entries'] for r in rows):,} entries, float64")
    print(markdown_table(table_rows(rows), HEADER, ["l", "l", "r", "r", "r", "r"]))
    print(f"(an entry whose |g_a| + |g_n| is below {rows[0]['floor']:.1e}, which the rounding of the losses "
          "keeps finite differences from resolving to 1e-6, is measured against that floor)")
    worst = max(r["max_rel_error"] for r in rows)
    large = args.h > 10 * STEP[args.order] and worst >= TOLERANCE
    print(f"largest relative error {worst:.2e}: {'passed' if worst < TOLERANCE else 'FAILED'} "
          f"(the check asks for less than {TOLERANCE:g})"
          + (f"; the step h = {args.h:g} is far above the default {STEP[args.order]:g}, and the finite differences' "
             f"own error, of order h^{args.order}, may be what fails: try the default" if large else ""))
    return 0 if worst < TOLERANCE else 1


if __name__ == "__main__":
    from lib.util import cli
    cli.command(main)
