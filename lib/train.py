"""Training: the assignment's AdaGrad loop, with samples, checkpoints and a best model.

One update (step i):
    X, Y = data[e : e+T], data[e+1 : e+T+1]           the next chunk and its targets
    loss, grads, hprev = rnn.loss_and_grads(...)      hprev carried from chunk to chunk
    smooth_loss = 0.999 smooth_loss + 0.001 loss      started from the first loss
    grads clipped to [-clip, clip]; AdaGrad update
    e += T; when the next chunk would run past the text: e = 0, hprev = 0 (a new epoch)
A 200-character sample is drawn before update 0, every sample_every updates, and after the last one,
from hprev with x0 = the next chunk's first input, with the Generator seeded by (seed, step): samples
do not depend on how a run was split into sessions.

Command line:  python -m lib.train --data PATH --steps N --seed S --out DIR [--eta ... --m ...]
               python -m lib.train --resume DIR/checkpoint.npz --steps N
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
from lib.optim import adagrad_step_, clip_
from lib.progress import Progress

DIVERGED = 10.0   # a loss above DIVERGED * T ln K (ten times a uniform guess) stops training


@dataclass(frozen=True)
class Config:
    """The settings of a run; the defaults are the assignment's."""
    m: int = 100                    # hidden units
    seq_length: int = 25            # characters per update (T)
    eta: float = 0.1                # AdaGrad learning rate
    sig: float = 0.01               # standard deviation of the initial U, W, V (b, c start at zero)
    eps: float = 1e-8               # AdaGrad's epsilon, inside the square root
    clip: float = 5.0               # gradients are clipped element-wise to [-clip, clip]
    steps: int = 100_000            # updates in all
    sample_every: int = 10_000      # a sample before update 0, every this many updates, and at the end
    sample_length: int = 200        # characters per sample
    checkpoint_every: int = 10_000  # the checkpoint is written every this many updates and at the end
    seed: int = 0                   # the one seed: initial parameters and the samples drawn in training

    def __post_init__(self):
        for name in ("m", "seq_length", "steps", "sample_every", "sample_length", "checkpoint_every"):
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
    mem: np.ndarray                 # (n,) AdaGrad: sum of squared clipped gradients
    best_theta: np.ndarray          # (n,) the parameters that gave the lowest smooth loss
    hprev: np.ndarray               # (m,) hidden state after the last chunk
    e: int = 0                      # position in the text of the next chunk
    epoch: int = 0                  # epochs begun, minus one
    step: int = 0                   # updates done
    smooth_loss: float = None       # None until the first update
    best_smooth_loss: float = math.inf
    best_step: int = -1             # the update whose loss gave the best smooth loss
    seconds: float = 0.0            # time spent training, over all sessions
    losses: np.ndarray = field(default_factory=lambda: np.zeros(0))          # (step,)
    smooth_losses: np.ndarray = field(default_factory=lambda: np.zeros(0))   # (step,)
    epoch_starts: list = field(default_factory=lambda: [0])                  # update at which each epoch began
    samples: list = field(default_factory=list)     # dicts: step, smooth_loss, text
    status: str = "new"             # new, running, done, interrupted, diverged


class TrainingStopped(RuntimeError):
    """Training stopped early (divergence); the message says why and what was kept."""


def init_state(cfg, K):
    """A fresh State: parameters drawn from Generator(seed), b and c zero, AdaGrad memory zero."""
    theta = rnn.init_params(K, cfg.m, cfg.sig, np.random.default_rng(cfg.seed))
    return State(theta=theta, mem=np.zeros_like(theta), best_theta=theta.copy(), hprev=np.zeros(cfg.m))


