"""The recurrent cells the trainer can use, by name: each a module with the same functions and shapes.

    rnn   lib/rnn.py    the vanilla RNN of the assignment (the default)
    gru   lib/gru.py    a gated recurrent unit
    lstm  lib/lstm.py   a long short-term memory cell

Each module provides NAMES, Params, shapes(K, m), n_params(K, m), state_size(m), views(theta, K, m),
init_params(K, m, sig, rng, dtype), loss_and_grads(P, X, Y, h0, out), scores(P, X, h0), step(P, h, x)
and work_bytes(T, B, K, m, itemsize).
"""
from lib import config, gru, lstm, rnn

CELLS = {"rnn": rnn, "gru": gru, "lstm": lstm}
assert tuple(CELLS) == config.CELLS


def get(name):
    """The module of the cell called name."""
    if name not in CELLS:
        raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {name!r}.")
    return CELLS[name]


def of(cfg):
    """The cell module of a Config."""
    return get(cfg.cell)
