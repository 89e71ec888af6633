"""What the measurements of notebooks 3 and 6 to 9 say: their tables' rows and the sentences that read them.

Every number comes from a run (lib.training.runs.Run) or a measurement passed in; the words that depend on the
numbers (which set-up won, whether a gap is larger than the seeds' spread) are chosen here, so that each
notebook cell holds a call and a sentence.
"""
import numpy as np

LN2 = np.log(2)


def best(runs, field="best_val_loss_bits"):
    """The name of the run with the lowest value of a summary field."""
    return min(runs, key=lambda name: runs[name].summary[field])


# --- notebook 3: the assignment's run ----------------------------------------------------------

def first_loss_gap(summary):
    """How far the first loss is from T ln K (an untrained network's), relative to it."""
    return abs(summary["first_loss"] - summary["uniform_loss"]) / summary["uniform_loss"]


def assignment_rows(summary):
    """Notebook 3's table: (what, this run) rows from a run's summary."""
    s = summary
    return [("first loss", f"{s['first_loss']:.2f} (25 ln K = {s['uniform_loss']:.2f}: "
                           f"{100 * first_loss_gap(s):.2f}% apart)"),
            ("final smooth loss", f"{s['final_smooth_loss']:.2f} after {s['steps']:,} updates "
                                  f"({s['epochs']:.2f} epochs)"),
            ("lowest smooth loss", f"{s['lowest_smooth_loss']:.2f} at update {s['lowest_smooth_update']:,} (the best "
                                   "model: the parameters behind it)"),
            ("training time", f"{s['seconds']:.1f} s, {s['us_per_step']:.0f} µs per update (samples and checkpoints "
                              "not counted)")]


# --- notebook 6: Adam, mini-batches and a validation loss --------------------------------------

def extensions(runs, budget_seconds):
    """Notebook 6's reading of its runs ({name: Run}), trained for budget_seconds each."""
    winner, K = best(runs), next(iter(runs.values())).vocab.K
    first = ", ".join(f"{r.state.val[0]['loss']:.2f}" for r in runs.values())
    return (f"Before training, every set-up's validation loss is ln K = {np.log(K):.2f} nats per character "
            f"({first} measured). Within the same {budget_seconds:.0f} s, **{winner}** reaches the lowest "
            f"validation loss, {runs[winner].summary['best_val_loss_bits']:.2f} bits per character. The batched "
            "set-ups read many more characters in the same time, since one update of 32 sequences costs far "
            "less than 32 updates of one. Where a dashed training curve falls below its validation curve, the "
            "network does better on text it has seen than on text it has not: that gap is memorisation.")


# --- notebook 7: the ladder ---------------------------------------------------------------------

COMPRESSORS = ("gzip", "bz2", "lzma")
ADAPTIVE_ONLY = ("ppmd", *COMPRESSORS)


def scored(net):
    """(static, adaptive) mean bits of a network on the second half of the held-out part, from the
    (len(held),) arrays of lib.evaluate.network_bits: fixed, and learning while it reads."""
    from lib.data import halves
    return tuple(float(halves(net[k])[1].mean()) for k in ("static", "dynamic"))


def shown(b):
    return "" if b is None else f"{b:.3f}"


def yardstick_rows(yard):
    """(name, static bits, adaptive bits) of each yardstick of baselines.yardsticks, "" where it has no
    such form; the n-gram at its best orders (chosen on the first half)."""
    return [(name, shown(a), shown(b)) for name, a, b in yardstick_figures(yard)]


def yardstick_figures(yard):
    """yardstick_rows' rows, with numbers (None where there is none)."""
    st, ad, best_ = yard["static"], yard["adaptive"], yard["best"]
    rows = [("uniform", st["uniform"], None), ("unigram", st["unigram"], None),
            (f"Kneser-Ney n-gram ({best_['static'][6:]} / {best_['adaptive'][6:]})",
             st[best_["static"]], ad[best_["adaptive"]])]
    rows += [(name if name != "ppmd" else f"PPMd (order {best_['ppmd_order']})", None, ad[name])
             for name in ADAPTIVE_ONLY]
    return rows


