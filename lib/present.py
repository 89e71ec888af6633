"""Showing samples and passages in the notebooks, all alike: a bold heading (Markdown), then the text as
plain output, which keeps its spaces and line breaks in Jupyter and is one fixed-width block in the PDF."""
import html

import numpy as np
from IPython.display import HTML, Markdown, display


def show_text(heading, text):
    """A heading, then the text."""
    display(Markdown(f"**{heading}**"))
    print(text)


def show_samples(samples):
    """The samples drawn during training, each under a line with its update and smooth loss."""
    for s in samples:
        loss = "before training" if s["smooth_loss"] is None else f"smooth loss {s['smooth_loss']:.2f}"
        show_text(f"Update {s['step']:,} ({loss})", s["text"])


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
