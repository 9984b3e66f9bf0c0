"""Pipe mode shared by ``rdv dial`` and ``rdv accept``: stdin to the peer, the peer to stdout.

Behaves like the Go CLI for scripts: binary-safe, one ``peer connected: ...`` line on
stderr, exit 0 on success and non-zero with a one-line reason on failure. When stdin
ends we half-close our side and keep receiving. When the peer's side ends first, what
happens to the rest of our stdin depends on the conn: a direct conn (and a fast-start
stream, whose EOF is in band) carries a half-close, so we keep sending until our stdin
ends (or rests: :data:`QUIET_AFTER_PEER_S`); a classic relay may not (the reference server
closes the pair at the first EOF, docs/PROTOCOL.md section 8), so input that was still
coming is reported as not delivered and the exit code says so, never a silent truncation,
and the conn is reset so that the peer does not take the cut stream for a whole one. On a
terminal (a chat) the peer's end is the end: we exit at once, as the Go CLI does.

stdin and stdout are served by daemon threads (:mod:`rdv_tui.cli.pipe_io`). Ctrl-C
resets the conn (:func:`abort`): an interrupted transfer is no end of stream.

Only the standard library is imported at module level, ``rdv_core`` when the command
runs: never textual or rich. The ``-v`` race log's lines come from
:func:`rdv_tui.cli.formatting.format_event`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
import struct
import sys
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any, Final

from rdv_tui.cli.events_file import open_events
from rdv_tui.cli.formatting import (
    PrintableFormatter,
    format_event,
    plural,
    rejoin_line,
    shown,
    why_relay,
)
from rdv_tui.cli.pipe_args import resolve_pipe_server
from rdv_tui.cli.pipe_end import (
    UnsentInput as UnsentInput,  # re-exported: tests raise and catch it through this module
)
from rdv_tui.cli.pipe_end import lost_text, relay_server_gone, reset_if_killed
from rdv_tui.cli.pipe_io import (
    CHUNK,
    StdoutError,
    StdoutWriter,
    grow_pipe,
)
from rdv_tui.cli.pipe_io import (
    StdinReader as StdinReader,  # re-exported: tests drive it through this module
)
from rdv_tui.cli.race_options import UsageError, client_options
from rdv_tui.cli.secret_args import ENV_TOKEN, resolve_secret
from rdv_tui.transfer_stop import run_terminable

if TYPE_CHECKING:
    from rdv_core.client import Conn
    from rdv_core.events import Event

EXIT_OK: Final = 0
#: The attempt failed: rejected by the server, protocol error, no usable conn, lost conn.
EXIT_FAILED: Final = 1
#: Bad command line (argparse uses 2 as well).
EXIT_USAGE: Final = 2
#: ``--timeout`` expired before a conn was picked.
EXIT_TIMEOUT: Final = 3

#: After the relay ended the pair, how long stdin may take to show that it had nothing
#: more (EOF): ``printf x | rdv dial`` reaches its EOF within a few ms of its last byte.
UNSENT_GRACE_S: Final = 0.5
#: After the peer's side ended, we keep sending while stdin keeps coming; a stdin quiet for
#: this long (held open by a script or ``ssh`` with nothing to say) ends our side too, so
#: that neither process waits forever on the other (socat's ``-t`` is 0.5 s for the same
#: reason; 2 s lets a slow producer, e.g. a compressor, pause between blocks).
QUIET_AFTER_PEER_S: Final = 2.0


class StdinFailed(Exception):
    """Reading stdin failed: what was sent so far is not the whole input."""


def _raise_stdin_failure(upload: asyncio.Task[None]) -> None:
    if upload.done() and not upload.cancelled():
        failure = upload.exception()
        if isinstance(failure, StdinFailed):
            raise failure


class _Upload:
    """What the stdin task did after the relay ended the pair: bytes it could not send."""

    def __init__(self) -> None:
        self.relay_gone = False
        self.unsent = 0
        self.sent = 0
        #: True while the upload waits for the conn to take bytes (a peer whose reader
        #: paused closes its window): then our stdin is not what rests.
        self.draining = False


async def _stdin_to_peer(
    conn: Conn, reader: StdinReader, log: Callable[[str], None], upload: _Upload
) -> None:
    writer = conn.writer
    while True:
        item = await reader.get()
        if isinstance(item, OSError):
            # Not an end of input (a socket stdin reset, an I/O error): a half-close here
            # would hand the peer a cut stream as if it were all. Reset the conn instead.
            abort(conn)
            raise StdinFailed(item.strerror or str(item)) from item
        if not item:
            break
        if upload.relay_gone:
            upload.unsent += len(item)  # counted, not written into a closed conn
            continue
        writer.write(item)
        upload.draining = True
        try:
            await writer.drain()
        finally:
            upload.draining = False
        upload.sent += len(item)
    if upload.relay_gone:
        return
    if writer.can_write_eof():
        writer.write_eof()
        log("stdin ended: half-closed our side, still receiving")
    else:
        log("stdin ended (this conn cannot half-close; still receiving)")


async def _peer_to_stdout(conn: Conn, stdout_fd: int) -> int:
    grow_pipe(stdout_fd)
    total = 0
    writer = StdoutWriter(stdout_fd, asyncio.get_running_loop())
    try:
        while True:
            data = await conn.reader.read(CHUNK)
            if not data:
                return total
            try:
                await writer.write(data)
            except OSError as exc:
                # The peer's bytes go nowhere now (a full disk, a reader gone): a FIN here
                # told a peer whose stdin had ended that all had arrived (exit 0 under a
                # copy cut at the disk's size). A reset says it was not so.
                abort(conn)
                raise StdoutError(exc) from exc
            total += len(data)
    finally:
        writer.close()


def abort(conn: Conn) -> None:
    """End ``conn`` at once, with a reset where it is a TCP socket.

    For an interrupted transfer (Ctrl-C): a graceful close sends a FIN, which the peer
    cannot tell from the end of our input, so ``rdv accept > copy.iso`` would exit 0 with
    a truncated copy. A reset makes the peer report the lost conn and exit 1. (Through a
    classic relay the server still ends the other side with a FIN, docs/PROTOCOL.md
    section 8; a fast-start stream is lost without its in-band end, section 16.)
    """
    transport = conn.writer.transport
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            # Linger on, timeout 0: close() discards what is unsent and sends RST.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _until_stdin_ends_or_rests(
    upload: asyncio.Task[None], state: _Upload, log: Callable[[str], None]
) -> None:
    """Let the upload run while stdin keeps coming; raises what the upload raised."""
    while not upload.done():
        before = state.sent
        await asyncio.wait({upload}, timeout=QUIET_AFTER_PEER_S)
        # A conn that takes nothing is a paused reader on the peer's side, not a quiet
        # stdin: ending ours there cut the copy, both sides exiting 0. A dead conn
        # ends the drain instead (docs/PROTOCOL.md 16.11).
        if not upload.done() and state.sent == before and not state.draining:
            log(f"stdin quiet for {QUIET_AFTER_PEER_S:g} s after the peer's end: ending ours")
            return
    upload.result()


def carries_half_close(conn: Conn) -> bool:
    """Can our side keep sending after the peer's side ended? Direct conns (a TCP FIN) and
    fast-start streams (an in-band EOF, section 16) can; a classic relay cannot."""
    return not conn.is_relay or conn.upgrader is not None


async def pump(
    conn: Conn,
    stdin_fd: int,
    stdout_fd: int,
    log: Callable[[str], None],
    *,
    interactive: bool | None = None,
    stdin: StdinReader | None = None,
) -> None:
    """Move bytes both ways until both sides ended (the peer's alone on a terminal).

    ``interactive`` (default: stdin is a terminal) ends everything when the peer closes.
    ``stdin``: a reader of ``stdin_fd`` started before the conn existed (its first chunk
    is then ready the moment the conn is, e.g. for fast start's first byte).

    Raises:
        OSError: when the conn or stdout fails.
        UnsentInput: the relay ended the pair while stdin still had bytes for the peer.
    """
    if interactive is None:
        interactive = os.isatty(stdin_fd)
    state = _Upload()
    if stdin is not None:
        state.sent += stdin.taken_early
    if stdin is None:
        stdin = StdinReader(stdin_fd, asyncio.get_running_loop())
        stdin.start()
    upload = asyncio.create_task(_stdin_to_peer(conn, stdin, log, state))
    reset_if_killed(conn, armed=True)  # `kill -9` is no end of stream either
    try:
        try:
            received = await _peer_to_stdout(conn, stdout_fd)
        except (ConnectionResetError, BrokenPipeError) as exc:
            _raise_stdin_failure(upload)
            # Sent and ended is sending too: those bytes may be in flight to the relay.
            sending = state.sent > 0 or not upload.done() or upload.exception() is not None
            from rdv_core.client import PathSilent  # (lazy: the CLI's start-up)

            silent = isinstance(exc, PathSilent)  # our path, not the relay's pair end
            if interactive or carries_half_close(conn) or not sending or silent:
                raise
            # Section 8: a relay like the Go server's closes the pair at the first EOF, and ours
            # passes a peer's reset on. Our bytes that reach a closed socket make its kernel answer
            # RST, and the RST can overtake the EOF we had not read yet: the same loss, seen as a
            # reset. When our next write is the one that meets the RST, asyncio ends the transport
            # with EPIPE and the read raises BrokenPipeError instead (CI, stop 26): the same loss
            # again.
            raise UnsentInput(state.unsent, complete=False, reset=True) from exc
        _raise_stdin_failure(upload)  # our reset is what ended the read
        log(f"peer closed after {received} bytes received")
        if interactive:
            return
        if upload.done():
            # The upload may have failed on the closing conn before its end reached us.
            failure = upload.exception()
            if failure is not None and not carries_half_close(conn):  # (in flight, lost)
                raise UnsentInput(state.unsent, complete=False, reset=True) from failure
            if failure is not None:
                raise failure
        elif carries_half_close(conn):
            log("the peer's side ended; still sending our stdin")
            await _until_stdin_ends_or_rests(upload, state, log)
        else:
            state.relay_gone = True
            done, _ = await asyncio.wait({upload}, timeout=UNSENT_GRACE_S)
            # A write that failed on the closed conn lost its bytes too, and so did one
            # that the conn still does not take (no count says how many: they were in
            # flight). A stdin still open but quiet (as advised) lost nothing.
            failed = bool(done) and upload.exception() is not None
            if failed or (not done and state.draining):
                raise UnsentInput(state.unsent, complete=False, reset=True)
            if state.unsent:
                raise UnsentInput(state.unsent, complete=bool(done))
        if conn.upgrader is not None:
            # Fast start's close waits until the peer confirmed every byte we sent (its
            # ACK, docs/PROTOCOL.md 16.4); a path lost before that is an error the user
            # must hear: through Conn.close(), which swallows it, `rdv dial --fast-start <
            # file` exited 0 when the peer died between our last write and its ACK.
            conn.writer.close()
            await conn.writer.wait_closed()
    except UnsentInput:
        # Our stream to the peer is cut: a FIN would tell the peer it had all of it (an
        # rdv server passes our reset on, docs/PROTOCOL.md section 8: `rdv dial < /dev/null
        # > copy` exited 0 with the copy cut where the relay's pair end had come).
        abort(conn)
        raise
    except asyncio.CancelledError:
        # Interrupted (Ctrl-C): not an end of stream, and nothing may wait for a peer or a
        # stdout that stopped reading (a graceful close waits for our unsent bytes).
        abort(conn)
        raise
    finally:
        upload.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await upload
        reset_if_killed(conn, armed=False)  # an orderly close: a FIN
        await conn.close()


# ----- the command


def describe_conn(conn: Conn, events: Sequence[Event] = ()) -> str:
    """``peer connected: p2p 10.0.1.2:40001 in 45 ms`` / ``peer connected: relay in 1003 ms
    (direct: 2 timeout)``: on the relay, what became of our direct dials (from ``events``)."""
    took = f"in {conn.elapsed_s * 1000:.0f} ms"
    if conn.is_relay:
        why = why_relay(events)
        return f"peer connected: relay {took}" + (f" ({why})" if why else "")
    return f"peer connected: p2p {conn.remote_addr} {took}"


async def _main(
    args: argparse.Namespace,
    method: str,
    client_options: dict[str, Any],
    events_file: IO[str] | None,
    stderr: IO[str],
) -> int:
    from rdv_core.client import Client, PathSilent
    from rdv_core.errors import RdvError, RdvTimeoutError, ServerRejectedError
    from rdv_core.events import EventRecorder, ObservedAddrWarning, Upgraded, UpgradeFailed
    from rdv_tui.cli.checks import warns_of_observed

    def say(text: str) -> None:
        _say(method, text, stderr)

    def log(text: str) -> None:
        if args.verbose:
            say(text)

    recorder = EventRecorder(stream=events_file)
    warn_observed = warns_of_observed(args.url)

    def on_event(event: Event) -> None:
        try:
            recorder(event)
        except OSError as exc:  # a full disk: say it once, and do the rest of this callback
            recorder.stream = None
            why = exc.strerror or exc
            say(f"cannot write events to {args.events}: {why}; no more events are written")
        if args.verbose:
            print(format_event(event), file=stderr, flush=True)
        if (line := rejoin_line(event, "token")) is not None:
            say(line)
        elif isinstance(event, ObservedAddrWarning) and warn_observed:
            say(f"warning: {event.message}")
        elif isinstance(event, Upgraded):  # fast start moved us off the relay
            say(f"switched to p2p {event.addr} after {event.after_s * 1000:.0f} ms")
        elif isinstance(event, UpgradeFailed) and event.back_on_relay:
            # ... and back (a later attempt may switch again: docs/PROTOCOL.md 16.6).
            say(f"back on the relay: {event.reason}")

    if getattr(args, "predict_ports", False):
        from rdv_core.doctor import predicted_addrs, run_doctor

        # From the uplinks the race will dial from (docs/PROTOCOL.md 15.8): the ports
        # predicted are those of that uplink's NAT.
        report = await run_doctor(
            [args.url],
            proxy=getattr(args, "proxy", None),
            interfaces=getattr(args, "interface", ()),
            sources=getattr(args, "source", ()),
        )
        guessed = predicted_addrs(report)
        ports = plural(len(guessed), "port")
        log(f"doctor: allocation {report.value('allocation')}, predicted {ports}")
        client_options = {**client_options, "predicted_addrs": guessed}
    # With fast start stdin is read while we connect: its first chunk is ready when the
    # relay is picked and goes out in the write of CONTINUE and HELLO (``early_data``), so
    # that the first byte leaves in the turn the 101 is parsed (docs/PROTOCOL.md 16.2)
    # rather than after a thread start and a hand-off. Nothing is sent before the pick.
    # Not for classic conns: a relay (the Go server's) that ends the pair at the first EOF while
    # more of our input is unread at the server is reset, not closed, and the "not delivered" count
    # the user is owed (UnsentInput) would become "connection lost".
    stdin: StdinReader | None = None
    if client_options.get("fast_start"):
        stdin = StdinReader(sys.stdin.fileno(), asyncio.get_running_loop())
        stdin.start()
        client_options = {**client_options, "early_data": stdin.take_ready}
    client = Client(on_event=on_event, **client_options)
    try:
        conn = await (client.dial if method == "DIAL" else client.accept)(args.url, args.token)
    except ValueError as exc:  # bad URL or header, found before any traffic
        say(str(exc))
        return EXIT_USAGE
    except RdvTimeoutError as exc:
        say(str(exc))
        return EXIT_TIMEOUT
    except ServerRejectedError as exc:
        say(f"{exc}{_rejected_hint(exc.status, method)}")
        return EXIT_FAILED
    except (RdvError, OSError) as exc:
        say(str(exc))
        return EXIT_FAILED
    print(describe_conn(conn, recorder.events), file=stderr, flush=True)
    try:
        await pump(conn, sys.stdin.fileno(), sys.stdout.fileno(), log, stdin=stdin)
    except StdoutError as exc:
        say(f"writing stdout failed: {exc}")
        return EXIT_FAILED
    except UnsentInput as exc:
        gone = await relay_server_gone(conn) if exc.reset else None
        lost = "the bytes of stdin in flight and after them were not delivered"
        say(str(exc) if gone is None else f"{gone}: {lost}")
        return EXIT_FAILED
    except StdinFailed as exc:
        say(f"reading stdin failed: {exc}; the conn was reset, so the peer knows")
        return EXIT_FAILED
    except OSError as exc:
        # A silence names itself (docs/PROTOCOL.md 16.11): no dial to the server to tell.
        gone = None if isinstance(exc, PathSilent) else await relay_server_gone(conn)
        say(f"connection lost: {gone}" if gone else lost_text(exc))
        return EXIT_FAILED
    return EXIT_OK


def _rejected_hint(status: int, method: str) -> str:
    """What a pipe-mode user should do about the server's refusal, when we can tell."""
    if status != 409:
        return ""
    # One lobby slot per token and method (docs/PROTOCOL.md section 5): a newer request of
    # the same method evicts ours. In a terminal that is most often both sides started
    # with the same command.
    mine, other = ("dial", "accept") if method == "DIAL" else ("accept", "dial")
    return (
        f" (another `rdv {mine}` with this token reached the server after us and took our "
        f"place: the other side runs `rdv {other}`)"
    )


def _say(method: str, text: str, stderr: IO[str]) -> None:
    name = "dial" if method == "DIAL" else "accept"
    # Reasons and bodies come from the server or the peer: never print them raw.
    print(f"rdv {name}: {shown(text)}", file=stderr, flush=True)


def run_pipe(args: argparse.Namespace, method: str) -> int:
    """Run ``rdv dial`` (method ``DIAL``) or ``rdv accept`` (``ACCEPT``); the exit code."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(PrintableFormatter("%(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    if args.verbose:
        logging.getLogger("rdv").setLevel(logging.DEBUG)
    try:
        resolve_pipe_server(args)
        options = client_options(args)
        args.token = resolve_secret(
            args.token, args.token_file, ENV_TOKEN, "token", lambda t: _say(method, t, sys.stderr)
        )
        if args.token is None:
            raise UsageError(
                "a TOKEN is needed: as an argument, with --token-file or in $RDV_TOKEN"
            )
        for name, stream, none in (("stdin", sys.stdin, "<"), ("stdout", sys.stdout, ">")):
            if stream is None:  # `<&-` / `>&-`: Python leaves it None; say so before traffic
                raise UsageError(
                    f"{name} is closed: pipe mode needs it ({none} /dev/null for none)"
                )
    except UsageError as exc:
        _say(method, str(exc), sys.stderr)
        return EXIT_USAGE
    events_file: IO[str] | None = None
    if args.events:
        try:
            events_file = open_events(args.events)
        except OSError as exc:
            _say(method, f"cannot write events to {args.events}: {exc.strerror or exc}", sys.stderr)
            return EXIT_USAGE
    try:
        # SIGTERM and SIGHUP (kill, `timeout 60 rdv dial ... < disk.iso`, the terminal or
        # ssh link closing) cancel the pump as Ctrl-C does, so the conn is reset (abort)
        # and the peer never takes a cut copy for a whole one; exit 128 + the signal.
        return run_terminable(lambda _stop: _main(args, method, options, events_file, sys.stderr))
    finally:
        if events_file is not None:
            with contextlib.suppress(OSError):  # a last flush failing as the writes did
                events_file.close()
