"""Build the report: execute the numbered notebooks in order, then join them into one PDF.

    python -m lib.report [--only assignment] [--steps 100000] [--corpus PATH] [--out report]

writes OUT/01_data.ipynb .. OUT/09_search.ipynb (executed) and OUT/report.pdf; with --only assignment,
notebooks 1-5 alone (the data, the gradient check, training, the smooth loss, the passage) and
OUT/assignment.pdf, the report a student hands in. The full run trains in runs/assignment (the folder
notebooks 4 and 5 read when opened in Jupyter); a run with other --steps trains in runs/steps-N, with
samples every N/10 updates. A complete run there is loaded, not trained again. The PDF shows no code but
its appendix (lib/rnn.py whole, one update, the sampler); the cells tagged "interactive" are not executed
here (see without_interactive) and so are not in it.
"""
import datetime
import inspect
import logging
import math
import re
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import nbformat

from lib.data import ROOT
from lib.util.files import atomic_path, write_bytes

NOTEBOOKS = ("01_data.ipynb", "02_gradcheck.ipynb", "03_training.ipynb", "04_smooth_loss.ipynb",
             "05_synthesis.ipynb", "06_extensions.ipynb", "07_ladder.ipynb", "08_insight.ipynb", "09_search.ipynb")
PARTS = {"all": (NOTEBOOKS, "report.pdf"), "assignment": (NOTEBOOKS[:5], "assignment.pdf")}   # --only
FULL_STEPS = 100_000
MIN_HELD_OUT = 1000     # held-out characters the notebooks read at least (notebook 8's units and gradients)
TITLE = "Teaching a computer to write, one character at a time"


