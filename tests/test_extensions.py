"""Beyond the assignment: Adam, mini-batches (streams and random chunks), validation, time budgets."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from lib import cells, gradcheck, optim, sample
from lib.checkpoint import load_state
from lib.config import Config
from lib.loop import inputs_and_targets, train
from lib.data import split
from conftest import QUIET, assert_same_state

pytestmark = pytest.mark.fast


def test_adam_step_follows_its_formula(rng):
    n = 500
    theta, g = rng.standard_normal(n), rng.standard_normal(n)
    m1, m2 = rng.standard_normal(n) * 0.1, rng.random(n) * 0.1
    t, eta, b1, b2, eps = 7, 0.001, 0.9, 0.999, 1e-8
    e_m1 = b1 * m1 + (1 - b1) * g
    e_m2 = b2 * m2 + (1 - b2) * g * g
    e_theta = theta - eta * (e_m1 / (1 - b1 ** t)) / (np.sqrt(e_m2 / (1 - b2 ** t)) + eps)
    optim.adam_step_(theta, g, m1, m2, t, eta, b1, b2, eps, np.empty(n))
    assert np.allclose(m1, e_m1, rtol=1e-14, atol=0) and np.allclose(m2, e_m2, rtol=1e-14, atol=0)
    assert np.allclose(theta, e_theta, rtol=1e-13, atol=1e-16)


def test_batched_gradients_match_centred_differences(small_data, small_vocab):
    """B = 3 sequences with their own hidden states, m = 5: max relative error below 1e-6."""
    K, m, T, B = small_vocab.K, 5, 25, 3
    theta = cells.RNN.init_params(K, m, 0.01, np.random.default_rng(0))
    P = cells.RNN.views(theta, K, m)
    starts = np.array([0, 100, 250])
    X = small_data[np.arange(T)[:, None] + starts]
    Y = small_data[np.arange(T)[:, None] + starts + 1]
    h0 = np.tanh(np.random.default_rng(1).standard_normal((B, m)))
    for r in gradcheck.check(P, X, Y, h0):
        assert r["max_rel_error"] < 1e-6, r


def test_a_batch_is_the_sum_of_its_sequences(small_data, small_vocab):
    K, m, T = small_vocab.K, 7, 25
    P = cells.RNN.views(cells.RNN.init_params(K, m, 0.1, np.random.default_rng(2)), K, m)
    starts = [3, 77, 200]
    X = np.stack([small_data[s:s + T] for s in starts], axis=1)
    Y = np.stack([small_data[s + 1:s + T + 1] for s in starts], axis=1)
    h0 = np.random.default_rng(3).standard_normal((3, m)) * 0.3
    loss, G, hT = cells.RNN.loss_and_grads(P, X, Y, h0)
    parts = [cells.RNN.loss_and_grads(P, X[:, b], Y[:, b], h0[b]) for b in range(3)]
    assert abs(loss - sum(p[0] for p in parts)) < 1e-10
    for k, name in enumerate(cells.RNN.names):
        assert np.allclose(G[k], sum(p[1][k] for p in parts), rtol=0, atol=1e-12), name
    assert np.allclose(hT, np.stack([p[2] for p in parts]), rtol=0, atol=1e-15)


def test_streams_read_their_own_part_of_the_text(small_data):
    cfg = Config(batch_size=4, seq_length=5)
    X, Y = inputs_and_targets(cfg, small_data, 10, 0)
    L = len(small_data) // 4
    for b in range(4):
        assert np.array_equal(X[:, b], small_data[b * L + 10:b * L + 15])
        assert np.array_equal(Y[:, b], small_data[b * L + 11:b * L + 16])
    one = Config()
    X1, Y1 = inputs_and_targets(one, small_data, 50, 0)
    assert np.array_equal(X1[:, 0], small_data[50:75]) and np.array_equal(Y1[:, 0], small_data[51:76])


def test_random_chunks_depend_on_seed_and_step_only(small_data):
    cfg = Config(batch_size=6, chunks="random", seed=9)
    a, _ = inputs_and_targets(cfg, small_data, 0, 17)
    b, _ = inputs_and_targets(cfg, small_data, 123, 17)
    c, _ = inputs_and_targets(cfg, small_data, 0, 18)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_streams_carry_their_state_and_reset_at_epochs(small_data, small_vocab):
    cfg = Config(m=10, batch_size=3, seq_length=10, steps=12, sample_every=100)
    state = train(cfg, small_data, small_vocab)
    L = len(small_data) // 3                               # 121 characters a stream: 12 chunks of 10
    assert state.epoch_starts == [0, (L - 1) // 10] and state.hprev.shape == (3, 10)
    assert state.e == 0 and np.all(state.hprev == 0)


def test_one_sequence_gives_the_same_numbers_either_way(small_data, small_vocab):
    """batch_size 1 with "sequential" chunks is the assignment's set-up, bit for bit."""
    a = train(Config(m=12, steps=30, sample_every=10), small_data, small_vocab)
    b = train(Config(m=12, steps=30, sample_every=10, batch_size=1, chunks="sequential",
                     normalize_loss=False, optimizer="adagrad"), small_data, small_vocab)
    assert_same_state(a, b)


