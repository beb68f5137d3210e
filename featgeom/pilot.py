"""How every table and figure of a pilot (capped) run says so; config.pilot_banner writes the banner line.

The banner heads the output (the lines over a table file, the figure's suptitle) and every table caption carries a
mark, so that neither an output nor an excerpt of one (one table of a file) can pass for a result.
"""
from __future__ import annotations

MARK = " [PILOT RUN: not a result]"


def heading(banner: str | None, title: str = "") -> list[str]:
    """The lines over an output: the banner (a pilot run only), then the output's title."""
    return [line for line in (banner, title) if line]


def marked(caption, banner: str | None):
    """A table caption (a string or a tuple of text fragments, featgeom.tables) of a pilot run carries the mark."""
    if not banner:
        return caption
    return (*caption, MARK) if isinstance(caption, tuple) else caption + MARK
