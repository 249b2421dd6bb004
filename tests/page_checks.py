"""What a reader must never see on a built page (mystmd's ``_build/site/content/*.json``).

Used by ``test_book.py`` on the real build and tested on planted pages in ``test_page_checks.py``.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from pathlib import Path

#: Characters a claim's output line may take before the book's output column scrolls.
COLUMN = 93
CLAIM_REPR = re.compile(r"\bClaim\(id=")
WIDGET_REPRS = re.compile(r"\b(VBox\(|HBox\(|Image\(value=|IntSlider\(|FloatSlider\(|Dropdown\()")
CLAIM_LINE = re.compile(r"^\[(PASS|FAIL)\] ")
#: The width of the text column in CSS pixels (book-theme in a 1400 px window, measured in Chromium,
#: issue 23). A wider figure is scaled down to it.
COLUMN_PX = 727
#: How much wider than the column a figure may be. The figures' smallest text is 9 pt (legends), 12.5 px
#: at the 100 dpi a figure is laid out at; scaled down by more than 12.5 / 9 it falls below 9 px.
MAX_OVERFLOW = 12.5 / 9


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


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) in pixels of a PNG file, from its header."""
    with open(path, "rb") as fh:
        head = fh.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG file")
    return struct.unpack(">II", head[16:24])


def shown_width(output: dict, image_size: Callable[[str], tuple[int, int]]) -> float | None:
    """The width in CSS pixels at which the page lays out an output's PNG before fitting it to the
    column: the width in the output's metadata (retina figures store their display size there, half
    their pixels), else the PNG's own width in pixels. None for an output without a PNG."""
    png = output.get("data", {}).get("image/png")
    if not png:
        return None
    width = (output.get("metadata", {}).get("image/png") or {}).get("width")
    if width:
        return float(width)
    path = png.get("path", "") if isinstance(png, dict) else ""
    return float(image_size(path)[0]) if path else None


def page_problems(page: dict, *, widgets: bool = True,
                  image_size: Callable[[str], tuple[int, int]] | None = None) -> list[str]:
    """Everything wrong with one page: raw reprs in shown text, LaTeX in titles, long claim lines,
    and, given ``image_size`` (a figure's ``path`` on the page -> its PNG's pixel size), figures
    too wide for the column.

    ``widgets=False`` skips the widget reprs (an Explore panel's text/plain fallback)."""
    problems = []
    front = page.get("frontmatter", {})
    for key in ("title", "short_title"):
        title = front.get(key) or ""
        if "$" in title or "\\" in title:
            problems.append(f"{key} holds LaTeX ({title!r}): write it in plain Unicode")
    for output in _outputs(page.get("mdast", page)):
        kind = output.get("output_type")
        width = shown_width(output, image_size) if image_size is not None else None
        if width is not None and width > COLUMN_PX * MAX_OVERFLOW:
            problems.append(f"a figure is {width:.0f} px wide, {width / COLUMN_PX:.2f}x the {COLUMN_PX} px "
                            f"column (at most {MAX_OVERFLOW:.2f}x): its text shrinks below 9 px; lay it "
                            "out in rows or narrower")
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
