"""The race table: one row per candidate, updated in place by row key.

The table fits its width: when the state column would be cut (80 columns), the ``ip``
column goes (``space`` says ``4`` or ``6`` already; at 40 columns the time, the origin
and the space go too, :data:`OPTIONAL_COLUMNS`), a state that still does not fit
takes its short form (:attr:`~rdv_tui.race_model.CandidateRow.short_state_text`) and
one that still does not ends in ``…``; where full IPv6 addresses would leave the state
too little room, they lose their middle (``[2001:db8:1234:…:9abc:def0]:52000``). The
candidate's details (Enter) keep every word.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual import events
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
#: The columns that go, in this order, when the table is too narrow for every state
#: whole: ``ip`` at 80 columns; at 40 the time, the origin and the space go too (the
#: state, the column that matters, was past the right edge, out of sight).
OPTIONAL_COLUMNS = ("family", "t", "origin", "space")
#: Cells the state column keeps in a narrow table: long addresses are cut for it
#: (``failed: unreachable``, ``★ picked ↻3: 671 ms`` fit).
MIN_STATE_WIDTH = 20
#: Fewest cells an address keeps when cut (in its middle: the port stays).
MIN_ADDR_WIDTH = 16

_Layout = tuple[tuple[str, ...], int | None, int | None]
"""The keys of the columns shown, the width the state may take and the width an
address may take (None: any)."""


class RaceTable(DataTable[Text]):
    """The candidates of one attempt.

    A row is added the first time a candidate appears, then only its changed cells
    are updated (``update_cell`` by row and column key): the table never rebuilds,
    except when its layout (module doc) changes, on a resize or a wider address.
    """

    DEFAULT_CSS = """
    RaceTable { height: auto; overflow-x: hidden; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._shown: dict[str, tuple[str, ...]] = {}
        self._rows: dict[str, CandidateRow] = {}
        self._layout: _Layout = (tuple(key for key, _ in COLUMNS), None, None)
        self._max_id = 0

    def on_mount(self) -> None:
        self._add_columns()

    def on_resize(self, event: events.Resize) -> None:
        self._fit()

    # ----- layout

    def _add_columns(self) -> None:
        keys = self._layout[0]
        for key, label in COLUMNS:
            if key in keys:
                self.add_column(label, key=key)

    def _plan(self) -> _Layout:
        """The layout that fits the current width (module doc)."""
        width = self.scrollable_content_region.width
        every = tuple(key for key, _ in COLUMNS)
        if width <= 0 or not self._rows:
            return every, None, None  # not laid out yet: nothing to fit
        pad = 2 * self.cell_padding
        widths = {key: cell_len(label) for key, label in COLUMNS}
        for row in self._rows.values():
            for key, text in zip(every, _texts(row), strict=True):
                widths[key] = max(widths[key], cell_len(text))
        if sum(widths.values()) + pad * len(widths) <= width:
            return every, None, None
        for dropped in range(1, len(OPTIONAL_COLUMNS) + 1):
            keys = tuple(key for key in every if key not in OPTIONAL_COLUMNS[:dropped])
            others = sum(widths[key] + pad for key in keys if key != "state")
            room = width - others - pad
            if room >= MIN_STATE_WIDTH:
                return keys, room, None
            # Full IPv6 addresses (47 cells with the port) leave the state no room at 80
            # columns: the address gives up its middle before another column goes.
            addr = max(MIN_ADDR_WIDTH, widths["addr"] - (MIN_STATE_WIDTH - room))
            if room + widths["addr"] - addr >= MIN_STATE_WIDTH:
                return keys, room + widths["addr"] - addr, addr
        # The narrowest table: number, address (cut) and what room is left for the state.
        return keys, max(1, room + widths["addr"] - addr), addr

    def _fit(self) -> None:
        """Rebuild the table when the layout that fits differs from the one shown."""
        layout = self._plan()
        if layout == self._layout:
            return
        self._layout = layout
        cursor = self.cursor_row
        self.clear(columns=True)
        self._shown.clear()
        self._add_columns()
        for row in sorted(self._rows.values(), key=lambda r: r.candidate.id):
            self._add(row)
        if self.row_count:
            self.move_cursor(row=min(cursor, self.row_count - 1))

    # ----- cells

    def _plain_cells(self, row: CandidateRow) -> tuple[Text, ...]:
        number, origin, addr, space, family, t, _ = _texts(row)
        addr_room = self._layout[2]
        if addr_room is not None and cell_len(addr) > addr_room:
            keep = addr_room - 1  # the port and the address's start stay, its middle goes
            addr = addr[: keep - keep // 2] + "…" + addr[len(addr) - keep // 2 :]
        muted = colour(self.app, "foreground-darken-2")
        return (
            Text(number, justify="right"),
            Text(origin),
            Text(addr),
            Text(space, style=muted),
            Text(family, style=muted),
            Text(t, justify="right", style=muted),
            self._state_cell(row),
        )

    def _state_cell(self, row: CandidateRow) -> Text:
        room = self._layout[1]
        text = row.state_text
        if room is not None and cell_len(text) > room:
            text = row.short_state_text
        state = Text(text, style=state_colour(self.app, row.state), no_wrap=True)
        if room is not None:
            state.truncate(room, overflow="ellipsis")
        if row.state.value == "picked":
            state.stylize("bold")
        return state

    def _cells(self, row: CandidateRow) -> dict[str, Text]:
        """The cells of ``row`` for the columns shown, by key."""
        every = (key for key, _ in COLUMNS)
        cells = dict(zip(every, self._plain_cells(row), strict=True))
        return {key: cells[key] for key in self._layout[0]}

    def _add(self, row: CandidateRow) -> None:
        cells = self._cells(row)
        self.add_row(*cells.values(), key=row.key)
        self._shown[row.key] = _fingerprint(cells)

    # ----- API

    def show_row(self, row: CandidateRow) -> None:
        """Add the row, or update the cells of it that changed."""
        self._rows[row.key] = row
        old = self._shown.get(row.key)
        if old is None:
            self._add(row)
            # Keep candidates in id order, like the waterfall below (ids mostly arrive
            # in order: sort only when one does not).
            if row.candidate.id < self._max_id:
                self.sort("id", key=lambda cell: int(cell.plain))
            self._max_id = max(self._max_id, row.candidate.id)
        else:
            cells = self._cells(row)
            now = _fingerprint(cells)
            for (column, cell), before, after in zip(cells.items(), old, now, strict=True):
                if before != after:
                    self.update_cell(row.key, column, cell, update_width=True)
            self._shown[row.key] = now
        self._fit()  # a longer address or state may change what fits

    def forget(self) -> None:
        """Remove every row (a new attempt)."""
        self.clear()
        self._shown.clear()
        self._rows.clear()
        self._max_id = 0

    def restyle(self, rows: list[CandidateRow]) -> None:
        """Recolour every row (after a theme change)."""
        for row in rows:
            self._rows[row.key] = row
            cells = self._cells(row)
            for column, cell in cells.items():
                self.update_cell(row.key, column, cell)
            self._shown[row.key] = _fingerprint(cells)


def _texts(row: CandidateRow) -> tuple[str, ...]:
    """The words of each column of ``row``, in :data:`COLUMNS` order (the state whole)."""
    c = row.candidate
    return (str(c.id), c.origin, c.addr, c.space, row.family, format_ms(row.last_t), row.state_text)


def _fingerprint(cells: dict[str, Text]) -> tuple[str, ...]:
    """What decides whether a cell must be redrawn: its text and its style."""
    return tuple(cell.plain + str(cell.style) for cell in cells.values())
