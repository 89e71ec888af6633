"""Find a good network for a text automatically: Optuna proposes settings, the trials train in parallel on
this machine's cores or on a dask.distributed cluster, and the study is kept in a file, so that it resumes.

    python -m lib.search --data PATH --trials N --trial-seconds S --out DIR [--workers N | --scheduler ADDRESS]

A trial trains one configuration for S seconds of training (validation not counted; or for a number of
updates, --trial-updates, which makes a trial's result exactly repeatable) with the last 10% of the text
held out, and scores its best validation loss (on the first half of the held-out part) in bits per
character. Optuna's TPE sampler chooses the settings of each trial from the results before it (suggest():
the cell, layers, m, eta, dropout, weight averaging (ema), seq_length and batch_size: SEARCHED); the rest
is FIXED, as the recipe configs/gru-ladder.toml has it (Adam, the loss normalised, float32, ...). The
first trial of a study is HAND, that recipe's own settings (found by hand, docs/ladder.md), so that the
study measures what it must beat at its own budget.
A trial runs in two parts, a third of its budget and the rest: after the first, Optuna's median pruner
stops it if its held-out loss is worse than the median of the trials before it at that point, so a
hopeless configuration costs a third of a trial. The second part resumes the run from its checkpoint, to
the same bits as a run that never stopped. A run that diverges scores as a uniform guess (log2 K bits).

What DIR holds:
    study.log      the Optuna study (a journal file): every trial, its settings, its result
    trials/N/      trial N's run (checkpoint.npz and summary.json, as lib.train writes them)
    best.json      best_val_loss_bits, n_trials, the best trial's config and the command that retrains it

The same command again resumes the study: finished trials are kept, trials cut short by Ctrl-C, a crash
or a failure of the machine run again with the same settings from their run's checkpoint, a study that has
its N trials runs none, and the sampler goes on drawing (it is seeded by --seed and the trials so far, so
a resumed study does not draw its first settings again). A study goes on only with its own text and trial
budget (they are stored with it). A failure of the machine or the input (a full disk, too little memory, a
text changed under it) stops the study with one line and is not counted as a trial. Trials run in dask
workers: --workers N starts N worker processes here (one BLAS thread each; N defaults to the cores and may
not exceed them), and --scheduler tcp://HOST:PORT uses a cluster started the usual way, `dask scheduler`
and `dask worker`. Either way the workers must reach DIR and the text at the same paths (this machine, or
a shared file system). A worker that dies in a trial is replaced and the trial runs again on another, from
its last checkpoint; a trial whose workers die three times is marked failed with the reason, never dropped.
Before it starts, the study states its budget in worker-hours; beyond MAX_WORKER_HOURS it needs
--allow-long.
"""
import json
import math
import os
from pathlib import Path

from lib.util import files
from lib.search.cluster import workers_of
from lib.config import COMMAND, Config
from lib.recipes import command, recipe
from lib.data import CorpusError, load_corpus
from lib.util.limits import TooLarge
from lib.training.loop import Diverged, TrainingStopped
from lib.training.progress import QUIET
from lib.training.runs import budgeted, run
from lib.search.journal import (BEST, STUDY, SearchError, check_same, finished, folder_of, interrupt,
                         mend_journal, open_study, requeue_interrupted)

# the starting point: configs/gru-ladder.toml, the headline until 4 December 2026 (docs/ladder.md); the study
# in data/search/ began with it
SEARCHED = ("cell", "layers", "m", "eta", "dropout", "ema", "seq_length", "batch_size")   # what suggest() draws
START = recipe("gru-ladder")
HAND = {k: getattr(Config(**START), k) for k in SEARCHED}
FIXED = {k: v for k, v in START.items() if k not in SEARCHED}
TRIALS = "trials"
VAL_CHECKS = 8              # held-out losses per trial, about
RATE = 60_000               # characters a second of a GRU with m = 256 on one core, to plan the validations
MAX_WORKER_HOURS = 24       # a study beyond this much training needs --allow-long
UPDATE_SECONDS = 0.1        # about the longest update of the searched space here (a 2-layer LSTM, m = 512,
                            # B = 64, T = 100 on one core), to bound a study budgeted in updates


SEQ_LENGTHS, BATCH_SIZES = [25, 50, 100], [16, 32, 64]     # suggest()'s choices of T and B


