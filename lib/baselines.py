"""Yardsticks: how well simple, honest methods predict the held-out text, in bits per character.

On the split the trainer uses (the last val_fraction of the text held out), by lib/evaluate.py's protocol:
every figure scores the second half of the held-out part, each yardstick having read the training part
and the first half before it; a best order is chosen on the first half.

    uniform        log2 K: a guess among the K characters of the vocabulary            (static)
    unigram        each character's frequency in the training text (add-one smoothed)  (static)
    ngram-1..16    interpolated Kneser-Ney language models of order n (context of n - 1 characters),
                   with continuation counts for the lower orders and three discounts per order
                   (D1, D2, D3+ from the counts of counts: the "modified" variant of Chen and Goodman,
                   1998); static from the training part's counts, adaptive with counts that grow as it reads
    ppmd           PPMd, variant I (the pyppmd package)                                 (adaptive)
    gzip, bz2, lzma    the standard library's compressors at their strongest settings  (adaptive):
                   8 (len C(all before + second half) - len C(all before)) / characters

The n-gram counting is vectorised: every n-gram of the text gets a dense integer id, order by order, from
the id of its first n - 1 characters and its last character (the rank of the pair among the distinct
pairs), so that counts, continuation counts and the statistics of each context are np.bincount calls, not
a loop per character. One order is counted at a time, with 4-byte ids and counts: 67 bytes a character
at most for all 16 orders (measured with tracemalloc on the default corpus; 133 for 8 orders when every
order's ids were kept), with the same bits to the last.

    python -m lib.baselines --data PATH --val-fraction 0.1 --json OUT
"""
import bz2
import gzip
import json
import lzma
import math
import time

import numpy as np

from lib.util import limits
from lib.data import halves, load_corpus

MAX_ORDER = 16       # formulaic texts go on gaining up to here (the King James Bible: 1.570 bits at 8, 1.543 at 14)
BYTES_PER_CHAR = 75    # the most memory the n-gram counting takes per character (measured: 67 for 16 orders)
ADAPTIVE_BYTES_PER_CHAR = 150   # the same for the adaptive n-gram (measured: 122 for 16 orders)
LZMA_BYTES = 700e6     # what lzma's strongest preset may take whatever the text (xz's documentation: 674 MiB)


def id_type(N, K):
    """The smallest integer type that holds every n-gram id and (id, character) key of a text of N
    characters over K: int32 up to about 2**31 / K characters, int64 beyond."""
    return np.int32 if (N + 1) * K < 2 ** 31 else np.int64


def next_ids(prev, x, n, K):
    """(N,) the dense ids of the n-grams ending at each position (-1 where fewer than n characters
    precede), from prev (N,), those of order n - 1: the rank of the pair (id of the first n - 1
    characters, last character) among the distinct pairs. Equal n-grams get equal ids."""
    key = prev[n - 2:-1] * prev.dtype.type(K) + x[n - 1:]
    order = np.argsort(key)                                 # np.unique's inverse, in a quarter of its memory
    key = key[order]
    new = np.empty(len(key), dtype=bool)                    # where a sorted key differs from the one before
    new[0], new[1:] = True, key[1:] != key[:-1]
    del key
    out = np.full(len(x), -1, dtype=prev.dtype)
    out[n - 1:][order] = np.cumsum(new, dtype=prev.dtype) - 1
    return out


def discounts(counts):
    """(D1, D2, D3+) from the counts of counts n_k of a level's counts (Chen and Goodman's estimates)."""
    n = [np.count_nonzero(counts == k) for k in (1, 2, 3, 4)]
    if min(n) == 0:
        return 0.5, 1.0, 1.5                                # too few counts to estimate: moderate values
    Y = n[0] / (n[0] + 2 * n[1])
    D = (1 - 2 * Y * n[1] / n[0], 2 - 3 * Y * n[2] / n[1], 3 - 4 * Y * n[3] / n[2])
    return tuple(float(np.clip(d, 0.0, k - 1e-6)) for d, k in zip(D, (1, 2, 3)))


