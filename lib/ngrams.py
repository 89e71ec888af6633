"""Interpolated modified Kneser-Ney n-grams of every order up to MAX_ORDER, static (the training part's
counts) and adaptive (counts that grow with the held-out text read), in bits per held-out character.

The n-gram counting is vectorised: every n-gram of the text gets a dense integer id, order by order, from
the id of its first n - 1 characters and its last character (the rank of the pair among the distinct
pairs), so that counts, continuation counts and the statistics of each context are np.bincount calls, not
a loop per character. One order is counted at a time, with 4-byte ids and counts, the static and the
adaptive model in one pass (the adaptive one as the static one plus what the held-out text before each
character adds, so that its work grows with the held-out part alone): 41 bytes a character at the peak for
all 16 orders of both (tracemalloc, the default corpus, 7 December; 67 for the static model alone and 122
for the adaptive one, counted apart, before).
"""
import time

import numpy as np

from lib.util import limits

MAX_ORDER = 16       # formulaic texts go on gaining up to here (the King James Bible: 1.570 bits at 8, 1.543 at 14)
BYTES_PER_CHAR, BYTES_PER_HELD = 30, 150   # the n-grams' memory: per character, and more per held-out one
                                           # (measured 41 a character with a tenth held out, 90 with 45%)


def id_type(N, K):
    """The smallest integer type that holds every n-gram id and (id, character) key of a text of N
    characters over K: int32 up to about 2**31 / K characters, int64 beyond."""
    return np.int32 if (N + 1) * K < 2 ** 31 else np.int64


def next_ids(prev, x, n, K):
    """(N,) the dense ids of the n-grams ending at each position (-1 where fewer than n characters
    precede), from prev (N,), those of order n - 1: the rank of the pair (id of the first n - 1
    characters, last character) among the distinct pairs. Equal n-grams get equal ids.

    With 4-byte ids each key and its position are packed into one 8-byte word and sorted in place, so that
    the sort needs no index array beside it: 17 bytes a character at the peak, besides prev."""
    key = prev[n - 2:-1] * prev.dtype.type(K) + x[n - 1:]
    out = np.full(len(x), -1, dtype=prev.dtype)
    if prev.dtype != np.int32:                              # keys too wide to pack: an index array instead
        order = np.argsort(key)
        key = key[order]
        new = np.empty(len(key), dtype=bool)
        new[0], new[1:] = True, key[1:] != key[:-1]
        del key
        out[n - 1:][order] = np.cumsum(new, dtype=prev.dtype) - 1
        return out
    packed = key.astype(np.int64) << 32
    del key
    packed |= np.arange(n - 1, len(x), dtype=np.int64)
    packed.sort()
    words = packed.view(np.int32)                           # little-endian: (position, key) in each word
    keys, where = (words[1::2], words[0::2]) if np.little_endian else (words[0::2], words[1::2])
    new = np.empty(len(packed), dtype=bool)
    new[0], new[1:] = True, keys[1:] != keys[:-1]
    ranks = np.cumsum(new, dtype=np.int32)
    del new
    ranks -= 1
    _scatter(out, where, ranks)
    return out


def _scatter(target, at, values, chunk=1 << 20):
    """target[at] = values, a chunk at a time (NumPy widens an index array to 8 bytes a position)."""
    for s in range(0, len(at), chunk):
        target[at[s:s + chunk]] = values[s:s + chunk] if np.ndim(values) else values


def _count(ids, n_ids, chunk=1 << 20):
    """(n_ids,) int32: how often each id occurs in ids, a chunk at a time."""
    counts = np.zeros(n_ids, dtype=np.int32)
    for s in range(0, len(ids), chunk):
        np.add.at(counts, ids[s:s + chunk], 1)
    return counts


def discounts(counts):
    """(D1, D2, D3+) from the counts of counts n_k of a level's counts (Chen and Goodman's estimates)."""
    n = [np.count_nonzero(counts == k) for k in (1, 2, 3, 4)]
    if min(n) == 0:
        return 0.5, 1.0, 1.5                                # too few counts to estimate: moderate values
    Y = n[0] / (n[0] + 2 * n[1])
    D = (1 - 2 * Y * n[1] / n[0], 2 - 3 * Y * n[2] / n[1], 3 - 4 * Y * n[3] / n[2])
    return tuple(float(np.clip(d, 0.0, k - 1e-6)) for d, k in zip(D, (1, 2, 3)))


