"""Regenerate ``screenshots/*.svg`` from the real app: ``python -m rdv_tui.screenshots``.

Each shot runs the real app headless. The race and the session from the demo are live
(embedded server, an in-process peer, loopback only); ``screenshots/races/*.jsonl`` are
real races recorded in the NAT lab (``rdv lab run PRESET --json``, the dialer's events)
and replayed; the sample race, session and server scenes are fixed events fed to the
real screens (``rdv_tui.scenes``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from textual.widgets import DataTable, Input

from rdv_tui.app import AppConfig, RdvApp, make_app
from rdv_tui.scene_doctor import stage_doctor, stage_verdict
from rdv_tui.scenes import sample_race, session_app_config, stage_server, stage_session

Stage = Callable[[RdvApp], Awaitable[None]]

SIZE = (120, 34)
"""Terminal size of every shot (columns, rows)."""

REPO = Path(__file__).resolve().parent.parent
RACES = REPO / "screenshots" / "races"
"""Races recorded in the NAT lab, replayed into screenshots."""


async def _until(check: Callable[[], bool], limit: float = 30.0) -> None:
    async with asyncio.timeout(limit):
        while not check():  # noqa: ASYNC110 (polling app state: no event to wait on)
            await asyncio.sleep(0.05)


async def shoot(config: AppConfig, stage: Stage, out: Path, title: str) -> None:
    """Run the app headless, stage it, and save the screen as ``out``."""
    app = make_app(config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await stage(app)
        await pilot.pause(0.3)
        for field in app.screen.query(Input):
            field.cursor_blink = False
        await pilot.pause()
        svg = app.export_screenshot(title=title)
    await asyncio.to_thread(out.write_text, svg, encoding="utf-8")
    print(f"wrote {out}")


async def main(directory: Path) -> None:
    """Write every screenshot into ``directory``."""
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rdv-shots-") as tmp:
        work = Path(tmp)
        race_file = work / "race.jsonl"
        from rdv_core.events import write_jsonl

        with race_file.open("w") as stream:
            write_jsonl(sample_race(), stream)

        async def nothing(app: RdvApp) -> None:
            return None

        await shoot(
            AppConfig(replay=race_file),
            nothing,
            directory / "race-dashboard.svg",
            "rdv tui --replay race.jsonl",
        )

        async def details(app: RdvApp) -> None:
            table = app.race_screen.query_one("#race-table", DataTable)
            table.focus()
            table.move_cursor(row=0)
            table.action_select_cursor()
            await asyncio.sleep(0.2)

        await shoot(
            AppConfig(replay=race_file),
            details,
            directory / "race-candidate.svg",
            "rdv tui --replay race.jsonl: Enter on a row",
        )

        async def connect(app: RdvApp) -> None:
            await _until(lambda: app.controller.embedded is not None)
            app.connect_screen.query_one("#code", Input).value = "7-tulip-orbit"

        await shoot(
            AppConfig(export_dir=work, download_dir=work / "in"),
            connect,
            directory / "connect.svg",
            "rdv",
        )

        async def demo_race(app: RdvApp) -> None:
            app.controller.session_switch_delay = 3600.0  # stay on the dashboard for the shot
            await _until(lambda: app.race_screen.model.result is not None)
            await _until(lambda: app.controller.session is not None)
            await _until(lambda: "verdict:" in app.race_screen.diagnosis)

        await shoot(
            AppConfig(demo_dir=work / "demo1", download_dir=work / "demo1" / "you"),
            demo_race,
            directory / "demo-race.svg",
            "rdv demo: the race on loopback",
        )

        async def demo_session(app: RdvApp) -> None:
            app.controller.session_switch_delay = 0.1
            await _until(lambda: bool(app.session_screen.query("#t-1-out-1")))
            row = app.session_screen.query_one("#t-1-out-1")
            await _until(lambda: row.has_class("-done"))
            await asyncio.sleep(0.5)

        await shoot(
            AppConfig(demo_dir=work / "demo2", download_dir=work / "demo2" / "you"),
            demo_session,
            directory / "demo-session.svg",
            "rdv demo: chat and a verified file",
        )

        # Real races recorded in the NAT lab (`rdv lab run PRESET --json`, dialer side).
        for recorded in sorted(RACES.glob("*.jsonl")):
            await shoot(
                AppConfig(replay=recorded),
                nothing,
                directory / f"race-lab-{recorded.stem}.svg",
                f"rdv tui --replay {recorded.relative_to(REPO)}",
            )

        await shoot(
            session_app_config(),
            stage_session,
            directory / "session.svg",
            "rdv: session",
        )
        await shoot(
            AppConfig(embedded_server=False, serve=True),
            stage_server,
            directory / "server.svg",
            "rdv tui --serve",
        )
        await shoot(
            AppConfig(embedded_server=False, server_url="http://203.0.113.10:7000"),
            stage_doctor,
            directory / "doctor.svg",
            "rdv: doctor (cone-fw lab)",
        )
        await shoot(
            AppConfig(replay=race_file),
            stage_verdict,
            directory / "race-verdict.svg",
            "rdv: verdict",
        )


def run() -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument(
        "--out", type=Path, default=Path("screenshots"), help="folder (default: screenshots)"
    )
    args = parser.parse_args()
    asyncio.run(main(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(run())
