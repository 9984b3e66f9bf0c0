"""Every screen keeps rows for what matters in a short terminal (40x12) and at 80x24.

At 40x12 the race screen's header (a loopback race's observed-address warning) wrapped
to ten lines and left the table and the waterfall no row at all; the server screen's
counters pushed its event log off the screen; two 16-cell buttons left the code box
one cell wide. A widget "gets rows" when part of it is on the screen, not clipped away
by its container or scrolled out of view.

At 3 to 6 columns the screens' scrollbars came and went about 30 times a second (the
Doctor screen kept the app at 20-78 % of a CPU): Textual decides an ``overflow-y: auto``
scrollbar from the content's height at the width left beside it, and where the
scrollbar's two cells left a widget no cell inside its padding, the widget was 0 rows
high: the content fitted *with* the scrollbar and overflowed *without* it, and every
layout flipped it (Textual's own guard, ``Widget._refresh_scrollbars``, holds only when
both axes are ``auto``). Counted, not timed: the scrollbars' changes while the app is
left alone; a screen that has settled makes none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from rich.cells import cell_len
from textual.css.query import NoMatches
from textual.errors import NoWidget
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Checkbox, Footer

from rdv_tui.app import AppConfig, RdvApp, make_app
from rdv_tui.scene_doctor import stage_doctor
from rdv_tui.scenes import session_app_config, stage_server, stage_session
from rdv_tui.widgets.files import FilesPane
from rdv_tui.widgets.link_strip import LinkStrip
from rdv_tui.widgets.offer_bar import OfferBar
from rdv_tui.widgets.server_view import ServerLog

from tests.tui.test_live import app_dials_a_demo_peer, config, wait_for
from tests.tui.test_probe_files import dialed_session

SIZES = pytest.mark.parametrize("size", [(40, 12), (80, 24)], ids=["40x12", "80x24"])

Stage = Callable[[RdvApp], Awaitable[None]]


def shown(app: RdvApp, selector: str) -> Region:
    """The part of the widget ``selector`` on the screen (empty when none is)."""
    screen = app.screen
    try:
        widget = screen.query_one(selector, Widget)
        geometry = screen.find_widget(widget)
    except (NoMatches, NoWidget):
        return Region()
    return geometry.region.intersection(geometry.clip).intersection(screen.region)


def assert_rows(app: RdvApp, *selectors: str, min_width: int = 1) -> None:
    """Each of ``selectors`` has at least a row on the screen, ``min_width`` cells wide."""
    missing = {s: shown(app, s) for s in selectors}
    bad = {s: r for s, r in missing.items() if r.height < 1 or r.width < min_width}
    assert not bad, f"no room at {app.size}: {bad}"
    assert shown(app, "Footer").height == 1, "the footer's keys are off the screen"


async def nothing(app: RdvApp) -> None:
    return None


@SIZES
async def test_live_race_keeps_its_table_and_waterfall(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    """A real race on loopback, watched from 80x24 then squeezed to ``size`` while it
    runs (its header is five lines at 40 columns, more with a warning)."""
    app = make_app(config(tmp_path))
    async with (
        app.run_test(size=(80, 24)) as pilot,
        app_dials_a_demo_peer(app, pilot, tmp_path),
    ):
        app.controller.session_switch_delay = 3600.0  # stay on the dashboard
        await pilot.press("ctrl+r")
        race = app.race_screen
        await wait_for(pilot, lambda: app.current_mode == "race" and bool(race.model.events))
        await pilot.resize_terminal(*size)  # while racing
        await wait_for(pilot, lambda: race.model.result is not None, limit=30)
        await pilot.pause()
        assert_rows(app, "#server-phase", "#result", "#race-table", "#waterfall")


SCENES: dict[str, tuple[Callable[[], AppConfig], Stage, tuple[str, ...]]] = {
    "session": (
        session_app_config,
        stage_session,
        ("#link", "#chat-log", "#chat-input", "#send-bar", "#transfers"),
    ),
    "server": (
        lambda: AppConfig(embedded_server=False, serve=True),
        stage_server,
        ("#counters", "#pairs", "#server-log"),
    ),
    "doctor": (
        lambda: AppConfig(embedded_server=False, server_url="http://203.0.113.10:7000"),
        stage_doctor,
        ("#doctor-summary", "#findings"),
    ),
    "connect": (
        lambda: AppConfig(embedded_server=False, server_url="http://rdv.example.net:8080"),
        nothing,
        ("#share", "#code"),
    ),
    "lab race": (
        lambda: AppConfig(
            replay=Path(__file__).parents[2] / "screenshots" / "races" / "cone-rst.jsonl"
        ),
        nothing,
        ("#server-phase", "#result", "#race-table", "#waterfall"),
    ),
}


@SIZES
@pytest.mark.parametrize("scene", list(SCENES))
async def test_screen_keeps_its_parts(scene: str, size: tuple[int, int]) -> None:
    make_config, stage, selectors = SCENES[scene]
    app = make_app(make_config())
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await stage(app)
        await pilot.pause(0.2)
        assert_rows(app, *selectors)
        assert isinstance(app.screen.query_one(Footer), Footer)


@SIZES
async def test_boxes_beside_buttons_stay_readable(size: tuple[int, int]) -> None:
    """The code box shows the longest code whole (23 characters and the cursor: at 40
    columns it showed 11 cells, '240519-cand', and the share text with the code was
    capped out of sight below 20 rows), the path box keeps at least 10 cells beside its
    buttons, and the buttons keep one row (at 40 columns 'Browse' wrapped to a second
    row)."""
    app = make_app(session_app_config(server_url="http://rdv.example.net:8080"))
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        assert_rows(app, "#code", min_width=24)
        for button in ("#generate", "#copy"):
            assert shown(app, button).height == 1, button
        await stage_session(app)
        await pilot.pause(0.2)
        assert_rows(app, "#send-path", min_width=10)
        for button in ("#browse", "#send"):
            assert shown(app, button).height == 1, button


@pytest.mark.parametrize(
    ("start", "end"), [((40, 24), (40, 24)), ((120, 30), (70, 30))], ids=["at-40", "120-to-70"]
)
async def test_server_log_wraps_at_its_width(start: tuple[int, int], end: tuple[int, int]) -> None:
    """The server's events wrap at the log's width, also after the terminal shrinks: they
    wrapped at 78 columns whatever the width (at 40 every line was cut, the log scrolled
    sideways) and lines written at 120 columns stayed that wide at 70."""
    app = make_app(AppConfig(embedded_server=False, serve=True))
    async with app.run_test(size=start) as pilot:
        await pilot.pause()
        await stage_server(app)
        await pilot.resize_terminal(*end)
        await pilot.pause(0.2)
        log = app.screen.query_one(ServerLog)
        assert log.max_scroll_x == 0
        assert log.virtual_size.width <= log.size.width
        # Every event is still there (rewrapped, not lost): the scene's last one at the end.
        assert "rdv-session-808" in "".join(strip.text for strip in log.lines[-3:])


#: Every width once, the heights in turn (each height meets the band of widths below).
#: With the old rule of the crash below put back, each of the 40 sizes of widths 1 to 40
#: and heights 1, 3, 6, 12 tried alone: the Connect screen crashed at 14 to 20 columns at
#: every height, the Session screen at 14 and 16 at every height and at 18x1, no other
#: size did. The width decides, so the whole grid (40 sizes, 44 s of the suite) checked
#: nothing that these 10 miss.
WIDTHS = (1, 5, 10, 14, 16, 18, 20, 24, 30, 40)
TINY = [(w, (1, 3, 6, 12)[n % 4]) for n, w in enumerate(WIDTHS)]
#: Where each screen's scrollbars flipped for good (with the old rules put back): every
#: screen but the Session screen at 3 and 4 columns, the Doctor screen's body at 5 and 6.
SETTLE_AT = {"doctor": (5, 20)}
#: Refreshes the app gets to settle after a resize, then those in which it must change
#: no scrollbar (a flipping one changed in each).
SETTLE, WATCHED = 3, 4


async def scrollbar_changes(app: RdvApp, pilot: Pilot[int], size: tuple[int, int]) -> int:
    """How often the current screen's scrollbars change, left alone at ``size``."""
    await pilot.resize_terminal(*size)
    for _ in range(SETTLE):
        await pilot.pause()
    changes = [0]

    def changed(_shown: bool) -> None:
        changes[0] += 1

    screen = app.screen
    for widget in [screen, *screen.query(Widget)]:
        for name in ("show_vertical_scrollbar", "show_horizontal_scrollbar"):
            screen.watch(widget, name, changed, init=False)
    for _ in range(WATCHED):
        await pilot.pause()
    return changes[0]


