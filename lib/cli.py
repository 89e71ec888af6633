"""What every command of this project does with errors and signals, and the command line of lib.train.

Exit codes (every command):
    0     done (for training: all its updates, or its time budget used up)
    1     a problem with the input, the files, the disk or the settings: one line "error: ..." says what to do
    2     a command line that cannot be parsed (one line)
    3     training diverged (the best model so far is kept)
    129, 130, 143   stopped by SIGHUP, SIGINT (Ctrl-C), SIGTERM; training saves its run first
    141   a program's output pipe was closed (as by `| head`; training goes on and saves instead)
"""
import argparse
import io
import re
import sys

from lib.signals import exit_code, quiet_exits


class Parser(argparse.ArgumentParser):
    """argparse, with a bad command line reported in one line."""

    def error(self, message):
        sys.stderr.write(f"error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def one_line(err):
    return " ".join(str(err).split())


def command(main, pipe="die"):
    """Run main() as a command: the exit codes above, every user-caused error in one line, never a
    traceback for an error the user can fix (a traceback remains for a bug in this project). Signals
    raise from here on (lib/__init__.py ended the process quietly while it started up)."""
    quiet_exits(pipe)
    if pipe == "survive":                   # a closed pipe must not stop a training run: output is dropped
        sys.stdout, sys.stderr = _Resilient(sys.stdout), _Resilient(sys.stderr)
    try:
        code = main() or 0
    except KeyboardInterrupt as err:
        code = exit_code(err)
    except MemoryError:
        _say("error: out of memory; use smaller settings (see the README's limits).")
        code = 1
    except OSError as err:
        where = f"{err.filename}: " if getattr(err, "filename", None) else ""
        _say(f"error: {where}{err.strerror or one_line(err)}.")
        code = 1
    except (ValueError, RuntimeError) as err:
        _say(f"error: {one_line(err)}")
        code = getattr(err, "exit_code", 1)
    try:
        sys.stdout.flush()
    except (BrokenPipeError, OSError):
        pass
    sys.exit(code)


def _say(line):
    try:
        print(line, file=sys.stderr, flush=True)
    except OSError:
        pass


class _Resilient(io.TextIOBase):
    """A text stream that stops writing, silently, once its reader has gone (a closed pipe)."""

    def __init__(self, stream):
        self.stream, self.gone = stream, False

    def write(self, s):
        if not self.gone:
            try:
                self.stream.write(s)
            except OSError:
                self.gone = True
        return len(s)

    def flush(self):
        if not self.gone:
            try:
                self.stream.flush()
            except OSError:
                self.gone = True

    def isatty(self):
        return not self.gone and self.stream.isatty()


# --- python -m lib.train ----------------------------------------------------------------------

def _yes_no(text):
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _seconds(text):
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _option_names(message):
    """'Config.eta must ...' -> '--eta must ...': on the command line, settings are options."""
    return re.sub(r"Config\.(\w+)", lambda m: "--" + m.group(1).replace("_", "-"), message)


def train_main(argv=None):
    """python -m lib.train: train a run in --out, resume one (--resume), print its summary."""
    import dataclasses
    import json
    from pathlib import Path

    from lib.checkpoint import in_folder
    from lib.config import Config
    from lib.runs import config_of, run

    p = Parser(prog="python -m lib.train", description="Train the character-level RNN (see the README).")
    p.add_argument("--data", help="corpus text file (default: data/goblet_book.txt, else the default corpus)")
    p.add_argument("--out", help="folder for checkpoint.npz and summary.json; a run there is resumed")
    p.add_argument("--resume", help="continue the run in this folder (or checkpoint.npz) with its own "
                                    "settings, to --steps updates in all")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh in --out even if it holds another run (kept in --out/replaced-*/)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--max-seconds", type=_seconds, default=None,
                   help="stop once training has taken this many seconds (validation not counted)")
    for f in dataclasses.fields(Config):
        kind = _yes_no if isinstance(f.default, bool) else type(f.default)
        p.add_argument("--" + f.name.replace("_", "-"), type=kind, default=None, help=f"default {f.default}")
    args = p.parse_args(argv)
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config) if getattr(args, f.name) is not None}
    try:
        if args.resume:
            ckpt = in_folder(args.resume)
            cfg = config_of(ckpt, **given)
            folder = ckpt.parent
            if ckpt.name != "checkpoint.npz":
                raise ValueError(f"--resume takes a run's folder (or the checkpoint.npz in it), not {ckpt}.")
            if args.out and Path(args.out).resolve() != folder.resolve():
                raise ValueError("--resume continues a run in its own folder; drop --out (or copy the folder).")
        else:
            if not args.out:
                raise ValueError("--out DIR is needed (where checkpoint.npz and summary.json go).")
            folder, cfg = Path(args.out), Config(**given)
    except ValueError as err:
        raise ValueError(_option_names(str(err))) from None
    _, _, info = run(cfg, args.data, folder, overwrite=args.overwrite, max_seconds=args.max_seconds,
                     progress=not args.no_progress)
    print(json.dumps({k: v for k, v in info.items() if k != "config"}, indent=2))
