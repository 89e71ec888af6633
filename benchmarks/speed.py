"""Speed of the project's trainer against the plain reference, measured side by side in one run,
and the characters per second it reads with 32 sequences per update against one.

Both train from the same seed on the same corpus for the same number of updates; the runs alternate
(ours, reference, ours, ...) so that a busy machine slows both alike, and the median of the repeats
is reported. Our time includes what the trainer does besides updates (a sample before the first update
and one after the last, the checkpoint at the end); the reference does only updates.

The two must also agree: the script fails if the losses of the first CHECKED updates differ by more
than 1e-10. Later ones drift apart: the two sum in different orders, and early training with
eta = 0.1 magnifies differences of 1e-16 several-fold per update, so the runs agree only in distribution
after that (the final smooth losses are printed side by side).

    python benchmarks/speed.py [--steps 5000] [--repeats 3] [--data PATH]
"""
import argparse
import statistics
import time

import numpy as np

from lib import optim, reference, rnn
from lib.data import load_corpus
from lib.train import Config, train

CHECKED = 8


def time_ours(cfg, data, vocab):
    t0 = time.perf_counter()
    state = train(cfg, data, vocab, progress=False, log=lambda line: None)
    return time.perf_counter() - t0, state


def time_reference(cfg, data, vocab):
    t0 = time.perf_counter()
    out = reference.train(list(data), vocab.K, cfg.m, cfg.seq_length, cfg.eta, cfg.sig, cfg.eps,
                          cfg.clip, cfg.steps, cfg.seed)
    return time.perf_counter() - t0, out


def breakdown(cfg, data, vocab, steps):
    """us per update spent in rnn.loss_and_grads and in clip + AdaGrad, timed separately."""
    K, m, T = vocab.K, cfg.m, cfg.seq_length
    theta = rnn.init_params(K, m, cfg.sig, np.random.default_rng(cfg.seed))
    P, g = rnn.views(theta, K, m), np.zeros_like(theta)
    G, mem, tmp, h = rnn.views(g, K, m), np.zeros_like(theta), np.empty_like(theta), np.zeros(m)
    t0 = time.perf_counter()
    for i in range(steps):
        e = i * T % (len(data) - T - 1)
        _, _, h = rnn.loss_and_grads(P, data[e:e + T], data[e + 1:e + T + 1], h, out=G)
    t1 = time.perf_counter()
    for i in range(steps):
        optim.clip_(g, cfg.clip)
        optim.adagrad_step_(theta, g, mem, cfg.eta, cfg.eps, tmp)
    t2 = time.perf_counter()
    return (t1 - t0) / steps * 1e6, (t2 - t1) / steps * 1e6


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--data", default=None)
    args = p.parse_args()
    text, vocab, data = load_corpus(args.data)
    cfg = Config(steps=args.steps, sample_every=args.steps, checkpoint_every=args.steps)
    ours, ref = [], []
    for _ in range(args.repeats):
        seconds, state = time_ours(cfg, data, vocab)
        ours.append(seconds)
        seconds, (_, losses, smooth, _) = time_reference(cfg, data, vocab)
        ref.append(seconds)
    loss_diff = float(np.max(np.abs(state.losses[:CHECKED] - np.array(losses[:CHECKED]))))
    us_ours = statistics.median(ours) / cfg.steps * 1e6
    us_ref = statistics.median(ref) / cfg.steps * 1e6
    print(f"corpus: {args.data or 'default'} ({len(text):,} characters, K = {vocab.K}); m = {cfg.m}, "
          f"T = {cfg.seq_length}; {cfg.steps:,} updates, median of {args.repeats} alternating runs")
    print(f"{'implementation':<34} {'us/update':>10} {'100,000 updates':>16} {'speed-up':>9}")
    for name, us in (("plain reference (lib/reference.py)", us_ref), ("lib.train (this project)", us_ours)):
        print(f"{name:<34} {us:>10.0f} {us * 0.1:>14.1f} s {us_ref / us:>8.1f}x")
    lg, opt = breakdown(cfg, data, vocab, cfg.steps)
    print(f"of lib.train's time: loss and gradients {lg:.0f} us, clip and AdaGrad {opt:.0f} us, "
          f"the rest {us_ours - lg - opt:.0f} us per update (timed apart, once)")
    print(f"agreement: max |loss difference| over the first {CHECKED} updates {loss_diff:.1e}; "
          f"smooth loss after {cfg.steps:,} updates {state.smooth_loss:.2f} (ours), {smooth[-1]:.2f} (reference)")
    if not loss_diff <= 1e-10:
        raise SystemExit("error: the two implementations disagree by more than 1e-10")
    batches(data, vocab, args.steps, args.repeats)


def batches(data, vocab, steps, repeats, B=32):
    """Characters per second with B sequences per update against one, alternating runs."""
    runs = {1: (Config(steps=steps, sample_every=steps, checkpoint_every=steps), []),
            B: (Config(steps=max(1, steps // B * 4), batch_size=B, sample_every=steps,
                       checkpoint_every=steps), [])}
    for _ in range(repeats):
        for cfg, rates in runs.values():
            seconds, _ = time_ours(cfg, data, vocab)
            rates.append(cfg.steps * cfg.batch_size * cfg.seq_length / seconds)
    print(f"\n{'lib.train, AdaGrad, sequential streams':<40} {'chars/second':>13} {'ratio':>7}")
    base = statistics.median(runs[1][1])
    for b, (cfg, rates) in runs.items():
        print(f"{f'B = {b} ({cfg.steps:,} updates)':<40} {statistics.median(rates):>13,.0f} "
              f"{statistics.median(rates) / base:>6.1f}x")


if __name__ == "__main__":
    main()
