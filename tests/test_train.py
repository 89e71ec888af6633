"""Training (lib/training/loop.py, lib/optim.py, the command lib/train.py): the update, epochs, samples, checkpoints,
resuming."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from lib import optim
from lib.model import cells, reference
from lib.training.checkpoint import load_state, save_state
from lib.config import Config
from lib.training.loop import train
from lib.training.progress import Lines
from conftest import assert_same_state

pytestmark = pytest.mark.fast

def small_cfg(**kw):
    base = dict(m=16, steps=40, sample_every=10, sample_length=30, checkpoint_every=10, seed=3)
    return Config(**{**base, **kw})


def test_defaults_are_the_assignments():
    cfg = Config()
    assert (cfg.m, cfg.seq_length, cfg.eta, cfg.sig, cfg.eps, cfg.clip) == (100, 25, 0.1, 0.01, 1e-8, 5.0)
    assert (cfg.steps, cfg.sample_every, cfg.sample_length) == (100_000, 10_000, 200)


def test_clip_and_adagrad_step_follow_their_formulas(rng):
    n = 1000
    theta, mem = rng.standard_normal(n), rng.random(n)
    g = rng.standard_normal(n) * 10
    expected_g = np.minimum(np.maximum(g, -5), 5)
    expected_mem = mem + expected_g ** 2
    expected_theta = theta - 0.1 * expected_g / np.sqrt(expected_mem + 1e-8)
    optim.clip_(g, 5.0)
    assert np.array_equal(g, expected_g) and g.max() == 5 and g.min() == -5
    optim.adagrad_step_(theta, g, mem, 0.1, 1e-8, np.empty(n))
    assert np.allclose(mem, expected_mem, rtol=1e-15, atol=0)
    assert np.allclose(theta, expected_theta, rtol=1e-14, atol=1e-16)


def test_training_matches_the_reference_loop_across_epochs(small_data, small_vocab):
    """364 characters hold 14 chunks of 25: 30 updates cross two epoch boundaries."""
    cfg = small_cfg(m=20, steps=30, sample_every=1000)
    state = train(cfg, small_data, small_vocab)
    params, losses, smooth, hprev = reference.train(list(small_data), small_vocab.K, m=20, steps=30, seed=3)
    assert np.max(np.abs(state.losses - losses)) < 1e-10
    assert np.max(np.abs(state.smooth_losses - smooth)) < 1e-10
    P = cells.RNN.views(state.theta, small_vocab.K, 20)
    for k in cells.RNN.names:
        assert np.max(np.abs(getattr(P, k) - params[k].reshape(getattr(P, k).shape))) < 1e-10


def test_epochs_reset_position_and_hidden_state(small_data, small_vocab):
    cfg = small_cfg(steps=15, sample_every=1000)
    state = train(cfg, small_data, small_vocab)
    chunks = (len(small_data) - 1) // 25           # 14 chunks fit; the 15th would run past the end
    assert state.epoch_starts == [0, chunks]
    assert state.epoch == 1 and state.e == 25       # one chunk into the second epoch
    state = train(small_cfg(steps=chunks, sample_every=1000), small_data, small_vocab)
    assert state.e == 0 and np.all(state.hprev == 0) and state.hprev.shape == (1, 16)   # reset after epoch 1


def test_smooth_loss_starts_at_first_loss_and_best_is_tracked(small_data, small_vocab):
    state = train(small_cfg(steps=200, sample_every=1000), small_data, small_vocab)
    L, S = state.losses, state.smooth_losses
    assert S[0] == L[0] and abs(L[0] - 25 * math.log(small_vocab.K)) < 0.01 * L[0]
    assert np.allclose(S[1:], 0.999 * S[:-1] + 0.001 * L[1:], rtol=0, atol=1e-12)
    assert state.lowest_smooth_step == int(np.argmin(S)) and state.lowest_smooth_loss == S.min()
    assert state.best_step == state.lowest_smooth_step                # without validation, the best model
    assert not np.array_equal(state.best_theta, state.theta) or state.best_step == 199


def test_samples_before_first_update_every_interval_and_at_end(small_data, small_vocab):
    state = train(small_cfg(steps=25, sample_every=10, sample_length=30), small_data, small_vocab)
    assert [s["step"] for s in state.samples] == [0, 10, 20, 25]
    assert all(len(s["text"]) == 30 for s in state.samples)
    assert state.samples[0]["smooth_loss"] is None           # before any update
    assert state.samples[1]["smooth_loss"] == state.smooth_losses[9]


def test_resume_is_bit_for_bit(tmp_path, small_data, small_vocab):
    cfg = small_cfg(steps=37)
    whole = train(cfg, small_data, small_vocab, ckpt=tmp_path / "whole.npz")
    train(cfg.replace(steps=16), small_data, small_vocab, ckpt=tmp_path / "parts.npz")
    cfg2, vocab2, state, _ = load_state(tmp_path / "parts.npz")
    assert state.step == 16 and vocab2 == small_vocab
    resumed = train(cfg2.replace(steps=37), small_data, small_vocab, state, ckpt=tmp_path / "parts.npz")
    assert_same_state(whole, resumed)


def test_checkpoint_round_trip(tmp_path, small_data, small_vocab):
    cfg = small_cfg(steps=23)
    state = train(cfg, small_data, small_vocab)
    path = tmp_path / "ck.npz"
    save_state(path, cfg, small_vocab, state, "ab" * 32, len(small_data))
    with np.load(path, allow_pickle=False) as npz:        # plain arrays, no pickle
        assert npz["U"].shape == (16, small_vocab.K) and npz["losses"].shape == (23,)
    cfg2, vocab2, state2, meta = load_state(path)
    assert cfg2 == cfg and vocab2 == small_vocab and meta["corpus"] == {"sha256": "ab" * 32, "n_chars": 364}
    assert_same_state(state, state2)
    assert state2.status == "done"


def test_checkpoint_written_every_interval(tmp_path, small_data, small_vocab):
    seen = []

    def log(line):
        path = tmp_path / "checkpoint.npz"
        if path.exists():
            seen.append(load_state(path)[2].step)
    train(small_cfg(steps=30, sample_every=5, checkpoint_every=10), small_data, small_vocab,
          ckpt=tmp_path / "checkpoint.npz", view=Lines(log))
    assert seen == [10, 10, 20, 20, 20]         # on disk when the samples at 10, 15, 20, 25, 30 were shown
    assert load_state(tmp_path / "checkpoint.npz")[2].step == 30


def test_config_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ValueError, match="Unknown config key.*hidden"):
        Config.from_dict({"hidden": 10})
    for bad in (dict(m=0), dict(m=2.5), dict(seq_length=-1), dict(steps=0), dict(sample_every=0),
                dict(eta=0.0), dict(eta=-1.0), dict(sig=0), dict(eta=float("nan")), dict(m=True)):
        with pytest.raises(ValueError, match=list(bad)[0]):
            Config(**bad)


def test_command_line_train_resume_and_sample(tmp_path, corpus_file):
    run = [sys.executable, "-m", "lib.train", "--data", str(corpus_file), "--m", "12", "--seed", "5",
           "--sample-every", "10", "--no-progress"]
    out = tmp_path / "run"
    subprocess.run(run + ["--steps", "20", "--out", str(out)], check=True, capture_output=True, text=True)
    summary = json.loads((out / "summary.json").read_text())
    for key in ("steps", "seconds", "us_per_step", "K", "n_chars", "first_loss", "final_smooth_loss",
                "lowest_smooth_loss", "lowest_smooth_step", "best_step", "best_by"):
        assert key in summary, key
    assert summary["steps"] == 20 and summary["K"] == 24 and summary["n_chars"] == 364
    subprocess.run([sys.executable, "-m", "lib.train", "--resume", str(out / "checkpoint.npz"),
                    "--data", str(corpus_file), "--steps", "35", "--no-progress"],
                   check=True, capture_output=True, text=True)
    assert json.loads((out / "summary.json").read_text())["steps"] == 35
    direct = tmp_path / "direct"
    subprocess.run(run + ["--steps", "35", "--out", str(direct)], check=True, capture_output=True)
    a, b = load_state(out / "checkpoint.npz")[2], load_state(direct / "checkpoint.npz")[2]
    assert np.array_equal(a.theta, b.theta) and np.array_equal(a.losses, b.losses)
    result = subprocess.run([sys.executable, "-m", "lib.sample", "--checkpoint", str(out / "checkpoint.npz"),
                             "--n", "50", "--prime", "the ", "--temperature", "0.8", "--top-p", "0.9",
                             "--seed", "1"], check=True, capture_output=True, text=True)
    assert result.stdout.startswith("the ") and len(result.stdout.rstrip("\n")) >= 50
