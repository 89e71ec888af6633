"""Read before you write: a trained network scored on held-out text as it is, and while it keeps learning
from what it reads (dynamic evaluation), alone and mixed with an n-gram, against yardsticks that adapt too.

    python -m lib.evaluate --run DIR [--data TEXT] [--json OUT]

prints a table in bits per character and writes it to OUT (default DIR/evaluation.json).

The protocol. The run's held-out part (the last val_fraction of the text) is split in two halves. The
settings that belong to evaluation are chosen on the first half: dynamic evaluation's step size, decay
and segment length, each mixture's weight, the n-gram's order, PPMd's order. Every figure reported scores
the second half. Every contender reads the same text before the characters it scores (the training part,
then the first half) and predicts each character from what came before it only:

    static             the run's best model, its weights fixed; from the state training reached (where the
                       run's own validation starts) it reads WARMUP training characters, then the first
                       half, then scores the second
    dynamic            the same network, learning while it reads (Krause et al. 2018, "Dynamic Evaluation
                       of Neural Sequence Models"): the held-out text in segments of L characters; each
                       segment is scored, then one gradient step is taken on it,
                           theta -= eta g / (sqrt(ms) + 1e-8);  theta += decay (theta_0 - theta)
                       with g the segment's mean gradient (clipped as in training) and ms the mean square
                       of the gradients training saw (Adam's second moment, or AdaGrad's sum / updates)
    mixture_static     w p_static + (1 - w) p_ngram, the static n-gram, w chosen on the first half
    mixture_dynamic    w p_dynamic + (1 - w) p_ngram_adaptive
    ngram              interpolated modified Kneser-Ney (lib/ngrams.py), counts of the training part
    ngram_adaptive     the same, its counts growing with everything read before each character
    ppmd               PPMd (variant I, the pyppmd package), given the training part and the first half:
                       8 (len C(all before + second half) - len C(all before)) / characters
    lzma               the same with lzma at its strongest preset

The run's best model was chosen during training on the first half alone (validation reads nothing
else), so that nothing reported was chosen on the characters it scores.
"""
import json
import math
import time
from pathlib import Path

import numpy as np

from lib import baselines
from lib.model import cells, kernels
from lib.data import halves, load_corpus, split
from lib.reading import dynamic_bits, mean_square, validation_losses, zero_state

LN2 = math.log(2)
ETAS = (3e-5, 1e-4, 1.5e-4)         # dynamic evaluation's step sizes tried on the first half (3e-4 diverged
DECAYS = (0.0, 1e-3)                # on the headline network), its decays towards the trained weights
SEGMENTS = (20, 50)                 # and its segment lengths
TUNE_CHARS = 20_000                 # the settings are chosen on the first half's first characters (at most)
WEIGHTS = np.linspace(0.0, 1.0, 41)  # a mixture's weights tried
PROTOCOL = ("held-out part split in two halves; settings chosen on the first; every figure scores the second, "
            "each contender having read the training part and the first half, each character predicted "
            "before it is learned from")


class EvaluationError(ValueError):
    """A run or a text that cannot be evaluated; the message says why and what to do."""


# --- the network, fixed or learning ---------------------------------------------------------------

def start_state(run):
    """(1, S): the state training reached, the first stream's, from which its validation reads (a network
    trained with its state carried seldom starts from zero, and can read badly from there)."""
    return run.state.hprev[:1].astype(run.state.best_theta.dtype)


def static_bits(cell, cfg, P, train_part, held, h0=None):
    """(len(held),) bits of each held-out character, the weights fixed, read as validation reads them:
    from h0 (1, S) (None: a zero state), the last WARMUP training characters, then the held-out part."""
    h0 = zero_state(cell, cfg, P.V.dtype) if h0 is None else h0
    return validation_losses(cell, P, train_part, held, h0) / LN2


