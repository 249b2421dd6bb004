"""The online book's content: mystmd builds every page offline with no warning.

The HTML theme is downloaded from the MyST template service at build time, which this machine cannot
reach; everything up to it (parsing, cross-references, citations, outputs, the page JSON) is built
here. The test runs on a copy of the book, fails on any warning or error that is not the theme's
download, and checks that every page of the table of contents was built with its executed outputs.

The chapters are not executed again here: each is replaced in the copy by its executed notebook from
this test run (nbval's execution of it, shared through the ``executed_chapter`` fixture of the root
conftest), which mystmd reads with its outputs. `make book` stages the same copy
(``theorylab.booksite``) from its own execution of the chapters, so a chapter page's download is
the executed notebook.
"""

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from page_checks import page_problems, png_size

from theorylab.booksite import fold_solution_code, stage

ROOT = Path(__file__).resolve().parents[1]
PROGRESS_BAR = re.compile(r"\d+/\d+ \[\d\d:\d\d")    # tqdm's "300/600 [00:01<00:01, ...]"
THEME_DOWNLOAD = re.compile(r"api\.mystmd\.org/templates|Querying template metadata|To list valid templates")


def toc_files():
    config = yaml.safe_load((ROOT / "myst.yml").read_text())
    return [entry["file"] for entry in config["project"]["toc"]]


def myst_executable() -> str:
    path = Path(sys.executable).parent / "myst"
    if not path.exists():
        pytest.fail("mystmd is not installed in this environment (it comes with the dev extra: make test "
                    "installs it); the book's content cannot be validated")
    return str(path)


def is_chapter(file: str) -> bool:
    return "format_name: myst" in (ROOT / file).read_text()[:400]


@pytest.fixture(scope="module")
def built(tmp_path_factory, executed_chapter):
    work = tmp_path_factory.mktemp("site")
    stage(ROOT / "myst.yml", executed_chapter, work)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    process = subprocess.Popen([myst_executable(), "build"], cwd=work, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=900)
    finally:
        try:  # mystmd can leave its Jupyter server running
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    return work, output, process.returncode


def test_no_warnings_or_errors(built):
    _, output, returncode = built
    problems = [line for line in output.splitlines()
                if (any(mark in line for mark in ("⚠️", "❌", "⛔")) or re.search(r"\berror\b", line, re.I))
                and not THEME_DOWNLOAD.search(line)]
    assert not problems, "mystmd reported:\n" + "\n".join(problems)
    if returncode != 0:
        assert THEME_DOWNLOAD.search(output), f"myst build failed (exit {returncode}):\n{output[-3000:]}"


def test_every_toc_page_built_with_outputs(built):
    work, output, _ = built
    content = work / "_build" / "site" / "content"
    pages = {p.stem: json.loads(p.read_text()) for p in content.glob("*.json")}
    assert len(pages) == len(toc_files()), f"built {sorted(pages)} for toc {toc_files()}"
    for file in toc_files():
        if not is_chapter(file):
            continue  # a plain page, no code to execute
        built_as = file[:-3] + ".ipynb"
        page = next((body for body in pages.values() if body.get("location", "").endswith(built_as)), None)
        assert page is not None, f"{file} was not built"
        dumped = json.dumps(page)
        assert '"image/png"' in dumped, f"{file}: no figure among the executed outputs"
        assert '"ename"' not in dumped, f"{file}: an executed cell raised an error"
        assert not PROGRESS_BAR.search(dumped), f"{file}: a progress bar is among the rendered outputs"


def built_pages(work: Path) -> dict[str, dict]:
    """The built pages by the file of the table of contents they come from (``book/NN-*.md`` for a
    chapter built from its executed notebook)."""
    pages = {}
    for path in (work / "_build" / "site" / "content").glob("*.json"):
        page = json.loads(path.read_text())
        location = page.get("location", "").lstrip("/")
        pages[location[:-6] + ".md" if location.endswith(".ipynb") else location] = page
    return pages


def test_pages_show_readers_no_reprs_no_latex_titles_no_overlong_claims_no_overwide_figures(built):
    work, _, _ = built
    public = work / "_build" / "site" / "public"
    problems = [f"{p.stem}: {problem}" for p in sorted((work / "_build" / "site" / "content").glob("*.json"))
                for problem in page_problems(json.loads(p.read_text()),
                                             image_size=lambda path: png_size(public / path.lstrip("/")))]
    assert not problems, "\n".join(problems)


def test_chapters_are_numbered_in_order_and_the_other_pages_are_not(built):
    pages = built_pages(built[0])
    chapters = [file for file in toc_files() if is_chapter(file)]
    assert chapters, "no chapter in the table of contents"
    for number, file in enumerate(chapters, start=1):
        assert pages[file]["frontmatter"].get("enumerator") == str(number), \
            f"{file}: numbered {pages[file]['frontmatter'].get('enumerator')!r}, expected {number}"
    for file in set(toc_files()) - set(chapters):
        assert not pages[file]["frontmatter"].get("enumerator"), f"{file} is numbered like a chapter"


#: The longest title the book-theme's sidebar shows on two lines at 1400 px (issue 23); a longer one
#: needs a ``short_title`` in the page's front matter.
SIDEBAR_TITLE_CHARS = 40


