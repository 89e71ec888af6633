"""Showing samples and passages in the notebooks, all alike: a bold heading (Markdown), then the text as
plain output, which keeps its spaces and line breaks in Jupyter and is one fixed-width block in the PDF."""
from IPython.display import Markdown, display


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
