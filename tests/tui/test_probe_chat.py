"""A chat line typed after the session ended stays in the input (a real peer on loopback)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input

from rdv_tui.app import make_app
from rdv_tui.widgets.chat import ChatLog
from rdv_tui.widgets.link_strip import LinkStrip

from tests.tui.test_dropped_paths import typed_at_once
from tests.tui.test_live import config, wait_for
from tests.tui.test_probe_files import dialed_session


async def test_a_line_typed_after_the_peer_left_is_not_lost(tmp_path: Path) -> None:
    """The input was cleared, then the controller said 'no session': the line was gone."""
    app = make_app(config(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        app.controller.session_switch_delay = 0.0
        session, conn = await dialed_session(app, pilot)
        screen = app.session_screen
        field = screen.query_one("#chat-input", Input)
        chat = screen.query_one(ChatLog)
        # While the session is up a line goes out and the input empties.
        await pilot.click("#chat-input")
        await pilot.press(*"first", "enter")
        await wait_for(pilot, lambda: ("you", "first") in chat.lines_added)
        assert field.value == ""
        conn.writer.transport.abort()  # the peer is gone
        await wait_for(pilot, lambda: screen.query_one(LinkStrip).closed != "")
        await typed_at_once(app, pilot, "a long thought, typed too late")  # 30 keys
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert field.value == "a long thought, typed too late"
        assert any("the line stays" in n.message for n in app._notifications)
        await session.close()
        await conn.close()


async def test_a_path_typed_after_the_peer_left_is_not_lost(tmp_path: Path) -> None:
    """The same for the files pane's path: cleared, then 'no session', then gone."""
    note = tmp_path / "note.txt"
    note.write_text("hello\n")
    app = make_app(config(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        app.controller.session_switch_delay = 0.0
        session, conn = await dialed_session(app, pilot)
        screen = app.session_screen
        conn.writer.transport.abort()  # the peer is gone
        await wait_for(pilot, lambda: screen.query_one(LinkStrip).closed != "")
        field = screen.query_one("#send-path", Input)
        field.value = str(note)
        await pilot.click("#send")
        await pilot.pause(0.2)
        assert field.value == str(note)
        assert any("the path stays" in n.message for n in app._notifications)
        await session.close()
        await conn.close()


async def test_a_long_end_reason_on_the_link_strip_ends_with_an_ellipsis(tmp_path: Path) -> None:
    """At 80 columns the strip's one line was cut mid-word ('Connection') with no sign
    that more followed; the whole reason is in the chat."""
    from rdv_core import events as ev
    from rdv_tui.app import AppConfig

    app = make_app(AppConfig(embedded_server=False, download_dir=tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await app.switch_mode("session")
        await pilot.pause()
        screen = app.session_screen
        reason = "connection lost: [Errno 104] Connection reset by peer, and then some more"
        screen.feed(ev.SessionEstablished(0.0, False, "127.0.0.1:4000", 1))
        screen.feed(ev.SessionClosed(0.5, reason))
        await pilot.pause()
        strip = screen.query_one("#link-info")
        assert strip.region.width < len("✗ session ended: " + reason)
        assert app.screen._compositor is not None
        line = app.screen._compositor.render_strips()[strip.region.y].text
        assert "…" in line[strip.region.x : strip.region.right]