class Level:
    """One order n of the model: a count for each n-gram id and, for each context (the n - 1 characters
    before), the total count and the discount mass gamma = D1 N1 + D2 N2 + D3 N3+."""

    def __init__(self, counts, context_of, n_contexts):
        self.counts = counts                                # (n-gram ids,) integers
        seen = counts > 0
        ctx, c = context_of[seen], counts[seen]
        self.D = discounts(c)
        self.table = np.array((0.0, *self.D))               # the discount of a count 0, 1, 2, 3 or more
        self.total = np.bincount(ctx, weights=c, minlength=n_contexts)
        self.gamma = np.bincount(ctx, weights=self.discount(c), minlength=n_contexts)

    def discount(self, c):
        """The discount of each count in c: 0 for 0, then D1, D2, and D3+ for 3 or more."""
        return self.table[np.minimum(c, 3)]

    def prob(self, g, h, lower):
        """p(w | h) at positions with n-gram ids g and context ids h, interpolated with lower (same shape)."""
        c = self.counts[g]
        total, gamma = self.total[h], self.gamma[h]
        with np.errstate(invalid="ignore", divide="ignore"):
            p = (np.maximum(c - self.discount(c), 0.0) + gamma * lower) / total
        return np.where(total > 0, p, lower)                # an unseen context: the lower order alone


def kneser_ney(x, n_train, K, max_order=MAX_ORDER):
    """{n: bits per character of the held-out part x[n_train:]} for interpolated modified Kneser-Ney of
    every order n = 1 .. max_order, trained on x[:n_train]. x: (N,) indices of the whole text."""
    return {n: float(np.mean(bits)) for n, bits in kneser_ney_bits(x, n_train, K, max_order)}


class TooShort(ValueError):
    """Too little text to count n-grams in; the message goes on from the text's name."""


def check_counts(x, n_train, max_order, bytes_per_char=BYTES_PER_CHAR):
    """TooShort unless the training part x[:n_train] is longer than max_order and something is held out;
    TooLarge when counting x would need more memory than this machine has."""
    limits.check_memory(bytes_per_char * len(x), f"Counting n-grams of up to {max_order} characters in "
                        f"{len(x):,} characters", "use a shorter text.")
    if n_train <= max_order or n_train >= len(x):
        raise TooShort(f"leaves {n_train} character(s) to count n-grams of up to {max_order} characters in and "
                       f"{len(x) - n_train} to score; the yardsticks need more than {max_order}, and one. Use a "
                       "longer text.")


def kneser_ney_bits(x, n_train, K, max_order=MAX_ORDER):
    """(n, (N - n_train,) the bits of each held-out character) for each order n = 1 .. max_order in turn.

    Memory: the ids of two orders at a time (and the contexts of a third), each order's computed from the
    one before, in 4 bytes a character where they fit."""
    check_counts(x, n_train, max_order)
    held = np.arange(n_train, len(x))
    train_end = np.zeros(len(x), dtype=bool)
    train_end[:n_train] = True
    ids = {1: x.astype(id_type(len(x), K))}

    def order(n):                                           # the ids of order n, keeping those of n - 1
        if n not in ids:
            ids[n] = next_ids(ids[n - 1], x, n, K)
        for old in [k for k in ids if k < n - 1]:
            del ids[old]
        return ids[n]

    def context_ids(n):                                     # the id of the n - 1 characters before each position
        if n == 1:
            return np.zeros(len(x), dtype=ids[1].dtype), 1
        h = np.full(len(x), -1, dtype=ids[n - 1].dtype)
        h[1:] = ids[n - 1][:-1]
        return h, int(ids[n - 1].max()) + 1

    def level(n, lower, continuation):
        """p(w | h) of order n at the held-out positions, interpolated with lower."""
        g, (h, n_ctx) = order(n), context_ids(n)
        n_ids = int(g.max()) + 1
        at = train_end & (g >= 0) & (h >= 0 if n > 1 else True)
        if continuation:                                    # how many distinct characters precede the n-gram
            longer = order(n + 1)
            at_longer = at & (longer >= 0)
            suffix_of = np.zeros(int(longer.max()) + 1, dtype=g.dtype)  # each (n + 1)-gram's last n characters
            suffix_of[longer[at_longer]] = g[at_longer]
            seen = np.zeros(len(suffix_of), dtype=bool)
            seen[longer[at_longer]] = True
            counts = np.bincount(suffix_of[seen], minlength=n_ids).astype(g.dtype)
        else:
            counts = np.bincount(g[at], minlength=n_ids).astype(g.dtype)
        context_of = np.zeros(n_ids, dtype=g.dtype)
        context_of[g[at]] = h[at]
        return Level(counts, context_of, n_ctx).prob(g[held], h[held], lower)

    p = np.full(len(held), 1.0 / K)                         # order 0: uniform
    for n in range(1, max_order + 1):
        yield n, -np.log2(level(n, p, continuation=False))
        if n < max_order:
            p = level(n, p, continuation=True)              # the lower order of every higher model

