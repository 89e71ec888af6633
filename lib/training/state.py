"""Everything that changes while a network trains, in one object that a checkpoint holds whole; what it
costs (memory, the checkpoint's size, the samples' time), checked before a run starts; and what it says
(the facts printed at the start, the summary written beside the checkpoint)."""
import math
import time
from dataclasses import dataclass, field, fields

import numpy as np

from lib.model import cells
from lib.util import limits
from lib.config import UNBOUNDED, SettingError
from lib.data import held_out, short_path

OPTIMIZER_STATE = {"adagrad": ("mem",), "adam": ("m", "v")}   # the arrays each optimiser keeps
STATUSES = ("new", "running", "done", "budget", "interrupted", "diverged")
MAX_COUNT = 10**15  # upper bound for any step or count in a checkpoint


def _count(lo=0, hi=lambda meta: MAX_COUNT):
    """A whole number from lo to hi(meta), the checkpoint's meta record."""
    return lambda v, meta: not isinstance(v, bool) and isinstance(v, int) and lo <= v <= hi(meta)


def _number(v, meta=None):
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) and v >= 0


def _loss(v, meta):                         # None before the first update, a finite number after it
    return v is None if meta["step"] == 0 else _number(v)


def scalar(default, check):
    """A field of State that the checkpoint's meta record holds as a JSON scalar, under its own name (None
    where the value is not a finite number; read back as the field's default). check(value, meta): whether
    a value read from a checkpoint is one a run can have (lib/training/checkpoint.py refuses it otherwise)."""
    return field(default=default, metadata={"check": check})


@dataclass
class State:
    """The state of a run after `step` updates. Histories hold one entry per update.

    The best model is the parameters after best_step updates: those with the lowest validation loss
    when the run has validation, else those behind the lowest smooth loss.
    """
    theta: np.ndarray               # (n,) parameters, flat (the cell's views() splits them)
    opt: dict                       # the optimiser's arrays (n,): AdaGrad "mem"; Adam "m" and "v"
    best_theta: np.ndarray          # (n,) the best model's parameters
    hprev: np.ndarray               # (B, S) hidden state of each stream after the last chunk
    avg_theta: np.ndarray = None    # (n,) with cfg.ema: the weights averaged over recent updates
    # the scalars, in the order a checkpoint checks them (step first: the others are bounded by it)
    step: int = scalar(0, _count())                                             # updates done
    e: int = scalar(0, _count(hi=lambda meta: meta["corpus"]["n_chars"] - 1))    # the next chunk's position
    epoch: int = scalar(0, _count())                                            # epochs begun, minus one
    smooth_loss: float = scalar(None, _loss)                                    # None until the first update
    lowest_smooth_loss: float = scalar(math.inf, _loss)
    lowest_smooth_step: int = scalar(-1, _count(-1, lambda meta: max(meta["step"] - 1, -1)))
    # i: the smooth loss recorded at update i + 1 (of the parameters after i)
    best_step: int = scalar(0, _count(hi=lambda meta: meta["step"]))    # the best model: after this many updates
    seconds: float = scalar(0.0, _number)   # time spent training (validation excluded), over all sessions
    eta_scale: float = scalar(1.0, lambda v, meta: _number(v) and 0 < v <= 1)   # eta is cfg.eta * eta_scale
    status: str = scalar("new", lambda v, meta: v in STATUSES)   # "budget": stopped when its time ran out
    held_step: int = scalar(None, lambda v, meta: v is None or _count(hi=lambda meta: meta["step"])(v, meta))
    held_best: np.ndarray = None    # (n,) with held_step: see HeldBest
    losses: np.ndarray = field(default_factory=lambda: np.zeros(0))          # (step,)
    smooth_losses: np.ndarray = field(default_factory=lambda: np.zeros(0))   # (step,)
    epoch_starts: list = field(default_factory=lambda: [0])                  # update at which each epoch began
    samples: list = field(default_factory=list)     # dicts: step, smooth_loss, text
    val: list = field(default_factory=list)         # dicts: step, seconds, loss (nats per character)

    @property
    def best_val_loss(self):
        return min((v["loss"] for v in self.val), default=None)

    @property
    def lowest_smooth_update(self):
        """The update (counted from 1) at which the smooth loss was lowest: it scored the parameters after
        lowest_smooth_step updates."""
        return self.lowest_smooth_step + 1


