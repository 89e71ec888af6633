"""Training a network: the loop and one update (loop.py), the chunks of text an update reads (chunks.py),
a run in a folder started, resumed or refused (runs.py), what changes while it trains (state.py), the
checkpoint file that holds it (checkpoint.py) and what a run shows while it runs (progress.py). The
command is lib/train.py."""
