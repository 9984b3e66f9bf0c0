"""A big folder's listing shows its count and stops on ``escape`` (real peers on loopback).

``~`` sent the whole home with nothing on screen while it was listed (minutes) and no
way to stop it but ending the session. A real tree of 20,000 empty files, a real
dialing :class:`Session` that would accept, the app's embedded server.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import Input, Static

from rdv_core import events as ev
from rdv_core.session import IncomingOffer, collect
from rdv_tui.app import make_app
from rdv_tui.widgets.files import FilesPane

from tests.test_session_disk import needs_root, tmpfs
from tests.tui.test_live import config, dial_the_app, wait_for


@pytest.fixture
def fast_dir(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs: 20,000 files took 7-18 s to create on the project machine's loaded
    ext4, 0.3 s here."""
    with tmpfs(tmp_path / "fast", "64m") as path:
        yield path


def tree(root: Path, folders: int = 2000, files: int = 10) -> Path:
    """``folders`` folders of ``files`` empty files each (cheap: no data)."""
    for d in range(folders):
        folder = root / f"d{d:04d}"
        folder.mkdir(parents=True)
        for i in range(files):
            os.close(os.open(folder / f"f{i}", os.O_CREAT | os.O_WRONLY, 0o644))
    return root


@needs_root
def test_collect_reports_its_count_and_stops_when_told(fast_dir: Path) -> None:
    root = tree(fast_dir / "t", folders=20, files=100)
    counts: list[int] = []
    assert len(collect([root], progress=counts.append)) == 2000
    assert counts == sorted(counts) and counts[-1] >= 1536  # every folder, every 512 files

    def stop(found: int) -> None:
        if found >= 512:
            raise InterruptedError("stopped")

    try:
        collect([root], progress=stop)
    except InterruptedError:
        pass
    else:
        raise AssertionError("the listing did not stop")


@needs_root
async def test_listing_a_big_tree_shows_its_count_and_escape_stops_it(
    tmp_path: Path, fast_dir: Path
) -> None:
    root = tree(fast_dir / "big")
    offers: list[IncomingOffer] = []

    async def accept(offer: IncomingOffer) -> bool:
        offers.append(offer)
        return True

    peer_events: list[ev.Event] = []
    app = make_app(config(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        app.controller.session_switch_delay = 0.0
        await pilot.press("f2")
        session, conn = await dial_the_app(
            app, pilot, on_offer=accept, download_dir=tmp_path / "peer", on_event=peer_events.append
        )
        try:
            screen = app.session_screen
            await wait_for(pilot, lambda: bool(screen.query("#send-path")))
            files = screen.query_one(FilesPane)
            field = screen.query_one("#send-path", Input)
            field.value = str(root)
            field.focus()
            # What Enter does, without Pilot's wait for every widget to be idle (it
            # lasts as long as the listing: the escape would come too late).
            await field.action_submit()
            await wait_for(pilot, lambda: files.listing is not None, limit=5)
            started = time.monotonic()
            await pilot.press("escape")  # a key, answered while the tree is listed
            await wait_for(pilot, lambda: files.listing is None)
            said = [n.message for n in app._notifications if n.title == "Send"]
            assert len(said) == 1 and said[0].startswith("listing stopped after ")
            assert said[0].endswith(" files: nothing was sent"), said
            assert time.monotonic() - started < 2
            text = str(screen.query_one("#listing-text", Static).render())
            assert text.startswith("listing… ") and "files" in text
            await pilot.pause(0.2)
            assert files.aggregates["out"].files_total == 0 and not offers
        finally:
            await session.close()
            await conn.close()
