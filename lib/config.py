"""The settings of a training run and their rules, in one object; the defaults are the assignment's.

Each setting is a field of Config whose metadata holds its help text and its rule (CHECKS, or the
choices it is one of). `python -m lib.train --help` is made from them, and Config() checks every
setting against its rule: a bad one raises SettingError, which names the setting as the user gave it
(`eta` in a notebook, `--eta` on the command line: Naming). The recipe files and the command line that
trains a Config again are lib/recipes.py's.
"""
import dataclasses
import math
import operator
from dataclasses import dataclass, field

from lib.util.limits import MAX_SAMPLE

RESUMABLE = ("steps", "sample_every", "checkpoint_every")   # may change when a run is continued
MAX_LAYERS = 8
UNBOUNDED = 10**9           # steps (and samples, checkpoints) out of reach: a run that its time budget ends


def as_int(value):
    """value as an int when it is an integer (not a bool), else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def is_number(value):
    return not isinstance(value, bool) and isinstance(value, (int, float))


CHECKS = {   # rule: (test, what a value must be)
    "count": (lambda v: as_int(v) is not None and v >= 1, "a positive integer"),
    "layers": (lambda v: as_int(v) is not None and 1 <= v <= MAX_LAYERS, f"an integer from 1 to {MAX_LAYERS}"),
    "sample": (lambda v: as_int(v) is not None and 1 <= v <= MAX_SAMPLE, f"an integer from 1 to {MAX_SAMPLE:,}"),
    "seed": (lambda v: as_int(v) is not None and v >= 0, "a non-negative integer"),
    "positive": (lambda v: is_number(v) and 0 < v < math.inf, "a positive number"),
    "[0, 1)": (lambda v: is_number(v) and 0 <= v < 1, "in [0, 1)"),
    "[0, 0.5)": (lambda v: is_number(v) and 0 <= v < 0.5, "in [0, 0.5)"),
    "(0, 1]": (lambda v: is_number(v) and 0 < v <= 1, "in (0, 1]"),
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


def setting(default, rule, help, extension=False):
    """A Config field: its default, its rule (a key of CHECKS, or a tuple of the allowed values) and its help.
    extension: only the extended update (lib/training/loop.py's extended_step) reads it; a run whose every extension
    setting keeps its default takes the assignment's own update (Config.is_assignment)."""
    return field(default=default, metadata={"rule": rule, "help": help, "extension": extension})


NEEDS = {    # a setting that acts only with another: (what it needs, test of a Config, why)
    "ema": ("{val_fraction} above 0", lambda c: c.val_fraction > 0, "the averaged weights are what validation reads"),
    "plateau_factor": ("{val_fraction} above 0", lambda c: c.val_fraction > 0, "it acts on validation losses"),
    "val_every": ("{val_fraction} above 0", lambda c: c.val_fraction > 0, "there is nothing to validate on"),
    "beta1": ('{optimizer} "adam"', lambda c: c.optimizer == "adam", "AdaGrad has no such setting"),
    "beta2": ('{optimizer} "adam"', lambda c: c.optimizer == "adam", "AdaGrad has no such setting"),
}


def option_name(name):
    """The command-line option of a setting or a run's option: eta -> --eta, max_seconds -> --max-seconds."""
    return "--" + name.replace("_", "-")


class Naming(dict):
    """How the user wrote the settings and a run's options, for messages: naming(name) is name as the user
    knows it. how renders a name; renamed holds the user's own names where they differ from run()'s (a
    notebook's run_dir for out). A Naming is also a format_map mapping: "{eta}" -> its name."""

    def __init__(self, how=str, renamed=None):
        super().__init__()
        self.how, self.renamed = how, renamed or {}

    def __call__(self, name):
        return self.how(self.renamed.get(name, name))

    def __missing__(self, name):
        return self(name)


PYTHON = Naming(str, {"out": "out_dir", "data": "corpus", "overwrite": "overwrite=True"})   # run()'s own names
COMMAND = Naming(option_name)               # --eta, --out, --overwrite, --data, --max-seconds


def in_notebook(out, max_seconds="budget_seconds"):
    """The Naming of a notebook whose parameters are out (the folder: run_dir or run_root), overwrite,
    corpus and max_seconds (budget_seconds)."""
    return Naming(lambda name: f"the parameter {name}", {"out": out, "data": "corpus", "max_seconds": max_seconds,
                                                          "overwrite": "overwrite = True"})


class SettingError(ValueError):
    """A setting that breaks its rule. str() names the settings as in Python (eta); named(naming) as the
    user wrote them, option() as on the command line (--eta). must: the rest of the sentence, with {name}
    where another setting is named."""

    def __init__(self, name, must, value=None):
        self.name, self.must, self.value = name, must, value
        super().__init__(self.named(Naming()))

    def named(self, naming):
        value = "" if self.value is None else f" = {self.value!r}"
        return f"{naming(self.name)}{value} {self.must.format_map(naming)}"

    def option(self):
        return (f"{COMMAND(self.name)}{'' if self.value is None else f' {self.value}'} "
                f"{self.must.format_map(COMMAND)}")


def require(rule, value, name):
    """SettingError naming name (a setting, as the caller names it) unless value keeps rule (CHECKS)."""
    if not CHECKS[rule][0](value):
        raise SettingError(name, f"must be {CHECKS[rule][1]}, got {value!r}.")


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
    optimizer: str = setting("adagrad", ("adagrad", "adam"), "AdaGrad (the assignment) or Adam", extension=True)
    beta1: float = setting(0.9, "[0, 1)", "Adam: decay of the running mean of the gradient", extension=True)
    beta2: float = setting(0.999, "[0, 1)", "Adam: decay of the running mean of its square", extension=True)
    batch_size: int = setting(1, "count", "B sequences per update", extension=True)
    chunks: str = setting("sequential", ("sequential", "random"),
                          "sequential: B evenly spaced streams, each carrying its hidden state (B = 1: the "
                          "assignment's walk); random: B random starts, each from a zero state", extension=True)
    normalize_loss: bool = setting(False, "bool",
                                   "divide the loss, and so the gradients, by T B (as the 2025 assignment)",
                                   extension=True)
    val_fraction: float = setting(0.0, "[0, 0.5)",
                                  "held-out tail of the text for a validation loss (0: none; 0.1 usual)")
    val_every: int = setting(10_000, "count",
                             "validation loss before update 0, every this many updates, and at the end")
    plateau_factor: float = setting(1.0, "(0, 1]",
                                    "with validation: eta is multiplied by this whenever a validation loss is "
                                    "no lower than the best before it (1: never)", extension=True)
    dropout: float = setting(0.0, "[0, 1)",
                             "probability that a unit of h_t is dropped before the output layer, and between "
                             "layers, while training (Zaremba et al. 2014)", extension=True)
    ema: float = setting(0.0, "[0, 1)",
                         "with validation: the weights averaged as avg = ema avg + (1 - ema) theta after each "
                         "update are what validation reads and the best model keeps (0: off)", extension=True)
    dtype: str = setting("float64", ("float64", "float32"),
                         "float32 halves memory traffic; the assignment and gradient checks use float64")

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value, rule = getattr(self, f.name), f.metadata["rule"]
            if isinstance(rule, tuple):
                if value not in rule:
                    raise SettingError(f.name, f"must be one of {', '.join(rule)}, got {value!r}.")
            else:
                require(rule, value, f.name)
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

    def is_assignment(self):
        """Whether an update is the assignment's own: every extension setting keeps its default."""
        return all(getattr(self, f.name) == f.default for f in dataclasses.fields(self) if f.metadata["extension"])

    def replace(self, **changes):
        return Config.from_dict({**self.to_dict(), **changes})

    def differences(self, other, ignore=RESUMABLE):
        """The settings in which other differs from self, as 'name: mine there, other's here' texts."""
        a, b = self.to_dict(), other.to_dict()
        return [f"{k} {a[k]!r} there, {b[k]!r} here" for k in a if k not in ignore and a[k] != b[k]]

    def __str__(self):
        return "Config(" + ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items()) + ")"


CELLS = Config.__dataclass_fields__["cell"].metadata["rule"]   # the cells lib/model/cells.py must provide