def before(keys, weights=None):
    """(N,) for each position i, the sum of weights[j] (1 each when None) over the positions j < i with
    keys[j] == keys[i]: what has been seen of i's key before i. A position whose key is negative takes
    part in nothing (its own result is 0)."""
    N = len(keys)
    w = np.ones(N) if weights is None else np.asarray(weights, dtype=np.float64)
    w = np.where(keys >= 0, w, 0.0)
    order = np.argsort(keys, kind="stable")                 # by key, then by position
    ks, ws = keys[order], w[order]
    cs = np.cumsum(ws) - ws                                 # the sum before each, over the sorted order
    start = np.ones(N, dtype=bool)
    start[1:] = ks[1:] != ks[:-1]
    first = np.maximum.accumulate(np.where(start, np.arange(N), 0))   # where each one's key begins
    out = np.empty(N)
    out[order] = cs - cs[first]
    out[keys < 0] = 0.0
    return out


def adaptive_kneser_ney_bits(x, n_train, K, max_order=MAX_ORDER):
    """As kneser_ney_bits, with counts that grow as the held-out text is read: each character from
    n_train on is predicted from the counts of everything before it (the training part, and the
    held-out text up to it), then counted. Raw counts, continuation counts, each context's total and
    its discount mass all grow; the discounts stay those of the training counts. The first held-out
    character gets kneser_ney_bits' probability (tests/test_evaluate.py holds the two to 1e-9).

    Vectorised: for each order, what was seen of an n-gram (or context) before each position is a
    sum within the positions of the same id (before()), so the whole text is read in a few sorts."""
    check_counts(x, n_train, max_order, ADAPTIVE_BYTES_PER_CHAR)
    N, held = len(x), np.arange(n_train, len(x))
    train_end = np.arange(N) < n_train
    ids = {1: x.astype(id_type(N, K))}

    def order(n):
        if n not in ids:
            ids[n] = next_ids(ids[n - 1], x, n, K)
        for old in [k for k in ids if k < n - 1]:
            del ids[old]
        return ids[n]

    def keys(n):                                            # (n-gram keys, context keys), -1 where none
        g = order(n)
        h = np.zeros(N, dtype=g.dtype) if n == 1 else np.concatenate([[-1], ids[n - 1][:-1]]).astype(g.dtype)
        valid = (g >= 0) & (h >= 0)
        return np.where(valid, g, -1), np.where(valid, h, -1)

    def level(n, lower, continuation):
        """p(w | h) of order n at the held-out positions, from what was seen before each."""
        g, h = keys(n)
        if continuation:                                    # a count: an (n + 1)-gram seen for the first time
            longer, _ = keys(n + 1)
            seen = (longer >= 0) & (g >= 0) & (before(longer) == 0)
        else:
            seen = g >= 0
        c = before(g, seen)                                 # the count of each position's n-gram before it
        trained = np.bincount(g[seen & train_end], minlength=int(g.max()) + 1)
        table = np.array((0.0, *discounts(trained[trained > 0])))
        D = lambda k: table[np.minimum(k, 3).astype(np.int64)]      # noqa: E731
        grow = np.where(seen, D(c + 1) - D(c), 0.0)         # what each count's step adds to its context's mass
        total, gamma = before(h, seen)[held], before(h, grow)[held]
        c = c[held]
        with np.errstate(invalid="ignore", divide="ignore"):
            p = (np.maximum(c - D(c), 0.0) + gamma * lower) / total
        return np.where(total > 0, p, lower)

    p = np.full(len(held), 1.0 / K)
    for n in range(1, max_order + 1):
        yield n, -np.log2(level(n, p, continuation=False))
        if n < max_order:
            p = level(n, p, continuation=True)


