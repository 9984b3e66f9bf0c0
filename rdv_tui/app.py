"""The rdv Textual app: one factory, :func:`make_app`, shared by the CLI, the demo and tests.

The app is thin. It owns the embedded server (when it hosts one), the current
connection and session, and one screen per area, each in its own mode so that its
state survives switching: Connect (F2), Race (F3), Session (F4), Server (F5).
Core callbacks (``on_event``) only post :class:`RdvApp.CoreEvent` messages; the
handler routes each event to the screen that shows it. Network work runs in async
``@work`` workers on Textual's own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.worker import WorkerCancelled, WorkerFailed

from rdv_core import events as ev
from rdv_core.client._conn import Conn
from rdv_core.errors import RdvError
from rdv_core.events import Event, read_jsonl
from rdv_core.session import IncomingOffer, Session, SessionError, generate_code, parse_code
from rdv_core.wire import ACCEPT, DIAL, AddrSpace, Method, parse_server_url
from rdv_tui.attempt import ConnectParams
from rdv_tui.demo_peer import DemoPeer, write_sample
from rdv_tui.embedded import EmbeddedServer
from rdv_tui.race_model import is_race_event
from rdv_tui.recent import Recent, default_path
from rdv_tui.recent_provider import RecentProvider
from rdv_tui.screens.connect import ConnectScreen
from rdv_tui.screens.race import RaceScreen
from rdv_tui.screens.server import ServerScreen
from rdv_tui.screens.session import SessionScreen
from rdv_tui.widgets.chat import ChatPane

log = logging.getLogger("rdv.tui")

Source = Literal["race", "session", "server"]

SESSION_SWITCH_DELAY_S = 1.5
"""After a successful race, the dashboard stays up this long before the Session screen."""

DEMO_DASHBOARD_S = 3.0
"""The demo shows its race a little longer: it is what the demo is about."""


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


def load_race(path: Path) -> list[Event]:
    """Read a saved race.

    Raises:
        ValueError: when the file is not a JSONL event stream (with the line number).
        OSError: when it cannot be read.
    """
    with path.open(encoding="utf-8") as stream:
        return list(read_jsonl(stream))


def default_download_dir() -> Path:
    """The user's downloads folder (what ``rdv receive`` uses too)."""
    from rdv_core.config import default_downloads

    return default_downloads()


