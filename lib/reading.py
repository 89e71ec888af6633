"""Reading a text with a trained network: the loss of each character with the weights fixed (scoring,
validation), and reading while it keeps learning (dynamic evaluation: lib/evaluate.py, `lib.sample --adapt`,
the panel's box).

Everything here works for any cell (lib/model/cells.py): each provides scores(P, X, h0) -> (O, hT) for a
chunk and loss_and_grads for one step of learning.
"""
import math
import time
from pathlib import Path

import numpy as np

from lib import optim
from lib.model import cells
from lib.rnn import probs_and_losses
from lib.data import unknown_characters
from lib.util import limits
from lib.util.cli import Abandoned


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


# --- reading while learning (dynamic evaluation) ---------------------------------------------------------

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


def dynamic_bits(cell, cfg, theta0, ms, train_part, held, eta, decay, segment, K, h0=None):
    """(len(held),) bits of each held-out character, read after the last WARMUP training characters by
    a LearningReader (from h0 (1, S), or a zero state), in segments of `segment` characters: each scored
    before it is learned from."""
    reader = LearningReader(cell, cfg, theta0, ms, eta, decay, K)
    reader.h = warmed_up(cell, cell.views(theta0, K, cfg.m), train_part, reader.h if h0 is None else h0, WARMUP)
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
