"""Dynamic evaluation's cost: the headline network (configs/headline.toml) reading the default corpus's whole
held-out part while it learns (lib.evaluate.dynamic_bits, segments of 20 characters), against reading it
with its weights fixed (static_bits), alternating, in one run. The goal: at most 60 s for the learning read.

The weights are drawn as training starts them: the time of a read does not depend on their values.

    python benchmarks/dynamic.py [--repeats 2] [--chars N]
"""
import argparse
import statistics
import time

import numpy as np

from lib import evaluate
from lib.model import cells, kernels
from lib.config import Config
from lib.recipes import recipe
from lib.data import load_corpus, split
from lib.training.state import init_state

GOAL = 60.0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--chars", type=int, default=None, help="read only this many held-out characters")
    args = p.parse_args()
    corpus = load_corpus()
    cfg = Config(**recipe("headline"))
    train_part, held = split(corpus.data, cfg)
    held = held[:args.chars] if args.chars else held
    K, cell = corpus.vocab.K, cells.of(cfg)
    state = init_state(cfg, K)
    ms = np.full_like(state.theta, 1e-4)
    kernels.keep_freed_memory()
    segment = evaluate.SEGMENTS[0]
    times = {"static": [], "dynamic": []}
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        evaluate.static_bits(cell, cfg, cell.views(state.theta, K, cfg.m), train_part, held)
        times["static"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        evaluate.dynamic_bits(cell, cfg, state.theta, ms, train_part, held, 1e-4, 1e-3, segment, K)
        times["dynamic"].append(time.perf_counter() - t0)
    static, dynamic = (statistics.median(times[k]) for k in ("static", "dynamic"))
    print(f"the headline network (GRU, m = {cfg.m}, {cfg.dtype}) reading {len(held):,} held-out characters of the "
          f"default corpus; median of {args.repeats}")
    print(f"{'read':<32} {'seconds':>8} {'us/char':>8} {'ratio':>6}")
    for name, s in (("weights fixed (static)", static), (f"learning, segments of {segment} (dynamic)", dynamic)):
        print(f"{name:<32} {s:8.1f} {s / len(held) * 1e6:8.0f} {s / static:6.1f}")
    whole = dynamic * (len(split(corpus.data, cfg)[1]) / len(held))
    print(f"goal, dynamic evaluation of the whole held-out part in at most {GOAL:.0f} s: "
          f"{'met' if whole <= GOAL else 'NOT met'} ({whole:.1f} s)")


if __name__ == "__main__":
    main()
