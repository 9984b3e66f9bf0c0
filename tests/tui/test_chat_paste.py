"""A paste into the chat line keeps all of it (a real demo peer on loopback).

Textual's Input keeps only the first line of a paste: three lines pasted from an editor
went out as one, the other two lost without a word. Controls a field shows as nothing
(the escape sequences of copied terminal output) were sent unseen.
"""

from __future__ import annotations

from pathlib import Path

from textual import events
from textual.app import App, ComposeResult
from textual.widgets import Input

from rdv_core import events as ev
from rdv_core.session import MAX_CHAT_BYTES
from rdv_tui.app import make_app
from rdv_tui.widgets.chat import LINE_BREAK, ChatInput, ChatLog, pasted_line

from tests.tui.test_live import app_dials_a_demo_peer, config, wait_for


def test_a_paste_keeps_its_lines_and_drops_what_cannot_be_seen() -> None:
    assert pasted_line("one\r\ntwo\n\tthree") == f"one{LINE_BREAK}two{LINE_BREAK}    three"
    assert pasted_line("\x1b[31mred\x1b[0m\x07") == "[31mred[0m"
    assert pasted_line("") == ""


async def test_a_multi_line_paste_is_sent_whole(tmp_path: Path) -> None:
    app = make_app(config(tmp_path))
    async with (
        app.run_test(size=(80, 24)) as pilot,
        app_dials_a_demo_peer(app, pilot, tmp_path) as peer,
    ):
        app.controller.session_switch_delay = 0.0
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.controller.session is not None, limit=30)
        await wait_for(pilot, lambda: bool(app.session_screen.query("#chat-input")))
        field = app.session_screen.query_one("#chat-input", Input)
        await wait_for(pilot, lambda: app.current_mode == "session")
        field.focus()
        await pilot.press(*"see: ")
        field.post_message(events.Paste("line one\nline two\n\x1b[1mline three\x1b[0m\n"))
        await wait_for(pilot, lambda: LINE_BREAK in field.value)
        assert field.value == f"see: line one{LINE_BREAK}line two{LINE_BREAK}[1mline three[0m"
        await pilot.press("enter")
        sent = "see: line one\nline two\n[1mline three[0m"
        await wait_for(
            pilot,
            lambda: any(isinstance(e, ev.ChatReceived) and e.text == sent for e in peer.events),
            limit=20,
        )
        chat = app.session_screen.query_one(ChatLog)
        assert ("you", sent) in chat.lines_added
        assert field.value == ""


class ChatApp(App[int]):
    def compose(self) -> ComposeResult:
        yield ChatInput(id="chat-input")


async def test_a_paste_longer_than_a_chat_line_is_refused() -> None:
    """After a 1 MiB paste each key took seconds (the field draws its whole value), for a
    line that could never be sent: the paste is refused, with why."""
    app = ChatApp()
    async with app.run_test(size=(80, 5)) as pilot:
        field = app.query_one(ChatInput)
        field.focus()
        field.value = "note: "
        field.post_message(events.Paste("word " * (MAX_CHAT_BYTES // 5 + 1)))
        await wait_for(pilot, lambda: bool(app._notifications))
        assert field.value == "note: "
        assert "a chat line holds at most 16.0 KiB" in list(app._notifications)[-1].message
        fits = "w" * (MAX_CHAT_BYTES - len("note: ") - 2) + "\nx"  # 16 KiB with the break
        field.post_message(events.Paste(fits))
        await wait_for(pilot, lambda: field.value != "note: ")
        assert field.value == "note: " + fits.replace("\n", LINE_BREAK)
