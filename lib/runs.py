"""A run in a folder: start it, or resume the one there, and say what it did.

run() is the one way in, for the notebooks and the command line (lib/train.py) alike; it returns a Run
record (cfg, vocab, state, summary), as load_run() and seed_runs() do:
  1. the corpus is read and the settings are checked against the text and against the memory they need;
  2. the folder is checked before any update (a folder this process can write in, with room for a
     checkpoint) and locked, so that one run at a time writes there;
  3. a checkpoint already in the folder is resumed when it continues a run with these settings on this
     text (all but steps, sample_every and checkpoint_every must match), and loaded as it is when that
     run is complete. Otherwise nothing is touched and RunExists names the choices: continue that run
     with its own settings, use another folder, or overwrite, which moves the old run aside into
     replaced-<date>-<time>/ in the folder (nothing is ever deleted);
  4. summary.json is written beside the checkpoint each time it is saved.
"""
import json
import math
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from lib import cells, checkpoint, files, limits
from lib.config import RESUMABLE, UNBOUNDED, Config, SettingError
from lib.data import Corpus, Vocab, check_sizes, default_corpus_path, held_out, load_corpus, short_path
from lib.loop import train
from lib.progress import Lines, Progress
from lib.state import OPTIMIZER_STATE, State

CKPT, SUMMARY = "checkpoint.npz", "summary.json"


class Run(NamedTuple):
    """A run: its settings, the vocabulary of its text, its State (histories included) and its summary
    (the dict of summary.json)."""
    cfg: Config
    vocab: Vocab
    state: State
    summary: dict


class RunExists(ValueError):
    """The folder holds another run; the message names the choices."""


class Names(NamedTuple):
    """What the user calls run()'s options, for its messages: the command line's --out, a notebook's
    run_dir, or run()'s own names when Python calls it."""
    out: str = "out_dir"
    overwrite: str = "overwrite=True"
    data: str = "corpus"
    max_seconds: str = "max_seconds"


COMMAND = Names("--out", "--overwrite", "--data", "--max-seconds")


def in_notebook(out, max_seconds="budget_seconds"):
    """The Names of a notebook whose parameters are out (the folder, run_dir or run_root), overwrite,
    corpus and max_seconds (budget_seconds)."""
    return Names(f"the parameter {out}", "the parameter overwrite = True", "the parameter corpus",
                 f"the parameter {max_seconds}")


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
        "best_step": state.best_step, "best_by": "validation loss" if cfg.val_fraction else "smooth loss",
        "status": state.status, "config": cfg.to_dict(),
    }
    if state.val:
        best = min(state.val, key=lambda v: v["loss"])
        info.update({"n_val_chars": n_val, "final_val_loss_per_char": state.val[-1]["loss"],
                     "best_val_loss_per_char": best["loss"], "best_val_loss_bits": best["loss"] / math.log(2),
                     "best_val_step": best["step"], "best_val_chars": best["step"] * per_update})
    return info


def describe(cfg, corpus):
    """The facts printed at the start of a run."""
    vocab, n_chars = corpus.vocab, corpus.n_chars
    n_train = n_chars - held_out(n_chars, cfg)
    chars = cfg.steps * cfg.seq_length * cfg.batch_size
    held = f"; the last {n_chars - n_train:,} held out for validation" if n_train < n_chars else ""
    return (f"{cfg}\ncorpus: {short_path(corpus.path)} ({n_chars:,} characters{held})\n"
            f"K = {vocab.K}: {vocab.chars!r}\nparameters: {cells.of(cfg).n_params(vocab.K, cfg.m):,}; "
            f"{cfg.steps:,} updates "
            f"of {cfg.batch_size} x {cfg.seq_length} characters = {chars / n_train:.2f} epochs")


