"""Several seeds of the assignment's set-up one after another, and in parallel processes (joblib), timed
side by side in one run: the speed-up notebook 8 gets from using every core.

    python benchmarks/parallel.py [--seeds 4] [--steps 20000]
"""
import argparse
import os
import tempfile
import time
from pathlib import Path

from lib.config import Config
from lib.training.runs import seed_runs


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--steps", type=int, default=20_000)
    args = p.parse_args()
    configs = [Config(steps=args.steps, sample_every=args.steps, checkpoint_every=args.steps, val_fraction=0.1,
                      val_every=args.steps, seed=s) for s in range(args.seeds)]
    seconds = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, n_jobs in (("one after another", 1), ("in parallel processes", -1)):
            folders = [Path(tmp) / name.replace(" ", "-") / f"seed-{s}" for s in range(args.seeds)]
            t0 = time.perf_counter()
            runs = seed_runs(configs, None, folders, n_jobs=n_jobs)
            seconds[name] = time.perf_counter() - t0
            assert [r.summary["steps"] for r in runs] == [args.steps] * args.seeds
    print(f"{args.seeds} seeds of the assignment's set-up, {args.steps:,} updates each, on {os.cpu_count()} cores")
    print(f"{'how':<26} {'seconds':>8} {'speed-up':>9}")
    for name, t in seconds.items():
        print(f"{name:<26} {t:>8.1f} {seconds['one after another'] / t:>8.2f}x")


if __name__ == "__main__":
    main()
