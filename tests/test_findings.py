"""lib/report/findings.py, branch by branch, on runs made up for the purpose: each sentence says what its numbers
say (the winner, the gap, the verdict), and every number it quotes is the one given."""
from types import SimpleNamespace

import numpy as np
import pytest

from lib.report import findings

pytestmark = pytest.mark.fast


def run(bits, m=100, cell="rnn", seconds=600.0, first_val=4.29, K=73, final=50.0, seed=0):
    summary = {"best_val_loss_bits": bits, "n_params": 1000 * m, "steps": 1234, "chars_seen": 2.5e6,
               "final_smooth_loss": final, "epochs": 1.5}
    return SimpleNamespace(summary=summary, cfg=SimpleNamespace(m=m, cell=cell, seed=seed),
                           state=SimpleNamespace(val=[{"loss": first_val}], seconds=seconds), vocab=SimpleNamespace(K=K))


def test_extensions_names_the_winner_and_its_bits():
    text = findings.extensions({"a": run(2.9), "b": run(2.5), "c": run(2.7)}, 45)
    assert "Within the same 45 s, **b** reaches the lowest validation loss, 2.50 bits" in text
    assert f"ln K = {np.log(73):.2f}" in text


YARD = {"static": {"uniform": 6.19, "unigram": 4.4, "ngram-7": 2.141, "ngram-8": 2.15},
        "adaptive": {"ngram-7": 2.06, "ngram-9": 2.05, "ppmd": 2.02, "gzip": 2.9, "bz2": 2.41, "lzma": 2.5},
        "best": {"static": "ngram-7", "adaptive": "ngram-9", "ppmd_order": 8}}
KINDS = [("all", 1.0, 2.1, 2.0, 0), ("a letter", 0.7, 1.9, 2.0, 0), ("a space", 0.2, 1.5, 1.2, 0)]


def net(static, dynamic):
    """lib.evaluate.network_bits' arrays whose second halves average to static and dynamic (the first
    halves, which the figures must not read, far off)."""
    return {"static": np.array([9.0, 9.0, static - 0.1, static + 0.1]),
            "dynamic": np.array([0.0, 0.0, dynamic, dynamic])}


@pytest.mark.parametrize("gru_bits,beats", [(2.0, True), (2.3, False)])
def test_the_ladder_says_whether_the_network_beats_counting(gru_bits, beats):
    runs = {"assignment's RNN": run(2.8), "GRU": run(gru_bits, m=384, cell="gru")}
    nets = {"assignment's RNN": net(2.8, 2.7), "GRU": net(gru_bits, 1.9)}
    text = findings.ladder(runs, nets, YARD, KINDS, 45, assignment="assignment's RNN")
    if beats:
        assert f"beats the n-gram: {(2.141 - gru_bits) / 2.141:.1%} below it" in text
    else:
        assert f"the n-gram is {gru_bits - 2.141:.3f} bits per character lower" in text
    assert "the GRU, reaches **" + f"{gru_bits:.3f}**" in text and "The assignment's RNN reaches 2.800" in text
    assert "better on average for a letter" in text and "The network is better for a space" in text
    assert "(order 7, a context of 6 characters, 2.141)" in text
    assert f"the same network reaches **1.900**, {(2.02 - 1.9) / 2.02:.1%} below the best yardstick that adapts " \
           "too, PPMd (2.020); the adaptive n-gram reaches 2.050" in text


def test_the_ladder_when_the_network_wins_every_kind_and_with_a_headline():
    kinds = [("all", 1.0, 2.1, 2.0, 0), ("a letter", 0.7, 2.1, 2.0, 0)]
    runs = {"first": run(2.8), "GRU": run(2.0, cell="gru")}
    headline = run(1.994, m=512, cell="gru", seconds=600.4)
    nets = {"first": net(2.8, 2.7), "GRU": net(2.0, 2.1), "headline": net(1.994, 1.85)}
    text = findings.ladder(runs, nets, YARD, kinds, 45, assignment="first", headline=headline)
    assert "On average the network is better on every kind of character" in text
    assert "the same network reaches **2.100**, 0.080 bits per character above the best yardstick" in text
    assert f"With 600 s of training, the headline run of docs/ladder.md reaches 1.994 bits per character fixed, " \
           f"{(2.141 - 1.994) / 2.141:.1%} below the n-gram, and 1.850 reading while it learns" in text
    rows = findings.ladder_rows(YARD, nets, runs, headline)
    worst_first = [float(r[1] or r[2]) for r in rows]
    assert worst_first == sorted(worst_first, reverse=True)
    assert rows[-1] == ("GRU, 600 s (the headline run of docs/ladder.md)", "1.994", "1.850", "512,000", "1,234",
                        "2.5 M")
    assert rows[0][0] == "uniform"
    assert findings.yardstick_rows(YARD) == [
        ("uniform", "6.190", ""), ("unigram", "4.400", ""), ("Kneser-Ney n-gram (7 / 9)", "2.141", "2.050"),
        ("PPMd (order 8)", "", "2.020"), ("gzip", "", "2.900"), ("bz2", "", "2.410"), ("lzma", "", "2.500")]


