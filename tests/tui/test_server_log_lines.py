"""The server log shows what a hostile client picked (its token, a quoted request) cut to a
few dozen characters, with the length: the log wraps, and one request of a few KiB would
otherwise fill screens (the token is any path the client sends, docs/PROTOCOL.md section 2)."""

from __future__ import annotations

from rdv_core import events as ev
from rdv_tui.widgets.server_view import REASON_SHOWN, TOKEN_SHOWN, describe_server_event


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