SCALARS = tuple(f for f in fields(State) if "check" in f.metadata)   # what the checkpoint's meta holds


class HeldBest:
    """The best model before a validation off val_every's schedule, held so that resuming is exact.

    A session that ends between two scheduled validations validates its final weights once more; when
    those are better than the best so far, they become the best model, and the best before them is held in
    state.held_best (with its update, state.held_step). A resumed run drops that extra validation (the run
    that never stopped did not make it) and returns to the held best. tests/test_resume.py's
    test_resume_is_exact, stopped "off every schedule" with validation, fails without this.
    """

    @staticmethod
    def hold(state):
        """Before an off-schedule validation makes the current weights the best: keep the best before it."""
        state.held_best, state.held_step = state.best_theta.copy(), state.best_step

    @staticmethod
    def restore(state):
        """When a resumed session drops the off-schedule validation: the best model is the held one again."""
        if state.held_best is not None:
            np.copyto(state.best_theta, state.held_best)
            state.best_step = state.held_step
        state.held_best = state.held_step = None


def init_state(cfg, K):
    """A fresh State: parameters drawn from Generator(seed) by the cell's init_params, optimiser state zero."""
    cell = cells.of(cfg)
    theta = cell.init_params(K, cfg.m, cfg.sig, np.random.default_rng(cfg.seed), np.dtype(cfg.dtype))
    return State(theta=theta, opt={name: np.zeros_like(theta) for name in OPTIMIZER_STATE[cfg.optimizer]},
                 best_theta=theta.copy(), avg_theta=theta.copy() if cfg.ema else None,
                 hprev=np.zeros((cfg.batch_size, cell.state_size(cfg.m)), theta.dtype))


# --- what a run costs, checked before it starts -------------------------------------------------

def memory_needed(cfg, K):
    """Bytes a run with cfg on a vocabulary of K characters needs besides its corpus: the parameters
    with their copies (best model, gradient, optimiser state, scratch, checkpoint writing in float64),
    the arrays of one update and of reading the held-out text, and the loss histories."""
    cell, size = cells.of(cfg), np.dtype(cfg.dtype).itemsize
    n = cell.n_params(K, cfg.m)
    copies = (4 + len(OPTIMIZER_STATE[cfg.optimizer])) * size + 4 * 8
    per_update = cell.work_bytes(cfg.seq_length, cfg.batch_size, K, cfg.m, size)
    validation = cell.work_bytes(1000, 1, K, cfg.m, size)
    return n * copies + per_update + validation + 24 * min(cfg.steps, 10**7)