def test_units_sort_each_feature_by_how_well_a_unit_tracks_it():
    found = [("quotes", None, 0.0), ("line", 3, 0.8), ("word", 5, -0.35), ("vowel", 7, 0.1)]
    assert [r[3] for r in findings.unit_rows(found)] == ["never in this text", "tracked", "weakly", "no unit"]
    text = findings.units(found, run(2.8))
    assert "Units track **line**" in text and "Weaker traces (|r| 0.3 to 0.5): word" in text
    assert "No unit tracks **vowel**" in text and "with 100 units and 1.50 epochs" in text
    assert "never has quotes" in text
    assert "No unit tracks a feature with |r| of 0.5 or more" in findings.units([("vowel", 7, 0.1)], run(2.8))


def test_forgetting_counts_the_steps_to_each_fall():
    falls = np.array([[1.0, 0.1, 1e-3, 1e-5, 2e-6]])         # a hundredfold at 2, a millionfold never within 4
    text = findings.forgetting({"RNN": falls})
    assert "falls a hundredfold within 2 steps and a millionfold within more than 4" in text
    assert "after 4 steps it is 2.0e-06" in text and "Run notebook 7" in text
    assert "Run notebook 7" not in findings.forgetting({"RNN": falls, "LSTM": falls})


@pytest.mark.parametrize("gap,outside", [(0.1, True), (0.001, False)])
def test_the_seed_spread_reads_each_gap_against_it(gap, outside):
    seeds = [run(2.80, final=50.0, seed=0), run(2.81, final=50.5, seed=1), run(2.82, final=51.0, seed=2)]
    extensions = {"x": run(2.5), "y": run(2.5 + gap)}
    text = findings.seed_spread(seeds, extensions, pairs=[("x", "y"), ("y", "absent")])
    assert "Across 3 seeds, the final smooth loss spans 1.00 (sd 0.50) and the held-out loss 0.020" in text
    assert f"x and y differ by {gap:.3f} bits per character, " in text
    assert (f"{gap / 0.02:.1f} times this spread" in text) == outside
    assert ("cannot tell them apart" in text) != outside and "absent" not in text
    assert "notebook 6" not in findings.seed_spread(seeds, {}, pairs=[("x", "y")])
    rows = findings.seed_rows(seeds)
    assert rows[-2] == ("mean ± sd", "50.50 ± 0.50", "2.810 ± 0.010") and rows[-1] == ("range", "1.00", "0.020")


def test_the_search_verdict_in_each_case():
    hand = {"trial": 0, "best_val_loss_bits": 2.117, "settings": {"m": 384, "eta": 0.004}}
    ngram = {"name": "ngram-7", "bits": 2.141}
    best = {"trial": 7, "best_val_loss_bits": 2.058, "hand_found": hand, "best_ngram": ngram,
            "settings": {"m": 512, "eta": 0.0072, "cell": "gru"}, "trial_seconds": 300, "trial_updates": None}
    text = findings.search_verdict(best)
    assert f"reached **2.058 bits per character**, {100 * (2.117 - 2.058) / 2.117:.1f}% below" in text
    assert "the best n-gram (ngram-7) scores 2.141" in text
    assert "the hand-found recipe's own (trial 0)" in findings.search_verdict({**best, "trial": 0})
    assert findings.search_verdict({**best, "hand_found": None}) == "The best trial, 7, reached 2.058 bits per character."
    assert findings.recipe_rows(best) == [("m", "384", "512"), ("eta", "0.004", "0.0072"), ("cell", "", "gru")]
    facts = {"trials": 29, "complete": 12, "pruned": 16, "failed": 1, "hours": 0.85, "worker_hours": 1.68}
    assert "29 trials (12 complete, 16 pruned after a third of their time, 1 failed)" in findings.search_facts(facts, best)
    assert "each trial 300 s of training" in findings.search_facts(facts, best)
    assert "(71%)" in findings.importance_sentence({"eta": 0.71, "m": 0.2})
