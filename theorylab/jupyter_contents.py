"""JupyterLab shows a chapter as the book does: what the book hides starts collapsed.

The book hides cells by their tags (``hide-input``, ``remove-cell``, ...); JupyterLab knows nothing of
those tags, only of ``metadata.jupyter.source_hidden`` / ``outputs_hidden``, which collapse a cell's
input or output behind a bar the learner can click open. :class:`BookContentsManager` is Jupytext's
contents manager (the chapters are Jupytext Markdown files) with two additions:

* reading a notebook, it collapses, by tag, what the book hides: the code of ``hide-input`` and
  ``remove-input`` cells (the figure and the text they make stay in view), the output of
  ``hide-output`` and ``remove-output`` cells, both for ``hide-cell``, the code of the exercises'
  solutions (a dropdown in the book; not in a student's notebook, where the solution cell is the
  stub to fill in) and of the checks the book removes (``remove-cell``: the hidden checks, which a
  student's notebook does not contain at all);
* saving, it drops those flags again from the cells that carry such a tag, so that opening and saving
  a chapter in JupyterLab leaves its file as it was.

``theorylab.jupyter_setup`` makes it the server's contents manager.
"""

from __future__ import annotations

import copy

from jupytext import AsyncTextFileContentsManager

#: tag -> the ``metadata.jupyter`` flags that tag sets when the notebook is opened.
COLLAPSED_BY_TAG = {
    "hide-input": ("source_hidden",),
    "remove-input": ("source_hidden",),
    "hide-output": ("outputs_hidden",),
    "remove-output": ("outputs_hidden",),
    "hide-cell": ("source_hidden", "outputs_hidden"),
    "remove-cell": ("source_hidden", "outputs_hidden"),
    "solution": ("source_hidden",),
}


def _is_student_notebook(notebook: dict) -> bool:
    return notebook.get("metadata", {}).get("theorylab", {}).get("version") == "student"


def _flags(cell, notebook: dict) -> set[str]:
    tags = cell.get("metadata", {}).get("tags", []) or []
    if "solution" in tags and _is_student_notebook(notebook):
        return set()         # the stub the student fills in (the book hides the solution's code)
    return {flag for tag in tags for flag in COLLAPSED_BY_TAG.get(tag, ())}


def collapse_as_the_book_does(notebook: dict) -> dict:
    """Set ``metadata.jupyter`` flags on the cells of ``notebook`` (a notebook dict, changed in place)
    whose tags hide something in the book; returns it."""
    for cell in notebook.get("cells", []):
        flags = _flags(cell, notebook)
        if flags:
            jupyter = cell.setdefault("metadata", {}).setdefault("jupyter", {})
            jupyter.update(dict.fromkeys(flags, True))
    return notebook


def drop_book_flags(notebook: dict) -> dict:
    """The inverse of :func:`collapse_as_the_book_does`, before a save (changes ``notebook`` in place)."""
    for cell in notebook.get("cells", []):
        flags = _flags(cell, notebook)
        jupyter = cell.get("metadata", {}).get("jupyter")
        if not flags or not isinstance(jupyter, dict):
            continue
        for flag in flags:
            jupyter.pop(flag, None)
        if not jupyter:
            del cell["metadata"]["jupyter"]
    return notebook


class BookContentsManager(AsyncTextFileContentsManager):
    """Jupytext's contents manager, showing notebooks collapsed as the book shows them (see above)."""

    async def get(self, path, content=True, type=None, format=None, **kwargs):
        model = await super().get(path, content=content, type=type, format=format, **kwargs)
        if model.get("type") == "notebook" and isinstance(model.get("content"), dict):
            collapse_as_the_book_does(model["content"])
        return model

    async def save(self, model, path=""):
        if model.get("type") == "notebook" and isinstance(model.get("content"), dict):
            model = {**model, "content": drop_book_flags(copy.deepcopy(model["content"]))}
        return await super().save(model, path)
