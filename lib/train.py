"""Training: the assignment's AdaGrad loop, with samples, checkpoints and a best model.

One update (step i), as in the assignment (batch_size 1, chunks "sequential"):
    X, Y = data[e : e+T], data[e+1 : e+T+1]           the next chunk and its targets
    loss, grads, hprev = rnn.loss_and_grads(...)      hprev carried from chunk to chunk
    smooth_loss = 0.999 smooth_loss + 0.001 loss      started from the first loss
    grads clipped to [-clip, clip]; AdaGrad update
    e += T; when the next chunk would run past the text: e = 0, hprev = 0 (a new epoch)
A 200-character sample is drawn before update 0, every sample_every updates, and after the last one,
from hprev with x0 = the next chunk's first input, with the Generator seeded by (seed, step): samples
do not depend on how a run was split into sessions.

Beyond the assignment (the defaults leave them off): Adam instead of AdaGrad; B > 1 sequences per
update, either B evenly spaced streams through the text, each carrying its own hidden state, or B
random start points with a zero hidden state; the loss divided by T B; and a validation loss per
character on a held-out tail of the text, which then also picks the best model. With B > 1 the
recorded loss is the mean over the B sequences of their T-character loss, so it reads like B = 1's.

Command line:  python -m lib.train --data PATH --steps N --seed S --out DIR [--eta ... --m ...]
               python -m lib.train --resume DIR/checkpoint.npz --steps N
               python -m lib.train --optimizer adam --eta 0.003 --batch-size 32 --normalize-loss true
                                   --val-fraction 0.1 --steps 1000000000 --max-seconds 600 --out DIR
"""
import argparse
import dataclasses
import hashlib
import json
import math
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lib import checkpoint, rnn
from lib.data import CorpusError, Vocab, default_corpus_path, load_corpus, short_path
from lib.optim import adam_step_, clip_, clip_adagrad_
from lib.progress import Progress

DIVERGED = 10.0   # a loss above DIVERGED * T ln K (ten times a uniform guess) stops training
OPTIMIZER_STATE = {"adagrad": ("mem",), "adam": ("m", "v")}   # the arrays each optimiser keeps
CHUNKS = ("sequential", "random")
WARMUP = 1000     # training characters read (not scored) before the held-out text