def run(cfg, corpus=None, out_dir=None, *, overwrite=False, max_seconds=None, progress=True, log=print,
        show_samples=True, names=Names()):
    """Train with cfg on corpus (a path, a Corpus, or None for the default corpus), in out_dir (None:
    nowhere), resuming the run there as the module docstring says. With max_seconds, training stops
    once it has taken that long, and a run that stopped so is complete. progress: a progress line (and
    in Jupyter a live plot); log: where lines of text go (the facts of the run, samples, messages); None
    for neither. names: what the user calls these options (Names), for the messages. Returns a Run."""
    if max_seconds is not None and (isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float))
                                    or not 0 < max_seconds < math.inf):
        raise ValueError(f"{names.max_seconds} must be a positive number of seconds, got {max_seconds!r}.")
    if not isinstance(corpus, Corpus):
        corpus = load_corpus(corpus or default_corpus_path(), cfg.seq_length + 1)
    vocab, log = corpus.vocab, log or (lambda line: None)
    check_sizes(cfg, corpus.n_chars)
    check_memory(cfg, vocab.K)
    if max_seconds is None:
        check_sampling(cfg, vocab.K)
    log(describe(cfg, corpus))
    if out_dir is None:
        state = train(cfg, corpus.data, vocab, view=_view(cfg, 0, progress, log, show_samples, max_seconds),
                      max_seconds=max_seconds)
        return Run(cfg, vocab, state, summary(cfg, vocab, state, corpus.n_chars, corpus.sha256))
    out = Path(out_dir)
    files.check_out_dir(out, checkpoint_bytes(cfg, vocab.K), names.out)
    with files.FolderLock(out):
        state = _resumable(out, cfg, corpus, overwrite, log, names)
        complete = state is not None and (
            (state.status == "done" and state.step == cfg.steps) or
            (state.status == "budget" and max_seconds is not None and state.seconds >= max_seconds))
        if state is not None:
            log(f"{'loading the complete run' if complete else 'resuming'} {out / CKPT} at update {state.step:,}")
        view = _view(cfg, 0 if state is None else state.step, progress, log, show_samples, max_seconds)
        if not complete:                    # a complete run is loaded as it is, not written again

            def saved(s):
                _write_summary(out, cfg, vocab, s, corpus)
            state = train(cfg, corpus.data, vocab, state, view=view, ckpt=out / CKPT, max_seconds=max_seconds,
                          corpus_sha256=corpus.sha256, on_save=saved)
        else:                               # shown as training showed it: the samples, the final line and figure
            for s in state.samples:
                view.sample(s)
            view.close(state)
            if not (out / SUMMARY).exists():
                _write_summary(out, cfg, vocab, state, corpus)
    return Run(cfg, vocab, state, summary(cfg, vocab, state, corpus.n_chars, corpus.sha256))


def _write_summary(out, cfg, vocab, state, corpus):
    info = summary(cfg, vocab, state, corpus.n_chars, corpus.sha256)
    files.write_text(out / SUMMARY, json.dumps(info, indent=2) + "\n")


def _view(cfg, start, progress, log, show_samples, max_seconds):
    """What training shows: a progress line (Progress), or lines of text (Lines)."""
    if progress:
        return Progress(cfg.steps, start, budget=max_seconds, seq_length=cfg.seq_length, log=log,
                        show_samples=show_samples)
    return Lines(log, show_samples)


def _resumable(out, cfg, corpus, overwrite, log, names):
    """The state of the run in out when it continues cfg on corpus; None when there is none (or it was
    moved aside, with overwrite); RunExists otherwise."""
    ckpt = out / CKPT
    if not ckpt.exists():
        return None
    try:
        old_cfg, vocab, state, meta = checkpoint.load_state(ckpt)
    except checkpoint.CheckpointError as err:
        why, remedy = f"holds a checkpoint that cannot be resumed ({err})", ""
    else:
        why, remedy = _mismatch(out, old_cfg, cfg, vocab, meta, corpus, state, names)
        if why is None:
            return state
    if not overwrite:
        raise RunExists(f"{out} {why}. {remedy}Or use another folder ({names.out}), or overwrite "
                        f"({names.overwrite}), which keeps the old run in "
                        f"{out}/replaced-<date>-<time>/.")
    aside = set_aside(out)
    log(f"{out} {why}: it is kept in {aside}; training starts afresh")
    return None


def _mismatch(out, old_cfg, cfg, vocab, meta, corpus, state, names):
    """(why, remedy) when the checkpoint's run does not continue cfg on corpus, else (None, None)."""
    changed = old_cfg.differences(cfg)
    if changed:
        return (f"holds a run with other settings ({'; '.join(changed)})",
                f"Continue it with its own settings (python -m lib.train --resume {out}). ")
    if vocab != corpus.vocab or meta["corpus"]["sha256"] != corpus.sha256:
        other = f"K = {vocab.K} there, {corpus.vocab.K} here" if vocab != corpus.vocab else \
            f"{meta['corpus']['n_chars']:,} characters there, {corpus.n_chars:,} here, the same vocabulary"
        return f"holds a run on another text ({other})", f"Give that text ({names.data}) to continue it. "
    if state.status == "diverged":
        return f"holds a run that diverged at update {state.step:,}", ""
    if state.step > cfg.steps:
        return (f"holds a run at update {state.step:,}, past steps = {cfg.steps:,}",
                f"Continue it with steps of {state.step:,} or more. ")
    return None, None


