"""lib.search for real: small studies on local worker processes and on a dask scheduler with two worker
processes on 127.0.0.1 (started here as a user would start them), resumed, interrupted, with a worker
killed in the middle of a trial. Budgets are in updates, so that a trial's result is exactly repeatable."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
DASK = str(Path(sys.executable).parent / "dask")


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    """30,000 characters of the default corpus."""
    from lib.data import load_corpus
    path = tmp_path_factory.mktemp("text") / "text.txt"
    path.write_text(load_corpus().text[:30_000], encoding="utf-8")
    return path


def search(*args, timeout=600):
    return subprocess.run([PY, "-m", "lib.search", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def trials_of(out):
    """{number: (params, state, value)} of the study in out, read with Optuna."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    study = optuna.load_study(study_name="search", storage=JournalStorage(JournalFileBackend(str(out / "study.log"))))
    return {t.number: (t.params, t.state.name, t.value) for t in study.trials}


def test_a_local_study_finishes_resumes_and_repeats_nothing(text, tmp_path):
    out = tmp_path / "study"
    first = search("--data", text, "--trials", 3, "--trial-updates", 6, "--out", out, "--workers", 2)
    assert first.returncode == 0, first.stderr
    best = json.loads((out / "best.json").read_text())
    trials = trials_of(out)
    assert best["n_trials"] == 3 and len(trials) == 3 and {s for _, s, _ in trials.values()} == {"COMPLETE"}
    assert best["best_val_loss_bits"] == min(v for _, _, v in trials.values())
    assert best["command"].startswith("python -m lib.train ") and "--optimizer adam" in best["command"]
    assert f"--data {text} " in best["command"] and best["corpus"] == str(text)     # the text the study scored
    assert best["sha256"] == hashlib.sha256(text.read_bytes()).hexdigest()
    assert json.loads((Path(best["run"]) / "summary.json").read_text())["best_val_loss_bits"] == \
        best["best_val_loss_bits"]                                                  # where its checkpoint is
    assert all((out / "trials" / str(n) / "summary.json").exists() for n in trials)
    again = search("--data", text, "--trials", 3, "--trial-updates", 6, "--out", out, "--workers", 2)
    assert again.returncode == 0 and "nothing to run" in again.stdout and trials_of(out) == trials
    more = search("--data", text, "--trials", 4, "--trial-updates", 6, "--out", out, "--workers", 1)
    assert more.returncode == 0, more.stderr
    after = trials_of(out)
    assert len(after) == 4 and all(after[n] == trials[n] for n in trials)
    assert json.loads((out / "best.json").read_text())["n_trials"] == 4
    assert after[3][0] not in [after[n][0] for n in (1, 2)]        # the sampler went on, it did not start over


