"""The notebooks, executed headless with small parameters (papermill, the python3 kernel), and the report."""
import json
import re
import shutil
import subprocess

import nbformat
import pytest

from conftest import assert_figure
from lib.report import pdf as report
from lib.data import load_corpus

STEPS = 400


def outputs_text(path):
    """All text the executed notebook shows: streams, plain text and Markdown outputs."""
    parts = []
    for cell in nbformat.read(path, as_version=4).cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                parts.append(out.text)
            elif out.output_type in ("display_data", "execute_result"):
                parts.append(out.data.get("text/markdown", out.data.get("text/plain", "")))
            elif out.output_type == "error":
                parts.append("\n".join(out.traceback))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("notebooks")


@pytest.fixture(scope="module")
def executed(workdir):
    """All the notebooks run in order, sharing one run folder and one figures folder."""
    paths = report.execute(workdir / "out", steps=STEPS, run_dir=str(workdir / "run"),
                              figures_dir=str(workdir / "figures"), progress=False, ext_dir=str(workdir / "ext"))
    return {p.name: p for p in paths}


def test_every_notebook_is_committed_clean():
    for path in sorted((report.ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") and not c.get("execution_count") for c in nb.cells
                   if c.cell_type == "code"), path.name
        assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), path.name


def test_data_notebook(executed, workdir):
    text = outputs_text(executed["01_data.ipynb"])
    assert f"K = {load_corpus().vocab.K} distinct characters" in text and "round trip" in text
    assert_figure(workdir / "figures" / "char_frequencies.png")


def test_gradcheck_notebook_table_has_small_errors(executed):
    text = outputs_text(executed["02_gradcheck.ipynb"])
    rows = [line for line in text.splitlines() if line.startswith("| ") and line.split("|")[1].strip()
            in ("U", "W", "V", "b", "c")]
    assert len(rows) == 5
    for row in rows:
        assert float(row.split("|")[4]) < 1e-6, row


def test_training_notebook(executed, workdir):
    text = outputs_text(executed["03_training.ipynb"])
    summary = json.loads((workdir / "run" / "summary.json").read_text())
    assert summary["steps"] == STEPS and summary["status"] == "done"
    assert f"{STEPS:,}/{STEPS:,}" in text                  # the progress bar's final state
    assert "0%" not in text
    assert text.count("**Update ") == 11                  # before update 0, every STEPS/10, at the end
    assert sorted(p.name for p in (workdir / "run").iterdir()) == ["checkpoint.npz", "summary.json"]
    nb = nbformat.read(executed["03_training.ipynb"], as_version=4)
    kinds = [k for c in nb.cells for o in c.get("outputs", []) for k in o.get("data", {})]
    assert "image/png" in kinds and "image/svg+xml" not in kinds           # one final figure, no live plot left


def test_smooth_loss_notebook_saves_the_figure(executed, workdir):
    assert_figure(workdir / "figures" / "smooth_loss.png")


def test_synthesis_notebook_writes_1000_characters(executed):
    nb = nbformat.read(executed["05_synthesis.ipynb"], as_version=4)
    streams = [o.text for c in nb.cells for o in c.get("outputs", []) if o.output_type == "stream"]
    assert len(streams[0]) == 1000 + 1                      # the passage and print's newline
    assert len(streams) == 1 + 6                            # and the six temperature/top-p passages


def test_extension_notebook_compares_three_setups(executed, workdir):
    text = outputs_text(executed["06_extensions.ipynb"])
    bits = {}
    for name in ("assignment", "2025", "mine"):
        assert f"| {name} |" in text, name
        info = json.loads((workdir / "ext" / name / "summary.json").read_text())
        assert info["status"] == "budget" and info["best_val_loss_per_char"] < info["uniform_loss"] / 25
        assert info["n_val_chars"] == int(info["n_chars"] * 0.02)
        bits[name] = info["best_val_loss_bits"]
    winner = min(bits, key=bits.get)
    assert f"**{winner}** reaches the lowest validation loss, {bits[winner]:.2f} bits" in text
    assert_figure(workdir / "figures" / "validation.png")


