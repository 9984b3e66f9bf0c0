"""Text that peers, servers or users pick is shown as it is, never read as markup (Pilot).

Textual parses a ``str`` given to ``Static``, ``Label`` or ``notify`` as markup: a file the
peer offers as ``notes[/b].txt`` raised a ``MarkupError`` that ended the app, one named
``[@click=app.quit]x[/]`` showed a link that ran an action of ours when clicked, and a
plain ``report [final].pdf`` lost its ``[final]``. Every widget that shows such text now
takes it as plain text (``markup=False``, or ``Text``/``Content`` cells).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from textual.command import CommandPalette
from textual.widgets import Input, OptionList

from rdv_core import events as ev
from rdv_core.events import Candidate
from rdv_core.session import IncomingOffer
from rdv_core.session._frames import OfferedFile
from rdv_tui.app import AppConfig, load_race, make_app
from rdv_tui.screens.candidate import CandidateDetails
from rdv_tui.screens.connect import ConnectScreen
from rdv_tui.widgets.files import FilesPane, OfferBar
from rdv_tui.widgets.race_header import ResultBanner

HOSTILE = ("notes[/b].txt", "[@click=app.quit]x[/]", "report [final].pdf", "[bold]loud")


async def test_offered_file_names_show_as_sent(tmp_path: Path) -> None:
    app = make_app(AppConfig(embedded_server=False, download_dir=tmp_path))
    async with app.run_test(size=(120, 36)) as pilot:
        await app.switch_mode("session")
        screen = app.session_screen
        screen.feed(ev.SessionEstablished(0.0, False, "127.0.0.1:4000", 1))
        for number, name in enumerate(HOSTILE, start=1):
            screen.feed(ev.FileOffered(0.1, number, "in", name, 3))
            screen.feed(ev.FileRejected(0.2, number, "in", f"refused {name}"))
        await pilot.pause()
        files = screen.query_one(FilesPane)
        for number, name in enumerate(HOSTILE, start=1):
            row = files.row("in", number, session=1)
            assert row is not None
            assert f"↓ {name} (3 B)" == str(row._w_name.render())
            assert name in str(row._w_reason.render())  # a failure's reason: its own line
        assert app.is_running


async def test_a_candidates_story_quotes_the_peer_as_is(race_file: Path) -> None:
    app = make_app(AppConfig(replay=race_file))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        race = app.screen
        candidate = Candidate(9, "192.0.2.9:5000", "public4", "self")
        line = "rdv/1 ACCEPT [/x] [@click=app.quit]y[/]"
        race.feed(ev.DialStarted(0.5, candidate))  # type: ignore[attr-defined]
        race.feed(ev.HandshakeFailed(0.6, candidate, "misdial", line))  # type: ignore[attr-defined]
        await pilot.pause()
        row = race.model.rows[9]  # type: ignore[attr-defined]
        await app.push_screen(CandidateDetails(row, race.model.events))  # type: ignore[attr-defined]
        await pilot.pause()
        title = str(app.screen.query_one("#title").render())
        story = "\n".join(strip.text for strip in app.screen._compositor.render_strips())
        assert "[/x] [@click=app.quit]y[/]" in title + story
        assert app.is_running


async def test_a_servers_reason_and_a_typed_code_show_as_is(race_file: Path) -> None:
    app = make_app(AppConfig(embedded_server=False))
    async with app.run_test(size=(120, 36)) as pilot:
        await app.switch_mode("race")
        race = app.race_screen
        race.feed(ev.AttemptStarted(0.0, "DIAL", "http://x/", "loopback4", "first"))
        race.feed(ev.AttemptFailed(0.2, "server refused: [/x] bad [token]"))
        await pilot.pause()
        banner = str(race.query_one(ResultBanner).render())
        assert "server refused: [/x] bad [token]" in banner
        await app.switch_mode("connect")
        await pilot.pause()
        connect = app.screen
        assert isinstance(connect, ConnectScreen)
        connect.query_one("#server").value = "http://127.0.0.1:9/"  # type: ignore[attr-defined]
        connect.query_one("#code").value = "[/x]-tulip"  # type: ignore[attr-defined]
        await pilot.pause()
        assert "[/x]-tulip" in str(connect.query_one("#share").render())
        app.notify("[/y] stays", markup=False)  # how the app's notices quote
        await pilot.pause()
        assert app.is_running


async def test_recent_entries_with_brackets_list_in_the_palette(tmp_path: Path) -> None:
    recent_file = tmp_path / "recent.json"
    codes = ["7-[/x]-orbit", "8-[bold]-loud"]
    recent_file.write_text(json.dumps({"servers": ["http://[fd00::5]:8080"], "codes": codes}))
    app = make_app(AppConfig(embedded_server=False, recent_path=recent_file))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.switch_mode("connect")
        await pilot.press("ctrl+p")  # the palette lists what it can discover at once
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)

        async def prompts(until: Callable[[list[str]], bool]) -> list[str]:
            """The palette's options once ``until`` holds (its searches run in a worker)."""
            for _ in range(100):
                shown = [str(o.prompt) for o in app.screen.query_one(OptionList).options]
                if until(shown):
                    return shown
                await pilot.pause(0.05)
            return shown

        shown = " ".join(await prompts(lambda found: len(found) >= 3))
        assert "Use code 7-[/x]-orbit" in shown and "Use code 8-[bold]-loud" in shown
        await pilot.press(*"use code 7")
        found = await prompts(lambda found: bool(found) and "7-[/x]" in found[0])
        assert found and "7-[/x]-orbit" in found[0], found
        await pilot.press("enter")
        code = app.connect_screen.query_one("#code", Input)
        for _ in range(100):
            if code.value == "7-[/x]-orbit":
                break
            await pilot.pause(0.05)
        assert code.value == "7-[/x]-orbit"