def suggest(trial):
    """The settings of a trial (SEARCHED), drawn by Optuna's sampler from the choices and ranges below."""
    return {"cell": trial.suggest_categorical("cell", ["gru", "lstm", "rnn"]),
            "layers": trial.suggest_int("layers", 1, 2),
            "m": trial.suggest_categorical("m", [128, 256, 384, 512]),
            "eta": trial.suggest_float("eta", 1e-3, 1e-2, log=True),
            "dropout": trial.suggest_float("dropout", 0.0, 0.5),
            "ema": trial.suggest_categorical("ema", [0.0, 0.99, 0.999]),
            "seq_length": trial.suggest_categorical("seq_length", SEQ_LENGTHS),
            "batch_size": trial.suggest_categorical("batch_size", BATCH_SIZES)}


def trial_config(settings, seconds=None, updates=None):
    """The Config of a trial with these settings and budget: validations about VAL_CHECKS times in all."""
    if updates is not None:
        cfg = budgeted(**FIXED, **settings).replace(steps=updates)
        return cfg.replace(val_every=max(1, updates // VAL_CHECKS))
    chars = seconds * RATE * (256 / settings["m"]) ** 2 / settings.get("layers", 1)
    return budgeted(val_chars=int(chars / VAL_CHECKS), **FIXED, **settings)


def run_trial(settings, data, folder, budget, part):
    """Train (or resume) a trial's run in folder to the end of its part (a dict: seconds or updates) of
    its whole budget (the same kind); in a worker. Returns {best_val_loss_bits, updates, seconds}."""
    cfg = trial_config(settings, **budget)
    if part.get("updates"):                 # a trial queued again may resume a run past its first part
        cfg = cfg.replace(steps=max(part["updates"], min(_steps_done(folder), budget["updates"])))
    try:
        result = run(cfg, data, folder, max_seconds=part.get("seconds"), show=QUIET, names=COMMAND)
    except Diverged:
        K = load_corpus(data).vocab.K
        return {"best_val_loss_bits": math.log2(K), "updates": None, "seconds": None, "diverged": True}
    s = result.summary
    return {"best_val_loss_bits": s["best_val_loss_bits"], "updates": s["steps"], "seconds": s["seconds"]}


def _steps_done(folder):
    try:
        return int(json.loads((Path(folder) / "summary.json").read_text())["steps"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def check_text(corpus):
    """SearchError, naming --data, unless the text is long enough for the longest chunks suggest() draws."""
    from lib.data import check_sizes
    try:
        check_sizes(Config(**{**FIXED, "seq_length": max(SEQ_LENGTHS), "batch_size": max(BATCH_SIZES)}),
                    corpus.n_chars)
    except ValueError as err:
        raise SearchError(f"--data {corpus.path} is too short for the searched settings: {err}") from None


def best_ngram(corpus):
    """{name, bits}: the best Kneser-Ney n-gram on what the trials' validation reads (the first half of
    their held-out part), the yardstick to beat."""
    from lib.ngrams import TooShort, kneser_ney
    from lib.data import held_out
    n_val = held_out(corpus.n_chars, Config(val_fraction=FIXED["val_fraction"]))
    n_train = corpus.n_chars - n_val
    try:
        bits = kneser_ney(corpus.data[:n_train + n_val // 2], n_train, corpus.vocab.K)
    except TooShort as err:
        raise SearchError(f"{corpus.path} {err}") from None
    except TooLarge as err:
        raise SearchError(f"--data {corpus.path}: {err}") from None
    order = min(bits, key=bits.get)
    return {"name": f"ngram-{order}", "bits": bits[order]}


def parts(seconds, updates):
    """The budgets of a trial's two parts: a third, then all."""
    if updates is not None:
        return [dict(updates=max(1, updates // 3)), dict(updates=updates)]
    return [dict(seconds=seconds / 3), dict(seconds=seconds)]


# --- the study ----------------------------------------------------------------------------------

def hand_result(study):
    """The hand-found recipe's trial (the study's first, enqueued): its number and held-out bits."""
    for t in study.get_trials(deepcopy=False):
        if t.params == HAND and t.value is not None:
            return {"trial": t.number, "best_val_loss_bits": t.value, "settings": HAND}
    return None


def write_best(study, out, n_done, seconds, updates, ngram, corpus):
    """out/best.json from the best complete trial (none yet: nothing written): its result and settings, the
    folder of its run (a trial run again after an interruption trains in the interrupted one's), the text
    the study scored (path and sha256) and the command that trains the same settings on it again."""
    from optuna.trial import TrialState
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    best = study.best_trial
    cfg = trial_config(best.params, seconds, updates)
    info = {"best_val_loss_bits": best.value, "n_trials": n_done, "trial": best.number,
            "run": str(out / TRIALS / str(folder_of(best))), "corpus": str(corpus.path), "sha256": corpus.sha256,
            "trial_seconds": seconds, "trial_updates": updates, "settings": best.params, "config": cfg.to_dict(),
            "command": command(cfg, out="runs/best", data=corpus.path)
            + (f" --max-seconds {seconds:g}" if seconds else ""),
            "hand_found": hand_result(study), "best_ngram": ngram}
    files.write_text(out / BEST, json.dumps(info, indent=2) + "\n")
    return info


# --- the workers ------------------------------------------------------------------------------

def plan(trials, seconds, updates, n_workers, allow_long):
    """The study's training budget in worker-hours, at most (before pruning); SearchError beyond
    MAX_WORKER_HOURS without allow_long, or for more local workers than cores."""
    cores = os.cpu_count() or 1
    if n_workers and n_workers > cores:
        raise SearchError(f"--workers {n_workers} is more than this machine's {cores} cores (a worker trains on "
                          f"one core); use --workers {cores} or fewer, or a cluster with --scheduler.")
    hours = trials * (seconds if seconds is not None else updates * UPDATE_SECONDS) / 3600
    if hours > MAX_WORKER_HOURS and not allow_long:
        each = f"{seconds:g} s" if seconds is not None else f"{updates:,} updates"
        raise SearchError(f"--trials {trials:,} of {each}"
                          f" is up to {hours:,.0f} worker-hours of training, more than {MAX_WORKER_HOURS}; ask for "
                          "fewer trials or a smaller budget, or add --allow-long.")
    return hours


def search(data, trials, out, seconds=None, updates=None, n_workers=None, scheduler=None, seed=0, log=print,
           allow_long=False):
    """Run the study in out until it has `trials` finished trials; returns best.json's dict (or None)."""
    if not str(out).strip():
        raise SearchError("--out DIR is needed (where study.log, trials/ and best.json go).")
    hours = plan(trials, seconds, updates, None if scheduler else n_workers, allow_long)
    corpus = load_corpus(data)               # the text is read here first, so that a bad one fails at once
    check_text(corpus)
    ngram = best_ngram(corpus)
    out = Path(out)
    files.check_folder(out, f"--out {out}")
    for name in (STUDY, BEST):
        files.not_an_input(out / name, "--out", [("the text", corpus.path)], own=(), folder=out)
    facts = {"corpus_sha256": corpus.sha256, "corpus": str(corpus.path),
             "budget": f"--trial-seconds {seconds:g}" if seconds is not None else f"--trial-updates {updates}",
             "validation": "validation on the first half of the held-out part"}
    with files.FolderLock(out, "search"):  # one search at a time writes a study (its trials lock their own folders)
        return _search(out, corpus, ngram, facts, trials, seconds, updates, hours, n_workers, scheduler, seed, log)


def _open(out, facts, seed, log):
    """The study in out, made (with trials/) when there is none, mended when its last record was torn, and
    checked to be of this text and budget; the hand-found recipe queued first in a new one."""
    (out / TRIALS).mkdir(parents=True, exist_ok=True)
    mended = mend_journal(out / STUDY)
    if mended:
        log(f"{out / STUDY} ended in a torn record (a crash or a full disk while it was written); its "
            f"{mended[1]} byte(s) are kept in {mended[0]} and the study goes on from the records before it")
    study = open_study(out, seed)
    check_same(study, facts, out)
    if not study.trials:                    # the yardstick the search must beat comes first
        study.enqueue_trial(HAND)
    return study


def _search(out, corpus, ngram, facts, trials, seconds, updates, hours, n_workers, scheduler, seed, log):
    """search() once it holds the study's folder. A new study is made only once its workers are there, so
    that a scheduler that fails pins no text or budget."""
    study = _open(out, facts, seed, log) if (out / STUDY).exists() else None
    if study is not None and len(finished(study)) >= trials:
        info = write_best(study, out, len(finished(study)), seconds, updates, ngram, corpus)
        log(f"study {out / STUDY}: the study has its {trials} trials; nothing to run")
        return info
    with workers_of(n_workers or os.cpu_count() or 1, scheduler, log) as (client, slots):
        study = study or _open(out, facts, seed, log)
        again = requeue_interrupted(study)
        done = len(finished(study))
        log(f"study {out / STUDY}: {done} trial(s) finished"
            + (f", {again} interrupted one(s) to run again" * bool(again)))
        log(f"{trials - done} trial(s) to run, up to {hours * (trials - done) / trials:.2f} worker-hours of training "
            "(less where trials are pruned; validation not counted)")
        flight, to_run = Flight(client, study, out, str(corpus.path.resolve()), seconds, updates, log), trials - done
        try:
            for future in flight.queue_with(min(slots, to_run)):
                if flight.land(future):             # a trial ended (its place goes to the next one)
                    write_best(study, out, len(finished(study)), seconds, updates, ngram, corpus)
                    if flight.started < to_run:
                        flight.start_new()
        except KeyboardInterrupt:
            flight.cancel()
            log(f"stopped: {len(finished(study))} finished trial(s) are kept in {out / STUDY}; the same command "
                "goes on")
            raise
    info = write_best(study, out, len(finished(study)), seconds, updates, ngram, corpus)
    if info:
        log(f"best: trial {info['trial']}, {info['best_val_loss_bits']:.3f} bits per character; {out / BEST}")
    return info


# the machine's failures or the input's, not a trial's (a run that diverged is the trial's: run_trial scores it)
ENVIRONMENT = (OSError, MemoryError, TooLarge, CorpusError, TrainingStopped, files.FolderError)


def environment(err, out):
    """One line for a failure of the machine or the input, naming the user's option."""
    import errno
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"the disk of --out {out} is full ({err.strerror})"
    if isinstance(err, OSError):
        return f"{err.filename or '--out ' + str(out)}: {err.strerror or err}"
    if isinstance(err, MemoryError):
        return "this machine ran out of memory (fewer --workers, or a smaller text)"
    return str(err)


class Flight:
    """The trials of one call of search() in flight on the dask workers, each in two parts (a third of its
    budget, then the rest): started (start_new, from the sampler), continued after its first part unless
    pruned, and landed in the study when it ends (land)."""

    def __init__(self, client, study, out, data, seconds, updates, log):
        from distributed import as_completed
        self.client, self.study, self.out, self.data, self.log = client, study, out, data, log
        self.budget, self.parts = dict(seconds=seconds, updates=updates), parts(seconds, updates)
        self.queue, self.running, self.started = as_completed(), {}, 0

    def queue_with(self, n):
        """The queue of futures as they finish, with n new trials started first."""
        for _ in range(n):
            self.start_new()
        return self.queue

    def start_new(self):
        trial = self.study.ask()
        suggest(trial)
        self.start(trial, 0)
        self.started += 1

    def start(self, trial, part):
        where = str((self.out / TRIALS / str(folder_of(trial))).resolve())
        future = self.client.submit(run_trial, trial.params, self.data, where, self.budget, self.parts[part],
                                    pure=False)
        self.running[future] = (trial, part)
        self.queue.add(future)

    def land(self, future):
        """Its trial's next step once a part has ended: failed, pruned, continued or complete. Returns
        whether the trial has ended (and so counts against the trials to start)."""
        from distributed.scheduler import KilledWorker
        from optuna.trial import TrialState
        trial, part = self.running.pop(future)
        try:
            result = future.result()
        except KilledWorker:
            return self.fail(trial, "its workers died three times", "the workers running it died three times")
        except ENVIRONMENT as err:      # the machine or the input, not the settings: the study stops
            interrupt(self.study, trial)
            why = environment(err, self.out).rstrip(".")
            raise SearchError(f"trial {trial.number} could not go on: {why}. It is not counted; the same command "
                              "runs it again from its checkpoint once that is fixed.") from None
        except Exception as err:        # a problem of the trial's own: said, and the study goes on
            return self.fail(trial, f"{type(err).__name__}: {err}")
        bits = result["best_val_loss_bits"]
        if part == 0:
            trial.report(bits, step=1)
            if not trial.should_prune():
                self.start(trial, 1)
                return False
            self.study.tell(trial, state=TrialState.PRUNED)
            self.log(f"trial {trial.number} pruned at {bits:.3f} bits/char: {trial.params}")
            return True
        self.study.tell(trial, bits)
        self.log(f"trial {trial.number}: {bits:.3f} bits/char, {result['updates']:,} updates: {trial.params}"
                 if result["updates"] else f"trial {trial.number} diverged")
        return True

    def fail(self, trial, why, said=None):
        from optuna.trial import TrialState
        self.study.tell(trial, state=TrialState.FAIL)
        self.study.set_user_attr(f"error-{trial.number}", why)
        self.log(f"trial {trial.number} failed: {said or why}")
        return True

    def cancel(self):
        for future in list(self.running):
            future.cancel()