def parameters(name, steps, corpus, run_dir, figures_dir, ext_dir, ladder_dir=None, seed_dir=None):
    """The papermill parameters for one notebook. A run shorter than the full one also gets a
    proportionally shorter extension (at least 2 s a set-up) on a smaller held-out part (2%). The report
    overwrites a run folder that holds another run (another corpus, say), keeping the old run aside."""
    common = {"corpus": corpus} if corpus else {}
    scale = steps / FULL_STEPS
    small = steps < FULL_STEPS
    extension = {} if not small else {
        "budget_seconds": max(2.0, 45 * scale), "val_fraction": 0.02, "val_chars": max(20_000, int(320_000 * scale))}
    ladder = {} if not small else {"budget_seconds": max(2.0, 45 * scale), "val_fraction": 0.02, "val_checks": 2,
                                   "tune_chars": 2000}
    seeds = {} if not small else {"n_seeds": 2, "steps": steps, "val_fraction": 0.02}
    return {
        "01_data.ipynb": {**common, "figures_dir": figures_dir},
        "02_gradcheck.ipynb": common,
        "03_training.ipynb": {**common, "steps": steps, "sample_every": max(1, steps // 10), "run_dir": run_dir,
                              "overwrite": True},
        "04_smooth_loss.ipynb": {"run_dir": run_dir, "figures_dir": figures_dir},
        "05_synthesis.ipynb": {"run_dir": run_dir},
        "06_extensions.ipynb": {**common, **extension, "run_root": ext_dir, "figures_dir": figures_dir,
                                "overwrite": True},
        "07_ladder.ipynb": {**common, **ladder, "run_root": ladder_dir, "figures_dir": figures_dir, "overwrite": True},
        "08_insight.ipynb": {**common, **seeds, "seed_root": seed_dir, "ladder_root": ladder_dir,
                             "extension_root": ext_dir, "figures_dir": figures_dir, "overwrite": True},
        "09_search.ipynb": {"figures_dir": figures_dir},
    }[name]


class NotebookFailed(RuntimeError):
    """A notebook raised an error while the report was built."""


def _ipc_kernel_manager():
    """A kernel manager on Unix sockets: private to this user (a TCP kernel warns that its traffic is
    unencrypted). None on Windows, where papermill's default is used."""
    if sys.platform == "win32":
        return None
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        transport = "ipc"
        stderr = None               # a file for the kernel process's own stderr (execute() sets it)

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            if IPCKernelManager.stderr is not None:
                kw["stderr"] = IPCKernelManager.stderr
            return await super()._async_launch_kernel(kernel_cmd, **kw)
    return IPCKernelManager


def execute(out_dir, steps=FULL_STEPS, corpus=None, run_dir=None, figures_dir="figures", progress=True,
            notebooks=NOTEBOOKS, ext_dir=None):
    """Run each notebook with its parameters into out_dir; returns the executed notebooks' paths.

    run_dir: the training run of notebooks 3-5; ext_dir: the folder of notebook 6's runs; notebooks 7 and
    8 keep theirs beside it (ladder/, seeds/ in place of extensions/).
    """
    import papermill
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run_dir = run_dir or ("runs/assignment" if steps == FULL_STEPS else f"runs/steps-{steps}")
    ext_dir = ext_dir or ("runs/extensions" if steps == FULL_STEPS else f"runs/steps-{steps}-extensions")
    ladder_dir, seed_dir = (str(ext_dir).replace("extensions", word) if "extensions" in str(ext_dir) else
                            f"{ext_dir}-{word}" for word in ("ladder", "seeds"))
    paths, manager = [], _ipc_kernel_manager()
    for i, name in enumerate(notebooks, 1):
        if progress:
            print(f"[{i}/{len(notebooks)}] {name}", flush=True)
        out, failed = out_dir / name, None
        kernel_log = out_dir / f"{Path(name).stem}.kernel.log"   # what the kernel process itself writes
        with atomic_path(out, suffix=".part.ipynb") as tmp, open(kernel_log, "w") as log, _logged_to(log):
            if manager:                     # (worker processes' tracebacks, say): kept out of the way
                manager.stderr = log
            try:
                papermill.execute_notebook(
                    without_interactive(ROOT / "notebooks" / name), str(tmp), kernel_name="python3",
                    cwd=str(ROOT / "notebooks"),
                    parameters=parameters(name, steps, corpus, run_dir, figures_dir, ext_dir, ladder_dir, seed_dir),
                    progress_bar=progress, **({"kernel_manager_class": manager} if manager else {}))
            except papermill.PapermillExecutionError as err:
                failed = [f"stopped with {err.ename}: {' '.join(err.evalue.split())}", f"cell {err.exec_count}",
                          f"the executed notebook is {out}"]
            except Exception as err:        # the kernel died, did not start, or a cell timed out
                failed = [_kernel_trouble(err)] + ([f"the notebook as far as it ran is {out}"]
                                                   if tmp.stat().st_size else [])
        if not kernel_log.stat().st_size:
            kernel_log.unlink()
        elif failed:
            failed.append(f"what its kernel wrote besides is in {kernel_log}")
        if out.exists() and not out.stat().st_size:
            out.unlink()                    # nothing ran: no empty notebook left behind
        if failed:
            raise NotebookFailed(f"{name} {failed[0]}" + (f" ({'; '.join(failed[1:])})" if failed[1:] else ""))
        paths.append(out)
    return paths


@contextmanager
def _logged_to(stream):
    """papermill's and nbclient's own messages ("Kernel died while waiting for execute reply", say) into
    stream, the notebook's kernel log, instead of before the report's one line."""
    handler = logging.StreamHandler(stream)
    loggers = [logging.getLogger(name) for name in ("papermill", "nbclient", "traitlets")]
    kept = [(lg, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.propagate = False
    try:
        yield
    finally:
        for lg, propagate in kept:
            lg.removeHandler(handler)
            lg.propagate = propagate


def _kernel_trouble(err):
    """What the report says when papermill stops without a cell's error: the kernel died (out of memory,
    most often), did not start, or a cell timed out."""
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    if isinstance(err, NoSuchKernel):
        return ("could not start: this environment has no Jupyter kernel named python3 (`make setup` installs "
                "ipykernel)")
    if isinstance(err, DeadKernelError):
        return "stopped: its kernel died, out of memory or killed"
    if isinstance(err, CellTimeoutError):
        return "stopped: a cell timed out"
    raise err


def without_interactive(path):
    """The notebook at path without its cells tagged "interactive" (the slider panel, the HTML view of the
    units), which the PDF leaves out: executed headless, a cell that displays widgets can wait forever for a
    reply the kernel has sent (jupyter/nbclient issue 312). They run in Jupyter, and the browser test
    drives the panel there."""
    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if "interactive" not in c.metadata.get("tags", [])]
    return nb


def merged(paths, intro):
    """One notebook: a title cell, the cells of every notebook in paths, and the code appendix."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = nbformat.read(paths[0], as_version=4).metadata
    nb.metadata["title"] = TITLE
    nb.metadata["authors"] = [{"name": "DD2424 Assignment 4, reproduced"}]
    nb.cells.append(nbformat.v4.new_markdown_cell(intro))
    for path in paths:
        for cell in nbformat.read(path, as_version=4).cells:
            tags = cell.metadata.get("tags", [])
            if "interactive" in tags or "parameters" in tags or "injected-parameters" in tags:
                continue
            if cell.cell_type == "markdown":   # "# 1. The data" -> "# The data": LaTeX numbers sections
                cell.source = re.sub(r"^# \d+\. ", "# ", cell.source)
            nb.cells.append(cell)
    nb.cells.append(nbformat.v4.new_markdown_cell(appendix()))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
    return nb


def appendix():
    """The appendix, as Markdown, in three pieces: the model file whole (lib/rnn.py), one update of the
    assignment with its AdaGrad step, and the sampler, highlighted."""
    from lib import optim, sample
    from lib.training import loop
    source = inspect.getsource
    parts = [("The model, `lib/rnn.py`", "", (ROOT / "lib" / "rnn.py").read_text()),
             ("One update, from `lib/training/loop.py` and `lib/optim.py`",
              "`kernels.clip_adagrad_` runs the clip and the AdaGrad step below in one compiled pass where "
              "`lib/model/_kernels.c` is built, with the same bits.\n\n",
              "\n\n".join(source(f) for f in (loop.assignment_step, optim.clip_, optim.adagrad_step_))),
             ("Drawing a passage, from `lib/sample.py`", "",
              "\n\n".join(source(f) for f in (sample.next_char_probs, sample.sample)))]
    return "# Appendix: the code\n\n" + "\n\n".join(f"## {title}\n\n{note}```python\n{code.rstrip()}\n```"
                                                    for title, note, code in parts)


def whole_tables(latex):
    """No page break inside a table: every row of a longtable ends in \\\\* (longtable then starts a table
    that does not fit on the next page)."""
    out, inside = [], False
    for line in latex.split("\n"):
        inside = inside or line.startswith("\\begin{longtable}")
        if inside and line.rstrip().endswith("\\\\"):
            line = line.rstrip() + "*"
        inside = inside and not line.startswith("\\end{longtable}")
        out.append(line)
    return "\n".join(out)


def to_pdf(nb, path):
    """Convert a notebook to PDF with nbconvert (XeLaTeX), without code or prompts."""
    missing = [tool for tool in ("xelatex", "pandoc") if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(
            f"{' and '.join(missing)} not found: the PDF needs XeLaTeX and pandoc. On Debian or Ubuntu run "
            "`make tex`; elsewhere see docs/setup.md (MacTeX or TeX Live, and pandoc).")
    from nbconvert import PDFExporter
    exporter = PDFExporter(template_file=str(Path(__file__).with_name("latex.tex.j2")))
    exporter.register_filter("whole_tables", whole_tables)
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    pdf, _ = exporter.from_notebook_node(nb)
    write_bytes(path, pdf)


def build(out_dir="report", steps=FULL_STEPS, corpus=None, run_dir=None, figures_dir="figures", progress=True,
          ext_dir=None, only="all"):
    """Execute the notebooks (only="assignment": notebooks 1-5) and write out_dir/report.pdf (or
    assignment.pdf); returns its path."""
    t0 = time.perf_counter()
    notebooks, name = PARTS[only]
    paths = execute(out_dir, steps, corpus, run_dir, figures_dir, progress, notebooks, ext_dir)
    corpus_name = Path(corpus).name if corpus else "the default corpus (goblet_book.txt if present in data/)"
    beyond = ("" if only == "assignment" else
              "; then, beyond the assignment, Adam, mini-batches and a validation loss, a ladder of yardsticks "
              "with gated cells (GRU, LSTM), what the network learned and how much one run is worth, and what an "
              "automatic search for the best network found")
    intro = (
        "This report reproduces KTH DD2424 Assignment 4: a vanilla recurrent neural network, written from "
        "scratch in NumPy, learns to write by predicting the next character of a book. Its sections are the "
        "project's notebooks, executed in order: the data, the gradient check, training, the smooth "
        f"loss and synthesis{beyond}. The model's code is in the appendix.\n\n"
        f"Built by `make report{' ONLY=assignment' if only == 'assignment' else ''}` on "
        f"{datetime.date.today().isoformat()} with {steps:,} updates on {corpus_name}.")
    pdf = Path(out_dir) / name
    to_pdf(merged(paths, intro), pdf)
    print(f"wrote {pdf} and the executed notebooks in {out_dir}/ in {time.perf_counter() - t0:.0f} s")
    return pdf


def check_before(out_dir, steps, corpus, only="all"):
    """What the report needs, checked before any notebook runs (they take minutes): the PDF's tools, the
    output folder and the report's file in it, and a corpus long enough for every notebook's held-out part."""
    from lib import data
    from lib.util import files
    missing = [tool for tool in ("xelatex", "pandoc") if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(f"The PDF needs {' and '.join(missing)}, which this machine lacks: `make tex` installs "
                           "them (see docs/setup.md for other systems).")
    files.check_folder(out_dir, f"--out {out_dir}")
    notebooks, name = PARTS[only]
    text = data.load_corpus(corpus)
    files.output_file(Path(out_dir) / name, "the report", inputs=[("the text", text.path)])
    smallest = min(p.get("val_fraction", 0.1) for p in (parameters(name, steps, corpus, "", "", "")
                                                         for name in notebooks))
    need = int(math.ceil(MIN_HELD_OUT / smallest))
    if text.n_chars < need:
        raise data.CorpusError(f"{text.path} has {text.n_chars:,} characters; the report's notebooks hold out "
                               f"{smallest:.0%} of the text and read at least {MIN_HELD_OUT:,} held-out characters, "
                               f"so they need {need:,}. Use a longer text.")
