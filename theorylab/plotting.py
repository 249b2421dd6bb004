"""One plotting style for the book. Functions return figures; notebooks show them."""

from __future__ import annotations

import matplotlib as mpl
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

#: Colours used across chapters, so that the same idea keeps the same colour.
COLORS = {
    "theory": "#1b1b1b",
    "measured": "#d1495b",
    "model": "#00798c",
    "baseline": "#edae49",
    "reference": "#66a182",
    "muted": "#8d96a3",
}

#: The widest a figure is drawn, in inches: 960 px at the 100 dpi it is laid out at, about 970 px with
#: the tight bounding box's margin. The book's text column is 727 px wide and the theme scales a wider
#: figure down to it; up to 1010 px (12.5 / 9 times the column) the smallest text, 9-pt legends of
#: 12.5 px, stays at 9 px or more on the page. tests/page_checks.py checks every built figure against
#: that limit (COLUMN_PX * MAX_OVERFLOW); this width leaves room for text the bounding box adds.
MAX_WIDTH = 9.6

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
    """Apply the book's matplotlib style and, inside IPython, show returned figures (idempotent)."""
    mpl.rcParams.update(STYLE)
    _show_figures_in_ipython()


def _show_figures_in_ipython() -> None:
    # Our figures are plain ``Figure`` objects, not pyplot's, so that a cell shows each once. IPython
    # displays them once a PNG formatter is registered for ``Figure`` (what ``%matplotlib inline`` does).
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import select_figure_formats
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    if Figure not in shell.display_formatter.formatters["image/png"].type_printers:
        # "retina": PNGs at twice the resolution with their display size in the output's metadata,
        # sharp on high-density screens in JupyterLab and in the book at the same size on the page.
        select_figure_formats(shell, {"retina"}, bbox_inches="tight")


def figure(nrows: int = 1, ncols: int = 1, *, width: float | None = None,
           height: float | None = None, **kwargs):
    """A new figure in the book's style: ``fig, axes = figure(1, 2)`` (axes squeezed as in
    ``plt.subplots``).

    The figure is not registered with pyplot, so a notebook shows it once, when a cell returns or
    displays it (pyplot figures are also shown automatically at the end of the cell).

    ``width`` and ``height`` are in inches; by default 4.2 in per column (6.4 in for one) and
    3.4 in per row. The width is at most :data:`MAX_WIDTH`, so that a figure's text stays legible
    once the book fits it to its column: a wider request gets the same panels with relatively larger
    text (the height is kept).
    """
    if nrows < 1 or ncols < 1:
        raise ValueError(f"nrows and ncols must be at least 1, got nrows={nrows}, ncols={ncols}")
    use_style()
    width = min(width or (6.4 if ncols == 1 else 4.2 * ncols), MAX_WIDTH)
    height = height or 3.4 * nrows + (0.6 if nrows == 1 else 0.0)
    fig = Figure(figsize=(width, height))
    return fig, fig.subplots(nrows, ncols, **kwargs)


def log_scale(ax, axis: str = "x") -> None:
    """Put ``axis`` ("x", "y" or "both") of ``ax`` on a log scale labelled with plain numbers at
    1, 2, 5 × 10^k (instead of matplotlib's crowded ``2×10⁰`` minor labels)."""
    if axis not in ("x", "y", "both"):
        raise ValueError(f"axis must be 'x', 'y' or 'both', got {axis!r}")
    for name in ("x", "y") if axis == "both" else (axis,):
        getattr(ax, f"set_{name}scale")("log")
        target = getattr(ax, f"{name}axis")
        target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        target.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
        target.set_minor_formatter(NullFormatter())


def decades(ax, axis: str = "x") -> None:
    """Put ``axis`` ("x", "y" or "both") of ``ax`` on a log scale labelled at powers of ten only, for
    ranges that span many decades (where :func:`log_scale`'s 1, 2, 5 × 10^k labels would crowd)."""
    log_scale(ax, axis)
    for name in ("x", "y") if axis == "both" else (axis,):
        getattr(ax, f"{name}axis").set_major_locator(LogLocator(base=10))
