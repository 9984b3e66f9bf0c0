"""Lines of figures (``lobby 33 ms``, ``open pairs 2``) that break between figures only.

Textual wraps at any whitespace, and its wrap reads a no-break space as one too (its
chunks are ``\\S+\\s*``): at 40 columns the Server screen's counters read
``serving http://127.0.0.1:35289  lobby`` / ``0  open pairs 0``, and the race header put
``observed`` on one line and its address on the next. So these widgets lay out their
figures themselves for the width they get, two spaces apart, and start a new line before a
figure that would not fit; only a figure wider than the widget is left to Textual's wrap.
"""

from __future__ import annotations

from textual import events
from textual.content import Content
from textual.visual import VisualType
from textual.widgets import Static

#: Lines, each a list of figures (a figure: a label with its value, one styled Content).
Figures = list[list[Content]]

GAP = Content("  ")
"""What parts two figures on one line."""


def pack(lines: Figures, width: int | None) -> Content:
    """Each line's figures, ``GAP`` apart, broken between figures to fit ``width``
    (None: not laid out yet, one line each)."""
    rows: list[Content] = []
    for figures in lines:
        row: Content | None = None
        for figure in figures:
            if row is None:
                row = figure
            elif width is None or row.cell_length + GAP.cell_length + figure.cell_length <= width:
                row = row + GAP + figure
            else:
                rows.append(row)
                row = figure
        if row is not None:
            rows.append(row)
    return Content("\n").join(rows)


class FigureLines(Static):
    """A Static whose content is :data:`Figures`, packed again at every width it gets."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._figures: Figures | None = None
        self._width: int | None = None

    def show_figures(self, lines: Figures) -> None:
        """Show ``lines`` from now on."""
        self._figures = lines
        self._draw()

    def update(self, content: VisualType = "", *, layout: bool = True) -> None:
        """Show ``content`` as it is (e.g. the Server screen's "This app hosts no server"):
        no figures to lay out again at the next width."""
        self._figures = None
        super().update(content, layout=layout)

    def _draw(self) -> None:
        if self._figures is None:
            return
        self._width = self.content_size.width or None
        super().update(pack(self._figures, self._width))

    def on_resize(self, event: events.Resize) -> None:
        if (self.content_size.width or None) != self._width:
            self._draw()