def checkpoint_bytes(cfg, K):
    """About how large the checkpoint of a run with cfg grows (its histories up to 10 million updates)."""
    n = cells.of(cfg).n_params(K, cfg.m)
    samples = (min(cfg.steps, 10**7) // cfg.sample_every + 2) * (2 * cfg.sample_length + 16)
    return 8 * n * (2 + len(OPTIMIZER_STATE[cfg.optimizer])) + 16 * min(cfg.steps, 10**7) + samples + 65536


def check_memory(cfg, K):
    """TooLarge, naming the settings that cost most, when a run would not fit in the available memory."""
    limits.check_memory(memory_needed(cfg, K),
                        f"Training with m = {cfg.m:,}, batch_size = {cfg.batch_size:,}, seq_length = "
                        f"{cfg.seq_length:,} on K = {K:,} characters ({cells.of(cfg).n_params(K, cfg.m):,} "
                        "parameters)",
                        "use a smaller --m, --batch-size or --seq-length.")


MAX_SAMPLING = 600   # seconds of drawing samples (besides training) that a run may plan


def check_sampling(cfg, K):
    """SettingError, naming sample_every and sample_length, when the run's samples would take more than
    MAX_SAMPLING seconds to draw (one character's step is timed here, on random parameters)."""
    n_samples = cfg.steps // cfg.sample_every + 2
    chars = n_samples * cfg.sample_length
    if chars < 100_000:                     # under a few seconds for any cell and size
        return
    cell = cells.of(cfg)
    P = cell.views(cell.init_params(K, cfg.m, cfg.sig, np.random.default_rng(0), np.dtype(cfg.dtype)), K, cfg.m)
    h, t0 = np.zeros(cell.state_size(cfg.m), cfg.dtype), time.perf_counter()
    for x in range(200):
        h, _ = cell.step(P, h, x % K)
    seconds = (time.perf_counter() - t0) / 200 * chars
    if seconds > MAX_SAMPLING:
        raise SettingError("sample_length", f"{cfg.sample_length:,} with {{sample_every}} {cfg.sample_every:,} "
                           f"draws {n_samples:,} samples, {chars:,} characters: about {seconds / 60:.0f} minutes "
                           "besides training. Use a larger {sample_every} or a smaller {sample_length}.")


def summary(cfg, vocab, state, n_chars, corpus_sha256=None):
    """The facts of a run, as written to summary.json. n_chars: the whole text, held-out part included."""
    n_val = held_out(n_chars, cfg)
    per_update = cfg.seq_length * cfg.batch_size
    chars = state.step * per_update
    low = state.lowest_smooth_loss
    smooth_bits = None if state.smooth_loss is None else state.smooth_loss / cfg.seq_length / math.log(2)
    info = {
        "steps": state.step, "seconds": round(state.seconds, 3),
        "us_per_step": round(state.seconds / max(state.step, 1) * 1e6, 1),
        "K": vocab.K, "n_params": cells.of(cfg).n_params(vocab.K, cfg.m), "n_chars": n_chars,
        "corpus_sha256": corpus_sha256, "n_train_chars": n_chars - n_val, "chars_per_update": per_update,
        "chars_seen": chars,
        "epochs": round(chars / (n_chars - n_val), 3),
        "first_loss": float(state.losses[0]) if state.step else None,
        "uniform_loss": cfg.seq_length * math.log(vocab.K),
        "final_smooth_loss": state.smooth_loss,
        "final_smooth_loss_bits": smooth_bits,
        "lowest_smooth_loss": None if math.isinf(low) else low, "lowest_smooth_step": state.lowest_smooth_step,
        "lowest_smooth_update": state.lowest_smooth_update,
        "best_step": state.best_step, "best_by": "validation loss" if cfg.val_fraction else "smooth loss",
        "status": state.status, "config": cfg.to_dict(),
    }
    if state.val:
        best = min(state.val, key=lambda v: v["loss"])
        info.update({"n_val_chars": n_val, "n_validated_chars": n_val // 2,
                     "final_val_loss_per_char": state.val[-1]["loss"],
                     "best_val_loss_per_char": best["loss"], "best_val_loss_bits": best["loss"] / math.log(2),
                     "best_val_step": best["step"], "best_val_chars": best["step"] * per_update})
    return info


def describe(cfg, corpus):
    """The facts printed at the start of a run."""
    vocab, n_chars = corpus.vocab, corpus.n_chars
    n_train = n_chars - held_out(n_chars, cfg)
    chars = cfg.steps * cfg.seq_length * cfg.batch_size
    held = (f"; the last {n_chars - n_train:,} held out, validation reads the first {(n_chars - n_train) // 2:,}"
            if n_train < n_chars else "")
    return (f"{cfg}\ncorpus: {short_path(corpus.path)} ({n_chars:,} characters{held})\n"
            f"K = {vocab.K}: {vocab.chars!r}\nparameters: {cells.of(cfg).n_params(vocab.K, cfg.m):,}; "
            + (f"updates of {cfg.batch_size} x {cfg.seq_length} characters until the time budget ends"
               if cfg.steps >= UNBOUNDED else f"{cfg.steps:,} updates of {cfg.batch_size} x {cfg.seq_length} "
               f"characters = {chars / n_train:.2f} epochs"))
