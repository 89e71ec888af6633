"""Hostile input and faults, as a new user and a careless operator would cause them.

Every case runs a real command in a fresh folder that holds a finished run (prev/) and a few texts.
It asserts the exit code, the one line the command says (never a traceback), and that what was saved
before is intact: every file that existed before the command is byte for byte the same afterwards,
except the run the case continues (its history must be kept) or moves aside (it must be whole there).
docs/reliability.md counts these cases by category in a table (test_readme_table_counts_these_cases keeps it true).
"""
import ctypes
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from conftest import SMALL_TEXT, forge
from lib.training.checkpoint import load_state
from lib.training.progress import QUIET
from lib.training.runs import load_run

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
TRACEBACK = "Traceback (most recent call last)"
TRAIN = ["lib.train", "--no-progress"]
SMALL = ["--m", "8", "--sample-every", "10", "--checkpoint-every", "10"]      # the settings of prev/


@dataclass
class Case:
    category: str
    name: str
    argv: list                  # after `python -m`; {placeholders} are filled from the case's folder
    code: int                   # the expected exit code
    needle: str = ""            # a regular expression the one line must match (stdout when code is 0)
    saved: str = "intact"       # what becomes of prev/: intact, continued (history kept), aside (whole in replaced-*/)
    setup: object = None        # a function of the case's folder that makes the files the case needs
    no_dac: bool = False        # run without root's power to ignore file permissions
    fsize: int = None           # a limit on the size of files the command writes (bytes)
    env: dict = field(default_factory=dict)
    check: object = None        # for a command that succeeds: a function (stdout, folder) -> bool
    close: tuple = ()           # file descriptors closed before the command starts (1: `>&-`, 2: `2>&-`)


# --- what the cases need ----------------------------------------------------------------------

def fifo(d):
    os.mkfifo(d / "fifo")


def a_file(d):
    (d / "afile").write_text("keep me\n")


def ckpt_is_a_folder(d):
    (d / "withdir" / "checkpoint.npz").mkdir(parents=True)


def read_only_folder(d):
    (d / "ro").mkdir()
    (d / "ro").chmod(0o555)


def unreadable_corpus(d):
    shutil.copy(d / "small.txt", d / "secret.txt")
    (d / "secret.txt").chmod(0)


def unreadable_checkpoint(d):
    (d / "prev" / "checkpoint.npz").chmod(0)


def flipped(d):
    data = bytearray((d / "prev" / "checkpoint.npz").read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo("W.npy")
    data[info.header_offset + 200] ^= 0x10                      # inside W's numbers
    (d / "flipped.npz").write_bytes(bytes(data))


def nan_parameters(d):
    def nan_in_V(meta):
        with zipfile.ZipFile(d / "prev" / "checkpoint.npz") as zf:
            V = np.lib.format.read_array(zf.open("V.npy"))
        V[1, 1] = np.nan
        return {"V": V}
    forge(d / "prev" / "checkpoint.npz", d / "nan.npz", nan_in_V)


def huge_parameters(d):
    def huge_in_best_V(meta):
        with zipfile.ZipFile(d / "prev" / "checkpoint.npz") as zf:
            V = np.lib.format.read_array(zf.open("best_V.npy"))
        V[1, 1] = 1e300
        return {"best_V": V}
    forge(d / "prev" / "checkpoint.npz", d / "huge.npz", huge_in_best_V)


def forged_meta(d):
    forge(d / "prev" / "checkpoint.npz", d / "forged.npz", lambda m: m.update(e="many"))


def hidden_array(d):
    shutil.copy(d / "prev" / "checkpoint.npz", d / "hidden.npz")
    with zipfile.ZipFile(d / "hidden.npz", "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("hidden.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (1 << 26,)})
            for _ in range(32):
                f.write(bytes(1 << 24))


def old_format(d):
    np.savez(d / "old.npz", meta=np.array(json.dumps({"format": "dd2424-char-rnn-checkpoint", "version": 2})),
             U=np.zeros((8, 24)))


def empty_checkpoint(d):
    (d / "empty.npz").write_bytes(b"")


