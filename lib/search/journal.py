"""The study of lib.search, a journal file that Optuna appends to: opened (mended first, when its last
record was torn), its interrupted trials queued again, the trials that count, and a stored study read back
for notebook 9 (load, facts, importances).
"""
import json
import time
from pathlib import Path

from lib.util import files

STUDY, BEST = "study.log", "best.json"


class SearchError(ValueError):
    """A study that cannot go on (a damaged study file, an unreachable scheduler); the message says why."""


def mend_journal(path):
    """A journal whose last record was torn (no line end: a kill -9, a power cut or a full disk while it was
    appended) is cut back to its last whole record, so that the next record does not join the torn one
    and make the whole file unreadable. The torn bytes are kept in path.torn-<date>-<time> first. Returns
    (that file, the bytes moved), or None when the journal is whole, or is not a journal at all (a whole
    record that is not JSON: open_study then refuses it, untouched)."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    with open(path, "rb+") as f:
        *whole, torn = f.read().split(b"\n")
        if not torn:
            return None
        try:
            for line in whole:
                json.loads(line)
        except ValueError:
            return None
        kept = path.with_name(f"{path.name}.torn-{time.strftime('%Y%m%d-%H%M%S')}")
        files.write_bytes(kept, torn)
        f.truncate(f.tell() - len(torn))
    return kept, len(torn)


def sampler(seed, n_trials):
    """Optuna's TPE sampler for a session of the study that holds n_trials trials: seeded by (seed,
    n_trials), so that a fresh study repeats itself exactly, and a resumed one draws on where the one
    before stopped instead of drawing its first settings again."""
    import numpy as np
    import optuna
    return optuna.samplers.TPESampler(seed=int(np.random.SeedSequence([seed, n_trials]).generate_state(1)[0]),
                                      n_startup_trials=8, constant_liar=True)


def open_study(out, seed):
    """The study kept in out/study.log, created or loaded, with sampler(seed, its trials so far)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = out / STUDY
    try:
        storage = JournalStorage(JournalFileBackend(str(path)))
        pruner = optuna.pruners.MedianPruner(n_startup_trials=4)
        if path.exists() and path.stat().st_size:          # loaded without a record appended
            study = optuna.load_study(storage=storage, study_name="search", pruner=pruner)
        else:
            study = optuna.create_study(storage=storage, study_name="search", direction="minimize", pruner=pruner)
        study.sampler = sampler(seed, len(study.get_trials(deepcopy=False)))
        return study
    except (ValueError, KeyError, TypeError, json.JSONDecodeError, UnicodeDecodeError, AttributeError) as err:
        raise SearchError(f"{path} is not a study this command can read ({type(err).__name__}: {err}); move it "
                          f"away to start a new study in {out}.") from None


def check_same(study, facts, out):
    """A study goes on only with what it began with: the same text, the same trial budget, the same
    validation (the first half of the held-out part). facts: {corpus_sha256, corpus, budget (the option as
    given), validation} of this command, stored with a new study; SearchError naming the option when an old
    study's differ."""
    old = study.user_attrs.get("facts")
    if old is None:
        if study.get_trials(deepcopy=False):
            raise SearchError(f"{out / STUDY} holds a study from before its text and budget were stored with it "
                              "(its trials validated on the whole held-out part); its scores cannot be mixed with "
                              "new ones. Use another --out for a new study.")
        study.set_user_attr("facts", facts)
        return
    if old["corpus_sha256"] != facts["corpus_sha256"]:
        raise SearchError(f"{out / STUDY} is a study of another text ({old['corpus']}), not --data "
                          f"{facts['corpus']}; scores on different texts cannot be mixed. Give that text, or "
                          "another --out for a new study.")
    for key in ("budget", "validation"):
        if old[key] != facts[key]:
            raise SearchError(f"{out / STUDY} is a study of trials with {old[key]}, not {facts[key]}; their "
                              f"scores cannot be mixed. Give {old[key]}, or another --out for a new study.")


def requeue_interrupted(study):
    """Trials left running by a session that was stopped or crashed, or stopped by a failure of the
    machine or the input (interrupt()): failed, and queued again with the same settings, to go on from
    their run's checkpoint (folder_of()). Returns how many."""
    from optuna.trial import TrialState
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in stale:
        interrupt(study, t)
    return len(stale)