def test_ctrl_c_keeps_the_finished_trials_and_the_same_command_goes_on(text, tmp_path):
    out = tmp_path / "study"
    args = [PY, "-m", "lib.search", "--data", str(text), "--trials", "4", "--trial-seconds", "3", "--out", str(out),
            "--workers", "1"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and not (out / "best.json").exists():    # one trial finished
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    kept = {n: t for n, t in trials_of(out).items() if t[1] == "COMPLETE"}
    assert kept
    done = search(*args[3:])
    assert done.returncode == 0, done.stderr
    trials = trials_of(out)
    assert all(trials[n] == t for n, t in kept.items())             # finished trials are kept as they were
    assert sum(s in ("COMPLETE", "PRUNED") for _, s, _ in trials.values()) == 4
    cut = [n for n, (_, s, _) in trials.items() if s == "FAIL"]     # the one Ctrl-C cut short ran again,
    for n in cut:                                                   # in its own folder, from its checkpoint
        again = [m for m, (p, s, _) in trials.items() if m > n and p == trials[n][0]]
        assert len(again) == 1 and trials[again[0]][1] in ("COMPLETE", "PRUNED")
        assert not (out / "trials" / str(again[0])).exists() and (out / "trials" / str(n) / "summary.json").exists()


@pytest.fixture
def cluster(tmp_path):
    """A dask scheduler and a `dask worker` with two worker processes on 127.0.0.1; its address."""
    file = tmp_path / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(file)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=env)]
    deadline = time.time() + 60
    while not file.exists() and time.time() < deadline:
        time.sleep(0.2)
    address = json.loads(file.read_text())["address"]
    procs.append(subprocess.Popen([DASK, "worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard",
                                   "--host", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env=env))
    from distributed import Client
    with Client(address, timeout="30s") as client:
        client.wait_for_workers(2, timeout=60)
    yield address
    for p in reversed(procs):
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()


def test_a_study_on_a_real_scheduler_gives_what_local_processes_give(text, tmp_path, cluster):
    remote, local = tmp_path / "remote", tmp_path / "local"
    done = search("--data", text, "--trials", 3, "--trial-updates", 6, "--out", remote, "--scheduler", cluster)
    assert done.returncode == 0, done.stderr
    assert search("--data", text, "--trials", 3, "--trial-updates", 6, "--out", local, "--workers", 2).returncode == 0
    assert trials_of(remote) == trials_of(local)             # the same settings, and the same result for each
    again = search("--data", text, "--trials", 3, "--trial-updates", 6, "--out", remote, "--scheduler", cluster)
    assert again.returncode == 0 and "nothing to run" in again.stdout


def test_a_worker_that_dies_in_a_trial_loses_nothing(text, tmp_path, cluster):
    """One of the two worker processes is killed while it trains; its trial runs again on another."""
    from distributed import Client
    out = tmp_path / "study"
    proc = subprocess.Popen([PY, "-m", "lib.search", "--data", str(text), "--trials", "3", "--trial-seconds", "6",
                             "--out", str(out), "--scheduler", cluster], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    killed = None
    with Client(cluster, timeout="30s") as client:
        deadline = time.time() + 120
        while killed is None and time.time() < deadline:
            busy = [w for w, tasks in client.processing().items() if tasks]
            if busy and (out / "trials" / "0").exists():
                time.sleep(1.5)                                 # inside a trial's training
                busy = [w for w, tasks in client.processing().items() if tasks]
                if busy:
                    killed = busy[0]
                    try:
                        client.run(os._exit, 1, workers=[killed])
                    except Exception:                           # the worker died as it answered
                        pass
            time.sleep(0.2)
    _, err = proc.communicate(timeout=600)
    assert killed is not None
    assert proc.returncode == 0, err
    trials = trials_of(out)
    assert len(trials) == 3 and {s for _, s, _ in trials.values()} == {"COMPLETE"}, trials


@pytest.mark.parametrize("args,code,needle", [
    (["--scheduler", "tcp://127.0.0.1:9"], 1, r"Cannot reach the dask scheduler at tcp://127.0.0.1:9"),
    (["--workers", "0"], 2, r"--workers: must be a positive integer, got '0'"),
    (["--trial-seconds", "-5"], 2, r"--trial-seconds: must be a positive number, got '-5'"),
    (["--workers", "100"], 1, rf"--workers 100 is more than this machine's {os.cpu_count()} cores"),
    (["--trials", "1000000", "--trial-seconds", "1e9"], 1, r"--trials 1,000,000 of 1e\+09 s is up to .* worker-hours "
                                                          r"of training, more than 24; .* or add --allow-long"),
    (["--trials", "100", "--trial-seconds", "3600"], 1, r"up to 100 worker-hours"),
])
def test_bad_input_is_one_line(text, tmp_path, args, code, needle):
    import re
    budget = [] if "--trial-seconds" in args else ["--trial-updates", "5"]
    trials = [] if "--trials" in args else ["--trials", 2]
    t0 = time.time()
    done = search("--data", text, *trials, *budget, "--out", tmp_path / "s", *args)
    assert time.time() - t0 < 60
    assert done.returncode == code and "Traceback" not in done.stderr, done.stderr
    assert re.search(needle, done.stderr) and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "s" / "study.log").exists() and not (tmp_path / "s" / "trials").exists()


def test_a_scheduler_that_fails_pins_nothing_and_an_empty_out_is_refused(text, tmp_path, monkeypatch):
    """A failed --scheduler attempt leaves no study behind (no journal, no trials/), so that a retry with
    another budget is not refused; an empty --out is refused instead of writing into the current folder."""
    out = tmp_path / "s"
    failed = search("--data", text, "--trials", 2, "--trial-updates", 5, "--out", out, "--scheduler", "tcp://127.0.0.1:9")
    assert failed.returncode == 1 and not (out / "study.log").exists() and not (out / "trials").exists()
    empty = subprocess.run([PY, "-m", "lib.search", "--data", str(text), "--trials", "1", "--trial-updates", "5",
                            "--out", ""], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert empty.returncode == 1 and "--out DIR is needed" in empty.stderr and empty.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"], list(tmp_path.iterdir())


def test_a_damaged_study_file_is_refused_in_one_line(text, tmp_path):
    out = tmp_path / "s"
    out.mkdir()
    (out / "study.log").write_text("{this is not a journal\n\x00\x01")
    before = (out / "study.log").read_bytes()
    done = search("--data", text, "--trials", 2, "--trial-updates", 5, "--out", out, "--workers", 1)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "is not a study this command can read" in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert (out / "study.log").read_bytes() == before


def test_a_text_too_short_for_the_ngram_is_one_line(tmp_path):
    short = tmp_path / "three.txt"
    short.write_text("abc")
    done = search("--data", short, "--trials", 2, "--trial-updates", 5, "--out", tmp_path / "s", "--workers", 1)
    assert done.returncode == 1 and "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert "three.txt is too short for the searched settings" in done.stderr and "needs at least" in done.stderr


def test_a_torn_journal_is_mended_not_made_worse(text, tmp_path):
    """A study whose journal ends in a partial record (a kill -9 or a full disk during an append): the next
    search keeps the torn bytes aside, cuts the journal back to its last whole record and goes on; the
    study stays readable, and nothing is lost."""
    out = tmp_path / "s"
    first = search("--data", text, "--trials", 1, "--trial-updates", 5, "--out", out, "--workers", 1)
    assert first.returncode == 0, first.stderr
    torn = b'{"op_code": 5, "worker_id": "0-1", "study_id": 0, "datetime_sta'
    with open(out / "study.log", "ab") as f:
        f.write(torn)
    again = search("--data", text, "--trials", 2, "--trial-updates", 5, "--out", out, "--workers", 1)
    assert again.returncode == 0, again.stderr
    assert "ended in a torn record" in again.stdout
    kept = list(out.glob("study.log.torn-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == torn
    trials = trials_of(out)
    assert len(trials) == 2 and all(state in ("COMPLETE", "PRUNED") for _, state, _ in trials.values()), trials


def test_a_second_search_on_the_same_folder_is_refused(text, tmp_path):
    """The study's folder is locked: a second search on it says which process holds it, in one line, and
    the first goes on untouched."""
    out = tmp_path / "s"
    first = subprocess.Popen([PY, "-m", "lib.search", "--data", str(text), "--trials", "2", "--trial-updates", "3000",
                              "--out", str(out), "--workers", "1"], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not ((out / ".lock").exists() and (out / ".lock").read_text().strip()):
            assert time.time() < deadline and first.poll() is None, "the first search did not start"
            time.sleep(0.2)
        second = search("--data", text, "--trials", 2, "--trial-updates", 5, "--out", out, "--workers", 1)
        assert second.returncode == 1 and second.stderr.count("\n") == 1, second.stderr
        assert f"is in use by another search (process {first.pid})" in second.stderr
        assert first.poll() is None                     # the first one goes on
        while not ((out / "study.log").exists() and (out / "study.log").stat().st_size):   # (once its workers
            assert time.time() < deadline and first.poll() is None, "no study was made"    # are there)
            time.sleep(0.2)
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=120)
    assert trials_of(out) is not None                   # its study is readable after it stopped


def test_a_study_goes_on_only_with_its_own_text_and_budget(text, tmp_path):
    """A study continued on another text, with another trial budget, or one stored before its text was
    (whose trials validated on the whole held-out part), is refused in one line, untouched."""
    out = tmp_path / "s"
    first = search("--data", text, "--trials", 1, "--trial-updates", 5, "--out", out, "--workers", 1)
    assert first.returncode == 0, first.stderr
    before = (out / "study.log").read_bytes()
    other = tmp_path / "other.txt"
    other.write_text(text.read_text(encoding="utf-8")[::-1], encoding="utf-8")
    for args, needle in ((["--data", other, "--trial-updates", 5], f"is a study of another text ({text}), not --data "
                                                                    f"{other}"),
                         (["--data", text, "--trial-updates", 6], "is a study of trials with --trial-updates 5, not "
                                                                  "--trial-updates 6"),
                         (["--data", text, "--trial-seconds", 5], "--trial-updates 5, not --trial-seconds 5")):
        done = search(*args, "--trials", 2, "--out", out, "--workers", 1)
        assert done.returncode == 1 and done.stderr.count("\n") == 1 and needle in done.stderr, done.stderr
    assert (out / "study.log").read_bytes() == before
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    old = tmp_path / "old"
    old.mkdir()
    study = optuna.create_study(storage=JournalStorage(JournalFileBackend(str(old / "study.log"))), study_name="search")
    study.enqueue_trial({"m": 128})
    study.ask()
    done = search("--data", text, "--trials", 2, "--trial-updates", 5, "--out", old, "--workers", 1)
    assert done.returncode == 1 and "from before its text and budget were stored" in done.stderr, done.stderr


def test_a_text_too_short_for_the_searched_settings_is_one_line(text, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text(text.read_text(encoding="utf-8")[:5000], encoding="utf-8")
    done = search("--data", short, "--trials", 2, "--trial-updates", 5, "--out", tmp_path / "s", "--workers", 1)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "short.txt is too short for the searched settings" in done.stderr and "needs at least" in done.stderr


def test_a_text_too_large_for_this_machine_is_refused_before_counting(text, tmp_path, monkeypatch):
    """A text whose study would not fit in memory is refused at once, with the memory it needs, before
    anything is counted or trained (the n-gram's own estimate stands behind the corpus's)."""
    from lib import ngrams
    from lib.search import study as lib_search
    from lib.util import limits
    monkeypatch.setattr(limits, "available_memory", lambda: 1e6)
    monkeypatch.setattr(ngrams, "next_ids", lambda *a, **k: pytest.fail("counted before checking"))
    t0 = time.time()
    with pytest.raises(limits.TooLarge, match=r"text.txt \(29.3 KB\) would need about .* of memory and this "
                                              r"machine has .* available; use a shorter text"):
        lib_search.search(text, 2, tmp_path / "s", updates=5, n_workers=1, log=lambda *a: None)
    assert time.time() - t0 < 10 and not (tmp_path / "s").exists()
    from lib.data import load_corpus
    monkeypatch.setattr(limits, "available_memory", lambda: 1e12)
    corpus = load_corpus(text)
    monkeypatch.setattr(limits, "available_memory", lambda: 1e6)
    from lib.search.journal import SearchError
    with pytest.raises(SearchError, match=r"--data .*text.txt: Counting n-grams of up to 16 characters in .* would "
                                          r"need about"):
        lib_search.best_ngram(corpus)


@pytest.mark.parametrize("service", ["http", "garbage"])
def test_a_scheduler_address_that_is_not_a_dask_scheduler_ends_in_one_line(text, tmp_path, service):
    """A dashboard's port (an HTTP server, which never speaks first) or another service (which sends bytes
    dask cannot read): one line within a bounded time, saying the address is not a dask scheduler."""
    import socketserver
    import threading

    class Garbage(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.sendall(b"\xff" * 64 + b"HELLO FROM ANOTHER SERVICE\r\n" * 4)
            time.sleep(30)

    if service == "http":
        import http.server
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    else:
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Garbage)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        t0 = time.time()
        done = search("--data", text, "--trials", 2, "--trial-updates", 5, "--out", tmp_path / "s",
                      "--scheduler", f"tcp://127.0.0.1:{server.server_address[1]}", timeout=120)
        assert time.time() - t0 < 60
        assert done.returncode == 1 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
        assert "not" in done.stderr and "a dask scheduler" in done.stderr, done.stderr
    finally:
        server.shutdown()


def test_a_full_disk_stops_the_study_and_counts_nothing(text, tmp_path):
    """--out on a real full disk (a small tmpfs): the study stops with one line naming --out and exits
    non-zero; no trial is counted; once there is room, the same command runs the trials."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small disk here: {mounted.stderr.decode().strip()}")
    try:
        out = disk / "s"
        done = search("--data", text, "--trials", 2, "--trial-updates", 5, "--out", out, "--workers", 1)
        assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
        assert f"--out {out}" in done.stderr and "not counted" in done.stderr, done.stderr
        assert any(w in done.stderr for w in ("free; a checkpoint", "is full", "No space left")), done.stderr
        assert not (out / "best.json").exists()
        subprocess.run(["mount", "-o", "remount,size=512m", str(disk)], check=True)
        again = search("--data", text, "--trials", 2, "--trial-updates", 5, "--out", out, "--workers", 1)
        assert again.returncode == 0, again.stderr
        finished = [s for _, s, _ in trials_of(out).values() if s in ("COMPLETE", "PRUNED")]
        assert len(finished) == 2 and json.loads((out / "best.json").read_text())["n_trials"] == 2
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_a_damaged_stored_study_is_said_before_anything_is_shown(tmp_path):
    """Notebook 9's reading of a stored study whose journal ends in a torn record and whose best.json does
    not match it: the damage is named first, the stored study itself is whole."""
    import shutil
    from lib.report import findings
    from lib.search import journal
    folder = tmp_path / "study"
    shutil.copytree(ROOT / "data" / "search", folder)
    study, best = journal.load(folder)
    assert journal.damage(folder, study, best) == []
    torn = b'{"op_code": 6, "worker_id": "x", "trial_id": 3'               # a record cut short
    with open(folder / "study.log", "ab") as f:
        f.write(torn)
    best["trial"], best["n_trials"] = best["trial"] + 1000, best["n_trials"] + 1
    study, _ = journal.load(folder)
    said = journal.damage(folder, study, best)
    assert len(said) == 3 and f"a torn last record of {len(torn)} bytes" in said[0]
    assert f"names trial {best['trial']}" in said[1] and "does not hold" in said[1]
    assert "counts" in said[2]
    text = findings.search_facts(journal.facts(study), best, said)
    assert text.startswith("**The stored study is damaged.**") and "The study holds" in text
