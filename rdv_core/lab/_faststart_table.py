"""The table of ``rdv lab faststart``: one row per preset, within the terminal.

Its row was printed whole at any width (84 columns for every preset, 75 for one), and
each failed run's reason on one line of up to 300 characters: a 60-column terminal
folded both back to column 0, under the wrong headers. Now a row that does not fit folds
at its columns (``_fold``, as ``rdv lab matrix`` and ``rdv lab doctor`` do) and each run's
reason wraps under itself. With every preset the row is 80 columns: one line into a pipe
(80 columns, as rdv's other tables take), as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Literal

from rdv_core.lab._fold import Span, fill, fold, lay_out

#: The figure columns after the preset's: header, width, the summary key.
FIGURES: Final = (
    ("direct", 6, "direct"),
    ("relay", 5, "relay"),
    ("failed", 6, "failed"),
    ("data", 5, "data_ok"),
    ("1st byte", 8, "first_byte_p50_ms"),
    ("RTT", 5, "relay_rtt_p50_ms"),  # the relay's: "relay RTT" made the widest row 84
    ("<=RTT", 5, "first_byte_within_rtt"),
    ("to direct", 9, "to_direct_p50_ms"),
)
#: Where a run's reason starts, under its row.
NOTE_INDENT: Final = "    "


def _spans(wide: int) -> list[Span]:
    return [(wide, 0), (6, 1), *((width, 1) for _, width, _ in FIGURES)]


def _aligns() -> list[Literal["<", ">"]]:
    right: list[Literal["<", ">"]] = [">"] * len(FIGURES)
    return ["<", "<", *right]


def faststart_header(wide: int, room: int | None) -> list[str]:
    """The header line(s) and the rule under them; ``wide``: the preset column's width."""
    spans = _spans(wide)
    names = ["preset", "expect", *(name for name, _, _ in FIGURES)]
    head = lay_out(names, spans, fold(spans, room), _aligns())
    return [*head, "-" * max(map(len, head))]


def faststart_row(
    name: str,
    expect: str,
    summary: dict[str, Any],
    *,
    wide: int,
    room: int | None,
    missed: bool,
    notes: Sequence[str] = (),
    figure: Any = str,
) -> list[str]:
    """One preset's lines: its figures (``figure`` formats a millisecond value), then each
    run's ``notes`` (``outcome: why``) wrapped under themselves."""
    spans = _spans(wide)
    cells = [name, expect]
    for _, _, key in FIGURES:
        value = summary[key]
        cells.append(figure(value) if key.endswith("_ms") else str(value))
    if missed:  # after the last column, as before: a column of its own would cost 9
        spans.append((8, 2))
        cells.append("(missed)")
    aligns = [*_aligns(), "<"] if missed else _aligns()
    lines = lay_out(cells, spans, fold(spans, room), aligns)
    for note in notes:
        lines += fill(note, room, NOTE_INDENT, NOTE_INDENT + "  ")
    return lines
