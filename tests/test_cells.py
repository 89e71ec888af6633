"""The gated cells (lib/model/gru.py, lib/model/lstm.py) against their definition, and in the one trainer."""
import json
import subprocess
import sys

import numpy as np
import pytest

from lib import gradcheck, sample
from lib.model import cells, reference
from lib.training.checkpoint import load_state
from lib.config import Config
from lib.training.runs import run
from lib.sample import passage
from lib.training.loop import train
from conftest import QUIET, assert_same_state

pytestmark = pytest.mark.fast

GATED = [cells.get("gru"), cells.get("lstm")]


def random_params(cell, K, m, sig, seed):
    rng = np.random.default_rng(seed)
    theta = cell.init_params(K, m, sig, rng)
    theta += sig * rng.standard_normal(theta.size)          # biases too, so that every entry matters
    return theta, cell.views(theta, K, m)


def chunk(data, B, T=25, spacing=97):
    pos = np.arange(T)[:, None] + np.arange(B) * spacing
    return data[pos].astype(np.int64), data[pos + 1].astype(np.int64)


@pytest.mark.parametrize("cell", GATED, ids=["gru", "lstm"])
@pytest.mark.parametrize("B,zero_state", [(1, True), (3, False)])
def test_gradients_match_finite_differences(small_data, small_vocab, cell, B, zero_state):
    """m = 5, float64, every entry of every parameter: max relative error below 1e-6 (five-point stencil)."""
    K, m = small_vocab.K, 5
    _, P = random_params(cell, K, m, 0.1, 1)
    X, Y = chunk(small_data, B)
    S = cell.state_size(m)
    h0 = np.zeros((B, S)) if zero_state else np.tanh(np.random.default_rng(2).standard_normal((B, S)))
    rows = gradcheck.check(P, X, Y, h0, h=1e-3, cell=cell, order=4)
    assert [r["parameter"] for r in rows] == list(cell.names)
    for r in rows:
        assert r["max_rel_error"] < 1e-6 and r["max_abs_grad"] > 1e-6, r


@pytest.mark.parametrize("name", ["rnn", "gru", "lstm"])
def test_gradcheck_command_passes_and_fails_when_it_should(name, monkeypatch, capsys):
    assert gradcheck.main(["--cell", name, "--m", "3", "--seq-length", "8"]) == 0
    assert "passed" in capsys.readouterr().out
    cell = cells.get(name)
    true = cell.loss_and_grads

    def broken(*args, **kw):                                # one entry of V 0.1% off
        loss, G, h = true(*args, **kw)
        G.V[1, 1] *= 1.001
        return loss, G, h
    monkeypatch.setattr(cell, "loss_and_grads", broken)
    assert gradcheck.main(["--cell", name, "--m", "3", "--seq-length", "8"]) == 1
    assert "FAILED" in capsys.readouterr().out


@pytest.mark.parametrize("name,layers", [("rnn", 1), ("gru", 1), ("lstm", 1), ("lstm", 2)])
def test_the_assignments_centred_difference_passes_correct_gradients(name, layers, capsys):
    """--order 2 takes the assignment's h = 1e-4 (at 1e-3 its own truncation error alone fails the RNN)."""
    assert gradcheck.main(["--cell", name, "--layers", str(layers), "--order", "2"]) == 0
    assert "h = 0.0001" in capsys.readouterr().out


def as_reference_gru(P, m):
    d = {"V": np.array(P.V), "c": P.c.reshape(-1, 1).copy()}
    for k, gate in enumerate("zrg"):
        d["U" + gate] = np.array(P.U[k * m:(k + 1) * m])
        d["b" + gate] = P.b[k * m:(k + 1) * m].reshape(-1, 1).copy()
    d["Wz"], d["Wr"], d["Wg"] = np.array(P.W[:m]), np.array(P.W[m:]), np.array(P.Wg)
    return d


def as_reference_lstm(P, m):
    d = {"V": np.array(P.V), "c": P.c.reshape(-1, 1).copy()}
    for k, gate in enumerate("ifqg"):
        d["U" + gate] = np.array(P.U[k * m:(k + 1) * m])
        d["W" + gate] = np.array(P.W[k * m:(k + 1) * m])
        d["b" + gate] = P.b[k * m:(k + 1) * m].reshape(-1, 1).copy()
    return d


