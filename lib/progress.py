"""A one-line progress bar: redrawn in place in a terminal, or as one updating output in Jupyter.

In Jupyter the bar is a display whose content is replaced, so an executed notebook (and the PDF made
from it) holds only its final state, never a stuck 0%.
"""
import sys
import time


def _in_jupyter():
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class Progress:
    """progress = Progress(total, start); progress.update(step, smooth_loss); progress.close()."""

    def __init__(self, total, start=0, every=0.25, width=12, stream=None, budget=None):
        """total: updates in all; budget: seconds, when time rather than updates ends the run."""
        self.total, self.start, self.every, self.width, self.budget = total, start, every, width, budget
        self.stream = stream or sys.stderr
        self.t0 = self.last = time.perf_counter()
        self.handle = None
        if stream is None and _in_jupyter():
            from IPython.display import display
            self.handle = display(self._bundle(start, None), raw=True, display_id=True)

    def line(self, step, smooth_loss):
        seconds = time.perf_counter() - self.t0
        if self.budget:
            frac, count = min(1.0, seconds / self.budget), f"{step:,} updates"
        else:
            frac, count = step / self.total, f"{step:>{len(str(self.total))},}/{self.total:,}"
        bar = "#" * int(self.width * frac) + "-" * (self.width - int(self.width * frac))
        loss = "" if smooth_loss is None else f"  smooth loss {smooth_loss:8.3f}"
        done = step - self.start
        rate = f"  {seconds / done * 1e6:5.0f} us/update" if done else ""
        return f"[{bar}] {count}{loss}  {seconds:6.1f} s{rate}"

    def _bundle(self, step, smooth_loss):
        text = self.line(step, smooth_loss)
        html = (f'<progress value="{step}" max="{self.total}" style="width:20em"></progress> '
                f'<code>{text.split("] ", 1)[1]}</code>')
        return {"text/plain": text, "text/html": html}

    def clear(self):
        """Wipe the terminal line, so that other output can be printed; the bar comes back on update."""
        if self.handle is None:
            self.stream.write("\r" + " " * (len(self.line(self.total, 0.0)) + 8) + "\r")
            self.stream.flush()
            self.last = 0.0

    def update(self, step, smooth_loss, force=False):
        now = time.perf_counter()
        if not force and now - self.last < self.every:
            return
        self.last = now
        if self.handle is not None:
            self.handle.update(self._bundle(step, smooth_loss), raw=True)
        else:
            self.stream.write("\r" + self.line(step, smooth_loss))
            self.stream.flush()

    def close(self, step, smooth_loss):
        self.update(step, smooth_loss, force=True)
        if self.handle is None:
            self.stream.write("\n")
            self.stream.flush()
