"""Training: the assignment's AdaGrad loop, with samples, validation, checkpoints and a best model.

One update, as in the assignment (batch_size 1, chunks "sequential"), is assignment_step() below:
    X, Y = data[e : e+T], data[e+1 : e+T+1]           the next chunk and its targets
    loss, grads, hprev = loss_and_grads(...)          hprev carried from chunk to chunk
    smooth_loss = 0.999 smooth_loss + 0.001 loss      started from the first loss
    grads clipped to [-clip, clip]; AdaGrad update
    e += T; when the next chunk would run past the text: e = 0, hprev = 0 (a new epoch)
A 200-character sample is drawn before update 0, every sample_every updates, and after the last one,
from hprev with x0 = the next chunk's first input, with the Generator seeded by (seed, step): samples
do not depend on how a run was split into sessions.

Beyond the assignment (the defaults leave them off), extended_step(): Adam instead of AdaGrad; B > 1
sequences per update, either B evenly spaced streams through the text, each carrying its own hidden
state, or B random start points with a zero hidden state; the loss divided by T B; dropout; weight
averaging; a validation loss per character on the first half of a held-out tail of the text (the second
half is left to lib.evaluate's reported figures), which then also picks the best model and can lower eta
when it stops improving. With B > 1 the loss recorded is the mean of the B losses.

Ctrl-C (SIGINT), SIGTERM and SIGHUP finish the update, save the run and raise KeyboardInterrupt (for
SIGINT) or lib.util.cli.Stopped (the others); a second signal of the same kind interrupts at once.
lib/training/runs.py starts or resumes a run in a folder; lib/train.py is the command line (python -m lib.train).
"""
import hashlib
import math
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from lib.model import cells, kernels
from lib.training import checkpoint
from lib.data import check_sizes, halves, split
from lib.sample import sample
from lib.reading import validation_loss
from lib.util.cli import Abandoned, deferred, stop_exception
from lib.training.chunks import advance, inputs_and_targets
from lib.training.state import HeldBest, init_state, summary

DIVERGED = 10.0   # a loss above DIVERGED * T ln K (ten times a uniform guess) stops training


class TrainingStopped(RuntimeError):
    """Training stopped early (divergence, or a checkpoint that could not be written); the message says
    why and what was kept."""


class Diverged(TrainingStopped):
    """The loss became NaN, infinite or far worse than a uniform guess."""
    exit_code = 3


class View:
    """What a run shows while it trains; this one shows nothing. lib/training/progress.py has the others."""

    def update(self, state):
        """After each update."""

    def sample(self, sample):
        """A sample (a dict: step, smooth_loss, text), as soon as it is drawn."""

    def say(self, line):
        """A message (why training stopped, and what was kept)."""

    def close(self, state):
        """When training stops, for whatever reason."""

    def replay(self, state):
        """A finished run, shown as training showed it: its samples, then the end."""
        for s in state.samples:
            self.sample(s)
        self.close(state)


# --- the loop ---------------------------------------------------------------------------------

def train(cfg, data, vocab, state=None, **options):
    """trained()'s State alone (its histories are the history)."""
    return trained(cfg, data, vocab, state, **options)[0]


def trained(cfg, data, vocab, state=None, *, view=View(), ckpt=None, max_seconds=None, corpus_sha256=None):
    """Run updates until state.step == cfg.steps; returns (the State, the run's summary: the dict written
    last to summary.json, or made once at the end when there is no checkpoint file).

    data: (N,) indices of the whole text; the last val_fraction of it is held out, validation reads its first half.
    view: what is shown (View). ckpt: the checkpoint file, written every cfg.checkpoint_every updates, at
    the end, when a signal stops training and on divergence (None: nowhere), each time with summary.json
    beside it. max_seconds: stop (status "budget") once training has taken this long. corpus_sha256: the
    text's sha256 for the checkpoint (computed when None).
    """
    kernels.keep_freed_memory()                 # one update's arrays reused by the next
    packed = cfg.cell != "rnn" and kernels.packs(cfg.batch_size, np.dtype(cfg.dtype))   # lib/model/_packed.h
    with deferred() as stop, kernels.blas_on_one_thread(when=packed):
        run = Session(cfg, data, vocab, state, view, ckpt, corpus_sha256, stop)
        state = run.state
        with run.closing(), Clock(state) as clock:
            while state.step < cfg.steps and not stop and not clock.over(max_seconds):
                X, Y = inputs_and_targets(cfg, run.train_data, state.e, state.step)
                with clock.paused():
                    run.record(X[0, 0])         # a validation loss and a sample, where due
                if stop:                        # a signal came while they were made: save before updating
                    break
                run.update(state, X, Y)
                advance(cfg, state, run.n_train)
                view.update(state)
                if state.step % cfg.checkpoint_every == 0 and state.step < cfg.steps:
                    with clock.paused():
                        run.checkpoint()
        return run.finish(stop)             # saved; the last validation loss and sample


