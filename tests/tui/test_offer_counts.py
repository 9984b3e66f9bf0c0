"""A big send's offer reaches the files pane in a few calls, not one per file (real peers
on loopback).

With 20,000 files about 1.8 s passed between the listing's end and the first offer in
the pane (stop 37): the session reported each offered file as an event of its own, each
went through the Session screen's and the files pane's per-event work (widget look-ups,
the first 20 files' rows mounted, then dropped at the 21st). The app now takes the
session's batched events (``batched_events``): one per offer of up to ~1,900 files.
Counted, not timed (``bench/`` holds speed targets): the pane's per-file calls.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path

from textual.widgets import Input

from rdv_core import events as ev
from rdv_core.session import IncomingOffer
from rdv_tui.app import make_app
from rdv_tui.widgets.files import FilesPane, TransferRow

from tests.tui.test_live import config, dial_the_app, wait_for

#: Past 20 (the rows the pane mounts) and past 100 in one offer: what the count checks. 1000
#: cost 0.6 s more of listing and offer (two offers, 481 in the first) and checked no more.
FILES = 300


async def test_an_offer_of_thousands_is_a_few_calls(fast_tmp: Path) -> None:
    tmp_path = fast_tmp  # hundreds of files to make: in memory (conftest)
    folder = tmp_path / "many"
    for d in range(FILES // 100):
        sub = folder / f"d{d:02d}"
        sub.mkdir(parents=True)
        for i in range(100):
            os.close(os.open(sub / f"f{i:02d}", os.O_CREAT | os.O_WRONLY, 0o644))
    offers: list[IncomingOffer] = []
    answer = asyncio.Event()

    async def decline(offer: IncomingOffer) -> bool:
        offers.append(offer)
        await answer.wait()  # nothing moves meanwhile: only the offer is looked at
        return False

    app = make_app(config(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        app.controller.session_switch_delay = 0.0
        await pilot.press("f2")
        session, conn = await dial_the_app(
            app, pilot, on_offer=decline, download_dir=tmp_path / "peer"
        )
        try:
            screen = app.session_screen
            await wait_for(pilot, lambda: bool(screen.query("#send-path")))
            files = screen.query_one(FilesPane)
            calls: Counter[str] = Counter()
            feed = files.feed

            def counted(event: ev.Event) -> None:
                calls[type(event).__name__] += 1
                feed(event)

            files.feed = counted  # type: ignore[method-assign]
            field = screen.query_one("#send-path", Input)
            field.value = str(folder)
            field.focus()
            await pilot.press("enter")
            out = files.aggregates["out"]
            await wait_for(pilot, lambda: bool(offers) and out.files_total > 0, limit=20)
            # Before: one call per file of the offer (300 here), and 20 rows mounted.
            assert calls["FileOffered"] == 0, calls
            assert not files.query(TransferRow)
            assert out.files_total >= len(offers[0].files) > 100
        finally:
            answer.set()
            await session.close()
            await conn.close()
