"""The settings of a training run, in one object; the defaults are the assignment's.

Each setting is a field of Config whose metadata holds its help text and its rule (CHECKS, or the
choices it is one of). `python -m lib.train --help` is made from them, and Config() checks every
setting against its rule: a bad one raises SettingError, which names the setting as the user gave it
(`eta` in a notebook, `--eta` on the command line).
"""
import ast
import dataclasses
import json
import math
import operator
from dataclasses import dataclass, field
from pathlib import Path

from lib.limits import MAX_SAMPLE

RESUMABLE = ("steps", "sample_every", "checkpoint_every")   # may change when a run is continued
MAX_LAYERS = 8
UNBOUNDED = 10**9           # steps (and samples, checkpoints) out of reach: a run that its time budget ends
RECIPES = Path(__file__).resolve().parent.parent / "configs"   # the named recipes, one TOML file each


def _int(value):
    """value as an int when it is an integer (not a bool), else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _number(value):
    return not isinstance(value, bool) and isinstance(value, (int, float))


CHECKS = {   # rule: (test, what a value must be)
    "count": (lambda v: _int(v) is not None and v >= 1, "a positive integer"),
    "layers": (lambda v: _int(v) is not None and 1 <= v <= MAX_LAYERS, f"an integer from 1 to {MAX_LAYERS}"),
    "sample": (lambda v: _int(v) is not None and 1 <= v <= MAX_SAMPLE, f"an integer from 1 to {MAX_SAMPLE:,}"),
    "seed": (lambda v: _int(v) is not None and v >= 0, "a non-negative integer"),
    "positive": (lambda v: _number(v) and 0 < v < math.inf, "a positive number"),
    "[0, 1)": (lambda v: _number(v) and 0 <= v < 1, "in [0, 1)"),
    "[0, 0.5)": (lambda v: _number(v) and 0 <= v < 0.5, "in [0, 0.5)"),
    "(0, 1]": (lambda v: _number(v) and 0 < v <= 1, "in (0, 1]"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
}


def arg_type(rule, kind=int):
    """An argparse type for a rule of CHECKS: the text read as kind (int or float) that keeps the rule, else
    argparse's one-line error naming what the value must be."""
    import argparse

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not CHECKS[rule][0](value):
            raise argparse.ArgumentTypeError(f"must be {CHECKS[rule][1]}, got {text!r}")
        return value
    parse.__name__ = CHECKS[rule][1]       # what argparse names in its message
    return parse


positive_int, positive_number = arg_type("count"), arg_type("positive", float)


def setting(default, rule, help):
    """A Config field: its default, its rule (a key of CHECKS, or a tuple of the allowed values) and its help."""
    return field(default=default, metadata={"rule": rule, "help": help})


NEEDS = {    # a setting that acts only with another: (what it needs, test of a Config, why)
    "ema": ("{val_fraction} above 0", lambda c: c.val_fraction > 0, "the averaged weights are what validation reads"),
    "plateau_factor": ("{val_fraction} above 0", lambda c: c.val_fraction > 0, "it acts on validation losses"),
    "val_every": ("{val_fraction} above 0", lambda c: c.val_fraction > 0, "there is nothing to validate on"),
    "beta1": ('{optimizer} "adam"', lambda c: c.optimizer == "adam", "AdaGrad has no such setting"),
    "beta2": ('{optimizer} "adam"', lambda c: c.optimizer == "adam", "AdaGrad has no such setting"),
}


class SettingError(ValueError):
    """A setting that breaks its rule. str() names the settings as in Python (eta); option() as on the
    command line (--eta). must: the rest of the sentence, with {name} where another setting is named."""

    def __init__(self, name, must, value=None):
        super().__init__(f"{name}{'' if value is None else f' = {value!r}'} {must.format_map(_Names(str))}")
        self.name, self.must, self.value = name, must, value

    def option(self):
        option = _Names(lambda name: "--" + name.replace("_", "-"))
        return f"{option[self.name]}{'' if self.value is None else f' {self.value}'} {self.must.format_map(option)}"


class _Names(dict):
    """{setting} in a message, named by how."""

    def __init__(self, how):
        super().__init__()
        self.how = how

    def __missing__(self, name):
        return self.how(name)