def kneser_ney(x, n_train, K, max_order=MAX_ORDER):
    """{n: bits per character of the held-out part x[n_train:]} for interpolated modified Kneser-Ney of
    every order n = 1 .. max_order, trained on x[:n_train]. x: (N,) indices of the whole text."""
    return {n: float(np.mean(bits)) for n, bits in kneser_ney_bits(x, n_train, K, max_order)}


class TooShort(ValueError):
    """Too little text to count n-grams in; the message goes on from the text's name."""


def ngram_memory(n_chars, n_held, K=2):
    """The most memory ngram_bits takes for a text of n_chars over K characters with n_held held out (tests
    hold it there); twice that where the ids need 8 bytes (beyond about 2**31 / K characters)."""
    wide = 2 if id_type(n_chars, K) == np.int64 else 1
    return wide * (BYTES_PER_CHAR * n_chars + BYTES_PER_HELD * n_held)


def check_counts(x, n_train, max_order, K=2):
    """TooShort unless the training part x[:n_train] is longer than max_order and something is held out;
    TooLarge when counting x would need more memory than this machine has."""
    limits.check_memory(ngram_memory(len(x), len(x) - n_train, K), f"Counting n-grams of up to {max_order} "
                        f"characters in {len(x):,} characters", "use a shorter text.")
    if n_train <= max_order or n_train >= len(x):
        raise TooShort(f"leaves {n_train} character(s) to count n-grams of up to {max_order} characters in and "
                       f"{len(x) - n_train} to score; the yardsticks need more than {max_order}, and one. Use a "
                       "longer text.")


def kneser_ney_bits(x, n_train, K, max_order=MAX_ORDER):
    """(n, (N - n_train,) the bits of each held-out character) of the static model for each order n = 1 ..
    max_order in turn: counts of the training part x[:n_train] alone."""
    for n, static, _ in ngram_bits(x, n_train, K, max_order, adaptive=False):
        yield n, static


def adaptive_kneser_ney_bits(x, n_train, K, max_order=MAX_ORDER):
    """As kneser_ney_bits, with counts that grow as the held-out text is read: each character from
    n_train on is predicted from the counts of everything before it (the training part, and the
    held-out text up to it), then counted. Raw counts, continuation counts, each context's total and
    its discount mass all grow; the discounts stay those of the training counts. The first held-out
    character gets kneser_ney_bits' probability (tests/test_evaluate.py holds the two to 1e-9)."""
    for n, _, adaptive in ngram_bits(x, n_train, K, max_order):
        yield n, adaptive


def ngram_bits(x, n_train, K, max_order=MAX_ORDER, adaptive=True, progress=None):
    """(n, static bits, adaptive bits (None unless asked)) of each held-out character, for each order n = 1
    .. max_order in turn, in one pass over the orders.

    The training part is counted once per order (the static model); the adaptive model is the static one
    plus what the held-out text before each character adds, a sum within the held-out positions of the same
    id (before()), so that its work and memory grow with the held-out part alone. Memory: the ids of two
    orders and the counts of one, in 4 bytes where they fit, and next_ids' sort: 41 bytes a character at
    the peak measured with a tenth held out, besides the text (at most ngram_memory()). progress: a
    function told each order's end."""
    check_counts(x, n_train, max_order, K)
    N = len(x)
    cur, prev = x.astype(id_type(N, K)), None
    p_st = np.full(N - n_train, 1.0 / K)                    # order 0: uniform
    p_ad = p_st.copy() if adaptive else None
    t0 = time.perf_counter()
    for n in range(1, max_order + 1):
        g = cur[n_train:].copy()                            # each held-out position's n-gram,
        h = np.zeros_like(g) if n == 1 else prev[n_train - 1:N - 1].copy()   # and its context's id
        n_ids = int(cur.max()) + 1
        context_of = np.zeros(n_ids, dtype=cur.dtype)
        if n > 1:
            _scatter(context_of, cur[n - 1:n_train], prev[n - 2:n_train - 1])
        n_ctx = 1 if n == 1 else int(prev.max()) + 1
        prev = None
        counts = _count(cur[n - 1:n_train], n_ids)
        level = Counted(counts, context_of, h, n_ctx)
        yield (n, -np.log2(level.prob(g, p_st)),
               -np.log2(level.grown(g, np.ones(len(g), dtype=bool), p_ad)) if adaptive else None)
        if progress is not None:
            progress(f"n-grams: order {n} of {max_order} counted ({time.perf_counter() - t0:.0f} s)")
        if n == max_order:
            break
        longer = next_ids(cur, x, n + 1, K)                 # for the continuation counts, and the next order
        in_train = np.zeros(int(longer.max()) + 1, dtype=bool)
        _scatter(in_train, longer[n:n_train], True)
        suffix_of = np.zeros(len(in_train), dtype=cur.dtype)    # each (n + 1)-gram's last n characters
        _scatter(suffix_of, longer[n:n_train], cur[n:n_train])
        level = Counted(_count(suffix_of[in_train], n_ids), context_of, h, n_ctx)
        del suffix_of
        p_st = level.prob(g, p_st)                          # the lower order of every higher model
        if adaptive:                                        # a count: an (n + 1)-gram seen for the first time
            new = ~in_train[longer[n_train:]] & (before(longer[n_train:]) == 0)
            p_ad = level.grown(g, new, p_ad)
        del in_train, level, counts
        prev, cur = cur, longer


