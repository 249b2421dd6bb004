"""End to end in a real browser: every chapter opens in JupyterLab as a notebook, its Explore panel
runs and answers a moved control, and the chapter reads as the book does.

The test starts JupyterLab on 127.0.0.1 with a token, on a copy of ``book/`` (JupyterLab may save
what it opens), drives Debian's headless Chromium through Playwright, and for each chapter

1. opens ``NN-*.md`` by its URL: the Jupytext Notebook viewer must be the default for ``.md``;
2. runs the first Explore panel's cell and the cells it needs (``tests/cell_dependencies.py``: the
   cells that bind the names it reads, found statically), one by one as a learner would, and asserts no
   cell shows an error. Not the whole chapter: nbval runs every chapter whole already, and a second
   whole run here doubled the test suite's time; a dependency the analysis missed fails as a
   ``NameError``, never silently;
3. moves the first slider of the chapter's Explore panel one step with the keyboard, as a learner
   would, and asserts that the panel's figure was redrawn (a different image) without an error,
   recording how long the redraw took as seen in the page;
4. checks what a learner sees: no raw MyST syntax (``:::{``, ``{eq}``, ``{prf:``, ``{cite``) in any
   rendered Markdown cell (jupyterlab-myst renders it), at least one rendered equation, the code the
   book hides shown collapsed (exactly the cells ``theorylab.jupyter_contents`` collapses by their
   tags), and the Explore panel's controls inside the cell's width, each at least ``MIN_CONTROL_PX``
   wide;
5. saves a screenshot as ``_build/browser/NN-*.png`` and the measurements as ``NN-*.json``.

The same learner's-view checks run on one student notebook from ``theorylab assignments release``
(where the solution cells, the stubs to fill in, are not collapsed).

Chromium is a system package (``make test`` installs it with apt-get when missing); without it the
test fails and says how to install it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import jupytext
import nbformat
import pytest
from cell_dependencies import cells_needed

from theorylab import chapters

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "_build" / "browser"
CHAPTERS = [path.name for path in chapters.find_chapters(ROOT / "book")]
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
MIN_CONTROL_PX = 150      # a slider narrower than this is a bare handle
RUN_TIMEOUT_S = 300        # the panel's cells run in seconds to a minute on two cores
REDRAW_TIMEOUT_S = 30      # a redraw takes well under a second; this only bounds a hung kernel


def chromium_path() -> str:
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("Chromium is not installed, so the chapters cannot be tested in a browser. `make test` "
                "installs it with `apt-get install -y chromium` (Debian's package; needs root or sudo); "
                "install it that way, or put a chromium executable on PATH, and run the tests again.")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a copy of the book; yields its base URL, token and root folder, then
    stops it."""
    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "book", root / "book")
    port, token = free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}   # kernels run as readers'
    # Every cell in the page (JupyterLab otherwise attaches only the cells near the viewport), so that
    # the learner's-view checks see every Markdown cell.
    settings = root / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    env["JUPYTERLAB_SETTINGS_DIR"] = str(root / "settings")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    log = open(root / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--allow-root",
         "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(f"JupyterLab did not start:\n{(root / 'jupyterlab.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield url, token, root
    finally:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def browser():
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True,
                                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


# JavaScript run in the page through the JupyterLab application object (exposed by
# --LabApp.expose_app_in_browser): the notebook that is open, and the state of its cells.
NOTEBOOK_STATE = """() => {
  if (!window.jupyterapp || !window.jupyterapp.shell) return null;
  const widget = window.jupyterapp.shell.currentWidget;
  if (!widget || !widget.content || !widget.content.model || !widget.sessionContext) return null;
  const cells = Array.from(widget.content.model.cells);
  const code = cells.filter(c => c.type === 'code');
  const errors = [];
  code.forEach((c, i) => c.outputs.toJSON().forEach(o => {
    if (o.output_type === 'error') errors.push(`code cell ${i + 1}: ${o.ename}: ${o.evalue}`);
  }));
  return {
    path: widget.context ? widget.context.path : null,
    model: widget.context ? widget.context.factoryName : null,   // 'notebook': opened as a notebook
    kernel: widget.sessionContext.session && widget.sessionContext.session.kernel
      ? widget.sessionContext.session.kernel.name : null,
    kernel_display: widget.sessionContext.kernelDisplayName,
    status: widget.sessionContext.kernelDisplayStatus,
    cells: code.length,
    run: code.filter(c => c.executionCount !== null).length,
    errors,
  };
}"""

FIRST_PANEL = """() => {
  const slider = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .widget-slider');
  if (!slider) return null;
  const panel = slider.closest('.widget-vbox');
  const image = panel && panel.querySelector('img.widget-image');
  const errors = panel ? panel.querySelectorAll(
      '.widget-output [data-mime-type="application/vnd.jupyter.stderr"]').length : 0;
  const label = slider.querySelector('.widget-label');
  const value = slider.querySelector('.widget-readout');
  return {label: label ? label.textContent : '', value: value ? value.textContent : '',
          image: image ? image.src : null, errors};
}"""


# What a learner sees in the open notebook: the rendered Markdown cells' text (searched for MyST
# syntax left raw), the rendered equations, and the first Explore panel's controls against its cell.
LEARNER_VIEW = """() => {
  const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  const widget = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!nb || !widget || !widget.content || !widget.content.model) return null;
  const cells = Array.from(widget.content.model.cells).filter(c => c.type === 'markdown').length;
  const rendered = Array.from(nb.querySelectorAll('.jp-MarkdownCell.jp-mod-rendered'));
  const raw = [];
  for (const el of rendered) {
    const text = el.innerText || '';      // the rendered text: the hidden editor is not in innerText
    for (const token of [':::{', '{eq}', '{prf:', '{cite', '{ref}', '(label)=']) {
      if (text.includes(token)) raw.push(token + ' in: ' + text.slice(0, 80).replace(/\\s+/g, ' '));
    }
  }
  const math = nb.querySelectorAll('.jp-MarkdownCell .katex, .jp-MarkdownCell mjx-container, '
                                   + '.jp-MarkdownCell .MathJax').length;
  const controls = [];
  const slider = nb.querySelector('.widget-slider');
  if (slider) {
    const row = slider.closest('.widget-hbox');
    const cell = slider.closest('.jp-Cell');
    const limit = cell.getBoundingClientRect().right + 1;
    for (const c of row.children) {
      const box = c.getBoundingClientRect();
      controls.push({width: Math.round(box.width), inside: box.right <= limit});
    }
  }
  const collapsed = widget.content.widgets.map((w, i) => (w.model.type === 'code' && w.inputHidden) ? i : -1)
                                          .filter(i => i >= 0);
  return {cells, markdown: rendered.length, raw: raw.slice(0, 10), math, controls, collapsed};
}"""


# Runs the code cells at the given positions (among code cells), one after another, as a learner
# selecting each and pressing Ctrl-Enter would; returns at once (the test polls NOTEBOOK_STATE).
RUN_CELLS = """(positions) => {
  const app = window.jupyterapp;
  const notebook = app.shell.currentWidget.content;
  const code = notebook.widgets.map((w, i) => w.model.type === 'code' ? i : -1).filter(i => i >= 0);
  (async () => {
    for (const p of positions) {
      notebook.activeCellIndex = code[p];
      notebook.deselectAll();
      await app.commands.execute('notebook:run-cell');
    }
  })();
}"""


def panel_cells(nb) -> list[int]:
    """The positions among the code cells of ``nb`` of its first Explore panel's cell (the first that
    calls ``explore(``) and of the cells that panel needs."""
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    panel = next((i for i, source in enumerate(sources) if "explore(" in source), None)
    assert panel is not None, "no cell calls explore(: the chapter has no Explore panel"
    return cells_needed(sources, panel)


def collapsed_as_in_the_book(nb) -> list[int]:
    """The positions of the cells of ``nb`` whose code JupyterLab must show collapsed
    (theorylab.jupyter_contents)."""
    from theorylab.jupyter_contents import collapse_as_the_book_does

    nb = collapse_as_the_book_does(nb)
    return [i for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and c.metadata.get("jupyter", {}).get("source_hidden", False)]


def check_learner_view(page, where: str, *, panel: bool, collapsed: list[int]) -> dict:
    """Scroll through the notebook (cells render as they come into view), then assert what a learner
    sees (``collapsed``: the cells whose code shows collapsed, as the book hides them); returns the
    measurements."""
    page.evaluate("""async () => {
      const scroller = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer')
                    || document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
      if (!scroller) return;
      for (let y = 0; y < scroller.scrollHeight; y += 600) {
        scroller.scrollTop = y; await new Promise(r => setTimeout(r, 40));
      }
    }""")
    # jupyterlab-myst typesets a cell's math after rendering its text: wait for both (slower under load).
    view = wait_for(page, LEARNER_VIEW,
                    lambda v: bool(v) and v["cells"] and v["markdown"] == v["cells"] and v["math"] > 0, 90,
                    f"every Markdown cell of {where} to render, with its equations")
    assert not view["raw"], f"{where}: MyST shown raw to a learner: {view['raw']}"
    assert view["math"] > 0, f"{where}: no rendered equation"
    assert collapsed and view["collapsed"] == collapsed, (
        f"{where}: cells {view['collapsed']} shown collapsed, where the book hides {collapsed}")
    if panel:
        assert view["controls"], f"{where}: no Explore controls found"
        narrow = [c for c in view["controls"] if c["width"] < MIN_CONTROL_PX or not c["inside"]]
        assert not narrow, f"{where}: controls too narrow or outside the cell: {view['controls']}"
    return view


def wait_for(page, script, predicate, timeout_s, what, poll_s=0.25):
    deadline = time.monotonic() + timeout_s
    state = None
    while time.monotonic() < deadline:
        state = page.evaluate(script)
        if predicate(state):
            return state
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}; last state: {state}")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_runs_and_its_panel_responds(lab, browser, chapter):
    url, token, _ = lab
    OUT.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    result = {"chapter": chapter}
    try:
        page.goto(f"{url}/lab/workspaces/test-{chapter[:2]}/tree/book/{chapter}?reset&token={token}")
        state = wait_for(page, NOTEBOOK_STATE, lambda s: bool(s) and s["kernel"] and s["status"] == "idle",
                         120, f"{chapter} to open as a notebook with an idle kernel")
        result.update(path=state["path"], opened_as=state["model"], kernel=state["kernel_display"])
        assert state["path"] == f"book/{chapter}" and state["model"] == "notebook", \
            f"{chapter} did not open as a notebook by default: {state}"
        assert "theorylab" in state["kernel_display"], \
            f"{chapter} started {state['kernel_display']!r}, not theorylab's kernel (make installs it)"

        needed = panel_cells(jupytext.read(ROOT / "book" / chapter))
        start = time.monotonic()
        page.evaluate(RUN_CELLS, needed)
        state = wait_for(page, NOTEBOOK_STATE,
                         lambda s: s["errors"] or (s["run"] == len(needed) and s["status"] == "idle"),
                         RUN_TIMEOUT_S, f"the cells {needed} of {chapter} (its Explore panel's) to run")
        result.update(cells=state["cells"], cells_run=needed, errors=state["errors"],
                      run_s=round(time.monotonic() - start, 1))
        assert not state["errors"], f"{chapter}: cells show errors: {state['errors']}"

        before = wait_for(page, FIRST_PANEL, lambda s: bool(s) and s["image"], 30,
                          f"the Explore panel of {chapter} to draw")
        handle = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .widget-slider .noUi-handle").first
        handle.scroll_into_view_if_needed()
        start = time.monotonic()
        handle.focus()
        page.keyboard.press("ArrowRight")
        after = wait_for(page, FIRST_PANEL, lambda s: s["image"] != before["image"] or s["errors"],
                         REDRAW_TIMEOUT_S, f"the Explore panel of {chapter} to redraw", poll_s=0.02)
        result.update(control=before["label"].strip(), value_before=before["value"],
                      value_after=after["value"], output_changed=after["image"] != before["image"],
                      redraw_s=round(time.monotonic() - start, 2), panel_errors=after["errors"])
        page.wait_for_timeout(300)
        page.screenshot(path=OUT / f"{Path(chapter).stem}.png")
        assert after["errors"] == 0, f"{chapter}: the panel's redraw printed an error"
        assert after["value"] != before["value"], f"{chapter}: the slider did not move"
        assert after["image"] != before["image"]
        view = check_learner_view(page, chapter, panel=True,
                                  collapsed=collapsed_as_in_the_book(jupytext.read(ROOT / "book" / chapter)))
        result.update(markdown_cells=view["markdown"], equations=view["math"], controls=view["controls"],
                      collapsed=view["collapsed"])
    finally:
        (OUT / f"{Path(chapter).stem}.json").write_text(json.dumps(result, indent=2))
        page.close()


def test_a_student_notebook_reads_as_the_book_does(lab, browser):
    """A released student notebook: MyST rendered, equations shown (no cell needs to run)."""
    from theorylab import assignments

    url, token, root = lab
    chapter = assignments.find_chapters(ROOT / "book", [CHAPTERS[0][:2]])
    assignments.release(chapter, root / "released")
    name = f"released/student/{chapter[0].stem}.ipynb"
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{url}/lab/workspaces/test-student/tree/{name}?reset&token={token}")
        wait_for(page, NOTEBOOK_STATE, lambda s: bool(s) and s["path"] == name, 120, f"{name} to open")
        released = nbformat.read(root / name, as_version=4)
        view = check_learner_view(page, name, panel=False, collapsed=collapsed_as_in_the_book(released))
        page.screenshot(path=OUT / "student-notebook.png")
        (OUT / "student-notebook.json").write_text(json.dumps(view, indent=2))
    finally:
        page.close()