def ladder_rows(yard, nets, runs, headline=None):
    """The rungs, worst first: (name, static bits, adaptive bits, parameters, updates, characters read),
    the yardsticks and the networks (runs, and the headline run of docs/ladder.md when there is one);
    nets: {name in runs or "headline": lib.evaluate.network_bits of it}."""
    rows = [(*r, "", "", "") for r in yardstick_figures(yard)]
    networks = {name: (f"{name} (m = {r.cfg.m})", r) for name, r in runs.items()}
    if headline is not None:
        networks["headline"] = (headline_label(headline), headline)
    for name, (label, r) in networks.items():
        s = r.summary
        rows.append((label, *scored(nets[name]), f"{s['n_params']:,}", f"{s['steps']:,}",
                     f"{s['chars_seen'] / 1e6:.1f} M"))
    key = lambda r: -(r[1] if r[1] is not None else r[2])                              # noqa: E731
    return [(r[0], shown(r[1]), shown(r[2]), *r[3:]) for r in sorted(rows, key=key)]


def yardstick_note(yard, n_chars):
    """The sentence under the yardsticks' table: what was scored, and the n-gram's orders."""
    n_orders = sum(k.startswith("ngram-") for k in yard["static"])
    seconds = yard["seconds"]["ngrams"]
    return (f"Bits per character on the last {yard['n_scored_chars']:,} of {yard['n_val_chars']:,} held-out "
            f"characters ({n_chars:,} in all); the n-gram's orders (static / adaptive, in brackets) chosen on the "
            f"first half among {n_orders}, counted in {seconds:.1f} s.")


def reader_label(name, run):
    """The network that reads while it learns, as the text names it: the headline run, or a ladder's name."""
    return f"headline {run.cfg.cell.upper()}" if name == "headline" else name


def reading_title(label, word):
    """The title of the coloured passage (lib.evaluate.helped_passage's)."""
    return (f"the {label}; red: bits saved by reading (up to 4), blue: bits lost"
            + (f"; '{word}' is not in the training text" if word else ""))


def dynamic_note(label, net):
    """How the network read while it learned (net: lib.evaluate.network_bits)."""
    eta, decay, segment = net["setting"]
    return (f"Dynamic evaluation of the {label}: segments of {segment} characters, step size {eta:g}, decay "
            f"{decay:g} (chosen on the first half); all {len(net['static']):,} held-out characters read in "
            f"{net['seconds']:.1f} s.")


def kind_table(kinds, ngram, network):
    """(rows, header, align) of show.table for lib.evaluate.by_kind's rows: the n-gram ngram against the
    network named network, by what is predicted."""
    rows = [(k, f"{share:.1%}", f"{a:.3f}", f"{b:.3f}", f"{won:.0%}") for k, share, a, b, won in kinds]
    return (rows, ["predicting", "share of characters", f"{ngram} (bits)", f"{network} (bits)",
                   f"where {ngram} is better"], ["l", "r", "r", "r", "r"])


def headline_label(run):
    return f"{run.cfg.cell.upper()}, {run.state.seconds:.0f} s (the headline run of docs/ladder.md)"


def ladder(runs, nets, yard, kinds, budget_seconds, assignment, headline=None):
    """Notebook 7's verdict: the best network (the lowest validation loss, on the first half) against the
    yardsticks on the second half, fixed and reading while it learns, and where counting still wins (kinds:
    the rows of baselines.compare_by_kind, the n-gram first). assignment: the name among runs of the
    assignment's own network, quoted beside the best; nets: as for ladder_rows."""
    name = best(runs)
    (net, dyn), (first, _) = scored(nets[name]), scored(nets[assignment])
    st, ad, b = yard["static"], yard["adaptive"], yard["best"]
    ng, ng_ad = st[b["static"]], ad[b["adaptive"]]
    order = int(b["static"].split("-")[1])
    adaptive = min(ADAPTIVE_ONLY + (b["adaptive"],), key=ad.get)
    by_kind = {k: (a, c) for k, _, a, c, _ in kinds if k != "all"}
    ngram_wins = [k for k, (a, c) in by_kind.items() if a < c]
    net_wins = [k for k, (a, c) in by_kind.items() if c <= a]
    if net < ng:
        verdict = f"beats the n-gram: {(ng - net) / ng:.1%} below it"
    else:
        verdict = f"does not beat counting at this budget: the n-gram is {net - ng:.3f} bits per character lower"
    adaptive_name = {"ppmd": "PPMd"}.get(adaptive, "the adaptive n-gram" if adaptive.startswith("ngram") else adaptive)
    text = [f"With {budget_seconds:.0f} s of training each, the best network, the {name}, reaches **{net:.3f}** "
            f"bits per character with its weights fixed and {verdict} (order {order}, a context of {order - 1} "
            f"characters, {ng:.3f}). The {assignment} reaches {first:.3f}."]
    text.append(f"Reading while it learns, the same network reaches **{dyn:.3f}**, "
                + (f"{(ad[adaptive] - dyn) / ad[adaptive]:.1%} below" if dyn < ad[adaptive] else
                   f"{dyn - ad[adaptive]:.3f} bits per character above")
                + f" the best yardstick that adapts too, {adaptive_name} ({ad[adaptive]:.3f}); "
                f"the adaptive n-gram reaches {ng_ad:.3f}.")
    if ngram_wins:
        text.append("Counting still wins where the next character follows from a short context seen many times "
                    f"in training: the n-gram is better on average for {', '.join(ngram_wins)}.")
    else:
        text.append("On average the network is better on every kind of character.")
    text.append((f"The network is better for {', '.join(net_wins)}: its" if net_wins else "Its")
                + " state carries what a fixed window of characters cannot (which line it is on, an open "
                "quotation, the speaker), and it shares what it learns between similar contexts instead of "
                "counting each apart.")
    if headline is not None:
        h, h_dyn = scored(nets["headline"])
        text.append(f"With {headline.state.seconds:.0f} s of training, the headline run of docs/ladder.md reaches "
                    f"{h:.3f} bits per character fixed, {(ng - h) / ng:.1%} below the n-gram, and {h_dyn:.3f} "
                    "reading while it learns.")
    else:
        text.append("Longer training moves the networks down the ladder: the headline command of docs/ladder.md "
                    "trains a GRU for 600 s, and this notebook shows it beside these once it has run.")
    return " ".join(text)


