"""python -m lib.train: train a run in --out, resume one (--resume), print its summary.

Every setting of lib/config.py is an option (--eta 0.05, --normalize-loss, --no-normalize-loss, ...),
explained by --help; a recipe of configs/ gives many at once (--config configs/headline.toml), and the
options given beside it override it. --max-seconds S without --steps trains for S seconds. lib/training/runs.py
does the work.
"""
import argparse
import dataclasses
import json
from pathlib import Path

from lib.util import cli
from lib.training.checkpoint import in_folder
from lib.config import COMMAND, UNBOUNDED, Config, SettingError, option_name, positive_number
from lib.recipes import read_recipe
from lib.training.progress import Show
from lib.training.runs import config_of, run


def parser():
    """The command line: the run's files and budget, then one option per setting of Config."""
    p = cli.Parser(prog="python -m lib.train", description="Train the character-level RNN (see the README).")
    p.add_argument("--data", help="corpus text file (default: data/goblet_book.txt, else the default corpus)")
    p.add_argument("--out", help="folder for checkpoint.npz and summary.json; a run there is resumed")
    p.add_argument("--resume", help="continue the run in this folder (or checkpoint.npz) with its own "
                                    "settings, to --steps updates in all")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh in --out even if it holds another run (kept in --out/replaced-*/)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--config", metavar="FILE", help="a recipe (configs/*.toml): its settings, and its max_seconds; "
                                                    "the options given beside it override it")
    p.add_argument("--max-seconds", type=positive_number, default=None,
                   help="stop once training has taken this many seconds (validation not counted); without "
                        "--steps, train until then")
    settings = p.add_argument_group("settings (the defaults are the assignment's)")
    for f in dataclasses.fields(Config):
        option, rule = option_name(f.name), f.metadata["rule"]
        if rule == "bool":                  # --normalize-loss, --no-normalize-loss
            more = {"action": argparse.BooleanOptionalAction}
        elif isinstance(rule, tuple):
            more = {"choices": rule}
        else:
            more = {"type": type(f.default), "metavar": "N" if isinstance(f.default, int) else "X"}
        settings.add_argument(option, default=None, help=f"{f.metadata['help']} (default: {f.default})", **more)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    typed = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config) if getattr(args, f.name) is not None}
    max_seconds, settings, given = args.max_seconds, {}, dict(typed)
    if args.config:
        settings, seconds = read_recipe(args.config)
        given = {**settings, **typed}
        max_seconds = seconds if max_seconds is None else max_seconds
    if max_seconds is not None and "steps" not in given and not args.resume:
        given["steps"] = UNBOUNDED          # a time budget alone: train until it is used up
    try:
        if args.resume:
            if args.overwrite:
                raise ValueError("--resume continues the run in its folder and --overwrite would move it aside; "
                                 "give one of them.")
            ckpt = in_folder(args.resume)
            cfg = config_of(ckpt, (args.config, settings) if args.config else None, **typed)
            folder = ckpt.parent
            if ckpt.name != "checkpoint.npz":
                raise ValueError(f"--resume takes a run's folder (or the checkpoint.npz in it), not {ckpt}.")
            if args.out and Path(args.out).resolve() != folder.resolve():
                raise ValueError("--resume continues a run in its own folder; drop --out (or copy the folder).")
        else:
            if not args.out:
                raise ValueError("--out DIR is needed (where checkpoint.npz and summary.json go).")
            folder, cfg = Path(args.out), Config(**given)
        summary = run(cfg, args.data, folder, overwrite=args.overwrite, max_seconds=max_seconds,
                      show=Show(progress=not args.no_progress), names=COMMAND).summary
    except SettingError as err:
        raise ValueError(err.option()) from None
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}, indent=2))


if __name__ == "__main__":
    cli.command(main, pipe="survive")
