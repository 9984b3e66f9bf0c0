"""The server log shows what a hostile client picked (its token, a quoted request) cut to a
few dozen characters, with the length: the log wraps, and one request of a few KiB would
otherwise fill screens (the token is any path the client sends, docs/PROTOCOL.md section 2)."""

from __future__ import annotations

from textual.app import App, ComposeResult

from rdv_core import events as ev
from rdv_core.server import PairPath, PairStats
from rdv_tui.widgets.server_view import (
    REASON_SHOWN,
    TOKEN_SHOWN,
    PairsTable,
    describe_server_event,
)


def test_a_long_token_is_cut_with_its_length() -> None:
    token = "x" * 4000
    line = describe_server_event(ev.PeerJoined(1.0, "DIAL", token, "192.0.2.1:4000", None))
    assert line.plain == f"DIAL   joined {'x' * TOKEN_SHOWN}… (4000 chars) from 192.0.2.1:4000"


def test_a_long_reason_is_cut_and_a_short_one_kept() -> None:
    reason = "invalid escape in token " + "%zz" * 1000
    line = describe_server_event(ev.Rejected(1.0, 400, reason, "192.0.2.1:4000", "DIAL"))
    assert line.plain.endswith(f"{reason[:REASON_SHOWN]}… ({len(reason)} chars)")
    short = describe_server_event(ev.Rejected(1.0, 404, "not found", "192.0.2.9:1", "GET"))
    assert short.plain == "rejected 404 GET from 192.0.2.9:1: not found"


def test_a_code_sized_token_is_shown_whole() -> None:
    line = describe_server_event(
        ev.PairMatched(2.0, 7, "7-tulip-orbit", "192.0.2.1:1", "192.0.2.2:2", 0.4)
    )
    assert "7-tulip-orbit: 192.0.2.1:1 ⇄ 192.0.2.2:2" in line.plain


def test_control_characters_of_a_token_are_shown_escaped() -> None:
    line = describe_server_event(ev.PeerJoined(1.0, "DIAL", "a\x1b[2Jb", "192.0.2.1:4000", None))
    assert "\x1b" not in line.plain and "a\\x1b[2Jb" in line.plain


async def test_the_pairs_table_shows_a_markup_token_as_text() -> None:
    """``[/x]`` as a str cell was Rich markup: a ``MarkupError`` ended the app. (At 200
    columns the token is shown whole; narrower, the table cuts it to fit.)"""
    app = _PairsApp()
    async with app.run_test(size=(200, 24)) as pilot:
        table = app.query_one(PairsTable)
        hostile = "[/x] [bold]" + "y" * 5000
        table.show([_pair(hostile)], now=3.0)
        await pilot.pause()
        token = table.get_row("1")[1].plain
        assert token == f"[/x] [bold]{'y' * (TOKEN_SHOWN - 11)}… (5011 chars)"
        table.show([_pair(hostile, relayed=True)], now=4.0)  # an update, not an add
        await pilot.pause()
        assert [cell.plain for cell in table.get_row("1")][2:3] == ["relay"]


class _PairsApp(App[None]):
    def compose(self) -> ComposeResult:
        yield PairsTable()


def _pair(token: str, *, relayed: bool = False) -> PairStats:
    return PairStats(
        pair_id=1,
        token=token,
        dialer="192.0.2.1:4000",
        accepter="192.0.2.2:5000",
        started_t=1.0,
        path=PairPath.RELAYED if relayed else PairPath.PENDING,
        bytes_dialer_to_accepter=0,
        bytes_accepter_to_dialer=0,
    )


def test_a_rejection_shows_its_token_as_the_cli_log_does() -> None:
    """``rdv serve -v`` logs ``Rejected token=rdv-session-123456 status=410``; the app's
    log line dropped the token: which code was refused was not to be seen."""
    used = ev.Rejected(1.0, 410, "code already used", "192.0.2.1:4000", "DIAL", "7-a\x1bb")
    line = describe_server_event(used)
    assert line.plain == "rejected 410 DIAL 7-a\\x1bb from 192.0.2.1:4000: code already used"
    early = describe_server_event(ev.Rejected(1.0, 400, "bad", "192.0.2.1:4000", "DIAL", ""))
    assert early.plain == "rejected 400 DIAL from 192.0.2.1:4000: bad"