class Clock:
    """The training time of a run, in state.seconds: it runs inside `with Clock(state)`, except inside
    `with clock.paused():` (validation, samples, checkpoints)."""

    def __init__(self, state):
        self.state = state

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.state.seconds += time.perf_counter() - self.t0

    @contextmanager
    def paused(self):
        self.__exit__()
        try:
            yield
        finally:
            self.__enter__()

    def over(self, max_seconds):
        """Whether training has taken max_seconds (None: never)."""
        return max_seconds is not None and self.state.seconds + time.perf_counter() - self.t0 >= max_seconds


class Session:
    """One call of train(): the text's two parts, the arrays an update writes into, and what is done
    between updates (record, checkpoint) and at the end (finish)."""

    def __init__(self, cfg, data, vocab, state, view, ckpt, corpus_sha256, stop):
        check_sizes(cfg, len(data))
        self.cfg, self.data, self.vocab, self.view = cfg, data, vocab, view
        self.ckpt = None if ckpt is None else Path(ckpt)
        self.train_data, held = split(data, cfg)
        self.val_data = None if held is None else halves(held)[0]   # the second half is evaluation's
        self.n_train = len(self.train_data)
        self.state = state = state or init_state(cfg, vocab.K)
        if ckpt is not None and corpus_sha256 is None:
            corpus_sha256 = hashlib.sha256(vocab.decode(data).encode("utf-8")).hexdigest()
        self.corpus_sha256 = corpus_sha256
        self.saved = state.step if state.status != "new" else None   # the update of the checkpoint on disk
        self.stopping = stop.__bool__       # a long sample or validation gives way to a signal
        self.cell = cells.of(cfg)
        self.update = Update(cfg, vocab.K, state.theta)
        state.samples = [s for s in state.samples   # drop a shorter session's end-of-run sample
                         if s["step"] % cfg.sample_every == 0 or s["step"] == cfg.steps]
        kept = [v for v in state.val if v["step"] % cfg.val_every == 0 or v["step"] == cfg.steps]
        if len(kept) < len(state.val):      # its end-of-run validation too, and the best that one chose
            HeldBest.restore(state)
        state.val = kept
        state.status = "running"

    def record(self, x0):
        """A validation loss and a sample of the current state, where due (every val_every and
        sample_every updates, and at the end) and not recorded yet; x0: the next input character."""
        cfg, state, last = self.cfg, self.state, self.state.status != "running"
        try:
            if self.val_data is not None and _due(state.val, state.step, cfg.val_every, last):
                self.validate()
            if _due(state.samples, state.step, cfg.sample_every, last):
                state.samples.append(self.sample(x0))
                self.view.sample(state.samples[-1])
        except Abandoned:                   # a signal came: the loop stops; a resumed run does this again
            pass

    def validate(self):
        """The validation loss of the weights (their average, with ema); the best model, and plateau_factor
        applied when the loss is no lower than the best before it. A validation off val_every's schedule
        (at the end of a session) leaves eta alone and holds the best it replaces: a resumed run, which
        drops that validation, goes on exactly as the run that never stopped."""
        cfg, state = self.cfg, self.state
        best, scheduled = state.best_val_loss, state.step % cfg.val_every == 0
        read = state.theta if state.avg_theta is None else state.avg_theta
        P = self.cell.views(read, self.vocab.K, cfg.m)
        loss = validation_loss(self.cell, P, self.train_data, self.val_data, state.hprev[:1], stopping=self.stopping)
        state.val.append({"step": state.step, "seconds": state.seconds, "loss": loss})
        if best is None or loss < best:
            if not scheduled:
                HeldBest.hold(state)
            np.copyto(state.best_theta, read)
            state.best_step = state.step
        elif scheduled:                     # no better than before: a smaller step (plateau_factor 1: the same)
            state.eta_scale *= cfg.plateau_factor

    def sample(self, x0):
        """A sample of sample_length characters from hprev, x0 first, with the Generator of (seed, step)."""
        cfg, state = self.cfg, self.state
        P = self.cell.views(state.theta, self.vocab.K, cfg.m)
        idx, _ = sample(self.cell, P, state.hprev[0], x0, cfg.sample_length,
                        np.random.default_rng([cfg.seed, state.step]), stopping=self.stopping)
        return {"step": state.step, "smooth_loss": state.smooth_loss, "text": self.vocab.decode(idx)}

    def checkpoint(self):
        """Write the checkpoint (when there is a file for it), then summary.json beside it; TrainingStopped,
        naming the checkpoint that is intact, when they cannot be written."""
        if self.ckpt is None:
            return
        written = None
        try:
            checkpoint.save_state(self.ckpt, self.cfg, self.vocab, self.state, self.corpus_sha256, len(self.data))
            written = self.state.step
            checkpoint.save_summary(self.ckpt.parent / checkpoint.SUMMARY, self.summary())
        except OSError as err:
            last = self.saved if written is None else written
            before = "no checkpoint was written" if last is None else f"the checkpoint of update {last:,} is intact"
            raise TrainingStopped(f"Could not write {err.filename or self.ckpt} ({err.strerror}); {before}. Free "
                                  "some space (or fix the folder) and train again, which resumes from it.") from None
        self.saved = written

    @contextmanager
    def closing(self):
        """Around the loop: on divergence the run is saved; whatever happens, the histories are cut to
        the updates done and the view is closed."""
        state = self.state
        try:
            yield
        except Diverged as err:
            state.status = "diverged"
            self.checkpoint()
            where = f" in {self.ckpt}" if self.ckpt else ""
            raise Diverged(f"{err}{where}." if state.step else str(err)) from None
        finally:
            state.losses, state.smooth_losses = state.losses[:state.step], state.smooth_losses[:state.step]
            self.view.close(state)

    def summary(self):
        """The run's facts as they stand (lib/training/state.py's summary), kept as the last one made."""
        self.last_summary = summary(self.cfg, self.vocab, self.state, len(self.data), self.corpus_sha256)
        return self.last_summary

    def finish(self, stop):
        """After the loop: the last validation loss and sample, and the checkpoint; returns (the state, the
        summary written with it). A run a signal stopped (before, or while the last sample was drawn) is
        saved, and its signal raised."""
        state = self.state
        if not stop:
            state.status = "done" if state.step >= self.cfg.steps else "budget"
            X, _ = inputs_and_targets(self.cfg, self.train_data, state.e, state.step)
            self.record(X[0, 0])
        if stop:
            state.status = "interrupted"
            self.checkpoint()
            self.view.say(f"Interrupted at update {state.step:,}; the run is saved"
                          f"{' in ' + str(self.ckpt) + ' and resumes from there' if self.ckpt else ''}.")
            raise stop_exception(stop.signal)
        self.checkpoint()
        return state, self.last_summary if self.ckpt is not None else self.summary()


