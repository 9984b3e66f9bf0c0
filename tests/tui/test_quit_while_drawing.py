"""A verdict (or the peer's rows) arriving while the app quits draws nothing and raises nothing.

Textual takes the screens apart before the workers that feed them end: the verdict worker
of a session met a Race screen without its ``#diagnosis`` box and ended the app with a
``NoMatches`` traceback (seen in a full CI run, in the files-pane tests' quit).
"""

from __future__ import annotations

from pathlib import Path

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
