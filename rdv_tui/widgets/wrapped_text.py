"""Text laid out for the width it gets: each line's rest goes under its own column.

Textual wraps a long line back to the widget's left edge: the Race screen's verdict put
the rest of ``predicted: ...`` and of each candidate's line under the labels, where the
eye looks for the next item. The CLI wraps the same text under its own column
(:func:`rdv_core.doctor.render_verdict` with a width, docs/notes stop 32); this widget
asks its maker for the text again at every width it is given.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import events
from textual.widgets import Static

from rdv_core.doctor._text import wrap
from rdv_core.wire import printable

#: Makes the text for a width (None: one line each, unwrapped).
Maker = Callable[[int | None], str]


def labelled(label: str, text: str) -> Maker:
    """``label`` then ``text``, its rest under the text (``doctor: ...``)."""
    return lambda width: "\n".join(wrap(text, width, label, " " * len(label)))


class WrappedText(Static):
    """Shows what a :data:`Maker` makes for the widget's width (no markup: it quotes peers)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self._maker: Maker | None = None
        self._width: int | None = None

    def show(self, maker: Maker | None) -> None:
        """Show ``maker``'s text from now on (None: nothing)."""
        self._maker = maker
        self._draw()

    def _draw(self) -> None:
        width = self.content_size.width or None  # not laid out yet: one line each
        self._width = width
        text = self._maker(width) if self._maker is not None else ""
        # No control characters (the verdict quotes the peer's reasons).
        self.update(Text("\n".join(printable(line) for line in text.splitlines())))

    def on_resize(self, event: events.Resize) -> None:
        if (self.content_size.width or None) != self._width:
            self._draw()
