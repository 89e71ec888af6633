"""Signals: how a command ends quietly, and how training saves before it stops.

Kept free of heavy imports: lib/__init__.py installs exit_while_starting() before a command imports
NumPy, so that a Ctrl-C while the command starts up ends it without a traceback too.
"""
import os
import signal
from contextlib import contextmanager

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
    (lib.cli turns both into an exit code without a traceback). pipe="die": a closed output pipe (as in
    `| head`) ends the program at once, as it does any Unix tool; pipe="survive" leaves that to the
    program (training keeps going and saves its run)."""
    for s in STOPPING:
        signal.signal(s, _raise)
    if pipe == "die" and hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)


@contextmanager
def deferred():
    """While active, SIGINT, SIGTERM and SIGHUP set the yielded dict's "signal" instead of interrupting,
    so that training can finish its update and save; a second signal of the same kind acts at once,
    as it would have without this. Outside the main thread signals stay as they are."""
    flag = {"signal": None}
    try:
        previous = {s: signal.getsignal(s) for s in STOPPING}

        def handler(signum, frame):
            flag["signal"] = signum
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


def stop_exception(signum):
    """The exception to raise after saving, for the signal that asked training to stop."""
    return KeyboardInterrupt() if signum == signal.SIGINT else Stopped(signum)