def tune_dynamic(cell, cfg, theta0, ms, train_part, first, K, log, h0=None):
    """The (eta, decay, segment) of dynamic evaluation with the lowest bits on `first` (the first half's
    first characters), and the bits of each setting tried."""
    part, tried = first, {}
    for segment in SEGMENTS:
        for decay in DECAYS:
            for eta in ETAS:
                bits = float(np.mean(dynamic_bits(cell, cfg, theta0, ms, train_part, part, eta, decay, segment, K,
                                                  h0)))
                tried[(eta, decay, segment)] = bits
                log(f"  dynamic eta {eta:g}, decay {decay:g}, segment {segment}: {bits:.4f} bits/char on "
                    f"{len(part):,} characters of the first half")
    return min(tried, key=tried.get), tried


# --- mixtures and yardsticks --------------------------------------------------------------------

def mix_weight(bits_a, bits_b):
    """The weight w of WEIGHTS for which w p_a + (1 - w) p_b has the lowest mean bits (over the given
    characters: those of the first half)."""
    pa, pb = 2.0 ** -bits_a, 2.0 ** -bits_b
    means = [float(np.mean(-np.log2(w * pa + (1 - w) * pb))) for w in WEIGHTS]
    return float(WEIGHTS[int(np.argmin(means))])


def mixed(bits_a, bits_b, w):
    return -np.log2(w * 2.0 ** -bits_a + (1 - w) * 2.0 ** -bits_b)


def by_kind(corpus, yard, net):
    """lib/baselines.py's compare_by_kind of the best static n-gram (yard: yardsticks()) and a network fixed
    (net: network_bits()), on the second half of the held-out part: [(kind, share, n-gram bits, network
    bits, share where the n-gram is better)]."""
    n_train, half = yard["n_train_chars"], yard["n_val_chars"] - yard["n_scored_chars"]
    text = corpus.text[n_train + half - 1:]         # each character with the one before it
    return baselines.compare_by_kind(text, yard["ngram_bits"]["static"][half:], net["static"][half:])


def helped_passage(corpus, cfg, net, n_chars):
    """(text, gain, word): where_reading_helped's window of n_chars in the second half of the held-out part,
    its characters and the bits per character reading saved on each (net: network_bits of a run of cfg)."""
    gain = net["static"] - net["dynamic"]
    start, word = where_reading_helped(corpus, cfg, gain, n_chars)
    at = len(split(corpus.data, cfg)[0]) + start
    return corpus.text[at:at + n_chars], gain[start:start + n_chars], word


def comparable(folder, corpus, val_fraction):
    """The complete run in folder when it was trained on corpus, holds out val_fraction of it and validated
    on the first half of that only (this protocol), so that its figures stand beside the others'; else None."""
    from lib.training.runs import load_runs
    run = load_runs({"run": folder}, corpus).get("run")
    if run is None or run.cfg.val_fraction != val_fraction or "n_validated_chars" not in run.summary:
        return None
    return run


