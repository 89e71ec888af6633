"""Everything that changes while a network trains, in one object that a checkpoint holds whole."""
import math
from dataclasses import dataclass, field

import numpy as np

from lib import cells

OPTIMIZER_STATE = {"adagrad": ("mem",), "adam": ("m", "v")}   # the arrays each optimiser keeps
STATUSES = ("new", "running", "done", "budget", "interrupted", "diverged")


@dataclass
class State:
    """The state of a run after `step` updates. Histories hold one entry per update.

    The best model is the parameters after best_step updates: those with the lowest validation loss
    when the run has validation, else those behind the lowest smooth loss.
    """
    theta: np.ndarray               # (n,) parameters, flat (the cell's views() splits them)
    opt: dict                       # the optimiser's arrays (n,): AdaGrad "mem"; Adam "m" and "v"
    best_theta: np.ndarray          # (n,) the best model's parameters
    hprev: np.ndarray               # (B, S) hidden state of each stream after the last chunk
    avg_theta: np.ndarray = None    # (n,) with cfg.ema: the weights averaged over recent updates
    e: int = 0                      # position of the next chunk in each stream's part of the text
    epoch: int = 0                  # epochs begun, minus one
    step: int = 0                   # updates done
    smooth_loss: float = None       # None until the first update
    lowest_smooth_loss: float = math.inf
    lowest_smooth_step: int = -1    # i: the smooth loss recorded at update i + 1 (of the parameters after i)
    best_step: int = 0              # the best model is the parameters after this many updates
    seconds: float = 0.0            # time spent training (validation excluded), over all sessions
    eta_scale: float = 1.0          # the learning rate is cfg.eta * eta_scale (plateau_factor lowers it)
    losses: np.ndarray = field(default_factory=lambda: np.zeros(0))          # (step,)
    smooth_losses: np.ndarray = field(default_factory=lambda: np.zeros(0))   # (step,)
    epoch_starts: list = field(default_factory=lambda: [0])                  # update at which each epoch began
    samples: list = field(default_factory=list)     # dicts: step, smooth_loss, text
    val: list = field(default_factory=list)         # dicts: step, seconds, loss (nats per character)
    status: str = "new"             # one of STATUSES; "budget": stopped when its time ran out
    held_best: np.ndarray = None    # (n,) when the validation at the end of a session (off val_every's
    held_step: int = None           # schedule) made the final parameters the best: the best before it, which
                                    # a resumed run returns to (it drops that validation), and its update

    @property
    def best_val_loss(self):
        return min((v["loss"] for v in self.val), default=None)


def init_state(cfg, K):
    """A fresh State: parameters drawn from Generator(seed) by the cell's init_params, optimiser state zero."""
    cell = cells.of(cfg)
    theta = cell.init_params(K, cfg.m, cfg.sig, np.random.default_rng(cfg.seed), np.dtype(cfg.dtype))
    return State(theta=theta, opt={name: np.zeros_like(theta) for name in OPTIMIZER_STATE[cfg.optimizer]},
                 best_theta=theta.copy(), avg_theta=theta.copy() if cfg.ema else None,
                 hprev=np.zeros((cfg.batch_size, cell.state_size(cfg.m)), theta.dtype))