def _due(history, step, every, last):
    """Whether a history (samples or validation losses) is due an entry at step: every `every` updates
    and at the end (last), once."""
    return (step % every == 0 or last) and not (history and history[-1]["step"] == step)


# --- one update -------------------------------------------------------------------------------

class Update:
    """One update of a run: its step (assignment_step, or extended_step when a setting goes beyond the
    assignment; chosen once, not at every update) and what it writes into: the gradient g (n,) and its
    views G, scratch space, the cell with the views P of the parameters. update(state, X, Y) runs it."""

    def __init__(self, cfg, K, theta):
        self.cfg, self.cell = cfg, cells.of(cfg)
        self.P = self.cell.views(theta, K, cfg.m)
        self.g = np.zeros_like(theta)
        self.G = self.cell.views(self.g, K, cfg.m)
        self.tmp = np.empty_like(theta)
        self.zeros = np.zeros((cfg.batch_size, self.cell.state_size(cfg.m)), dtype=theta.dtype)
        self.too_high = DIVERGED * cfg.seq_length * math.log(K)
        self.step = assignment_step if cfg.is_assignment() else extended_step

    def __call__(self, state, X, Y):
        """The update of state from the chunk X, Y (T, B); returns its loss."""
        return self.step(self.cfg, state, X, Y, self)