KINDS = ("letter inside a word", "first letter of a word", "space", "newline", "punctuation or digit")


def kinds(text):
    """The kind (an index into KINDS) of each character of text after the first: what is being predicted."""
    out = []
    for prev, ch in zip(text, text[1:]):
        if ch.isalpha():
            out.append(0 if prev.isalpha() or prev == "'" else 1)
        else:
            out.append({" ": 2, "\n": 3}.get(ch, 4))
    return np.array(out)


def compare_by_kind(text, bits_a, bits_b):
    """Rows (kind, share of characters, mean bits of a, of b, share where a is better) for each kind of
    character and for all. text: the held-out characters with the one before them (n + 1 characters);
    bits_a, bits_b (n,): each model's bits for each held-out character."""
    k = kinds(text)
    rows = []
    for i, name in list(enumerate(KINDS)) + [(None, "all")]:
        at = k == i if i is not None else np.ones(len(k), bool)
        if at.any():
            rows.append((name, at.mean(), bits_a[at].mean(), bits_b[at].mean(), (bits_a[at] < bits_b[at]).mean()))
    return rows


def ngram_orders(x, n_train, K, adaptive=False, max_order=MAX_ORDER):
    """{n: (N - n_train,) bits of each held-out character} of the static or the adaptive Kneser-Ney
    n-gram of every order n = 1 .. max_order."""
    return dict((adaptive_kneser_ney_bits if adaptive else kneser_ney_bits)(x, n_train, K, max_order))


def best_order(orders, n_first):
    """The order n of {n: bits} whose mean over the first n_first characters (the first half) is lowest."""
    return min(orders, key=lambda n: orders[n][:n_first].mean())


def compressed(compress, before, first, second):
    """(bits per character of first given before, of second given before and first), from the lengths
    of what compress makes of the texts joined (UTF-8)."""
    a, b, c = (t.encode("utf-8") for t in (before, first, second))
    la, lab, labc = len(compress(a)), len(compress(a + b)), len(compress(a + b + c))
    return 8 * (lab - la) / len(first), 8 * (labc - lab) / len(second)


COMPRESSORS = {"gzip": lambda b: gzip.compress(b, compresslevel=9, mtime=0),
               "bz2": lambda b: bz2.compress(b, compresslevel=9),
               "lzma": lambda b: lzma.compress(b, preset=9 | lzma.PRESET_EXTREME)}
PPMD_ORDERS = (4, 6, 8, 12, 16)     # above 16 its bits do not change on the default corpus
PPMD_MEMORY = 256 << 20


def ppmd_bits(before, first, second):
    """(PPMd's order chosen on the first half, its bits per character of the second half): variant I of
    the pyppmd package, the strongest adaptive compressor of a well-kept library."""
    import pyppmd
    found = {order: compressed(lambda t: pyppmd.compress(t, max_order=order, mem_size=PPMD_MEMORY),
                               before, first, second) for order in PPMD_ORDERS}
    order = min(found, key=lambda o: found[o][0])
    return order, found[order][1]


