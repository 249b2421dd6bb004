"""What a reader must never see on a built page (mystmd's ``_build/site/content/*.json``).

Used by ``test_book.py`` on the real build and tested on planted pages in ``test_page_checks.py``.
"""

from __future__ import annotations

import re

#: Characters a claim's output line may take before the book's output column scrolls.
COLUMN = 93
CLAIM_REPR = re.compile(r"\bClaim\(id=")
WIDGET_REPRS = re.compile(r"\b(VBox\(|HBox\(|Image\(value=|IntSlider\(|FloatSlider\(|Dropdown\()")
CLAIM_LINE = re.compile(r"^\[(PASS|FAIL)\] ")


def _text(value) -> str:
    if isinstance(value, dict):          # mystmd stores {"content": ..., "content_type": ...}
        value = value.get("content", "")
    if isinstance(value, list):
        value = "".join(map(str, value))
    return value if isinstance(value, str) else ""


def _outputs(node):
    if isinstance(node, dict):
        if "output_type" in node:
            yield node
        for value in node.values():
            yield from _outputs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _outputs(item)


def page_problems(page: dict, *, widgets: bool = True) -> list[str]:
    """Everything wrong with one page: raw reprs in shown text, LaTeX in titles, long claim lines.

    ``widgets=False`` skips the widget reprs (an Explore panel's text/plain fallback), which the book
    still shows today (issue 23, item 2)."""
    problems = []
    front = page.get("frontmatter", {})
    for key in ("title", "short_title"):
        title = front.get(key) or ""
        if "$" in title or "\\" in title:
            problems.append(f"{key} holds LaTeX ({title!r}): write it in plain Unicode")
    for output in _outputs(page.get("mdast", page)):
        kind = output.get("output_type")
        if kind == "stream":
            text = _text(output.get("text"))
        elif kind in ("execute_result", "display_data"):
            data = output.get("data", {})
            if any(k in data for k in ("text/html", "image/png", "text/markdown", "image/svg+xml")):
                continue   # the page shows the richer format, not the text/plain repr
            text = _text(data.get("text/plain"))
        else:
            continue
        pattern = re.compile("|".join([CLAIM_REPR.pattern] + ([WIDGET_REPRS.pattern] if widgets else [])))
        for match in pattern.finditer(text):
            problems.append(f"a raw repr is shown: {text[match.start():match.start() + 60]!r}")
        for line in text.splitlines():
            if CLAIM_LINE.match(line) and len(line) > COLUMN:
                problems.append(f"a claim line is wider than the column ({len(line)} > {COLUMN}): "
                                f"{line[:60]!r}")
    return problems
