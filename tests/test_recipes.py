"""The named recipes of configs/: each a valid TOML file of settings, the one home of its settings
(lib.search's starting point, `make headline` and notebooks 6-7 read them), and `lib.train --config`
with the options beside it overriding the file."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lib import config, recipes
from lib.search import study
from lib.config import Config
from lib.recipes import read_recipe, recipe

pytestmark = pytest.mark.fast
ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


@pytest.mark.parametrize("name", ["headline", "2025", "mine", "gru-ladder", "lstm-ladder"])
def test_every_recipe_is_a_valid_config(name):
    settings, max_seconds = read_recipe(recipes.RECIPES / f"{name}.toml")
    assert Config(**settings) != Config()
    assert max_seconds == (600 if name == "headline" else None)


def test_the_search_starts_from_the_gru_ladder_recipe():
    import optuna
    assert {**study.HAND, **study.FIXED} == {**{k: getattr(Config(**recipe("gru-ladder")), k)
                                                  for k in study.SEARCHED}, **recipe("gru-ladder")}
    assert study.suggest(optuna.trial.FixedTrial(study.HAND)) == study.HAND   # SEARCHED is what it draws


def test_nothing_else_in_the_tree_repeats_a_recipe():
    """No Makefile flags, notebook dict or module constant spells a recipe's learning rate beside its cell
    and width: the recipes' values are read from configs/."""
    spelled = re.compile(r"eta[\"']?\s*[=:]\s*0\.00[1-5]\b|--eta 0\.00[1-5]\b")
    code = {p.name: p.read_text(encoding="utf-8") for p in [ROOT / "Makefile", *ROOT.glob("lib/*.py")]}
    for p in ROOT.glob("notebooks/*.ipynb"):
        code[p.name] = "\n".join("".join(c["source"]) for c in json.loads(p.read_text(encoding="utf-8"))["cells"]
                                 if c["cell_type"] == "code")
    assert [name for name, text in code.items() if spelled.search(text)] == []
    assert spelled.search('tuned = dict(eta=0.003)') and spelled.search('--eta 0.004 --m 512')   # it would see one


def test_an_unknown_key_is_refused_in_one_line_naming_it_and_the_file(tmp_path):
    bad = tmp_path / "mine.toml"
    bad.write_text('optimizer = "adam"\nlearning_rate = 0.01\n')
    with pytest.raises(ValueError, match=r"mine\.toml: unknown key 'learning_rate'"):
        read_recipe(bad)
    bad.write_text("m = 0\n")
    with pytest.raises(ValueError, match=r"mine\.toml: m must be a positive integer, got 0"):
        read_recipe(bad)
    bad.write_text("m = \n")
    with pytest.raises(ValueError, match=r"mine\.toml is not a TOML recipe"):
        read_recipe(bad)
    with pytest.raises(ValueError, match=r"none\.toml: no such recipe file"):
        read_recipe(tmp_path / "none.toml")


def test_a_recipe_that_is_no_file_or_far_too_large_is_refused_before_it_is_read(tmp_path):
    """/dev/zero would be read for ever (it once grew to 7.6 GB), a FIFO would block: both, a folder and a
    file larger than any recipe are refused from their stat alone, in one line, and quickly."""
    fifo = tmp_path / "r.fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big.toml"
    big.write_text("# a comment\n" * 10_000)
    for path, why in (("/dev/zero", "is a device"), (fifo, r"is a FIFO \(named pipe\)"), (tmp_path, "is a folder"),
                      (big, r"is 117\.2 KB; a recipe is a few lines")):
        with pytest.raises(ValueError, match=why):
            read_recipe(path)
    out = train("--config", "/dev/zero", "--steps", 20, "--out", tmp_path / "c")   # the command, in one line
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "is a device" in out.stderr


def test_a_recipe_saved_with_a_byte_order_mark_reads_as_without(tmp_path):
    plain, marked = tmp_path / "plain.toml", tmp_path / "marked.toml"
    plain.write_text('optimizer = "adam"\neta = 0.003\n', encoding="utf-8")
    marked.write_text('optimizer = "adam"\neta = 0.003\n', encoding="utf-8-sig")     # as Windows Notepad saves
    assert marked.read_bytes()[:3] == b"\xef\xbb\xbf"
    assert read_recipe(marked) == read_recipe(plain)


def test_resume_with_the_runs_own_recipe_goes_on_and_another_recipe_is_named(tmp_path):
    """--resume DIR --config FILE: the recipe the run was trained with is fine (its settings are the run's);
    one that differs is refused naming the recipe's value and the run's, never options the user did not type."""
    text = tmp_path / "t.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 400)
    own, other = tmp_path / "own.toml", tmp_path / "other.toml"
    own.write_text('optimizer = "adam"\neta = 0.003\nm = 16\nsample_every = 10\n')
    other.write_text('optimizer = "adam"\neta = 0.003\nm = 24\n')
    first = train("--config", own, "--steps", 20, "--data", text, "--out", tmp_path / "run")
    assert first.returncode == 0, first.stderr
    again = train("--resume", tmp_path / "run", "--config", own, "--steps", 30, "--data", text)
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 30
    refused = train("--resume", tmp_path / "run", "--config", other, "--steps", 40, "--data", text)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "m = 24 where the run has 16" in refused.stderr and "--m" not in refused.stderr
    assert "--cell" not in refused.stderr and "leave out --config" in refused.stderr


def train(*args):
    return subprocess.run([PY, "-m", "lib.train", "--no-progress", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_config_trains_a_recipe_and_the_flags_override_it(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 400)
    recipe_file = tmp_path / "r.toml"
    recipe_file.write_text('optimizer = "adam"\neta = 0.003\nbatch_size = 4\nm = 16\nmax_seconds = 1\n')
    out = train("--config", recipe_file, "--eta", "0.002", "--data", text, "--out", tmp_path / "run")
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    cfg = summary["config"]
    assert (cfg["optimizer"], cfg["eta"], cfg["batch_size"], cfg["m"]) == ("adam", 0.002, 4, 16)
    assert summary["status"] == "budget" and cfg["steps"] == config.UNBOUNDED   # max_seconds alone: a time budget
    assert 0.9 <= summary["seconds"] < 3
    bad = train("--config", tmp_path / "none.toml", "--out", tmp_path / "x")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "none.toml" in bad.stderr


def test_max_seconds_alone_trains_for_that_time(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("abcdefghij " * 2000)
    out = train("--m", 8, "--max-seconds", 1, "--data", text, "--out", tmp_path / "run")
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "budget" and summary["steps"] > 0 and 0.9 <= summary["seconds"] < 3
