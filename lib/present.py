"""Showing samples and passages in the notebooks: a bold heading (Markdown), then the text as plain
output, which keeps its spaces and line breaks in Jupyter and is wrapped, not cut, in the PDF."""
from IPython.display import Markdown, display


def show_samples(samples):
    """The samples drawn during training, each under a line with its update and smooth loss."""
    for s in samples:
        loss = "before training" if s["smooth_loss"] is None else f"smooth loss {s['smooth_loss']:.2f}"
        display(Markdown(f"**Update {s['step']:,}** ({loss})"))
        print(s["text"])


def show_passages(rows):
    """rows: dicts with temperature, top_p and text; each under a heading."""
    for r in rows:
        display(Markdown(f"**temperature {r['temperature']}, top-p {r['top_p']}**"))
        print(r["text"])