@pytest.mark.parametrize("scene", list(SCENES))
async def test_any_tiny_terminal_is_drawn_without_a_crash(scene: str) -> None:
    """A terminal squeezed to any size and back: at 14 to 18 columns the Connect screen's
    buttons were capped to 2 cells (a max-width in percent outranks a min-width), and
    wrapping their label at width 0 ended the app with 'range() arg 3 must not be zero'.
    At 3 columns (the Doctor screen: 5) no scrollbar comes and goes for good (module doc)."""
    make_config, stage, selectors = SCENES[scene]
    app = make_app(make_config())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await stage(app)
        for size in TINY:
            await pilot.resize_terminal(*size)
            await pilot.pause()
            assert app.is_running and app._exception is None, size
        size = SETTLE_AT.get(scene, (3, 20))
        flips = await scrollbar_changes(app, pilot, size)
        assert not flips, f"{flips} scrollbar changes in {WATCHED} refreshes at {size}"
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.2)
        assert_rows(app, *selectors)


@pytest.mark.parametrize(
    "size", [(40, 12), (80, 12), (40, 24), (80, 24)], ids=["40x12", "80x12", "40x24", "80x24"]
)
async def test_an_offer_keeps_its_text_and_buttons(tmp_path: Path, size: tuple[int, int]) -> None:
    """A real peer offers a file: at 40 columns two 16-cell buttons left the offer's text
    2 cells ('Pe'); below 20 rows the offer left the transfers list (where the offered
    file's row has its name) no row, and the download folder's line was cut away; at 40x24
    the text beside the buttons had 12 cells and broke the name into five lines."""
    note = tmp_path / "holiday-photos-2026-summer.tar"
    note.write_bytes(b"hello")
    app = make_app(config(tmp_path))
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        app.controller.session_switch_delay = 0.0
        session, conn = await dialed_session(app, pilot)
        send = asyncio.get_running_loop().create_task(session.send_paths([note]))
        bar = app.session_screen.query_one(OfferBar)
        await wait_for(pilot, lambda: bar.pending == 1)
        await pilot.pause(0.2)
        assert_rows(app, "#offer-text", min_width=10)
        for button in ("#offer-accept", "#offer-reject"):
            assert shown(app, button).height == 1, button
            assert shown(app, button).width >= len("Accept ^t"), button
        if size[1] >= 20:  # below 20 rows the text keeps to one line, cut with '…'
            text = [strip.text for strip in app.screen._compositor.render_strips()]
            assert any(note.name in line for line in text), text
        assert_rows(app, "#transfers", "#download-dir", "#send-bar", "#chat-log", "#chat-input")
        row = app.session_screen.query_one(FilesPane).row("in", 1)
        assert row is not None and row.id is not None
        assert_rows(app, f"#{row.id}", min_width=30)  # '↓ holiday-photos-…  offered'
        await pilot.press("ctrl+t")
        await send
        await session.close()
        await conn.close()