def yardsticks(corpus, val_fraction=0.1, max_order=MAX_ORDER):
    """Every yardstick's bits per character on the second half of corpus's held-out part (as the trainer
    splits it), by lib/evaluate.py's protocol: each has read the training part and the first half before
    the characters it scores, and an order is chosen on the first half. "static": from the counts of the
    training part alone; "adaptive": learning from everything before each character (the n-gram's counts
    grow; PPMd and the compressors adapt by construction). "first_half": the static n-grams on the first
    half, which validation reads (the training curves' yardsticks). "ngram_bits": the bits of each held-out
    character (len(held),) of the best static and the best adaptive n-gram, for lib/evaluate.py's mixtures
    (arrays: left out of the JSON)."""
    from lib.config import Config
    from lib.data import held_out
    n_val = held_out(corpus.n_chars, Config(val_fraction=val_fraction))
    x, K, n_train = corpus.data, corpus.vocab.K, corpus.n_chars - n_val
    limits.check_memory(max(ADAPTIVE_BYTES_PER_CHAR * corpus.n_chars, LZMA_BYTES + 4 * corpus.n_chars),
                        f"Counting n-grams of up to {max_order} characters in {corpus.n_chars:,} characters, "
                        f"then compressing them", "use a shorter text.")
    try:
        check_counts(x, n_train, max_order)
    except TooShort as err:
        raise TooShort(f"{corpus.path} {err}") from None
    if n_val < 4:
        raise ValueError(f"val_fraction = {val_fraction} holds out {n_val} character(s) of {corpus.n_chars:,}; "
                         "the yardsticks need 4 or more, two in each half.")
    first, second = halves(np.arange(n_val))
    half = len(first)
    seconds, static, adaptive, first_half, best, per_char = {}, {"uniform": math.log2(K)}, {}, {}, {}, {}
    t0 = time.perf_counter()
    freq = np.bincount(x[:n_train], minlength=K) + 1.0
    static["unigram"] = float(-np.mean(np.log2(freq[x[n_train + half:]] / freq.sum())))
    for kind, table in (("static", static), ("adaptive", adaptive)):
        orders = ngram_orders(x, n_train, K, kind == "adaptive", max_order)
        best[kind] = f"ngram-{best_order(orders, half)}"
        per_char[kind] = orders[best_order(orders, half)]
        table.update({f"ngram-{n}": float(b[half:].mean()) for n, b in orders.items()})
        if kind == "static":
            first_half.update({f"ngram-{n}": float(b[:half].mean()) for n, b in orders.items()})
        seconds[f"ngram_{kind}"] = time.perf_counter() - t0
        t0 = time.perf_counter()
    text = corpus.text
    parts = text[:n_train], text[n_train:n_train + half], text[n_train + half:]
    best["ppmd_order"], adaptive["ppmd"] = ppmd_bits(*parts)
    adaptive.update({name: compressed(compress, *parts)[1] for name, compress in COMPRESSORS.items()})
    seconds["compressors"] = time.perf_counter() - t0
    return {"static": static, "adaptive": adaptive, "first_half": first_half, "best": best,
            "corpus": str(corpus.path), "sha256": corpus.sha256, "K": K, "n_chars": corpus.n_chars,
            "n_train_chars": n_train, "n_val_chars": n_val, "n_scored_chars": len(second),
            "val_fraction": val_fraction, "seconds": seconds, "ngram_bits": per_char}


def main(argv=None):
    from lib.util import files
    from lib.util.cli import Parser, first_paragraph
    p = Parser(prog="python -m lib.baselines", description=first_paragraph(__doc__))
    p.add_argument("--data", help="corpus text file (default: data/goblet_book.txt, else the default corpus)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="the held-out tail (default 0.1)")
    p.add_argument("--json", help="write the results to this file")
    args = p.parse_args(argv)
    if not 0 < args.val_fraction < 0.5:
        raise ValueError(f"--val-fraction must be in (0, 0.5), got {args.val_fraction}.")
    corpus = load_corpus(args.data)
    if args.json:
        files.output_file(args.json, "--json", inputs=[("the text", corpus.path)])   # before the work
    result = yardsticks(corpus, args.val_fraction)
    for kind in ("static", "adaptive"):
        for name, b in result[kind].items():
            print(f"{kind:<9} {name:<9} {b:6.3f} bits per character")
    print(f"(the last {result['n_scored_chars']:,} of {result['n_val_chars']:,} held-out characters scored; best "
          f"orders chosen on the first half: {result['best']['static']} static, {result['best']['adaptive']} "
          f"adaptive; n-grams in {result['seconds']['ngram_static'] + result['seconds']['ngram_adaptive']:.1f} s, "
          f"PPMd and the compressors in {result['seconds']['compressors']:.1f} s)")
    if args.json:
        files.write_text(args.json, json.dumps({k: v for k, v in result.items() if k != "ngram_bits"}, indent=2) + "\n")


if __name__ == "__main__":
    from lib.util import cli
    cli.command(main)