class RdvApp(App[int]):
    """The rdv app. Build it with :func:`make_app`.

    Attributes:
        config: How it was started.
        embedded: The server the app hosts, if any.
        conn: The current connection (after a successful race).
        session: The current encrypted session (chat and files).
        recent: Remembered servers and codes.
    """

    CSS_PATH = "rdv.tcss"
    COMMANDS = App.COMMANDS | {RecentProvider}
    TITLE = "rdv"
    SUB_TITLE = "relay-assisted peer-to-peer TCP"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "show('connect')", "Connect"),
        Binding("f3", "show('race')", "Race"),
        Binding("f4", "show('session')", "Session"),
        Binding("f5", "show('server')", "Server"),
        Binding("ctrl+s", "save_svg", "Save SVG", show=False),
    ]

    @dataclass
    class CoreEvent(Message):
        """An event from rdv_core (client race, session or server), posted by ``on_event``."""

        event: Event
        source: Source

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

    def __init__(self, config: AppConfig) -> None:
        super().__init__()
        self.config = config
        self.export_dir = config.export_dir
        self.download_dir = config.download_dir or default_download_dir()
        self.recent = Recent.load(config.recent_path)
        self.embedded: EmbeddedServer | None = None
        self.conn: Conn | None = None
        self.session: Session | None = None
        self.session_switch_delay = DEMO_DASHBOARD_S if config.demo_dir else SESSION_SWITCH_DELAY_S
        self.demo_peer: DemoPeer | None = None
        self._demo_task: asyncio.Task[str] | None = None
        self.race_screen = RaceScreen()
        self.session_screen = SessionScreen(download_dir=self.download_dir)
        self.connect_screen = ConnectScreen()
        self.server_screen = ServerScreen()
        self.add_mode("connect", lambda: self.connect_screen)
        self.add_mode("race", lambda: self.race_screen)
        self.add_mode("session", lambda: self.session_screen)
        self.add_mode("server", lambda: self.server_screen)

    # ----- start and stop

    async def on_mount(self) -> None:
        config = self.config
        if config.replay is not None:
            self.race_screen = RaceScreen(load_race(config.replay), source=config.replay.name)
            await self.switch_mode("race")
            return
        if config.embedded_server and config.server_url is None:
            await self.start_embedded_server()
        await self.switch_mode("server" if config.serve else "connect")
        if config.demo_dir is not None:
            self.run_demo(config.demo_dir)

    async def start_embedded_server(self) -> None:
        """Start the embedded server on the configured address; say so if that fails."""
        host, port = self.config.listen
        try:
            self.embedded = await EmbeddedServer.start(host, port, self._server_event)
        except OSError as exc:
            self.notify(f"cannot listen on {host}:{port}: {exc}", severity="error", title="Server")
            return
        if self.connect_screen.is_mounted:
            self.connect_screen.refresh_share()

    async def on_unmount(self) -> None:
        await self._close_connection()
        if self._demo_task is not None:
            self._demo_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RdvError, SessionError, OSError):
                await self._demo_task
        if self.embedded is not None:
            await self.embedded.close()
            self.embedded = None

    async def _close_connection(self) -> None:
        session, conn = self.session, self.conn
        self.session = self.conn = None
        if session is not None and not session.closed:
            try:
                async with asyncio.timeout(2.0):
                    await session.close()
            except (TimeoutError, SessionError, OSError) as exc:
                log.debug("session close: %s", exc)
        if conn is not None:
            await conn.close()

    # ----- what the Connect screen shows

    def default_server_url(self) -> str:
        """The server URL the Connect form starts with."""
        if self.config.server_url:
            return self.config.server_url
        if self.embedded is not None:
            return self.embedded.url
        return self.recent.servers[0] if self.recent.servers else ""

    def default_spaces(self) -> AddrSpace:
        """Address spaces the form starts with: loopback too when the server is local."""
        url = self.default_server_url()
        try:
            host = parse_server_url(url).host if url else ""
        except ValueError:
            host = ""
        local = host in ("127.0.0.1", "localhost", "::1", "[::1]")
        return AddrSpace.DEFAULT | (AddrSpace.LOOPBACK if local else AddrSpace.INVALID)

    def share_text(self, code: str = "", role: str = "dial", race_only: bool = False) -> str:
        """What to tell the other machine, shown on top of the Connect screen.

        Args:
            code: The code in the form (shown in the command for the other machine).
            role: Our role; the other machine takes the opposite one.
            race_only: The code is a raw token: the other side runs ``rdv dial/accept``.
        """
        if self.config.server_url:
            url = self.config.server_url
            head = f"Server {url}: the other machine uses it with the same code."
        elif self.embedded is None:
            return "Starting the embedded server…"
        else:
            urls = self.embedded.share_urls()
            url = urls[0]
            head = f"This app hosts an rdv server at {', '.join(urls)}."
            if self.embedded.is_loopback_only:
                head += " Loopback only: for other machines, start with rdv tui --listen :8080"
        other = "accept" if role == "dial" else "dial"
        shown = code.strip() or "CODE"
        if race_only:
            command = f"rdv {other} --server {url} {shown}"
        elif other == "accept":
            command = f"rdv receive --server {url} {shown}   or   rdv tui --server {url} (accept)"
        else:
            command = f"rdv tui --server {url} (dial, same code)"
        return f"{head}\nOn the other machine: {command}"

    # ----- screens

    async def action_show(self, mode: str) -> None:
        """Switch to a screen by mode name (connect, race, session, server)."""
        if mode in ("connect", "server") and self.embedded is None:
            # A replay starts without a server; connecting afterwards needs one.
            config = self.config
            if config.embedded_server and config.server_url is None:
                await self.start_embedded_server()
        await self.switch_mode(mode)

    # ----- events from the core

    def _race_event(self, event: Event) -> None:
        self.post_message(self.CoreEvent(event, "race"))

    def _session_event(self, event: Event) -> None:
        self.post_message(self.CoreEvent(event, "session"))

    def _server_event(self, event: Event) -> None:
        self.post_message(self.CoreEvent(event, "server"))

    def on_rdv_app_core_event(self, message: CoreEvent) -> None:
        event = message.event
        if message.source == "server":
            self.server_screen.add_event(event)
        elif message.source == "race" or is_race_event(event):
            self.race_screen.feed(event)
        else:
            self.session_screen.feed(event)

    # ----- attempts

    @work(exclusive=True, group="attempt")
    async def start_attempt(self, params: ConnectParams) -> None:
        """Run one attempt: the race on the dashboard, then (unless race-only) a session."""
        await self._close_connection()
        self.recent.remember(params.server_url, params.code if not params.race_only else None)
        self.race_screen.reset()
        await self.switch_mode("race")
        client = params.make_client(self._race_event)
        try:
            method: Method = DIAL if params.role == "dial" else ACCEPT
            conn = await client.connect(method, params.server_url, params.token)
        except (RdvError, ValueError, OSError) as exc:
            self.notify(str(exc), severity="error", title="Connection failed", timeout=10)
            return
        self.conn = conn
        if params.race_only:
            self.race_screen.set_note("race-only: conn open (F2 to start another)")
            return
        self.race_screen.set_note("starting the encrypted session…")
        try:
            await asyncio.to_thread(self.download_dir.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            self.notify(f"cannot create {self.download_dir}: {exc}", severity="error")
        session = Session(
            conn.reader,
            conn.writer,
            parse_code(params.code),
            is_dialer=params.role == "dial",
            on_event=self._session_event,
            on_offer=self._ask_offer,
            download_dir=self.download_dir,
            is_relay=conn.is_relay,
            peer_addr=str(conn.remote_addr),
        )
        try:
            await session.start()
        except (SessionError, OSError) as exc:
            self.race_screen.set_note(f"session failed: {exc}")
            self.notify(str(exc), severity="error", title="Session failed", timeout=10)
            await conn.close()
            self.conn = None
            return
        self.session = session
        self.race_screen.set_note("session up: F4 for chat and files")
        await asyncio.sleep(self.session_switch_delay)
        if self.current_mode == "race":
            await self.switch_mode("session")

    @work(group="demo")
    async def run_demo(self, directory: Path) -> None:
        """The one-machine demo: a peer that accepts, the race, chat, a verified file."""
        if self.embedded is None:
            self.notify("the demo needs the embedded server", severity="error")
            return
        code = generate_code()
        params = ConnectParams(
            server_url=self.embedded.url,
            code=code,
            role="dial",
            spaces=AddrSpace.LOOPBACK,
            timeout_s=60.0,
        )
        self.connect_screen.show_params(params)  # F2 shows what the demo runs
        self.demo_peer = DemoPeer(self.embedded.url, code, directory / "peer")
        self._demo_task = asyncio.get_running_loop().create_task(self.demo_peer.run())
        try:
            await self.start_attempt(params).wait()
        except (WorkerCancelled, WorkerFailed):
            return  # the app is closing, or the failure is already on screen
        session = self.session
        if session is None:
            return
        sample = await asyncio.to_thread(write_sample, directory / "outbox")
        try:
            await session.send_chat("hello from the dialing side")
            await session.send_paths([sample])
        except (SessionError, OSError) as exc:
            self.notify(str(exc), severity="error", title="Demo")
            return
        self.session_screen.query_one(ChatPane).add(
            "info", "demo: type a message below, the peer echoes it; F3 shows the race again"
        )

    async def _ask_offer(self, offer: IncomingOffer) -> bool:
        """The session's ``on_offer``: ask the user in the files pane."""
        if self.current_mode != "session":
            await self.switch_mode("session")
        self.bell()
        return await self.session_screen.ask_offer(offer)

    def end_session(self) -> None:
        """Close the current session and conn."""
        if self.session is None and self.conn is None:
            self.notify("no open session")
            return
        self.run_worker(self._close_connection(), group="close")
        self.notify("session closed")

    # ----- shared actions

    def action_save_svg(self) -> None:
        """Save the current screen as an SVG file in the export folder."""
        self.export_dir.mkdir(parents=True, exist_ok=True)
        name = time.strftime(f"rdv-{self.current_mode}-%Y%m%d-%H%M%S.svg")
        path = self.save_screenshot(filename=name, path=str(self.export_dir))
        self.notify(f"screen saved to {path}", title="Screenshot")

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand(
            "Save screen as SVG", "Write this screen to an SVG file (ctrl+s)", self.action_save_svg
        )
        for mode, key, what in (
            ("connect", "F2", "server, code, role, spaces, picker"),
            ("race", "F3", "the race dashboard"),
            ("session", "F4", "chat and files"),
            ("server", "F5", "the embedded server's lobby and pairs"),
        ):
            yield SystemCommand(
                f"Show {mode}", f"{what} ({key})", lambda m=mode: self.run_action(f"show('{m}')")
            )
        if isinstance(screen, RaceScreen):
            yield SystemCommand(
                "Export race as JSONL",
                "Save every race event to a file (e)",
                screen.action_export_race,
            )
            yield SystemCommand(
                "Zoom time axis", "Race only / whole attempt (z)", screen.action_toggle_zoom
            )
            yield SystemCommand(
                "Replay race", "Play the recorded events again (p)", screen.action_play
            )
        if isinstance(screen, ConnectScreen):
            yield SystemCommand("Connect", "Start the attempt (ctrl+r)", screen.action_connect)
            yield SystemCommand(
                "New code", "Generate a fresh session code (ctrl+g)", screen.action_generate_code
            )
            yield SystemCommand(
                "Copy code", "Copy the code to the clipboard (ctrl+y)", screen.action_copy_code
            )
        if isinstance(screen, SessionScreen):
            yield SystemCommand(
                "Send a file", "Pick a file or folder to send (ctrl+o)", screen.action_browse
            )
            yield SystemCommand(
                "Accept offer",
                "Accept the peer's pending offer (ctrl+t)",
                screen.action_accept_offer,
            )
            yield SystemCommand(
                "Reject offer",
                "Reject the peer's pending offer (ctrl+n)",
                screen.action_reject_offer,
            )
            yield SystemCommand(
                "End session", "Close the session cleanly (ctrl+w)", screen.action_close_session
            )


def make_app(config: AppConfig | None = None) -> RdvApp:
    """The app, configured: the one way the CLI, the demo and the tests build it."""
    if config is None:
        config = AppConfig(recent_path=default_path())
    return RdvApp(config)
