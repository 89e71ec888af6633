"""The report's figures. Each function returns a matplotlib Figure; the notebooks save it to figures/."""
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from lib.files import atomic_path


def char_frequencies(text, vocab, top=None):
    """A bar chart of how often each character of the vocabulary occurs, most frequent first."""
    counts = Counter(text).most_common(top)
    labels = [repr(ch)[1:-1] if ch.isspace() or not ch.isprintable() else ch for ch, _ in counts]
    labels = [{" ": "space", "\\n": "\\\\n"}.get(label, label) for label in labels]
    fig, ax = plt.subplots(figsize=(10, 3.2))
    ax.bar(range(len(counts)), [n / len(text) for _, n in counts], color="tab:blue")
    ax.set_xticks(range(len(counts)), labels, fontsize=7, rotation=90)
    ax.set_yscale("log")
    ax.set_ylabel("relative frequency")
    ax.set_xlim(-0.8, len(counts) - 0.2)
    ax.set_title(f"The {vocab.K} characters of the corpus, most frequent first")
    fig.tight_layout()
    return fig


def smooth_loss(state, seq_length):
    """Loss per update (faint) and smooth loss over the run; epoch starts and the best point marked."""
    steps = np.arange(1, state.step + 1)
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(steps, state.losses[:state.step], color="tab:blue", alpha=0.15, lw=0.5, label="loss of each update")
    ax.plot(steps, state.smooth_losses[:state.step], color="tab:blue", lw=1.5, label="smooth loss")
    for i, start in enumerate(state.epoch_starts[1:], start=2):
        ax.axvline(start, color="grey", ls="--", lw=0.8)
        ax.text(start, 0.02, f" epoch {i}", transform=ax.get_xaxis_transform(), va="bottom", fontsize=8,
                color="grey")
    low, at = state.lowest_smooth_loss, state.lowest_smooth_step + 1
    ax.plot(at, low, "o", color="tab:red", label=f"lowest: {low:.2f} at update {at:,}")
    top = np.percentile(state.losses[:state.step], 99.5) if state.step else 1
    ax.set_ylim(max(0, 0.9 * low - 5), max(top, state.smooth_losses[0]) * 1.02)
    ax.set_xlim(0, state.step + 1)
    ax.set_xlabel("update")
    ax.set_ylabel(f"cross-entropy of {seq_length} characters (nats)")
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def validation(runs):
    """Validation loss (bits per character) against characters read and against training seconds.

    runs: (label, cfg, state) triples. The smooth training loss per character is drawn dashed beside
    each validation curve: the gap between the two is what the model has memorised.
    """
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    bits = 1 / np.log(2)
    for (label, cfg, state), color in zip(runs, plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        per_update = cfg.seq_length * cfg.batch_size
        steps = np.array([v["step"] for v in state.val])
        loss = np.array([v["loss"] for v in state.val]) * bits
        read = steps > 0                    # the log axis leaves out the untrained point
        ax1.plot(steps[read] * per_update, loss[read], "o-", ms=3, color=color, label=f"{label}: validation")
        every = max(1, state.step // 400)
        smooth = state.smooth_losses[:state.step:every] / cfg.seq_length * bits
        ax1.plot((np.arange(0, state.step, every) + 1) * per_update, smooth, "--", lw=1, color=color,
                 label=f"{label}: smooth training loss")
        ax2.plot([v["seconds"] for v in state.val], loss, "o-", ms=3, color=color, label=label)
    ax1.set_xscale("log")
    ax1.set_xlabel("characters read in training")
    ax1.set_ylabel("loss (bits per character)")
    ax2.set_xlabel("training time (s), validation excluded")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    ax1.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def save(fig, folder, name):
    """Write fig as folder/name.png and folder/name.pdf, each atomically; returns the PNG path."""
    folder = Path(folder)
    for ext, kw in (("png", {"dpi": 150}), ("pdf", {})):
        with atomic_path(folder / f"{name}.{ext}") as tmp:
            fig.savefig(tmp, format=ext, **kw)
    return folder / f"{name}.png"
