"""Print a passage from a trained model.

    python -m lib.sample --checkpoint DIR/checkpoint.npz --n 1000 --temperature T --top-p P --prime TEXT --seed S

It samples from the best parameters (lowest smooth loss) unless --last is given, starting from a zero
hidden state; the priming text (default: a newline) is fed through first and printed before the passage.
"""
import argparse
import sys

import numpy as np

from lib import rnn
from lib.checkpoint import CheckpointError
from lib.train import load_state


def passage(cfg, vocab, theta, n, seed=0, temperature=1.0, top_p=1.0, prime="\n"):
    """A string of n characters sampled after prime, from a zero hidden state.

    theta: (n_params,) flat parameters. Raises ValueError for a bad temperature, top_p, or a prime
    holding characters outside the vocabulary.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}.")
    if not prime:
        raise ValueError("The priming text must hold at least one character.")
    try:
        prime_idx = vocab.encode(prime)
    except ValueError as err:
        raise ValueError(f"The priming text cannot be used: {err}") from None
    P = rnn.views(theta, vocab.K, cfg.m)
    idx, _ = rnn.sample(P, np.zeros(cfg.m), prime_idx[-1], n, np.random.default_rng(seed),
                        temperature, top_p, prime=prime_idx)
    return vocab.decode(idx)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--n", type=int, default=1000, help="characters to generate (default 1000)")
    p.add_argument("--temperature", type=float, default=1.0, help="> 0; below 1 is more conservative")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus: in (0, 1]; 1 samples from all")
    p.add_argument("--prime", default="\n", help="text fed through the network first")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--last", action="store_true", help="use the last parameters, not the best")
    args = p.parse_args(argv)
    try:
        cfg, vocab, state, _ = load_state(args.checkpoint)
        theta = state.theta if args.last else state.best_theta
        text = passage(cfg, vocab, theta, args.n, args.seed, args.temperature, args.top_p, args.prime)
    except (CheckpointError, ValueError) as err:
        sys.exit(f"error: {err}")
    print(args.prime + text)


if __name__ == "__main__":
    main()
