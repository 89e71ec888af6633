"""The model (lib/rnn.py, and lib/model/cells.py's RNN around it) against its definition: gradients, the reference code, sample."""
import math

import numpy as np
import pytest

from lib import gradcheck, rnn, reading, sample
from lib.model import cells, kernels, reference

pytestmark = pytest.mark.fast


def make_params(K, m, sig, seed):
    theta = cells.RNN.init_params(K, m, sig, np.random.default_rng(seed))
    return theta, cells.RNN.views(theta, K, m)


def as_reference(P):
    """The same parameters in the reference's layout: column vectors for b and c."""
    return {k: np.array(getattr(P, k)).reshape(getattr(P, k).shape[0], -1) for k in cells.RNN.names}


def test_views_share_memory_and_shapes():
    K, m = 7, 3
    theta, P = make_params(K, m, 0.01, 0)
    assert [a.shape for a in P] == [(m, K), (m, m), (m,), (K, m), (K,)]
    assert theta.size == cells.RNN.n_params(K, m) == m * K + m * m + K * m + m + K
    P.W[1, 2] = 42.0
    assert 42.0 in theta
    assert np.all(P.b == 0) and np.all(P.c == 0)


def test_init_statistics():
    theta, P = make_params(80, 100, 0.01, 0)
    for M in (P.U, P.W, P.V):
        assert abs(M.std() - 0.01) < 0.0005 and abs(M.mean()) < 0.001


def test_gradients_match_centred_differences(small_data, small_vocab):
    """m = 5, T = 25, float64: every parameter's max relative error is below 1e-6."""
    K, m, T = small_vocab.K, 5, 25
    _, P = make_params(K, m, 0.01, 0)
    rows = gradcheck.check(P, small_data[:T], small_data[1:T + 1], np.zeros(m), h=1e-4)
    assert [r["parameter"] for r in rows] == list(cells.RNN.names)
    for r in rows:
        assert r["max_rel_error"] < 1e-6, r
        assert r["max_abs_grad"] > 1e-6, r         # the check compared something


def test_gradient_check_catches_a_wrong_gradient(small_data, small_vocab, monkeypatch):
    """A deliberately broken backward pass must fail the check (so the check can fail)."""
    K, m, T = small_vocab.K, 5, 25
    _, P = make_params(K, m, 0.01, 0)
    true = cells.RNN.loss_and_grads

    def broken(*args, **kw):
        loss, G, h = true(*args, **kw)
        G.W[0, 0] *= 1.001
        return loss, G, h
    monkeypatch.setattr(cells.RNN, "loss_and_grads", broken)
    rows = gradcheck.check(P, small_data[:T], small_data[1:T + 1], np.zeros(m))
    assert {r["parameter"]: r["max_rel_error"] for r in rows}["W"] > 1e-5


def test_first_loss_is_about_T_ln_K(small_data, small_vocab):
    K, m, T = small_vocab.K, 100, 25
    _, P = make_params(K, m, 0.01, 0)
    loss, _, _ = cells.RNN.loss_and_grads(P, small_data[:T], small_data[1:T + 1], np.zeros(m))
    assert abs(loss - T * math.log(K)) / (T * math.log(K)) < 0.01


@pytest.mark.parametrize("loops", ["compiled", "numpy"])
@pytest.mark.parametrize("sig,h_scale,seed", [(0.01, 0.0, 0), (0.1, 0.5, 1), (0.2, 1.0, 2)])
def test_fast_code_matches_plain_reference(small_data, small_vocab, sig, h_scale, seed, loops, monkeypatch):
    if loops == "numpy":
        monkeypatch.setattr(kernels, "USE_COMPILED", False)
    elif not kernels.BUILT:
        pytest.skip("lib.model._kernels is not built (test_kernels_are_built_where_a_compiler_is says why)")
    assert kernels.compiled(1) == (loops == "compiled")
    K, m, T = small_vocab.K, 100, 25
    _, P = make_params(K, m, sig, seed)
    rng = np.random.default_rng(seed)
    P.b[:] = rng.standard_normal(m) * sig
    P.c[:] = rng.standard_normal(K) * sig
    h0 = np.tanh(rng.standard_normal(m)) * h_scale
    X, Y = small_data[seed:seed + T], small_data[seed + 1:seed + T + 1]
    loss, G, hT = cells.RNN.loss_and_grads(P, X, Y, h0)
    loss_r, G_r, hT_r = reference.loss_and_grads(as_reference(P), list(X), list(Y), h0.reshape(m, 1))
    assert abs(loss - loss_r) < 1e-10
    for name in cells.RNN.names:
        assert np.max(np.abs(getattr(G, name) - G_r[name].reshape(getattr(G, name).shape))) < 1e-10, name
    assert np.max(np.abs(hT - hT_r.ravel())) < 1e-10


def test_gradients_written_into_out_buffer(small_data, small_vocab):
    K, m, T = small_vocab.K, 8, 25
    _, P = make_params(K, m, 0.1, 3)
    g = np.full(cells.RNN.n_params(K, m), np.nan)
    _, G, _ = cells.RNN.loss_and_grads(P, small_data[:T], small_data[1:T + 1], np.zeros(m), out=cells.RNN.views(g, K, m))
    _, G2, _ = cells.RNN.loss_and_grads(P, small_data[:T], small_data[1:T + 1], np.zeros(m))
    assert not np.isnan(g).any()
    for a, b in zip(G, G2):
        assert np.array_equal(a, b)