def test_ladder_notebook(executed, workdir):
    from lib import evaluate
    from lib.model import cells
    from lib.data import halves, split
    from lib.training.runs import load_run
    text = outputs_text(executed["07_ladder.ipynb"])
    for rung in ("uniform", "unigram", "Kneser-Ney n-gram (", "PPMd (order", "gzip", "bz2", "lzma",
                 "assignment's RNN", "tuned RNN", "GRU", "LSTM"):
        assert f"| {rung}" in text, rung
    assert "| rung | static | adaptive |" in text
    assert "| predicting | share of characters |" in text and "| all |" in text
    for network in ("assignment", "tuned-rnn", "gru", "lstm"):
        info = json.loads((workdir / "ext-ladder" / network / "summary.json").read_text())
        assert info["status"] == "budget" and info["best_val_loss_bits"] < 6.2
        assert info["n_validated_chars"] == info["n_val_chars"] // 2
        assert f" | {info['n_params']:,} | {info['steps']:,} |" in text, network
    run = load_run(workdir / "ext-ladder" / "assignment")      # its static figure: the second half, recomputed
    book = load_corpus()
    train_part, held = split(book.data, run.cfg)
    cell = cells.of(run.cfg)
    static = evaluate.static_bits(cell, run.cfg, cell.views(run.state.best_theta, book.vocab.K, run.cfg.m),
                                  train_part, held, evaluate.start_state(run))
    assert f"| assignment's RNN (m = 100) | {halves(static)[1].mean():.3f} | " in text
    assert "Reading while it learns, the same network reaches **" in text
    for name in ("ladder", "reading_gain", "reading_passage"):
        assert_figure(workdir / "figures" / f"{name}.png")


def test_insight_notebook(executed, workdir):
    text = outputs_text(executed["08_insight.ipynb"])
    for feature in ("inside quotation marks", "position in the line", "start of a word", "a vowel next"):
        assert f"| {feature} |" in text, feature
    assert sorted(p.name for p in (workdir / "ext-seeds").iterdir()) == ["seed-0", "seed-1"]
    held = [json.loads((workdir / "ext-seeds" / s / "summary.json").read_text())["best_val_loss_bits"]
            for s in ("seed-0", "seed-1")]
    assert "| range | " in text and f" | {abs(held[0] - held[1]):.3f} |" in text      # the seeds' spread
    assert f"the held-out loss {abs(held[0] - held[1]):.3f} bits per character" in text
    for name in ("units", "gradient_norms", "seed_band"):
        assert_figure(workdir / "figures" / f"{name}.png")


def test_search_notebook_reads_the_stored_study(executed, workdir):
    """Notebook 9 reads data/search/ (it never searches): its facts, importances and the two recipes."""
    from lib.search import journal
    study, best = journal.load(report.ROOT / "data" / "search")
    facts = journal.facts(study)
    text = outputs_text(executed["09_search.ipynb"])
    assert f"The study holds {facts['trials']} trials ({facts['complete']} complete, {facts['pruned']} pruned" in text
    assert "| setting | found by hand | found by the search |" in text and "| cell | gru |" in text
    assert f"{best['best_val_loss_bits']:.3f} bits per character" in text and "Traceback" not in text
    for name in ("search_history", "search_importances"):
        assert_figure(workdir / "figures" / f"{name}.png")


def test_rerunning_training_gives_the_same_results_and_no_new_files(executed, workdir):
    first = outputs_text(executed["03_training.ipynb"])
    again = report.execute(workdir / "again", steps=STEPS, run_dir=str(workdir / "run"),
                           figures_dir=str(workdir / "figures"), progress=False,
                           notebooks=("03_training.ipynb",))[0]
    second = outputs_text(again)
    samples = lambda t: t[t.index("**Update 0 "):]         # noqa: E731
    assert samples(first) == samples(second)
    assert "loading the complete run" in second
    assert sorted(p.name for p in (workdir / "run").iterdir()) == ["checkpoint.npz", "summary.json"]


def test_notebook_opened_before_training_says_which_to_run(workdir):
    with pytest.raises(report.NotebookFailed, match=r"04_smooth_loss.ipynb stopped with FileNotFoundError.*"
                                                    r"03_training.ipynb first"):
        report.execute(workdir / "early", steps=STEPS, run_dir=str(workdir / "no-run-here"),
                       figures_dir=str(workdir / "figures"), progress=False,
                       notebooks=("04_smooth_loss.ipynb",))


def pdf_pages(pdf):
    """The text of each page (pdftotext -layout)."""
    out = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    return out.split("\f")


def tables(nb):
    """(first row, last row) of every Markdown table the report shows, each as a list of its cells."""
    found = []
    sources = [c.source for c in nb.cells if c.cell_type == "markdown"]
    sources += [o.data["text/markdown"] for c in nb.cells for o in c.get("outputs", [])
                if "text/markdown" in o.get("data", {})]
    for source in sources:
        rows = [line for line in source.splitlines()       # the rows, not the rule under the header
                if line.startswith("|") and not re.fullmatch(r"\|[\s:|-]+\|", line.strip())]
        if len(rows) >= 3:
            found.append(tuple([cell.strip().strip("*") for cell in r.split("|")[1:-1]] for r in (rows[1], rows[-1])))
    return found


