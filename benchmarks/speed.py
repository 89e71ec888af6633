"""Speed of the project's trainer against the plain reference, measured side by side in one run.

Both train from the same seed on the same corpus for the same number of updates; the runs alternate
(ours, reference, ours, ...) so that a busy machine slows both alike, and the median of the repeats
is reported. The two must also agree: the script fails if their losses differ by more than 1e-10.

    python benchmarks/speed.py [--steps 1000] [--repeats 3] [--data PATH]
"""
import argparse
import statistics
import time

import numpy as np

from lib import reference, rnn
from lib.data import load_corpus
from lib.train import Config, train


def time_ours(cfg, data, vocab):
    t0 = time.perf_counter()
    state = train(cfg, data, vocab, progress=False, log=lambda line: None)
    return time.perf_counter() - t0, state


def time_reference(cfg, data, vocab):
    t0 = time.perf_counter()
    out = reference.train(list(data), vocab.K, cfg.m, cfg.seq_length, cfg.eta, cfg.sig, cfg.eps,
                          cfg.clip, cfg.steps, cfg.seed)
    return time.perf_counter() - t0, out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--data", default=None)
    args = p.parse_args()
    text, vocab, data = load_corpus(args.data)
    cfg = Config(steps=args.steps, sample_every=args.steps, checkpoint_every=args.steps)
    ours, ref = [], []
    for _ in range(args.repeats):
        seconds, state = time_ours(cfg, data, vocab)
        ours.append(seconds)
        seconds, (params, losses, smooth, _) = time_reference(cfg, data, vocab)
        ref.append(seconds)
    loss_diff = float(np.max(np.abs(state.losses[:cfg.steps] - np.array(losses))))
    P = rnn.views(state.theta, vocab.K, cfg.m)
    param_diff = max(float(np.max(np.abs(getattr(P, k) - params[k].reshape(getattr(P, k).shape))))
                     for k in rnn.NAMES)
    us_ours = statistics.median(ours) / cfg.steps * 1e6
    us_ref = statistics.median(ref) / cfg.steps * 1e6
    print(f"corpus: {args.data or 'default'} ({len(text):,} characters, K = {vocab.K}); m = {cfg.m}, "
          f"T = {cfg.seq_length}; {cfg.steps:,} updates, median of {args.repeats} alternating runs")
    print(f"{'implementation':<34} {'us/update':>10} {'100,000 updates':>16} {'speed-up':>9}")
    for name, us in (("plain reference (lib/reference.py)", us_ref), ("lib.train (this project)", us_ours)):
        print(f"{name:<34} {us:>10.0f} {us * 0.1:>14.1f} s {us_ref / us:>8.1f}x")
    print(f"agreement: max |loss difference| {loss_diff:.1e}, max |parameter difference| {param_diff:.1e}")
    if not (loss_diff <= 1e-10 and param_diff <= 1e-10):
        raise SystemExit("error: the two implementations disagree by more than 1e-10")


if __name__ == "__main__":
    main()
