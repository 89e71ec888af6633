"""Resuming is exact for every optional feature, stopped at awkward moments: the whole matrix (issue 17).
Not in the fast set: 88 runs, each trained three times."""
import os
import signal

import pytest

from conftest import assert_same_state
from lib.training.checkpoint import load_state
from lib.config import Config
from lib.training.loop import View, train


FEATURES = {   # every optional feature, one at a time and together
    "adam": dict(optimizer="adam", eta=0.01),
    "streams": dict(batch_size=3, seq_length=10),
    "random chunks": dict(batch_size=4, chunks="random", optimizer="adam", eta=0.01, normalize_loss=True),
    "validation": dict(batch_size=2, val_fraction=0.2, val_every=4),
    "plateau": dict(optimizer="adam", eta=0.3, val_fraction=0.2, val_every=4, plateau_factor=0.5),
    "weight averaging": dict(optimizer="adam", eta=0.05, val_fraction=0.2, val_every=4, ema=0.9),
    "dropout": dict(dropout=0.3),
    "float32": dict(dtype="float32", optimizer="adam", eta=0.01, val_fraction=0.2, val_every=4),
    "gru": dict(cell="gru", optimizer="adam", eta=0.01, val_fraction=0.2, val_every=4, ema=0.9, dropout=0.2, sig=0.1),
    "lstm": dict(cell="lstm", batch_size=2, optimizer="adam", eta=0.05, val_fraction=0.2, val_every=4,
                 plateau_factor=0.5),
    "two layers": dict(cell="gru", layers=2, batch_size=2, optimizer="adam", eta=0.01, dropout=0.2,
                       val_fraction=0.2, val_every=4, ema=0.9, sig=0.1),
}
STOPS = {"after a validation": 8, "after a sample": 10, "after a checkpoint": 12, "off every schedule": 13}


class SignalAt(View):
    """A view that sends this process SIGINT after update `step`, as Ctrl-C would."""

    def __init__(self, step):
        self.step = step

    def update(self, state):
        if state.step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.parametrize("how", ["steps", "signal"])
@pytest.mark.parametrize("stop", STOPS.values(), ids=STOPS)
@pytest.mark.parametrize("extra", FEATURES.values(), ids=FEATURES)
def test_resume_is_exact(tmp_path, small_data, small_vocab, extra, stop, how):
    """A run stopped (its steps reached, or Ctrl-C) at an awkward moment and resumed from its checkpoint
    equals the run that never stopped, bit for bit: validation every 4 updates, a sample every 5, a
    checkpoint every 6."""
    cfg = Config(m=12, steps=29, sample_every=5, checkpoint_every=6, seed=2, **extra)
    whole = train(cfg, small_data, small_vocab)
    ckpt = tmp_path / "checkpoint.npz"
    if how == "steps":
        train(cfg.replace(steps=stop), small_data, small_vocab, ckpt=ckpt)
    else:
        with pytest.raises(KeyboardInterrupt):
            train(cfg, small_data, small_vocab, ckpt=ckpt, view=SignalAt(stop))
    saved_cfg, _, state, _ = load_state(ckpt)
    assert state.step == stop and state.status == ("done" if how == "steps" else "interrupted")
    resumed = train(saved_cfg.replace(steps=29), small_data, small_vocab, state)
    assert_same_state(whole, resumed)


def test_the_plateau_acts_in_the_resume_matrix(small_data, small_vocab):
    """The matrix above would hold trivially if eta never dropped: it does, in its plateau set-ups."""
    for name in ("plateau", "lstm"):
        state = train(Config(m=12, steps=29, sample_every=5, checkpoint_every=6, seed=2, **FEATURES[name]),
                      small_data, small_vocab)
        assert state.eta_scale < 1, name
