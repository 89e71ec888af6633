"""Training: the assignment's AdaGrad loop, with samples, validation, checkpoints and a best model.

One update, as in the assignment (batch_size 1, chunks "sequential"), is update() below:
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

Ctrl-C (SIGINT), SIGTERM and SIGHUP finish the update, save the run and raise KeyboardInterrupt (for
SIGINT) or lib.signals.Stopped (the others); a second signal of the same kind interrupts at once.
lib/runs.py starts or resumes a run in a folder; lib/cli.py is the command line (python -m lib.train).
"""
import hashlib
import math
import time

import numpy as np

from lib import cells, checkpoint, kernels, rnn, sampling
from lib.data import CorpusError
from lib.optim import adam_step_, clip_
from lib.progress import Progress
from lib.signals import deferred, stop_exception
from lib.state import init_state

DIVERGED = 10.0   # a loss above DIVERGED * T ln K (ten times a uniform guess) stops training
WARMUP = 1000     # training characters read (not scored) before the held-out text


class TrainingStopped(RuntimeError):
    """Training stopped early (divergence, or a checkpoint that could not be written); the message says
    why and what was kept."""


class Diverged(TrainingStopped):
    """The loss became NaN, infinite or far worse than a uniform guess."""
    exit_code = 3


# --- the data an update reads -----------------------------------------------------------------

def held_out(n_chars, cfg):
    """How many characters at the end of a text of n_chars are held out for validation."""
    return int(n_chars * cfg.val_fraction)


def split(data, cfg):
    """(training part, validation part or None): the held-out part is the last val_fraction of the text."""
    n_val = held_out(len(data), cfg)
    return (data[:len(data) - n_val], data[len(data) - n_val:]) if n_val else (data, None)


def check_sizes(cfg, n_chars):
    """CorpusError unless a text of n_chars can be trained on (and validated) with cfg."""
    T, B = cfg.seq_length, cfg.batch_size
    n_val = held_out(n_chars, cfg)
    need = (T + 1) * (B if cfg.chunks == "sequential" else 1)
    if n_chars - n_val < need:
        raise CorpusError(f"The training text has {n_chars - n_val:,} characters; seq_length = {T}"
                          f"{f' with {B} streams' if need > T + 1 else ''} needs at least {need:,}.")
    if cfg.val_fraction > 0 and n_val < 2:
        raise CorpusError(f"val_fraction = {cfg.val_fraction} holds out {n_val} character(s) of "
                          f"{n_chars:,}; validation needs at least 2. Use a larger fraction or a longer text.")


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


def advance(cfg, state, n_train):
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


def validation_loss(P, train_data, val_data, h0, warmup=WARMUP, cell=rnn):
    """The loss per character (nats) of the held-out text, read in order after the `warmup` training
    characters before it, from the hidden state h0 (1, S) that training has reached.

    Why not from a zero state: a network trained with its hidden state carried only ever starts from
    zero at the beginning of an epoch, and from zero in the middle of a text it can fall into a state
    where it predicts rare characters with confidence for thousands of characters.
    """
    h = _warmed_up(P, train_data, h0, warmup, cell)
    loss, _ = sampling.text_loss(cell, P, np.concatenate([train_data[-1:], val_data]), h)
    return loss


def validation_losses(P, train_data, val_data, h0, warmup=WARMUP, cell=rnn):
    """The loss (nats) of each held-out character (len(val_data),), read as validation_loss reads them."""
    h = _warmed_up(P, train_data, h0, warmup, cell)
    return sampling.text_losses(cell, P, np.concatenate([train_data[-1:], val_data]), h)


def _warmed_up(P, train_data, h0, warmup, cell):
    """The state (1, S) after reading the last `warmup` training characters from h0."""
    _, h = sampling.text_loss(cell, P, train_data[-(warmup + 1):], h0)
    return h


# --- one update -------------------------------------------------------------------------------

class Work:
    """The arrays an update writes into: the gradient g (n,) and its views G, and scratch space."""

    def __init__(self, cfg, K, theta):
        cell = cells.of(cfg)
        self.P = cell.views(theta, K, cfg.m)
        self.g = np.zeros_like(theta)
        self.G = cell.views(self.g, K, cfg.m)
        self.tmp = np.empty_like(theta)
        self.zeros = np.zeros((cfg.batch_size, cell.state_size(cfg.m)), dtype=theta.dtype)


