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
  4. training writes summary.json beside the checkpoint each time it saves it (lib/training/loop.py's Session).
The facts of a run (summary, describe) and what it costs (memory, checkpoint, samples) are lib/training/state.py's;
the command line that trains a Config again is lib/recipes.py's.
"""
import contextlib
import time
from pathlib import Path
from typing import NamedTuple

from lib.training import checkpoint
from lib.util import files
from lib.training.checkpoint import CKPT, SUMMARY
from lib.config import PYTHON, RESUMABLE, UNBOUNDED, Config, option_name, require
from lib.data import Corpus, Vocab, check_sizes, default_corpus_path, load_corpus
from lib.training.loop import trained
from lib.training.progress import QUIET, Show
from lib.training.state import State, check_memory, check_sampling, checkpoint_bytes, describe, summary


class Run(NamedTuple):
    """A run: its settings, the vocabulary of its text, its State (histories included) and its summary
    (the dict of summary.json)."""
    cfg: Config
    vocab: Vocab
    state: State
    summary: dict


class RunExists(ValueError):
    """The folder holds another run; the message names the choices."""


def run(cfg, corpus=None, out_dir=None, *, overwrite=False, max_seconds=None, show=Show(), names=PYTHON):
    """Train with cfg on corpus (a path, a Corpus, or None for the default corpus), in out_dir (None:
    nowhere), resuming the run there as the module docstring says. With max_seconds, training stops
    once it has taken that long, and a run that stopped so is complete. show: what is shown while it runs
    (lib/training/progress.py's Show; QUIET for nothing). names: how the user wrote these options
    (lib.config.Naming: PYTHON, COMMAND or a notebook's), for the messages. Returns a Run, whose summary is
    the one written to summary.json."""
    if not isinstance(corpus, Corpus):
        corpus = load_corpus(corpus or default_corpus_path(), cfg.seq_length + 1)
    vocab = corpus.vocab
    preflight(cfg, corpus, out_dir, max_seconds, names)
    show.say(describe(cfg, corpus))
    out = None if out_dir is None else Path(out_dir)
    with files.FolderLock(out) if out else contextlib.nullcontext():
        state = None if out is None else _resumable(out, cfg, corpus, overwrite, show.say, names)
        complete = state is not None and (
            (state.status == "done" and state.step == cfg.steps) or
            (state.status == "budget" and max_seconds is not None and state.seconds >= max_seconds))
        if state is not None:
            show.say(f"{'loading the complete run' if complete else 'resuming'} {out / CKPT} at update {state.step:,}")
        view = show.view(cfg, 0 if state is None else state.step, max_seconds)
        if complete:                        # loaded as it is, not written again; shown as training showed it
            view.replay(state)
            info = summary(cfg, vocab, state, corpus.n_chars, corpus.sha256)
            if not (out / SUMMARY).exists():
                checkpoint.save_summary(out / SUMMARY, info)
        else:
            state, info = trained(cfg, corpus.data, vocab, state, view=view, ckpt=out and out / CKPT,
                                  max_seconds=max_seconds, corpus_sha256=corpus.sha256)
    return Run(cfg, vocab, state, info)


def preflight(cfg, corpus, out_dir, max_seconds, names=PYTHON):
    """Everything a run is checked for before it starts, each refused in one line that names the option as
    the user wrote it: the time budget; the settings against the text and against the memory they need;
    the samples' time (without a budget); the folder (one this process can write in, with room for the
    checkpoint, whose files are files)."""
    if max_seconds is not None:
        require("positive", max_seconds, names("max_seconds"))
    check_sizes(cfg, corpus.n_chars)
    check_memory(cfg, corpus.vocab.K)
    if max_seconds is None:
        check_sampling(cfg, corpus.vocab.K)
    if out_dir is not None:
        files.check_out_dir(out_dir, checkpoint_bytes(cfg, corpus.vocab.K), names("out"), (CKPT, SUMMARY),
                            inputs=[("the text", corpus.path)])


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
        raise RunExists(f"{out} {why}. {remedy}Or use another folder ({names('out')}), or overwrite "
                        f"({names('overwrite')}), which keeps the old run in "
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
        return f"holds a run on another text ({other})", f"Give that text ({names('data')}) to continue it. "
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


NOTEBOOK_HINT = "run notebooks/03_training.ipynb first (or `make report`)"


def load_run(run_dir, hint=NOTEBOOK_HINT):
    """The Run of a finished run in run_dir, for the notebooks and the commands after training; hint: what
    to do when there is none yet, as the caller's user would do it. The summary is derived from the
    checkpoint, which is the whole truth of a run."""
    if not str(run_dir).strip():
        raise FileNotFoundError("No run's folder was given (an empty name): give the folder training wrote.")
    ckpt = Path(run_dir) / CKPT
    if Path(run_dir).exists() and not Path(run_dir).is_dir():
        raise FileNotFoundError(f"{run_dir} is a file, not a run's folder: give the folder that training wrote "
                                "(notebook 3's run_dir, or lib.train's --out).")
    if not ckpt.exists():
        raise FileNotFoundError(f"No training run in {run_dir}: {hint}.")
    cfg, vocab, state, meta = checkpoint.load_state(ckpt)
    if state.status not in ("done", "budget"):
        raise RuntimeError(f"The run in {run_dir} stopped at update {state.step:,} ({state.status}); finish it "
                           f"first (python -m lib.train --resume {run_dir}, or the notebook that trains it, again).")
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
              names=PYTHON):
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
    return run(cfg, corpus, folder, overwrite=overwrite, show=QUIET, max_seconds=max_seconds, names=names)


def config_of(ckpt, recipe=None, **changes):
    """The Config of the run in ckpt with changes (options typed) to the settings a resumed run may change.
    recipe: (its path, its settings), a recipe given beside --resume: the settings it shares with the run
    are fine; one that differs and may not change is refused, naming the recipe's value and the run's."""
    cfg, _, _, _ = checkpoint.load_state(ckpt)
    fixed = sorted(set(changes) - set(RESUMABLE))
    if fixed:
        raise ValueError("--resume continues a run with its own settings; drop "
                         f"{', '.join(map(option_name, fixed))}.")
    if recipe is not None:
        path, settings = recipe
        own = cfg.to_dict()
        other = [f"{k} = {v!r} where the run has {own[k]!r}" for k, v in settings.items()
                 if k not in RESUMABLE and v != own[k]]
        if other:
            raise ValueError(f"--resume continues a run with its own settings, and the recipe {path} sets "
                             f"{'; '.join(other)}: leave out --config, or train that recipe in another --out.")
        changes = {**{k: v for k, v in settings.items() if k in RESUMABLE}, **changes}
    return cfg.replace(**changes)

