"""What every command relies on: errors, signals and exit codes (cli.py), files written so that nothing is
lost (files.py), and sizes checked against the memory they cost (limits.py)."""
