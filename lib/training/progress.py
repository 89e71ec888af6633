"""What a training run shows while it runs: a progress line, the samples as they are drawn and, in
Jupyter, a smooth-loss plot that redraws every second or two.

In a terminal, the progress line is redrawn in place and samples are printed between its redraws. In
Jupyter, the line and the plot are displays whose content is replaced, so an executed notebook (and the
PDF made from it) holds only their final state: the last line and one final figure, never a stuck bar.
The plot drawn during training is a small SVG built by hand (about a millisecond); the final figure is
drawn once, with matplotlib, when training ends.

Two views (lib/training/loop.py's View says what a view does): Progress, the line and the plot, and Lines, plain
lines of text for the samples and messages (no progress bar). Show, what a caller of lib/training/runs.py's
run() asks to see, makes the one that fits.
"""
import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from lib.training.loop import View
from lib.sample import sample_line


def in_jupyter():
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def svg_curve(values, marks=(), width=560, height=200, title=""):
    """An SVG line plot of values (n,) with dashed vertical lines at the indices in marks."""
    n = len(values)
    if n < 2:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
                f'<text x="10" y="20" font-size="12">{title}: waiting for the first updates</text></svg>')
    every = max(1, n // 400)
    v = np.asarray(values[::every], dtype=float)
    lo, hi = float(np.min(v)), float(np.max(v))
    hi = hi if hi > lo else lo + 1
    x0, y0, w, h = 50, 24, width - 60, height - 50

    def x(i):
        return x0 + w * i / (n - 1)

    def y(val):
        return y0 + h * (hi - val) / (hi - lo)
    points = " ".join(f"{x(i * every):.1f},{y(val):.1f}" for i, val in enumerate(v))
    lines = "".join(f'<line x1="{x(s):.1f}" x2="{x(s):.1f}" y1="{y0}" y2="{y0 + h}" stroke="grey" '
                    f'stroke-dasharray="4,3"/>' for s in marks if 0 < s < n)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
            f'font-size="11"><text x="{x0}" y="14">{title}</text>'
            f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#ccc"/>{lines}'
            f'<polyline points="{points}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>'
            f'<text x="{x0 - 4}" y="{y0 + 4}" text-anchor="end">{hi:.1f}</text>'
            f'<text x="{x0 - 4}" y="{y0 + h}" text-anchor="end">{lo:.1f}</text>'
            f'<text x="{x0}" y="{height - 10}">1</text>'
            f'<text x="{x0 + w}" y="{height - 10}" text-anchor="end">update {n:,}</text></svg>')


class Lines(View):
    """Each sample (with show_samples) and each message as lines of text, given to log."""

    def __init__(self, log=print, show_samples=True):
        self.log, self.show_samples = log, show_samples

    def sample(self, s):
        if self.show_samples:
            self.log(sample_line(s))

    def say(self, line):
        self.log(line)


