"""The rdv Textual app: one factory, :func:`make_app`, shared by the CLI, the demo and tests.

The app is thin: one screen per area, each in its own mode so that its state
survives switching (Connect F2, Race F3, Session F4, Server F5), and a
:class:`~rdv_tui.controller.Controller` that owns the embedded server, the attempts,
the connection and the session. Attributes down, messages up (docs/ARCHITECTURE.md
section 6): screens post what the user wants (``ConnectScreen.ConnectRequested``,
``SessionScreen.SendChat`` …) and the app hands it to the controller; core callbacks
only post :class:`RdvApp.CoreEvent` messages, routed to the screen that shows them.
Network work runs in async workers on Textual's own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Literal

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen

from rdv_core import events as ev
from rdv_core.events import Event, read_jsonl
from rdv_tui.cli.formatting import plural, shown_event
from rdv_tui.cli.stop_signals import late_exit, note_late, on_stop, take
from rdv_tui.controller import (
    DEMO_DASHBOARD_S,
    SESSION_SWITCH_DELAY_S,
    SESSION_UP_NOTE,
    Controller,
)
from rdv_tui.recent import Recent, default_path
from rdv_tui.recent_provider import RecentProvider
from rdv_tui.screens import PaletteCommands
from rdv_tui.screens.connect import ConnectScreen
from rdv_tui.screens.doctor import DoctorScreen
from rdv_tui.screens.race import RaceScreen
from rdv_tui.screens.server import ServerScreen
from rdv_tui.screens.session import SessionScreen
from rdv_tui.share import ServerChoice
from rdv_tui.widgets.files import FilesPane

Source = Literal["race", "session", "server"]


@dataclass(slots=True)
class AppConfig:
    """How the app starts.

    Attributes:
        replay: Open the dashboard on this saved race (JSONL) instead of connecting.
        serve: Open on the Server screen.
        listen: Host and port of the embedded server (port 0: any free port).
        server_url: Use this rdv server; None starts the embedded one.
        export_dir: Where race exports (JSONL) and screenshots (SVG) go.
        download_dir: Where received files go (default: the user's downloads folder).
        recent_path: The recent servers/codes file; None keeps them in memory only.
        demo_dir: Run the one-machine demo (embedded server, an in-process peer that
            accepts, chat echoed, a sample file sent and verified) with its files here.
        embedded_server: Start the embedded server (off for a pure replay).
        form: Connect form settings from the command line (``rdv tui --spaces ...``),
            as :meth:`~rdv_tui.attempt.ConnectParams.form_settings` writes them.
        exit_on_signals: Quit cleanly on SIGTERM and SIGHUP (a closed terminal), so
            that the embedded server, the session and the demo's folder are cleaned up.
    """

    replay: Path | None = None
    serve: bool = False
    listen: tuple[str, int] = ("127.0.0.1", 0)
    server_url: str | None = None
    export_dir: Path = field(default_factory=Path.cwd)
    download_dir: Path | None = None
    recent_path: Path | None = None
    demo_dir: Path | None = None
    embedded_server: bool = True
    form: dict[str, Any] | None = None
    exit_on_signals: bool = False


EXIT_SIGNALS = (signal.SIGTERM, signal.SIGHUP)

REPLACE_CONFIRM_S = 5.0
"""With a session open, a second Connect within this many seconds replaces it."""

QUIT_CONFIRM_S = 5.0
"""With files still moving, a second ``ctrl+q`` (or ``ctrl+l``, End session) within this
many seconds does it."""

QUIT_REASON = "the peer quit the rdv app"
"""What the peer reads when the app quits with a session open (docs/PROTOCOL.md 12.10: a
clean close with a reason, as Ctrl-C and SIGTERM are for ``rdv send``); ``closed by peer``
did not tell it that the transfer would not come back on its own."""


def load_race(path: Path) -> list[Event]:
    """Read a saved race.

    Raises:
        ValueError: when the file is not a JSONL event stream (with the line number),
            or holds no events at all (a dashboard would wait forever).
        OSError: when it cannot be read.
    """
    with path.open(encoding="utf-8") as stream:
        # Anyone may have written the file: its texts are shown like the network's.
        try:
            events = [shown_event(event) for event in read_jsonl(stream)]
        except UnicodeDecodeError:
            raise ValueError("not a text file (an export is UTF-8 JSON lines)") from None
    if not events:
        raise ValueError("the file has no events (an export holds at least the attempt's start)")
    return events


def default_download_dir() -> Path:
    """The user's downloads folder (what ``rdv receive`` uses too)."""
    from rdv_core.config import default_downloads

    return default_downloads()


class RdvApp(App[int]):
    """The rdv app. Build it with :func:`make_app`.

    Attributes:
        config: How it was started.
        recent: Remembered servers and codes.
        controller: The embedded server, the attempts, the conn and the session.
        connect_screen: The form (mode ``connect``, F2).
        race_screen: The race dashboard (mode ``race``, F3); a replay replaces it.
        session_screen: Chat and files (mode ``session``, F4).
        server_screen: The embedded server (mode ``server``, F5).
        doctor_screen: The doctor's checks (mode ``doctor``, F6).
    """

    CSS_PATH = "rdv.tcss"
    COMMANDS = App.COMMANDS | {RecentProvider}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    """Screens get ``-narrow`` below 100 columns: rdv.tcss lays out 80x24 on its own terms."""
    VERTICAL_BREAKPOINTS = [(0, "-short"), (20, "-tall")]
    """Screens get ``-short`` below 20 rows: rdv.tcss caps what would take every row."""
    TITLE = "rdv"
    SUB_TITLE = "relay-assisted peer-to-peer TCP"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "show('connect')", "Connect"),
        Binding("f3", "show('race')", "Race"),
        Binding("f4", "show('session')", "Session"),
        Binding("f5", "show('server')", "Server"),
        Binding("f6", "show('doctor')", "Doctor"),
        Binding("ctrl+s", "save_svg", "Save SVG", show=False),
    ]

    MODES_HELP: ClassVar[tuple[tuple[str, str, str], ...]] = (
        ("connect", "F2", "server, code, role, spaces, picker"),
        ("race", "F3", "the race dashboard"),
        ("session", "F4", "chat and files"),
        ("server", "F5", "the embedded server's lobby and pairs"),
        ("doctor", "F6", "NAT mapping, filtering, hairpinning, in plain words"),
    )
    """The ``Show …`` palette entries: mode, key, what the screen shows."""

    @dataclass
    class CoreEvent(Message):
        """An event from rdv_core (client race, session or server), posted by ``on_event``."""

        event: Event
        source: Source
        attempt: int | None = None
        """The attempt a race event belongs to (the controller numbers them)."""

        def can_replace(self, message: Message) -> bool:
            # Progress is high-frequency and mergeable: a newer one for the same
            # transfer supersedes an older one still in the queue.
            if not isinstance(message, RdvApp.CoreEvent):
                return False
            new, old = self.event, message.event
            return (
                isinstance(new, ev.FileProgress)
                and isinstance(old, ev.FileProgress)
                and (new.transfer_id, new.direction) == (old.transfer_id, old.direction)
            )

    @dataclass
    class CoreEvents(Message):
        """Session events emitted in one run of the loop, posted as one message.

        A send of 10,000 small files emits some 40,000 events: one message each would
        queue a typed key behind all of them (issue 14).
        """

        events: tuple[Event, ...]
        source: Source
        attempt: int | None = None
        """The attempt whose session emitted them."""

    def __init__(self, config: AppConfig) -> None:
        super().__init__()
        self.config = config
        self.recent = Recent.load(config.recent_path)
        self.controller = Controller(
            self,
            download_dir=config.download_dir or default_download_dir(),
            session_switch_delay=DEMO_DASHBOARD_S if config.demo_dir else SESSION_SWITCH_DELAY_S,
        )
        self.race_screen = RaceScreen(export_dir=config.export_dir)
        self.session_screen = SessionScreen(download_dir=self.controller.download_dir)
        self.connect_screen = ConnectScreen(self._servers(), config.form)
        self.server_screen = ServerScreen()
        self.doctor_screen = DoctorScreen()
        self._replace_asked_at = 0.0
        """When the user was last told that connecting ends the open session."""
        self._cut_asked_at: dict[str, float] = {}
        """When the user was last told that quitting (or ending the session) stops the
        files still moving, by key."""
        self._quit_reason = QUIT_REASON
        """What the peer reads when the app ends (a signal gives its own)."""
        self._signals: tuple[signal.Signals, ...] = ()
        """The exit signals the app took over (none inherited as ignored: ``nohup``)."""
        self.add_mode("connect", lambda: self.connect_screen)
        self.add_mode("race", lambda: self.race_screen)
        self.add_mode("session", lambda: self.session_screen)
        self.add_mode("server", lambda: self.server_screen)
        self.add_mode("doctor", lambda: self.doctor_screen)

    # ----- start and stop

    async def on_mount(self) -> None:
        config = self.config
        if config.exit_on_signals:
            self._signals = take(EXIT_SIGNALS)  # (run_app took them) nohup: SIGHUP stays ignored
        if config.replay is not None:
            self.race_screen = RaceScreen(
                load_race(config.replay), source=config.replay.name, export_dir=config.export_dir
            )
            await self.switch_mode("race")
        else:
            await self._host_server()
            await self.switch_mode("server" if config.serve else "connect")
        if config.exit_on_signals:
            # Only now does one quit the app, noted until here: an exit asked while the
            # Connect screen mounted ended the app with a NoMatches traceback (seen under
            # a SIGTERM burst at start-up).
            early = on_stop(partial(self._signalled, asyncio.get_running_loop()))
            if early is not None:  # while the app started: quit, no demo to start
                self._exit_on_signal(early)
                return
        if config.demo_dir is not None:
            self.controller.start_demo(config.demo_dir)

    async def on_unmount(self) -> None:
        # The screens are already taken apart here, and closing the session below wakes
        # workers that wait on it (the verdict waits up to 5 s for the peer's report):
        # one that then drew on the Race screen ended the app with a NoMatches
        # traceback. Textual would cancel them only after this handler.
        self.workers.cancel_all()
        try:
            await self.controller.close(self._quit_reason)
        finally:
            # Only now, and noted until the process ends: a SIGTERM 0.3 s after ctrl+q
            # quits nothing twice, it ends the process with 143 once the close is done.
            note_late(self._signals)

    def _signalled(self, loop: asyncio.AbstractEventLoop, signum: signal.Signals) -> None:
        """A taken signal, in its handler (between two bytecodes): only schedule."""
        with contextlib.suppress(RuntimeError):  # the loop closed: late_exit has it noted
            loop.call_soon_threadsafe(self._exit_on_signal, signum)

    def _exit_on_signal(self, signum: int) -> None:
        """SIGTERM or SIGHUP: quit now (nobody is there to answer), telling the peer why."""
        from rdv_tui.transfer_stop import STOPPING

        self._quit_reason = STOPPING[signal.Signals(signum)][0]
        self.exit(128 + signum)

    async def action_quit(self) -> None:
        """Quit; with files still moving, only once asked twice (a stray ``ctrl+q`` cut a
        4 GiB send off at 9 % without a word)."""
        if not self._asks_first("ctrl+q", "quitting", "quits"):
            self.exit()

    def _asks_first(self, key: str, doing: str, does: str) -> bool:
        """With files of the open session unfinished, say what ``key`` would cut off and
        return True, unless it was said for ``key`` within :data:`QUIT_CONFIRM_S`."""
        session = self.controller.session
        unfinished = (
            0 if session is None or session.closed else self.session_screen.files_unfinished()
        )
        now = time.monotonic()
        if not unfinished or now - self._cut_asked_at.get(key, 0.0) <= QUIT_CONFIRM_S:
            self._cut_asked_at.pop(key, None)
            return False
        self._cut_asked_at[key] = now
        self.notify(
            f"{plural(unfinished, 'file')} not finished: {doing} stops them (partial files "
            f"are kept: send again to resume). {key} again within {QUIT_CONFIRM_S:g} s {does}",
            severity="warning",
            title="Transfer running",
            timeout=QUIT_CONFIRM_S,
        )
        return True

    async def _host_server(self) -> None:
        """Start the embedded server unless it runs, is off, or another server is used."""
        config = self.config
        if self.controller.embedded is not None:
            return
        if not config.embedded_server or config.server_url is not None:
            return
        host, port = config.listen
        embedded = await self.controller.start_embedded_server(host, port)
        self.server_screen.listen_error = self.controller.listen_error
        self.connect_screen.show_servers(self._servers())  # hosting, or why not
        if embedded is None:
            return
        self.server_screen.embedded = embedded

    def doctor_urls(self) -> list[str]:
        """The server the Doctor screen checks: ``--server``, else the embedded one."""
        if self.config.server_url:
            return [self.config.server_url]
        embedded = self.controller.embedded
        return [embedded.url] if embedded is not None else []

    def _servers(self) -> ServerChoice:
        return ServerChoice(
            self.config.server_url,
            self.controller.embedded,
            self.recent,
            self.controller.listen_error,
        )

    # ----- screens

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The key of the screen already shown is pointless: hide it (the footer of the
        Connect screen read ``^r Connect  f2 Connect``)."""
        return not (action == "show" and parameters and parameters[0] == self.current_mode)

    async def action_show(self, mode: str) -> None:
        """Switch to a screen by mode name (connect, race, session, server)."""
        if mode in ("connect", "server", "doctor"):
            await self._host_server()  # a replay starts without one; connecting needs it
        if mode == "doctor" and not self.doctor_screen.urls:
            self.doctor_screen.urls = self.doctor_urls()
        await self.switch_mode(mode)
        self.refresh_bindings()

    def on_rdv_app_core_event(self, message: CoreEvent) -> None:
        """Route one core event to the screen that shows it."""
        self._route(message.event, message.source, message.attempt)

    def on_rdv_app_core_events(self, message: CoreEvents) -> None:
        """Route a burst of core events, in order."""
        for event in message.events:
            self._route(event, message.source, message.attempt)

    def _route(self, event: Event, source: Source, attempt: int | None) -> None:
        if source == "server":
            self.server_screen.add_event(event)
        elif source == "race":
            if self.controller.is_current(attempt):  # not a replaced attempt's
                self.race_screen.feed(event)
                if isinstance(event, ev.Upgraded | ev.UpgradeFailed):
                    self.session_screen.feed(event)  # fast start: the link strip
        else:
            self.session_screen.feed(event)
            if (
                isinstance(event, ev.SessionClosed)
                and self.controller.is_current(attempt)
                and self.race_screen.note == SESSION_UP_NOTE
            ):
                # The dashboard said "session up: F4 for chat and files" after it ended.
                self.race_screen.note = f"session ended: {event.reason} (F2 to start another)"

    # ----- what the screens ask for

    def on_connect_screen_connect_requested(self, message: ConnectScreen.ConnectRequested) -> None:
        session = self.controller.session
        if session is not None and not session.closed:
            # A new attempt ends the open session: a stray Enter in the form (F2 to read
            # the code) ended a chat and its transfers without a word. Ask once.
            now = time.monotonic()
            if now - self._replace_asked_at > REPLACE_CONFIRM_S:
                self._replace_asked_at = now
                self.notify(
                    "a session is open: connect again within "
                    f"{REPLACE_CONFIRM_S:g} s to end it and start a new attempt",
                    severity="warning",
                    title="Session open",
                )
                return
        self._replace_asked_at = 0.0
        self.controller.start_attempt(message.params)

    def on_race_screen_cancel_requested(self, message: RaceScreen.CancelRequested) -> None:
        self.controller.cancel_attempt()

    def on_session_screen_send_chat(self, message: SessionScreen.SendChat) -> None:
        self.controller.send_chat(message.text)

    def on_session_screen_send_paths(self, message: SessionScreen.SendPaths) -> None:
        self.controller.send_paths(message.paths)

    def on_files_pane_cancel_transfer(self, message: FilesPane.CancelTransfer) -> None:
        self.controller.cancel_transfer(message.direction, message.transfer_id)

    def on_files_pane_cancel_transfers(self, message: FilesPane.CancelTransfers) -> None:
        self.controller.cancel_transfers(message.direction, message.transfer_ids)

    def on_session_screen_end_session(self, message: SessionScreen.EndSession) -> None:
        # ctrl+l is "redraw" in many terminal programs: pressed from habit, it ended the
        # session and its transfers at once.
        if not self._asks_first("ctrl+l", "ending the session", "ends it"):
            self.controller.end_session()

    # ----- shared actions

    def action_save_svg(self) -> None:
        """Save the current screen as an SVG file in the export folder."""
        export_dir = self.config.export_dir
        name = time.strftime(f"rdv-{self.current_mode}-%Y%m%d-%H%M%S.svg")
        try:
            export_dir.mkdir(parents=True, exist_ok=True)
            path = self.save_screenshot(filename=name, path=str(export_dir))
        except OSError as exc:
            # The export folder (default: the current one) may be read-only, full or a
            # file: the app, and the session it holds, died with a traceback.
            self.notify(
                f"cannot save the screen: {exc}",
                title="Screenshot",
                severity="error",
                markup=False,
            )
            return
        self.notify(f"screen saved to {path}", title="Screenshot", markup=False)

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Textual's entries (less its own "Screenshot": ours saves to the export
        folder), the app's own (SVG, screens), then the screen's."""
        for command in super().get_system_commands(screen):
            if command.title != "Screenshot":
                yield command
        yield SystemCommand(
            "Save screen as SVG", "Write this screen to an SVG file (ctrl+s)", self.action_save_svg
        )
        for mode, key, what in self.MODES_HELP:
            if mode == self.current_mode:
                continue  # as in the footer (check_action): the screen already shown
            yield SystemCommand(
                f"Show {mode}", f"{what} ({key})", lambda m=mode: self.run_action(f"show('{m}')")
            )
        if isinstance(screen, PaletteCommands):
            yield from screen.palette_commands()


def make_app(config: AppConfig | None = None) -> RdvApp:
    """The app, configured: the one way the CLI, the demo and the tests build it."""
    if config is None:
        config = AppConfig(recent_path=default_path())
    return RdvApp(config)


def run_app(app: RdvApp) -> int:
    """Run ``app`` in this terminal and return its exit code.

    ``App.run()`` returns None when the app dies of an exception (Textual prints the
    traceback and sets ``return_code`` to 1): ``rdv tui`` and ``rdv demo`` exited 0
    after a crash, and a script could not tell.
    """
    if app.config.exit_on_signals:
        # Before Textual takes the terminal over: a SIGTERM while the app starts was met
        # by the default action (exit -15, the terminal left in the app's screen).
        take(EXIT_SIGNALS)
        if on_stop(None) is not None:
            return late_exit(0)  # one came already (rdv demo took them first): no app
    try:
        result = app.run()
    finally:
        on_stop(None)  # the app's loop is gone: only noted from here on
    if isinstance(result, int):
        return late_exit(result)
    return late_exit(app.return_code or 0)