def test_step_losses_sum_to_the_chunk_loss(small_data, small_vocab):
    K, m, T = small_vocab.K, 10, 25
    _, P = make_params(K, m, 0.1, 4)
    loss, _, _ = cells.RNN.loss_and_grads(P, small_data[:T], small_data[1:T + 1], np.zeros(m))
    assert abs(reading.step_losses(cells.RNN, P, small_data[:T], small_data[1:T + 1], np.zeros(m)).sum() - loss) < 1e-10


# --- sampling ---------------------------------------------------------------------------------

def trained_like_params(K=12, m=16, seed=0):
    _, P = make_params(K, m, 0.5, seed)
    P.c[:] = np.random.default_rng(seed).standard_normal(K)
    return P


def test_low_temperature_gives_argmax():
    P = trained_like_params()
    h, x = np.zeros(16), 3
    out, _ = sample.sample(cells.RNN, P, h, x, 30, np.random.default_rng(0), temperature=1e-4)
    for i in range(30):                    # replay: every draw is the most probable character
        h = np.tanh(P.W @ h + P.U[:, x] + P.b)
        x = int(np.argmax(P.V @ h + P.c))
        assert out[i] == x


def test_temperature_sharpens_and_flattens():
    o = np.array([2.0, 1.0, 0.0, -1.0])
    p1, p_cold, p_hot = (sample.next_char_probs(o, T) for T in (1.0, 0.5, 2.0))
    assert np.allclose(p_cold, p1 ** 2 / np.sum(p1 ** 2))
    assert p_cold.max() > p1.max() > p_hot.max()


def test_top_p_keeps_the_smallest_set_that_reaches_p():
    o = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    assert np.count_nonzero(sample.next_char_probs(o, top_p=0.5)) == 1
    assert np.count_nonzero(sample.next_char_probs(o, top_p=0.51)) == 2
    assert np.count_nonzero(sample.next_char_probs(o, top_p=0.79)) == 2
    assert np.count_nonzero(sample.next_char_probs(o, top_p=0.81)) == 3
    assert np.count_nonzero(sample.next_char_probs(o, top_p=1.0)) == 4
    p = sample.next_char_probs(o, top_p=0.81)
    assert np.isclose(p.sum(), 1.0) and np.allclose(p[:3], np.array([0.5, 0.3, 0.15]) / 0.95)


def test_top_p_restricts_the_samples():
    P = trained_like_params()
    out, _ = sample.sample(cells.RNN, P, np.zeros(16), 0, 400, np.random.default_rng(1), top_p=0.3)
    full, _ = sample.sample(cells.RNN, P, np.zeros(16), 0, 400, np.random.default_rng(1))
    assert len(set(out.tolist())) < len(set(full.tolist()))


def test_same_seed_same_text_other_seed_other_text():
    P = trained_like_params()
    a, _ = sample.sample(cells.RNN, P, np.zeros(16), 0, 100, np.random.default_rng(7))
    b, _ = sample.sample(cells.RNN, P, np.zeros(16), 0, 100, np.random.default_rng(7))
    c, _ = sample.sample(cells.RNN, P, np.zeros(16), 0, 100, np.random.default_rng(8))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_priming_text_is_fed_through_first():
    P = trained_like_params()
    prime = [1, 5, 2]
    out, _ = sample.sample(cells.RNN, P, np.zeros(16), 0, 20, np.random.default_rng(3), prime=prime)
    h = np.zeros(16)
    for x in prime[:-1]:
        h = np.tanh(P.W @ h + P.U[:, x] + P.b)
    same, _ = sample.sample(cells.RNN, P, h, prime[-1], 20, np.random.default_rng(3))
    assert np.array_equal(out, same)


@pytest.mark.parametrize("kw", [{"temperature": 0}, {"temperature": -1}, {"top_p": 0}, {"top_p": 1.5}])
def test_sampler_refuses_bad_settings(kw):
    with pytest.raises(ValueError):
        sample.sample(cells.RNN, trained_like_params(), np.zeros(16), 0, 5, np.random.default_rng(0), **kw)


def test_the_model_file_is_what_the_network_runs():
    """lib/rnn.py's loss_and_grads (what the assignment's update calls) and the network of lib/model/cells.py
    built around any cell (here the vanilla RNN, taken through its dropout path with nothing dropped)
    give the same loss, gradients and last state, to the bit."""
    K, m, T, B = 11, 7, 9, 2
    rng = np.random.default_rng(5)
    cell = cells.RNN
    P = cell.views(cell.init_params(K, m, 0.3, rng), K, m)
    X, Y = rng.integers(0, K, (T, B)), rng.integers(0, K, (T, B))
    h0 = rng.standard_normal((B, m))
    G1 = cell.views(np.empty(cell.n_params(K, m)), K, m)
    loss1, _, h1 = rnn.loss_and_grads(P, X, Y, h0, G1)
    loss2, G2, h2 = cell.loss_and_grads(P, X, Y, h0, keep=np.ones((T * B, m)))
    assert loss1 == loss2 and np.array_equal(h1, h2)
    for name, a, b in zip(cell.names, G1, G2):
        assert np.array_equal(a, b), name
