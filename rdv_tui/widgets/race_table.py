"""The race table: one row per candidate, updated in place by row key."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from rdv_tui.cli.formatting import format_ms
from rdv_tui.race_model import CandidateRow
from rdv_tui.widgets.palette import colour, state_colour

#: Column keys and labels, in display order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "#"),
    ("origin", "origin"),
    ("addr", "address"),
    ("space", "space"),
    ("family", "ip"),
    ("t", "t"),
    ("state", "state"),
)


class RaceTable(DataTable[Text]):
    """The candidates of one attempt.

    A row is added the first time a candidate appears, then only its changed cells
    are updated (``update_cell`` by row and column key): the table never rebuilds.
    """

    DEFAULT_CSS = """
    RaceTable { height: auto; overflow-x: hidden; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._shown: dict[str, tuple[str, ...]] = {}
        self._max_id = 0

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def _cells(self, row: CandidateRow) -> tuple[Text, ...]:
        c = row.candidate
        state = Text(row.state_text, style=state_colour(self.app, row.state))
        if row.state.value == "picked":
            state.stylize("bold")
        muted = colour(self.app, "foreground-darken-2")
        return (
            Text(str(c.id), justify="right"),
            Text(c.origin),
            Text(c.addr),
            Text(c.space, style=muted),
            Text(row.family, style=muted),
            Text(format_ms(row.last_t), justify="right", style=muted),
            state,
        )

    def show_row(self, row: CandidateRow) -> None:
        """Add the row, or update the cells of it that changed."""
        cells = self._cells(row)
        plain = tuple(cell.plain + str(cell.style) for cell in cells)
        old = self._shown.get(row.key)
        if old is None:
            self.add_row(*cells, key=row.key)
            # Keep candidates in id order, like the waterfall below (ids mostly arrive
            # in order: sort only when one does not).
            if row.candidate.id < self._max_id:
                self.sort("id", key=lambda cell: int(cell.plain))
            self._max_id = max(self._max_id, row.candidate.id)
        else:
            for (column, _), cell, before, now in zip(COLUMNS, cells, old, plain, strict=True):
                if before != now:
                    self.update_cell(row.key, column, cell, update_width=True)
        self._shown[row.key] = plain

    def forget(self) -> None:
        """Remove every row (a new attempt)."""
        self.clear()
        self._shown.clear()
        self._max_id = 0

    def restyle(self, rows: list[CandidateRow]) -> None:
        """Recolour every row (after a theme change)."""
        for row in rows:
            self._shown.pop(row.key, None)
            cells = self._cells(row)
            for (column, _), cell in zip(COLUMNS, cells, strict=True):
                self.update_cell(row.key, column, cell)
            self._shown[row.key] = tuple(cell.plain + str(cell.style) for cell in cells)
