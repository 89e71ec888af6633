"""Drawing text from a trained network, one character at a time, and scoring a text with it; and the
command that prints a passage:

    python -m lib.sample --checkpoint DIR/checkpoint.npz --n 1000 --temperature T --top-p P --prime TEXT --seed S

The command samples from the best model (the lowest validation loss when the run had validation, else the
lowest smooth loss) unless --last is given, starting from a zero hidden state; the priming text (default:
a newline) is fed through first and printed before the passage.

Everything here works for any cell (lib/model/cells.py): each provides step(P, h, x) -> (h, o) for one
character and scores(P, X, h0) -> (O, hT) for a chunk.
"""
import math
import sys
import time
from pathlib import Path

import numpy as np

from lib import optim
from lib.model import cells
from lib.util import limits
from lib.config import COMMAND, require
from lib.data import unknown_characters
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


def check_settings(temperature, top_p, name=str):
    """SettingError naming the setting (as name(setting) gives it: lib.config's Naming) unless temperature is
    a positive finite number and top_p in (0, 1]."""
    require("positive", temperature, name("temperature"))
    require("(0, 1]", top_p, name("top_p"))


class Abandoned(Exception):
    """A sample or a scoring given up half-way because training was asked to stop (see lib/training/loop.py)."""


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


def step_losses(cell, P, X, Y, h0):
    """The cross-entropy -log p_t[y_t] of each step and sequence (T B,), no gradients.

    X, Y: (T,) or (T, B); h0: (S,) or (B, S).
    """
    X, Y = np.asarray(X), np.asarray(Y)
    if X.ndim == 1:
        X, Y, h0 = X[:, None], Y[:, None], h0[None, :]
    O, _ = cell.scores(P, X, h0)
    return probs_and_losses(O, Y.reshape(-1))[1]


def _chunk_losses(cell, P, data, h0, chunk, stopping=None):
    """(losses (n,), h (1, S)) for each chunk of predicting data[1:] from data[:-1], the state carried;
    Abandoned between chunks when stopping() is true."""
    h = h0
    for s in range(0, len(data) - 1, chunk):
        if stopping is not None and stopping():
            raise Abandoned
        X = data[s:min(s + chunk, len(data) - 1)][:, None]
        Y = data[s + 1:s + 1 + len(X)]
        O, h = cell.scores(P, X, h)
        yield probs_and_losses(O, Y)[1], h


def text_loss(cell, P, data, h0, chunk=1000, stopping=None):
    """Read a text in order and score it: the mean cross-entropy per character (nats) of predicting
    data[1:] from data[:-1], the hidden state carried through from h0 (1, S).
    data: (N,) indices. Returns (loss, h (1, S) the hidden state after the last input)."""
    h, total = h0, 0.0
    for losses, h in _chunk_losses(cell, P, data, h0, chunk, stopping):
        total += losses.sum()
    return float(total / (len(data) - 1)), h


def text_losses(cell, P, data, h0, chunk=1000):
    """The cross-entropy (nats) of each prediction of data[1:] from data[:-1] (N - 1,), read as text_loss."""
    return np.concatenate([losses for losses, _ in _chunk_losses(cell, P, data, h0, chunk)])


WARMUP = 1000     # training characters read (not scored) before the held-out text


def validation_loss(cell, P, train_data, val_data, h0, warmup=WARMUP, stopping=None):
    """The loss per character (nats) of the held-out text, read in order after the `warmup` training
    characters before it, from the hidden state h0 (1, S) that training has reached.

    Why not from a zero state: a network trained with its hidden state carried only ever starts from
    zero at the beginning of an epoch, and from zero in the middle of a text it can fall into a state
    where it predicts rare characters with confidence for thousands of characters.
    """
    h = warmed_up(cell, P, train_data, h0, warmup)
    loss, _ = text_loss(cell, P, np.concatenate([train_data[-1:], val_data]), h, stopping=stopping)
    return loss


def validation_losses(cell, P, train_data, val_data, h0, warmup=WARMUP):
    """The loss (nats) of each held-out character (len(val_data),), read as validation_loss reads them."""
    h = warmed_up(cell, P, train_data, h0, warmup)
    return text_losses(cell, P, np.concatenate([train_data[-1:], val_data]), h)


