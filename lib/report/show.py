"""What the notebooks show, all alike.

Text: a bold heading (Markdown), then the text as plain output, which keeps its spaces and line breaks
in Jupyter and is one fixed-width block in the PDF. Tables: Markdown, from a list of rows (table()).
The slider panel of notebook 5 (speaker()): a trained model writes again whenever a setting changes.
Every label is shown whole (a description width of its own, not the default that cuts "temperature"
short); a priming text with characters the model does not know is answered in the panel's message line,
and the passage keeps its last good state. A text to read first: the network learns from it for a few
seconds (a copy of its weights), says how far its bits per character on it fell, and writes from then on
with what it learned, until the box is emptied and read again.
"""
import html

import ipywidgets as widgets
import numpy as np
from IPython.display import HTML, Markdown, display

from lib.sample import passage, sample_line
from lib.reading import MAX_ADAPT_CHARS, check_reading, read_first

WIDE = {"description_width": "initial"}


COLUMNS = {   # a run's summary field: (heading, format)
    "steps": ("updates", "{:,}"),
    "chars_seen": ("characters read", "{:,}"),
    "epochs": ("epochs", "{:.2f}"),
    "us_per_step": ("µs per update", "{:.0f}"),
    "n_params": ("parameters", "{:,}"),
    "best_val_loss_bits": ("best validation loss", "{:.3f}"),
    "best_val_chars": ("reached after (characters)", "{:,}"),
    "final_smooth_loss": ("final smooth loss", "{:.2f}"),
    "final_smooth_loss_bits": ("final smooth training loss", "{:.3f}"),
}


def markdown_table(rows, header, align=None, widths=None):
    """A Markdown table as text: header (names), rows (sequences of cells, already formatted or numbers);
    align: "l" or "r" per column (default: numbers right, the rest left); widths: the columns' relative
    widths in the PDF (pandoc reads them from the rule under the header; default: all alike)."""
    rows = [list(r) for r in rows]
    if align is None:
        align = ["r" if rows and all(isinstance(r[i], (int, float, np.number)) for r in rows) else "l"
                 for i in range(len(header))]
    widths = widths or [3] * len(header)
    rule = ["-" * w + ":" if a == "r" else ":" + "-" * w for a, w in zip(align, widths)]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def table(rows, header, align=None, widths=None):
    """markdown_table's table, shown as Markdown."""
    return Markdown(markdown_table(rows, header, align, widths))


def summary_table(runs, fields, first="set-up"):
    """A Markdown table of runs ({name: Run}): a row per run, a column per summary field (COLUMNS)."""
    rows = [[name] + [COLUMNS[f][1].format(r.summary[f]) for f in fields] for name, r in runs.items()]
    return table(rows, [first] + [COLUMNS[f][0] for f in fields], ["l"] + ["r"] * len(fields))


def show_text(heading, text):
    """A heading, then the text."""
    display(Markdown(f"**{heading}**"))
    print(text)


def show_samples(samples):
    """The samples drawn during training, each under a line with its update and smooth loss."""
    for s in samples:
        heading, text = sample_line(s).split("\n", 1)
        show_text(heading.strip("- ").capitalize(), text)


def show_best_passages(runs, n, seed=0):
    """For each of runs ({name: Run}), n characters from its best model, under its name and loss."""
    for name, r in runs.items():
        loss = r.summary.get("best_val_loss_bits")
        said = f"validation loss {loss:.3f} bits per character" if loss is not None else \
            f"smooth loss {r.summary['lowest_smooth_loss']:.2f}"
        show_text(f"{name} ({said})", passage(r.cfg, r.vocab, r.state.best_theta, n, seed=seed))


def show_passages(rows):
    """rows: dicts with temperature, top_p and text; each under a heading."""
    for r in rows:
        show_text(f"temperature {r['temperature']}, top-p {r['top_p']}", r["text"])


def show_activations(panels):
    """In Jupyter, the text of each (title, text, activations) panel with each character's background
    coloured by its activation (red +1, blue -1, as plots.unit_texts draws it for the PDF)."""
    parts = []
    for title, text, act in panels:
        spans = []
        for ch, a in zip(text, np.clip(act, -1, 1)):
            color = f"rgba(214,39,40,{a:.2f})" if a > 0 else f"rgba(31,119,180,{-a:.2f})"
            shown = "&#8629;<br>" if ch == "\n" else "&nbsp;" if ch == " " else html.escape(ch)
            spans.append(f'<span style="background:{color}">{shown}</span>')
        parts.append(f"<p><b>{html.escape(title)}</b></p>"
                     f"<div style='font-family:monospace;line-height:1.5'>{''.join(spans)}</div>")
    display(HTML("".join(parts)))