def test_normalized_loss_scales_the_gradient_not_the_record(small_data, small_vocab):
    base = dict(m=12, steps=5, sample_every=100, optimizer="adam", eta=1e-3)
    a = train(Config(**base), small_data, small_vocab)
    b = train(Config(**base, normalize_loss=True), small_data, small_vocab)
    assert a.losses[0] == b.losses[0]                     # the recorded loss is per sequence either way
    assert not np.array_equal(a.theta, b.theta)


def test_untrained_validation_loss_is_about_ln_K(small_data, small_vocab):
    cfg = Config(m=16, steps=3, sample_every=100, val_fraction=0.2, val_every=100)
    state = train(cfg, small_data, small_vocab)
    assert [v["step"] for v in state.val] == [0, 3]
    assert abs(state.val[0]["loss"] - math.log(small_vocab.K)) < 0.01 * math.log(small_vocab.K)


def test_validation_text_is_never_trained_on(small_data):
    train_part, val_part = split(small_data, Config(val_fraction=0.1))
    assert len(val_part) == int(len(small_data) * 0.1)
    assert np.array_equal(np.concatenate([train_part, val_part]), small_data)
    positions = np.arange(len(small_data))[:len(train_part)]      # a "text" whose characters are their positions
    for chunks in ("sequential", "random"):
        cfg = Config(batch_size=4, chunks=chunks, val_fraction=0.1)
        L = len(train_part) // 4
        for step in range(50):
            X, Y = inputs_and_targets(cfg, positions, (step * 25) % (L - 25), step)
            assert X.shape == (25, 4) and np.array_equal(Y, X + 1)
            assert X.min() >= 0 and Y.max() < len(train_part)     # every position read lies in the training part
    assert split(small_data, Config())[1] is None


def test_validation_picks_the_best_model(small_data, small_vocab):
    cfg = Config(m=16, steps=60, sample_every=100, val_fraction=0.2, val_every=20)
    state = train(cfg, small_data, small_vocab)
    best = min(state.val, key=lambda v: v["loss"])
    assert [v["step"] for v in state.val] == [0, 20, 40, 60] and state.best_step == best["step"]
    assert np.array_equal(state.best_theta, state.theta) == (best["step"] == 60)


def test_validation_scores_each_held_out_character_once(small_data, small_vocab):
    cfg = Config(m=8, val_fraction=0.2)
    train_part, val_part = split(small_data, cfg)
    P = cells.RNN.views(cells.RNN.init_params(small_vocab.K, 8, 0.3, np.random.default_rng(0)), small_vocab.K, 8)
    h0 = np.zeros((1, 8))
    _, h = sample.text_loss(cells.RNN, P, train_part, h0)             # warm-up over all the training text
    joined = np.concatenate([train_part, val_part])
    losses = sample.step_losses(cells.RNN, P, joined[:-1], joined[1:], np.zeros(8))
    expected = losses[len(train_part) - 1:].mean()               # the predictions of the held-out characters
    from lib.sample import validation_loss
    assert abs(validation_loss(cells.RNN, P, train_part, val_part, h0, warmup=len(train_part) - 1) - expected) < 1e-12


def test_time_budget_stops_training(small_data, small_vocab):
    state = train(Config(m=12, steps=10_000_000, sample_every=10**6), small_data, small_vocab,
                  max_seconds=0.3)
    assert state.status == "budget" and 0 < state.step < 10_000_000 and state.seconds < 5


