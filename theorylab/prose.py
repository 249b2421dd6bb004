"""Measured numbers in the prose, computed by the cell that measured them.

A chapter never types a measured number into its text: at another seed or at full scale it would be
wrong. A sentence that quotes a measurement is written by a code cell instead (tag it ``remove-input``
so that the book and JupyterLab show only the sentence)::

    say("The tilt is {angle:.1f}° from the nearest-centroid direction, {ratio:.2g} of the margin.",
        angle=theta, ratio=r)

In a notebook the sentence is displayed as Markdown (rendered by JupyterLab and by the book build, math
included); outside a notebook it is printed. Numbers are formatted with ``str.format`` fields;
:func:`latex_sci` writes a small or large number in scientific notation for the math in a sentence.
"""

from __future__ import annotations

from .utils.validation import check_real

__all__ = ["Said", "say", "latex_sci"]


class Said(str):
    """A sentence written from measurements: displayed as Markdown in a notebook, a ``str`` otherwise."""

    def _repr_markdown_(self) -> str:
        return str(self)


def say(template: str, **values) -> Said:
    """Format ``template`` with ``values`` and return it as a :class:`Said` (the cell's last expression
    shows it as Markdown). Every field in the template must be given, and every value must be used."""
    if not isinstance(template, str) or not template.strip():
        raise ValueError(f"template must be a non-empty string, got {template!r}")
    import string
    fields = {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template)
              if name is not None}
    if "" in fields or any(f.isdigit() for f in fields):
        raise ValueError(f"template must use named fields like {{angle:.1f}}, got {template!r}")
    missing, unused = fields - set(values), set(values) - fields
    if missing:
        raise ValueError(f"template needs values for {sorted(missing)}")
    if unused:
        raise ValueError(f"values {sorted(unused)} are not used by the template {template!r}")
    return Said(template.format(**values))


def latex_sci(x) -> str:
    """``x`` in scientific notation with two significant digits, as LaTeX for inside ``$…$``:
    ``latex_sci(0.000357)`` is ``"3.6\\cdot10^{-4}"`` (rounded as ``f"{x:.1e}"``). ``x`` a finite real."""
    x = check_real("x", x)
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{mantissa}\\cdot10^{{{int(exponent)}}}"
