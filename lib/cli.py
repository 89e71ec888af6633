"""What every command of this project does with errors and signals.

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
