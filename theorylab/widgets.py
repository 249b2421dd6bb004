"""Explore panels: ipywidgets controls over a drawing function, with a static fallback figure.

The static book cannot run widgets, so every panel comes with a figure that draws the same function
at a few fixed settings. A chapter writes::

    panel, fallback = explore(draw, controls={"n": IntSlider(20, 2, 80)},
                              fallback=[{"n": 5}, {"n": 20}, {"n": 80}])
    display(panel)   # live in JupyterLab
    fallback         # shown in the rendered book
"""

from __future__ import annotations

import io
import traceback
from collections.abc import Callable, Mapping, Sequence

import ipywidgets as widgets

from .plotting import figure

#: Resolution of the live panel's image: a redraw is one PNG of about 640×400 pixels.
LIVE_DPI = 100


def explore(draw: Callable, controls: Mapping[str, widgets.ValueWidget],
            fallback: Sequence[Mapping], *, title: Callable[[Mapping], str] | None = None):
    """Build a live panel and a static fallback figure for ``draw(ax, **params)``.

    Parameters
    ----------
    draw : callable
        ``draw(ax, **params)`` draws one setting onto a matplotlib ``Axes``.
    controls : mapping of str to ipywidgets value widgets
        One control per keyword of ``draw``; its ``value`` is the parameter.
    fallback : sequence of mappings
        Settings drawn side by side in the static figure (one panel each, 1 to 4 of them).
    title : callable, optional
        Makes a panel title from a setting; by default ``"n=20, d=5"``.

    Returns
    -------
    panel : ipywidgets.VBox
        The controls above an image redrawn on every change (one PNG sent per redraw, so a slider
        move costs one drawing), and an output area that shows the traceback if ``draw`` fails.
    fallback_figure : matplotlib.figure.Figure
        ``draw`` at each fallback setting.
    """
    if not callable(draw):
        raise TypeError(f"draw must be callable, got {type(draw).__name__}")
    if not controls:
        raise ValueError("controls must name at least one control")
    for name, control in controls.items():
        if not hasattr(control, "observe") or not hasattr(control, "value"):
            raise TypeError(f"controls[{name!r}] must be an ipywidgets value widget, got {control!r}")
    if not 1 <= len(fallback) <= 4:
        raise ValueError(f"fallback must hold 1 to 4 settings, got {len(fallback)}")
    for setting in fallback:
        unknown = set(setting) - set(controls)
        if unknown:
            raise ValueError(f"fallback setting {dict(setting)} names unknown controls {sorted(unknown)}")
    title = title or (lambda s: ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                          for k, v in s.items()))

    image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", align_self="flex-start"))
    errors = widgets.Output()

    def redraw(_change=None):
        params = {name: control.value for name, control in controls.items()}
        errors.outputs = ()
        try:
            fig, ax = figure()
            draw(ax, **params)
            ax.set_title(title(params))
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=LIVE_DPI)
        except Exception:  # shown under the image: an exception in a callback would vanish into the log
            errors.append_stderr(traceback.format_exc())
            return
        image.value = buffer.getvalue()

    for control in controls.values():
        control.observe(redraw, names="value")
    redraw()
    panel = widgets.VBox([widgets.HBox(list(controls.values())), image, errors])

    defaults = {name: control.value for name, control in controls.items()}
    fig, axes = figure(1, len(fallback))
    axes = [axes] if len(fallback) == 1 else list(axes.ravel())
    for ax, setting in zip(axes, fallback, strict=True):
        params = {**defaults, **setting}
        draw(ax, **params)
        ax.set_title(title(setting))
    return panel, fig