@dataclass(frozen=True)
class Config:
    """The settings of a run; the defaults are the assignment's."""
    cell: str = setting("rnn", ("rnn", "gru", "lstm"),
                        "the recurrent cell: the assignment's vanilla RNN, a GRU or an LSTM")
    m: int = setting(100, "count", "hidden units")
    layers: int = setting(1, "layers", "recurrent layers stacked (char-rnn's default is 2): each above the first "
                          "reads the h_t of the one below, through dropout when dropout is set")
    seq_length: int = setting(25, "count", "characters per sequence and update (T)")
    eta: float = setting(0.1, "positive", "learning rate (the 2025 assignment's Adam uses 0.001)")
    sig: float = setting(0.01, "positive", "standard deviation of the initial weights (the biases start at zero)")
    eps: float = setting(1e-8, "positive", "AdaGrad's epsilon inside the square root; Adam's outside it")
    clip: float = setting(5.0, "positive", "gradients are clipped element-wise to [-clip, clip]")
    steps: int = setting(100_000, "count", "updates in all")
    sample_every: int = setting(10_000, "count",
                                "a sample before update 0, every this many updates, and at the end")
    sample_length: int = setting(200, "sample", "characters per sample")
    checkpoint_every: int = setting(10_000, "count",
                                    "the checkpoint is written every this many updates and at the end")
    seed: int = setting(0, "seed", "the one seed: initial parameters, samples, random chunk starts, dropout")
    optimizer: str = setting("adagrad", ("adagrad", "adam"), "AdaGrad (the assignment) or Adam")
    beta1: float = setting(0.9, "[0, 1)", "Adam: decay of the running mean of the gradient")
    beta2: float = setting(0.999, "[0, 1)", "Adam: decay of the running mean of its square")
    batch_size: int = setting(1, "count", "B sequences per update")
    chunks: str = setting("sequential", ("sequential", "random"),
                          "sequential: B evenly spaced streams, each carrying its hidden state (B = 1: the "
                          "assignment's walk); random: B random starts, each from a zero state")
    normalize_loss: bool = setting(False, "bool",
                                   "divide the loss, and so the gradients, by T B (as the 2025 assignment)")
    val_fraction: float = setting(0.0, "[0, 0.5)",
                                  "held-out tail of the text for a validation loss (0: none; 0.1 usual)")
    val_every: int = setting(10_000, "count",
                             "validation loss before update 0, every this many updates, and at the end")
    plateau_factor: float = setting(1.0, "(0, 1]",
                                    "with validation: eta is multiplied by this whenever a validation loss is "
                                    "no lower than the best before it (1: never)")
    dropout: float = setting(0.0, "[0, 1)",
                             "probability that a unit of h_t is dropped before the output layer, and between "
                             "layers, while training (Zaremba et al. 2014)")
    ema: float = setting(0.0, "[0, 1)",
                         "with validation: the weights averaged as avg = ema avg + (1 - ema) theta after each "
                         "update are what validation reads and the best model keeps (0: off)")
    dtype: str = setting("float64", ("float64", "float32"),
                         "float32 halves memory traffic; the assignment and gradient checks use float64")

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value, rule = getattr(self, f.name), f.metadata["rule"]
            if isinstance(rule, tuple):
                if value not in rule:
                    raise SettingError(f.name, f"must be one of {', '.join(rule)}, got {value!r}.")
            elif not CHECKS[rule][0](value):
                raise SettingError(f.name, f"must be {CHECKS[rule][1]}, got {value!r}.")
        for name, (need, holds, why) in NEEDS.items():
            value = getattr(self, name)
            if value != Config.__dataclass_fields__[name].default and not holds(self):
                raise SettingError(name, f"acts only with {need} ({why}): leave it out, or set that too.", value)

    @classmethod
    def from_dict(cls, d):
        """A Config from a dict; unknown keys are refused by name."""
        if not isinstance(d, dict):
            raise ValueError(f"A config must be a dict of settings, got {type(d).__name__}.")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"Unknown config key(s): {', '.join(map(str, unknown))}. "
                             f"Known: {', '.join(sorted(names))}.")
        return cls(**d)

    def to_dict(self):
        return dataclasses.asdict(self)

    def replace(self, **changes):
        return Config.from_dict({**self.to_dict(), **changes})

    def differences(self, other, ignore=RESUMABLE):
        """The settings in which other differs from self, as 'name: mine there, other's here' texts."""
        a, b = self.to_dict(), other.to_dict()
        return [f"{k} {a[k]!r} there, {b[k]!r} here" for k in a if k not in ignore and a[k] != b[k]]

    def __str__(self):
        return "Config(" + ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items()) + ")"


