"""The Session screen's footer at 80 columns while an offer waits (a real peer on loopback).

With ``^t Accept offer ^n Reject offer`` shown, the footer ran past 80 columns and the
screen keys (``f2 Connect`` … ``f6 Doctor``) hid under ``^p palette``, though the
README says every key fits.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import Button
from textual.widgets._footer import FooterKey

from rdv_tui.app import RdvApp, make_app
from rdv_tui.widgets.files import OfferBar
from rdv_tui.widgets.fitted_footer import FittedFooter

from tests.tui.test_footer_fits import _hidden_keys
from tests.tui.test_live import config, wait_for
from tests.tui.test_probe_files import dialed_session


def settled_keys(app: RdvApp) -> list[str] | None:
    """The footer's keys (``f2 Connect``, ...) once it shows the screen's bindings as
    they are now, each laid out; None before.

    The footer rebuilds its keys after a refresh when the bindings change (the offer
    calls ``refresh_bindings``), and they get their places at the refresh after that: a
    fixed 0.1 s pause ran out first under load (a fresh-clone CI; every key of the new
    footer had no region yet, so every key read as hidden).
    """
    footer = app.screen.query_one(FittedFooter)
    keys = [k for k in footer.query(FooterKey) if not k.has_class("-command-palette")]
    want, _ = footer._laid_out(footer.size.width or app.size.width)
    if [(k.key, k.description) for k in keys] != [(k.binding.key, k.label) for k in want]:
        return None
    if any(k.region.width == 0 for k in footer.query(FooterKey)):
        return None
    return [f"{k.key_display} {k.description}" for k in keys]


async def test_offer_keys_fit_at_80_columns(tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_bytes(b"hello")
    app = make_app(config(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        app.controller.session_switch_delay = 0.0
        session, conn = await dialed_session(app, pilot)
        try:
            await wait_for(pilot, lambda: settled_keys(app) is not None)
            before = settled_keys(app)
            send = asyncio.get_running_loop().create_task(session.send_paths([note]))
            bar = app.session_screen.query_one(OfferBar)
            await wait_for(pilot, lambda: bar.pending == 1)
            await wait_for(pilot, lambda: settled_keys(app) is not None)
            # The offer takes no key from the footer (the footer drops what does not fit:
            # with the offer's keys in it, the screen keys went), and hides none.
            assert settled_keys(app) == before, before
            assert _hidden_keys(app) == []
            # The offer's keys are named where the offer is.
            accept = app.session_screen.query_one("#offer-accept", Button)
            reject = app.session_screen.query_one("#offer-reject", Button)
            assert "^t" in str(accept.label) and "^n" in str(reject.label)
            assert accept.region.right <= 80 and reject.region.right <= 80
            await pilot.press("ctrl+t")
            async with asyncio.timeout(10):
                await send
        finally:
            await session.close()
            await conn.close()