@pytest.mark.parametrize("width", [40, 50, 65, 80])
async def test_every_connect_option_is_in_sight_and_named(width: int) -> None:
    """Below 66 columns the four spaces of a row read 'pu…', 'pub…', 'pr…', 'pri…' (public4
    or public6?), and 'race only' and 'force relay' were past the right edge, out of sight
    (only Tab reached them)."""
    app = make_app(AppConfig(embedded_server=False, server_url="http://rdv.example.net:8080"))
    async with app.run_test(size=(width, 40)) as pilot:
        await pilot.pause()
        boxes = list(app.screen.query(Checkbox))
        assert len(boxes) == 10  # eight spaces, race only, force relay
        for box in boxes:
            label = str(box.label)
            region = shown(app, f"#{box.id}")
            assert region.height == 1, (label, region)
            assert region.width >= cell_len(label) + 4, (label, region)  # '▐✔▌ ' and the name
        for field in ("#wait", "#timeout", "#picker"):
            assert shown(app, field).width == app.screen.query_one(field).region.width, field


@pytest.mark.parametrize("width", [40, 80])
async def test_the_link_strip_shows_the_rtt(tmp_path: Path, width: int) -> None:
    """A real session on loopback: at 40 columns the throughput sparkline left the link
    strip's text 28 cells, and the RTT was cut ('RTT 8…')."""
    app = make_app(config(tmp_path))
    async with app.run_test(size=(width, 12)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        app.controller.session_switch_delay = 0.0
        session, conn = await dialed_session(app, pilot)
        link = app.session_screen.query_one(LinkStrip)
        await wait_for(pilot, lambda: link.rtt_ms is not None, limit=30)
        await pilot.pause(0.2)
        assert link.rtt_ms is not None
        region = shown(app, "#link")
        line = app.screen._compositor.render_strips()[region.y].text
        assert f"RTT {link.rtt_ms:.1f} ms" in line, line
        assert "★ P2P 127.0.0.1:" in line
        await session.close()
        await conn.close()