@pytest.fixture(scope="module")
def pdf(executed, workdir):
    """The small report, built once from the executed notebooks' runs."""
    assert shutil.which("pdftotext"), "pdftotext is missing: `make tex` installs it (poppler-utils)"
    return report.build(workdir / "report", steps=STEPS, run_dir=str(workdir / "run"),
                           figures_dir=str(workdir / "figures"), progress=False, ext_dir=str(workdir / "ext"))


def test_small_report_pdf(pdf, workdir):
    pages = pdf_pages(pdf)
    text = "\n".join(pages)
    for title in ("Teaching a computer to write", "The data", "Gradient check", "Training",
                  "The smooth loss", "Synthesis", "Temperature and nucleus",
                  "Extension: Adam, mini-batches and a validation loss", "A passage from each",
                  "The ladder", "Where counting still wins", "What the network learned",
                  "Why does the vanilla RNN forget", "How much is one run worth", "What an automatic search found",
                  "Which settings matter", "Appendix: the code"):
        assert title in text, title
    assert "Contents" in pages[0] + pages[1] and "Appendix: the code" in pages[0] + pages[1]   # a table of contents
    assert "max relative" in text and "largest relative error" in text
    passage = nbformat.read(workdir / "report" / "05_synthesis.ipynb", as_version=4)
    first_line = next(o.text for c in passage.cells for o in c.get("outputs", [])
                      if o.output_type == "stream").strip().splitlines()[0][:30].strip()
    assert first_line in text
    for unwanted in ("IntSlider", "FloatSlider", "interactive(", "0%|", "Warning", "Traceback", "Try it yourself",
                     "Error displaying widget"):
        assert unwanted not in text, unwanted


def test_no_line_of_the_appendix_wraps(pdf):
    """Every line of the appendix's code is one line of the PDF: the code's font fits its longest line."""
    lines = {" ".join(line.split()) for page in pdf_pages(pdf) for line in page.splitlines()}
    code = "\n".join(block.split("\n", 1)[1].split("```")[0] for block in report.appendix().split("```python")[1:])
    source = [" ".join(line.split()) for line in code.splitlines()]
    missing = [line for line in source if line and not any(line in pdf_line for pdf_line in lines)]
    assert missing == [], missing[:3]


def test_no_table_is_split_across_pages(pdf, workdir):
    pages = pdf_pages(pdf)
    merged = report.merged(sorted((workdir / "report").glob("0*.ipynb")), "intro")
    checked = 0
    def row(cells):                 # a row as pdftotext lays it out: its first cell, then the next one's start
        return re.compile(re.escape(cells[0]) + r"\s+" + re.escape(cells[1][:6]))
    for first, last in tables(merged):
        on = [i for i, page in enumerate(pages) if row(first).search(page)]
        if not on or not first[0] or not last[0]:
            continue
        assert row(last).search(pages[on[0]]), f"the table from {first[0]!r} to {last[0]!r} continues after " \
                                              f"page {on[0] + 1}"
        checked += 1
    assert checked >= 5


def test_pages_render(pdf, tmp_path):
    """Each page of the PDF renders to an image (pdftoppm), as a reader's viewer would."""
    subprocess.run(["pdftoppm", "-r", "30", "-png", str(pdf), str(tmp_path / "page")], check=True)
    images = sorted(tmp_path.glob("page-*.png"))
    assert len(images) == len(pdf_pages(pdf)) - 1 and all(p.stat().st_size > 1000 for p in images)


def test_the_appendix_prints_the_model_file_whole_in_three_pieces():
    appendix = report.appendix()
    assert appendix.count("\n## ") == 3
    model = (report.ROOT / "lib" / "rnn.py").read_text()
    assert model.rstrip() in appendix
    assert "for t in range(T):" in model and "for t in reversed(range(T)):" in model   # both loops, in the file


def test_the_assignment_report_holds_notebooks_1_to_5_and_the_appendix(executed, workdir):
    """`make report ONLY=assignment`: the report a student hands in, from the runs the notebooks made."""
    made = report.build(workdir / "assignment", steps=STEPS, run_dir=str(workdir / "run"),
                     figures_dir=str(workdir / "figures"), progress=False, ext_dir=str(workdir / "ext"),
                     only="assignment")
    assert made.name == "assignment.pdf"
    pages = pdf_pages(made)
    text = "\n".join(pages)
    for title in ("The data", "Gradient check", "Training", "The smooth loss", "Synthesis", "Appendix: the code",
                  "def loss_and_grads(P, X, Y, h0, G):", "def assignment_step(", "def sample("):
        assert title in text, title
    for beyond in ("The ladder", "What the network learned", "What an automatic search found", "Extension: Adam"):
        assert beyond not in text, beyond
    assert sorted(p.name for p in (workdir / "assignment").glob("*.ipynb")) == list(report.NOTEBOOKS[:5])
    assert len(pages) - 1 <= 16             # about a dozen pages (pdftotext ends with an empty page)
