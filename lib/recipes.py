"""A run's settings as text: the recipes of configs/ (TOML files) read and checked, and the command line
that trains a Config again (best.json's, notebook 6's)."""
import dataclasses
from pathlib import Path

from lib.config import Config, SettingError, option_name, require
from lib.util import files

RECIPES = Path(__file__).resolve().parent.parent / "configs"   # the named recipes, one TOML file each
MAX_RECIPE_BYTES = 64 * 1024    # a recipe is a few lines; a larger file is refused before it is read


def read_recipe(path):
    """The settings of a recipe file, checked: (settings (dict), max_seconds or None). The file is TOML,
    one `key = value` a setting of Config, and optionally max_seconds, the training time it is meant for.
    A missing file, a folder, a device or a FIFO (refused before anything is read), a file larger than
    MAX_RECIPE_BYTES, bad TOML, an unknown key or a bad value: ValueError, in one line that names the file
    (and the key). A byte-order mark at the start (as Windows Notepad writes) is read past."""
    import tomllib
    path = Path(path)
    st = files.regular_file(path, "the recipe")
    if st is None:
        raise ValueError(f"{path}: no such recipe file (the named ones are in {RECIPES}).")
    if st.st_size > MAX_RECIPE_BYTES:
        raise ValueError(f"{path} is {files.human(st.st_size)}; a recipe is a few lines of settings (at most "
                         f"{files.human(MAX_RECIPE_BYTES)}). Give the recipe's TOML file.")
    try:
        d = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as err:
        raise ValueError(f"{path}: cannot read the recipe ({err.strerror or err}).") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not a TOML recipe ({err}).") from None
    names = {f.name for f in dataclasses.fields(Config)}
    for key in d:
        if key not in names and key != "max_seconds":
            raise ValueError(f"{path}: unknown key {key!r} (a recipe holds settings of lib/config.py and "
                             "max_seconds; `python -m lib.train --help` lists them).")
    max_seconds = d.pop("max_seconds", None)
    try:
        if max_seconds is not None:
            require("positive", max_seconds, "max_seconds")
        Config(**d)
    except SettingError as err:
        raise ValueError(f"{path}: {err}") from None
    return d, max_seconds


def recipe(name):
    """The settings of the recipe configs/NAME.toml (without its max_seconds), as a dict."""
    return read_recipe(RECIPES / f"{name}.toml")[0]


def commands(runs, root):
    """The command lines that train each of runs ({name: Run}) again, into root/name, to its update count."""
    return "\n".join(command(r.cfg, r.summary["steps"], f"{root}/{name}") for name, r in runs.items())


def command(cfg, steps=None, out="DIR", data=None):
    """The command line that trains cfg (its settings that differ from the defaults) to steps updates, on
    the text data (None: the default one): for a run stopped by its time budget, the update count that
    reproduces it without one."""
    import shlex
    default, given = Config().to_dict(), cfg.replace(steps=steps or cfg.steps).to_dict()
    options = [_option(k, v) for k, v in given.items() if v != default[k] and k != "checkpoint_every"]
    text = [] if data is None else [f"--data {shlex.quote(str(data))}"]
    return " ".join(["python -m lib.train", *options, *text, f"--out {out}"])


def _option(name, value):
    option = option_name(name)
    if isinstance(value, bool):
        return option if value else "--no-" + option[2:]
    return f"{option} {value}"