def assignment_step(cfg, state, X, Y, u):
    """The assignment's update of state from the chunk X, Y (T, 1), with u the run's Update; returns its loss.

    Raises Diverged where the loss is NaN, infinite or far above a uniform guess, before changing state.
    """
    loss, _, h = u.cell.loss_and_grads(u.P, X, Y, state.hprev, out=u.G)   # forward and back through the chunk
    check_loss(cfg, state, loss, u.too_high)
    state.smooth_loss = loss if state.step == 0 else 0.999 * state.smooth_loss + 0.001 * loss
    record_loss(cfg, state, loss)
    # g clipped to [-clip, clip]; mem += g^2; theta -= eta g / sqrt(mem + eps)  (lib/optim.py's clip_ and
    # adagrad_step_, in one compiled pass where lib/model/kernels.py is built)
    kernels.clip_adagrad_(state.theta, u.g, state.opt["mem"], cfg.clip, cfg.eta, cfg.eps, u.tmp)
    state.hprev, state.step = h, state.step + 1             # hprev carried to the next chunk
    return loss


def extended_step(cfg, state, X, Y, u):
    """assignment_step with what goes beyond the assignment: B sequences (X, Y (T, B); random chunks
    start from a zero state), dropout, the loss divided by T B, Adam, eta lowered on a plateau and weight
    averaging. Returns the loss of one sequence (T characters)."""
    i = state.step
    h0 = state.hprev if cfg.chunks == "sequential" else u.zeros
    keep = dropout_mask(cfg, i, u.g.dtype) if cfg.dropout else None
    loss, _, h = u.cell.loss_and_grads(u.P, X, Y, h0, out=u.G, keep=keep)
    loss /= cfg.batch_size                  # the loss of one sequence of T characters
    check_loss(cfg, state, loss, u.too_high)
    state.smooth_loss = loss if i == 0 else 0.999 * state.smooth_loss + 0.001 * loss
    record_loss(cfg, state, loss)
    scale = 1.0 / (cfg.seq_length * cfg.batch_size) if cfg.normalize_loss else 1.0
    eta = cfg.eta * state.eta_scale
    if cfg.optimizer == "adagrad":
        if scale != 1.0:
            u.g *= scale
        kernels.clip_adagrad_(state.theta, u.g, state.opt["mem"], cfg.clip, eta, cfg.eps, u.tmp)
    else:                                   # g *= scale, clip_, adam_step_
        kernels.clip_adam_(state.theta, u.g, state.opt["m"], state.opt["v"], i + 1, eta, cfg.beta1, cfg.beta2,
                           cfg.eps, cfg.clip, scale, u.tmp)
    if cfg.ema:                             # avg += (1 - a) (theta - avg), a ramped up over the first updates
        a = min(cfg.ema, (1 + i) / (10 + i))
        np.subtract(state.theta, state.avg_theta, out=u.tmp)
        u.tmp *= 1 - a
        state.avg_theta += u.tmp
    state.hprev, state.step = h, i + 1
    return loss


def dropout_mask(cfg, step, dtype):
    """(layers, T B, m): 0 for a dropped unit, 1 / (1 - p) for a kept one, from the Generator seeded by
    (seed, 2, step); [0] before the output layer, [l] where layer l reads the h_t of layer l - 1."""
    rng = np.random.default_rng([cfg.seed, 2, step])
    kept = rng.random((cfg.layers, cfg.seq_length * cfg.batch_size, cfg.m), dtype=np.float32) >= cfg.dropout
    return kept.astype(dtype) / dtype.type(1 - cfg.dropout)


def check_loss(cfg, state, loss, too_high):
    """Diverged when the loss is NaN, infinite or above too_high, saying what to do."""
    if loss <= too_high:
        return
    uniform = too_high / DIVERGED
    if state.step == 0:
        raise Diverged(f"The first loss is {loss:.4g}, where an untrained network gives about {uniform:.1f} "
                       f"(T ln K): the initial parameters are too large (sig = {cfg.sig}); the assignment uses "
                       "sig = 0.01.")
    raise Diverged(f"Training stopped at update {state.step + 1:,}: the loss is {loss:.4g} (a uniform guess "
                   f"gives {uniform:.1f}); eta = {cfg.eta} is probably too large. The best model so far (after "
                   f"{state.best_step:,} updates) is kept")


def record_loss(cfg, state, loss):
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


def _grow(a, n):
    """a copied into a longer zero array of at least n entries (doubling, so growth is cheap)."""
    out = np.zeros(max(n, 2 * len(a), 1024))
    out[:len(a)] = a
    return out