def truncated(d):
    data = (d / "prev" / "checkpoint.npz").read_bytes()
    (d / "cut.npz").write_bytes(data[:len(data) // 2])


def sparse_terabyte(d):
    with open(d / "huge.txt", "wb") as f:
        f.truncate(1 << 40)                                    # 1 TB, of which no block is on the disk


def latin1(d):
    (d / "latin1.txt").write_bytes("Caf\u00e9 au lait, s'il vous pla\u00eet".encode("latin-1") * 20)


def json_link(d):
    (d / "link.json").symlink_to(d / "target.json")


def accented(d):
    (d / "accented.txt").write_text("Café déjà vu, été à Noël; ça alors!\n" * 30, encoding="utf-8")


def big_recipe(d):
    (d / "big.toml").write_text("# a comment\n" * 100_000)


def bom_recipe(d):
    (d / "bom.toml").write_text("m = 8\nsample_every = 5\n", encoding="utf-8-sig")


def other_recipe(d):
    (d / "other.toml").write_text("m = 24\n")


def own_recipe(d):
    (d / "own.toml").write_text("m = 8\nsample_every = 10\ncheckpoint_every = 10\n")


def no_run(d):
    (d / "norun").mkdir()


def finished(folder, steps):
    """A check: the run in folder/ is complete at steps updates (the command's output may be gone)."""
    def check(stdout, d):
        summary = json.loads((d / folder / "summary.json").read_text())
        return summary["status"] == "done" and summary["steps"] == steps
    return check


def tiny_disk(d):
    """A disk with 10 KB free, as shutil.disk_usage reports it to the command (fault injection)."""
    (d / "inject").mkdir()
    (d / "inject" / "sitecustomize.py").write_text(
        "import shutil, collections\n"
        "shutil.disk_usage = lambda path: collections.namedtuple('u', 'total used free')(10**9, 10**9, 10_000)\n")


def most_probable(stdout, d):
    """stdout is the prime (a newline) and then, at each step, the character the best model finds most
    probable: what a temperature near zero must give (not the last character of the vocabulary)."""
    from lib.model import cells
    cfg, vocab, state, _ = load_state(d / "prev" / "checkpoint.npz")
    P, h, x = cells.RNN.views(state.best_theta, vocab.K, cfg.m), np.zeros(cfg.m), vocab.encode("\n")[0]
    out = []
    for _ in range(40):
        h, o = cells.RNN.step(P, h, x)
        x = int(np.argmax(o))
        out.append(vocab.chars[x])
    return stdout == "\n" + "".join(out) + "\n"


def no_dac():
    """In the child, before exec: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set, so
    that even root meets file permissions (a normal user meets them anyway)."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (1, 2):
            if libc.prctl(24, cap, 0, 0, 0) != 0:            # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


# --- the cases --------------------------------------------------------------------------------

C = Case
CASES = [
    # Work lost: the README's commands never replace or lose a run.
    C("Work lost", "the same command again resumes (to more updates)", [*TRAIN, "--data", "{corpus}", *SMALL,
      "--steps", "40", "--out", "{prev}"], 0, r"resuming", saved="continued"),
    C("Work lost", "the same command again when complete: loaded, nothing rewritten", [*TRAIN, "--data", "{corpus}",
      *SMALL, "--steps", "30", "--out", "{prev}"], 0, r"loading the complete run"),
    C("Work lost", "--out holding a run with other settings", [*TRAIN, "--data", "{corpus}", *SMALL, "--eta", "0.05",
      "--steps", "30", "--out", "{prev}"], 1, r"other settings \(eta 0.1 there, 0.05 here\).*--resume.*--overwrite"),
    C("Work lost", "--overwrite keeps the old run aside", [*TRAIN, "--data", "{corpus}", *SMALL, "--eta", "0.05",
      "--steps", "30", "--out", "{prev}", "--overwrite"], 0, r'"steps": 30', saved="aside"),
    C("Work lost", "--out holding a run on another text", [*TRAIN, "--data", "{other}", *SMALL, "--steps", "30",
      "--out", "{prev}"], 1, r"another text \(K = 24 there"),
    C("Work lost", "--out holding a run past --steps", [*TRAIN, "--data", "{corpus}", *SMALL, "--steps", "20",
      "--out", "{prev}"], 1, r"past steps = 20.*steps of 30 or more"),
    C("Work lost", "--out is a file", [*TRAIN, "--data", "{corpus}", "--out", "{tmp}/afile"], 1,
      r"is a file, not a folder", setup=a_file),
    C("Work lost", "--out is /dev/null", [*TRAIN, "--data", "{corpus}", "--out", "/dev/null"], 1, r"is a file, not a folder"),
    C("Work lost", "--out is read-only", [*TRAIN, "--data", "{corpus}", "--out", "{tmp}/ro"], 1,
      r"Cannot write in --out .*Permission denied", setup=read_only_folder, no_dac=True),
    C("Work lost", "checkpoint.npz is a folder", [*TRAIN, "--data", "{corpus}", "--out", "{tmp}/withdir"], 1,
      r"checkpoint.npz is a folder", setup=ckpt_is_a_folder),
    C("Work lost", "no room for a checkpoint, found before the first update", [*TRAIN, "--data", "{corpus}",
      "--out", "{tmp}/new"], 1, r"has 9.8 KB free; a checkpoint of this run needs about", setup=tiny_disk,
      env={"PYTHONPATH": "{tmp}/inject"}),
    C("Work lost", "--resume continues a run", [*TRAIN, "--resume", "{prev}", "--data", "{corpus}", "--steps", "45"],
      0, r'"steps": 45', saved="continued"),
    C("Work lost", "--resume with a changed setting", [*TRAIN, "--resume", "{prev}", "--eta", "0.5"], 1,
      r"--resume continues a run with its own settings; drop --eta"),
    C("Work lost", "--resume into another --out", [*TRAIN, "--resume", "{prev}", "--out", "{tmp}/elsewhere"], 1,
      r"drop --out"),
    C("Work lost", "training on its own folder's summary.json as the text", [*TRAIN, "--data", "{prev}/summary.json",
      "--out", "{prev}"], 1, r"--out .*prev would have its summary.json written over the text this command reads"),
    C("Work lost", "evaluate --json over the run's checkpoint", ["lib.evaluate", "--run", "{prev}", "--data", "{corpus}",
      "--json", "{prev}/checkpoint.npz"], 1, r"--json .*checkpoint.npz would replace a run's or a study's own"),
    C("Work lost", "baselines --json over its own text", ["lib.baselines", "--data", "{corpus}", "--val-fraction",
      "0.2", "--json", "{corpus}"], 1, r"--json .*small.txt is the text this command reads"),
    C("Work lost", "baselines --json over a run's summary", ["lib.baselines", "--data", "{corpus}", "--val-fraction",
      "0.2", "--json", "{prev}/summary.json"], 1, r"would replace a run's or a study's own summary.json"),
    # Recipes: a recipe file is checked before it is read, and read as a person saved it.
    C("Recipes", "/dev/zero as a recipe", [*TRAIN, "--config", "/dev/zero", "--data", "{corpus}", "--out",
      "{tmp}/new"], 1, r"The recipe /dev/zero is a device; give a regular file"),
    C("Recipes", "a FIFO as a recipe", [*TRAIN, "--config", "{tmp}/fifo", "--data", "{corpus}", "--out", "{tmp}/new"],
      1, r"The recipe .*fifo is a FIFO \(named pipe\)", setup=fifo),
    C("Recipes", "a folder as a recipe", [*TRAIN, "--config", "{tmp}", "--data", "{corpus}", "--out", "{tmp}/new"],
      1, r"The recipe .* is a folder"),
    C("Recipes", "a recipe of 1.1 MB", [*TRAIN, "--config", "{tmp}/big.toml", "--data", "{corpus}", "--out",
      "{tmp}/new"], 1, r"big.toml is 1.1 MB; a recipe is a few lines of settings \(at most 64.0 KB\)", setup=big_recipe),
    C("Recipes", "a recipe saved with a byte-order mark", [*TRAIN, "--config", "{tmp}/bom.toml", "--data", "{corpus}",
      "--steps", "5", "--out", "{tmp}/new"], 0, r'"steps": 5', setup=bom_recipe),
    C("Recipes", "--resume with the run's own recipe", [*TRAIN, "--resume", "{prev}", "--config", "{tmp}/own.toml",
      "--data", "{corpus}", "--steps", "40"], 0, r'"steps": 40', saved="continued", setup=own_recipe),
    C("Recipes", "--resume with a recipe of other settings", [*TRAIN, "--resume", "{prev}", "--config",
      "{tmp}/other.toml"], 1, r"the recipe .*other.toml sets m = 24 where the run has 8: leave out --config",
      setup=other_recipe),
    # Hangs: nothing waits forever or runs for hours by a slip.
    C("Hangs", "a FIFO as the corpus", [*TRAIN, "--data", "{tmp}/fifo", "--out", "{tmp}/new"], 1,
      r"is a FIFO \(named pipe\); give a regular file", setup=fifo),
    C("Hangs", "a FIFO as --resume", [*TRAIN, "--resume", "{tmp}/fifo"], 1, r"is a FIFO", setup=fifo),
    C("Hangs", "a FIFO as the checkpoint to sample", ["lib.sample", "--checkpoint", "{tmp}/fifo"], 1, r"is a FIFO",
      setup=fifo),
    C("Hangs", "/dev/zero as the corpus", [*TRAIN, "--data", "/dev/zero", "--out", "{tmp}/new"], 1, r"is a device"),
    C("Hangs", "a sample of a billion characters", ["lib.sample", "--checkpoint", "{prev}", "--n", "1000000000"], 1,
      r"--n = 1,000,000,000 is more than this project allows \(1,000,000\)"),
    C("Hangs", "samples of a billion characters during training", [*TRAIN, "--data", "{corpus}", "--sample-length",
      "1000000000", "--out", "{tmp}/new"], 1, r"--sample-length must be an integer from 1 to 1,000,000"),
    C("Hangs", "a priming text of 120,000 characters", ["lib.sample", "--checkpoint", "{prev}", "--prime",
      "a" * 120_000], 1, r"priming text's length \(--prime\) = 120,000 is more than"),
    # Silent wrong results: refused, or right.
    C("Silent wrong results", "finite but absurd parameters (1e300) with valid digests", ["lib.sample",
      "--checkpoint", "{tmp}/huge.npz", "--n", "20"], 1, r"huge.npz holds parameters as large as 1e\+300",
      setup=huge_parameters),
    C("Silent wrong results", "a checkpoint with one changed byte", ["lib.sample", "--checkpoint", "{tmp}/flipped.npz"],
      1, r"corrupted \(BadZipFile: Bad CRC-32 for file 'W.npy'\)|damaged", setup=flipped),
    C("Silent wrong results", "NaN parameters with matching digests", ["lib.sample", "--checkpoint", "{tmp}/nan.npz"],
      1, r"not finite", setup=nan_parameters),
    C("Silent wrong results", "a temperature of 1e-310 gives the most probable characters",
      ["lib.sample", "--checkpoint", "{prev}", "--temperature", "1e-310", "--n", "40"], 0, r"^\n.{40}\n$",
      check=most_probable),
    C("Silent wrong results", "a held-out part that rounds to no character", [*TRAIN, "--data", "{corpus}",
      "--val-fraction", "0.001", "--out", "{tmp}/new"], 1, r"val_fraction = 0.001 holds out 0 character\(s\) of 364"),
    C("Silent wrong results", "--max-seconds -1", [*TRAIN, "--data", "{corpus}", "--max-seconds=-1", "--out",
      "{tmp}/new"], 2, r"--max-seconds: must be a positive number, got '-1'"),
    C("Silent wrong results", "--max-seconds nan", [*TRAIN, "--data", "{corpus}", "--max-seconds", "nan", "--out",
      "{tmp}/new"], 2, r"--max-seconds: must be a positive number, got 'nan'"),
    C("Silent wrong results", "resuming onto a shorter text (length e + T)", [*TRAIN, "--resume", "{prev}", "--data",
      "{shorter}", "--steps", "40"], 1, r"another text \(364 characters there, 91 here, the same vocabulary\)"),
    C("Silent wrong results", "--temperature nan", ["lib.sample", "--checkpoint", "{prev}", "--temperature", "nan"], 1,
      r"--temperature must be a positive number, got nan"),
    C("Silent wrong results", "--top-p 1.5", ["lib.sample", "--checkpoint", "{prev}", "--top-p", "1.5"], 1,
      r"--top-p must be in \(0, 1\], got 1.5"),
    C("Silent wrong results", "--eta nan", [*TRAIN, "--data", "{corpus}", "--eta", "nan", "--out", "{tmp}/new"], 1,
      r"--eta must be a positive number, got nan"),
    # Memory: a refusal says how much it would take, before anything is allocated.
    C("Memory", "a 1 TB corpus", [*TRAIN, "--data", "{tmp}/huge.txt", "--out", "{tmp}/new"], 1,
      r"\(1.0 TB\) would need about 2.0 TB of memory and this machine has .* available", setup=sparse_terabyte),
    C("Memory", "an extra array hidden in a checkpoint (512 MB deflated)", ["lib.sample", "--checkpoint",
      "{tmp}/hidden.npz"], 1, r"arrays are not the ones its meta record implies", setup=hidden_array),
    C("Memory", "--m 10,000,000", [*TRAIN, "--data", "{corpus}", "--m", "10000000", "--out", "{tmp}/new"], 1,
      r"m = 10,000,000, .* would need about .* TB of memory"),
    C("Memory", "--batch-size 100,000,000", [*TRAIN, "--data", "{corpus}", "--batch-size", "100000000", "--chunks",
      "random", "--out", "{tmp}/new"], 1, r"batch_size = 100,000,000, .* would need about .* TB of memory"),
    C("Memory", "--seq-length longer than the text", [*TRAIN, "--data", "{corpus}", "--seq-length", "1000000000",
      "--out", "{tmp}/new"], 1, r"holds 364 characters; training needs at least 1000000001 \(seq_length \+ 1\)"),
    # Tracebacks: none, for anything a user's input, files, disk, signals or pipes can cause.
    C("Tracebacks", "the disk fills while a checkpoint is written", [*TRAIN, "--resume", "{prev}", "--data",
      "{corpus}", "--steps", "60"], 1, r"Could not write .*checkpoint.npz \(File too large\); the checkpoint of "
      r"update 30 is intact", fsize=4096),
    C("Tracebacks", "a corpus without read permission", [*TRAIN, "--data", "{tmp}/secret.txt", "--out", "{tmp}/new"],
      1, r"Cannot read the corpus .*secret.txt: Permission denied", setup=unreadable_corpus, no_dac=True),
    C("Tracebacks", "a checkpoint without read permission", ["lib.sample", "--checkpoint", "{prev}"], 1,
      r"Permission denied", setup=unreadable_checkpoint, no_dac=True),
    C("Tracebacks", "forged meta with matching digests", ["lib.sample", "--checkpoint", "{tmp}/forged.npz"], 1,
      r"damaged or forged \(e = 'many'\)", setup=forged_meta),
    C("Tracebacks", "a checkpoint of an earlier format", ["lib.sample", "--checkpoint", "{tmp}/old.npz"], 1,
      r"earlier version of this project", setup=old_format),
    C("Tracebacks", "an empty checkpoint", ["lib.sample", "--checkpoint", "{tmp}/empty.npz"], 1, r"but empty",
      setup=empty_checkpoint),
    C("Tracebacks", "a truncated checkpoint", ["lib.sample", "--checkpoint", "{tmp}/cut.npz"], 1,
      r"truncated or corrupted", setup=truncated),
    C("Tracebacks", "a corpus that is not UTF-8", [*TRAIN, "--data", "{tmp}/latin1.txt", "--out", "{tmp}/new"], 1,
      r"not UTF-8 \(invalid byte 0xe9 at byte offset 3\)", setup=latin1),
    C("Tracebacks", "a folder as the corpus", [*TRAIN, "--data", "{tmp}", "--out", "{tmp}/new"], 1, r"is a folder"),
    C("Tracebacks", "an unknown optimiser", [*TRAIN, "--data", "{corpus}", "--optimizer", "sgd", "--out", "{tmp}/new"],
      2, r"argument --optimizer: invalid choice: 'sgd' \(choose from 'adagrad', 'adam'\)"),
    C("Tracebacks", "an unknown option", [*TRAIN, "--learning-rate", "0.1"], 2, r"unrecognized arguments"),
    C("Tracebacks", "a number that is not one", [*TRAIN, "--steps", "1e5", "--out", "{tmp}/new"], 2,
      r"argument --steps: invalid int value: '1e5'"),
    C("Tracebacks", "no --out", [*TRAIN, "--data", "{corpus}"], 1, r"--out DIR is needed"),
    C("Tracebacks", "a report of no updates", ["lib.report", "--steps", "0"], 2, r"--steps: must be a positive integer, got '0'"),
    # Misleading messages: the message names the real cause.
    C("Misleading messages", "--sig 100 is blamed on the initial parameters", [*TRAIN, "--data", "{corpus}", "--sig",
      "100", "--out", "{tmp}/new"], 3, r"initial parameters are too large \(sig = 100.0\)"),
    C("Misleading messages", "--eta 1000 is blamed on eta", [*TRAIN, "--data", "{corpus}", "--eta", "1000",
      "--out", "{tmp}/new"], 3, r"eta = 1000.0 is probably too large. The best model so far \(after 0 updates\)"),
    C("Misleading messages", "lib.sample --seed -1 names --seed", ["lib.sample", "--checkpoint", "{prev}", "--seed",
      "-1"], 1, r"--seed must be a non-negative integer, got -1"),
    C("Misleading messages", "evaluate --run with an empty name", ["lib.evaluate", "--run", ""], 1,
      r"No run's folder was given \(an empty name\): give the folder training wrote\.$"),
    C("Misleading messages", "evaluate --run a folder without a run: advice for the command", ["lib.evaluate",
      "--run", "{tmp}/norun"], 1, r"No training run in .*norun: train one there with a held-out part first "
      r"\(python -m lib.train --val-fraction 0.1 --out .*norun\)\.$", setup=no_run),
    C("Misleading messages", "--n 0 names --n", ["lib.sample", "--checkpoint", "{prev}", "--n", "0"], 1,
      r"--n must be a positive integer, got 0"),
    # Ignored settings: a setting that would change nothing is refused, and so are contradictory options.
    C("Ignored settings", "--ema without validation", [*TRAIN, "--data", "{corpus}", "--ema", "0.99", "--out",
      "{tmp}/new"], 1, r"--ema 0.99 acts only with --val-fraction above 0"),
    C("Ignored settings", "--plateau-factor without validation", [*TRAIN, "--data", "{corpus}", "--plateau-factor",
      "0.5", "--out", "{tmp}/new"], 1, r"--plateau-factor 0.5 acts only with --val-fraction above 0"),
    C("Ignored settings", "--beta1 with AdaGrad", [*TRAIN, "--data", "{corpus}", "--beta1", "0.8", "--out",
      "{tmp}/new"], 1, r'--beta1 0.8 acts only with --optimizer "adam"'),
    C("Ignored settings", "--adapt-seconds without --adapt", ["lib.sample", "--checkpoint", "{prev}", "--adapt-seconds",
      "5"], 1, r"--adapt-seconds acts only with --adapt FILE"),
    C("Ignored settings", "--resume with --overwrite", [*TRAIN, "--resume", "{prev}", "--overwrite"], 1,
      r"--resume continues .* --overwrite would move it aside; give one of them"),
    # Odd streams: a closed or narrow stdout or stderr never stops or fails a command.
    C("Odd streams", "training with stdout closed (>&-)", [*TRAIN, "--data", "{corpus}", *SMALL, "--steps", "20",
      "--out", "{tmp}/new"], 0, check=finished("new", 20), close=(1,)),
    C("Odd streams", "training with stderr closed (2>&-)", [*TRAIN, "--data", "{corpus}", *SMALL, "--steps", "20",
      "--out", "{tmp}/new"], 0, r'"status": "done"', check=finished("new", 20), close=(2,)),
    C("Odd streams", "lib.sample with stdout closed", ["lib.sample", "--checkpoint", "{prev}", "--n", "50"], 0,
      close=(1,)),
    C("Odd streams", "an ASCII terminal and an accented vocabulary", [*TRAIN, "--data", "{tmp}/accented.txt", *SMALL,
      "--steps", "20", "--out", "{tmp}/new"], 0, r"\\xe9|\\xe0", setup=accented, env={"PYTHONIOENCODING": "ascii"},
      check=finished("new", 20)),
    # Estimates: work that would take hours is refused at once, with the setting to change.
    C("Estimates", "a gradient check of an LSTM with m = 400", ["lib.gradcheck", "--cell", "lstm", "--m", "400",
      "--batch", "2", "--seq-length", "25", "--data", "{corpus}"], 1, r"would take about [\d.]+ hours.*smaller --m"),
    C("Estimates", "samples of a million characters at every update", [*TRAIN, "--data", "{corpus}", "--steps", "1000",
      "--sample-every", "1", "--sample-length", "1000000", "--out", "{tmp}/new"], 1,
      r"--sample-length 1,000,000 with --sample-every 1 draws 1,002 samples.* Use a larger --sample-every"),
    # Outputs: every file a command writes is checked before the work, and written through one writer.
    C("Outputs", "baselines --json a FIFO a reader could be waiting on", ["lib.baselines", "--data", "{corpus}",
      "--val-fraction", "0.2", "--json", "{tmp}/fifo"], 1, r"--json .*fifo is a FIFO \(named pipe\)", setup=fifo),
    C("Outputs", "baselines --json a folder", ["lib.baselines", "--data", "{corpus}", "--val-fraction", "0.2",
      "--json", "{tmp}/prev"], 1, r"--json .*prev is a folder; give the name of a regular file"),
    C("Outputs", "baselines --json under a file", ["lib.baselines", "--data", "{corpus}", "--val-fraction", "0.2",
      "--json", "{tmp}/small.txt/b.json"], 1, r"small.txt is a file, not a folder"),
    C("Outputs", "baselines --json a link: its target is written, the link kept", ["lib.baselines", "--data",
      "{corpus}", "--val-fraction", "0.2", "--json", "{tmp}/link.json"], 0, r"ngram-8", setup=json_link,
      check=lambda out, d: (d / "link.json").is_symlink() and "adaptive" in json.loads((d / "target.json").read_text())),
    C("Outputs", "report --out a file", ["lib.report", "--steps", "300", "--out", "{tmp}/small.txt"], 1,
      r"--out .*small.txt cannot be used: .*small.txt is a file, not a folder"),
    # Report checks: what the report needs is checked before its notebooks run for minutes.
    C("Report checks", "a corpus too short for the notebooks", ["lib.report", "--steps", "300", "--corpus",
      "{corpus}", "--out", "{tmp}/report"], 1, r"small.txt has 364 characters; .* so they need 50,000"),
    C("Report checks", "no XeLaTeX or pandoc", ["lib.report", "--steps", "300", "--out", "{tmp}/report"], 1,
      r"The PDF needs xelatex and pandoc, which this machine lacks: `make tex` installs them",
      env={"PATH": "{tmp}/nothing"}),
    # Yardsticks: the n-grams need a text to count in.
    C("Yardsticks", "a text of 5 characters", ["lib.baselines", "--data", "{tmp}/five.txt", "--val-fraction", "0.4"],
      1, r"five.txt leaves 3 character\(s\) .* need more than 16", setup=lambda d: (d / "five.txt").write_text("abcab")),
    # Settings named: every command names the option it refuses.
    C("Settings named", "gradcheck --h 0", ["lib.gradcheck", "--h", "0", "--data", "{corpus}"], 2,
      r"--h: must be a positive number, got '0'"),
    C("Settings named", "gradcheck --h too small for the check to fail", ["lib.gradcheck", "--order", "2", "--h",
      "1e-12", "--data", "{corpus}"], 1, r"--h 1e-12 is too small for the check to fail: .* Use the default step"),
    C("Settings named", "gradcheck --h nan", ["lib.gradcheck", "--h", "nan", "--data", "{corpus}"], 2,
      r"--h: must be a positive number, got 'nan'"),
    C("Settings named", "gradcheck --seed -1", ["lib.gradcheck", "--seed", "-1", "--data", "{corpus}"], 2,
      r"--seed: must be a non-negative integer, got '-1'"),
]


# --- running them -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def prev(tmp_path_factory):
    """A finished run of 30 updates, made by the command line, and the texts the cases use."""
    d = tmp_path_factory.mktemp("master")
    (d / "small.txt").write_text(SMALL_TEXT)
    (d / "other.txt").write_text("completely different words here, 0123456789 XYZ!\n" * 10)
    (d / "shorter.txt").write_text(SMALL_TEXT[:91])                  # the same 24 characters, 91 of them
    subprocess.run([PY, "-m", *TRAIN, "--data", str(d / "small.txt"), *SMALL, "--steps", "30",
                    "--out", str(d / "prev")], cwd=ROOT, check=True, capture_output=True)
    return d


def readable_snapshot(folder):
    """A fingerprint of every file under folder: its sha256 (size and mtime for one over 64 MB); files
    without read permission are read by making them readable for a moment."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or p.is_fifo():
            continue
        st = p.stat()
        if st.st_size > 64 << 20:
            out[p.relative_to(folder)] = (st.st_size, st.st_mtime_ns)
            continue
        locked = not os.access(p, os.R_OK)
        if locked:
            p.chmod(0o600)
        out[p.relative_to(folder)] = hashlib.sha256(p.read_bytes()).hexdigest()
        if locked:
            p.chmod(st.st_mode & 0o7777)
    return out


def run_case(case, d):
    fill = {"tmp": str(d), "prev": str(d / "prev"), "corpus": str(d / "small.txt"), "other": str(d / "other.txt"),
            "shorter": str(d / "shorter.txt")}
    argv = [a.format(**fill) if "{" in a else a for a in case.argv]
    env = {**os.environ, **{k: v.format(**fill) for k, v in case.env.items()}}

    def before_exec():
        for fd in case.close:
            os.close(fd)
        if case.no_dac:
            no_dac()
        if case.fsize is not None:
            import resource
            resource.setrlimit(resource.RLIMIT_FSIZE, (case.fsize, case.fsize))
    return subprocess.run([PY, "-m", *argv], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env,
                          preexec_fn=before_exec)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.category}: {c.name}" for c in CASES])
def test_hostile_case(case, prev, tmp_path):
    d = tmp_path / "case"
    shutil.copytree(prev, d)
    if case.setup:
        case.setup(d)
    old_prev = load_state(d / "prev" / "checkpoint.npz") if os.access(d / "prev" / "checkpoint.npz", os.R_OK) else None
    before = readable_snapshot(d)
    r = run_case(case, d)
    assert r.returncode == case.code, (r.returncode, r.stderr[-2000:], r.stdout[-500:])
    assert TRACEBACK not in r.stderr and TRACEBACK not in r.stdout, r.stderr
    if case.code == 0:
        assert re.search(case.needle, r.stdout, re.S), r.stdout[-1000:]
        assert case.check is None or case.check(r.stdout, d), r.stdout
    else:
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
        assert re.search(case.needle, lines[0]), lines[0]
    after = readable_snapshot(d)
    prev_files = {k for k in before if k.parts[0] == "prev"}
    for name in before:                      # everything that was there is still there, unchanged ...
        if case.saved != "intact" and name in prev_files:
            continue
        assert after.get(name) == before[name], f"{name} changed"
    ckpt = Path("prev") / "checkpoint.npz"
    if case.saved == "continued":            # ... but the run the case continued, whose history is kept
        _, _, state, _ = load_state(d / ckpt)
        assert state.step > old_prev[2].step and np.array_equal(state.losses[:old_prev[2].step], old_prev[2].losses)
    elif case.saved == "aside":              # ... or moved aside whole
        aside = list((d / "prev").glob("replaced-*/checkpoint.npz"))
        assert len(aside) == 1 and hashlib.sha256(aside[0].read_bytes()).hexdigest() == before[ckpt]


# --- faults that need a running process -------------------------------------------------------

def start_training(d, *extra):
    return subprocess.Popen([PY, "-m", *TRAIN, "--data", str(d / "small.txt"), "--m", "8", "--steps", "100000000",
                             "--sample-every", "100000000", "--checkpoint-every", "200", "--out", str(d / "run"),
                             *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path, proc, seconds=60):
    deadline = time.time() + seconds
    while not path.exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.05)


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_a_signal_saves_the_run_and_it_resumes_exactly(prev, tmp_path, sig, code):
    """SIGTERM (a timeout, docker stop, a scheduler), SIGHUP (a closed terminal) and SIGINT (Ctrl-C) finish the
    update, save and stop with 128 + the signal; the run then continues as if it had never stopped."""
    shutil.copy(prev / "small.txt", tmp_path / "small.txt")
    proc = start_training(tmp_path)
    wait_for(tmp_path / "run" / "checkpoint.npz", proc)
    time.sleep(0.3)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code and TRACEBACK not in err and err.strip() == "", err
    assert "Interrupted at update" in out
    cfg, vocab, state, _ = load_state(tmp_path / "run" / "checkpoint.npz")
    assert state.status == "interrupted" and state.step > 200
    target = state.step + 13
    subprocess.run([PY, "-m", *TRAIN, "--resume", str(tmp_path / "run"), "--data", str(tmp_path / "small.txt"),
                    "--steps", str(target)], cwd=ROOT, check=True, capture_output=True)
    subprocess.run([PY, "-m", *TRAIN, "--data", str(tmp_path / "small.txt"), "--m", "8", "--steps", str(target),
                    "--sample-every", "100000000", "--checkpoint-every", "200", "--out", str(tmp_path / "whole")],
                   cwd=ROOT, check=True, capture_output=True)
    a, b = load_state(tmp_path / "run" / "checkpoint.npz")[2], load_state(tmp_path / "whole" / "checkpoint.npz")[2]
    assert np.array_equal(a.theta, b.theta) and np.array_equal(a.losses, b.losses)


@pytest.mark.parametrize("work", ["a sample of a million characters", "a validation of 250,000 characters, m = 512"])
def test_sigterm_is_prompt_during_long_work(tmp_path, work):
    """SIGTERM while a long sample is drawn, or a long validation read, stops the run within 2 s, saved;
    the unfinished sample or validation is done again when the run is resumed."""
    from lib.data import DEFAULT
    long = ["--sample-length", "1000000"] if work.startswith("a sample") else \
        ["--val-fraction", "0.45", "--val-every", "1", "--m", "512"]    # it reads the first half: 250,000
    proc = subprocess.Popen([PY, "-m", *TRAIN, "--data", str(DEFAULT), "--steps", "3", "--sample-every", "1000",
                             *long, "--out", str(tmp_path / "run")], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for(tmp_path / "run" / ".lock", proc)
    time.sleep(3)                                   # well inside the first sample or validation
    assert proc.poll() is None
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert time.perf_counter() - t0 < 2.0 and proc.returncode == 143 and err.strip() == "", err
    _, _, state, _ = load_state(tmp_path / "run" / "checkpoint.npz")
    assert state.status == "interrupted" and state.step == 0 and state.samples == [] and state.val == []


def test_two_writers_on_one_folder(prev, tmp_path):
    """The second run refuses at once and names the first's process id; the first is not disturbed."""
    shutil.copy(prev / "small.txt", tmp_path / "small.txt")
    first = start_training(tmp_path)
    try:
        wait_for(tmp_path / "run" / "checkpoint.npz", first)
        second = subprocess.run([PY, "-m", *TRAIN, "--data", str(tmp_path / "small.txt"), "--m", "8", "--steps",
                                 "100000000", "--sample-every", "100000000", "--checkpoint-every", "200", "--out",
                                 str(tmp_path / "run")], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1 and TRACEBACK not in second.stderr
        assert f"is in use by another run (process {first.pid})" in second.stderr.strip().splitlines()[0]
        time.sleep(0.5)
        assert first.poll() is None                      # still training
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    assert first.returncode == 143 and load_state(tmp_path / "run" / "checkpoint.npz")[2].status == "interrupted"
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoint.npz", "summary.json"]


def test_ctrl_c_while_starting_up(prev, tmp_path):
    """A Ctrl-C while Python and NumPy load, and one while lib.sample writes: exit 130, no traceback."""
    for delay in (0.05, 0.1, 0.2, 0.3):
        proc = subprocess.Popen([PY, "-m", *TRAIN, "--data", str(prev / "small.txt"), "--out", str(tmp_path / "r")],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode in (130, -signal.SIGINT) and TRACEBACK not in err, (delay, err)
    proc = subprocess.Popen([PY, "-m", "lib.sample", "--checkpoint", str(prev / "prev"), "--n", "1000000"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err == "", err


def test_a_closed_pipe(prev, tmp_path):
    """`lib.sample | head` ends quietly (SIGPIPE, as any Unix tool); `lib.train | head` keeps training, saves
    its run and ends well."""
    proc = subprocess.Popen([PY, "-m", "lib.sample", "--checkpoint", str(prev / "prev"), "--n", "100000"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.read(10)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGPIPE and err == "", err
    proc = subprocess.Popen([PY, "-m", "lib.train", "--data", str(prev / "small.txt"), "--m", "8", "--steps", "3000",
                             "--sample-every", "10", "--out", str(tmp_path / "r")], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.read(10)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert proc.returncode == 0 and TRACEBACK not in err, err
    assert load_state(tmp_path / "r" / "checkpoint.npz")[2].step == 3000


def test_files_are_written_with_ordinary_permissions(prev):
    umask = os.umask(0)
    os.umask(umask)
    for name in ("checkpoint.npz", "summary.json"):
        assert (prev / "prev" / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


def test_a_run_without_summary_json_still_loads(prev, tmp_path):
    """Notebooks 4 and 5 read the checkpoint, which is the whole truth of a run; summary.json is a copy."""
    shutil.copytree(prev / "prev", tmp_path / "run")
    (tmp_path / "run" / "summary.json").unlink()
    _, _, state, summary = load_run(tmp_path / "run")
    assert summary["steps"] == state.step == 30 and summary["best_by"] == "smooth loss"


def test_a_full_disk_in_the_middle_of_training(prev, tmp_path, monkeypatch):
    """No space left while a periodic checkpoint is written: one line, the earlier checkpoint intact."""
    from lib.util import files
    from lib.config import Config
    from lib.training.runs import run
    from lib.training.loop import TrainingStopped
    real, calls = files.atomic_path, []

    def full(path, suffix=".part"):                 # the second checkpoint finds the disk full
        if path.name == "checkpoint.npz":
            calls.append(path)
        if len(calls) == 2 and path.name == "checkpoint.npz":
            raise OSError(28, "No space left on device")
        return real(path, suffix)
    monkeypatch.setattr(files, "atomic_path", full)
    with pytest.raises(TrainingStopped, match=r"\(No space left on device\); the checkpoint of update 10 is intact"):
        run(Config(m=8, steps=40, checkpoint_every=10, sample_every=100), prev / "small.txt", tmp_path / "r",
            show=QUIET)
    assert load_state(tmp_path / "r" / "checkpoint.npz")[2].step == 10


# Notebook parameters: typed and checked as Config fields are, named as the notebook names them.
PARAMETER_CASES = [   # (name, notebook, values given, what papermill injected, the error, or None and the typed values)
    ("overwrite false, as papermill -p passes it", "03_training", {"overwrite": "false"}, "overwrite = \"false\"",
     None, {"overwrite": False}),
    ("overwrite TRUE", "06_extensions", {"overwrite": "TRUE"}, "overwrite = \"TRUE\"", None, {"overwrite": True}),
    ("a bool that is neither", "08_insight", {"overwrite": "maybe"}, "overwrite = \"maybe\"",
     r"overwrite must be true or false, got 'maybe'", None),
    ("a number as text", "03_training", {"steps": "1000"}, "steps = \"1000\"", r"steps must be an integer, got '1000'",
     None),
    ("a budget below zero names budget_seconds", "06_extensions", {"budget_seconds": -1.0}, "budget_seconds = -1.0",
     r"budget_seconds must be a positive number, got -1.0", None),
    ("a parameter the notebook does not have", "07_ladder", {}, "max_seconds = 30",
     r"max_seconds is not a parameter of 07_ladder \(it has corpus, budget_seconds", None),
    ("a run folder that is not text", "04_smooth_loss", {"run_dir": 3}, "run_dir = 3", r"run_dir must be text, got 3",
     None),
]


@pytest.mark.parametrize("case", PARAMETER_CASES, ids=[c[0] for c in PARAMETER_CASES])
def test_notebook_parameters(case):
    from lib.report.notebook import check_parameters
    _, notebook, given, injected, error, typed = case
    source = json.loads((ROOT / "notebooks" / f"{notebook}.ipynb").read_text())
    namespace = {"In": ["", "# Parameters\n" + injected + "\n"]}
    exec("".join(next(c["source"] for c in source["cells"] if "parameters" in c["metadata"].get("tags", []))),
         namespace)                             # the notebook's own defaults, then what papermill gave
    namespace.update(given)
    if error:
        with pytest.raises(ValueError, match=error):
            check_parameters(namespace, notebook)
    else:
        check_parameters(namespace, notebook)
        assert all(namespace[k] == v and type(namespace[k]) is type(v) for k, v in typed.items())


def test_a_notebook_names_its_own_parameters(prev, tmp_path):
    """A notebook's run() refuses a folder that holds another run by naming the notebook's parameters
    (run_dir, overwrite, corpus), not the command line's options; and every notebook that trains names a
    folder parameter it has."""
    from lib.config import Config
    from lib.config import in_notebook
    from lib.training.runs import RunExists, run
    shutil.copytree(prev / "prev", tmp_path / "prev")
    with pytest.raises(RunExists) as err:
        run(Config(m=9, steps=10), str(prev / "small.txt"), tmp_path / "prev", names=in_notebook("run_dir"),
            show=QUIET)
    message = str(err.value)
    assert re.search(r"another folder \(the parameter run_dir\), or overwrite \(the parameter overwrite = True\)",
                     message) and not re.search(r"--out|--overwrite|--data", message), message
    for path in sorted((ROOT / "notebooks").glob("0*.ipynb")):
        source = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"])
        for name in re.findall(r'in_notebook\("(\w+)"\)', source):
            assert re.search(rf"^{name} = ", source, re.M), (path.name, name)
        assert bool(re.search(r"\b(seed_)?runs?\(", source)) == ("in_notebook(" in source), path.name


# The tests above this one that are not in CASES: signals (3) and two writers; Ctrl-C at start-up, the closed
# pipes, no summary.json, a full disk; SIGTERM during a long sample and a long validation.
EXTRA = {"Work lost": 4, "Tracebacks": 4, "Hangs": 2}


def test_readme_table_counts_these_cases():
    readme = (ROOT / "docs" / "reliability.md").read_text()
    counts = {}
    for c in CASES:
        counts[c.category] = counts.get(c.category, 0) + 1
    for category, n in EXTRA.items():
        counts[category] += n
    counts["Notebook parameters"] = len(PARAMETER_CASES) + 1      # and test_a_notebook_names_its_own_parameters
    for category, n in counts.items():
        assert re.search(rf"\| {category} \| [^|]+ \| {n} \| all held \|", readme), (category, n)


COMMANDS = ("lib.train", "lib.sample", "lib.evaluate", "lib.baselines", "lib.gradcheck", "lib.search", "lib.report",
            "lib.data")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_explains_itself(command):
    """--help: a description that ends a sentence (never cut after a docstring's first line) and help for
    every option."""
    out = subprocess.run([PY, "-m", command, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "COLUMNS": "100"})
    assert out.returncode == 0, out.stderr
    text = out.stdout
    description = text.split("\n\n")[1]
    assert description.rstrip().endswith("."), description
    lines = text.splitlines()
    bare = [line.strip() for i, line in enumerate(lines) if re.match(r"^  -", line) and
            not re.search(r"\S  +\S", line.strip()) and
            not (i + 1 < len(lines) and re.match(r"^ {10,}\S", lines[i + 1]))]
    assert bare == [], f"{command}: options without help: {bare}"


def test_a_gradient_check_failed_by_a_large_step_says_so(prev):
    out = subprocess.run([PY, "-m", "lib.gradcheck", "--h", "0.5", "--data", str(prev / "small.txt"), "--m", "3",
                          "--seq-length", "10"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "FAILED" in out.stdout
    assert "the step h = 0.5 is far above the default" in out.stdout


@pytest.mark.parametrize("args", [["report", "ONLY=bogus", "STEPS=300"], ["report", "STEPS=0"], ["report", "STEPS=1e5"],
                                  ["headline", "DATA=/nonexistent/text.txt"], ["headline", "OUT="]])
def test_make_checks_what_it_was_given_before_it_installs_anything(args):
    """A bad ONLY, STEPS, DATA or OUT is refused in one line before the set-up runs (which would install the
    venv, TeX Live or the corpus first): make echoes no command of its own."""
    out = subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode != 0 and out.stdout == "", out.stdout
    assert out.stderr.startswith("error: ") and out.stderr.count("error: ") == 1, out.stderr
