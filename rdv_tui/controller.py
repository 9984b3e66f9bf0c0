"""The app's connection lifecycle in one object: attempts, the conn, the session, the demo.

The app knows its screens; the controller knows the network. It hosts the embedded
server, runs one attempt at a time (a new one cancels the old: one worker group),
turns a won race into an encrypted session, sends what the Session screen asks for,
ends the session on request and closes everything when the app quits
(docs/ARCHITECTURE.md section 6).

It shows what happens only through the screens' public faces (the race note, the
offer bar, the chat's info line, the link's conn) and the app's notifications. The
callbacks it hands the core only post :class:`RdvApp.CoreEvent` messages, which the
app routes to the screen that shows them: the core never touches a widget.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Coroutine
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from textual.worker import Worker

from rdv_core.client import Client, Conn
from rdv_core.doctor import Report
from rdv_core.errors import RdvError, ServerRejectedError
from rdv_core.events import Event, EventCallback
from rdv_core.session import (
    CANCELLED,
    CANCELLED_BY_PEER,
    BurnedCodes,
    CodeMismatch,
    IncomingOffer,
    Session,
    SessionError,
    TransferFailed,
    TransferRejected,
    describe_os_error,
    parse_code,
)
from rdv_core.session._connect import INTERFERENCE, MAX_REPLACED_RETRIES, RETRY_PAUSE_S
from rdv_core.wire import ACCEPT, DIAL, AddrSpace, Method
from rdv_tui.attempt import ConnectParams
from rdv_tui.cli.formatting import plural, shown, shown_event
from rdv_tui.demo_peer import DemoPeer
from rdv_tui.diagnosis import doctor_for, explain_session
from rdv_tui.embedded import EmbeddedServer
from rdv_tui.receive_folder import FOLDER_HINT
from rdv_tui.send_list import list_shown

if TYPE_CHECKING:
    from rdv_tui.app import RdvApp, Source

log = logging.getLogger("rdv.tui")

SESSION_SWITCH_DELAY_S = 1.5
"""After a successful race, the dashboard stays up this long before the Session screen."""

DEMO_DASHBOARD_S = 3.0
"""The demo shows its race a little longer: it is what the demo is about."""

CLOSE_TIMEOUT_S = 2.0
"""Closing a session waits this long for the peer's goodbye (on end and on quit)."""

SESSION_UP_NOTE = "session up: F4 for chat and files"
"""The Race screen's note while the attempt's session is up (the app replaces it when
the session ends)."""