def text_sha256(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- checkpoints ------------------------------------------------------------------------------

def save_state(path, cfg, vocab, state, corpus_sha256=""):
    """Write the whole run (see lib/checkpoint.py for the layout) atomically to path."""
    K, m = vocab.K, cfg.m
    arrays = {"hprev": state.hprev, "losses": state.losses[:state.step],
              "smooth_losses": state.smooth_losses[:state.step],
              "epoch_starts": np.array(state.epoch_starts, dtype=np.int64)}
    for prefix, theta in (("", state.theta), ("best_", state.best_theta), ("opt_mem_", state.mem)):
        arrays.update({prefix + name: a for name, a in zip(rnn.NAMES, rnn.views(theta, K, m))})
    meta = {"config": cfg.to_dict(), "vocab": vocab.chars, "corpus_sha256": corpus_sha256,
            "optimizer": "adagrad", "K": K, "e": state.e, "epoch": state.epoch, "step": state.step,
            "smooth_loss": state.smooth_loss, "best_smooth_loss": state.best_smooth_loss,
            "best_step": state.best_step, "seconds": state.seconds, "samples": state.samples,
            "status": state.status}
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
        state = State(theta=flat(""), mem=flat("opt_mem_"), best_theta=flat("best_"),
                      hprev=np.array(arrays["hprev"], dtype=np.float64), e=int(meta["e"]),
                      epoch=int(meta["epoch"]), step=step, smooth_loss=None if smooth is None else float(smooth),
                      best_smooth_loss=float(meta["best_smooth_loss"]), best_step=int(meta["best_step"]),
                      seconds=float(meta["seconds"]), losses=np.array(arrays["losses"], dtype=np.float64),
                      smooth_losses=np.array(arrays["smooth_losses"], dtype=np.float64),
                      epoch_starts=[int(s) for s in arrays["epoch_starts"]],
                      samples=list(meta["samples"]), status=str(meta["status"]))
        if state.theta.shape != (n,) or state.hprev.shape != (m,) or len(state.losses) != step:
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
    out = np.zeros(max(n, len(a)))
    out[:len(a)] = a
    return out


def _sample(cfg, vocab, state, x0):
    P = rnn.views(state.theta, vocab.K, cfg.m)
    rng = np.random.default_rng([cfg.seed, state.step])
    idx, _ = rnn.sample(P, state.hprev, x0, cfg.sample_length, rng)
    return {"step": state.step, "smooth_loss": state.smooth_loss, "text": vocab.decode(idx)}


def train(cfg, data, vocab, state=None, out_dir=None, progress=True, log=print, corpus_sha256="",
          show_samples=True):
    """Run updates until state.step == cfg.steps; returns the State (its histories are the history).

    data: (N,) int indices of the text. out_dir: where checkpoint.npz is written every
    cfg.checkpoint_every updates, at the end, on Ctrl-C and on divergence (None: nowhere).
    log: called with a line of text for the stop messages and, with show_samples, for each sample.
    """
    K, m, T = vocab.K, cfg.m, cfg.seq_length
    N = len(data)
    if N < T + 1:
        raise CorpusError(f"The text has {N} characters; seq_length = {T} needs at least {T + 1}.")
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

    P = rnn.views(state.theta, K, m)
    g = np.zeros_like(state.theta)
    G = rnn.views(g, K, m)                  # gradients land in g through these views
    tmp = np.empty_like(state.theta)
    state.losses = _grow(state.losses, cfg.steps)
    state.smooth_losses = _grow(state.smooth_losses, cfg.steps)
    too_high = DIVERGED * T * math.log(K)
    state.samples = [s for s in state.samples   # drop a shorter session's end-of-run sample
                     if s["step"] % cfg.sample_every == 0 or s["step"] == cfg.steps]
    state.status = "running"
    bar = Progress(cfg.steps, state.step) if progress else None   # show() uses it
    flag = {"stop": False}
    t0 = time.perf_counter()
    try:
        with _sigint_to_flag(flag):
            while state.step < cfg.steps:
                i, e = state.step, state.e
                X, Y = data[e:e + T], data[e + 1:e + T + 1]
                if i % cfg.sample_every == 0 and not (state.samples and state.samples[-1]["step"] == i):
                    state.samples.append(_sample(cfg, vocab, state, X[0]))
                    show(state.samples[-1])
                loss, _, h = rnn.loss_and_grads(P, X, Y, state.hprev, out=G)
                if not loss <= too_high:    # NaN, infinite or exploding
                    state.status = "diverged"
                    save()
                    raise TrainingStopped(
                        f"Training stopped at update {i:,}: the loss is {loss:.4g} (a uniform guess gives "
                        f"{T * math.log(K):.1f}); eta = {cfg.eta} is probably too large. The best model "
                        f"so far (smooth loss {state.best_smooth_loss:.3f} at update {state.best_step:,}) "
                        f"is kept{' in ' + str(ckpt) if ckpt else ''}.")
                state.smooth_loss = loss if i == 0 else 0.999 * state.smooth_loss + 0.001 * loss
                state.losses[i], state.smooth_losses[i] = loss, state.smooth_loss
                if state.smooth_loss < state.best_smooth_loss:
                    state.best_smooth_loss, state.best_step = state.smooth_loss, i
                    np.copyto(state.best_theta, state.theta)
                clip_(g, cfg.clip)
                adagrad_step_(state.theta, g, state.mem, cfg.eta, cfg.eps, tmp)
                state.hprev, state.e, state.step = h, e + T, i + 1
                if state.e + T + 1 > N:     # the next chunk would run past the text: a new epoch
                    state.e, state.hprev = 0, np.zeros(m)
                    state.epoch += 1
                    state.epoch_starts.append(state.step)
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
        if bar:
            bar.close(state.step, state.smooth_loss)
    if state.status == "interrupted":
        save()
        log(f"Interrupted at update {state.step:,}; the run is saved"
            f"{' in ' + str(ckpt) + ' and resumes from there' if ckpt else ''}.")
        raise KeyboardInterrupt
    if not (state.samples and state.samples[-1]["step"] == state.step):
        state.samples.append(_sample(cfg, vocab, state, data[state.e]))
        show(state.samples[-1])
    state.status = "done"
    save()
    return state


def summary(cfg, vocab, state, n_chars, seconds=None):
    """The facts of a run, as written to summary.json."""
    seconds = state.seconds if seconds is None else seconds
    return {
        "steps": state.step, "seconds": round(seconds, 3),
        "us_per_step": round(seconds / max(state.step, 1) * 1e6, 1),
        "K": vocab.K, "n_chars": n_chars, "epochs": round(state.step * cfg.seq_length / n_chars, 3),
        "first_loss": float(state.losses[0]) if state.step else None,
        "uniform_loss": cfg.seq_length * math.log(vocab.K),
        "final_smooth_loss": state.smooth_loss, "best_smooth_loss": state.best_smooth_loss,
        "best_step": state.best_step, "status": state.status, "config": cfg.to_dict(),
    }


def describe(cfg, text, vocab, source):
    """The facts printed at the start of a run."""
    n = rnn.n_params(vocab.K, cfg.m)
    return (f"{cfg}\ncorpus: {source} ({len(text):,} characters)\nK = {vocab.K}: {vocab.chars!r}\n"
            f"parameters: {n:,}; {cfg.steps:,} updates of {cfg.seq_length} characters = "
            f"{cfg.steps * cfg.seq_length / len(text):.2f} epochs")


def run(cfg, corpus=None, out_dir=None, resume=True, progress=True, log=print, show_samples=True):
    """Load the corpus, print the facts, train (resuming a matching run in out_dir), write the summary.

    A checkpoint in out_dir is resumed when it was made with the same settings (all but steps,
    sample_every and checkpoint_every) on the same text and has not gone past cfg.steps; otherwise it
    is renamed replaced-checkpoint.npz (one such copy is kept) and training starts afresh.
    Returns (state, vocab, summary dict).
    """
    text, vocab, data = load_corpus(corpus, cfg.seq_length + 1)
    sha = text_sha256(text)
    log(describe(cfg, text, vocab, short_path(corpus or default_corpus_path())))
    state = None
    ckpt = Path(out_dir) / "checkpoint.npz" if out_dir is not None else None
    if resume and ckpt is not None and ckpt.exists():
        old_cfg, old_vocab, old_state, meta = load_state(ckpt)
        loose = dict(steps=0, sample_every=0, checkpoint_every=0)
        same = {**old_cfg.to_dict(), **loose} == {**cfg.to_dict(), **loose}
        if same and old_vocab == vocab and meta["corpus_sha256"] == sha and old_state.step <= cfg.steps \
                and old_state.status != "diverged":
            state = old_state
            done = state.step == cfg.steps
            log(f"{'loading the complete run' if done else 'resuming'} {ckpt} at update {state.step:,}")
            progress = progress and not done
        else:
            backup = ckpt.with_name("replaced-" + ckpt.name)
            ckpt.replace(backup)
            log(f"{ckpt} held another run (other settings or corpus): it is kept as {backup.name}; "
                "training starts afresh")
    state = train(cfg, data, vocab, state, out_dir, progress, log, sha, show_samples)
    info = summary(cfg, vocab, state, len(text))
    if out_dir is not None:
        (Path(out_dir) / "summary.json").write_text(json.dumps(info, indent=2) + "\n")
    return state, vocab, info


def load_run(run_dir):
    """(cfg, vocab, state, summary) of a finished run in run_dir, for the notebooks after training."""
    ckpt = Path(run_dir) / "checkpoint.npz"
    if not ckpt.exists():
        raise FileNotFoundError(
            f"No training run in {run_dir}: run notebooks/03_training.ipynb first (or `make report`).")
    cfg, vocab, state, meta = load_state(ckpt)
    if state.status != "done":
        raise RuntimeError(f"The run in {run_dir} stopped at update {state.step:,} ({state.status}); "
                           "run notebooks/03_training.ipynb again to finish it.")
    return cfg, vocab, state, json.loads((Path(run_dir) / "summary.json").read_text())


# --- command line -----------------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", help="corpus text file (default: data/goblet_book.txt, else the default corpus)")
    p.add_argument("--out", help="folder for checkpoint.npz and summary.json")
    p.add_argument("--resume", help="a checkpoint.npz to continue (to --steps updates in all)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    for f in dataclasses.fields(Config):
        p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=None,
                       help=f"default {f.default}")
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
            state = train(cfg, data, vocab, state, out, not args.no_progress, corpus_sha256=sha)
            info = summary(cfg, vocab, state, len(text))
            (out / "summary.json").write_text(json.dumps(info, indent=2) + "\n")
        else:
            if not args.out:
                raise ValueError("--out DIR is needed (where checkpoint.npz and summary.json go).")
            cfg = Config(**given)
            state, vocab, info = run(cfg, args.data, args.out, resume=False, progress=not args.no_progress)
    except KeyboardInterrupt:
        sys.exit(130)
    except (ValueError, TrainingStopped) as err:   # CorpusError and CheckpointError are ValueErrors
        sys.exit(f"error: {err}")
    print(json.dumps({k: v for k, v in info.items() if k != "config"}, indent=2))


if __name__ == "__main__":
    main()
