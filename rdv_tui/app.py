"""The rdv Textual app: one factory, :func:`make_app`, shared by the CLI and the tests.

The app is thin: it owns the embedded server (when it hosts one), the screens and
the actions every screen shares (screenshots, switching screens). Race, session and
server logic live in ``rdv_core``; the screens only fold its events into widgets.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from rdv_core.events import Event, read_jsonl
from rdv_tui.screens.race import RaceScreen


@dataclass(slots=True)
class AppConfig:
    """How the app starts.

    Attributes:
        replay: Open the dashboard on this saved race (JSONL) instead of connecting.
        serve: Open on the Server screen.
        listen: Host and port of the embedded server (port 0: any free port).
        server_url: Use this rdv server; None starts the embedded one.
        export_dir: Where race exports (JSONL) and screenshots (SVG) go.
        download_dir: Where received files go (None: the session layer's default).
        demo: Run the one-machine demo (embedded server, in-process peer, chat, a file).
    """

    replay: Path | None = None
    serve: bool = False
    listen: tuple[str, int] = ("127.0.0.1", 0)
    server_url: str | None = None
    export_dir: Path = field(default_factory=Path.cwd)
    download_dir: Path | None = None
    demo: bool = False


def load_race(path: Path) -> list[Event]:
    """Read a saved race.

    Raises:
        ValueError: when the file is not a JSONL event stream (with the line number).
        OSError: when it cannot be read.
    """
    with path.open(encoding="utf-8") as stream:
        return list(read_jsonl(stream))


class RdvApp(App[int]):
    """The rdv app. Build it with :func:`make_app`."""

    CSS_PATH = "rdv.tcss"
    TITLE = "rdv"
    SUB_TITLE = "relay-assisted peer-to-peer TCP"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save_svg", "Save SVG", show=False),
    ]

    def __init__(self, config: AppConfig) -> None:
        super().__init__()
        self.config = config
        self.export_dir = config.export_dir
        self.race_screen: RaceScreen | None = None

    def on_mount(self) -> None:
        if self.config.replay is not None:
            events = load_race(self.config.replay)
            self.race_screen = RaceScreen(events, source=self.config.replay.name)
            self.push_screen(self.race_screen)

    # ----- shared actions

    def action_save_svg(self) -> None:
        """Save the current screen as an SVG file in the export folder."""
        self.export_dir.mkdir(parents=True, exist_ok=True)
        name = time.strftime("rdv-screen-%Y%m%d-%H%M%S.svg")
        path = self.save_screenshot(filename=name, path=str(self.export_dir))
        self.notify(f"screen saved to {path}", title="Screenshot")

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand(
            "Save screen as SVG", "Write this screen to an SVG file", self.action_save_svg
        )
        if isinstance(screen, RaceScreen):
            yield SystemCommand(
                "Export race as JSONL", "Save every race event to a file", screen.action_export_race
            )
            yield SystemCommand(
                "Zoom time axis", "Race only / whole attempt", screen.action_toggle_zoom
            )
            yield SystemCommand("Replay race", "Play the recorded events again", screen.action_play)


def make_app(config: AppConfig | None = None) -> RdvApp:
    """The app, configured: the one way the CLI, the demo and the tests build it."""
    return RdvApp(config or AppConfig())
