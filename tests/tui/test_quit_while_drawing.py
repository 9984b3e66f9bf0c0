"""A verdict (or the peer's rows) arriving while the app quits draws nothing and raises nothing.

Textual takes the screens apart before the workers that feed them end: the verdict worker
of a session met a Race screen without its ``#diagnosis`` box and ended the app with a
``NoMatches`` traceback (seen in a full CI run, in the files-pane tests' quit).
"""

from __future__ import annotations

from pathlib import Path

from rdv_core import events as ev
from rdv_core.events import Event
from rdv_tui.app import AppConfig, make_app


async def test_a_verdict_after_the_race_screen_is_taken_apart(
    race_file: Path, race_events: list[Event]
) -> None:
    app = make_app(AppConfig(replay=race_file))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.race_screen
        screen.show_diagnosis("doctor: before")
    # The app has shut down and its screens are taken apart: what a late worker calls.
    screen.show_diagnosis("verdict: after")
    screen.merge_peer(race_events)
    screen.feed(race_events[0])
    screen.tick()
    assert screen.diagnosis == "verdict: after"  # kept, shown nowhere


async def test_session_events_after_the_session_screen_is_taken_apart(tmp_path: Path) -> None:
    """A file moving when the app quits: its last events (progress, its failure, the
    close) came while the Session screen was taken apart, and ``NoMatches: LinkStrip``
    ended the app with a traceback (seen leaving a Pilot run mid-transfer)."""
    app = make_app(AppConfig(embedded_server=False, download_dir=tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await app.switch_mode("session")
        await pilot.pause()
        screen = app.session_screen
        screen.feed(ev.SessionEstablished(0.0, False, "127.0.0.1:4000", 1))
        screen.feed(ev.FileOffered(0.1, 1, "out", "big.bin", 2**30))
    # The app has shut down and its screens are taken apart: what late events call.
    screen.feed(ev.FileProgress(0.2, 1, "out", 2**20, 2**30, 1e8))
    screen.feed(ev.FileFailed(0.3, 1, "out", "big.bin", "session ended: closed"))
    screen.feed(ev.SessionClosed(0.4, "closed"))
    screen.show_info("after")
    screen.sample_link()
    assert screen.files_unfinished() == 0  # nothing to ask about: the app is gone
