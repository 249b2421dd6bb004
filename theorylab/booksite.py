"""The online book is built from executed chapters: a copy of the book for mystmd in which every
chapter of the table of contents is its executed notebook.

``make book`` executes each chapter once (``python -m theorylab.reproduce --out DIR``, which also
writes the claims report), stages the copy with this module and builds it with ``myst build``
(without ``--execute``); the book's test (tests/test_book.py) stages the executions its own run
shared with nbval. mystmd offers a page's source file as the page's download, so a chapter page
built from its executed ``.ipynb`` offers that notebook, with the outputs the page shows, ready to
open in JupyterLab or Colab.

An exercise's solution code is shown inside its Solution dropdown (``fold_solution_code``), where a
reader looks for it, not in a separate "Source" dropdown after it.

    python -m theorylab.booksite --executed _build/book-run/executed --out _build/book-site
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat
import yaml


def toc_files(config_text: str) -> list[str]:
    """The files of the table of contents of a ``myst.yml``, in order."""
    return [entry["file"] for entry in yaml.safe_load(config_text)["project"]["toc"]]


def is_chapter(path: Path) -> bool:
    """A chapter is a jupytext MyST notebook; the other pages (intro, notation, ...) are plain."""
    return path.suffix == ".md" and "format_name: myst" in path.read_text(encoding="utf-8")[:400]


def fold_solution_code(nb) -> None:
    """Show each solution cell's code inside the ``{solution}`` block just before it, in place.

    A chapter writes an exercise's solution as a ``{solution}`` dropdown in Markdown followed by a code
    cell tagged ``solution`` (the code the grader's checks run). On the page the code goes at the end of
    the dropdown as a Python block and the code cell's own input is removed (``remove-input``; the cell
    stays in the notebook, so the download still runs). Raises ``ValueError`` when a solution cell does
    not follow a Markdown cell that ends its text with a ``{solution}`` block."""
    for i, cell in enumerate(nb.cells):
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.cell_type != "code" or "solution" not in tags:
            continue
        before = nb.cells[i - 1] if i > 0 else None
        lines = before.source.rstrip().splitlines() if before and before.cell_type == "markdown" else []
        openings = [k for k, line in enumerate(lines) if line.startswith(":::") and "{solution}" in line]
        fence = openings and lines[openings[-1]].split("{")[0]       # ':::' (or more colons)
        if not fence or lines[-1].strip() != fence:
            raise ValueError(f"solution cell {i} does not follow a Markdown cell ending with a {{solution}} "
                             "block: the book shows solution code inside that block")
        code = cell.source.strip("\n")
        before.source = "\n".join([*lines[:-1], "", "```python", code, "```", fence]) + "\n"
        cell.metadata["tags"] = [t for t in tags if t != "hide-input"] + ["remove-input"]


def carry_short_title(nb) -> None:
    """A chapter's ``short_title`` (in its front matter; the sidebar, the tab and prev/next show it in
    place of a long title) as front matter of the first Markdown cell, where mystmd reads a notebook's.

    jupytext keeps front-matter keys it does not know in the notebook's metadata; mystmd does not read
    them there."""
    short = nb.metadata.pop("short_title", None)
    if not short:
        return
    first = next((cell for cell in nb.cells if cell.cell_type == "markdown"), None)
    if first is None:
        raise ValueError("a chapter with a short_title has no Markdown cell to carry it")
    first.source = f"---\nshort_title: {json.dumps(short)}\n---\n\n" + first.source


def stage(config: Path, executed: Callable[[Path], Path], out: Path) -> Path:
    """Copy the book of ``config`` (a ``myst.yml``) into ``out``, every chapter replaced by the
    executed notebook ``executed(chapter)``, and return the staged ``myst.yml``.

    The folders of the table of contents are copied whole (figures, ``_static``, the bibliography);
    ``out`` is emptied first."""
    config = Path(config).resolve()
    root = config.parent
    text = config.read_text(encoding="utf-8")
    files = toc_files(text)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for folder in sorted({Path(file).parts[0] for file in files if len(Path(file).parts) > 1}):
        shutil.copytree(root / folder, out / folder,
                        ignore=shutil.ignore_patterns("_build", ".ipynb_checkpoints"))
    for file in files:
        source = root / file
        if len(Path(file).parts) == 1:
            shutil.copy(source, out / file)
        if not is_chapter(source):
            continue
        notebook = Path(executed(source))
        if not notebook.exists():
            raise FileNotFoundError(f"no executed notebook for {file}: {notebook}")
        nb = nbformat.read(str(notebook), as_version=4)
        nb.metadata.pop("jupytext", None)       # mystmd warns about jupytext's keys in an .ipynb
        fold_solution_code(nb)
        carry_short_title(nb)
        (out / file).unlink()
        staged = Path(file).with_suffix(".ipynb").as_posix()
        nbformat.write(nb, str(out / staged))
        text = text.replace(f"file: {file}\n", f"file: {staged}\n")
    staged_config = out / "myst.yml"
    staged_config.write_text(text, encoding="utf-8")
    return staged_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m theorylab.booksite", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("myst.yml"), help="the book's myst.yml")
    parser.add_argument("--executed", type=Path, required=True,
                        help="folder of executed chapters, NAME.ipynb for book/NAME.md "
                             "(what python -m theorylab.reproduce --out DIR writes to DIR/executed)")
    parser.add_argument("--out", type=Path, required=True, help="folder to stage the book in (emptied)")
    args = parser.parse_args(argv)
    try:
        staged = stage(args.config, lambda chapter: args.executed / f"{chapter.stem}.ipynb", args.out)
    except FileNotFoundError as exc:
        print(f"booksite: {exc}", file=sys.stderr)
        return 1
    print(f"booksite: staged {staged}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
