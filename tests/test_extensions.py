"""Beyond the assignment: Adam, mini-batches (streams and random chunks), validation, time budgets."""
import dataclasses
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from lib import gradcheck, optim, reading
from lib.model import cells
from lib.training import loop
from lib.training.checkpoint import load_state
from lib.config import Config, SettingError
from lib.training.chunks import inputs_and_targets
from lib.training.loop import train
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


@pytest.mark.parametrize("chunks", ["sequential", "random"])
def test_validation_text_is_never_trained_on(chunks, monkeypatch):
    """Every position of a text goes through the training loop, and each update records the positions it
    reads: a text whose every character is distinct, so that a character's index is its position. The
    updates read the training part (all of it, with sequential streams, over an epoch) and never a
    character of the held-out tail, which only validation reads."""
    from lib.data import Vocab
    n = 1200
    vocab = Vocab("".join(chr(0x100 + i) for i in range(n)))
    positions = np.arange(n)                                      # text[i] is character i
    cfg = Config(m=4, seq_length=10, batch_size=4, chunks=chunks, steps=80, sample_every=1000, val_fraction=0.1,
                 val_every=1000, optimizer="adam", eta=0.01)
    n_train = len(split(positions, cfg)[0])
    read = set()

    def recording(cfg, state, X, Y, update):
        read.update(X.ravel().tolist(), Y.ravel().tolist())
        return step(cfg, state, X, Y, update)
    step = loop.extended_step
    monkeypatch.setattr(loop, "extended_step", recording)
    train(cfg, positions, vocab)
    assert read and max(read) < n_train, f"an update read held-out position {max(read)}"
    if chunks == "sequential":                  # 80 updates of 4 streams x 10: more than an epoch
        L = n_train // 4                        # a stream's part; its tail shorter than a chunk is not read
        last = (L - 11) // 10 * 10 + 10         # the last target of the last chunk that fits
        assert read == {b * L + i for b in range(4) for i in range(last + 1)}, "a training position was never read"
    assert split(positions, Config())[1] is None


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
    _, h = reading.text_loss(cells.RNN, P, train_part, h0)             # warm-up over all the training text
    joined = np.concatenate([train_part, val_part])
    losses = reading.step_losses(cells.RNN, P, joined[:-1], joined[1:], np.zeros(8))
    expected = losses[len(train_part) - 1:].mean()               # the predictions of the held-out characters
    from lib.reading import validation_loss
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
    from lib.recipes import command
    from lib.training.runs import run
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
    from lib.data import halves, split
    from lib.reading import validation_loss
    train_part, held = split(small_data, cfg)
    P = cells.RNN.views(state.avg_theta, small_vocab.K, 12)
    first, second = halves(held)                # validation reads the first half of the held-out part only
    assert state.val[-1]["loss"] == validation_loss(cells.RNN, P, train_part, first, state.hprev[:1])
    assert state.val[-1]["loss"] != validation_loss(cells.RNN, P, train_part, held, state.hprev[:1])


def test_seeds_in_parallel_processes_equal_the_same_runs_one_after_another(corpus_file, tmp_path):
    """joblib's local backend (loky, two processes) gives each seed the run it gets alone, bit for bit."""
    from lib.training.runs import seed_runs
    configs = [Config(m=8, steps=40, sample_every=40, val_fraction=0.1, val_every=40, seed=s) for s in (0, 1)]
    parallel = seed_runs(configs, corpus_file, [tmp_path / "p" / f"seed-{s}" for s in (0, 1)], n_jobs=2)
    alone = seed_runs(configs, corpus_file, [tmp_path / "s" / f"seed-{s}" for s in (0, 1)], n_jobs=1)
    for p, s in zip(parallel, alone):
        assert p.cfg == s.cfg
        assert_same_state(p.state, s.state)
        assert p.summary["best_val_loss_bits"] == s.summary["best_val_loss_bits"]
    assert not np.array_equal(parallel[0].state.theta, parallel[1].state.theta)


def flipped(f):
    """A value of Config field f other than its default, that keeps its rule."""
    rule, default = f.metadata["rule"], f.default
    if isinstance(rule, tuple):
        return next(v for v in rule if v != default)
    if rule == "bool":
        return not default
    if isinstance(default, int):
        return default + 1                  # counts, layers, sample lengths, the seed
    return 0.125 if default == 0.25 else 0.25


def after_updates(cfg, data, K, step, eta_scale):
    """theta, avg_theta and the losses recorded after three updates of a fresh run with cfg, each made by step."""
    from lib.training.state import init_state
    state = init_state(cfg, K)
    state.eta_scale = eta_scale
    update = loop.Update(cfg, K, state.theta)
    for _ in range(3):
        X, Y = inputs_and_targets(cfg, data, state.e, state.step)
        step(cfg, state, X, Y, update)
        state.e += cfg.seq_length
    return np.concatenate([state.theta, state.losses[:3]] + ([] if state.avg_theta is None else [state.avg_theta]))


def test_each_extension_setting_takes_the_extended_step(small_data, small_vocab):
    """Config's fields say which settings only the extended update reads (extension=True): a run that
    changes any one of them takes extended_step, and the assignment's own step would ignore it (three
    updates of each differ); a change to any other setting keeps the assignment's step, and the two steps
    agree on it to the bit. plateau_factor acts through state.eta_scale, which validation lowers."""
    theta = np.zeros(cells.RNN.n_params(5, 100))
    assert loop.Update(Config(), 5, theta).step is loop.assignment_step
    for f in dataclasses.fields(Config):
        settings = {"m": 6, "val_fraction": 0.1, f.name: flipped(f)}
        try:
            cfg = Config(**settings)
        except SettingError as err:         # beta1, beta2: only with Adam, which is an extension itself
            assert f.name in ("beta1", "beta2") and "optimizer" in str(err)
            continue
        chosen = loop.Update(cfg, small_vocab.K, np.zeros(cells.of(cfg).n_params(small_vocab.K, cfg.m))).step
        assert chosen is (loop.extended_step if f.metadata["extension"] else loop.assignment_step), f.name
        scale = 0.5 if f.name == "plateau_factor" else 1.0
        try:
            same = np.array_equal(*(after_updates(cfg, small_data, small_vocab.K, step, scale)
                                    for step in (loop.assignment_step, loop.extended_step)))
        except KeyError:                    # Adam: the assignment's step finds no AdaGrad memory
            same = False
        assert same != f.metadata["extension"], f"{f.name}: the two steps {'agree' if same else 'differ'}"
