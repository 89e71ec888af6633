"""The chunks of the training text an update reads, and the move to the next one (epochs)."""
import numpy as np


def inputs_and_targets(cfg, train_data, e, step):
    """X, Y (T, B): the inputs and targets of update `step`.

    "sequential": stream b reads the b-th of B equal parts of the text, at offset e
    (B = 1: data[e:e+T] and data[e+1:e+T+1], as in the assignment); views, not copies.
    "random": B start points drawn by the Generator seeded by (seed, 1, step).
    """
    T, B = cfg.seq_length, cfg.batch_size
    if cfg.chunks == "random":
        starts = np.random.default_rng([cfg.seed, 1, step]).integers(0, len(train_data) - T, size=B)
        pos = np.arange(T)[:, None] + starts
        return train_data[pos], train_data[pos + 1]
    L = len(train_data) // B
    streams = train_data[:B * L].reshape(B, L).T        # (L, B): column b is stream b's part
    return streams[e:e + T], streams[e + 1:e + T + 1]


def advance(cfg, state, n_train):
    """Move to the next chunk after an update; start a new epoch where the text runs out."""
    T, B = cfg.seq_length, cfg.batch_size
    if cfg.chunks == "random":               # epochs counted in characters read
        epoch = state.step * T * B // n_train
        if epoch > state.epoch:
            state.epoch = epoch
            state.epoch_starts.append(state.step)
        return
    state.e += T
    if state.e + T + 1 > n_train // B:      # the next chunk would run past a stream's part of the text
        state.e, state.hprev = 0, np.zeros_like(state.hprev)
        state.epoch += 1
        state.epoch_starts.append(state.step)
