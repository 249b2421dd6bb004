"""Finding the book's chapters: ``book/NN-slug.md`` jupytext MyST notebooks."""

from __future__ import annotations

from pathlib import Path


def find_chapters(book: Path, names: list[str] | None = None) -> list[Path]:
    """The chapters under ``book`` in order, or those named (by stem, file name or two-digit number).

    Raises ``ValueError`` for an unknown name or a folder without chapters.
    """
    chapters = sorted(Path(book).glob("[0-9][0-9]-*.md"))
    if not chapters:
        raise ValueError(f"no chapters (NN-*.md) found in {book}")
    if not names:
        return chapters
    chosen = []
    for name in names:
        hits = [c for c in chapters if name in (c.stem, c.name, c.stem[:2], str(c))]
        if not hits:
            raise ValueError(f"unknown chapter {name!r}; chapters: {', '.join(c.stem for c in chapters)}")
        chosen.extend(hits)
    return chosen
