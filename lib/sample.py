"""Print a passage from a trained model.

    python -m lib.sample --checkpoint DIR/checkpoint.npz --n 1000 --temperature T --top-p P --prime TEXT --seed S

It samples from the best model (the lowest validation loss when the run had validation, else the lowest
smooth loss) unless --last is given, starting from a zero hidden state; the priming text (default: a
newline) is fed through first and printed before the passage.
"""
import numpy as np

from lib import cells, limits, sampling


def passage(cfg, vocab, theta, n, seed=0, temperature=1.0, top_p=1.0, prime="\n"):
    """A string of n characters sampled after prime, from a zero hidden state.

    theta: (n_params,) flat parameters. Raises ValueError naming the setting for a bad n, seed,
    temperature or top_p, or a prime that is empty, too long or holds characters outside the vocabulary.
    """
    check(vocab, n, seed, temperature, top_p, prime)
    prime_idx = vocab.encode(prime)
    cell = cells.of(cfg)
    P = cell.views(theta, vocab.K, cfg.m)
    idx, _ = sampling.sample(cell, P, np.zeros(cell.state_size(cfg.m), theta.dtype), prime_idx[-1], n,
                             np.random.default_rng(seed), temperature, top_p, prime=prime_idx)
    return vocab.decode(idx)


def check(vocab, n, seed, temperature, top_p, prime, options=False):
    """ValueError naming the first bad setting (as a command-line option when options is true)."""
    name = (lambda s: "--" + s.replace("_", "-")) if options else (lambda s: s)    # noqa: E731
    limits.check_length(n, name("n"), limits.MAX_SAMPLE)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{name('seed')} must be a non-negative integer, got {seed!r}.")
    try:
        sampling.check_settings(temperature, top_p)
    except ValueError as err:
        raise ValueError(f"{name(str(err).split()[0])} {str(err).split(' ', 1)[1]}") from None
    if not isinstance(prime, str) or not prime:
        raise ValueError(f"The priming text ({name('prime')}) must hold at least one character.")
    limits.check_length(len(prime), f"The priming text's length ({name('prime')})", limits.MAX_PRIME)
    missing = vocab.missing(prime)
    if missing:
        raise ValueError(f"The priming text cannot be used: {unknown_characters(missing)}")


def unknown_characters(missing):
    """'Characters not in the vocabulary: 'é' (U+00E9).' for a sorted list of characters."""
    return (f"Characters not in the vocabulary: {''.join(missing)!r} "
            f"({', '.join(f'U+{ord(c):04X}' for c in missing)}).")


def main(argv=None):
    from lib.checkpoint import in_folder, load_state
    from lib.cli import Parser

    p = Parser(prog="python -m lib.sample", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, help="a run's checkpoint.npz (or its folder)")
    p.add_argument("--n", type=int, default=1000, help=f"characters to generate (1 to {limits.MAX_SAMPLE:,})")
    p.add_argument("--temperature", type=float, default=1.0, help="> 0; below 1 is more conservative")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus: in (0, 1]; 1 samples from all")
    p.add_argument("--prime", default="\n", help="text fed through the network first")
    p.add_argument("--seed", type=int, default=0, help="a non-negative integer")
    p.add_argument("--last", action="store_true", help="use the last parameters, not the best")
    args = p.parse_args(argv)
    path = in_folder(args.checkpoint)
    cfg, vocab, state, _ = load_state(path)
    check(vocab, args.n, args.seed, args.temperature, args.top_p, args.prime, options=True)
    theta = state.theta if args.last else state.best_theta
    if not np.isfinite(theta).all():
        raise ValueError(f"{path} holds last parameters that are not finite (the run diverged); leave out --last.")
    print(args.prime + passage(cfg, vocab, theta, args.n, args.seed, args.temperature, args.top_p, args.prime))

if __name__ == "__main__":
    from lib import cli
    cli.command(main)