# --- notebook 8: what the network learned, how much one run is worth ------------------------------

def strength(u, r):
    """How well the unit u (None: the feature never changes in the text) tracks a feature, r its correlation."""
    if u is None:
        return "never in this text"
    return "tracked" if abs(r) >= 0.5 else "weakly" if abs(r) >= 0.3 else "no unit"


def unit_rows(found):
    """(feature, unit, r, how well) for each (feature, unit, r) of insight.units_for."""
    return [(name, "" if u is None else u, "" if u is None else f"{r:+.2f}", strength(u, r)) for name, u, r in found]


def units(found, run):
    """Notebook 8's reading of the units found in the hidden states of run's best model."""
    said = {kind: [name for name, u, r in found if strength(u, r) == kind]
            for kind in ("tracked", "weakly", "no unit", "never in this text")}
    text = [f"Units track **{', '.join(said['tracked'])}** (|r| of 0.5 or more)." if said["tracked"] else
            "No unit tracks a feature with |r| of 0.5 or more."]
    if said["weakly"]:
        text.append(f"Weaker traces (|r| 0.3 to 0.5): {', '.join(said['weakly'])}.")
    if said["no unit"]:
        text.append(f"No unit tracks **{', '.join(said['no unit'])}** (|r| below 0.3): with {run.cfg.m} units and "
                    f"{run.summary['epochs']:.2f} epochs, the network spends its state on what predicts the next "
                    "character most often, and what it knows of these it spreads over many units, or does not know.")
    if said["never in this text"]:
        text.append(f"The held-out text never has {', '.join(said['never in this text'])}, so nothing can be said "
                    "of it here (the course book's dialogue has double quotation marks; these plays have none).")
    text.append("A single unit is the simplest place to look; a feature can also live in a direction across "
                "units, which this search does not see.")
    return " ".join(text)


def forgetting(curves):
    """Notebook 8's reading of the gradient norms ({label: (n, span + 1) from insight.gradient_norms})."""
    text = []
    for label, c in curves.items():
        med = np.median(c, axis=0)

        def steps_to(factor):               # the first k at which the median has fallen by factor
            below = np.flatnonzero(med <= med[0] / factor)
            return f"{below[0]}" if below.size else f"more than {len(med) - 1}"
        text.append(f"For the {label}, the median gradient falls a hundredfold within {steps_to(100)} steps and a "
                    f"millionfold within {steps_to(1e6)}; after {len(med) - 1} steps it is {med[-1] / med[0]:.1e} "
                    "of its size at the step itself.")
    text.append("What the loss cannot reach, training cannot teach: a vanilla unit learns only from the last few "
                "dozen characters, whatever the length of the chunk.")
    if len(curves) == 1:
        text.append("(Run notebook 7 for the LSTM's curve.)")
    return " ".join(text)