def update(cfg, state, X, Y, w, too_high, cell=rnn):
    """One update of state from the chunk X, Y (T, B); returns the loss of one sequence (T characters).

    Raises Diverged where the loss is NaN, infinite or above too_high, before changing state.
    """
    i = state.step
    h0 = state.hprev if cfg.chunks == "sequential" else w.zeros  # hprev carried from chunk to chunk
    keep = dropout_mask(cfg, i, w.g.dtype) if cfg.dropout else None
    loss, _, h = cell.loss_and_grads(w.P, X, Y, h0, out=w.G, keep=keep)  # forward and back through the chunk
    loss /= cfg.batch_size                                      # the loss of one sequence of T characters
    if not loss <= too_high:
        raise Diverged(_diverged(cfg, state, loss, too_high))
    state.smooth_loss = loss if i == 0 else 0.999 * state.smooth_loss + 0.001 * loss
    _record(cfg, state, loss)
    if cfg.normalize_loss:
        w.g *= 1.0 / (cfg.seq_length * cfg.batch_size)
    eta = cfg.eta * state.eta_scale
    if cfg.optimizer == "adagrad":          # g clipped to [-clip, clip]; mem += g^2; theta -= eta g / sqrt(mem + eps)
        kernels.clip_adagrad_(state.theta, w.g, state.opt["mem"], cfg.clip, eta, cfg.eps, w.tmp)
    else:
        clip_(w.g, cfg.clip)
        adam_step_(state.theta, w.g, state.opt["m"], state.opt["v"], i + 1, eta, cfg.beta1, cfg.beta2,
                   cfg.eps, w.tmp)
    if cfg.ema:                             # avg += (1 - a) (theta - avg), a ramped up over the first updates
        a = min(cfg.ema, (1 + i) / (10 + i))
        np.subtract(state.theta, state.avg_theta, out=w.tmp)
        w.tmp *= 1 - a
        state.avg_theta += w.tmp
    state.hprev, state.step = h, i + 1
    return loss


def dropout_mask(cfg, step, dtype):
    """(T B, m): 0 for a dropped unit, 1 / (1 - p) for a kept one, from the Generator seeded by (seed, 2, step)."""
    rng = np.random.default_rng([cfg.seed, 2, step])
    kept = rng.random((cfg.seq_length * cfg.batch_size, cfg.m), dtype=np.float32) >= cfg.dropout
    return kept.astype(dtype) / dtype.type(1 - cfg.dropout)


def _record(cfg, state, loss):
    """The loss and smooth loss of update state.step into the histories; the lowest smooth loss, and
    (without validation) the best model, the parameters behind it."""
    i = state.step
    if i == len(state.losses):              # histories grow as needed: steps may be a large upper bound
        state.losses = _grow(state.losses, min(cfg.steps, 2 * i))
        state.smooth_losses = _grow(state.smooth_losses, len(state.losses))
    state.losses[i], state.smooth_losses[i] = loss, state.smooth_loss
    if state.smooth_loss < state.lowest_smooth_loss:
        state.lowest_smooth_loss, state.lowest_smooth_step = state.smooth_loss, i
        if cfg.val_fraction == 0:
            state.best_step = i
            np.copyto(state.best_theta, state.theta)


def _diverged(cfg, state, loss, too_high):
    uniform = too_high / DIVERGED
    if state.step == 0:
        return (f"The first loss is {loss:.4g}, where an untrained network gives about {uniform:.1f} (T ln K): "
                f"the initial parameters are too large (sig = {cfg.sig}); the assignment uses sig = 0.01.")
    return (f"Training stopped at update {state.step + 1:,}: the loss is {loss:.4g} (a uniform guess gives "
            f"{uniform:.1f}); eta = {cfg.eta} is probably too large. The best model so far (after "
            f"{state.best_step:,} updates) is kept")


def _grow(a, n):
    """a copied into a longer zero array of at least n entries (doubling, so growth is cheap)."""
    out = np.zeros(max(n, 2 * len(a), 1024))
    out[:len(a)] = a
    return out


# --- the loop ---------------------------------------------------------------------------------

def _sample(cfg, vocab, state, x0):
    cell = cells.of(cfg)
    P = cell.views(state.theta, vocab.K, cfg.m)
    rng = np.random.default_rng([cfg.seed, state.step])
    idx, _ = sampling.sample(cell, P, state.hprev[0], x0, cfg.sample_length, rng)
    return {"step": state.step, "smooth_loss": state.smooth_loss, "text": vocab.decode(idx)}


def sample_line(sample):
    """A sample as text: a line with its update and smooth loss, then the sample."""
    loss = "before training" if sample["smooth_loss"] is None else f"smooth loss {sample['smooth_loss']:.2f}"
    return f"--- update {sample['step']:,} ({loss})\n{sample['text']}"


def _recorded(history, step):
    """Whether history (samples or validation losses) already has an entry for this step."""
    return bool(history) and history[-1]["step"] == step


