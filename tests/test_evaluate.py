"""lib/evaluate.py and the adaptive n-gram: the protocol (no contender sees a character before it scores
it), dynamic evaluation against the static network, the adaptive Kneser-Ney model against the static one
and against a recount at every position, and the command on a small run."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import QUIET, SMALL_TEXT
from lib import baselines, evaluate, ngrams
from lib.model import cells
from lib.config import Config
from lib.training.loop import train

pytestmark = pytest.mark.fast
ROOT = Path(__file__).resolve().parent.parent


def text_of(n, seed=0):
    """A text of n indices over 6 characters with repeated phrases, so that reading it teaches something."""
    rng = np.random.default_rng(seed)
    words = [rng.integers(0, 6, rng.integers(2, 6)) for _ in range(12)]
    out = np.concatenate([words[i] for i in rng.integers(0, 12, n)])
    return out[:n].astype(np.int64)


def test_the_adaptive_ngram_starts_as_the_static_one_and_gains_on_a_repetitive_text():
    x = text_of(4000)
    static = dict(ngrams.kneser_ney_bits(x, 3000, 6, 6))
    adaptive = dict(ngrams.adaptive_kneser_ney_bits(x, 3000, 6, 6))
    for n in range(1, 7):
        assert abs(static[n][0] - adaptive[n][0]) < 1e-9, n          # nothing read yet: the same model
        assert len(adaptive[n]) == 1000
    assert adaptive[4].mean() < static[4].mean()


def test_the_adaptive_ngram_is_the_static_one_recounted_before_each_character(monkeypatch):
    """With the discounts held fixed (the adaptive model keeps the training part's), predicting character
    i with counts that grew up to it is the static model trained on everything before i."""
    monkeypatch.setattr(ngrams, "discounts", lambda counts: (0.5, 1.0, 1.5))
    x = text_of(400, seed=3)
    adaptive = dict(ngrams.adaptive_kneser_ney_bits(x, 300, 6, 4))
    for i in range(300, 400, 7):
        recounted = dict(ngrams.kneser_ney_bits(x[:i + 1], i, 6, 4))
        for n in (1, 2, 4):
            assert abs(recounted[n][0] - adaptive[n][i - 300]) < 1e-9, (i, n)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A small GRU of two layers, trained with 20% held out, in a run folder; its text."""
    from lib.data import load_corpus
    from lib.training.runs import run
    folder = tmp_path_factory.mktemp("run")
    text = folder / "t.txt"
    text.write_text(SMALL_TEXT * 6, encoding="utf-8")
    cfg = Config(cell="gru", layers=2, m=12, steps=150, sample_every=1000, val_fraction=0.2, val_every=50,
                 optimizer="adam", eta=0.01, batch_size=2, seq_length=20)
    run(cfg, str(text), folder / "run", **QUIET)
    return folder / "run", text, load_corpus(str(text))


def network(small_run):
    from lib.data import split
    from lib.training.runs import load_run
    run = load_run(small_run[0])
    train_part, held = split(small_run[2].data, run.cfg)
    return run, cells.of(run.cfg), train_part, held


@pytest.mark.parametrize("contender", ["static", "dynamic", "ngram_adaptive"])
def test_no_contender_sees_a_character_before_it_scores_it(small_run, contender):
    """Change one held-out character (in the middle of a segment of dynamic evaluation): every score
    before it stays the same, to the bit. A contender that had read it, or learned from its segment,
    before scoring the characters before it would change them."""
    run, cell, train_part, held = network(small_run)
    K = run.vocab.K
    k = 47
    changed = held.copy()
    changed[k] = (held[k] + 1) % K

    def scores(h):
        if contender == "static":
            return evaluate.static_bits(cell, run.cfg, cell.views(run.state.best_theta, K, run.cfg.m), train_part, h)
        if contender == "dynamic":
            return evaluate.dynamic_bits(cell, run.cfg, run.state.best_theta, evaluate.mean_square(run.cfg, run.state),
                                         train_part, h, 3e-3, 1e-3, 20, K)
        x = np.concatenate([train_part, h])
        return dict(ngrams.adaptive_kneser_ney_bits(x, len(train_part), K, 5))[5]
    a, b = scores(held), scores(changed)
    assert np.array_equal(a[:k], b[:k])
    assert not np.array_equal(a[k:], b[k:])             # and the change is seen from there on


def test_without_a_step_dynamic_evaluation_is_the_static_network(small_run):
    run, cell, train_part, held = network(small_run)
    K, theta = run.vocab.K, run.state.best_theta
    before = theta.copy()
    ms = evaluate.mean_square(run.cfg, run.state)
    static = evaluate.static_bits(cell, run.cfg, cell.views(theta, K, run.cfg.m), train_part, held)
    still = evaluate.dynamic_bits(cell, run.cfg, theta, ms, train_part, held, 0.0, 0.0, 20, K)
    assert np.allclose(still, static, rtol=0, atol=1e-9)
    evaluate.dynamic_bits(cell, run.cfg, theta, ms, train_part, held, 1e-3, 1e-3, 20, K)
    assert np.array_equal(theta, before)                # the run's weights are not changed


def test_dynamic_evaluation_learns_from_what_it_reads():
    """A GRU trained briefly on plays, then reading more of them: at its best step size, learning while
    it reads beats the same network fixed (on the default corpus: 2.276 -> 2.149 bits per character for
    m = 128 after 40 s of training, 5,000 characters)."""
    from lib.data import load_corpus, split
    data = load_corpus().data[:80_000]
    cfg = Config(cell="gru", m=32, steps=400, sample_every=1000, val_fraction=0.1, val_every=1000, batch_size=8,
                 seq_length=50, optimizer="adam", eta=0.01, normalize_loss=True)
    from lib.data import Vocab
    vocab = Vocab.from_text("".join(map(chr, range(int(data.max()) + 1))))
    state = train(cfg, data, vocab)
    train_part, held = split(data, cfg)
    cell, ms = cells.of(cfg), evaluate.mean_square(cfg, state)
    static = evaluate.static_bits(cell, cfg, cell.views(state.best_theta, vocab.K, cfg.m), train_part, held).mean()
    dynamic = min(evaluate.dynamic_bits(cell, cfg, state.best_theta, ms, train_part, held, eta, 0.0, 20,
                                        vocab.K).mean() for eta in evaluate.ETAS)
    assert dynamic < static - 0.02, (dynamic, static)


def test_every_cell_can_be_evaluated_dynamically(small_data, small_vocab):
    for settings in (dict(), dict(cell="lstm", layers=2), dict(cell="gru")):
        cfg = Config(m=6, steps=20, sample_every=1000, val_fraction=0.2, val_every=1000, **settings)
        state = train(cfg, small_data, small_vocab)
        from lib.data import split
        train_part, held = split(small_data, cfg)
        bits = evaluate.dynamic_bits(cells.of(cfg), cfg, state.best_theta, evaluate.mean_square(cfg, state),
                                     train_part, held, 1e-3, 0.0, 20, small_vocab.K)
        assert bits.shape == held.shape and np.isfinite(bits).all()


def test_a_mixture_weight_is_chosen_where_it_helps():
    a = np.array([1.0, 5.0, 1.0, 5.0])                  # each model good where the other is bad
    b = np.array([5.0, 1.0, 5.0, 1.0])
    w = evaluate.mix_weight(a, b)
    assert 0 < w < 1 and evaluate.mixed(a, b, w).mean() < min(a.mean(), b.mean())
    assert evaluate.mix_weight(a, a + 1) == 1.0


def test_the_command_writes_the_table_and_leaves_the_run_as_it_was(small_run, tmp_path):
    folder, text, _ = small_run
    ckpt = (folder / "checkpoint.npz").read_bytes()
    out = tmp_path / "e.json"
    done = subprocess.run([sys.executable, "-m", "lib.evaluate", "--run", str(folder), "--data", str(text),
                           "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert set(result["bits_per_char"]) == {"static", "dynamic", "mixture_static", "mixture_dynamic", "ngram",
                                            "ngram_adaptive", "ppmd", "lzma"}
    held = int(len(text.read_text()) * 0.2)
    assert result["chars_scored"] == held - held // 2 and result["dynamic_seconds"] >= 0
    assert all(0 < b < 8 for b in result["bits_per_char"].values())
    assert (folder / "checkpoint.npz").read_bytes() == ckpt
    yard = baselines.yardsticks(small_run[2], 0.2)      # the evaluation's yardsticks are the yardsticks, once
    st, ad, best = yard["static"], yard["adaptive"], yard["best"]
    assert result["bits_per_char"]["ngram"] == round(st[best["static"]], 6)
    assert result["bits_per_char"]["ngram_adaptive"] == round(ad[best["adaptive"]], 6)
    assert (result["bits_per_char"]["ppmd"], result["bits_per_char"]["lzma"]) == (round(ad["ppmd"], 6),
                                                                                  round(ad["lzma"], 6))
    assert result["settings"]["ngram_order"] == int(best["static"].split("-")[1])


def test_the_static_figure_is_the_runs_own_validation_on_the_same_characters(tmp_path):
    """An early run (a network that reads badly from a zero state): lib.evaluate's fixed network reads from
    the state training reached, as the run's own validation does, so on the first half the two agree (a
    zero state gave 36.6 bits per character where the run measured 5.96, on such a run)."""
    from lib.data import halves, load_corpus, split
    from lib.training.runs import load_run, run
    text = tmp_path / "t.txt"
    text.write_text(load_corpus().text[:40_000], encoding="utf-8")
    cfg = Config(m=64, steps=60, sample_every=1000, val_fraction=0.1, val_every=60)
    run(cfg, str(text), tmp_path / "run", **QUIET)
    done = load_run(tmp_path / "run")
    assert done.summary["best_step"] == done.summary["steps"]       # the last validation is the best: same weights
    corpus = load_corpus(str(text))
    train_part, held = split(corpus.data, cfg)
    cell, K = cells.of(cfg), corpus.vocab.K
    P = cell.views(done.state.best_theta, K, cfg.m)
    own = done.summary["best_val_loss_bits"]
    read = evaluate.static_bits(cell, cfg, P, train_part, held, evaluate.start_state(done))
    assert abs(halves(read)[0].mean() - own) < 1e-9
    result = {"static_first_half": float(halves(read)[0].mean()), "run_validation_first_half": own,
              "best_update": 60, "updates": 60}
    assert "(the same characters, weights and start)" in evaluate.agreement(result)


def test_by_kind_compares_the_best_ngram_and_the_network_on_the_second_half(small_run):
    """by_kind, from the yardsticks and the network's bits, against both recomputed here."""
    run, cell, train_part, held = network(small_run)
    corpus, K = small_run[2], run.vocab.K
    yard = baselines.yardsticks(corpus, run.cfg.val_fraction)
    static = evaluate.static_bits(cell, run.cfg, cell.views(run.state.best_theta, K, run.cfg.m), train_part, held)
    order = int(yard["best"]["static"].split("-")[1])
    ngram = dict(ngrams.kneser_ney_bits(corpus.data, len(train_part), K, order))[order]
    half = len(held) // 2
    expected = baselines.compare_by_kind(run.vocab.decode(held[half - 1:]), ngram[half:], static[half:])
    got = evaluate.by_kind(corpus, yard, {"static": static})
    assert [r[0] for r in got] == [r[0] for r in expected] and got[-1][0] == "all"
    assert np.allclose([r[1:] for r in got], [r[1:] for r in expected], rtol=0, atol=1e-12)


def test_bad_input_is_one_line(small_run, tmp_path, small_data):
    folder, text, _ = small_run
    other = tmp_path / "other.txt"
    other.write_text(SMALL_TEXT * 5, encoding="utf-8")
    plain = tmp_path / "plain"
    from lib.training.runs import run
    run(Config(m=5, steps=5, sample_every=1000), str(text), plain, **QUIET)
    for args, needle in ((["--run", str(folder), "--data", str(other)], "is not the text the run"),
                         (["--run", str(plain), "--data", str(text)], "has no held-out part"),
                         (["--run", str(tmp_path / "none"), "--data", str(text)], "No training run in")):
        done = subprocess.run([sys.executable, "-m", "lib.evaluate", *args, "--json", str(tmp_path / "x.json")],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 1 and needle in done.stderr and done.stderr.count("\n") == 1, done.stderr
    done = subprocess.run([sys.executable, "-m", "lib.evaluate", "--run", str(tmp_path / "none")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and not (tmp_path / "none").exists()      # nothing made where there is no run


def test_steps_that_diverge_are_undone(small_run):
    """With a step far too large, the weights blow up; a segment scored worse than twice a uniform guess
    sends them back to the trained ones, and the segment after it is scored by those: every score stays a
    number, and no two segments in a row are beyond twice a uniform guess."""
    run, cell, train_part, held = network(small_run)
    K, theta = run.vocab.K, run.state.best_theta
    wild = evaluate.dynamic_bits(cell, run.cfg, theta, np.full_like(theta, 1e-12), train_part, held, 1.0, 0.0, 20, K)
    assert np.isfinite(wild).all()
    bad = wild[:len(wild) // 20 * 20].reshape(-1, 20).mean(axis=1) > 2 * np.log2(K)
    assert bad.any() and not (bad[1:] & bad[:-1]).any()



def sample_cmd(*args):
    return subprocess.run([sys.executable, "-m", "lib.sample", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_the_sampler_reads_a_text_first_and_learns_from_it(small_run, tmp_path):
    """--adapt: the network reads a text for a bounded time, learning (a copy of its weights), says how
    much its bits per character on it fell, then writes; the run's checkpoint is not changed."""
    folder, text, _ = small_run
    ckpt = (folder / "checkpoint.npz").read_bytes()
    story = tmp_path / "story.txt"
    story.write_text("the bird sang to the cat: yes, the song was far! " * 30, encoding="utf-8")
    done = sample_cmd("--checkpoint", folder, "--n", 200, "--adapt", story, "--adapt-seconds", 2)
    assert done.returncode == 0, done.stderr
    before, after = map(float, done.stderr.split(": ")[-1].split(" bits")[0].split(" -> "))
    assert after < before - 0.1, done.stderr
    assert len(done.stdout) == 200 + 2                  # the default prime (a line break), the passage, print's newline
    assert (folder / "checkpoint.npz").read_bytes() == ckpt


def test_a_bad_text_to_read_first_is_one_line(small_run, tmp_path):
    folder, _, _ = small_run
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "foreign.txt").write_text("Zebras! Éclair.", encoding="utf-8")
    with open(tmp_path / "huge.txt", "wb") as f:
        f.truncate(5_000_000)
    (tmp_path / "folder").mkdir()
    for name, needle in (("empty.txt", "holds 0 character(s)"), ("binary.txt", "is not UTF-8 text"),
                         ("foreign.txt", "cannot be read by this network: Characters not in the vocabulary"),
                         ("huge.txt", "the network reads at most 1,000,000 characters"),
                         ("folder", "is a folder"), ("none.txt", "no such file")):
        done = sample_cmd("--checkpoint", folder, "--adapt", tmp_path / name)
        assert done.returncode == 1 and needle in done.stderr and done.stderr.count("\n") == 1, (name, done.stderr)
    done = sample_cmd("--checkpoint", folder, "--adapt", tmp_path / "empty.txt", "--adapt-seconds", 1e6)
    assert done.returncode == 1 and "more than 600 s" in done.stderr


def test_the_passage_shown_is_around_a_later_appearance_of_a_word_training_never_had(tmp_path):
    """where_reading_helped: in the second half, around the second appearance of a word the training part
    never has (the one where the gain is largest), and the best window where there is no such word."""
    from types import SimpleNamespace
    from lib.data import split
    train_text = "the king and the queen walk in the garden.\n" * 40
    held_text = ("the king and Zorblax walk. " * 3 + "the queen and Zorblax and Quenby walk. "
                 + "the garden and the king. " * 6 + "Zorblax and Quenby and Quenby walk in the garden.\n")
    text = train_text + held_text
    cfg = Config(val_fraction=len(held_text) / len(text) + 1e-9)
    corpus = SimpleNamespace(text=text, data=np.arange(len(text)))
    assert len(split(corpus.data, cfg)[1]) == len(held_text)
    gain = np.zeros(len(held_text))
    last = held_text.rindex("Quenby")
    gain[last:last + 6] = 3.0                               # reading helped most at Quenby's third appearance
    start, word = evaluate.where_reading_helped(corpus, cfg, gain, n_chars=60)
    assert word == "Quenby" and len(held_text) // 2 <= start <= last < start + 60
    gain[:] = 0.0
    gain[len(held_text) - 30:] = 1.0                        # no gain on a new word: the best window
    held_old = held_text.replace("Zorblax", "the kin").replace("Quenby", "queen ")   # every word known
    corpus = SimpleNamespace(text=train_text + held_old, data=np.arange(len(train_text + held_old)))
    start, word = evaluate.where_reading_helped(corpus, cfg, gain, n_chars=60)
    assert word is None and start == len(held_text) - 60


def test_the_panel_reads_a_text_first_and_writes_with_what_it_learned(small_run, monkeypatch):
    """The panel's "read first": the network reads the box's text for the seconds given, learning (a copy
    of its weights), says how far its bits per character fell, and writes with what it learned; a text it
    cannot read is answered in the message line; an empty box brings back the trained weights. The run's
    weights are never changed."""
    from lib.report import show
    from lib.training.runs import load_run
    run = load_run(small_run[0])
    saved = run.state.best_theta.copy()
    written = []                                            # the weights of each passage the panel draws
    monkeypatch.setattr(show, "passage", lambda cfg, vocab, theta, *a: written.append(theta.copy()) or "text")
    panel = show.speaker(run.cfg, run.vocab, run.state, length=100)
    assert np.array_equal(written[-1], saved)
    panel.reading["text"].value = small_run[2].text[:400]
    panel.reading["seconds"].value = 1.0
    panel.reading["button"].click()
    said = panel.said.value
    before, after = (float(b) for b in re.search(r"<b>([\d.]+) &rarr; ([\d.]+)</b>", said).groups())
    assert after < before and "Read 400 characters for 1 s" in said
    assert len(written) == 2 and not np.array_equal(written[-1], saved)     # it writes with what it learned
    panel.controls["temperature"].value = 0.5
    assert len(written) == 3 and np.array_equal(written[-1], written[-2])  # and goes on doing so
    assert np.array_equal(run.state.best_theta, saved)
    panel.reading["text"].value = "Zébra" * 3
    panel.reading["button"].click()
    assert "The text to read first cannot be read by this network" in panel.message.value
    assert "U+00E9" in panel.message.value and len(written) == 3
    panel.reading["text"].value = ""
    panel.reading["button"].click()
    assert "trained weights" in panel.said.value and np.array_equal(written[-1], saved)
    assert np.array_equal(run.state.best_theta, saved)