def warmed_up(cell, P, train_data, h0, warmup):
    """The state (1, S) after reading the last `warmup` training characters from h0."""
    _, h = text_loss(cell, P, train_data[-(warmup + 1):], h0)
    return h


# --- reading while learning (dynamic evaluation; lib/evaluate.py, and --adapt below) ----------------------

def zero_state(cell, cfg, dtype):
    return np.zeros((1, cell.state_size(cfg.m)), dtype=dtype)


def mean_square(cfg, state):
    """The mean square of the gradients that training saw, per parameter (n,): Adam's second moment, or
    AdaGrad's sum of squares over the updates."""
    if cfg.optimizer == "adam":
        return state.opt["v"]
    return state.opt["mem"] / max(state.step, 1)


class LearningReader:
    """The network reading a text while it learns from it (dynamic evaluation, Krause et al. 2018): its
    own weights, a copy of theta0 (the run's stay as saved), and the state h (1, S) it carries. Each step is
        theta -= eta g / (sqrt(ms) + 1e-8);  theta += decay (theta0 - theta)
    with g a segment's mean gradient, clipped as in training, and ms the mean square of the gradients
    training saw (mean_square)."""

    def __init__(self, cell, cfg, theta0, ms, eta, decay, K):
        self.cell, self.cfg, self.theta0, self.decay, self.K = cell, cfg, theta0, decay, K
        self.theta = theta0.copy()
        self.P = cell.views(self.theta, K, cfg.m)
        self.g = np.zeros_like(theta0)
        self.G = cell.views(self.g, K, cfg.m)
        self.scale = eta / (np.sqrt(ms) + 1e-8)
        self.h = zero_state(cell, cfg, theta0.dtype)

    def read(self, X, Y):
        """The bits of each character of the segment X, Y (T, 1), scored with the weights as they are;
        then one step on it. A segment scored worse than twice a uniform guess (the steps have diverged)
        sends the weights back to theta0, and nothing is learned from it."""
        bits = step_losses(self.cell, self.P, X, Y, self.h) / math.log(2)
        if bits.mean() > 2 * math.log2(self.K):
            np.copyto(self.theta, self.theta0)
            self.h = self.cell.scores(self.P, X, self.h)[1]
            return bits
        _, _, self.h = self.cell.loss_and_grads(self.P, X, Y, self.h, out=self.G)
        self.g /= len(X)
        optim.clip_(self.g, self.cfg.clip)
        self.g *= self.scale
        self.theta -= self.g
        if self.decay:
            self.theta += self.decay * (self.theta0 - self.theta)
        return bits


def dynamic_bits(cell, cfg, theta0, ms, train_part, held, eta, decay, segment, K):
    """(len(held),) bits of each held-out character, read after the last WARMUP training characters by
    a LearningReader, in segments of `segment` characters: each scored before it is learned from."""
    reader = LearningReader(cell, cfg, theta0, ms, eta, decay, K)
    reader.h = warmed_up(cell, cell.views(theta0, K, cfg.m), train_part, reader.h, WARMUP)
    text = np.concatenate([train_part[-1:], held])
    out = np.empty(len(held))
    for s in range(0, len(held), segment):
        X = text[s:min(s + segment, len(held))][:, None]
        out[s:s + len(X)] = reader.read(X, text[s + 1:s + 1 + len(X)][:, None])
    return out


ADAPT = dict(eta=1e-4, decay=0.0, segment=20)   # --adapt's step: lib.evaluate's choice on both texts tried,
MAX_ADAPT_CHARS, MAX_ADAPT_SECONDS = 1_000_000, 600   # without the decay (a text read again and again is the point)


def adapt(cell, cfg, theta0, ms, data, K, seconds, eta=ADAPT["eta"], decay=ADAPT["decay"], segment=ADAPT["segment"]):
    """(the weights after reading data (N,) again and again, each pass from a zero state, learning, for
    `seconds`; the characters read; the bits per character on data before, after). theta0 is not
    changed. Read so many times, a short text would let the steps grow without bound where training's
    gradients were rare (AdaGrad's sum of squares is near zero for a character seen a few times): ms is
    floored at its median, and the weights kept are those of the pass after which the text scored lowest
    (theta0 itself when none did better)."""
    reader = LearningReader(cell, cfg, theta0, np.maximum(ms, np.median(ms)), eta, decay, K)
    deadline, read = time.perf_counter() + seconds, 0
    before = best_bits = text_bits(cell, cfg, theta0, data, K)
    best = theta0
    while time.perf_counter() < deadline:
        reader.h = zero_state(cell, cfg, theta0.dtype)
        for s in range(0, len(data) - 1, segment):
            X = data[s:min(s + segment, len(data) - 1)][:, None]
            reader.read(X, data[s + 1:s + 1 + len(X)][:, None])
            read += len(X)
            if time.perf_counter() >= deadline:
                break
        bits = text_bits(cell, cfg, reader.theta, data, K)
        if bits < best_bits:
            best_bits, best = bits, reader.theta.copy()
        else:                               # no better than before this pass: go on from the best
            np.copyto(reader.theta, best)
    return best, read, before, best_bits


