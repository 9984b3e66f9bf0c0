"""Snapshot tests (pytest-textual-snapshot): they pin the look of each screen.

Every scene is deterministic (fixed events and timestamps, see ``rdv_tui.scenes``).
Regenerate after an intended change with ``pytest tests/tui --snapshot-update`` and
review the SVGs in ``tests/tui/__snapshots__/``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from rdv_core.events import write_jsonl
from rdv_tui.app import AppConfig, RdvApp, make_app
from rdv_tui.scene_doctor import stage_doctor, stage_verdict
from rdv_tui.scenes import sample_race, session_app_config, stage_server, stage_session

SnapCompare = Callable[..., bool]
SIZES = pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])


def test_fixture_file_is_the_sample_race(race_file: Path) -> None:
    stream = io.StringIO()
    write_jsonl(sample_race(), stream)
    assert race_file.read_text() == stream.getvalue()


@SIZES
def test_race_dashboard(snap_compare: SnapCompare, race_file: Path, size: tuple[int, int]) -> None:
    app: Any = make_app(AppConfig(replay=race_file))
    assert snap_compare(app, terminal_size=size)


@SIZES
def test_session_screen(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    app: Any = make_app(session_app_config())

    async def stage(pilot: Pilot[int]) -> None:
        assert isinstance(pilot.app, RdvApp)
        await stage_session(pilot.app)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=stage)


@SIZES
def test_server_screen(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    app: Any = make_app(AppConfig(embedded_server=False, serve=True))

    async def stage(pilot: Pilot[int]) -> None:
        assert isinstance(pilot.app, RdvApp)
        await stage_server(pilot.app)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=stage)


@SIZES
def test_connect_screen(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    app: Any = make_app(AppConfig(embedded_server=False, server_url="http://rdv.example.net:8080"))

    async def stage(pilot: Pilot[int]) -> None:
        assert isinstance(pilot.app, RdvApp)
        screen = pilot.app.connect_screen
        screen.query_one("#code", Input).value = "7-tulip-orbit"
        for field in screen.query(Input):
            field.cursor_blink = False
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=stage)


@SIZES
def test_doctor_screen(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    app: Any = make_app(AppConfig(embedded_server=False, server_url="http://203.0.113.10:7000"))

    async def stage(pilot: Pilot[int]) -> None:
        assert isinstance(pilot.app, RdvApp)
        await stage_doctor(pilot.app)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=stage)


@SIZES
def test_race_verdict(snap_compare: SnapCompare, race_file: Path, size: tuple[int, int]) -> None:
    """The verdict's sentence under the banner: in sight at 80x24 (below the waterfall it
    began under the last row)."""
    app: Any = make_app(AppConfig(replay=race_file))

    async def stage(pilot: Pilot[int]) -> None:
        assert isinstance(pilot.app, RdvApp)
        await stage_verdict(pilot.app)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=stage)


def test_race_dashboard_short(snap_compare: SnapCompare, race_file: Path) -> None:
    """At 40x12 the header and the banner are capped: the table and the waterfall show."""
    app: Any = make_app(AppConfig(replay=race_file))
    assert snap_compare(app, terminal_size=(40, 12))