class Counted:
    """One order's counts in the training part (raw, or continuation counts) for the contexts the held-out
    part meets: each n-gram id's count, the discounts (D1, D2, D3+) of all of them, and for each context h
    of a held-out position its total and discount mass gamma = D1 N1 + D2 N2 + D3 N3+ (summed in id order,
    the same bits as over every context)."""

    def __init__(self, counts, context_of, h, n_ctx):
        self.counts = counts
        self.D = discounts(counts[counts > 0])
        self.table = np.array((0.0, *self.D))               # the discount of a count 0, 1, 2, 3 or more
        needed = np.zeros(n_ctx, dtype=bool)
        needed[h] = True
        slot = np.full(n_ctx, -1, dtype=np.int32)
        wanted = np.flatnonzero(needed)
        slot[wanted] = np.arange(len(wanted), dtype=np.int32)
        del needed
        ids = np.flatnonzero((counts > 0) & (slot[context_of] >= 0))   # in id order
        at = slot[context_of[ids]]
        c = counts[ids]
        self.total = np.bincount(at, weights=c, minlength=len(wanted))
        self.gamma = np.bincount(at, weights=self.discount(c), minlength=len(wanted))
        self.h = slot[h]                                    # each held-out position's context, as a slot

    def discount(self, c):
        """The discount of each count in c: 0 for 0, then D1, D2, and D3+ for 3 or more."""
        return self.table[np.minimum(c, 3).astype(np.intp)]

    def prob(self, g, lower):
        """p(w | h) of the static model at the held-out positions with n-gram ids g, interpolated with lower."""
        c = self.counts[g]
        return self._p(c, self.total[self.h], self.gamma[self.h], lower)

    def grown(self, g, seen, lower):
        """p(w | h) at the held-out positions with the counts grown by the held-out positions before each;
        seen: where a held-out position adds a count (every position for raw counts; for continuation
        counts, the first appearance of its (n + 1)-gram)."""
        c = self.counts[g] + before(g, seen)
        grow = np.where(seen, self.discount(c + 1) - self.discount(c), 0.0)
        total = self.total[self.h] + before(self.h, seen)
        gamma = self.gamma[self.h] + before(self.h, grow)
        return self._p(c, total, gamma, lower)

    def _p(self, c, total, gamma, lower):
        with np.errstate(invalid="ignore", divide="ignore"):
            p = (np.maximum(c - self.discount(c), 0.0) + gamma * lower) / total
        return np.where(total > 0, p, lower)                # an unseen context: the lower order alone


def before(keys, weights=None):
    """(n,) for each position i, the sum of weights[j] (1 each when None) over the positions j < i with
    keys[j] == keys[i]: what has been seen of i's key before i."""
    n = len(keys)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    order = np.argsort(keys, kind="stable")                 # by key, then by position
    ks, ws = keys[order], w[order]
    start = np.ones(n, dtype=bool)
    start[1:] = ks[1:] != ks[:-1]
    cs = np.cumsum(ws)
    cs -= ws                                                # the sum before each, over the sorted order
    first = np.maximum.accumulate(np.where(start, np.arange(n), 0))   # where each one's key begins
    out = np.empty(n)
    out[order] = cs - cs[first]
    return out