def text_bits(cell, cfg, theta, data, K):
    """The mean bits per character of predicting data[1:] from data[:-1], from a zero state, weights fixed."""
    P = cell.views(theta, K, cfg.m)
    return text_loss(cell, P, data, zero_state(cell, cfg, theta.dtype))[0] / math.log(2)


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


def adaptation_text(path, vocab):
    """The text of --adapt's file, checked: a regular file of UTF-8 text, not empty, at most
    MAX_ADAPT_CHARS characters, all of them in the vocabulary; ValueError naming --adapt otherwise."""
    from lib.util import files
    st = files.regular_file(path, "--adapt")
    if st is None:
        raise ValueError(f"--adapt {path}: no such file.")
    if st.st_size > 4 * MAX_ADAPT_CHARS:
        raise limits.TooLarge(f"--adapt {path} is {files.human(st.st_size)}; the network reads at most "
                              f"{MAX_ADAPT_CHARS:,} characters before it writes. Give a shorter text.")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"--adapt {path} is not UTF-8 text (a binary file?); give a text file.") from None
    return check_reading(text, vocab, f"--adapt {path}")


def check_reading(text, vocab, name):
    """text, unless it is too short, too long or holds characters outside the vocabulary: ValueError
    naming it as name (--adapt FILE, or the panel's box)."""
    if len(text) < 2:
        raise ValueError(f"{name} holds {len(text)} character(s); the network needs a text to read.")
    limits.check_at_most(len(text), f"{name}'s length", MAX_ADAPT_CHARS)
    missing = vocab.missing(text)
    if missing:
        raise ValueError(f"{name} cannot be read by this network: {unknown_characters(missing)}")
    return text


def read_first(cfg, vocab, state, theta, text, seconds):
    """(a copy of theta after reading text for `seconds`, learning; its bits per character on text
    before, after; the characters read). theta and the run are not changed."""
    adapted, read, before, after = adapt(cells.of(cfg), cfg, theta, mean_square(cfg, state), vocab.encode(text),
                                         vocab.K, seconds)
    return adapted, before, after, read


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
    p.add_argument("--adapt-seconds", type=arg_type("positive", float), default=10.0,
                   help=f"how long it reads --adapt's text, again and again (default 10; at most {MAX_ADAPT_SECONDS})")
    args = p.parse_args(argv)
    path = in_folder(args.checkpoint)
    cfg, vocab, state, _ = load_state(path)
    prime = default_prime(vocab) if args.prime is None else args.prime
    check(vocab, args.n, args.seed, args.temperature, args.top_p, prime, COMMAND)
    theta = state.theta if args.last else state.best_theta
    if not np.isfinite(theta).all():
        raise ValueError(f"{path} holds last parameters that are not finite (the run diverged); leave out --last.")
    if args.adapt:
        if args.adapt_seconds > MAX_ADAPT_SECONDS:
            raise ValueError(f"--adapt-seconds {args.adapt_seconds:g} is more than {MAX_ADAPT_SECONDS} s; read for less.")
        text = adaptation_text(args.adapt, vocab)
        theta, before, after, read = read_first(cfg, vocab, state, theta, text, args.adapt_seconds)
        print(f"read {args.adapt} ({len(text):,} characters) for {args.adapt_seconds:g} s, {read:,} characters in "
              f"all: {before:.3f} -> {after:.3f} bits per character on it", file=sys.stderr, flush=True)
    print(prime + passage(cfg, vocab, theta, args.n, args.seed, args.temperature, args.top_p, prime))

if __name__ == "__main__":
    from lib.util import cli
    cli.command(main)