@pytest.mark.parametrize("seed,sig", [(0, 0.1), (1, 0.5)])
def test_gru_matches_the_plain_reference(small_data, small_vocab, seed, sig):
    K, m, T = small_vocab.K, 30, 25
    _, P = random_params(cells.get("gru"), K, m, sig, seed)
    X, Y = small_data[seed:seed + T], small_data[seed + 1:seed + T + 1]
    h0 = np.tanh(np.random.default_rng(seed).standard_normal(m))
    loss, G, hT = cells.get("gru").loss_and_grads(P, X, Y, h0)
    loss_r, G_r, hT_r = reference.gru_loss_and_grads(as_reference_gru(P, m), list(X), list(Y), h0.reshape(m, 1))
    assert abs(loss - loss_r) < 1e-10 and np.max(np.abs(hT - hT_r.ravel())) < 1e-10
    stacked = {"U": np.vstack([G_r["Uz"], G_r["Ur"], G_r["Ug"]]), "W": np.vstack([G_r["Wz"], G_r["Wr"]]),
               "Wg": G_r["Wg"], "b": np.vstack([G_r["bz"], G_r["br"], G_r["bg"]]).ravel(), "V": G_r["V"],
               "c": G_r["c"].ravel()}
    for name in cells.get("gru").names:
        assert np.max(np.abs(getattr(G, name) - stacked[name])) < 1e-10, name


@pytest.mark.parametrize("seed,sig", [(0, 0.1), (1, 0.5)])
def test_lstm_matches_the_plain_reference(small_data, small_vocab, seed, sig):
    K, m, T = small_vocab.K, 30, 25
    _, P = random_params(cells.get("lstm"), K, m, sig, seed)
    X, Y = small_data[seed:seed + T], small_data[seed + 1:seed + T + 1]
    hs0 = np.tanh(np.random.default_rng(seed).standard_normal(2 * m))
    loss, G, last = cells.get("lstm").loss_and_grads(P, X, Y, hs0)
    loss_r, G_r, hT_r, sT_r = reference.lstm_loss_and_grads(as_reference_lstm(P, m), list(X), list(Y),
                                                            hs0[:m].reshape(m, 1), hs0[m:].reshape(m, 1))
    assert abs(loss - loss_r) < 1e-10
    assert np.max(np.abs(last - np.concatenate([hT_r.ravel(), sT_r.ravel()]))) < 1e-10
    stacked = {"U": np.vstack([G_r["U" + k] for k in "ifqg"]), "W": np.vstack([G_r["W" + k] for k in "ifqg"]),
               "b": np.vstack([G_r["b" + k] for k in "ifqg"]).ravel(), "V": G_r["V"], "c": G_r["c"].ravel()}
    for name in cells.get("lstm").names:
        assert np.max(np.abs(getattr(G, name) - stacked[name])) < 1e-10, name


@pytest.mark.parametrize("cell", GATED, ids=["gru", "lstm"])
def test_a_batch_is_the_sum_of_its_sequences(small_data, small_vocab, cell):
    K, m = small_vocab.K, 7
    _, P = random_params(cell, K, m, 0.3, 4)
    X, Y = chunk(small_data, 3)
    h0 = np.tanh(np.random.default_rng(5).standard_normal((3, cell.state_size(m))))
    loss, G, hT = cell.loss_and_grads(P, X, Y, h0)
    G = [a.copy() for a in G]
    parts = [cell.loss_and_grads(P, X[:, b], Y[:, b], h0[b]) for b in range(3)]
    assert abs(loss - sum(p[0] for p in parts)) < 1e-10
    for k in range(len(G)):
        assert np.allclose(G[k], sum(p[1][k] for p in parts), rtol=0, atol=1e-12)
    assert np.allclose(hT, np.stack([p[2] for p in parts]), rtol=0, atol=1e-15)