class Progress(View):
    """view = Progress(total, start); view.update(state) after each update; view.sample(s); view.close(state).

    total: updates in all; budget: seconds, when time rather than updates ends the run; seq_length: T, for
    the axis of the final figure; log: where a terminal shows samples and messages; show_samples: whether
    samples are shown; plot: the live plot in Jupyter.
    """

    def __init__(self, total, start=0, every=0.25, width=12, stream=None, budget=None, seq_length=25, log=print,
                 show_samples=True, plot=True, plot_every=1.5):
        self.total, self.start, self.every, self.width, self.budget = total, start, every, width, budget
        self.seq_length, self.log, self.plot_every, self.show_samples = seq_length, log, plot_every, show_samples
        self.stream = stream or sys.stderr
        self.t0 = self.last = self.last_plot = time.perf_counter()
        self.handle = self.plot = None
        if stream is None and in_jupyter():
            from IPython.display import display
            self.handle = display(self._bundle(start, None), raw=True, display_id=True)
            if plot:
                self.plot = display({"text/plain": ""}, raw=True, display_id=True)

    def line(self, step, smooth_loss, seconds=None):
        """The progress line; seconds: the training time to show (default: since this view began)."""
        start = self.start if seconds is None else 0
        seconds = time.perf_counter() - self.t0 if seconds is None else seconds
        if self.budget:
            frac, count = min(1.0, seconds / self.budget), f"{step:,} updates"
        else:
            frac, count = step / self.total, f"{step:>{len(str(self.total))},}/{self.total:,}"
        bar = "#" * int(self.width * frac) + "-" * (self.width - int(self.width * frac))
        loss = "" if smooth_loss is None else f"  smooth loss {smooth_loss:8.3f}"
        done = step - start
        rate = f"  {seconds / done * 1e6:5.0f} us/update" if done else ""
        return f"[{bar}] {count}{loss}  {seconds:6.1f} s{rate}"

    def _bundle(self, step, smooth_loss, seconds=None):
        text = self.line(step, smooth_loss, seconds)
        html = (f'<progress value="{step}" max="{self.total}" style="width:20em"></progress> '
                f'<code>{text.split("] ", 1)[1]}</code>')
        return {"text/plain": text, "text/html": html}

    def _draw(self, state, seconds=None):
        if self.handle is not None:
            self.handle.update(self._bundle(state.step, state.smooth_loss, seconds), raw=True)
        else:
            self.stream.write("\r" + self.line(state.step, state.smooth_loss, seconds))
            self.stream.flush()

    def update(self, state, force=False, seconds=None):
        """After each update: redraw the line every `every` seconds, the plot every `plot_every`."""
        now = time.perf_counter()
        if force or now - self.last >= self.every:
            self.last = now
            self._draw(state, seconds)
        if self.plot is not None and (force or now - self.last_plot >= self.plot_every):
            self.last_plot = now
            svg = svg_curve(state.smooth_losses[:state.step], state.epoch_starts[1:],
                            title=f"smooth loss, {self.seq_length} characters (nats); dashed: a new epoch")
            self.plot.update({"image/svg+xml": svg, "text/plain": "smooth loss"}, raw=True)

    def sample(self, s):
        """Show a sample as it is drawn: its update and smooth loss, then its text."""
        if not self.show_samples:
            return
        if self.handle is not None:
            from lib.report.show import show_samples
            show_samples([s])
            return
        self.stream.write("\r" + " " * (len(self.line(self.total, 0.0)) + 8) + "\r")
        self.last = 0.0
        self.log(sample_line(s))

    def say(self, line):
        self.log(line)

    def close(self, state):
        """The final line (the run's own training time) and, in Jupyter, one final figure of the smooth
        loss in the plot's place."""
        self.update(state, force=True, seconds=state.seconds)
        if self.plot is not None and state.step:
            import base64
            import io

            import matplotlib.pyplot as plt

            from lib.report import plots
            fig = plots.smooth_loss(state, self.seq_length, size=(8, 3))
            data = {}
            for fmt, mime in (("png", "image/png"), ("pdf", "application/pdf")):
                buf = io.BytesIO()
                fig.savefig(buf, format=fmt, dpi=110)
                data[mime] = base64.b64encode(buf.getvalue()).decode("ascii")
            plt.close(fig)
            self.plot.update({**data, "text/plain": "the smooth loss of this run"}, raw=True)
        if self.handle is None:
            self.stream.write("\n")
            self.stream.flush()


@dataclass(frozen=True)
class Show:
    """What a run shows while it runs (run()'s `show`): progress, a progress line (and in Jupyter the live
    plot) or not; log, where lines of text go (the facts of the run, samples, messages; None: nowhere);
    samples, whether the samples are shown as they are drawn."""
    progress: bool = True
    log: Optional[Callable[[str], None]] = print
    samples: bool = True

    def say(self, line):
        if self.log is not None:
            self.log(line)

    def view(self, cfg, start, budget):
        """The View of a run of cfg from update start (budget: its max_seconds, or None)."""
        log = self.log or (lambda line: None)
        if self.progress:
            return Progress(cfg.steps, start, budget=budget, seq_length=cfg.seq_length, log=log,
                            show_samples=self.samples)
        return Lines(log, self.samples)


QUIET = Show(progress=False, log=None)      # nothing at all: the search's trials, parallel seeds, the tests
