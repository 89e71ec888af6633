"""The character-level RNN project: the model, its training and what the notebooks call (see the README).

When a command of this package starts (`python -m lib.train`, `lib.sample`, ...), Python sets sys.argv[0]
to "-m" while it locates the module: from then until the command takes over its signals
(lib.util.cli.command), a Ctrl-C, SIGTERM or SIGHUP ends it at once and quietly; nothing is written yet.
Imported as a library (by the notebooks, the tests) this does nothing.
"""
import sys

if sys.argv[:1] == ["-m"]:
    from lib.util.cli import exit_while_starting
    exit_while_starting()
