"""The migration core, sans-IO: one peer's two byte streams over changing paths.

docs/PROTOCOL.md section 16.4. A *path* is one TCP conn carrying frames: path 0 is the
relay, path ``k`` the direct conn of upgrade attempt ``k``. Each direction of the
stream is independent:

* **Sending.** Bytes the application writes get absolute offsets and are kept until
  the peer acknowledges them (``ACK``), while a second path may still appear or
  disappear. They go out as ``DATA`` frames on the *send path* only. To move, we write
  ``SWITCH(offset, new)`` as the last stream frame on the old path and go on from that
  offset on the new one: the explicit switch point of this direction.
* **Receiving.** Stream frames are taken from the *receive path* only; frames of
  another path wait in its queue (bounded by the driver, which stops reading it).
  ``SWITCH`` moves the receive path. A ``DATA`` frame is cut to the bytes we lack; one
  that starts past what we hold (a gap, after a path died) is dropped and we ask for
  ``RESUME(held)``, once.
* **Losing a path.** The sender goes back to the first unacknowledged byte on a path
  that still lives; the receiver asks for ``RESUME(held)`` there. Stream frames that
  arrive on a path we left mean the sender fell back to it: we follow.

So nothing is lost (replay from the last ACK), duplicated (offsets) or reordered (one
receive path at a time, switch points in stream order). Every method is synchronous;
the driver (:mod:`rdv_core.faststart._stream`) moves the bytes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Final

from rdv_core.errors import RdvProtocolError
from rdv_core.faststart._frames import (
    MAX_PAYLOAD,
    STREAM_KINDS,
    Frame,
    Kind,
    data_frame,
    switch_frame,
    u64_frame,
)

#: Acknowledge at least every this many received bytes (and on the driver's tick): a
#: small fraction of the sender's retention window, so acks never hold it up.
ACK_EVERY: Final = 256 * 1024
#: DATA frames carry at most this much: a receiver can use a frame only once all of it
#: arrived, and a relay path in TCP slow start delivers about 14 KiB per round trip at
#: first (measured in the lab's delay25: 256 KiB frames put the first byte 2 RTTs late).
FRAME_DATA: Final = 16 * 1024
#: The stream's first bytes go in smaller frames still, so that the first flight of a
#: fresh conn (10 segments, about 14 KiB) holds whole frames.
FIRST_FRAMES: Final = 4 * 1024
FIRST_BYTES: Final = 32 * 1024
#: Writes smaller than this are coalesced into one chunk (a chat line, a header), so
#: that a stream of tiny writes does not keep one chunk per write.
COALESCE: Final = 64 * 1024
RELAY: Final = 0


class StreamLost(ConnectionError):
    """Every path died before the peer ended its stream."""


@dataclass(slots=True)
class _Path:
    alive: bool = True
    control: list[bytes] = field(default_factory=list)
    queue: deque[Frame] = field(default_factory=deque)
    queued_bytes: int = 0
    left: bool = False  # we took the peer's SWITCH away from it
    confirmed: bool = False  # the peer acknowledged on it after our SWITCH to it


class MigrationCore:
    """One side of a fast-start stream (see the module docstring)."""

    def __init__(self) -> None:
        self.paths: dict[int, _Path] = {RELAY: _Path()}
        # sending
        self._chunks: deque[tuple[int, bytes]] = deque()  # (offset, bytes) from acked on
        self._tail = bytearray()  # small writes, coalesced until the next take()
        self._tail_at = 0
        self.acked = 0
        #: The most the peer said it holds (ACK, RESUME): unlike ``acked``, not moved by
        #: us once retention stops, so it tells when the peer has every byte we wrote.
        self.peer_acked = 0
        self._sent_max = 0
        self.next = 0
        self.end = 0
        self.eof = False
        self._eof_sent = False
        self.send_path = RELAY
        self._switch_offset = 0
        self.retain = True
        # receiving
        self.held = 0
        self.recv_path = RELAY
        self.peer_eof = False
        self._acked_held = 0
        self._resumed: set[tuple[int, int]] = set()
        self._delivered: list[bytes] = []
        self._switched_in = False

    # ----- the application's side

    def write(self, data: bytes) -> None:
        """Queue application bytes (a copy is kept until acknowledged)."""
        if self.eof:
            raise RuntimeError("write after write_eof")
        if len(data) < COALESCE:
            if not self._tail:
                self._tail_at = self.end
            self._tail += data
            self.end += len(data)
            if len(self._tail) >= COALESCE:
                self._seal()
            return
        self._seal()
        for start in range(0, len(data), MAX_PAYLOAD):
            piece = bytes(data[start : start + MAX_PAYLOAD])
            self._chunks.append((self.end, piece))
            self.end += len(piece)

    def _seal(self) -> None:
        if self._tail:
            self._chunks.append((self._tail_at, bytes(self._tail)))
            self._tail.clear()

    def write_eof(self) -> None:
        """End our stream after the bytes written so far."""
        self.eof = True

    def take_delivered(self) -> list[bytes]:
        """The peer's bytes that arrived in order since the last call."""
        out, self._delivered = self._delivered, []
        return out

    @property
    def retained(self) -> int:
        """Bytes we keep: unacknowledged (or, once retention stopped, not yet sent)."""
        return self.end - self.acked

    @property
    def flushed(self) -> bool:
        """Everything written (and the EOF, if any) went out on the send path."""
        return self.next == self.end and (self._eof_sent or not self.eof)

    @property
    def delivered(self) -> bool:
        """The peer acknowledged every byte we wrote: they reached its application."""
        return self.peer_acked >= self.end

    @property
    def lost(self) -> bool:
        """No path is left."""
        return not any(p.alive for p in self.paths.values())

    # ----- paths

    def add_path(self, pid: int) -> None:
        """A direct path is up (its ATTACH checked out on both ends).

        The peer's SWITCH may have named it first: then it exists already.
        """
        if pid not in self.paths:
            self.paths[pid] = _Path()

    def alive(self, pid: int) -> bool:
        """True while ``pid`` is a usable path."""
        path = self.paths.get(pid)
        return path is not None and path.alive

    def switch_to(self, pid: int) -> None:
        """Move our sending direction to ``pid`` (the explicit switch point)."""
        if pid == self.send_path or not self.alive(pid):
            return
        old = self.paths[self.send_path]
        if old.alive:
            old.control.append(switch_frame(self.next, pid))
        self.send_path = pid
        self._switch_offset = self.next
        self.paths[pid].confirmed = False

    def path_lost(self, pid: int) -> None:
        """``pid`` died (EOF, reset, or we closed it)."""
        path = self.paths.get(pid)
        if path is None or not path.alive:
            return
        path.alive = False
        path.control.clear()
        path.queue.clear()
        path.queued_bytes = 0
        fallback = self._fallback()
        if fallback is None:
            return
        if pid == self.send_path:
            self.send_path = fallback
            self._rewind(self.acked)
        if pid == self.recv_path:
            self._follow(fallback)
            # Always, even at an offset asked for there before (an earlier fallback with
            # nothing received since): the RESUME is how the peer learns that we read
            # this path now, when its own end of ``pid`` still looks alive.
            self._ask_resume(fallback, force=True)

    def _fallback(self) -> int | None:
        live = [pid for pid, p in self.paths.items() if p.alive]
        if not live:
            return None
        return RELAY if RELAY in live else max(live)

    # ----- frames in

    def receive(self, pid: int, frame: Frame) -> None:
        """A DATA, SWITCH, EOF, ACK or RESUME frame read from path ``pid``.

        Raises:
            RdvProtocolError: when the peer contradicts itself (an EOF before bytes we
                already hold, an acknowledgement of bytes we never wrote).
        """
        path = self.paths.get(pid)
        if path is None or not path.alive:
            return
        if frame.kind == Kind.ACK:
            self._on_ack(frame.value)
            self.peer_acked = max(self.peer_acked, frame.value)
            if pid == self.send_path and frame.value >= self._switch_offset:
                path.confirmed = True
        elif frame.kind == Kind.RESUME:
            if frame.value > self._sent_max:
                raise RdvProtocolError("the peer asked to resume past what we sent")
            self._on_ack(frame.value)
            self.peer_acked = max(self.peer_acked, frame.value)
            self.send_path = pid
            path.confirmed = True
            self._rewind(frame.value)
        elif frame.kind in STREAM_KINDS:
            if pid != self.recv_path:
                if path.left:
                    # Stream frames on a path we left: the sender fell back to it.
                    self._follow(pid)
                else:
                    path.queue.append(frame)
                    path.queued_bytes += len(frame.data)
                    return
            self._on_stream(pid, frame)
        else:
            raise ValueError(f"not a core frame: {frame.kind.name}")

    def queued_bytes(self, pid: int) -> int:
        """Stream bytes waiting on ``pid`` until it becomes the receive path."""
        path = self.paths.get(pid)
        return path.queued_bytes if path is not None else 0

    def _on_stream(self, pid: int, frame: Frame) -> None:
        if frame.kind == Kind.DATA:
            start = frame.value
            if start > self.held:
                self._ask_resume(pid)
                return
            skip = self.held - start
            if skip < len(frame.data):
                piece = frame.data[skip:] if skip else frame.data
                self._delivered.append(piece)
                self.held += len(piece)
                if self.held - self._acked_held >= ACK_EVERY:
                    self.queue_ack()
        elif frame.kind == Kind.EOF:
            if frame.value > self.held:
                self._ask_resume(pid)
            elif frame.value < self.held:
                raise RdvProtocolError("the peer ended its stream before bytes we hold")
            else:
                self.peer_eof = True
                # At once, not at the next tick or 256 KiB: the peer's close waits for
                # this acknowledgement of its last bytes (``delivered``, section 16.4).
                self.queue_ack()
        else:  # SWITCH
            target = frame.path
            if target == pid:
                return
            if not self.alive(target):
                if target in self.paths:
                    self._ask_resume(pid)  # it died already: stay here
                    return
                self.paths[target] = _Path()  # the peer attached first: wait for it
            self.paths[pid].left = True
            self._switched_in = True
            self._follow(target)
            # The confirmation the peer waits for before it lets the relay go.
            self.paths[target].control.append(u64_frame(Kind.ACK, self.held))
            self._acked_held = self.held
            if frame.value > self.held:
                # Bytes before the switch point were lost here: the target resumes them.
                self._ask_resume(target)

    def _follow(self, pid: int) -> None:
        """Make ``pid`` the receive path and take the stream frames it queued."""
        self.recv_path = pid
        path = self.paths[pid]
        path.left = False
        while path.queue and self.recv_path == pid and path.alive:
            frame = path.queue.popleft()
            path.queued_bytes -= len(frame.data)
            self._on_stream(pid, frame)

    def _ask_resume(self, pid: int, *, force: bool = False) -> None:
        key = (pid, self.held)
        path = self.paths.get(pid)
        if (key in self._resumed and not force) or path is None or not path.alive:
            return
        self._resumed.add(key)
        path.control.append(u64_frame(Kind.RESUME, self.held))
        self._acked_held = self.held

    def queue_ack(self) -> None:
        """Acknowledge what we hold (the driver also calls it on a tick).

        The ACK goes on our *receive* path, the one the acknowledged bytes came on, not on
        our send path: so an ACK on path ``k`` proves that we took the peer's ``SWITCH`` to
        ``k``, which the peer needs before it retires the relay (``relay_done``). An ACK on
        our send path proved nothing: sent before we read the peer's SWITCH, it let the
        peer close the relay with that SWITCH still unwritten, and our end of stream then
        waited behind it for good (docs/PROTOCOL.md section 16.4).
        """
        if self.held == self._acked_held:
            return
        path = self.paths.get(self.recv_path)
        if path is not None and path.alive:
            path.control.append(u64_frame(Kind.ACK, self.held))
            self._acked_held = self.held

    def _on_ack(self, value: int) -> None:
        if value > self._sent_max:
            raise RdvProtocolError("the peer acknowledged bytes we never wrote")
        if value <= self.acked:
            return
        self.acked = value
        chunks = self._chunks
        while chunks and chunks[0][0] + len(chunks[0][1]) <= value:
            chunks.popleft()
        if self.next < value:
            self.next = value

    def _rewind(self, offset: int) -> None:
        offset = max(offset, self.acked)
        if self._chunks and offset < self._chunks[0][0]:
            raise RdvProtocolError("cannot replay bytes that were already let go")
        self.next = offset
        self._eof_sent = False

    # ----- frames out

    def take(self, pid: int, budget: int = MAX_PAYLOAD) -> list[bytes]:
        """The frames to write on ``pid`` now: control first, then up to ``budget``
        bytes of DATA (and the EOF) when ``pid`` is the send path."""
        path = self.paths.get(pid)
        if path is None or not path.alive:
            return []
        out = path.control
        path.control = []
        if pid != self.send_path:
            return out
        self._seal()
        sent = 0
        for offset, chunk in self._chunks_from(self.next):
            while sent < budget and self.next < offset + len(chunk):
                skip = self.next - offset
                limit = FIRST_FRAMES if self.next < FIRST_BYTES else FRAME_DATA
                size = min(len(chunk) - skip, budget - sent, limit)
                whole = skip == 0 and size == len(chunk)
                view = chunk if whole else memoryview(chunk)[skip : skip + size]
                out.append(data_frame(self.next, view))
                self.next += size
                sent += size
            if sent >= budget:
                break
        self._sent_max = max(self._sent_max, self.next)
        if self.eof and self.next == self.end and not self._eof_sent:
            out.append(u64_frame(Kind.EOF, self.end))
            self._eof_sent = True
        if not self.retain:
            self._on_ack(self.next)
        return out

    def _chunks_from(self, offset: int) -> list[tuple[int, bytes]]:
        chunks = self._chunks
        if not chunks or offset >= self.end:
            return []
        # Usually the first few: what is unacknowledged is at most a window.
        for index, (start, chunk) in enumerate(chunks):
            if start + len(chunk) > offset:
                return [chunks[i] for i in range(index, min(index + 8, len(chunks)))]
        return []

    # ----- the migration's progress

    @property
    def relay_done(self) -> bool:
        """Both directions moved to one direct path and it carried frames both ways:
        the relay may be closed (docs/PROTOCOL.md section 16.4)."""
        relay = self.paths[RELAY]
        if not relay.alive or self.send_path == RELAY or self.recv_path != self.send_path:
            return False
        return self._switched_in and self.paths[self.send_path].confirmed