@dataclass(frozen=True)
class Config:
    """The settings of a run; the defaults are the assignment's."""
    m: int = 100                    # hidden units
    seq_length: int = 25            # characters per sequence and update (T)
    eta: float = 0.1                # learning rate (the 2025 assignment's Adam uses 0.001)
    sig: float = 0.01               # standard deviation of the initial U, W, V (b, c start at zero)
    eps: float = 1e-8               # AdaGrad's epsilon inside the square root; Adam's outside it
    clip: float = 5.0               # gradients are clipped element-wise to [-clip, clip]
    steps: int = 100_000            # updates in all
    sample_every: int = 10_000      # a sample before update 0, every this many updates, and at the end
    sample_length: int = 200        # characters per sample
    checkpoint_every: int = 10_000  # the checkpoint is written every this many updates and at the end
    seed: int = 0                   # the one seed: initial parameters, samples, random chunk starts
    optimizer: str = "adagrad"      # "adagrad" (the assignment) or "adam"
    beta1: float = 0.9              # Adam: decay of the running mean of the gradient
    beta2: float = 0.999            # Adam: decay of the running mean of its square
    batch_size: int = 1             # B sequences per update
    chunks: str = "sequential"      # "sequential": B evenly spaced streams, each carrying its hidden state
                                    # (B = 1: the assignment's walk); "random": B random starts, h0 = 0
    normalize_loss: bool = False    # divide the loss, and so the gradients, by T B (as the 2025 assignment)
    val_fraction: float = 0.0       # held-out tail of the text for a validation loss (0: none; 0.1 usual)
    val_every: int = 10_000         # validation loss before update 0, every this many updates, at the end

    def __post_init__(self):
        for name in ("m", "seq_length", "steps", "sample_every", "sample_length", "checkpoint_every",
                     "batch_size", "val_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"Config.{name} must be a positive integer, got {value!r}.")
        for name in ("eta", "sig", "eps", "clip"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
                    or not math.isfinite(value):
                raise ValueError(f"Config.{name} must be a positive number, got {value!r}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"Config.seed must be a non-negative integer, got {self.seed!r}.")
        for name in ("beta1", "beta2"):
            if not isinstance(getattr(self, name), (int, float)) or not 0 <= getattr(self, name) < 1:
                raise ValueError(f"Config.{name} must be in [0, 1), got {getattr(self, name)!r}.")
        if self.optimizer not in OPTIMIZER_STATE:
            raise ValueError(f"Config.optimizer must be one of {', '.join(OPTIMIZER_STATE)}, got {self.optimizer!r}.")
        if self.chunks not in CHUNKS:
            raise ValueError(f"Config.chunks must be one of {', '.join(CHUNKS)}, got {self.chunks!r}.")
        if not isinstance(self.normalize_loss, bool):
            raise ValueError(f"Config.normalize_loss must be true or false, got {self.normalize_loss!r}.")
        if not isinstance(self.val_fraction, (int, float)) or not 0 <= self.val_fraction < 0.5:
            raise ValueError(f"Config.val_fraction must be in [0, 0.5), got {self.val_fraction!r}.")

    @classmethod
    def from_dict(cls, d):
        """A Config from a dict; unknown keys are refused by name."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"Unknown config key(s): {', '.join(unknown)}. Known: {', '.join(sorted(names))}.")
        return cls(**d)

    def to_dict(self):
        return dataclasses.asdict(self)

    def replace(self, **changes):
        return Config.from_dict({**self.to_dict(), **changes})

    def __str__(self):
        return "Config(" + ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items()) + ")"


@dataclass
class State:
    """Everything that changes during training. Histories hold the first `step` entries."""
    theta: np.ndarray               # (n,) parameters U, W, V, b, c, flat (rnn.views splits them)
    opt: dict                       # the optimiser's arrays (n,): AdaGrad "mem"; Adam "m" and "v"
    best_theta: np.ndarray          # (n,) the best parameters: lowest validation loss, else smooth loss
    hprev: np.ndarray               # (B, m) hidden state of each stream after the last chunk
    e: int = 0                      # position of the next chunk in each stream's part of the text
    epoch: int = 0                  # epochs begun, minus one
    step: int = 0                   # updates done
    smooth_loss: float = None       # None until the first update
    best_smooth_loss: float = math.inf
    best_step: int = -1             # the update at which the best parameters were taken
    seconds: float = 0.0            # time spent training (validation excluded), over all sessions
    losses: np.ndarray = field(default_factory=lambda: np.zeros(0))          # (step,)
    smooth_losses: np.ndarray = field(default_factory=lambda: np.zeros(0))   # (step,)
    epoch_starts: list = field(default_factory=lambda: [0])                  # update at which each epoch began
    samples: list = field(default_factory=list)     # dicts: step, smooth_loss, text
    val: list = field(default_factory=list)         # dicts: step, seconds, loss (nats per character)
    status: str = "new"             # new, running, done, budget (time ran out), interrupted, diverged

    @property
    def best_val_loss(self):
        return min((v["loss"] for v in self.val), default=None)


class TrainingStopped(RuntimeError):
    """Training stopped early (divergence); the message says why and what was kept."""


def init_state(cfg, K):
    """A fresh State: parameters drawn from Generator(seed), b and c zero, optimiser state zero."""
    theta = rnn.init_params(K, cfg.m, cfg.sig, np.random.default_rng(cfg.seed))
    return State(theta=theta, opt={name: np.zeros_like(theta) for name in OPTIMIZER_STATE[cfg.optimizer]},
                 best_theta=theta.copy(), hprev=np.zeros((cfg.batch_size, cfg.m)))


def text_sha256(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- checkpoints ------------------------------------------------------------------------------

def save_state(path, cfg, vocab, state, corpus_sha256=""):
    """Write the whole run (see lib/checkpoint.py for the layout) atomically to path."""
    K, m = vocab.K, cfg.m
    arrays = {"hprev": state.hprev, "losses": state.losses[:state.step],
              "smooth_losses": state.smooth_losses[:state.step],
              "epoch_starts": np.array(state.epoch_starts, dtype=np.int64)}
    vectors = [("", state.theta), ("best_", state.best_theta)]
    vectors += [(f"opt_{name}_", a) for name, a in state.opt.items()]
    for prefix, theta in vectors:
        arrays.update({prefix + name: a for name, a in zip(rnn.NAMES, rnn.views(theta, K, m))})
    meta = {"config": cfg.to_dict(), "vocab": vocab.chars, "corpus_sha256": corpus_sha256,
            "K": K, "e": state.e, "epoch": state.epoch, "step": state.step,
            "smooth_loss": state.smooth_loss, "best_smooth_loss": state.best_smooth_loss,
            "best_step": state.best_step, "seconds": state.seconds, "samples": state.samples,
            "val": state.val, "status": state.status}
    checkpoint.save(path, arrays, meta)


def load_state(path):
    """(cfg, vocab, state, meta) from a checkpoint written by save_state."""
    arrays, meta = checkpoint.load(path)
    try:
        cfg = Config.from_dict(meta["config"])
        vocab = Vocab(meta["vocab"])
        K, m = vocab.K, cfg.m
        n = rnn.n_params(K, m)

        def flat(prefix):
            theta = np.empty(n)
            for name, view in zip(rnn.NAMES, rnn.views(theta, K, m)):
                part = arrays[prefix + name]
                if part.shape != view.shape:
                    raise ValueError(f"{prefix}{name} has shape {part.shape}, expected {view.shape}")
                view[...] = part
            return theta

        step = int(meta["step"])
        smooth = meta["smooth_loss"]
        opt = {name: flat(f"opt_{name}_") for name in OPTIMIZER_STATE[cfg.optimizer]}
        state = State(theta=flat(""), opt=opt, best_theta=flat("best_"),
                      hprev=np.array(arrays["hprev"], dtype=np.float64), e=int(meta["e"]),
                      epoch=int(meta["epoch"]), step=step, smooth_loss=None if smooth is None else float(smooth),
                      best_smooth_loss=float(meta["best_smooth_loss"]), best_step=int(meta["best_step"]),
                      seconds=float(meta["seconds"]), losses=np.array(arrays["losses"], dtype=np.float64),
                      smooth_losses=np.array(arrays["smooth_losses"], dtype=np.float64),
                      epoch_starts=[int(s) for s in arrays["epoch_starts"]],
                      samples=list(meta["samples"]), val=list(meta["val"]), status=str(meta["status"]))
        if state.theta.shape != (n,) or state.hprev.shape != (cfg.batch_size, m) or len(state.losses) != step:
            raise ValueError("array sizes do not match the config")
    except (KeyError, TypeError, ValueError) as err:
        raise checkpoint.CheckpointError(f"{path} is damaged or incomplete ({err}).") from None
    return cfg, vocab, state, meta


# --- the loop ---------------------------------------------------------------------------------

@contextmanager
def _sigint_to_flag(flag):
    """While active, Ctrl-C (SIGINT) sets flag["stop"] instead of interrupting; a second one interrupts."""
    try:
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):
            flag["stop"] = True
            signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGINT, handler)
    except ValueError:              # not the main thread: leave Ctrl-C as it is
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _grow(a, n):
    """a copied into a longer zero array of at least n entries (doubling, so growth is cheap)."""
    out = np.zeros(max(n, 2 * len(a), 1024))
    out[:len(a)] = a
    return out


def _sample(cfg, vocab, state, x0):
    P = rnn.views(state.theta, vocab.K, cfg.m)
    rng = np.random.default_rng([cfg.seed, state.step])
    idx, _ = rnn.sample(P, state.hprev[0], x0, cfg.sample_length, rng)
    return {"step": state.step, "smooth_loss": state.smooth_loss, "text": vocab.decode(idx)}


def held_out(n_chars, cfg):
    """How many characters at the end of a text of n_chars are held out for validation."""
    return int(n_chars * cfg.val_fraction)


def _recorded(history, step):
    """Whether history (samples or validation losses) already has an entry for this step."""
    return bool(history) and history[-1]["step"] == step


def split(data, cfg):
    """(training part, validation part or None): the held-out part is the last val_fraction of the text."""
    n_val = held_out(len(data), cfg)
    return (data[:len(data) - n_val], data[len(data) - n_val:]) if n_val else (data, None)


def inputs_and_targets(cfg, train_data, e, step):
    """X, Y (T, B): the inputs and targets of update `step`.

    "sequential": stream b reads the b-th of B equal parts of the text, at offset e
    (B = 1: data[e:e+T] and data[e+1:e+T+1], as in the assignment); views, not copies.
    "random": B start points drawn by the Generator seeded by (seed, 1, step).
    """
    T, B = cfg.seq_length, cfg.batch_size
    if cfg.chunks == "random":
        starts = np.random.default_rng([cfg.seed, 1, step]).integers(0, len(train_data) - T, size=B)
        pos = np.arange(T)[:, None] + starts
        return train_data[pos], train_data[pos + 1]
    L = len(train_data) // B
    streams = train_data[:B * L].reshape(B, L).T        # (L, B): column b is stream b's part
    return streams[e:e + T], streams[e + 1:e + T + 1]


def validation_loss(P, train_data, val_data, h0, warmup=WARMUP):
    """The loss per character (nats) of the held-out text, read in order after the `warmup` training
    characters before it, from the hidden state h0 (1, m) that training has reached.

    Why not from a zero state: a network trained with its hidden state carried only ever starts from
    zero at the beginning of an epoch, and from zero in the middle of a text it can fall into a state
    where it predicts rare characters with confidence for thousands of characters.
    """
    _, h = rnn.text_loss(P, train_data[-(warmup + 1):], h0)
    loss, _ = rnn.text_loss(P, np.concatenate([train_data[-1:], val_data]), h)
    return loss


def _check_sizes(cfg, n_train, val_data):
    T, B = cfg.seq_length, cfg.batch_size
    need = (T + 1) * (B if cfg.chunks == "sequential" else 1)
    if n_train < need:
        raise CorpusError(
            f"The training text has {n_train} characters; seq_length = {T}"
            f"{f' with {B} streams' if need > T + 1 else ''} needs at least {need}.")
    if val_data is not None and len(val_data) < 2:
        raise CorpusError(f"val_fraction = {cfg.val_fraction} holds out {len(val_data)} character(s); "
                          "use a larger fraction or a longer text.")


def train(cfg, data, vocab, state=None, out_dir=None, progress=True, log=print, corpus_sha256="",
          show_samples=True, max_seconds=None):
    """Run updates until state.step == cfg.steps; returns the State (its histories are the history).

    data: (N,) int indices of the whole text; the last val_fraction of it is held out for validation.
    out_dir: where checkpoint.npz is written every cfg.checkpoint_every updates, at the end, on Ctrl-C
    and on divergence (None: nowhere). log: called with a line of text for the stop messages and, with
    show_samples, for each sample. max_seconds: stop (status "budget") once training has taken this long.
    """
    K, m, T, B = vocab.K, cfg.m, cfg.seq_length, cfg.batch_size
    train_data, val_data = split(data, cfg)
    n_train = len(train_data)
    _check_sizes(cfg, n_train, val_data)
    state = state or init_state(cfg, K)
    ckpt = Path(out_dir) / "checkpoint.npz" if out_dir is not None else None

    def save():
        if ckpt is not None:
            save_state(ckpt, cfg, vocab, state, corpus_sha256)

    def show(sample):
        if not show_samples:
            return
        loss = "" if sample["smooth_loss"] is None else f", smooth loss {sample['smooth_loss']:.3f}"
        if bar:
            bar.clear()
        log(f"--- update {sample['step']:,}{loss}\n{sample['text']}")

    def validate():                         # the clock stops while the held-out text is read
        best = state.best_val_loss
        loss = validation_loss(P, train_data, val_data, state.hprev[:1])
        state.val.append({"step": state.step, "seconds": state.seconds, "loss": loss})
        if best is None or loss < best:
            np.copyto(state.best_theta, state.theta)
            state.best_step = state.step

    def due(history, every):                # at multiples of every, once each
        return state.step % every == 0 and not _recorded(history, state.step)

    P = rnn.views(state.theta, K, m)
    g = np.zeros_like(state.theta)
    G = rnn.views(g, K, m)                  # gradients land in g through these views
    tmp = np.empty_like(state.theta)
    zeros = np.zeros((B, m))
    too_high = DIVERGED * T * math.log(K)
    state.samples = [s for s in state.samples   # drop a shorter session's end-of-run sample
                     if s["step"] % cfg.sample_every == 0 or s["step"] == cfg.steps]
    state.val = [v for v in state.val if v["step"] % cfg.val_every == 0 or v["step"] == cfg.steps]
    state.status = "running"
    bar = Progress(cfg.steps, state.step, budget=max_seconds) if progress else None   # show() uses it
    flag = {"stop": False}
    t0 = time.perf_counter()
    try:
        with _sigint_to_flag(flag):
            while state.step < cfg.steps:
                i = state.step
                if max_seconds is not None and state.seconds + time.perf_counter() - t0 >= max_seconds:
                    state.status = "budget"
                    break
                X, Y = inputs_and_targets(cfg, train_data, state.e, i)
                if val_data is not None and due(state.val, cfg.val_every):
                    state.seconds += time.perf_counter() - t0
                    validate()
                    t0 = time.perf_counter()
                if due(state.samples, cfg.sample_every):
                    state.samples.append(_sample(cfg, vocab, state, X[0, 0]))
                    show(state.samples[-1])
                h0 = state.hprev if cfg.chunks == "sequential" else zeros
                loss, _, h = rnn.loss_and_grads(P, X, Y, h0, out=G)
                loss /= B                   # the loss of one sequence of T characters
                if not loss <= too_high:    # NaN, infinite or exploding
                    state.status = "diverged"
                    save()
                    raise TrainingStopped(
                        f"Training stopped at update {i:,}: the loss is {loss:.4g} (a uniform guess gives "
                        f"{T * math.log(K):.1f}); eta = {cfg.eta} is probably too large. The best model "
                        f"so far (from update {state.best_step:,}) "
                        f"is kept{' in ' + str(ckpt) if ckpt else ''}.")
                state.smooth_loss = loss if i == 0 else 0.999 * state.smooth_loss + 0.001 * loss
                if i == len(state.losses):  # histories grow as needed: steps may be a large upper bound
                    state.losses = _grow(state.losses, min(cfg.steps, 2 * i))
                    state.smooth_losses = _grow(state.smooth_losses, len(state.losses))
                state.losses[i], state.smooth_losses[i] = loss, state.smooth_loss
                if state.smooth_loss < state.best_smooth_loss:
                    state.best_smooth_loss = state.smooth_loss
                    if val_data is None:
                        state.best_step = i
                        np.copyto(state.best_theta, state.theta)
                if cfg.normalize_loss:
                    g *= 1.0 / (T * B)
                if cfg.optimizer == "adam":
                    clip_(g, cfg.clip)
                    adam_step_(state.theta, g, state.opt["m"], state.opt["v"], i + 1, cfg.eta, cfg.beta1,
                               cfg.beta2, cfg.eps, tmp)
                else:
                    clip_adagrad_(state.theta, g, state.opt["mem"], cfg.clip, cfg.eta, cfg.eps, tmp)
                state.hprev, state.step = h, i + 1
                _advance(cfg, state, n_train)
                if bar:
                    bar.update(state.step, state.smooth_loss)
                if flag["stop"]:
                    state.status = "interrupted"
                    break
                if state.step % cfg.checkpoint_every == 0 and state.step < cfg.steps:
                    state.seconds += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    save()
    finally:
        state.seconds += time.perf_counter() - t0
        state.losses, state.smooth_losses = state.losses[:state.step], state.smooth_losses[:state.step]
        if bar:
            bar.close(state.step, state.smooth_loss)
    if state.status == "interrupted":
        save()
        log(f"Interrupted at update {state.step:,}; the run is saved"
            f"{' in ' + str(ckpt) + ' and resumes from there' if ckpt else ''}.")
        raise KeyboardInterrupt
    X, _ = inputs_and_targets(cfg, train_data, state.e, state.step)
    if val_data is not None and not _recorded(state.val, state.step):
        validate()
    if not _recorded(state.samples, state.step):
        state.samples.append(_sample(cfg, vocab, state, X[0, 0]))
        show(state.samples[-1])
    if state.status != "budget":
        state.status = "done"
    save()
    return state


def _advance(cfg, state, n_train):
    """Move to the next chunk after an update; start a new epoch where the text runs out."""
    T, B = cfg.seq_length, cfg.batch_size
    if cfg.chunks == "random":               # epochs counted in characters read
        epoch = state.step * T * B // n_train
        if epoch > state.epoch:
            state.epoch = epoch
            state.epoch_starts.append(state.step)
        return
    state.e += T
    if state.e + T + 1 > n_train // B:      # the next chunk would run past a stream's part of the text
        state.e, state.hprev = 0, np.zeros_like(state.hprev)
        state.epoch += 1
        state.epoch_starts.append(state.step)


def summary(cfg, vocab, state, n_chars):
    """The facts of a run, as written to summary.json. n_chars: the whole text, held-out part included."""
    n_val = held_out(n_chars, cfg)
    chars = state.step * cfg.seq_length * cfg.batch_size
    info = {
        "steps": state.step, "seconds": round(state.seconds, 3),
        "us_per_step": round(state.seconds / max(state.step, 1) * 1e6, 1),
        "K": vocab.K, "n_chars": n_chars, "n_train_chars": n_chars - n_val, "chars_seen": chars,
        "epochs": round(chars / (n_chars - n_val), 3),
        "first_loss": float(state.losses[0]) if state.step else None,
        "uniform_loss": cfg.seq_length * math.log(vocab.K),
        "final_smooth_loss": state.smooth_loss, "best_smooth_loss": state.best_smooth_loss,
        "best_step": state.best_step, "status": state.status, "config": cfg.to_dict(),
    }
    if state.val:
        best = min(state.val, key=lambda v: v["loss"])
        info.update({"n_val_chars": n_val, "final_val_loss_per_char": state.val[-1]["loss"],
                     "best_val_loss_per_char": best["loss"], "best_val_loss_bits": best["loss"] / math.log(2),
                     "best_val_step": best["step"]})
    return info


def describe(cfg, text, vocab, source):
    """The facts printed at the start of a run."""
    n = rnn.n_params(vocab.K, cfg.m)
    n_train = len(text) - held_out(len(text), cfg)
    chars = cfg.steps * cfg.seq_length * cfg.batch_size
    held = f"; the last {len(text) - n_train:,} held out for validation" if n_train < len(text) else ""
    return (f"{cfg}\ncorpus: {source} ({len(text):,} characters{held})\nK = {vocab.K}: {vocab.chars!r}\n"
            f"parameters: {n:,}; {cfg.steps:,} updates of {cfg.batch_size} x {cfg.seq_length} characters = "
            f"{chars / n_train:.2f} epochs")


def run(cfg, corpus=None, out_dir=None, resume=True, progress=True, log=print, show_samples=True,
        max_seconds=None):
    """Load the corpus, print the facts, train (resuming a matching run in out_dir), write the summary.

    A checkpoint in out_dir is resumed when it was made with the same settings (all but steps,
    sample_every and checkpoint_every) on the same text and has not gone past cfg.steps; otherwise it
    is renamed replaced-checkpoint.npz (one such copy is kept) and training starts afresh. With
    max_seconds, training stops once it has taken that long, and a run that stopped so is complete.
    Returns (state, vocab, summary dict).
    """
    text, vocab, data = load_corpus(corpus, cfg.seq_length + 1)
    sha = text_sha256(text)
    log(describe(cfg, text, vocab, short_path(corpus or default_corpus_path())))
    state, done = None, False
    ckpt = Path(out_dir) / "checkpoint.npz" if out_dir is not None else None
    if resume and ckpt is not None and ckpt.exists():
        state, why = _resumable(ckpt, cfg, vocab, sha)
        if state is None:
            backup = ckpt.with_name("replaced-" + ckpt.name)
            ckpt.replace(backup)
            log(f"{ckpt} {why}: it is kept as {backup.name}; training starts afresh")
        else:
            done = state.step == cfg.steps or (state.status == "budget" and max_seconds is not None)
            log(f"{'loading the complete run' if done else 'resuming'} {ckpt} at update {state.step:,}")
    complete = state is not None and done and state.status in ("done", "budget")
    if not complete:                        # a complete run is loaded as it is, not written again
        state = train(cfg, data, vocab, state, out_dir, progress, log, sha, show_samples, max_seconds)
    info = summary(cfg, vocab, state, len(text))
    if out_dir is not None:
        (Path(out_dir) / "summary.json").write_text(json.dumps(info, indent=2) + "\n")
    return state, vocab, info


def _resumable(ckpt, cfg, vocab, sha):
    """(state, None) when the checkpoint continues a run with cfg on this text, else (None, why)."""
    try:
        old_cfg, old_vocab, state, meta = load_state(ckpt)
    except checkpoint.CheckpointError as err:
        return None, f"cannot be resumed ({err})"
    loose = dict(steps=0, sample_every=0, checkpoint_every=0)
    if {**old_cfg.to_dict(), **loose} != {**cfg.to_dict(), **loose} or old_vocab != vocab \
            or meta["corpus_sha256"] != sha:
        return None, "held another run (other settings or corpus)"
    if state.step > cfg.steps or state.status == "diverged":
        return None, f"held a run {'that diverged' if state.status == 'diverged' else 'past ' + str(cfg.steps)}"
    return state, None


def load_run(run_dir):
    """(cfg, vocab, state, summary) of a finished run in run_dir, for the notebooks after training."""
    ckpt = Path(run_dir) / "checkpoint.npz"
    if not ckpt.exists():
        raise FileNotFoundError(
            f"No training run in {run_dir}: run notebooks/03_training.ipynb first (or `make report`).")
    cfg, vocab, state, meta = load_state(ckpt)
    if state.status not in ("done", "budget"):
        raise RuntimeError(f"The run in {run_dir} stopped at update {state.step:,} ({state.status}); "
                           "run notebooks/03_training.ipynb again to finish it.")
    return cfg, vocab, state, json.loads((Path(run_dir) / "summary.json").read_text())


# --- command line -----------------------------------------------------------------------------

def _yes_no(text):
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", help="corpus text file (default: data/goblet_book.txt, else the default corpus)")
    p.add_argument("--out", help="folder for checkpoint.npz and summary.json")
    p.add_argument("--resume", help="a checkpoint.npz to continue (to --steps updates in all)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="stop once training has taken this many seconds (validation not counted)")
    for f in dataclasses.fields(Config):
        kind = _yes_no if isinstance(f.default, bool) else type(f.default)
        p.add_argument("--" + f.name.replace("_", "-"), type=kind, default=None, help=f"default {f.default}")
    args = p.parse_args(argv)
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config)
             if getattr(args, f.name) is not None}
    try:
        if args.resume:
            cfg, vocab, state, meta = load_state(args.resume)
            unchangeable = sorted(set(given) - {"steps", "sample_every", "checkpoint_every"})
            if unchangeable:
                raise ValueError(f"--resume continues a run with its own settings; drop {', '.join(unchangeable)}.")
            cfg = cfg.replace(**given)
            if state.step > cfg.steps:
                raise ValueError(f"The checkpoint is at update {state.step:,}, past --steps {cfg.steps:,}.")
            text, corpus_vocab, data = load_corpus(args.data, cfg.seq_length + 1)
            if corpus_vocab != vocab:
                raise checkpoint.CheckpointError(
                    f"{args.resume} was trained on another corpus: its vocabulary has K = {vocab.K}, "
                    f"this text's has K = {corpus_vocab.K} (differs in "
                    f"{''.join(sorted(set(vocab.chars) ^ set(corpus_vocab.chars)))!r}). "
                    "Give the same text with --data, or start a new run.")
            sha = text_sha256(text)
            if meta["corpus_sha256"] and meta["corpus_sha256"] != sha:
                print("warning: the text differs from the one this run was trained on (same vocabulary); "
                      "continuing on the new text", file=sys.stderr)
            out = Path(args.out) if args.out else Path(args.resume).parent
            print(describe(cfg, text, vocab, args.data or default_corpus_path()))
            print(f"resuming {args.resume} at update {state.step:,}")
            state = train(cfg, data, vocab, state, out, not args.no_progress, corpus_sha256=sha,
                          max_seconds=args.max_seconds)
            info = summary(cfg, vocab, state, len(text))
            (out / "summary.json").write_text(json.dumps(info, indent=2) + "\n")
        else:
            if not args.out:
                raise ValueError("--out DIR is needed (where checkpoint.npz and summary.json go).")
            cfg = Config(**given)
            state, vocab, info = run(cfg, args.data, args.out, resume=False, progress=not args.no_progress,
                                     max_seconds=args.max_seconds)
    except KeyboardInterrupt:
        sys.exit(130)
    except (ValueError, TrainingStopped) as err:   # CorpusError and CheckpointError are ValueErrors
        sys.exit(f"error: {err}")
    print(json.dumps({k: v for k, v in info.items() if k != "config"}, indent=2))


if __name__ == "__main__":
    main()