def train(cfg, data, vocab, state=None, ckpt=None, progress=True, log=print, show_samples=True,
          max_seconds=None, corpus_sha256=None, on_save=None):
    """Run updates until state.step == cfg.steps; returns the State (its histories are the history).

    data: (N,) indices of the whole text; the last val_fraction of it is held out for validation.
    ckpt: the checkpoint file, written every cfg.checkpoint_every updates, at the end, when a signal
    stops training and on divergence (None: nowhere). log: called with a line of text for the stop
    messages and, with show_samples, for each sample. max_seconds: stop (status "budget") once training
    has taken this long. corpus_sha256: the text's sha256 for the checkpoint (computed when None).
    on_save: called with the state after each checkpoint is written.
    """
    K, T = vocab.K, cfg.seq_length
    check_sizes(cfg, len(data))
    train_data, val_data = split(data, cfg)
    n_train = len(train_data)
    state = state or init_state(cfg, K)
    if ckpt is not None and corpus_sha256 is None:
        corpus_sha256 = hashlib.sha256(vocab.decode(data).encode("utf-8")).hexdigest()
    saved = {"step": state.step if state.status != "new" else None}

    def save():
        if ckpt is None:
            return
        written = None
        try:
            checkpoint.save_state(ckpt, cfg, vocab, state, corpus_sha256, len(data))
            written = state.step
            if on_save is not None:
                on_save(state)
        except OSError as err:
            last = saved["step"] if written is None else written
            before = "no checkpoint was written" if last is None else f"the checkpoint of update {last:,} is intact"
            raise TrainingStopped(f"Could not write {err.filename or ckpt} ({err.strerror}); {before}. Free "
                                  "some space (or fix the folder) and train again, which resumes from it.") from None
        saved["step"] = written

    def show(sample):
        if show_samples:
            view.sample(sample) if view else log(sample_line(sample))

    def validate():                         # the clock stops while the held-out text is read
        best = state.best_val_loss
        read = state.theta if state.avg_theta is None else state.avg_theta
        loss = validation_loss(cell.views(read, K, cfg.m), train_data, val_data, state.hprev[:1], cell=cell)
        state.val.append({"step": state.step, "seconds": state.seconds, "loss": loss})
        if best is None or loss < best:
            np.copyto(state.best_theta, read)
            state.best_step = state.step
        else:                               # no better than before: a smaller step (plateau_factor 1: the same)
            state.eta_scale *= cfg.plateau_factor

    def record(x0):                         # validation and a sample, where due and not yet recorded
        if val_data is not None and not _recorded(state.val, state.step) and (
                state.step % cfg.val_every == 0 or state.status != "running"):
            validate()
        if not _recorded(state.samples, state.step) and (
                state.step % cfg.sample_every == 0 or state.status != "running"):
            state.samples.append(_sample(cfg, vocab, state, x0))
            show(state.samples[-1])

    cell = cells.of(cfg)
    w = Work(cfg, K, state.theta)
    too_high = DIVERGED * T * math.log(K)
    state.samples = [s for s in state.samples   # drop a shorter session's end-of-run sample
                     if s["step"] % cfg.sample_every == 0 or s["step"] == cfg.steps]
    state.val = [v for v in state.val if v["step"] % cfg.val_every == 0 or v["step"] == cfg.steps]
    state.status = "running"
    view = Progress(cfg.steps, state.step, budget=max_seconds, seq_length=T, log=log) if progress else None
    with deferred() as stop:
        try:
            t0 = time.perf_counter()
            while state.step < cfg.steps and stop["signal"] is None:
                if max_seconds is not None and state.seconds + time.perf_counter() - t0 >= max_seconds:
                    state.status = "budget"
                    break
                X, Y = inputs_and_targets(cfg, train_data, state.e, state.step)
                state.seconds += time.perf_counter() - t0
                record(X[0, 0])
                t0 = time.perf_counter()
                update(cfg, state, X, Y, w, too_high, cell)
                advance(cfg, state, n_train)
                if view:
                    view.update(state)
                if state.step % cfg.checkpoint_every == 0 and state.step < cfg.steps:
                    state.seconds += time.perf_counter() - t0
                    save()
                    t0 = time.perf_counter()
            state.seconds += time.perf_counter() - t0
        except Diverged as err:
            state.status = "diverged"
            save()
            raise Diverged(f"{err}{' in ' + str(ckpt) if ckpt else ''}." if state.step else str(err)) from None
        finally:
            state.losses, state.smooth_losses = state.losses[:state.step], state.smooth_losses[:state.step]
            if view:
                view.close(state)
        if stop["signal"] is not None:
            state.status = "interrupted"
            save()
            log(f"Interrupted at update {state.step:,}; the run is saved"
                f"{' in ' + str(ckpt) + ' and resumes from there' if ckpt else ''}.")
            raise stop_exception(stop["signal"])
        if state.status != "budget":
            state.status = "done"
        X, _ = inputs_and_targets(cfg, train_data, state.e, state.step)
        record(X[0, 0])
        save()
    return state


if __name__ == "__main__":
    from lib import cli
    cli.command(cli.train_main, pipe="survive")
