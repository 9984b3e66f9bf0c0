"""Table rows that fold onto more lines when the terminal is narrower than a row.

``rdv lab matrix`` under 63 columns and ``rdv lab doctor`` (116 columns, into a pipe too)
printed rows wider than the terminal, which folded each one back to column 0, under the
next column's header. Here the columns that do not fit start a second line (a third...),
two spaces in, and the header folds at the same places, so each figure stays under its
name; a row that fits stays one line, as before.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Final, Literal

#: Where a folded row's next line starts.
INDENT: Final = 2

#: One column's width and the spaces before it (none before a line's first).
Span = tuple[int, int]


def fold(spans: Sequence[Span], room: int | None) -> list[list[int]]:
    """The columns of each line, by index, for a terminal ``room`` wide (None: one line)."""
    groups: list[list[int]] = []
    used = 0
    for i, (width, gap) in enumerate(spans):
        if groups and (room is None or used + gap + width <= room):
            groups[-1].append(i)
            used += gap + width
        else:
            used = (INDENT if groups else 0) + width
            groups.append([i])
    return groups


def lay_out(
    cells: Sequence[str],
    spans: Sequence[Span],
    groups: Sequence[Sequence[int]],
    aligns: Sequence[Literal["<", ">"]] | None = None,
) -> list[str]:
    """One row's ``cells`` on the lines of ``groups``, each padded to its column."""
    lines = []
    for n, group in enumerate(groups):
        parts = []
        for k, i in enumerate(group):
            width, gap = spans[i]
            lead = gap if k else INDENT * bool(n)
            align = aligns[i] if aligns else "<"
            parts.append(" " * lead + f"{cells[i]:{align}{width}}")
        lines.append("".join(parts).rstrip())
    return lines


def fill(text: str, room: int | None, first: str, rest: str) -> list[str]:
    """``text`` wrapped to ``room`` (None: one line) under its indents, words whole."""
    if room is None:
        return [first + text]
    return textwrap.wrap(
        text,
        max(room, len(rest) + 20),
        initial_indent=first,
        subsequent_indent=rest,
        break_on_hyphens=False,
        break_long_words=False,
    ) or [first.rstrip()]
