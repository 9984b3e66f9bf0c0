"""The table of ``rdv lab doctor``: one row per preset, within the terminal.

Its row is 116 columns (preset, what the doctor says on A and on B, built as, predicted,
outcome, agree) and was printed whole at any width, into a pipe too (where rdv's other
tables take 80): an 80-column terminal folded every row to column 0. Now a row that does
not fit folds at its columns (``_fold``), and the reason under it wraps under itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from rdv_core.lab._fold import Span, fill, fold, lay_out

#: The headers and their widths, one space apart.
HEADERS: Final = (
    ("preset", 16),  # dualstack-v4slow
    ("doctor on A", 22),
    ("doctor on B", 22),
    ("built as", 8),
    ("predicted", 17),  # possible private6
    # "0/3 direct 1108.8 ms": 20, and at 17 that cell ran past a 40-column terminal.
    ("outcome", 20),
    ("agree", 5),
)
_SPANS: Final[tuple[Span, ...]] = tuple((width, 1) for _, width in HEADERS)
#: Where the lines under a row (the reason, what was not built as meant) start.
NOTE_INDENT: Final = "    "


def doctor_header(room: int | None) -> list[str]:
    """The header line(s) and the rule under them for a terminal ``room`` wide."""
    head = lay_out([h for h, _ in HEADERS], _SPANS, fold(_SPANS, room))
    return [*head, "-" * max(map(len, head))]


def doctor_row(
    cells: Sequence[str],
    mismatches: Sequence[str],
    reason: str,
    room: int | None,
    advice: str = "",
    notes: Sequence[str] = (),
) -> list[str]:
    """One preset's lines: its cells (in :data:`HEADERS` order), then each mismatch, each
    note (a host's uplinks, side by side: the cells show its default route), the
    prediction's reason and its advice (what would open a direct path), wrapped under
    themselves."""
    lines = lay_out(cells, _SPANS, fold(_SPANS, room))
    for problem in mismatches:
        lines += fill(problem, room, NOTE_INDENT, NOTE_INDENT + "  ")
    for note in notes:
        lines += fill(note, room, NOTE_INDENT, NOTE_INDENT + "  ")
    lines += fill(reason, room, f"{NOTE_INDENT}why: ", f"{NOTE_INDENT}     ")
    if advice:
        head = "to go direct: "
        lines += fill(advice, room, NOTE_INDENT + head, NOTE_INDENT + " " * len(head))
    return lines
