"""The report's figures. Each function returns a matplotlib Figure; the notebooks save it to figures/."""
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from lib.util.files import atomic_path


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


def smooth_loss(state, seq_length, size=(8, 4)):
    """Loss per update (faint) and smooth loss over the run; epoch starts and the lowest point marked."""
    steps = np.arange(1, state.step + 1)
    fig, ax = plt.subplots(figsize=size)
    ax.plot(steps, state.losses[:state.step], color="tab:blue", alpha=0.15, lw=0.5, label="loss of each update")
    ax.plot(steps, state.smooth_losses[:state.step], color="tab:blue", lw=1.5, label="smooth loss")
    for i, start in enumerate(state.epoch_starts[1:], start=2):
        ax.axvline(start, color="grey", ls="--", lw=0.8)
        ax.text(start, 0.02, f" epoch {i}", transform=ax.get_xaxis_transform(), va="bottom", fontsize=8,
                color="grey")
    low, at = state.lowest_smooth_loss, state.lowest_smooth_update
    ax.plot(at, low, "o", color="tab:red", label=f"lowest: {low:.2f} at update {at:,}")
    bottom, top = np.percentile(state.losses[:state.step], [0.5, 99.5]) if state.step else (low, 1)
    ax.set_ylim(max(0, min(0.9 * low - 5, 0.95 * bottom)), max(top, state.smooth_losses[0]) * 1.02)
    ax.set_xlim(0, state.step + 1)
    ax.set_xlabel("update")
    ax.set_ylabel(f"cross-entropy of {seq_length} characters (nats)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def validation(runs):
    """Validation loss (bits per character) against characters read and against training seconds.

    runs: {label: lib.training.runs.Run}. The smooth training loss per character is drawn dashed beside each
    validation curve: the gap between the two is what the model has memorised.
    """
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    bits = 1 / np.log(2)
    for (label, (cfg, _, state, _)), color in zip(runs.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"]):
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
    fig.legend(*ax1.get_legend_handles_labels(), fontsize=7, loc="lower center", ncol=3, bbox_to_anchor=(0.5, 0))
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    return fig


YARDSTICK_STYLE = {"uniform": ":", "unigram": ":"}


def ladder(networks, yardsticks):
    """Validation loss (bits per character, on the first half of the held-out part) against training
    seconds for each network, with yardsticks on the same characters as horizontal lines (the first one
    drawn darkest); those above the networks' range are named at the top edge.

    networks: {label: lib.training.runs.Run} with validation histories; yardsticks: {label: bits}.
    """
    fig, ax = plt.subplots(figsize=(10, 4.6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    top = 0.0
    for (label, r), color in zip(networks.items(), colors):
        state = r.state
        seconds = [v["seconds"] for v in state.val]
        bits = [v["loss"] / np.log(2) for v in state.val]
        ax.plot(seconds, bits, "o-", ms=3, lw=1.5, color=color, label=label)
        top = max(top, np.percentile(bits[1:] or bits, 90))
    lowest = min(r.summary["best_val_loss_bits"] for r in networks.values())
    main = next(iter(yardsticks))
    low = min([lowest, *yardsticks.values()]) - 0.1
    high = max(top, yardsticks[main]) + 0.25
    above = []
    for name, b in yardsticks.items():
        if b > high:
            above.append(f"{name} {b:.2f}")
            continue
        ax.axhline(b, color="black" if name == main else "grey", lw=1.2 if name == main else 0.8,
                   ls="--" if name == main else YARDSTICK_STYLE.get(name, "--"), label=f"{name}: {b:.3f}")
    ax.set_ylim(low, high)
    if above:
        ax.text(0.01, 0.98, "above this range: " + ", ".join(above), transform=ax.transAxes, va="top",
                fontsize=8, color="grey")
    ax.set_xlabel("training time (s), validation excluded")
    ax.set_ylabel("validation loss (bits per character)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return fig


def unit_texts(panels, width=64, lines=5, vmax=1.5):
    """Text with each character's background coloured by a value (a unit's activation): blue at -vmax and
    below, white at 0, red at +vmax and above.

    panels: (title, text, values (len(text),)) triples; each panel shows the text as one flowing
    paragraph of `lines` rows of `width` characters (a newline drawn as a return sign). The colours stop
    short of the darkest ends of the map, so that the black letters stay readable on every background.
    """
    from matplotlib.colors import Normalize
    cmap, norm = plt.get_cmap("RdBu_r"), Normalize(-vmax, vmax)
    row_in = 0.2                                    # inches a row; a character cell is 7.4 / width wide
    fig, axes = plt.subplots(len(panels), 1, figsize=(7.6, (row_in * lines + 0.3) * len(panels)), squeeze=False)
    for ax, (title, text, act) in zip(axes[:, 0], panels):
        ax.set_axis_off()
        ax.set_xlim(0, width)
        ax.set_ylim(lines, 0)
        ax.set_title(title, fontsize=8, loc="left", pad=3)
        for i, (ch, a) in enumerate(zip(text[:width * lines], act)):
            row, col = divmod(i, width)
            ax.add_patch(plt.Rectangle((col, row), 1, 1, color=cmap(norm(a)), lw=0))
            ax.text(col + 0.5, row + 0.55, "\u21b5" if ch == "\n" else ch, ha="center", va="center",
                    fontsize=7.5, family="monospace", color="dimgrey" if ch == "\n" else "black")
    fig.tight_layout(h_pad=0.5)
    return fig


def running_gain(static, dynamic, window=2000):
    """What reading while learning gains along the held-out text: static - dynamic bits per character,
    averaged over a moving window and over everything read so far, with the two halves marked.

    static, dynamic: (n,) bits of each held-out character, the network fixed and learning."""
    gain = np.asarray(static) - np.asarray(dynamic)
    n, half = len(gain), len(gain) // 2
    x = np.arange(1, n + 1)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    w = max(1, min(window, n // 10))
    ax.plot(x[w - 1:], np.convolve(gain, np.ones(w) / w, mode="valid"), lw=0.8, color="tab:blue", alpha=0.6,
            label=f"over the last {w:,} characters")
    ax.plot(x, np.cumsum(gain) / x, lw=1.8, color="tab:red", label="over everything read so far")
    ax.axhline(0, color="black", lw=0.6)
    ax.axvline(half, color="grey", ls=":", lw=1)
    ax.text(half, 0.97, " second half: the figures reported", va="top", fontsize=8, color="grey",
            transform=ax.get_xaxis_transform())
    ax.set_xlabel("held-out characters read")
    ax.set_ylabel("bits per character saved")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def gradient_norms(curves):
    """||dL_t / dh_{t-k}|| against k (log scale): the median over positions t, and the band between the
    25th and 75th percentiles. curves: {label: (positions, span + 1) array}."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for (label, norms), color in zip(curves.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        k = np.arange(norms.shape[1])
        q25, q50, q75 = np.percentile(norms, [25, 50, 75], axis=0)
        ax.plot(k, q50, color=color, label=f"{label}: median")
        ax.fill_between(k, q25, q75, color=color, alpha=0.2, lw=0, label=f"{label}: middle half")
    ax.set_yscale("log")
    ax.set_xlabel("k, steps back in time")
    ax.set_ylabel(r"$\Vert \partial L_t / \partial h_{t-k} \Vert$")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return fig


def seed_band(states, seq_length):
    """The smooth loss of several runs of one set-up: their mean, and the band from the lowest to the
    highest at each update; each run faint."""
    S = np.array([s.smooth_losses for s in states])
    steps = np.arange(1, S.shape[1] + 1)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for row in S:
        ax.plot(steps, row, color="tab:blue", lw=0.4, alpha=0.35)
    ax.fill_between(steps, S.min(axis=0), S.max(axis=0), color="tab:blue", alpha=0.2, lw=0,
                    label=f"lowest to highest of {len(states)} seeds")
    ax.plot(steps, S.mean(axis=0), color="tab:blue", lw=1.5, label="mean")
    ax.set_ylim(0.9 * S[:, -1].min(), np.percentile(S, 99))
    ax.set_xlabel("update")
    ax.set_ylabel(f"smooth loss ({seq_length} characters, nats)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def search_history(points, hand_bits, ngram_bits=None):
    """The trials of a search over time: each complete trial's held-out bits per character (a dot) and
    each pruned one's at its first part (a cross), the best so far (a step line), the hand-found recipe's
    trial and the best n-gram (dashed). points: lib.search.journal.facts()["points"]."""
    fig, ax = plt.subplots(figsize=(8, 4))
    complete = [(h, v) for h, v, s in points if s == "COMPLETE" and v is not None]
    pruned = [(h, v) for h, v, s in points if s == "PRUNED" and v is not None]
    if pruned:
        ax.plot(*zip(*pruned), "x", color="grey", label="pruned after a third of its time")
    if complete:
        ax.plot(*zip(*complete), "o", color="tab:blue", ms=4, label="trial")
        hours, values = zip(*complete)
        ax.step(hours, np.minimum.accumulate(values), where="post", color="tab:blue", lw=1.5, label="best so far")
    ax.axhline(hand_bits, color="tab:red", ls="--", lw=1, label=f"the hand-found recipe: {hand_bits:.3f}")
    if ngram_bits is not None:
        ax.axhline(ngram_bits, color="grey", ls=":", lw=1, label=f"best n-gram: {ngram_bits:.3f}")
    low = min([v for _, v in complete] + [hand_bits])
    ax.set_ylim(low - 0.05, min(max([v for _, v in complete + pruned] + [hand_bits]), low + 1.2) + 0.05)
    ax.set_xlabel("hours since the study started")
    ax.set_ylabel("held-out bits per character")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def importances(shares):
    """A horizontal bar for each setting's share of the variance of the held-out loss ({setting: share})."""
    names = list(shares)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.4 * len(names) + 1))
    ax.barh(names, [shares[n] for n in names], color="tab:blue")
    ax.set_xlabel("share of the variance of the held-out loss (fANOVA)")
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig


def save(fig, folder, name):
    """Write fig as folder/name.png and folder/name.pdf, each atomically; returns the PNG path."""
    folder = Path(folder)
    for ext, kw in (("png", {"dpi": 150}), ("pdf", {})):
        with atomic_path(folder / f"{name}.{ext}") as tmp:
            fig.savefig(tmp, format=ext, **kw)
    return folder / f"{name}.png"
