"""The settings of a training run, in one object; the defaults are the assignment's.

Each setting is a field of Config whose metadata holds its help text and its rule (CHECKS, or the
choices it is one of). `python -m lib.train --help` is made from them, and Config() checks every
setting against its rule: a bad one raises SettingError, which names the setting as the user gave it
(`eta` in a notebook, `--eta` on the command line).
"""
import dataclasses
import math
import operator
from dataclasses import dataclass, field

from lib.limits import MAX_SAMPLE

RESUMABLE = ("steps", "sample_every", "checkpoint_every")   # may change when a run is continued


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
    "sample": (lambda v: _int(v) is not None and 1 <= v <= MAX_SAMPLE, f"an integer from 1 to {MAX_SAMPLE:,}"),
    "seed": (lambda v: _int(v) is not None and v >= 0, "a non-negative integer"),
    "positive": (lambda v: _number(v) and 0 < v < math.inf, "a positive number"),
    "[0, 1)": (lambda v: _number(v) and 0 <= v < 1, "in [0, 1)"),
    "[0, 0.5)": (lambda v: _number(v) and 0 <= v < 0.5, "in [0, 0.5)"),
    "(0, 1]": (lambda v: _number(v) and 0 < v <= 1, "in (0, 1]"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
}


def setting(default, rule, help):
    """A Config field: its default, its rule (a key of CHECKS, or a tuple of the allowed values) and its help."""
    return field(default=default, metadata={"rule": rule, "help": help})


class SettingError(ValueError):
    """A setting that breaks its rule. str() names it as in Python (eta); option() as on the command line
    (--eta)."""

    def __init__(self, name, must):
        super().__init__(f"{name} {must}")
        self.name, self.must = name, must

    def option(self):
        return f"--{self.name.replace('_', '-')} {self.must}"


@dataclass(frozen=True)
class Config:
    """The settings of a run; the defaults are the assignment's."""
    cell: str = setting("rnn", ("rnn", "gru", "lstm"),
                        "the recurrent cell: the assignment's vanilla RNN, a GRU or an LSTM")
    m: int = setting(100, "count", "hidden units")
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
                             "probability that a unit of h_t is dropped before the output layer while "
                             "training (Zaremba et al. 2014)")
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