CELLS = Config.__dataclass_fields__["cell"].metadata["rule"]   # the cells lib/cells.py must provide


# --- the recipes: configs/*.toml ------------------------------------------------------------------

def read_recipe(path):
    """The settings of a recipe file, checked: (settings (dict), max_seconds or None). The file is TOML,
    one `key = value` a setting of Config, and optionally max_seconds, the training time it is meant for.
    A missing or unreadable file, bad TOML, an unknown key or a bad value: ValueError, in one line that
    names the file (and the key)."""
    import tomllib
    path = Path(path)
    try:
        d = tomllib.loads(path.read_text(encoding="utf-8"))
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
    if max_seconds is not None and not CHECKS["positive"][0](max_seconds):
        raise ValueError(f"{path}: max_seconds must be {CHECKS['positive'][1]}, got {max_seconds!r}.")
    try:
        Config(**d)
    except SettingError as err:
        raise ValueError(f"{path}: {err}") from None
    return d, max_seconds


def recipe(name):
    """The settings of the recipe configs/NAME.toml (without its max_seconds), as a dict."""
    return read_recipe(RECIPES / f"{name}.toml")[0]


# --- the parameters of the notebooks ----------------------------------------------------------

PARAMETER_RULES = {   # a notebook parameter's rule (CHECKS) beyond the type of its default
    "steps": "count", "sample_every": "count", "m": "count", "seq_length": "count", "n_seeds": "count",
    "val_chars": "count", "val_checks": "count", "n": "sample", "seed": "seed", "h": "positive", "sig": "positive",
    "budget_seconds": "positive", "val_fraction": "[0, 0.5)",
}
TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def check_parameters(namespace, notebook, root=None):
    """Check and type a notebook's parameters in namespace (its globals), in place: each must have the type
    of its default in the notebook's `parameters` cell (a bool also as true/false, yes/no, on/off, 1/0 in
    any case, as papermill passes `-p overwrite false`; a number never as text), keep its rule
    (PARAMETER_RULES), and be one the notebook has. SettingError names the parameter."""
    from lib.data import ROOT              # data's numpy is only needed by the notebooks that call this
    root = Path(root or ROOT)
    cells = json.loads((root / "notebooks" / f"{notebook}.ipynb").read_text(encoding="utf-8"))["cells"]
    source = next("".join(c["source"]) for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
    defaults = {t.id: ast.literal_eval(node.value) for node in ast.parse(source).body
                if isinstance(node, ast.Assign) for t in node.targets}
    given = [name for cell in namespace.get("In", []) if cell.startswith("# Parameters")
             for name in _assigned(cell)]             # what papermill injected
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise SettingError(unknown[0], f"is not a parameter of {notebook} (it has {', '.join(defaults)}).")
    for name, default in defaults.items():
        namespace[name] = _typed(name, namespace[name], default)


def _assigned(source):
    return [t.id for node in ast.parse(source).body if isinstance(node, ast.Assign) for t in node.targets
            if isinstance(t, ast.Name)]


def _typed(name, value, default):
    """value as the type of default, keeping name's rule; SettingError otherwise."""
    if isinstance(default, bool):
        if isinstance(value, str) and value.strip().lower() in TRUE + FALSE:
            value = value.strip().lower() in TRUE
        elif _int(value) in (0, 1):
            value = bool(value)
        if not isinstance(value, bool):
            raise SettingError(name, f"must be true or false, got {value!r}.")
    elif isinstance(default, (int, float)):
        if not (_int(value) is not None if isinstance(default, int) else _number(value)):
            raise SettingError(name, f"must be {'an integer' if isinstance(default, int) else 'a number'}, "
                               f"got {value!r}.")
    elif default is None or isinstance(default, str):
        if not (value is None and default is None) and not isinstance(value, str) and not hasattr(value, "__fspath__"):
            raise SettingError(name, f"must be {'a path or None' if default is None else 'text'}, got {value!r}.")
        value = value if value is None or isinstance(value, str) else str(value)
    rule = PARAMETER_RULES.get(name)
    if rule and not CHECKS[rule][0](value):
        raise SettingError(name, f"must be {CHECKS[rule][1]}, got {value!r}.")
    return value