def seed_rows(runs):
    """(seed, final smooth loss, held-out bits per character) of each run of a list, then mean ± sd and range."""
    final = np.array([r.summary["final_smooth_loss"] for r in runs])
    held = np.array([r.summary["best_val_loss_bits"] for r in runs])
    rows = [(r.cfg.seed, f"{f:.2f}", f"{b:.3f}") for r, f, b in zip(runs, final, held)]
    rows.append(("mean ± sd", f"{final.mean():.2f} ± {final.std(ddof=1):.2f}",
                 f"{held.mean():.3f} ± {held.std(ddof=1):.3f}"))
    rows.append(("range", f"{np.ptp(final):.2f}", f"{np.ptp(held):.3f}"))
    return rows


def seed_spread(runs, extensions, pairs):
    """Notebook 8's reading of the seeds' spread (runs, a list), against the gaps between notebook 6's runs
    (extensions: {name: Run}, those that have been trained): pairs, ((name, name), ...), the gaps to read,
    each read when both its runs are there."""
    final = np.array([r.summary["final_smooth_loss"] for r in runs])
    held = np.array([r.summary["best_val_loss_bits"] for r in runs])
    spread = np.ptp(held)
    text = [f"Across {len(runs)} seeds, the final smooth loss spans {np.ptp(final):.2f} (sd {final.std(ddof=1):.2f}) "
            f"and the held-out loss {spread:.3f} bits per character (sd {held.std(ddof=1):.3f})."]
    read = [(a, b) for a, b in pairs if a in extensions and b in extensions]
    for a, b in read:
        gap = abs(extensions[a].summary["best_val_loss_bits"] - extensions[b].summary["best_val_loss_bits"])
        text.append(f"In notebook 6, {a} and {b} differ by {gap:.3f} bits per character, "
                    + (f"{gap / spread:.1f} times this spread: larger than one seed's luck." if gap > spread else
                       "within this spread: notebook 6 cannot tell them apart with one run each."))
    if read:
        text.append("(The spread is measured for the assignment's set-up; another set-up may spread otherwise.)")
    return " ".join(text)


# --- notebook 9: what the automatic search found -------------------------------------------------

def search_facts(facts, best, damage=()):
    """Notebook 9's account of a stored study (lib.search.journal.facts and best.json), and what is wrong
    with it first (damage: lib.search.journal.damage's sentences)."""
    budget = (f"{best['trial_seconds']:g} s of training" if best["trial_seconds"] else
              f"{best['trial_updates']:,} updates")
    failed = f", {facts['failed']} failed" if facts["failed"] else ""
    warning = ("**The stored study is damaged.** " + " ".join(damage) + "\n\n") if damage else ""
    return warning + (f"The study holds {facts['trials']} trials ({facts['complete']} complete, {facts['pruned']} pruned "
            f"after a third of their time{failed}), run over {facts['hours']:.1f} hours: "
            f"{facts['worker_hours']:.1f} worker-hours, each trial {budget} on one worker process.")


def search_verdict(best):
    """How the search's best trial compares with the hand-found recipe's trial and the best n-gram."""
    hand, b = best["hand_found"], best["best_val_loss_bits"]
    if hand is None:
        return f"The best trial, {best['trial']}, reached {b:.3f} bits per character."
    ngram = best.get("best_ngram")
    versus = (f"; the best n-gram ({ngram['name']}) scores {ngram['bits']:.3f} on the same split" if ngram else "")
    if best["trial"] == hand["trial"]:
        return (f"The best trial is the hand-found recipe's own (trial {hand['trial']}): **{b:.3f} bits per "
                f"character**; the search found nothing better at this budget{versus}.")
    gap = 100 * (hand["best_val_loss_bits"] - b) / hand["best_val_loss_bits"]
    return (f"The best trial, {best['trial']}, reached **{b:.3f} bits per character**, {gap:.1f}% below the "
            f"hand-found recipe's {hand['best_val_loss_bits']:.3f} at the same budget (trial {hand['trial']})"
            f"{versus}.")


def recipe_rows(best):
    """(setting, the hand-found recipe's value, the search's best) for each setting searched."""
    hand = (best["hand_found"] or {}).get("settings", {})

    def shown(v):
        return f"{v:.3g}" if isinstance(v, float) and v not in (0.0, 0.99, 0.999) else str(v)
    return [(name, shown(hand[name]) if name in hand else "", shown(value)) for name, value in best["settings"].items()]


def importance_sentence(shares):
    """Which settings mattered most (their fANOVA shares of the variance of the held-out loss)."""
    top = list(shares.items())[:3]
    return ("Over the complete trials, the settings that explain most of the variance of the held-out loss "
            f"are {', '.join(f'{name} ({share:.0%})' for name, share in top)}.")