def set_aside(out):
    """Move the run in out (checkpoint and summary) into a new folder out/replaced-<date>-<time>/."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside, i = out / f"replaced-{stamp}", 1
    while aside.exists():
        i += 1
        aside = out / f"replaced-{stamp}-{i}"
    aside.mkdir()
    for name in (CKPT, SUMMARY):
        if (out / name).exists():
            (out / name).replace(aside / name)
    return aside


def load_run(run_dir):
    """The Run of a finished run in run_dir, for the notebooks after training.
    The summary is derived from the checkpoint, which is the whole truth of a run."""
    ckpt = Path(run_dir) / CKPT
    if not ckpt.exists():
        raise FileNotFoundError(
            f"No training run in {run_dir}: run notebooks/03_training.ipynb first (or `make report`).")
    cfg, vocab, state, meta = checkpoint.load_state(ckpt)
    if state.status not in ("done", "budget"):
        raise RuntimeError(f"The run in {run_dir} stopped at update {state.step:,} ({state.status}); "
                           "run notebooks/03_training.ipynb again to finish it.")
    return Run(cfg, vocab, state, summary(cfg, vocab, state, meta["corpus"]["n_chars"], meta["corpus"]["sha256"]))


def load_runs(folders, corpus=None):
    """{name: Run} of the complete runs among folders ({name: folder}), leaving out a folder with none (or,
    given a Corpus, a run on another text)."""
    out = {}
    for name, folder in folders.items():
        try:
            r = load_run(folder)
        except (FileNotFoundError, RuntimeError):
            continue
        if corpus is None or r.summary["corpus_sha256"] == corpus.sha256:
            out[name] = r
    return out


def budgeted(val_chars=None, **settings):
    """The Config of a run that its time budget ends (run(..., max_seconds=...)): steps, samples and
    checkpoints out of reach. val_chars: a validation loss every this many characters read."""
    never = UNBOUNDED
    cfg = Config(**{"steps": never, "sample_every": never, "checkpoint_every": never, **settings})
    if val_chars is not None:
        cfg = cfg.replace(val_every=max(1, val_chars // (cfg.seq_length * cfg.batch_size)))
    return cfg


def seed_runs(configs, corpus, folders, n_jobs=-1, backend="loky", max_seconds=None, overwrite=False,
              names=Names()):
    """[Run] of each config in its folder (corpus: a path, or None for the default corpus), quietly, in
    parallel processes: n_jobs -1 uses every core. backend "loky" runs on this machine; with
    dask.distributed installed and a Client made, backend "dask" spreads them over a cluster. Each
    process uses one thread for its matrix products. names: as run()'s."""
    from joblib import Parallel, delayed, parallel_config
    threads = {"inner_max_num_threads": 1} if backend == "loky" else {}
    with parallel_config(backend=backend, n_jobs=n_jobs, **threads):
        return Parallel()(delayed(_quiet_run)(cfg, None if corpus is None else str(corpus), str(folder), max_seconds,
                                              overwrite, names) for cfg, folder in zip(configs, folders))


def _quiet_run(cfg, corpus, folder, max_seconds, overwrite, names):
    return run(cfg, corpus, folder, overwrite=overwrite, progress=False, log=None, max_seconds=max_seconds,
               names=names)


def commands(runs, root):
    """The command lines that train each of runs ({name: Run}) again, into root/name, to its update count."""
    return "\n".join(command(r.cfg, r.summary["steps"], f"{root}/{name}") for name, r in runs.items())


def command(cfg, steps=None, out="DIR"):
    """The command line that trains cfg (its settings that differ from the defaults) to steps updates:
    for a run stopped by its time budget, the update count that reproduces it without one."""
    default, given = Config().to_dict(), cfg.replace(steps=steps or cfg.steps).to_dict()
    options = [_option(k, v) for k, v in given.items() if v != default[k] and k != "checkpoint_every"]
    return " ".join(["python -m lib.train", *options, f"--out {out}"])


def _option(name, value):
    option = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return option if value else "--no-" + option[2:]
    return f"{option} {value}"


def config_of(ckpt, **changes):
    """The Config of the run in ckpt with changes to the settings a resumed run may change."""
    cfg, _, _, _ = checkpoint.load_state(ckpt)
    fixed = sorted(set(changes) - set(RESUMABLE))
    if fixed:
        raise ValueError("--resume continues a run with its own settings; drop "
                         f"{', '.join('--' + k.replace('_', '-') for k in fixed)}.")
    return cfg.replace(**changes)

