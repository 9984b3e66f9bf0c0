"""One line of a wrapping log (chat, server events): a head column and a body beside it.

``RichLog(wrap=True)`` wraps a plain line at the widget's edge and starts the rest under the
line's first column, i.e. under the times. As a two-column grid the head (time, speaker)
keeps its column and the body folds in its own; written with ``expand=True`` it takes the
log's width.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text


def beside(head: Text, body: Text) -> Table:
    """``head`` unwrapped, ``body`` wrapped (long words folded) in the rest of the width."""
    line = Table.grid()
    line.add_column(no_wrap=True)
    line.add_column(ratio=1, overflow="fold")
    line.add_row(head, body)
    return line
