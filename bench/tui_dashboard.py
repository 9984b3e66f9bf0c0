"""How fast the race dashboard absorbs events, against the bare race model (same run).

    .venv/bin/python bench/tui_dashboard.py [--candidates 20 200]

Prints microseconds per event for the model alone (the baseline: folding events into
rows) and for the real RaceScreen (model + table cells updated by key + waterfall
refresh), their ratio, and the time of the first repaint after the burst.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from rdv_core import events as ev
from rdv_core.events import Candidate
from rdv_tui.app import AppConfig, make_app
from rdv_tui.race_model import RaceModel
from rdv_tui.screens.race import RaceScreen


def synthetic_race(candidates: int) -> list[ev.Event]:
    """A race where every candidate is dialled, refused once, connects, shakes hands, loses."""
    out: list[ev.Event] = [
        ev.AttemptStarted(0.0, "DIAL", "http://bench/", "private4", "wait-for-p2p 1s"),
        ev.ServerConnected(0.001, "192.0.2.1:80", "10.0.0.1:9", 0.001),
        ev.ServerResponded(0.01, "198.51.100.1:9", (), 0.005),
    ]
    t = 0.01
    for i in range(1, candidates + 1):
        c = Candidate(i, f"10.0.{i // 250}.{i % 250 + 1}:4000", "private4", "self")
        for make in (
            lambda t, c=c: ev.DialStarted(t, c),
            lambda t, c=c: ev.DialRetried(t, c, 2, "refused", 111),
            lambda t, c=c: ev.CandidateConnected(t, c),
            lambda t, c=c: ev.HandshakeOk(t, c),
            lambda t, c=c: ev.Discarded(t, c, "another conn was picked"),
        ):
            t += 0.0001
            out.append(make(t))
    return out


async def measure(candidates: int) -> None:
    events = synthetic_race(candidates)
    model = RaceModel()
    start = time.perf_counter()
    model.apply_all(events)
    model_us = (time.perf_counter() - start) / len(events) * 1e6

    app = make_app(AppConfig(embedded_server=False))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = RaceScreen()
        app.race_screen = screen
        await app.switch_mode("race")
        await pilot.pause()
        start = time.perf_counter()
        for event in events:
            screen.feed(event)
        fed = time.perf_counter()
        await pilot.pause()
        repaint_ms = (time.perf_counter() - fed) * 1000
    screen_us = (fed - start) / len(events) * 1e6
    print(
        f"{candidates:4d} candidates {len(events):5d} events: model {model_us:6.1f} us/event, "
        f"dashboard {screen_us:7.1f} us/event ({screen_us / model_us:5.0f}x), "
        f"first repaint {repaint_ms:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--candidates", type=int, nargs="+", default=[20, 200])
    args = parser.parse_args()
    for n in args.candidates:
        asyncio.run(measure(n))


if __name__ == "__main__":
    main()
