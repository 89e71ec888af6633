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

The n-grams are lib/ngrams.py's.

    python -m lib.baselines --data PATH --val-fraction 0.1 --json OUT
"""
import bz2
import gzip
import json
import lzma
import math
import sys
import time

import numpy as np

from lib.data import halves, load_corpus
from lib.ngrams import MAX_ORDER, TooShort, check_counts, ngram_bits, ngram_memory
from lib.util import limits

PROGRESS_CHARS = 2_000_000     # lib.baselines tells its progress on a text this long (or in a terminal)


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


def compressed(compress, before, first, second):
    """(bits per character of first given before, of second given before and first), from the lengths
    of what compress makes of the texts joined (UTF-8)."""
    a, b, c = (t.encode("utf-8") for t in (before, first, second))
    la, lab, labc = len(compress(a)), len(compress(a + b)), len(compress(a + b + c))
    return 8 * (lab - la) / len(first), 8 * (labc - lab) / len(second)


def lzma_dictionary(n_bytes):
    """The dictionary of lzma's strongest preset (64 MiB), no larger than the text needs: the same matches
    (every one lies within the text), in a tenth of the memory for a text of a few megabytes."""
    return min(64 << 20, max(1 << 12, n_bytes))


def lzma_memory(n_bytes):
    """What lzma's strongest preset takes for a text of n_bytes: about 10.5 times its dictionary (xz's
    documentation: 674 MiB for 64 MiB), and a margin."""
    return 11 * lzma_dictionary(n_bytes) + (16 << 20)


COMPRESSORS = {"gzip": lambda b: gzip.compress(b, compresslevel=9, mtime=0),
               "bz2": lambda b: bz2.compress(b, compresslevel=9),
               "lzma": lambda b: lzma.compress(b, filters=[{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME,
                                                            "dict_size": lzma_dictionary(len(b))}])}
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


def yardsticks(corpus, val_fraction=0.1, max_order=MAX_ORDER, progress=None):
    """Every yardstick's bits per character on the second half of corpus's held-out part (as the trainer
    splits it), by lib/evaluate.py's protocol: each has read the training part and the first half before
    the characters it scores, and an order is chosen on the first half. "static": from the counts of the
    training part alone; "adaptive": learning from everything before each character (the n-gram's counts
    grow; PPMd and the compressors adapt by construction). "first_half": the static n-grams on the first
    half, which validation reads (the training curves' yardsticks). "ngram_bits": the bits of each held-out
    character (len(held),) of the best static and the best adaptive n-gram, for lib/evaluate.py's mixtures
    (arrays: left out of the JSON). progress: a function told what is done, as it is done (the n-grams order
    by order, then each compressor)."""
    from lib.config import Config
    from lib.data import held_out
    n_val = held_out(corpus.n_chars, Config(val_fraction=val_fraction))
    x, K, n_train = corpus.data, corpus.vocab.K, corpus.n_chars - n_val
    limits.check_memory(max(ngram_memory(corpus.n_chars, n_val, K), PPMD_MEMORY + 8 * corpus.n_chars,
                            lzma_memory(4 * corpus.n_chars) + 8 * corpus.n_chars),
                        f"Counting n-grams of up to {max_order} characters in {corpus.n_chars:,} characters, "
                        f"then compressing them", "use a shorter text.")
    try:
        check_counts(x, n_train, max_order, K)
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
    chosen = {}                                             # the lowest first-half bits so far, by kind
    for n, *bits in ngram_bits(x, n_train, K, max_order, progress=progress):
        for kind, table, b in (("static", static, bits[0]), ("adaptive", adaptive, bits[1])):
            table[f"ngram-{n}"] = float(b[half:].mean())
            on_first = float(b[:half].mean())
            if kind == "static":
                first_half[f"ngram-{n}"] = on_first
            if kind not in chosen or on_first < chosen[kind]:   # the best order: chosen on the first half
                chosen[kind], best[kind], per_char[kind] = on_first, f"ngram-{n}", b
    seconds["ngrams"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    text, say = corpus.text, progress or (lambda line: None)
    parts = text[:n_train], text[n_train:n_train + half], text[n_train + half:]
    best["ppmd_order"], adaptive["ppmd"] = ppmd_bits(*parts)
    say(f"PPMd: {adaptive['ppmd']:.3f} bits per character ({time.perf_counter() - t0:.0f} s)")
    for name, compress in COMPRESSORS.items():
        adaptive[name] = compressed(compress, *parts)[1]
        say(f"{name}: {adaptive[name]:.3f} bits per character ({time.perf_counter() - t0:.0f} s)")
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
    talk = corpus.n_chars >= PROGRESS_CHARS or sys.stderr.isatty()     # work of a minute or more says how it goes
    result = yardsticks(corpus, args.val_fraction, progress=(lambda line: print(line, file=sys.stderr, flush=True))
                        if talk else None)
    for kind in ("static", "adaptive"):
        for name, b in result[kind].items():
            print(f"{kind:<9} {name:<9} {b:6.3f} bits per character")
    print(f"(the last {result['n_scored_chars']:,} of {result['n_val_chars']:,} held-out characters scored; best "
          f"orders chosen on the first half: {result['best']['static']} static, {result['best']['adaptive']} "
          f"adaptive; n-grams in {result['seconds']['ngrams']:.1f} s, "
          f"PPMd and the compressors in {result['seconds']['compressors']:.1f} s)")
    if args.json:
        files.write_text(args.json, json.dumps({k: v for k, v in result.items() if k != "ngram_bits"}, indent=2) + "\n")


if __name__ == "__main__":
    from lib.util import cli
    cli.command(main)
