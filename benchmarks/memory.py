"""Peak memory of training on a large corpus, against the size of the corpus file.

The goal: a run holds its corpus once, as small integers (one byte a character for up to 256 distinct
ones), so that training on a corpus file of S bytes peaks at no more than 3 S plus the model. This
script writes a corpus of about --mb megabytes (the default corpus repeated), trains a few updates on it
with `python -m lib.train` in a child process, and reads the child's peak resident memory (ru_maxrss)
from the kernel; the same command on the default corpus gives the interpreter's and NumPy's own share.

    python benchmarks/memory.py [--mb 200] [--steps 200]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lib.data import default_corpus_path

ROOT = Path(__file__).resolve().parent.parent


def peak_rss(corpus, out, steps):
    """(peak resident bytes, seconds) of a training run of `steps` updates in a child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "lib.train", "--data", str(corpus), "--steps", str(steps),
                             "--sample-every", str(steps), "--no-progress", "--out", str(out)],
                            cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"error: the training run on {corpus} failed (status {status})")
    return usage.ru_maxrss * 1024, time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mb", type=int, default=200, help="size of the large corpus (megabytes)")
    p.add_argument("--steps", type=int, default=200)
    args = p.parse_args()
    source = default_corpus_path()
    text = source.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.txt"
        with open(big, "wb") as f:
            for _ in range(-(-args.mb * 10**6 // len(text))):
                f.write(text)
        size = big.stat().st_size
        small_peak, _ = peak_rss(source, Path(tmp) / "small-run", args.steps)
        big_peak, seconds = peak_rss(big, Path(tmp) / "big-run", args.steps)
    print(f"peak memory of `python -m lib.train --steps {args.steps}` (m = 100), ru_maxrss of the child process")
    print(f"{'corpus':<44} {'file (MB)':>10} {'peak (MB)':>10} {'peak / file':>12}")
    print(f"{source.name + ' (the default)':<44} {len(text) / 1e6:>10.1f} {small_peak / 1e6:>10.0f} "
          f"{small_peak / len(text):>11.2f}x")
    print(f"{f'the default repeated to {args.mb} MB':<44} {size / 1e6:>10.1f} {big_peak / 1e6:>10.0f} "
          f"{big_peak / size:>11.2f}x")
    print(f"the large corpus adds {(big_peak - small_peak) / 1e6:.0f} MB for {(size - len(text)) / 1e6:.0f} MB "
          f"more text ({(big_peak - small_peak) / (size - len(text)):.2f} bytes a byte); read and trained in "
          f"{seconds:.1f} s")
    goal = "met" if big_peak <= 3 * size else "NOT met"
    print(f"goal, peak at most 3x the corpus file plus the model: {goal} ({big_peak / size:.2f}x)")


if __name__ == "__main__":
    main()