def test_a_replayed_file_is_shown_like_the_network(tmp_path: Path) -> None:
    """``rdv tui --replay FILE``: anyone may have written FILE; its texts are escaped."""
    hostile = tmp_path / "race.jsonl"
    lines = [
        ev.AttemptStarted(0.0, "DIAL", "http://x/\x1b]0;owned\x07", "loopback4", "first"),
        ev.DialStarted(0.1, Candidate(2, "192.0.2.1:5\x1b[2J", "public4", "self")),
        ev.ServerResponded(0.05, None, ("192.0.2.1:5\u202e",), 0.01),
    ]
    hostile.write_text("".join(ev.dumps(e) + "\n" for e in lines), encoding="utf-8")
    events = load_race(hostile)
    assert events[0].server == "http://x/\\x1b]0;owned\\x07"  # type: ignore[attr-defined]
    assert events[1].candidate.addr == "192.0.2.1:5\\x1b[2J"  # type: ignore[attr-defined]
    assert events[2].peer_addrs == ("192.0.2.1:5\\u202e",)  # type: ignore[attr-defined]


async def test_an_offer_of_huge_names_keeps_the_offer_bar_short(tmp_path: Path) -> None:
    """A peer may offer paths of 4,096 characters: the bar shows each one's end."""
    app = make_app(AppConfig(embedded_server=False, download_dir=tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await app.switch_mode("session")
        screen = app.session_screen
        names = [("d" * 60 + "/") * 60 + f"file{i}.txt" for i in range(3)]
        files = tuple(OfferedFile(i, name, 1, 0) for i, name in enumerate(names))
        offer = IncomingOffer(1, files)
        asked = screen.query_one(OfferBar).ask(offer)
        await pilot.pause()
        text = str(screen.query_one("#offer-text").render())
        assert len(text) < 300 and "file0.txt" in text and "file2.txt" in text, text
        assert screen.query_one("#offer-accept").region.height == 1  # on screen, one line
        asked.cancel()
