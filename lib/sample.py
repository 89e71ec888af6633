"""Drawing text from a trained network, one character at a time; and the command that prints a passage:

    python -m lib.sample --checkpoint DIR/checkpoint.npz --n 1000 --temperature T --top-p P --prime TEXT --seed S

The command samples from the best model (the lowest validation loss when the run had validation, else the
lowest smooth loss) unless --last is given, starting from a zero hidden state; the priming text (default:
a newline) is fed through first and printed before the passage.

Everything here works for any cell (lib/model/cells.py): each provides step(P, h, x) -> (h, o) for one
character. Scoring a text, and reading one first while learning (--adapt), are lib/reading.py's.
"""
import sys

import numpy as np

from lib import reading
from lib.config import COMMAND, require
from lib.data import unknown_characters
from lib.model import cells
from lib.reading import MAX_ADAPT_SECONDS
from lib.util import limits
from lib.util.cli import Abandoned

ADAPT_SECONDS = 10.0     # --adapt's reading time when --adapt-seconds is not given


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


def check_settings(temperature, top_p, name=str):
    """SettingError naming the setting (as name(setting) gives it: lib.config's Naming) unless temperature is
    a positive finite number and top_p in (0, 1]."""
    require("positive", temperature, name("temperature"))
    require("(0, 1]", top_p, name("top_p"))


def sample(cell, P, h0, x0, n, rng, temperature=1.0, top_p=1.0, prime=(), stopping=None):
    """Generate n character indices with cell's step function.

    P: the cell's Params. h0: (S,) starting hidden state. x0: index of the first input character.
    prime: indices fed through the network before sampling; the last one then serves as x0.
    Each draw takes the first index whose cumulative probability exceeds a uniform number from rng.
    stopping: None, or a function called every 1000 characters; when it returns true, Abandoned is raised.
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
        if stopping is not None and i % 1000 == 999 and stopping():
            raise Abandoned
        h, o = cell.step(P, h, x)
        cp = np.cumsum(next_char_probs(o, temperature, top_p))
        x = min(int(np.searchsorted(cp, rng.random() * cp[-1], side="right")), len(cp) - 1)
        out[i] = x
    return out, h


def default_prime(vocab):
    """The priming text when none is given: a line break, or (a text without one) its first character."""
    return "\n" if "\n" in vocab.chars else vocab.chars[0]


def passage(cfg, vocab, theta, n, seed=0, temperature=1.0, top_p=1.0, prime=None):
    """A string of n characters sampled after prime (None: default_prime), from a zero hidden state.

    theta: (n_params,) flat parameters. Raises ValueError naming the setting for a bad n, seed,
    temperature or top_p, or a prime that is empty, too long or holds characters outside the vocabulary.
    """
    prime = default_prime(vocab) if prime is None else prime
    check(vocab, n, seed, temperature, top_p, prime)
    prime_idx = vocab.encode(prime)
    cell = cells.of(cfg)
    P = cell.views(theta, vocab.K, cfg.m)
    idx, _ = sample(cell, P, np.zeros(cell.state_size(cfg.m), theta.dtype), prime_idx[-1], n,
                    np.random.default_rng(seed), temperature, top_p, prime=prime_idx)
    return vocab.decode(idx)


def check(vocab, n, seed, temperature, top_p, prime, name=str):
    """ValueError naming the first bad setting as name(setting) gives it (lib.config.COMMAND: as options)."""
    require("count", n, name("n"))
    limits.check_at_most(n, name("n"), limits.MAX_SAMPLE)
    require("seed", seed, name("seed"))
    check_settings(temperature, top_p, name)
    if not isinstance(prime, str) or not prime:
        raise ValueError(f"The priming text ({name('prime')}) must hold at least one character.")
    limits.check_at_most(len(prime), f"The priming text's length ({name('prime')})", limits.MAX_PRIME)
    missing = vocab.missing(prime)
    if missing:
        raise ValueError(f"The priming text cannot be used: {unknown_characters(missing)}")


def sample_line(sample):
    """A sample drawn while training as text: a line with its update and smooth loss, then the sample."""
    loss = "before training" if sample["smooth_loss"] is None else f"smooth loss {sample['smooth_loss']:.2f}"
    return f"--- update {sample['step']:,} ({loss})\n{sample['text']}"


def main(argv=None):
    from lib.training.checkpoint import in_folder, load_state
    from lib.util.cli import Parser
    from lib.config import arg_type

    p = Parser(prog="python -m lib.sample", description="Print a passage from a trained model.")
    p.add_argument("--checkpoint", required=True, help="a run's checkpoint.npz (or its folder)")
    p.add_argument("--n", type=int, default=1000, help=f"characters to generate (1 to {limits.MAX_SAMPLE:,})")
    p.add_argument("--temperature", type=float, default=1.0, help="> 0; below 1 is more conservative")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus: in (0, 1]; 1 samples from all")
    p.add_argument("--prime", default=None, help="text fed through the network first (default: a line break, or "
                                                 "the text's first character where it has none)")
    p.add_argument("--seed", type=int, default=0, help="a non-negative integer")
    p.add_argument("--last", action="store_true", help="use the last parameters, not the best")
    p.add_argument("--adapt", metavar="FILE", help="a text the network reads first, learning from it (a copy of "
                                                  "its weights: the run is not changed), before it writes")
    p.add_argument("--adapt-seconds", type=arg_type("positive", float), default=None,
                   help=f"with --adapt: how long it reads the text, again and again (default {ADAPT_SECONDS:g}; at "
                        f"most {MAX_ADAPT_SECONDS})")
    args = p.parse_args(argv)
    if args.adapt_seconds is not None and not args.adapt:
        raise ValueError("--adapt-seconds acts only with --adapt FILE (the text the network reads first): leave it "
                         "out, or give that too.")
    seconds = ADAPT_SECONDS if args.adapt_seconds is None else args.adapt_seconds
    path = in_folder(args.checkpoint)
    cfg, vocab, state, _ = load_state(path)
    prime = default_prime(vocab) if args.prime is None else args.prime
    check(vocab, args.n, args.seed, args.temperature, args.top_p, prime, COMMAND)
    theta = state.theta if args.last else state.best_theta
    if not np.isfinite(theta).all():
        raise ValueError(f"{path} holds last parameters that are not finite (the run diverged); leave out --last.")
    if args.adapt:
        if seconds > MAX_ADAPT_SECONDS:
            raise ValueError(f"--adapt-seconds {seconds:g} is more than {MAX_ADAPT_SECONDS} s; read for less.")
        text = reading.adaptation_text(args.adapt, vocab)
        theta, before, after, read = reading.read_first(cfg, vocab, state, theta, text, seconds)
        print(f"read {args.adapt} ({len(text):,} characters) for {seconds:g} s, {read:,} characters in "
              f"all: {before:.3f} -> {after:.3f} bits per character on it", file=sys.stderr, flush=True)
    print(prime + passage(cfg, vocab, theta, args.n, args.seed, args.temperature, args.top_p, prime))

if __name__ == "__main__":
    from lib.util import cli
    cli.command(main)
