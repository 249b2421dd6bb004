"""One plotting style for the book. Functions return figures; notebooks show them."""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt

#: Colours used across chapters, so that the same idea keeps the same colour.
COLORS = {
    "theory": "#1b1b1b",
    "measured": "#d1495b",
    "model": "#00798c",
    "baseline": "#edae49",
    "reference": "#66a182",
    "muted": "#8d96a3",
}

STYLE = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "figure.constrained_layout.use": True,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "lines.linewidth": 1.8,
    "lines.markersize": 5,
}


def use_style() -> None:
    """Apply the book's matplotlib style (idempotent)."""
    mpl.rcParams.update(STYLE)


def figure(nrows: int = 1, ncols: int = 1, *, width: float | None = None,
           height: float | None = None, **kwargs):
    """A new figure in the book's style: ``fig, axes = figure(1, 2)`` (axes squeezed as in
    ``plt.subplots``).

    ``width`` and ``height`` are in inches; by default 4.2 in per column (6.4 in for one) and
    3.4 in per row.
    """
    if nrows < 1 or ncols < 1:
        raise ValueError(f"nrows and ncols must be at least 1, got nrows={nrows}, ncols={ncols}")
    use_style()
    width = width or (6.4 if ncols == 1 else 4.2 * ncols)
    height = height or 3.4 * nrows + (0.6 if nrows == 1 else 0.0)
    return plt.subplots(nrows, ncols, figsize=(width, height), **kwargs)
