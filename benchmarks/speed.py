"""Speed of the project's trainer against the plain reference, measured side by side in one run,
and the characters per second it reads with 32 sequences per update against one.

Both train from the same seed on the same corpus for the same number of updates; the runs alternate
(ours, ours with NumPy loops only, reference, ours, ...) so that a busy machine slows all alike, and the
median of the repeats is reported. "NumPy loops only" is lib.train with its compiled kernels switched off
(lib/model/_kernels.c), as on a machine without a C compiler. Our time includes what the trainer does besides
updates (a sample before the first update and one after the last, the checkpoint at the end); the
reference does only updates.

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

from lib.model import cells, kernels, reference
from lib.config import Config
from lib.data import load_corpus
from lib.training.loop import train

CHECKED = 8


def time_ours(cfg, data, vocab, compiled=True):
    saved = kernels.USE_COMPILED
    kernels.USE_COMPILED = saved and compiled
    try:
        t0 = time.perf_counter()
        state = train(cfg, data, vocab)
        return time.perf_counter() - t0, state
    finally:
        kernels.USE_COMPILED = saved


def time_reference(cfg, data, vocab):
    t0 = time.perf_counter()
    out = reference.train(list(data), vocab.K, cfg.m, cfg.seq_length, cfg.eta, cfg.sig, cfg.eps,
                          cfg.clip, cfg.steps, cfg.seed)
    return time.perf_counter() - t0, out


def breakdown(cfg, data, vocab, steps):
    """us per update in cells.RNN.loss_and_grads and in clip + AdaGrad, timed around each call in a loop of
    updates like the trainer's (without its bookkeeping)."""
    K, m, T = vocab.K, cfg.m, cfg.seq_length
    theta = cells.RNN.init_params(K, m, cfg.sig, np.random.default_rng(cfg.seed))
    P, g = cells.RNN.views(theta, K, m), np.zeros_like(theta)
    G, mem, tmp, h = cells.RNN.views(g, K, m), np.zeros_like(theta), np.empty_like(theta), np.zeros(m)
    t_grads = t_opt = 0.0
    for i in range(steps):
        e = i * T % (len(data) - T - 1)
        t0 = time.perf_counter()
        _, _, h = cells.RNN.loss_and_grads(P, data[e:e + T], data[e + 1:e + T + 1], h, out=G)
        t1 = time.perf_counter()
        kernels.clip_adagrad_(theta, g, mem, cfg.clip, cfg.eta, cfg.eps, tmp)
        t_grads, t_opt = t_grads + t1 - t0, t_opt + time.perf_counter() - t1
    return t_grads / steps * 1e6, t_opt / steps * 1e6


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--data", default=None)
    args = p.parse_args()
    corpus = load_corpus(args.data)
    vocab, data = corpus.vocab, corpus.data
    cfg = Config(steps=args.steps, sample_every=args.steps, checkpoint_every=args.steps)
    ours, numpy_only, ref = [], [], []
    for _ in range(args.repeats):
        seconds, state = time_ours(cfg, data, vocab)
        ours.append(seconds)
        seconds, state_np = time_ours(cfg, data, vocab, compiled=False)
        numpy_only.append(seconds)
        seconds, (_, losses, smooth, _) = time_reference(cfg, data, vocab)
        ref.append(seconds)
    loss_diff = max(float(np.max(np.abs(s.losses[:CHECKED] - np.array(losses[:CHECKED]))))
                    for s in (state, state_np))
    us_ours, us_np, us_ref = (statistics.median(t) / cfg.steps * 1e6 for t in (ours, numpy_only, ref))
    print(f"corpus: {args.data or 'default'} ({corpus.n_chars:,} characters, K = {vocab.K}); m = {cfg.m}, "
          f"T = {cfg.seq_length}; {cfg.steps:,} updates, median of {args.repeats} alternating runs")
    print(f"compiled kernels (lib/model/_kernels.c): {'built' if kernels.BUILT else 'NOT BUILT'}")
    print(f"{'implementation':<42} {'us/update':>10} {'100,000 updates':>16} {'speed-up':>9}")
    for name, us in (("plain reference (lib/model/reference.py)", us_ref),
                     ("lib.train, NumPy loops only", us_np),
                     ("lib.train (this project)", us_ours)):
        print(f"{name:<42} {us:>10.0f} {us * 0.1:>14.1f} s {us_ref / us:>8.1f}x")
    lg, opt = breakdown(cfg, data, vocab, cfg.steps)
    print(f"where an update's time goes (one more run, each call timed): loss and gradients {lg:.0f} us, "
          f"clip and AdaGrad {opt:.0f} us")
    print(f"agreement: max |loss difference| over the first {CHECKED} updates {loss_diff:.1e}; "
          f"smooth loss after {cfg.steps:,} updates {state.smooth_loss:.2f} (ours), "
          f"{state_np.smooth_loss:.2f} (NumPy loops only), {smooth[-1]:.2f} (reference)")
    if not loss_diff <= 1e-10:
        raise SystemExit("error: the two implementations disagree by more than 1e-10")
    batches(data, vocab, args.steps, args.repeats)
    gated(data, vocab, args.repeats)


