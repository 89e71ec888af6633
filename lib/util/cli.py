"""What every command of this project does with errors and signals, and how training saves before it stops.

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
import os
import signal
import sys
from contextlib import contextmanager


# --- signals ---------------------------------------------------------------------------------
# Kept free of heavy imports: lib/__init__.py installs exit_while_starting() before a command imports
# NumPy, so that a Ctrl-C while the command starts up ends it without a traceback too.

STOPPING = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Stopped(KeyboardInterrupt):
    """Stopped by SIGTERM or SIGHUP (SIGINT raises a plain KeyboardInterrupt, as Python does)."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_code(interrupt):
    """128 + the signal number: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP."""
    return 128 + getattr(interrupt, "signum", signal.SIGINT)


def exit_while_starting():
    """Until a command installs quiet_exits(): SIGINT, SIGTERM and SIGHUP end the process at once with
    128 + the signal (nothing has been written yet, so there is nothing to clean up)."""
    for s in STOPPING:
        signal.signal(s, lambda signum, frame: os._exit(128 + signum))


def _raise(signum, frame):
    raise KeyboardInterrupt if signum == signal.SIGINT else Stopped(signum)


def quiet_exits(pipe="die"):
    """For a command-line program: SIGTERM and SIGHUP raise Stopped as SIGINT raises KeyboardInterrupt
    (lib.util.cli turns both into an exit code without a traceback). pipe="die": a closed output pipe (as in
    `| head`) ends the program at once, as it does any Unix tool; pipe="survive" leaves that to the
    program (training keeps going and saves its run)."""
    for s in STOPPING:
        signal.signal(s, _raise)
    if pipe == "die" and hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)


class StopFlag:
    """The signal that asked a run to stop (signal: its number), or none yet (signal None)."""
    signal = None

    def __bool__(self):
        return self.signal is not None


@contextmanager
def deferred():
    """While active, SIGINT, SIGTERM and SIGHUP set the yielded StopFlag instead of interrupting, so that
    training can finish its update and save; a second signal of the same kind acts at once, as it would
    have without this. Outside the main thread signals stay as they are."""
    flag = StopFlag()
    try:
        previous = {s: signal.getsignal(s) for s in STOPPING}

        def handler(signum, frame):
            flag.signal = signum
            signal.signal(signum, previous[signum])
        for s in STOPPING:
            signal.signal(s, handler)
    except ValueError:                      # not the main thread
        yield flag
        return
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)

class Abandoned(Exception):
    """A sample or a scoring given up half-way because training was asked to stop (lib/training/loop.py)."""


def stop_exception(signum):
    """The exception to raise after saving, for the signal that asked training to stop."""
    return KeyboardInterrupt() if signum == signal.SIGINT else Stopped(signum)


# --- commands --------------------------------------------------------------------------------

class Parser(argparse.ArgumentParser):
    """argparse, with a bad command line reported in one line."""

    def error(self, message):
        sys.stderr.write(f"error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def first_paragraph(doc):
    """A module docstring's first paragraph on one line: a command's --help description, never cut mid-sentence."""
    return " ".join(doc.strip().split("\n\n")[0].split())


def one_line(err):
    return " ".join(str(err).split())


def command(main, pipe="die"):
    """Run main() as a command: the exit codes above, every user-caused error in one line, never a
    traceback for an error the user can fix (a traceback remains for a bug in this project). Signals
    raise from here on (lib/__init__.py ended the process quietly while it started up)."""
    quiet_exits(pipe)
    _usable_streams()
    if pipe == "survive":                   # a closed pipe must not stop a training run: output is dropped
        sys.stdout, sys.stderr = _Resilient(sys.stdout), _Resilient(sys.stderr)
    try:
        code = main() or 0
    except KeyboardInterrupt as err:
        code = exit_code(err)
    except MemoryError:
        _say("error: out of memory; use smaller settings (docs/reliability.md says which limits apply).")
        code = 1
    except OSError as err:
        where = f"{err.filename}: " if getattr(err, "filename", None) else ""
        text = err.strerror or one_line(err)
        _say(f"error: {where}{text}{'' if text.endswith('.') else '.'}")
        code = 1
    except (ValueError, RuntimeError) as err:
        _say(f"error: {one_line(err)}")
        code = getattr(err, "exit_code", 1)
    try:
        sys.stdout.flush()
    except (BrokenPipeError, OSError):
        pass
    sys.exit(code)


def _usable_streams():
    """stdout and stderr that cannot stop a command: a stream closed before it started (`>&-`, `2>&-`;
    Python then has None) writes nowhere, and characters a stream's encoding lacks (an ASCII terminal, a
    vocabulary with accents) are written as escapes instead of failing."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None:
            setattr(sys, name, open(os.devnull, "w"))
        elif hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


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