def speaker(cfg, vocab, state, title="Try it yourself: the best model writes", length=300):
    """The panel (a VBox) for a run's State (its best weights write). Its children are named after their
    roles in .controls (temperature, top_p, length, seed, prime), .reading (text, seconds, button),
    .message and .output, so that a test can drive it."""
    trained = state.best_theta
    weights = {"theta": trained}            # what writes: the trained weights, or a copy that has read
    controls = {
        "temperature": widgets.FloatSlider(value=1.0, min=0.05, max=2.0, step=0.05, description="temperature",
                                           continuous_update=False, style=WIDE),
        "top_p": widgets.FloatSlider(value=1.0, min=0.05, max=1.0, step=0.05, description="top-p",
                                     continuous_update=False, style=WIDE),
        "length": widgets.IntSlider(value=length, min=50, max=2000, step=50, description="characters",
                                    continuous_update=False, style=WIDE),
        "seed": widgets.BoundedIntText(value=0, min=0, max=2**31 - 1, description="seed", style=WIDE),
        "prime": widgets.Text(value="", placeholder="a newline", description="priming text",
                              continuous_update=False, style=WIDE),
    }
    reading = {
        "text": widgets.Textarea(value="", placeholder="a text the network reads first, learning from it",
                                 description="read first", layout=widgets.Layout(width="48em", height="6em"),
                                 style=WIDE),
        "seconds": widgets.BoundedFloatText(value=5.0, min=0.5, max=60.0, step=0.5, description="for seconds",
                                            style=WIDE),
        "button": widgets.Button(description="read, then write", button_style="info",
                                 layout=widgets.Layout(width="14em")),
    }
    message, said = widgets.HTML(value=""), widgets.HTML(value="")
    output = widgets.Output(layout=widgets.Layout(border="1px solid #ddd", padding="4px", min_height="4em"))

    def read(_=None):
        text = reading["text"].value
        if not text:
            weights["theta"] = trained
            said.value = "The box is empty: the network writes with its trained weights."
            return write()
        try:
            check_reading(text, vocab, "The text to read first")
        except ValueError as err:
            message.value = f"<span style='color:#b00'>{html.escape(str(err), quote=False)}</span>"
            return
        said.value = "Reading..."
        weights["theta"], before, after, n = read_first(cfg, vocab, state, trained, text, reading["seconds"].value)
        said.value = (f"Read {len(text):,} characters for {reading['seconds'].value:g} s ({n:,} in all): "
                      f"<b>{before:.3f} &rarr; {after:.3f}</b> bits per character on them. It writes with what it "
                      "learned (the run is not changed; empty the box and read to forget).")
        write()

    def write(_=None):
        c = {k: w.value for k, w in controls.items()}
        try:                                # passage checks every setting (and the priming text) first
            text = passage(cfg, vocab, weights["theta"], c["length"], c["seed"], c["temperature"], c["top_p"],
                           c["prime"] or None)
        except ValueError as err:
            shown = html.escape(str(err), quote=False)
            message.value = f"<span style='color:#b00'>{shown} The passage below is the last one written.</span>"
            return
        message.value = ""
        output.clear_output(wait=True)
        with output:
            print(c["prime"] + text)

    for w in controls.values():
        w.observe(write, names="value")
    reading["button"].on_click(read)
    heading = widgets.HTML(f"<h3 style='margin:0.2em 0'>{title}</h3>"
                           "<p style='margin:0'>Move a slider or type a priming text: the passage is drawn "
                           "again from the model. Give it a text to read first (a scene, a letter, up to "
                           f"{MAX_ADAPT_CHARS:,} characters): it learns from it, then writes.</p>")
    panel = widgets.VBox([heading, *controls.values(), reading["text"],
                          widgets.HBox([reading["seconds"], reading["button"]]), said, message, output],
                         layout=widgets.Layout(border="1px solid #bbb", padding="8px", max_width="52em"))
    panel.controls, panel.reading, panel.said, panel.message, panel.output = controls, reading, said, message, output
    panel.add_class("char-rnn-panel")
    write()
    return panel
