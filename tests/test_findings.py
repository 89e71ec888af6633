"""lib/findings.py, branch by branch, on runs made up for the purpose: each sentence says what its numbers
say (the winner, the gap, the verdict), and every number it quotes is the one given."""
from types import SimpleNamespace

import numpy as np
import pytest

from lib import findings

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


BITS = {"uniform": 6.19, "unigram": 4.4, "ngram-7": 2.141, "gzip": 2.9, "bz2": 2.41, "lzma": 2.5}
KINDS = [("all", 1.0, 2.1, 2.0, 0), ("a letter", 0.7, 1.9, 2.0, 0), ("a space", 0.2, 1.5, 1.2, 0)]


@pytest.mark.parametrize("gru_bits,beats", [(2.0, True), (2.3, False)])
def test_the_ladder_says_whether_the_network_beats_counting(gru_bits, beats):
    runs = {"assignment's RNN": run(2.8), "GRU": run(gru_bits, m=384, cell="gru")}
    text = findings.ladder(runs, BITS, "ngram-7", KINDS, 45, assignment="assignment's RNN")
    if beats:
        assert f"beats every yardstick: {(2.141 - gru_bits) / 2.141:.1%} below the best n-gram" in text
    else:
        assert f"the best n-gram is {gru_bits - 2.141:.3f} bits per character lower" in text
    assert "the GRU, reaches **" + f"{gru_bits:.3f}**" in text and "The assignment's RNN reaches 2.800" in text
    assert "better on average for a letter" in text and "The network is better for a space" in text
    assert "bz2, 2.410" in text and "(order 7, a context of 6 characters) 2.141" in text


def test_the_ladder_when_the_network_wins_every_kind_and_with_a_headline():
    kinds = [("all", 1.0, 2.1, 2.0, 0), ("a letter", 0.7, 2.1, 2.0, 0)]
    runs = {"first": run(2.8), "GRU": run(2.0, cell="gru")}
    headline = run(1.994, m=512, cell="gru", seconds=600.4)
    text = findings.ladder(runs, BITS, "ngram-7", kinds, 45, assignment="first", headline=headline)
    assert "On average the network is better on every kind of character" in text
    assert f"With 600 s of training, the headline run of docs/ladder.md reaches 1.994 bits per character, " \
           f"{(2.141 - 1.994) / 2.141:.1%} below the best n-gram" in text
    rows = findings.ladder_rows(BITS, "ngram-7", runs, headline)
    assert [r[1] for r in rows] == sorted((r[1] for r in rows), reverse=True)   # worst first
    assert rows[-1][0] == "GRU, 600 s (the headline run of docs/ladder.md)" and rows[0][0] == "uniform"
    assert findings.yardstick_rows({"ngram-3": 2.5, "gzip": 2.9}) == [("ngram-3", "2.500"),
                                                                      ("gzip (given the training text)", "2.900")]


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