def interrupt(study, trial):
    """Mark a trial (FrozenTrial or Trial) interrupted: failed, not counted, and queued again with the
    same settings and its run's folder."""
    from optuna.trial import TrialState
    study.tell(trial.number, state=TrialState.FAIL)
    study.set_user_attr(f"interrupted-{trial.number}", True)
    study.enqueue_trial(trial.params, user_attrs={"folder": folder_of(trial)}, skip_if_exists=False)


def folder_of(trial):
    """The number of the trial whose run folder (trials/N) a trial trains in: its own, or, for a trial
    queued again after an interruption, the interrupted one's, so that it resumes its checkpoint."""
    return trial.user_attrs.get("folder", trial.number)


def finished(study):
    """The trials that count: complete, pruned, or failed for a reason other than an interruption."""
    from optuna.trial import TrialState
    gone = {int(k.split("-")[1]) for k in study.user_attrs if k.startswith("interrupted-")}
    return [t for t in study.get_trials(deepcopy=False)
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
            or (t.state == TrialState.FAIL and t.number not in gone)]


# --- reading a stored study (notebook 9) ----------------------------------------------------------

def load(folder):
    """(the study in folder/study.log, read with Optuna; best.json's dict). FileNotFoundError when the
    folder holds no study."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    folder = Path(folder)
    if not (folder / STUDY).exists() or not (folder / BEST).exists():
        raise FileNotFoundError(f"{folder} holds no finished study (study.log and best.json); run lib.search "
                                f"with --out {folder} first.")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="search", storage=JournalStorage(JournalFileBackend(str(folder / STUDY))))
    return study, json.loads((folder / BEST).read_text())


def damage(folder, study, best):
    """What is wrong with a stored study, as sentences for its reader (none: nothing): a journal that ends in
    a torn record or holds records that are not JSON, and a best.json that does not match the journal (its
    trial not complete there, another result, another count of trials)."""
    from optuna.trial import TrialState
    out = []
    *whole, torn = (Path(folder) / STUDY).read_bytes().split(b"\n")
    bad = 0
    for line in whole:
        try:
            json.loads(line)
        except ValueError:
            bad += 1
    if torn or bad:
        out.append(f"{STUDY} is damaged ({'a torn last record of %d bytes' % len(torn) if torn else ''}"
                   f"{' and ' if torn and bad else ''}{'%d records that are not JSON' % bad if bad else ''}): what "
                   f"is shown is what Optuna could read of it; `python -m lib.search --out {folder}` with the "
                   "study's own text and budget mends a torn end (keeping the bytes aside).")
    trial = next((t for t in study.get_trials(deepcopy=False) if t.number == best["trial"]), None)
    if trial is None or trial.state != TrialState.COMPLETE or trial.value != best["best_val_loss_bits"]:
        held = "does not hold" if trial is None else f"holds as {trial.state.name.lower()}, {trial.value}"
        out.append(f"{BEST} names trial {best['trial']} ({best['best_val_loss_bits']:.3f} bits), which the journal "
                   f"{held}: the two do not match, so the best named here may not be the study's.")
    if best["n_trials"] != len(finished(study)):
        out.append(f"{BEST} counts {best['n_trials']} trials where the journal holds {len(finished(study))}.")
    return out


def facts(study):
    """The study in numbers: trials finished (complete, pruned, failed), the hours from its first start to
    its last end, the worker-hours the trials took, and the trials themselves for plots.search_history:
    [(hours from the start when it ended, held-out bits (for a pruned trial, at its first part), state)]."""
    from optuna.trial import TrialState
    done = [t for t in finished(study) if t.datetime_complete is not None]
    start = min(t.datetime_start for t in done)
    hours = lambda t: (t.datetime_complete - start).total_seconds() / 3600     # noqa: E731
    points = [(hours(t), t.value if t.state == TrialState.COMPLETE else t.intermediate_values.get(1), t.state.name)
              for t in sorted(done, key=lambda t: t.datetime_complete)]
    count = {s: sum(t.state == s for t in done) for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    return {"trials": len(done), "complete": count[TrialState.COMPLETE], "pruned": count[TrialState.PRUNED],
            "failed": count[TrialState.FAIL], "hours": max(hours(t) for t in done),
            "worker_hours": sum((t.datetime_complete - t.datetime_start).total_seconds() for t in done) / 3600,
            "points": points}


def importances(study):
    """{setting: its share of the variance of the held-out loss over the complete trials} (Optuna's
    fANOVA), the most important first."""
    import optuna
    return optuna.importance.get_param_importances(study)