@pytest.mark.parametrize("name,layers", [("gru", 1), ("lstm", 1), ("rnn", 2), ("gru", 2), ("lstm", 2)])
def test_one_step_at_a_time_is_the_chunk(small_data, small_vocab, name, layers):
    """Sampling steps one character at a time (through every layer); training runs whole chunks: the same
    scores and states."""
    cell, K, m = cells.get(name, layers), small_vocab.K, 9
    _, P = random_params(cell, K, m, 0.3, 6)
    X = small_data[:25]
    h = np.tanh(np.random.default_rng(7).standard_normal(cell.state_size(m)))
    O, hT = cell.scores(P, X[:, None], h[None, :])
    for t, x in enumerate(X):
        h, o = cell.step(P, h, x)
        assert np.allclose(o, O[t], rtol=0, atol=1e-12)
    assert np.allclose(h, hT[0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["gru", "lstm"])
def test_gated_cells_learn_in_the_trainer(small_data, small_vocab, name):
    state = train(Config(cell=name, m=32, steps=300, sample_every=100, optimizer="adam", eta=0.01, sig=0.1),
                  small_data, small_vocab)
    assert abs(state.losses[0] - 25 * np.log(small_vocab.K)) < 0.05 * state.losses[0]
    assert state.losses[-20:].mean() < 0.4 * state.losses[0]            # the small text is learnt
    assert len(state.samples) == 4 and all(len(s["text"]) == 200 for s in state.samples)


@pytest.mark.parametrize("name", ["gru", "lstm"])
@pytest.mark.parametrize("extra", [dict(), dict(optimizer="adam", eta=0.01, batch_size=3, val_fraction=0.2, val_every=7),
                                   dict(batch_size=4, chunks="random", optimizer="adam", eta=0.01, normalize_loss=True)])
def test_gated_runs_resume_exactly(tmp_path, small_data, small_vocab, name, extra):
    cfg = Config(cell=name, m=10, steps=29, sample_every=5, checkpoint_every=100, seed=2, sig=0.1, **extra)
    whole = train(cfg, small_data, small_vocab)
    train(cfg.replace(steps=13), small_data, small_vocab, ckpt=tmp_path / "c.npz")
    cfg2, _, state, _ = load_state(tmp_path / "c.npz")
    assert cfg2.cell == name and state.hprev.shape == (cfg.batch_size, cells.get(name).state_size(10))
    resumed = train(cfg2.replace(steps=29), small_data, small_vocab, state)
    assert_same_state(whole, resumed)


def test_float32_trains_and_round_trips(tmp_path, small_data, small_vocab):
    for name in ("rnn", "lstm"):
        cfg = Config(cell=name, m=16, steps=40, sample_every=20, dtype="float32", optimizer="adam", eta=0.01,
                     sig=0.1)
        state = train(cfg, small_data, small_vocab, ckpt=tmp_path / f"{name}.npz")
        wide = train(cfg.replace(dtype="float64"), small_data, small_vocab)
        assert state.theta.dtype == np.float32 and state.hprev.dtype == np.float32
        assert abs(state.losses[0] - wide.losses[0]) < 1e-4 * wide.losses[0]
        _, _, loaded, _ = load_state(tmp_path / f"{name}.npz")
        assert loaded.theta.dtype == np.float32 and np.array_equal(loaded.theta, state.theta)


def test_sampling_and_summary_of_a_gated_run(tmp_path, corpus_file):
    cfg = Config(cell="lstm", m=12, steps=30, sample_every=10, sig=0.1)
    _, vocab, state, info = run(cfg, corpus_file, tmp_path / "run", **QUIET)
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["config"]["cell"] == "lstm"
    text = passage(cfg, vocab, state.best_theta, 50, seed=1, temperature=0.8, top_p=0.9, prime="the ")
    assert len(text) == 50 and set(text) <= set(vocab.chars)
    out = subprocess.run([sys.executable, "-m", "lib.sample", "--checkpoint", str(tmp_path / "run"), "--n", "40",
                          "--prime", "the "], capture_output=True, text=True, check=True).stdout
    assert out.startswith("the ") and len(out) == 4 + 40 + 1
    assert sample.next_char_probs(np.array([1.0, 2.0]), 1e-300).tolist() == [0.0, 1.0]


@pytest.mark.parametrize("name", ["rnn", "gru", "lstm"])
def test_gradients_with_a_dropout_mask(small_data, small_vocab, name):
    """Dropout before the output layer is a fixed mask within an update: the gradients still match."""
    import types
    from functools import partial
    cell, K, m, B = cells.get(name), small_vocab.K, 5, 2
    _, P = random_params(cell, K, m, 0.1, 3)
    X, Y = chunk(small_data, B)
    keep = np.where(np.random.default_rng(4).random((25 * B, m)) < 0.3, 0.0, 1 / 0.7)
    h0 = np.tanh(np.random.default_rng(5).standard_normal((B, cell.state_size(m))))

    def scores(P, X, h0):
        H, _, last = cell.forward(P, X, h0)
        return cells.output_rows(H, keep) @ P.V.T + P.c, last
    masked = types.SimpleNamespace(names=cell.names, loss_and_grads=partial(cell.loss_and_grads, keep=keep),
                                   scores=scores)
    for r in gradcheck.check(P, X, Y, h0, h=1e-3, cell=masked, order=4):
        assert r["max_rel_error"] < 1e-6, r
    _, G, _ = cell.loss_and_grads(P, X, Y, h0, keep=keep)
    _, G0, _ = cell.loss_and_grads(P, X, Y, h0)
    assert not np.allclose(G.V, G0.V)                       # the mask matters


def test_dropout_in_the_trainer_is_reproducible(small_data, small_vocab):
    cfg = Config(cell="gru", m=16, steps=20, sample_every=100, dropout=0.3, optimizer="adam", eta=0.01, sig=0.1)
    a, b = (train(cfg, small_data, small_vocab) for _ in range(2))
    assert np.array_equal(a.theta, b.theta)
    assert not np.array_equal(a.theta, train(cfg.replace(dropout=0.0), small_data, small_vocab).theta)


@pytest.mark.parametrize("name,layers", [("rnn", 1), ("gru", 1), ("lstm", 1), ("gru", 2), ("lstm", 2)])
def test_gradients_through_time_match_finite_differences(small_data, small_vocab, name, layers):
    """insight.gradient_norms' dL_t/dh_{t-k}, against centred differences of L_t in each entry of h_{t-k}
    (the LSTM's cell state s_{t-k} held fixed), the last k characters read again from the perturbed state.
    With two layers h_{t-k} is both layers' h (k >= 1), and the top layer's at k = 0."""
    from lib.report import insight
    cfg, K, span, start, m = Config(cell=name, m=4, layers=layers), small_vocab.K, 6, 11, 4
    cell = cells.of(cfg)
    width = cell.state_size(m) // layers
    theta, P = random_params(cell, K, m, 0.5, 8)
    norms = insight.gradient_norms(cfg, theta, K, small_data, [start], span)[0]
    X, y = small_data[start:start + span + 1][:, None], small_data[start + span + 1]
    top = (layers - 1) * width              # where the top layer's h starts in the state

    def loss_after(state, t):               # L_t read on from the state after step t
        H, _, _ = cell.forward(P, X[t + 1:], state) if t < span else (state[None, :, top:top + m], None, None)
        o = H[-1, 0] @ P.V.T + P.c
        return np.log(np.exp(o - o.max()).sum()) + o.max() - o[y]
    states = [np.zeros((1, cell.state_size(m)))]
    for t in range(span + 1):
        states.append(cell.forward(P, X[t:t + 1], states[-1])[2])
    for k in range(span + 1):
        t = span - k
        entries = [top + i for i in range(m)] if k == 0 else [l * width + i for l in range(layers) for i in range(m)]
        grad = np.zeros(len(entries))
        for j, i in enumerate(entries):
            plus, minus = states[t + 1].copy(), states[t + 1].copy()
            plus[0, i] += 1e-6
            minus[0, i] -= 1e-6
            grad[j] = (loss_after(plus, t) - loss_after(minus, t)) / 2e-6
        assert abs(np.linalg.norm(grad) - norms[k]) < 1e-6 * max(1.0, norms[k]), (k, np.linalg.norm(grad), norms[k])


def masked_cell(cell, keep):
    """cell with the dropout masks keep (layers, T B, m) fixed, for gradcheck."""
    import types
    from functools import partial

    def scores(P, X, h0):
        H, _, last = cell.forward(P, X, h0, keep)
        return cells.output_rows(H, keep[0]) @ P.V.T + P.c, last
    return types.SimpleNamespace(names=cell.names, scores=scores,
                                 loss_and_grads=partial(cell.loss_and_grads, keep=keep))


@pytest.mark.parametrize("name,layers", [("rnn", 2), ("gru", 2), ("lstm", 2), ("rnn", 3)])
def test_stacked_layers_match_finite_differences(small_data, small_vocab, name, layers):
    """Two or three layers, B = 2 from random states, dropout masks before the output layer and between
    the layers: every entry of every layer's parameters (U2, W2, ... included) against the five-point stencil."""
    cell, K, m, B = cells.get(name, layers), small_vocab.K, 4, 2
    assert cell.names[:len(cells.get(name).module.NAMES)] == cells.get(name).module.NAMES
    assert "U2" in cell.names and cell.state_size(m) == layers * cells.get(name).state_size(m)
    _, P = random_params(cell, K, m, 0.3, 3)
    X, Y = chunk(small_data, B, T=12)
    keep = np.where(np.random.default_rng(4).random((layers, 12 * B, m)) < 0.3, 0.0, 1 / 0.7)
    h0 = np.tanh(np.random.default_rng(5).standard_normal((B, cell.state_size(m))))
    rows = gradcheck.check(P, X, Y, h0, h=1e-3, cell=masked_cell(cell, keep), order=4)
    assert [r["parameter"] for r in rows] == list(cell.names)
    for r in rows:
        assert r["max_rel_error"] < 1e-6 and r["max_abs_grad"] > 1e-5, r
    _, G, _ = cell.loss_and_grads(P, X, Y, h0, keep=keep)
    between = keep.copy()
    between[1:] = 1.0
    _, G1, _ = cell.loss_and_grads(P, X, Y, h0, keep=between)
    assert not np.allclose(G.U2, G1.U2)                      # the masks between layers matter


def test_one_layer_is_the_network_it_always_was(small_data, small_vocab):
    """layers = 1 is the same Cell, names and flat layout as before stacking existed; a stack's first
    layer draws its matrices first, so its U, W (and Wg) start as the one-layer network's."""
    for name in ("rnn", "gru", "lstm"):
        assert cells.get(name, 1) is cells.CELLS[name] and cells.of(Config(cell=name)) is cells.CELLS[name]
        one = cells.get(name).init_params(small_vocab.K, 5, 0.1, np.random.default_rng(0))
        two = cells.get(name, 2).init_params(small_vocab.K, 5, 0.1, np.random.default_rng(0))
        n_first = sum(a.size for a in cells.get(name).views(one, small_vocab.K, 5)[:-2])
        assert np.array_equal(one[:n_first], two[:n_first])


@pytest.mark.parametrize("name", ["rnn", "gru", "lstm"])
def test_stacked_runs_train_checkpoint_sample_and_resume(tmp_path, corpus_file, name):
    """layers = 2 through the whole trainer: dropout between layers, Adam, batches, validation, a
    checkpoint read back, resumed to the same bits, and sampled from."""
    cfg = Config(cell=name, layers=2, m=12, steps=24, sample_every=6, checkpoint_every=100, seed=3, sig=0.1,
                 optimizer="adam", eta=0.01, batch_size=3, dropout=0.2, val_fraction=0.2, val_every=5)
    whole = run(cfg, corpus_file, tmp_path / "whole", **QUIET)
    run(cfg.replace(steps=11), corpus_file, tmp_path / "half", **QUIET)
    resumed = run(cfg, corpus_file, tmp_path / "half", **QUIET)
    assert_same_state(whole.state, resumed.state)
    cfg2, vocab, state, _ = load_state(tmp_path / "half" / "checkpoint.npz")
    assert cfg2.layers == 2 and state.hprev.shape == (3, 2 * cells.get(name).state_size(12))
    assert resumed.summary["n_params"] == cells.get(name, 2).n_params(vocab.K, 12)
    text = passage(cfg2, vocab, state.best_theta, 40, seed=1, temperature=0.8, prime="the ")
    assert len(text) == 40 and set(text) <= set(vocab.chars)