def test_command_line_with_the_2025_settings(tmp_path, corpus_file):
    out = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "lib.train", "--data", str(corpus_file), "--steps", "40",
                    "--optimizer", "adam", "--eta", "0.003", "--batch-size", "4", "--val-fraction", "0.1",
                    "--val-every", "10", "--normalize-loss", "--m", "12", "--out", str(out),
                    "--no-progress"], check=True, capture_output=True)
    info = json.loads((out / "summary.json").read_text())
    assert info["config"]["optimizer"] == "adam" and info["chars_seen"] == 40 * 4 * 25
    assert info["best_val_step"] in (0, 10, 20, 30, 40) and info["best_val_loss_per_char"] > 0
    assert abs(info["best_val_loss_bits"] - info["best_val_loss_per_char"] / math.log(2)) < 1e-12


def test_a_plateau_lowers_the_learning_rate(small_data, small_vocab):
    """With plateau_factor, eta is multiplied by it after each validation loss no lower than the best before."""
    cfg = Config(m=16, steps=300, sample_every=1000, val_fraction=0.2, val_every=10, plateau_factor=0.5,
                 optimizer="adam", eta=0.05)
    state = train(cfg, small_data, small_vocab)
    best, expected = math.inf, 1.0
    for v in state.val:
        if v["loss"] < best:
            best = v["loss"]
        else:
            expected *= 0.5
    assert expected < 1 and state.eta_scale == expected
    flat = train(cfg.replace(plateau_factor=1.0), small_data, small_vocab)
    assert flat.eta_scale == 1.0 and not np.array_equal(flat.theta, state.theta)


def test_a_run_stopped_by_its_budget_is_reproduced_by_its_update_count(tmp_path, corpus_file):
    """Equal-time comparisons: the command runs.command prints, without a budget, gives the same numbers."""
    from lib.runs import command, run
    cfg = Config(m=12, steps=10**9, sample_every=50, checkpoint_every=10**9, val_fraction=0.2, val_every=20, seed=1,
                 optimizer="adam", eta=0.01)
    _, _, state, info = run(cfg, corpus_file, tmp_path / "budget", max_seconds=0.5, **QUIET)
    assert info["status"] == "budget" and info["steps"] > 20
    argv = command(cfg, info["steps"], str(tmp_path / "again")).split()[3:]
    subprocess.run([sys.executable, "-m", "lib.train", *argv, "--data", str(corpus_file), "--no-progress"],
                   check=True, capture_output=True)
    again = load_state(tmp_path / "again" / "checkpoint.npz")[2]
    assert again.status == "done" and again.step == state.step
    assert np.array_equal(again.theta, state.theta) and np.array_equal(again.losses, state.losses)
    assert [v["loss"] for v in again.val] == [v["loss"] for v in state.val] and again.samples == state.samples


def test_averaged_weights_are_what_validation_reads(small_data, small_vocab):
    cfg = Config(m=12, steps=40, sample_every=1000, val_fraction=0.2, val_every=20, optimizer="adam", eta=0.02,
                 ema=0.9)
    state = train(cfg.replace(steps=1), small_data, small_vocab)
    avg = state.avg_theta.copy()
    for i in range(1, 40):                  # the average, replayed from the parameters after each update
        state = train(cfg.replace(steps=i + 1), small_data, small_vocab, state)
        a = min(0.9, (1 + i) / (10 + i))
        avg = a * avg + (1 - a) * state.theta
    assert np.allclose(state.avg_theta, avg, rtol=0, atol=1e-12) and not np.allclose(avg, state.theta)
    from lib.data import split
    from lib.sample import validation_loss
    train_part, held = split(small_data, cfg)
    P = cells.RNN.views(state.avg_theta, small_vocab.K, 12)
    assert state.val[-1]["loss"] == validation_loss(cells.RNN, P, train_part, held, state.hprev[:1])


def test_seeds_in_parallel_processes_equal_the_same_runs_one_after_another(corpus_file, tmp_path):
    """joblib's local backend (loky, two processes) gives each seed the run it gets alone, bit for bit."""
    from lib.runs import seed_runs
    configs = [Config(m=8, steps=40, sample_every=40, val_fraction=0.1, val_every=40, seed=s) for s in (0, 1)]
    parallel = seed_runs(configs, corpus_file, [tmp_path / "p" / f"seed-{s}" for s in (0, 1)], n_jobs=2)
    alone = seed_runs(configs, corpus_file, [tmp_path / "s" / f"seed-{s}" for s in (0, 1)], n_jobs=1)
    for p, s in zip(parallel, alone):
        assert p.cfg == s.cfg
        assert_same_state(p.state, s.state)
        assert p.summary["best_val_loss_bits"] == s.summary["best_val_loss_bits"]
    assert not np.array_equal(parallel[0].state.theta, parallel[1].state.theta)
