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
#: Smallest width of one control: a slider's track stays usable when the controls wrap onto rows.
CONTROL_MIN_WIDTH = "280px"
#: What a reader of the static book sees in place of the live panel (its text/plain form).
STATIC_TEXT = ("[Interactive panel: open this chapter in JupyterLab to move its controls. The figure below "
               "shows fixed settings.]")


class Panel(widgets.VBox):
    """An Explore panel: a ``VBox`` whose plain-text form is a sentence for readers of the static book
    (not ``VBox(children=(HBox(…``)."""

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/plain"] = STATIC_TEXT
        return bundle

    def __repr__(self) -> str:
        return STATIC_TEXT


def _label(name: str, control) -> str:
    description = getattr(control, "description", "") or ""
    return description.strip() or name


def _default_title(controls: Mapping[str, widgets.ValueWidget]) -> Callable[[Mapping], str]:
    """``"η = 0.06, B = 1"``: each control's description (the symbol the text uses), else its name."""
    def title(setting: Mapping) -> str:
        return ", ".join(f"{_label(k, controls[k])} = {v:g}" if isinstance(v, float)
                         else f"{_label(k, controls[k])} = {v}" for k, v in setting.items())
    return title


def explore(draw: Callable, controls: Mapping[str, widgets.ValueWidget],
            fallback: Sequence[Mapping], *, title: Callable[[Mapping], str] | None = None,
            tooltips: Mapping[str, str] | None = None, continuous: bool = False):
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
        Makes a panel title from a setting; by default ``"η = 0.06, B = 1"`` from each control's
        ``description`` (the symbol the text uses; give every control one), else its keyword.
    tooltips : mapping of str to str, optional
        What each control means, shown when the pointer rests on it (e.g. ``{"lr": "step size η"}``).
    continuous : bool
        Redraw while a slider is dragged (only for panels that draw in well under 0.1 s); by default
        the panel redraws when the slider is released, so a drag costs one drawing, not dozens.

    Returns
    -------
    panel : Panel (an ipywidgets.VBox)
        The controls, wrapping onto rows within the cell's width, above an image redrawn on every
        change (one PNG per redraw), and an output area that shows the traceback if ``draw`` fails. In
        the static book its text is a sentence saying that the panel needs JupyterLab.
    fallback_figure : matplotlib.figure.Figure
        ``draw`` at each fallback setting, two panels per row.
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
    unknown = set(tooltips or {}) - set(controls)
    if unknown:
        raise ValueError(f"tooltips name unknown controls {sorted(unknown)}")
    title = title or _default_title(controls)
    for name, control in controls.items():
        if hasattr(control, "continuous_update"):
            control.continuous_update = bool(continuous)
        if tooltips and name in tooltips:
            control.tooltip = tooltips[name]
        if hasattr(control, "style") and hasattr(control.style, "description_width"):
            control.style.description_width = "initial"     # "log₁₀ ε" in full, not cut off
        control.layout.min_width = CONTROL_MIN_WIDTH
        control.layout.flex = "1 1 " + CONTROL_MIN_WIDTH

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
    row = widgets.HBox(list(controls.values()), layout=widgets.Layout(flex_flow="row wrap", width="100%"))
    panel = Panel([row, image, errors])

    # The static figure: two panels per row, so that each keeps a legible size in the book's column.
    defaults = {name: control.value for name, control in controls.items()}
    columns = min(2, len(fallback))
    rows = -(-len(fallback) // columns)
    fig, axes = figure(rows, columns, squeeze=False)
    axes = list(axes.ravel())
    for ax, setting in zip(axes, fallback, strict=False):
        params = {**defaults, **setting}
        draw(ax, **params)
        ax.set_title(title(setting))
    for ax in axes[len(fallback):]:
        ax.set_visible(False)
    return panel, fig