def where_reading_helped(corpus, cfg, gain, n_chars=320):
    """(start, word): a window of n_chars in the second half of the held-out part (start: its offset in
    the held-out part) around the later appearance of a word the training part never has, the one over
    which reading helped most (the sum of gain over its letters); word is None where the second half has
    no such word, and the window is the one with the largest total gain. gain: (len(held),) the bits per
    character saved by reading while learning (static - dynamic)."""
    import re
    n_train = len(split(corpus.data, cfg)[0])
    train_text, held_text = corpus.text[:n_train], corpus.text[n_train:]
    half, known, seen = len(held_text) // 2, set(re.findall(r"[A-Za-z]+", train_text)), set()
    found = None
    for m in re.finditer(r"[A-Za-z]{4,}", held_text):
        word = m.group()
        if word in known:
            continue
        if word in seen and m.start() >= half:
            g = float(gain[m.start():m.end()].sum())
            if found is None or g > found[0]:
                found = (g, m.start(), word)
        seen.add(word)
    last = len(held_text) - n_chars
    if found is not None:
        return min(max(found[1] - n_chars // 3, half), max(last, half)), found[2]
    sums = np.convolve(gain[half:], np.ones(min(n_chars, len(gain) - half)), mode="valid")
    return half + int(np.argmax(sums)), None


# --- the whole table ------------------------------------------------------------------------------

def network_bits(run, corpus, tune_chars=TUNE_CHARS, log=None):
    """{"static", "dynamic": (len(held),) bits of each held-out character, "setting": dynamic evaluation's
    (eta, decay, segment) chosen on the first half's first tune_chars characters, "tried": {setting: bits},
    "seconds": of dynamic evaluation over the held-out part} for a run (lib.training.runs.Run) on its corpus,
    each read from the state training reached (start_state)."""
    cfg, state = run.cfg, run.state
    train_part, held = split(corpus.data, cfg)
    first, _ = halves(held)
    K, cell, theta0 = corpus.vocab.K, cells.of(cfg), state.best_theta
    P = cell.views(theta0, K, cfg.m)
    kernels.keep_freed_memory()
    h0 = start_state(run)
    static = static_bits(cell, cfg, P, train_part, held, h0)
    ms = mean_square(cfg, state)
    setting, tried = tune_dynamic(cell, cfg, theta0, ms, train_part, first[:tune_chars], K, log or (lambda _: None),
                                  h0)
    t0 = time.perf_counter()
    dynamic = dynamic_bits(cell, cfg, theta0, ms, train_part, held, *setting, K, h0)
    return {"static": static, "dynamic": dynamic, "setting": setting, "tried": tried,
            "seconds": time.perf_counter() - t0}


def evaluate(run_dir, data=None, log=print, run=None, corpus=None):
    """The table of the module's docstring for the run in run_dir (run: that Run, when it is loaded
    already), on its text (data: a path, or None for the text it was trained on when that is the default
    corpus; corpus: that text, when it is read already). Returns the dict of evaluation.json."""
    from lib.training.runs import load_run
    run = run or load_run(run_dir)
    cfg = run.cfg
    if cfg.val_fraction == 0:
        raise EvaluationError(f"The run in {run_dir} has no held-out part (val_fraction 0): there is nothing to "
                              "score that it was not trained on. Train with --val-fraction 0.1.")
    corpus = corpus or load_corpus(data)
    if corpus.sha256 != run.summary["corpus_sha256"]:
        raise EvaluationError(f"{corpus.path} is not the text the run in {run_dir} was trained on (another "
                              "sha256); give that text with --data.")
    train_part, held = split(corpus.data, cfg)
    first, second = halves(held)
    half = len(first)
    if half < 100:
        raise EvaluationError(f"The held-out part has {len(held):,} characters; each half needs 100 or more. "
                              "Use a longer text or a larger val_fraction.")
    log(f"{run_dir}: {cfg.cell}, {cfg.layers} layer(s), m = {cfg.m}; held-out {len(held):,} characters: "
        f"settings chosen on the first {half:,}, the last {len(second):,} scored")
    net = network_bits(run, corpus, log=log)
    static, dynamic = net["static"], net["dynamic"]
    (eta, decay, segment), tried, dynamic_seconds = net["setting"], net["tried"], net["seconds"]
    yard = baselines.yardsticks(corpus, cfg.val_fraction)      # the n-grams, PPMd and lzma, by the same protocol
    ngram, ngram_adaptive = yard["ngram_bits"]["static"], yard["ngram_bits"]["adaptive"]
    order, order_adaptive = (int(yard["best"][kind].split("-")[1]) for kind in ("static", "adaptive"))
    w_static = mix_weight(static[:half], ngram[:half])
    w_dynamic = mix_weight(dynamic[:half], ngram_adaptive[:half])
    ppmd_order, ppmd, lz = yard["best"]["ppmd_order"], yard["adaptive"]["ppmd"], yard["adaptive"]["lzma"]
    scored = slice(half, None)
    bits = {"static": static[scored].mean(), "dynamic": dynamic[scored].mean(),
            "mixture_static": mixed(static, ngram, w_static)[scored].mean(),
            "mixture_dynamic": mixed(dynamic, ngram_adaptive, w_dynamic)[scored].mean(),
            "ngram": ngram[scored].mean(), "ngram_adaptive": ngram_adaptive[scored].mean(), "ppmd": ppmd,
            "lzma": lz}
    return {"bits_per_char": {k: round(float(v), 6) for k, v in bits.items()},
            "chars_scored": len(second), "dynamic_seconds": round(dynamic_seconds, 1), "protocol": PROTOCOL,
            "static_whole_held_out": round(float(static.mean()), 6),
            "static_first_half": round(float(static[:half].mean()), 6),
            "run_validation_first_half": run.summary.get("best_val_loss_bits"),
            "best_update": run.summary["best_step"], "updates": run.summary["steps"],
            "settings": {"dynamic": {"eta": eta, "decay": decay, "segment": segment}, "mixture_static": w_static,
                         "mixture_dynamic": w_dynamic, "ngram_order": order, "ngram_adaptive_order": order_adaptive,
                         "ppmd_order": ppmd_order},
            "dynamic_tried": [{"eta": e, "decay": d, "segment": s, "bits_per_char": round(b, 6)}
                              for (e, d, s), b in tried.items()],
            "run": str(run_dir), "corpus": str(corpus.path), "sha256": corpus.sha256, "chars_first_half": half,
            "dynamic_chars": len(held)}


def agreement(result):
    """The line that holds the static figure to the run's own validation, on the same characters (the first
    half): equal when the best model is the last one; otherwise the best model reads from the state the
    last weights reached, where its validation read from the state of its own update."""
    static, own = result["static_first_half"], result["run_validation_first_half"]
    line = f"static on the first half {static:.3f}, the run's own best validation {own:.3f} bits per character"
    if result["best_update"] == result["updates"]:
        return line + " (the same characters, weights and start)"
    return (line + f" (its best model is that of update {result['best_update']:,} of {result['updates']:,}, read "
            "here from the state training reached at the end, not the one it had then)")


def main(argv=None):
    from lib.util import files
    from lib.util.cli import Parser, first_paragraph
    p = Parser(prog="python -m lib.evaluate", description=first_paragraph(__doc__))
    p.add_argument("--run", required=True, help="a run's folder (trained with a held-out part)")
    p.add_argument("--data", help="the text it was trained on (default: data/goblet_book.txt, else the default "
                                  "corpus)")
    p.add_argument("--json", help="where the table goes (default: RUN/evaluation.json)")
    args = p.parse_args(argv)
    from lib.training.runs import load_run
    hint = f"train one there with a held-out part first (python -m lib.train --val-fraction 0.1 --out {args.run})"
    run = load_run(args.run, hint)          # first: a folder that holds no run is not made to hold evaluation.json
    out = Path(args.json or Path(args.run) / "evaluation.json")
    run_files = [(f"the run's {name}", Path(args.run) / name) for name in ("checkpoint.npz", "summary.json")]
    corpus = load_corpus(args.data)
    files.output_file(out, "--json", inputs=run_files + [("the text", corpus.path)])
    result = evaluate(args.run, run=run, corpus=corpus)
    for name, b in result["bits_per_char"].items():
        print(f"{name:<16} {b:6.3f} bits per character")
    print(f"({result['chars_scored']:,} characters scored, the second half of the held-out part; dynamic "
          f"evaluation of all {result['dynamic_chars']:,} held-out characters in {result['dynamic_seconds']:.0f} s)")
    print(agreement(result))
    files.write_text(out, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    from lib.util import cli
    cli.command(main)
