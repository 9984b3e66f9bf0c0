"""A session left on another screen: what the Session screen holds until it is first shown.

Textual builds a mode's screen the first time it is shown; until then the Session screen
held every session event in a list, so a session watched from the Server screen grew the
app's memory without end (a progress event per transfer every 0.1 s, every chat line).
"""

from __future__ import annotations

from pathlib import Path

from textual.widgets import ProgressBar

from rdv_core import events as ev
from rdv_tui.app import RdvApp, make_app
from rdv_tui.widgets.chat import SCROLLBACK, ChatLog
from rdv_tui.widgets.files import TransferRow

from tests.tui.test_live import a_peer_dials_the_app, config, wait_for

LINES = SCROLLBACK + 1000
HELD_BEYOND_CHAT = 10
"""Session events besides the chat lines: the session's start, an info line or two."""


def held(app: RdvApp) -> list[ev.Event]:
    """The events the Session screen holds for later."""
    return list(app.session_screen._backlog)


async def test_chat_from_a_session_never_shown_is_bounded_by_the_scrollback(
    tmp_path: Path,
) -> None:
    """A real peer chats 6,000 lines while the user watches the Server screen."""
    app = make_app(config(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        assert app.controller.embedded is not None
        app.controller.session_switch_delay = 3600.0  # the user decides where to look
        async with a_peer_dials_the_app(app, pilot) as session:
            await wait_for(pilot, lambda: app.controller.session is not None)
            await pilot.press("f5")
            assert app.current_mode == "server"
            last = f"line {LINES - 1}"
            for i in range(LINES):
                await session.send_chat(f"line {i}")
            await wait_for(
                pilot,
                lambda: any(isinstance(e, ev.ChatReceived) and e.text == last for e in held(app)),
                limit=60,
            )
            assert len(held(app)) <= SCROLLBACK + HELD_BEYOND_CHAT
            await pilot.press("f4")
            chat = app.session_screen.query_one(ChatLog)
            await wait_for(pilot, lambda: ("peer", last) in chat.lines_added)
            lines = chat.lines_added
            assert len(lines) == SCROLLBACK
            assert lines[-1] == ("peer", last)
            assert ("peer", f"line {LINES - SCROLLBACK + HELD_BEYOND_CHAT}") in lines


async def test_an_hours_progress_is_held_as_one_event_per_transfer(tmp_path: Path) -> None:
    """An hour's progress of one download (36,000 events, one per 0.1 s) on the Connect
    screen: the row shows the latest when the screen is shown, from a handful held."""
    app = make_app(config(tmp_path, embedded_server=False))
    async with app.run_test(size=(100, 30)) as pilot:
        size = 36_000 * 1000
        events: list[ev.Event] = [
            ev.SessionEstablished(0.0, False, "127.0.0.1:9", 1),
            ev.FileOffered(0.1, 1, "in", "big.iso", size),
            ev.FileAccepted(0.2, 1, "in", 0),
        ]
        events += [ev.FileProgress(1 + i / 10, 1, "in", i * 1000, size, 1e4) for i in range(36_000)]
        for start in range(0, len(events), 1000):  # as the session posts them: in bursts
            app.post_message(app.CoreEvents(tuple(events[start : start + 1000]), "session"))
        await wait_for(
            pilot,
            lambda: any(isinstance(e, ev.FileProgress) and e.done == 35_999_000 for e in held(app)),
            limit=60,
        )
        assert len(held(app)) <= 3 + 1
        await pilot.press("f4")
        await wait_for(pilot, lambda: bool(app.session_screen.query("#t-1-in-1")))
        row = app.session_screen.query_one("#t-1-in-1", TransferRow)
        assert row.query_one(ProgressBar).progress == 35_999_000
        assert app.session_screen.bytes_in == 35_999_000