def batches(data, vocab, steps, repeats, B=32):
    """Characters per second with B sequences per update against one (with and without the compiled
    loops, which B = 32 does not use), alternating runs."""
    one = Config(steps=steps, sample_every=steps, checkpoint_every=steps)
    runs = {"B = 1": (one, True, []), "B = 1, NumPy loops only": (one, False, []),
            f"B = {B}": (Config(steps=max(1, steps // B * 4), batch_size=B, sample_every=steps,
                                checkpoint_every=steps), True, [])}
    for _ in range(repeats):
        for cfg, compiled, rates in runs.values():
            seconds, _ = time_ours(cfg, data, vocab, compiled)
            rates.append(cfg.steps * cfg.batch_size * cfg.seq_length / seconds)
    print(f"\n{'lib.train, AdaGrad, sequential streams':<40} {'chars/second':>13} {'ratio':>7}")
    base = statistics.median(runs["B = 1"][2])
    for name, (cfg, _, rates) in runs.items():
        print(f"{f'{name} ({cfg.steps:,} updates)':<40} {statistics.median(rates):>13,.0f} "
              f"{statistics.median(rates) / base:>6.1f}x")


def gated(data, vocab, repeats, updates=40):
    """Characters per second of each cell, at B = 1 (m = 100, AdaGrad, the assignment's set-up but for
    the cell) and at B = 32 (m = 256, Adam), in float64 and float32, alternating runs; and the cost of an
    LSTM and a GRU update against a vanilla one at B = 32, m = 256 (the goal: an LSTM at most 4.5x)."""
    setups = {}
    for cell in ("rnn", "gru", "lstm"):
        setups[(cell, 1, "float64")] = Config(cell=cell, steps=updates * 10, sample_every=10**9,
                                               checkpoint_every=10**9, sig=0.05)
        for dtype in ("float64", "float32"):
            setups[(cell, 32, dtype)] = Config(cell=cell, m=256, batch_size=32, steps=updates, optimizer="adam",
                                               eta=1e-3, normalize_loss=True, sample_every=10**9,
                                               checkpoint_every=10**9, sig=0.05, dtype=dtype)
    seconds = {key: [] for key in setups}
    for _ in range(repeats):
        for key, cfg in setups.items():
            t, _ = time_ours(cfg, data, vocab)
            seconds[key].append(t / cfg.steps)
    per_update = {key: statistics.median(t) for key, t in seconds.items()}
    print(f"\n{'cell, B, m, dtype':<34} {'ms/update':>10} {'chars/second':>13} {'x vanilla':>10}")
    for (cell, B, dtype), cfg in setups.items():
        t = per_update[(cell, B, dtype)]
        ratio = t / per_update[("rnn", B, dtype)]
        print(f"{f'{cell}, B = {B}, m = {cfg.m}, {dtype}':<34} {t * 1e3:>10.2f} "
              f"{cfg.batch_size * cfg.seq_length / t:>13,.0f} {ratio:>9.2f}x")
    for dtype in ("float64", "float32"):
        r = per_update[("lstm", 32, dtype)] / per_update[("rnn", 32, dtype)]
        print(f"goal, an LSTM update at most 4.5x a vanilla one (B = 32, m = 256, {dtype}): "
              f"{'met' if r <= 4.5 else 'NOT met'} ({r:.2f}x)")


if __name__ == "__main__":
    main()
