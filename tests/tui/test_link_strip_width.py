"""The session's link strip shows whole figures at any width, never one cut inside.

It was one string cut with an ellipsis: at 60 columns ``RTT 23.4 ms  ↓11.…``.
"""

from __future__ import annotations

import pytest

from rdv_tui.app import AppConfig, make_app
from rdv_tui.scenes import session_app_config, stage_session
from rdv_tui.widgets.link_strip import LinkStrip


@pytest.mark.parametrize("size", [(40, 12), (60, 20), (80, 24)])
async def test_the_link_strip_drops_whole_figures(size: tuple[int, int]) -> None:
    config: AppConfig = session_app_config()
    app = make_app(config)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await stage_session(app)
        await pilot.pause()
        assert app.screen._compositor is not None
        top = app.screen._compositor.render_strips()[0].text
    assert "★ P2P 203.0.113.99:52000  RTT 23.4 ms" in top, top
    assert "…" not in top, top
    if "↓" in top:
        assert "↓11.2 MiB/s" in top, top
    if size[0] >= 80:
        assert "↓11.2 MiB/s ↑0 B/s" in top, top


async def test_a_narrow_strip_never_shows_the_idle_rate_alone() -> None:
    """Sending at 60 columns (a short peer address), the strip read ``↓0 B/s``, the idle
    download, and left out the upload at 50 MiB/s: the transfer looked stalled."""
    app = make_app(session_app_config())
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        await stage_session(app)
        strip = app.session_screen.query_one(LinkStrip)
        strip.peer_addr = "10.0.0.7:52000"
        strip.sample(0.0, 52_428_800.0)  # uploading at 50 MiB/s, nothing coming in
        await pilot.pause()
        assert app.screen._compositor is not None
        top = app.screen._compositor.render_strips()[0].text
        assert "↓0 B/s" not in top, top  # no room for the upload's rate: no rate at all
