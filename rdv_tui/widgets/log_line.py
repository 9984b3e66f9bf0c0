"""One line of a wrapping log (chat, server events): a head column and a body beside it.

``RichLog(wrap=True)`` wraps a plain line at the widget's edge and starts the rest under the
line's first column, i.e. under the times. As a two-column grid the head (time, speaker)
keeps its column and the body folds in its own; written with ``expand=True`` it takes the
log's width.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from rich.console import Console, ConsoleOptions, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

#: A figure's unit, as rdv writes them (``lobby 400 ms``, ``0.5 s,``, ``1.5 MiB``, ``(4000
#: chars)``), maybe with the punctuation that follows it.
_UNIT: Final = re.compile(r"(ms|s|B|KiB|MiB|GiB|TiB|(KiB|MiB|GiB|TiB|B)/s|chars)[,;:.)]*")
_NUMBER_END: Final = re.compile(r"\d$")


def beside(head: Text, body: RenderableType) -> Table:
    """``head`` unwrapped, ``body`` wrapped (long words folded) in the rest of the width."""
    line = Table.grid()
    line.add_column(no_wrap=True)
    line.add_column(ratio=1, overflow="fold")
    line.add_row(head, body)
    return line


class KeptFigures:
    """``text`` wrapped at spaces as Rich wraps it, except between a number and its unit.

    Rich (and Textual) break at any space, a no-break space too: at 40 columns the server
    log read ``lobby 400`` over ``ms`` and ``after 0.5`` over ``s, D→A 0 B``. The breaks are
    placed here, as newlines, for the width the text is given; a word wider than that width
    is still folded by Rich.
    """

    def __init__(self, text: Text) -> None:
        self.text = text

    def _atoms(self) -> list[tuple[int, int]]:
        """Where each piece that must stay on one line starts and ends in the text."""
        plain = self.text.plain
        atoms: list[tuple[int, int]] = []
        for word in re.finditer(r"\S+", plain):
            start, end = word.span()
            if (
                atoms
                and _UNIT.fullmatch(word.group())
                and _NUMBER_END.search(plain, atoms[-1][0], atoms[-1][1])
            ):
                atoms[-1] = (atoms[-1][0], end)
            else:
                atoms.append((start, end))
        return atoms

    def lines_for(self, width: int) -> Text:
        """The text with a newline at each break for ``width`` cells."""
        breaks: list[int] = []
        line_start: int | None = None
        for start, end in self._atoms():
            if line_start is None:
                line_start = start
            elif end - line_start > width:
                breaks.append(start)
                line_start = start
        if not breaks:
            return self.text
        pieces = [piece.copy() for piece in self.text.divide(breaks)]
        for piece in pieces:
            piece.rstrip()
        out = Text("\n").join(pieces)
        out.overflow = "fold"
        return out

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        yield self.lines_for(options.max_width)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        longest = max((end - start for start, end in self._atoms()), default=1)
        return Measurement(min(longest, options.max_width), self.text.cell_len)
