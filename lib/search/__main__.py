"""python -m lib.search: the command line of the search (lib/search/study.py)."""
import json

from lib.search import study


def main(argv=None):
    from lib.util.cli import Parser, first_paragraph
    from lib.config import arg_type, positive_int, positive_number
    p = Parser(prog="python -m lib.search", description=first_paragraph(study.__doc__))
    p.add_argument("--data", help="the text (default: data/goblet_book.txt, else the default corpus)")
    p.add_argument("--trials", type=positive_int, required=True, help="finished trials the study should have")
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--trial-seconds", type=positive_number,
                        help="training time of a trial (validation not counted)")
    budget.add_argument("--trial-updates", type=positive_int,
                        help="updates of a trial (its result exactly repeatable)")
    p.add_argument("--out", required=True, help="the study's folder (study.log, trials/, best.json)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=positive_int, help="local worker processes (default: the cores)")
    where.add_argument("--scheduler", help="a dask scheduler's address, tcp://HOST:PORT")
    p.add_argument("--seed", type=arg_type("seed"), default=0, help="the sampler's seed (default 0)")
    p.add_argument("--allow-long", action="store_true",
                   help=f"run a study of more than {study.MAX_WORKER_HOURS} worker-hours of training")
    args = p.parse_args(argv)
    info = study.search(args.data, args.trials, args.out, args.trial_seconds, args.trial_updates, args.workers,
                        args.scheduler, args.seed, allow_long=args.allow_long)
    if info:
        print(json.dumps({k: info[k] for k in ("best_val_loss_bits", "n_trials", "trial", "command")}, indent=2))


if __name__ == "__main__":
    from lib.util import cli
    cli.command(main)