def test_every_page_has_a_sidebar_title_that_fits(built):
    shown = {file: page["frontmatter"].get("short_title") or page["frontmatter"].get("title", "")
             for file, page in built_pages(built[0]).items()}
    long = {file: title for file, title in shown.items() if not title or len(title) > SIDEBAR_TITLE_CHARS}
    assert not long, f"titles missing or over {SIDEBAR_TITLE_CHARS} characters (give a short_title): {long}"


def test_chapter_pages_offer_their_executed_notebook_for_download(built):
    work, _, _ = built
    pages = built_pages(work)
    for file in (f for f in toc_files() if is_chapter(f)):
        exports = pages[file]["frontmatter"].get("exports", [])
        notebook = next((e for e in exports if e.get("format") == "ipynb"), None)
        assert notebook and notebook["filename"] == Path(file).with_suffix(".ipynb").name, \
            f"{file}: downloads {[e.get('filename') for e in exports]}"
        download = work / "_build" / "site" / "public" / notebook["url"].lstrip("/")
        cells = json.loads(download.read_text())["cells"]
        outputs = [o for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])]
        assert any("image/png" in o.get("data", {}) for o in outputs), f"{file}: the download has no figures"
        assert not any(o.get("output_type") == "error" for o in outputs), f"{file}: the download has an error"


def _nodes(node, kind):
    if isinstance(node, dict):
        if node.get("type") == kind:
            yield node
        for value in node.values():
            yield from _nodes(value, kind)
    elif isinstance(node, list):
        for item in node:
            yield from _nodes(item, kind)


def test_solution_code_shows_inside_its_solution_dropdown_and_nowhere_else(built):
    pages = built_pages(built[0])
    for file in (f for f in toc_files() if is_chapter(f)):
        solutions = list(_nodes(pages[file]["mdast"], "solution"))
        assert solutions, f"{file}: no solution on the page"
        without = [i for i, node in enumerate(solutions, 1)
                   if not any(code.get("lang") == "python" for code in _nodes(node, "code"))]
        assert not without, f"{file}: solutions {without} show no code"
        shown = [code["value"] for code in _nodes(pages[file]["mdast"], "code")
                 if code.get("executable") and code.get("visibility") != "remove"]
        inside = {code["value"].strip() for node in solutions for code in _nodes(node, "code")}
        assert not inside & {value.strip() for value in shown}, f"{file}: solution code shown twice"


def test_folding_solution_code_needs_the_solution_block_just_before_it():
    import nbformat

    cell = nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["solution", "hide-input"]})
    good = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(":::{solution} ex\nwhy\n:::"), cell])
    fold_solution_code(good)
    assert good.cells[0].source == ":::{solution} ex\nwhy\n\n```python\nx = 1\n```\n:::\n"
    assert good.cells[1].metadata["tags"] == ["solution", "remove-input"]
    bad = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("text"), nbformat.v4.new_code_cell(
        "x = 1", metadata={"tags": ["solution"]})])
    with pytest.raises(ValueError, match="solution cell 1"):
        fold_solution_code(bad)


def test_landing_page_shows_the_subtitle_and_the_byline_is_the_project():
    config = yaml.safe_load((ROOT / "myst.yml").read_text())
    intro = yaml.safe_load((ROOT / "book" / "intro.md").read_text().split("---")[1])
    assert intro["subtitle"] == config["project"]["subtitle"]
    assert [a["name"] for a in config["project"]["authors"]] == ["The theorylab project"]
    for option in ("favicon", "logo", "style"):       # files the HTML theme copies into the site
        assert (ROOT / config["site"]["options"][option]).is_file(), option


def test_deploy_workflow_builds_the_html_site_and_publishes_it():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    runs = [step.get("run", "") for step in build["steps"]]
    assert "make book" in runs
    assert build["env"]["BOOK_REQUIRE_HTML"] == "1"     # no silent content-only fallback online
    upload = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "_build/html"
    assert deploy["needs"] == "build"
    assert any(s.get("uses", "").startswith("actions/deploy-pages") for s in deploy["steps"])


def test_launch_buttons_point_at_the_repository_and_binder_environment():
    project = yaml.safe_load((ROOT / "myst.yml").read_text())["project"]
    repo = project["github"].removeprefix("https://github.com/")
    assert project["jupyter"]["binder"]["repo"] == repo
    assert (ROOT / "environment.yml").exists() and os.access(ROOT / "postBuild", os.X_OK)
    # a chapter page is built from book/NN-*.ipynb, which its launch button opens: Binder writes it
    assert "jupytext --quiet --to ipynb" in (ROOT / "postBuild").read_text()


def test_bibliography_page_cites_every_entry():
    keys = set(re.findall(r"^@\w+\{([^,]+),", (ROOT / "book" / "references.bib").read_text(), re.M))
    cited = set()
    for roles in re.findall(r"\{cite:[pt]\}`([^`]+)`", (ROOT / "book" / "bibliography.md").read_text()):
        cited.update(key.strip() for key in roles.split(";"))
    assert keys and keys == cited, f"not on the bibliography page: {sorted(keys - cited)}; " \
                                   f"unknown: {sorted(cited - keys)}"
    assert "book/bibliography.md" in toc_files()
