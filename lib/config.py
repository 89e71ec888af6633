"""The settings of a training run, in one object; the defaults are the assignment's."""
import dataclasses
import math
import operator
from dataclasses import dataclass

from lib.limits import MAX_SAMPLE

CELLS = ("rnn", "gru", "lstm")         # lib/cells.py: the vanilla RNN, a GRU, an LSTM
DTYPES = ("float64", "float32")
OPTIMIZERS = ("adagrad", "adam")
CHUNKS = ("sequential", "random")
RESUMABLE = ("steps", "sample_every", "checkpoint_every")   # may change when a run is continued


@dataclass(frozen=True)
class Config:
    """The settings of a run; the defaults are the assignment's."""
    cell: str = "rnn"               # "rnn" (the assignment's vanilla RNN), "gru" or "lstm"
    m: int = 100                    # hidden units
    seq_length: int = 25            # characters per sequence and update (T)
    eta: float = 0.1                # learning rate (the 2025 assignment's Adam uses 0.001)
    sig: float = 0.01               # standard deviation of the initial U, W, V (b, c start at zero)
    eps: float = 1e-8               # AdaGrad's epsilon inside the square root; Adam's outside it
    clip: float = 5.0               # gradients are clipped element-wise to [-clip, clip]
    steps: int = 100_000            # updates in all
    sample_every: int = 10_000      # a sample before update 0, every this many updates, and at the end
    sample_length: int = 200        # characters per sample
    checkpoint_every: int = 10_000  # the checkpoint is written every this many updates and at the end
    seed: int = 0                   # the one seed: initial parameters, samples, random chunk starts
    optimizer: str = "adagrad"      # "adagrad" (the assignment) or "adam"
    beta1: float = 0.9              # Adam: decay of the running mean of the gradient
    beta2: float = 0.999            # Adam: decay of the running mean of its square
    batch_size: int = 1             # B sequences per update
    chunks: str = "sequential"      # "sequential": B evenly spaced streams, each carrying its hidden state
                                    # (B = 1: the assignment's walk); "random": B random starts, h0 = 0
    normalize_loss: bool = False    # divide the loss, and so the gradients, by T B (as the 2025 assignment)
    val_fraction: float = 0.0       # held-out tail of the text for a validation loss (0: none; 0.1 usual)
    val_every: int = 10_000         # validation loss before update 0, every this many updates, at the end
    plateau_factor: float = 1.0     # with validation: eta is multiplied by this whenever a validation loss is
                                    # no lower than the best before it (1: never)
    dropout: float = 0.0            # probability that a unit of h_t is dropped before the output layer while
                                    # training (Zaremba et al. 2014); the mask is drawn from (seed, 2, step)
    ema: float = 0.0                # with validation: the weights averaged as avg = ema avg + (1 - ema) theta after
                                    # each update are what validation reads and the best model keeps (0: off)
    dtype: str = "float64"          # "float32" halves memory traffic; the assignment and gradient checks use float64

    def __post_init__(self):
        for name in ("m", "seq_length", "steps", "sample_every", "sample_length", "checkpoint_every",
                     "batch_size", "val_every"):
            _positive_int(self, name)
        for name in ("eta", "sig", "eps", "clip"):
            value = getattr(self, name)
            if not _number(value) or not value > 0 or not math.isfinite(value):
                raise ValueError(f"Config.{name} must be a positive number, got {value!r}.")
        if _int(self.seed) is None or self.seed < 0:
            raise ValueError(f"Config.seed must be a non-negative integer, got {self.seed!r}.")
        for name in ("beta1", "beta2"):
            if not _number(getattr(self, name)) or not 0 <= getattr(self, name) < 1:
                raise ValueError(f"Config.{name} must be in [0, 1), got {getattr(self, name)!r}.")
        if self.cell not in CELLS:
            raise ValueError(f"Config.cell must be one of {', '.join(CELLS)}, got {self.cell!r}.")
        if self.dtype not in DTYPES:
            raise ValueError(f"Config.dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}.")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"Config.optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}.")
        if self.chunks not in CHUNKS:
            raise ValueError(f"Config.chunks must be one of {', '.join(CHUNKS)}, got {self.chunks!r}.")
        if not isinstance(self.normalize_loss, bool):
            raise ValueError(f"Config.normalize_loss must be true or false, got {self.normalize_loss!r}.")
        if not _number(self.val_fraction) or not 0 <= self.val_fraction < 0.5:
            raise ValueError(f"Config.val_fraction must be in [0, 0.5), got {self.val_fraction!r}.")
        if not _number(self.dropout) or not 0 <= self.dropout < 1:
            raise ValueError(f"Config.dropout must be in [0, 1), got {self.dropout!r}.")
        if not _number(self.ema) or not 0 <= self.ema < 1:
            raise ValueError(f"Config.ema must be in [0, 1), got {self.ema!r}.")
        if not _number(self.plateau_factor) or not 0 < self.plateau_factor <= 1:
            raise ValueError(f"Config.plateau_factor must be in (0, 1], got {self.plateau_factor!r}.")
        if self.sample_length > MAX_SAMPLE:
            raise ValueError(f"Config.sample_length must be at most {MAX_SAMPLE:,}, got {self.sample_length:,}.")

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


def _positive_int(cfg, name):
    value = getattr(cfg, name)
    if _int(value) is None or value < 1:
        raise ValueError(f"Config.{name} must be a positive integer, got {value!r}.")
