"""The Server screen's pairs table fits its width (Pilot, the server scene).

At 60 and 80 columns the table ran past the screen's edge and scrolled sideways: the
accepter's address (at 60 the dialer's too, and the age) was out of sight, with a
horizontal scrollbar under two rows.
"""

from __future__ import annotations

from rdv_tui.app import AppConfig, make_app
from rdv_tui.scenes import stage_server
from rdv_tui.widgets.server_view import (
    PAIR_COLUMNS,
    TOKEN_CELLS,
    PairsTable,
    plan_pair_columns,
)

WIDTHS = {key: len(label) for key, label in PAIR_COLUMNS} | {
    "id": 4,
    "token": 15,
    "path": 7,
    "d2a": 8,
    "a2d": 7,
    "age": 5,
    "dialer": 18,
    "accepter": 18,
}
"""The server scene's columns (``rdv-session-512``, ``198.51.100.7:41000``): 98 cells."""


def _columns_width(table: PairsTable) -> int:
    return sum(column.get_render_width(table) for column in table.columns.values())


def _keys(table: PairsTable) -> list[str]:
    return [str(column.key.value) for column in table.columns.values()]


async def test_the_pairs_table_never_scrolls_sideways() -> None:
    app = make_app(AppConfig(embedded_server=False, serve=True))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await stage_server(app)
        table = app.screen.query_one(PairsTable)
        expected = {
            100: [key for key, _ in PAIR_COLUMNS],
            80: ["id", "token", "path", "d2a", "a2d", "age", "dialer"],
            60: ["id", "token", "path", "d2a", "a2d", "age"],
            40: ["id", "token", "path", "age"],
        }
        for width, keys in expected.items():
            await pilot.resize_terminal(width, 24)
            await pilot.pause()
            assert table.max_scroll_x == 0, width
            assert _columns_width(table) <= table.scrollable_content_region.width, width
            assert _keys(table) == keys, width
            # The rows are rebuilt, not lost: every pair, its token whole.
            assert [table.get_cell(k, "token").plain for k in table.rows] == [
                "rdv-session-512",
                "rdv-session-77",
            ], width


def test_a_long_token_loses_its_middle_not_the_other_columns() -> None:
    """A client picks its token: one of 48 characters (62 cells with its length) kept every
    other column out at 80 columns."""
    widths = WIDTHS | {"token": 62}
    assert plan_pair_columns(widths, 80, 2) == (
        ("id", "token", "path", "d2a", "a2d", "age"),
        TOKEN_CELLS,
    )
    # Narrower than the kept columns: the token takes what is left, at least a cell.
    assert plan_pair_columns(widths, 30, 2) == (("id", "token", "path"), 13)
    assert plan_pair_columns(widths, 5, 2) == (("id", "token", "path"), 1)
    # Wide enough for everything: nothing is cut.
    assert plan_pair_columns(widths, 200, 2) == ((tuple(k for k, _ in PAIR_COLUMNS)), None)
