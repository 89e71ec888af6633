"""The notebooks as a person uses them: a real JupyterLab, in headless Chromium, driven by Playwright.

The test starts JupyterLab on 127.0.0.1 (a free port, a token) on copies of notebooks 5 and 3 whose
parameters point at a small run made here, and Debian's Chromium with a remote-debugging port, to which
Playwright connects (no browser download). It runs every cell of notebook 5 and checks the slider panel:
every widget rendered, none shows an error, no label is cut short, moving the temperature slider draws
the passage again, an unknown priming character is answered in the panel, and a text read first lowers
the network's bits per character on it and changes what it writes. Then it runs notebook 3
with a few thousand updates and watches the live plot change while training runs. Screenshots go to
test-artifacts/. Both processes are stopped by their process ids, and every wait is bounded.
"""
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WAIT = 90_000                               # ms: the longest any single wait may take


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def notebook_copy(name, folder, **params):
    """notebooks/name with its parameters cell's assignments replaced by params, written into folder."""
    nb = json.loads((ROOT / "notebooks" / name).read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    source = "".join(cell["source"])
    for key, value in params.items():
        source, n = re.subn(rf"^{key} = .*$", f"{key} = {value!r}", source, flags=re.M)
        assert n == 1, key
    cell["source"] = source.splitlines(keepends=True)
    (folder / name).write_text(json.dumps(nb))


def stop(proc):
    """Stop a process and its children by their process group, then make sure."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """(base URL, token) of a JupyterLab on copies of notebooks 5 and 3, with a small trained run."""
    if CHROMIUM is None:
        pytest.fail("Chromium is missing: `make browser` (part of `make test`) installs Debian's chromium")
    from lib.config import Config
    from lib.training.progress import QUIET
    from lib.training.runs import run
    root = tmp_path_factory.mktemp("lab")
    run(Config(steps=2000, sample_every=1000), None, root / "small-run", show=QUIET)
    notebook_copy("05_synthesis.ipynb", root, run_dir=str(root / "small-run"))
    notebook_copy("03_training.ipynb", root, steps=100_000, sample_every=25_000, run_dir=str(root / "live-run"))
    port, token = free_port(), secrets.token_hex(16)
    settings = root / ".settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)                # no "would you like news?" pop-up over the screenshots
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JUPYTERLAB_SETTINGS_DIR": str(root / ".settings"),
           "JUPYTER_CONFIG_DIR": str(root / ".jupyter"), "IPYTHONDIR": str(root / ".ipython"),
           "JUPYTERLAB_WORKSPACES_DIR": str(root / ".workspaces"), "JUPYTER_RUNTIME_DIR": str(root / ".runtime")}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
         "--ServerApp.port_retries=0", *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=open(root / "server.log", "w"), start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                assert server.poll() is None and time.time() < deadline, (root / "server.log").read_text()[-2000:]
                time.sleep(0.3)
        yield base, token
    finally:
        stop(server)


@pytest.fixture(scope="module")
def page(lab, tmp_path_factory):
    """A Playwright page in Debian's Chromium, started here with a remote-debugging port."""
    from playwright.sync_api import sync_playwright
    profile = tmp_path_factory.mktemp("chromium")
    browser = subprocess.Popen(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--remote-debugging-port=0", "--window-size=1400,1000", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline, endpoint = time.time() + 60, None
        while endpoint is None:
            line = browser.stderr.readline()
            assert line or browser.poll() is None, "chromium ended before it listened"
            assert time.time() < deadline, "chromium did not open its debugging port in 60 s"
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            endpoint = found and found.group(1)
        ARTIFACTS.mkdir(exist_ok=True)
        with sync_playwright() as pw:
            cdp = pw.chromium.connect_over_cdp(endpoint, timeout=WAIT)
            context = cdp.contexts[0] if cdp.contexts else cdp.new_context()
            page = context.new_page()
            page.set_viewport_size({"width": 1400, "height": 1000})
            page.set_default_timeout(WAIT)
            yield page
            cdp.close()
    finally:
        stop(browser)


def open_and_run_all(page, lab, name):
    base, token = lab
    page.goto(f"{base}/lab/tree/{name}?token={token}")
    page.wait_for_function("""(name) => {
        const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
        const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
        return w && w.context && w.context.path.endsWith(name) && k && k.status === 'idle'; }""", arg=name)
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")   # not awaited


def test_the_slider_panel_in_a_real_browser(page, lab):
    open_and_run_all(page, lab, "05_synthesis.ipynb")
    panel = page.locator(".char-rnn-panel")
    panel.wait_for()
    passage = panel.locator(".jp-OutputArea-output pre").first
    passage.wait_for()
    assert "Error displaying widget" not in page.content()
    assert panel.locator(".widget-slider").count() == 3 and panel.locator("input[type=text]").count() == 1
    assert panel.locator("h3").inner_text() == "Try it yourself: the best model writes"
    cut = page.evaluate("""() => [...document.querySelectorAll('.char-rnn-panel .widget-label')]
        .filter(l => l.scrollWidth > l.clientWidth + 1).map(l => l.textContent)""")
    labels = panel.locator(".widget-label").all_inner_texts()
    assert cut == [] and "temperature" in labels, (cut, labels)
    panel.scroll_into_view_if_needed()
    panel.screenshot(path=str(ARTIFACTS / "slider_panel.png"))

    before = passage.inner_text()
    handle = panel.locator(".widget-slider").first.locator(".noUi-handle")
    handle.focus()
    for _ in range(6):                      # temperature 1.0 -> 0.7, as a person moving it with the keys would
        page.keyboard.press("ArrowLeft")
    page.wait_for_function("""(before) => {
        const p = document.querySelector('.char-rnn-panel .jp-OutputArea-output pre');
        return p && p.innerText !== before; }""", arg=before)
    assert panel.locator(".widget-readout").first.inner_text().startswith("0.7")

    prime = panel.locator("input[type=text]")
    prime.fill("Zébra")
    prime.press("Enter")
    message = panel.locator(".widget-html").filter(has_text="Characters not in the vocabulary")
    message.wait_for()
    assert "'é' (U+00E9)" in message.inner_text()
    panel.screenshot(path=str(ARTIFACTS / "slider_panel_message.png"))
    prime.fill("")
    prime.press("Enter")
    message.wait_for(state="hidden")                        # the default priming text wrote again

    before = passage.inner_text()                           # read first: a text to learn from, then write
    panel.locator("textarea").fill("MARCUS. Lavinia, come, Lavinia, let us read.\n" * 20)
    panel.locator("input[type=number]").last.fill("1")
    panel.locator("input[type=number]").last.press("Enter")
    panel.locator("button", has_text="read, then write").click()
    said = panel.locator(".widget-html").filter(has_text="bits per character on them")
    said.wait_for()
    falls = re.search(r"([\d.]+) → ([\d.]+) bits per character", said.inner_text())
    assert falls and float(falls.group(2)) < float(falls.group(1)), said.inner_text()
    page.wait_for_function("""(before) => {
        const p = document.querySelector('.char-rnn-panel .jp-OutputArea-output pre');
        return p && p.innerText !== before; }""", arg=before)
    panel.scroll_into_view_if_needed()
    panel.screenshot(path=str(ARTIFACTS / "slider_panel_read_first.png"))


def test_live_training_in_a_real_browser(page, lab):
    """The plot is an SVG that changes while training runs; at the end one final figure replaces it."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    open_and_run_all(page, lab, "03_training.ipynb")
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    svg, png = (notebook.locator(f".jp-OutputArea-output img[src^='data:image/{kind}']") for kind in ("svg", "png"))
    svg.first.wait_for()
    seen, shot = {svg.first.get_attribute("src")}, False
    deadline = time.time() + 120
    while png.count() == 0:
        assert time.time() < deadline, "training did not end in 120 s"
        if svg.count():
            try:                                    # the final figure may replace the plot between two calls
                seen.add(svg.first.get_attribute("src", timeout=2000))
            except PlaywrightTimeout:
                continue
            if len(seen) >= 3 and not shot:          # the cell's output while it trains: line, plot, samples
                area = svg.first.locator("xpath=ancestor::div[contains(@class, 'jp-OutputArea ')][1]")
                area.scroll_into_view_if_needed()
                area.screenshot(path=str(ARTIFACTS / "live_training.png"))
                shot = True
        time.sleep(0.2)
    assert len(seen) >= 3, "the live plot did not redraw while training ran"
    outputs = notebook.inner_text()
    assert "100,000/100,000" in outputs and "Update 100,000" in outputs
    assert svg.count() == 0 and png.count() == 1                        # only the final figure