class Controller:
    """Owns the embedded server, the current conn and session, and the demo's peer.

    Its long work runs in workers of the app (so quitting cancels them); each gets a
    callable, not a coroutine, so a worker cancelled before it starts leaves nothing
    un-awaited.

    Attributes:
        download_dir: Where received files go.
        session_switch_delay: After a session comes up, the dashboard stays this long.
        embedded: The server the app hosts, once it listens.
        conn: The current connection (after a successful race).
        session: The current encrypted session (chat and files).
        demo_peer: The demo's accepting peer, while the demo runs.
    """

    def __init__(self, app: RdvApp, *, download_dir: Path, session_switch_delay: float) -> None:
        self._app = app
        self.download_dir = download_dir
        self.session_switch_delay = session_switch_delay
        self.embedded: EmbeddedServer | None = None
        self.listen_error = ""
        """Why the embedded server could not listen (empty once it does)."""
        self.conn: Conn | None = None
        self.session: Session | None = None
        self.demo_peer: DemoPeer | None = None
        self._demo_task: asyncio.Task[str] | None = None
        self._attempt: Worker[None] | None = None
        self._attempt_number = 0
        """Bumped by every new attempt: a cancelled attempt's late events (its
        ``AttemptFailed: cancelled``) must not land on the next attempt's dashboard."""

    # ----- events from the core: posted, never handled here

    def _poster(self, source: Source, attempt: int | None = None) -> EventCallback:
        """The ``on_event`` callback for one source: it posts, the app routes.

        ``attempt`` tags race events with their attempt, so that the app can drop the
        late ones of an attempt a newer one replaced.
        """
        app = self._app
        if source != "session":

            def post(event: Event) -> None:
                app.post_message(app.CoreEvent(shown_event(event), source, attempt))

            return post
        # Session events come in bursts (a batch of small files): those of one run of the
        # loop go to the app as one message, so a typed key never queues behind them.
        burst: list[Event] = []

        def flush() -> None:
            events = tuple(burst)
            burst.clear()
            app.post_message(app.CoreEvents(events, source, attempt))

        def post_session(event: Event) -> None:
            if not burst:
                asyncio.get_running_loop().call_soon(flush)
            burst.append(shown_event(event))

        return post_session

    # ----- workers

    def _run(
        self,
        work: Callable[[], Coroutine[None, None, None]],
        name: str,
        *,
        group: str,
        exclusive: bool = False,
    ) -> Worker[None]:
        """Run ``work`` in a worker of the app (Textual cancels them when it quits)."""
        return self._app.run_worker(work, name=name, group=group, exclusive=exclusive)

    # ----- hosting

    async def start_embedded_server(self, host: str, port: int) -> EmbeddedServer | None:
        """Listen on ``host:port``; say so (and return None) if that fails."""
        try:
            self.embedded = await EmbeddedServer.start(host, port, self._poster("server"))
        except OSError as exc:
            # "::1:8080" named no port for sure: IPv6 goes in brackets, as --listen takes it.
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            self.listen_error = f"cannot listen on {where}: {exc}"
            self._app.notify(
                f"cannot listen on {where}: {exc}",
                severity="error",
                title="Server",
                markup=False,
            )
            return None
        self.listen_error = ""
        self._app.doctor_screen.own_server = self.embedded.url
        return self.embedded

    # ----- attempts

    def start_attempt(self, params: ConnectParams) -> Worker[None]:
        """Run one attempt (cancelling the one before): the race, then maybe a session."""
        self._attempt_number += 1
        number = self._attempt_number
        self._app.race_screen.reset()  # now, before the old attempt's last events
        self._attempt = self._run(
            partial(self._run_attempt, params, number),
            "start_attempt",
            group="attempt",
            exclusive=True,
        )
        return self._attempt

    def is_current(self, attempt: int | None) -> bool:
        """Whether events tagged ``attempt`` belong to the attempt shown (untagged: yes)."""
        return attempt is None or attempt == self._attempt_number

    @property
    def attempt_running(self) -> bool:
        """Whether an attempt is racing (or waiting in the lobby)."""
        return self._attempt is not None and not self._attempt.is_finished

    def cancel_attempt(self) -> None:
        """Stop the attempt that races or waits in the lobby (the Race screen's ``c``)."""
        if not self.attempt_running or self._attempt is None:
            self._app.notify("no attempt is running")
            return
        self._attempt.cancel()
        self._app.race_screen.note = "cancelled: F2 to start another"
        self._app.notify("attempt cancelled")

    async def _run_attempt(self, params: ConnectParams, number: int) -> None:
        app = self._app
        race = app.race_screen
        await self.close_connection()
        servers = app.connect_screen.servers
        app.recent.remember(
            params.server_url,
            params.code if not params.race_only else None,
            settings=params.form_settings(),
            settings_key=servers.settings_key(params.server_url),
        )
        if not params.race_only and parse_code(params.code) in BurnedCodes():
            # Each try would give whoever interfered another guess (issue 13, item 4).
            app.notify(
                "this code failed key confirmation before: use a fresh code (ctrl+g)",
                severity="error",
                title="Code used up",
                timeout=10,
            )
            return
        race.running = True
        await app.switch_mode("race")
        # docs/PROTOCOL.md section 15: our doctor report, measured while the race runs.
        # Our own embedded server is on this machine: never through the environment's proxy.
        direct = self.embedded is not None and self.embedded.serves(params.server_url)
        doctor = (
            None
            if params.race_only
            else asyncio.ensure_future(doctor_for(app, params.server_url, direct=direct))
        )
        client = params.make_client(self._poster("race", number), direct=direct)
        try:
            conn = await self._meet(params, client, number)
        except (RdvError, ValueError, OSError) as exc:
            if number == self._attempt_number:
                app.notify(
                    shown(str(exc)),
                    severity="error",
                    title="Connection failed",
                    timeout=10,
                    markup=False,
                )
            return
        finally:
            if number == self._attempt_number:
                race.running = False
        self._set_link(conn, None)
        if params.race_only:
            app.race_screen.note = "race-only: conn open (F2 to start another)"
            return
        app.race_screen.note = "starting the encrypted session…"
        session = await self._start_session(params, conn, number)
        if session is None:
            return
        app.race_screen.note = SESSION_UP_NOTE
        if doctor is not None:
            self._run(
                partial(self._explain, doctor, session, client.spaces, conn),
                "explain",
                group="explain",
            )
        await asyncio.sleep(self.session_switch_delay)
        if app.current_mode == "race":
            await app.switch_mode("session")

    async def _meet(self, params: ConnectParams, client: Client, number: int) -> Conn:
        """The race; a session's lobby conn that the server replaced (409) tries again.

        As ``rdv send`` / ``rdv receive`` do (docs/PROTOCOL.md 12.1): nobody got a guess
        (no key exchange happened), and whoever took the nameplate is replaced in turn.
        The app gave up at the first 409 with a bare ``replaced by another conn``, then
        came back at once: each try waits what the CLI's does (``RETRY_PAUSE_S``, one
        constant for both), or two peers of the same method trade the slot at network
        speed (docs/PROTOCOL.md 12.1 and 18: no connect within 0.5 s of the last).
        """
        method: Method = DIAL if params.role == "dial" else ACCEPT
        for tries in itertools.count():
            try:
                return await client.connect(method, params.server_url, params.token)
            except ServerRejectedError as exc:
                if exc.status != 409 or params.race_only:
                    raise  # a raw token (race only) is the user's business, as in rdv dial
                if tries >= MAX_REPLACED_RETRIES:
                    body = f"{exc.body.strip()}: {INTERFERENCE}"
                    raise ServerRejectedError(exc.status, exc.reason, body) from None
                if number == self._attempt_number:
                    self._app.notify(
                        f"the server replaced our lobby conn (409): {INTERFERENCE}; trying "
                        f"again in {RETRY_PAUSE_S:g} s",
                        severity="warning",
                        title="Code in use",
                        timeout=10,
                        markup=False,
                    )
                    self._app.race_screen.reset()  # the new try's race, from its start
                await asyncio.sleep(RETRY_PAUSE_S)
        raise AssertionError("unreachable: the loop returns or raises")

    async def _explain(
        self,
        doctor: asyncio.Future[Report | None],
        session: Session,
        spaces: AddrSpace,
        conn: Conn,
    ) -> None:
        """The two-sided verdict on the Race screen (rdv_tui/diagnosis.py)."""
        await explain_session(self._app, session, await doctor, spaces, conn)

    async def _start_session(
        self, params: ConnectParams, conn: Conn, number: int
    ) -> Session | None:
        """The encrypted session over a won conn; None (conn closed, user told) if it fails."""
        app = self._app
        try:
            await asyncio.to_thread(self.download_dir.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            why = describe_os_error(exc, f"cannot create {self.download_dir}")
            app.notify(f"{why}\n{FOLDER_HINT}", severity="error", markup=False, timeout=20)
        session = Session(
            conn.reader,
            conn.writer,
            parse_code(params.code),
            is_dialer=params.role == "dial",
            on_event=self._poster("session", number),
            batched_events=True,  # an offer of 20,000 files: 11 events, not 20,000
            on_offer=self._ask_offer,
            download_dir=self.download_dir,
            is_relay=conn.is_relay,
            peer_addr=str(conn.remote_addr),
        )
        try:
            await session.start()
        except (SessionError, OSError) as exc:
            if isinstance(exc, CodeMismatch):
                BurnedCodes().add(parse_code(params.code))
            app.race_screen.note = f"session failed: {shown(str(exc))}"
            app.notify(
                shown(str(exc)), severity="error", title="Session failed", timeout=10, markup=False
            )
            await conn.close()
            self._set_link(None, None)
            return None
        self._set_link(conn, session)
        return session

    def _set_link(self, conn: Conn | None, session: Session | None) -> None:
        """Remember the conn and session; the Session screen samples the conn's RTT."""
        self.conn, self.session = conn, session
        self._app.session_screen.conn = conn

    async def _ask_offer(self, offer: IncomingOffer) -> bool:
        """The session's ``on_offer``: ask the user in the files pane."""
        app = self._app
        if app.current_mode != "session":
            await app.switch_mode("session")
        app.bell()
        return await app.session_screen.ask_offer(offer)

    # ----- what the Session screen asks for

    def send_chat(self, text: str) -> None:
        """Send one chat line (never blocked by transfers: the session interleaves)."""
        self._run(partial(self._send_chat, text), "send_chat", group="chat")

    async def _send_chat(self, text: str) -> None:
        session = self._open_session()
        if session is None:
            return
        try:
            await session.send_chat(text)
        except (SessionError, ValueError) as exc:
            self._app.notify(shown(str(exc)), severity="error", title="Chat", markup=False)

    def send_paths(self, paths: list[Path]) -> None:
        """Offer and send files; verdicts show in the files pane."""
        self._run(partial(self._send_paths, paths), "send_paths", group="send")

    async def _send_paths(self, paths: list[Path]) -> None:
        session = self._open_session()
        if session is None:
            return
        # Listed in a thread, its count on screen and Stop-able (rdv_tui/send_list.py).
        listing = await list_shown(paths, self._app.notify, self._app.session_screen.listing)
        if listing is None:
            return
        try:
            await session.send_files(listing.files)  # listed above: not again
        except TransferRejected as exc:
            self._app.notify(shown(str(exc)), severity="warning", title="Rejected", markup=False)
        except TransferFailed as exc:
            if all(why in (CANCELLED, CANCELLED_BY_PEER) for _, why in exc.failures):
                return  # a user stopped those files: their rows say so, not an error
            self._app.notify(shown(str(exc)), severity="error", title="Send failed", markup=False)
        except (SessionError, OSError, ValueError) as exc:
            self._app.notify(shown(str(exc)), severity="error", title="Send failed", markup=False)

    def cancel_transfer(self, direction: str, transfer_id: int) -> None:
        """Stop one file of the open session, the others go on (docs/PROTOCOL.md 12.14)."""
        self.cancel_transfers(direction, [transfer_id])

    def cancel_transfers(self, direction: str, transfer_ids: list[int]) -> None:
        """Stop files (many: ``x`` twice on an aggregate line), each as one file's cancel;
        many get one notification saying how many, not one per file."""
        session = self._open_session()
        if session is None:
            return
        way: Literal["in", "out"] = "out" if direction == "out" else "in"
        refused = [why for i in transfer_ids if (why := session.cancel_transfer(way, i))]
        if len(transfer_ids) == 1 and refused:
            self._app.notify(f"cannot cancel it: {refused[0]}", title="Cancel", markup=False)
        elif len(transfer_ids) > 1:
            text = f"cancelled {plural(len(transfer_ids) - len(refused), 'file')}"
            text += f"; {len(refused):,} could not be ({refused[0]})" if refused else ""
            self._app.notify(text, title="Cancel", markup=False)

    def _open_session(self) -> Session | None:
        session = self.session
        if session is None or session.closed:
            self._app.notify("no session: connect first", severity="warning")
            return None
        return session

    def end_session(self) -> None:
        """Close the current session and conn."""
        if self.session is None and self.conn is None:
            self._app.notify("no open session")
            return
        self._run(self.close_connection, "close_connection", group="close")
        self._app.notify("session closed")

    async def close_connection(self, reason: str = "closed") -> None:
        """Close the session (waiting briefly for the peer) and the conn, if any; ``reason``
        is what the peer reads (docs/PROTOCOL.md 12.10)."""
        session, conn = self.session, self.conn
        self._set_link(None, None)
        if session is not None and not session.closed:
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await session.close(reason, ours="closed")  # our side: as before
            except (TimeoutError, SessionError, OSError) as exc:
                log.debug("session close: %s", exc)
        if conn is not None:
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await conn.close()
            except TimeoutError:
                # A peer that stopped reading (its machine asleep, its window full) leaves
                # our unsent bytes in the socket, and closing waits for them to leave:
                # ctrl+q froze the app for good. Drop them: the peer keeps its partial
                # files either way (docs/PROTOCOL.md 12.10).
                conn.writer.transport.abort()
                log.debug("conn close: the peer stopped reading; aborted")

    # ----- the demo

    def start_demo(self, directory: Path) -> Worker[None]:
        """The one-machine demo: a peer that accepts, the race, chat, a verified file."""
        return self._run(partial(self._demo, directory), "run_demo", group="demo")

    async def _demo(self, directory: Path) -> None:
        from rdv_tui.demo_run import run_demo

        await run_demo(self, self._app, directory)

    def run_demo_peer(self, peer: DemoPeer) -> None:
        """Start the demo's accepting peer (cancelled by :meth:`close`)."""
        self.demo_peer = peer
        self._demo_task = asyncio.get_running_loop().create_task(peer.run())

    # ----- quitting

    async def close(self, reason: str = "closed") -> None:
        """Close everything this controller opened: the link, the demo's peer, the server;
        ``reason`` is what the peer reads."""
        await self.close_connection(reason)
        if self._demo_task is not None:
            self._demo_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RdvError, SessionError, OSError):
                await self._demo_task
        if self.embedded is not None:
            await self.embedded.close()
            self.embedded = None
