"""The fast-start stream on real conns: paths, the app's reader/writer, flow control.

:class:`MigratingStream` drives a :class:`~rdv_core.faststart._core.MigrationCore` over
asyncio streams: one reader task and one writer task per path, a tick that sends
acknowledgements, and an :class:`asyncio.Transport` facade so that the application gets
a plain ``StreamReader``/``StreamWriter`` pair that never notices the switch
(docs/PROTOCOL.md section 16.4). Frames that steer the upgrade (PING, SYNC, ATTACH ...)
are handed to ``on_control``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Final

from rdv_core.errors import RdvProtocolError
from rdv_core.faststart._app_transport import RETAIN_HIGH, RETAIN_LOW, AppTransport
from rdv_core.faststart._core import RELAY, MigrationCore
from rdv_core.faststart._errors import UnconfirmedDataError
from rdv_core.faststart._frames import MAX_PAYLOAD, STREAM_KINDS, Frame, Kind
from rdv_core.faststart._path import READ_SIZE, Path, half_close_and_drain, no_delay

logger = logging.getLogger("rdv.faststart")

#: A path whose queued stream bytes (waiting for the peer's SWITCH) pass this stops
#: being read, so TCP flow control holds the rest.
QUEUE_LIMIT: Final = 1024 * 1024
#: How often pending acknowledgements go out when data arrives slowly.
ACK_TICK: Final = 0.05
#: Until the first bytes were delivered, a path is read in small pieces: a receiver
#: that finds a quarter megabyte waiting (a dialer that wrote at once) hands the first
#: frames to the application before it parses the rest (docs/PROTOCOL.md 16.2).
FIRST_READ: Final = 16 * 1024
#: An application write on an idle send path goes out in the write call itself, up to
#: this much (the path's writer task takes the rest): the first byte leaves at once, not
#: one event-loop turn later behind whatever else is ready (docs/PROTOCOL.md 16.2).
INLINE_WRITE: Final = 16 * 1024
#: Early data in the write of the handshake frames: this much, so that the write is one
#: TCP segment (MSS 1448 at MTU 1500). Every hop of the first byte (D's send, the
#: server's read and forward, A's read) then moves one segment; in the lab's traces a
#: 16 KiB first write cost the server 0.2 ms to forward (docs/PROTOCOL.md 16.9).
EARLY_WRITE: Final = 1200

ControlHandler = Callable[[int, Frame], None]


class MigratingStream:
    """A byte stream that starts on the relay and may move to direct paths."""

    def __init__(
        self,
        relay_reader: asyncio.StreamReader,
        relay_writer: asyncio.StreamWriter,
        *,
        first_frames: tuple[bytes, ...] = (),
        first_data: bytes = b"",
        on_control: ControlHandler | None = None,
        on_path_lost: Callable[[int, str], None] | None = None,
        on_relay_done: Callable[[], None] | None = None,
        on_first_data: Callable[[int], None] | None = None,
        on_moved: Callable[[int, int], None] | None = None,
    ) -> None:
        # The relay's handshake frames (the dialer's CONTINUE and HELLO) first, before
        # anything else is built, and the application's first bytes (``first_data``,
        # given before the pick as TCP Fast Open's) in the same write: one segment, one
        # wake-up of the server and of the accepter (docs/PROTOCOL.md 16.2, 16.9).
        no_delay(relay_writer)
        self.core = MigrationCore()
        head = b"".join(first_frames)
        if first_data:
            self.core.add_path(RELAY)
            self.core.write(first_data)
            head += b"".join(self.core.take(RELAY, EARLY_WRITE))
        if head:
            relay_writer.write(head)
        self.loop = asyncio.get_running_loop()
        self.paths: dict[int, Path] = {}
        self.on_control = on_control
        self.on_path_lost = on_path_lost
        self.on_relay_done = on_relay_done
        self.on_first_data = on_first_data
        #: Called with (send path, receive path) whenever the peer's frames or a path's
        #: death moved either direction: a RESUME on the relay, stream frames where we
        #: left, a fallback (our own :meth:`switch_to` does not call it).
        self.on_moved = on_moved
        self._moved_seen = (RELAY, RELAY)
        self.reader = asyncio.StreamReader(limit=READ_SIZE, loop=self.loop)
        self._protocol = asyncio.StreamReaderProtocol(self.reader, loop=self.loop)
        self._transport = AppTransport(self)
        self.writer = asyncio.StreamWriter(self._transport, self._protocol, self.reader, self.loop)
        self._read_ok = asyncio.Event()
        self._read_ok.set()
        self._write_paused = False
        self._closing = False
        self._done = False
        self._closer: asyncio.Task[None] | None = None
        self._eof_fed = False
        #: The ``error`` of the last path given up (:meth:`close_path`), if any.
        self._lost_error: Exception | None = None
        #: Set once the first DATA frame went out: fast start's background work waits for
        #: it (or a grace), so that the first byte leaves first (docs/PROTOCOL.md 16.2).
        self.first_write = asyncio.Event()
        if self.core.next:
            self.first_write.set()
        #: Set once the peer's first bytes were handed to the application.
        self.first_read = asyncio.Event()
        self._tick = self.loop.create_task(self._ack_tick())
        self.tasks: set[asyncio.Task[Any]] = set()
        self._protocol.connection_made(self._transport)
        relay = self.add_path(RELAY, relay_reader, relay_writer)
        relay.first = self.loop.create_future()

    # ----- paths

    def add_path(
        self,
        pid: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        first_frames: tuple[bytes, ...] = (),
    ) -> Path:
        """Start carrying frames on a conn (its handshake frames are written first)."""
        path = Path(pid, reader, writer)
        no_delay(writer)
        if first_frames:
            writer.write(b"".join(first_frames))
        self.paths[pid] = path
        self.core.add_path(pid)
        path.tasks.append(self.loop.create_task(self._read_loop(path)))
        path.tasks.append(self.loop.create_task(self._write_loop(path)))
        return path

    def switch_to(self, pid: int) -> None:
        """Move our direction to path ``pid`` (the other side moves its own)."""
        self.core.switch_to(pid)
        self._moved_seen = (self.core.send_path, self.core.recv_path)
        self._wake_all()

    def _check_moved(self) -> None:
        seen = (self.core.send_path, self.core.recv_path)
        if seen != self._moved_seen:
            self._moved_seen = seen
            if self.on_moved is not None and not self.core.lost:
                self.on_moved(*seen)

    def send_control(self, pid: int, raw: bytes) -> None:
        """Write a steering frame on ``pid`` (ahead of any data still to go)."""
        path = self.paths.get(pid)
        if path is not None and self.core.alive(pid):
            self.core.paths[pid].control.append(raw)
            path.wake.set()

    def close_path(self, pid: int, reason: str, *, error: Exception | None = None) -> None:
        """Stop using ``pid`` (the relay once it is no longer needed, a dead direct path).

        ``error``: the path is given up as dead (it went silent): its socket is aborted,
        not closed (a FIN would wait behind unacknowledged bytes), and if it was the last
        path the application's stream ends with ``error``, which names the cause.
        """
        was_alive = self.core.alive(pid)
        self.core.path_lost(pid)
        path = self.paths.get(pid)
        if path is None:
            return
        for task in path.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        if error is not None:
            path.writer.transport.abort()
        path.writer.close()
        if was_alive:
            self._lost_error = error
            if self.on_path_lost is not None:
                self.on_path_lost(pid, reason)
            self._check_moved()
            self._wake_all()
            self._check_end()

    @property
    def current(self) -> Path | None:
        """The path our bytes go out on."""
        return self.paths.get(self.core.send_path)

    @property
    def on_relay(self) -> bool:
        """True while our direction still goes through the relay."""
        return self.core.send_path == RELAY

    async def first_relay_frame(self) -> Frame:
        """The first frame the peer sent on the relay (its HELLO, if it speaks fast start)."""
        first = self.paths[RELAY].first
        assert first is not None
        return await asyncio.shield(first)

    # ----- tasks

    async def _read_loop(self, path: Path) -> None:
        reason = "closed by the peer"
        try:
            while True:
                await self._read_ok.wait()
                if self.core.queued_bytes(path.pid) > QUEUE_LIMIT:
                    await asyncio.sleep(0.005)
                    continue
                first = not self.first_read.is_set()
                data = await path.reader.read(FIRST_READ if first else READ_SIZE)
                if not data:
                    break
                for frame in path.parser.feed(data):
                    self._on_frame(path, frame)
                self._after_receive()
        except asyncio.CancelledError:
            raise
        except (OSError, RdvProtocolError) as exc:
            reason = str(exc) or type(exc).__name__
            if isinstance(exc, RdvProtocolError) and path.pid == RELAY and not self.core.held:
                self._fail_first(path, exc)
        self._fail_first(path, ConnectionResetError(reason))
        self.close_path(path.pid, reason)

    def _fail_first(self, path: Path, exc: BaseException) -> None:
        if path.first is not None and not path.first.done():
            path.first.set_exception(exc)
            path.first.exception()  # read by whoever awaits it; never "never retrieved"

    def _on_frame(self, path: Path, frame: Frame) -> None:
        if path.first is not None and not path.first.done():
            path.first.set_result(frame)
            return
        if frame.kind in STREAM_KINDS or frame.kind in (Kind.ACK, Kind.RESUME):
            self.core.receive(path.pid, frame)
        elif self.on_control is not None:
            self.on_control(path.pid, frame)

    def _after_receive(self) -> None:
        core = self.core
        delivered = core.take_delivered()
        for piece in delivered:
            self._protocol.data_received(piece)
        if delivered and not self.first_read.is_set():
            self.first_read.set()
            if self.on_first_data is not None:
                self.on_first_data(core.recv_path)
        if core.peer_eof and not self._eof_fed:
            self._eof_fed = True
            self._protocol.eof_received()
        self._update_write_pause()
        if core.relay_done and self.on_relay_done is not None:
            self.on_relay_done()
        self._check_moved()
        self._wake_all()

    async def _write_loop(self, path: Path) -> None:
        core = self.core
        writer = path.writer
        try:
            while core.alive(path.pid) and not self._done:
                frames = core.take(path.pid, MAX_PAYLOAD)
                if not frames:
                    self._update_write_pause()
                    if self._closing and core.flushed:
                        self._check_end()
                        if self._done:
                            return
                    await path.wake.wait()
                    path.wake.clear()
                    continue
                writer.write(frames[0] if len(frames) == 1 else b"".join(frames))
                self._wrote()
                if writer.transport.get_write_buffer_size() > 4 * MAX_PAYLOAD:
                    await writer.drain()
        except asyncio.CancelledError:
            raise
        except OSError as exc:
            self.close_path(path.pid, str(exc) or type(exc).__name__)

    async def _ack_tick(self) -> None:
        while True:
            await asyncio.sleep(ACK_TICK)
            self.core.queue_ack()
            self._wake_all()

    def _wake_all(self) -> None:
        for path in self.paths.values():
            path.wake.set()

    def _update_write_pause(self) -> None:
        retained = self.core.retained
        if not self._write_paused and retained > RETAIN_HIGH:
            self._write_paused = True
            self._protocol.pause_writing()
        elif self._write_paused and retained <= RETAIN_LOW:
            self._write_paused = False
            self._protocol.resume_writing()

    # ----- the app's transport

    def write(self, data: bytes) -> None:
        if self._closing or self._done:
            return
        self.core.write(data)
        self._update_write_pause()
        current = self.current
        if current is not None:
            self._write_now(current)
            current.wake.set()

    def _write_now(self, path: Path) -> None:
        """Put the first frames on an idle path's socket now (see :data:`INLINE_WRITE`).

        Frames come from :meth:`MigrationCore.take` in order whoever writes them, and a
        ``writer.write`` never yields, so this and the path's writer task cannot interleave
        a frame. A path with bytes still in its transport buffer is left to the task.
        """
        transport = path.writer.transport
        if not self.core.alive(path.pid) or transport.is_closing():
            return
        if transport.get_write_buffer_size():
            return
        frames = self.core.take(path.pid, INLINE_WRITE)
        if frames:
            path.writer.write(frames[0] if len(frames) == 1 else b"".join(frames))
            self._wrote()

    def _wrote(self) -> None:
        if self.core.next and not self.first_write.is_set():
            self.first_write.set()

    def write_eof(self) -> None:
        self.core.write_eof()
        self._wake_all()

    def close(self) -> None:
        """End our stream, flush it on the send path, then close every path."""
        if self._closing:
            return
        self._closing = True
        if not self.core.eof:
            self.core.write_eof()
        self._wake_all()
        self._check_end()

    def fail(self, exc: Exception) -> None:
        """End the stream with ``exc`` for the application (fast start did not hold)."""
        for path in self.paths.values():
            path.writer.transport.abort()
        self._finish(exc)

    def abort(self) -> None:
        self._closing = True
        for path in self.paths.values():
            path.writer.transport.abort()
        self._finish(None)

    def _check_end(self) -> None:
        if self._done:
            return
        core = self.core
        if core.lost:
            # A close with bytes the peer never confirmed is a loss too (a pipe's sender
            # exited 0 while its receiver lost the tail; PROTOCOL 16.4, the close).
            why = "the connection to the peer was lost"
            if self._closing and not core.delivered:
                # Typed, with the count: a library's ``await conn.aclose()`` raises it.
                unconfirmed = core.end - core.peer_acked
                why += f" before it confirmed {unconfirmed} bytes (they may be lost)"
                cause = self._lost_error
                error = UnconfirmedDataError(f"{why}: {cause}" if cause else why, unconfirmed)
                error.__cause__ = cause
                return self._finish(error)
            if core.peer_eof or self._closing:
                return self._finish(None)
            self._finish(self._lost_error or ConnectionResetError(why))
        elif self._closing and core.flushed and core.delivered:
            # The peer holds everything: close every path. Sooner, a path with bytes unread
            # here is reset, and through the relay the reset took what the peer had not read.
            self._finish(None, linger=True)

    def _finish(self, exc: Exception | None, *, linger: bool = False) -> None:
        if self._done:
            return
        self._done = True
        self._tick.cancel()
        for task in self.tasks:
            task.cancel()
        for path in self.paths.values():
            for task in path.tasks:
                if task is not asyncio.current_task():
                    task.cancel()
        live = [p for p in self.paths.values() if not p.writer.transport.is_closing()]
        if linger and live:
            # Not a close yet: frames the peer sent after our last read (its ACK ticks,
            # a PING) would make it a reset, which drops what our kernel had not sent
            # yet, our last ACK among them: the peer then reported its confirmed bytes
            # as lost ("connection lost before it confirmed 65536 bytes", 1 run in 6).
            self._closer = self.loop.create_task(self._linger(live))
            return
        for path in self.paths.values():
            path.writer.close()
        self._protocol.connection_lost(exc)

    async def _linger(self, live: list[Path]) -> None:
        """Half-close ``live``, read each to the peer's end (bounded), then close all."""
        # Our last ACK first: the close may come before the writer task took it (a
        # stream with nothing of its own to confirm closes at once), and a FIN without
        # it left the peer's close waiting for it: "before it confirmed 1 bytes".
        self.core.queue_ack()
        for path in live:
            frames = self.core.take(path.pid)
            if frames:
                path.writer.write(b"".join(frames))
        try:
            await asyncio.gather(*(half_close_and_drain(p) for p in live))
        finally:
            for path in self.paths.values():
                path.writer.close()
            self._protocol.connection_lost(None)

    def pause_reading(self) -> None:
        self._read_ok.clear()

    def resume_reading(self) -> None:
        self._read_ok.set()

    def write_buffer_size(self) -> int:
        return self.core.retained

    @property
    def closing(self) -> bool:
        return self._closing or self._done

    @property
    def ended(self) -> bool:
        """True once the stream is over; a closing one still waits for the peer's ACK."""
        return self._done

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """Run ``coro`` for as long as the stream lives (cancelled when it ends)."""
        task = self.loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task
