"""A user-space packet delayer: NFQUEUE over raw netlink, standard library only.

This kernel has no ``sch_netem``, so delay, jitter and loss are made here: each impaired
router queues its TCP packets (iptables ``NFQUEUE``, see :func:`builder.queue_rules`), and one
thread holds a verdict for every queued packet until its due time (accept), or drops it.
Measured accuracy is about 0.2-0.5 ms per crossing, enough for protocol tests, not for
throughput benchmarks.

Netlink in brief (``linux/netfilter/nfnetlink_queue.h``): every message is an ``nlmsghdr``
(native byte order) + an ``nfgenmsg`` (family, version, queue number big-endian) + attributes
(``nlattr``: u16 length, u16 type, payload padded to 4 bytes). nfqueue payloads are
big-endian. The socket is made inside the router's namespace (NFQUEUE numbers are per
namespace) and keeps working from any thread afterwards.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import logging
import os
import random
import selectors
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Final

from rdv_core.lab._netns import LabError, in_netns
from rdv_core.lab._spec import Impairment

log = logging.getLogger("rdv.lab")

_NETLINK_NETFILTER: Final = 12
_SOL_NETLINK: Final = 270
_NETLINK_NO_ENOBUFS: Final = 5
_SO_RCVBUFFORCE: Final = 33

_NLMSG_ERROR: Final = 2
_NLM_F_REQUEST: Final = 0x1
_NLM_F_ACK: Final = 0x4

_SUBSYS_QUEUE: Final = 3
_MSG_PACKET: Final = (_SUBSYS_QUEUE << 8) | 0
_MSG_VERDICT: Final = (_SUBSYS_QUEUE << 8) | 1
_MSG_CONFIG: Final = (_SUBSYS_QUEUE << 8) | 2

_CFG_CMD: Final = 1
_CFG_PARAMS: Final = 2
_CFG_QUEUE_MAXLEN: Final = 3
_CFG_MASK: Final = 4
_CFG_FLAGS: Final = 5
_CMD_BIND: Final = 1
_COPY_META: Final = 1
#: Accept packets when the queue is full (never stall the lab) and take GSO packets whole.
_CFG_F_FAIL_OPEN: Final = 0x1
_CFG_F_GSO: Final = 0x4

_ATTR_PACKET_HDR: Final = 1
_ATTR_VERDICT_HDR: Final = 2
_NLA_TYPE_MASK: Final = 0x3FFF

NF_DROP: Final = 0
NF_ACCEPT: Final = 1

_NLMSGHDR = struct.Struct("=IHHII")
_NFGENMSG = struct.Struct("!BBH")


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    pad = (-length) % 4
    return struct.pack("=HH", length, kind) + payload + b"\0" * pad


def _message(kind: int, flags: int, seq: int, queue: int, attrs: bytes) -> bytes:
    body = _NFGENMSG.pack(socket.AF_UNSPEC, 0, queue) + attrs
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, flags, seq, 0) + body


def config_messages(queue: int, maxlen: int = 8192) -> list[bytes]:
    """The messages binding ``queue``: bind, copy metadata only, queue length, flags."""
    flags = struct.pack("!I", _CFG_F_FAIL_OPEN | _CFG_F_GSO)
    return [
        _message(
            _MSG_CONFIG,
            _NLM_F_REQUEST | _NLM_F_ACK,
            1,
            queue,
            _attr(_CFG_CMD, struct.pack("!BxH", _CMD_BIND, 0)),
        ),
        _message(
            _MSG_CONFIG,
            _NLM_F_REQUEST | _NLM_F_ACK,
            2,
            queue,
            _attr(_CFG_PARAMS, struct.pack("!IB", 0, _COPY_META))
            + _attr(_CFG_QUEUE_MAXLEN, struct.pack("!I", maxlen))
            + _attr(_CFG_FLAGS, flags)
            + _attr(_CFG_MASK, flags),
        ),
    ]


def verdict_message(queue: int, packet_id: int, verdict: int) -> bytes:
    """One verdict (``NF_ACCEPT``/``NF_DROP``) for ``packet_id`` on ``queue``."""
    attrs = _attr(_ATTR_VERDICT_HDR, struct.pack("!II", verdict, packet_id))
    return _message(_MSG_VERDICT, _NLM_F_REQUEST, 0, queue, attrs)


def parse_messages(data: bytes) -> tuple[list[int], list[int]]:
    """Packet ids and netlink error codes (non-zero only) found in one datagram."""
    ids: list[int] = []
    errors: list[int] = []
    off = 0
    while off + _NLMSGHDR.size <= len(data):
        length, kind, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, off)
        if length < _NLMSGHDR.size or off + length > len(data):
            break
        if kind == _NLMSG_ERROR:
            (code,) = struct.unpack_from("=i", data, off + _NLMSGHDR.size)
            if code != 0:
                errors.append(-code)
        elif kind == _MSG_PACKET:
            pos = off + _NLMSGHDR.size + _NFGENMSG.size
            end = off + length
            while pos + 4 <= end:
                alen, atype = struct.unpack_from("=HH", data, pos)
                if alen < 4:
                    break
                if atype & _NLA_TYPE_MASK == _ATTR_PACKET_HDR:
                    ids.append(struct.unpack_from("!I", data, pos + 4)[0])
                    break
                pos += (alen + 3) & ~3
        off += (length + 3) & ~3
    return ids, errors


def open_queue(ns: str, queue: int) -> socket.socket:
    """A netlink socket bound to NFQUEUE ``queue`` inside namespace ``ns``.

    Raises:
        LabError: when the kernel refuses (no NFQUEUE support, queue taken, ...).
    """

    def make() -> socket.socket:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_NETFILTER)
        try:
            sock.bind((0, 0))
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, 8 << 20)
            with contextlib.suppress(OSError):
                sock.setsockopt(_SOL_NETLINK, _NETLINK_NO_ENOBUFS, 1)
            for msg in config_messages(queue):
                sock.send(msg)
                sock.settimeout(2.0)
                _ids, errors = parse_messages(sock.recv(65536))
                if errors:
                    raise LabError(f"NFQUEUE {queue} in {ns}: kernel said {os.strerror(errors[0])}")
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    try:
        return in_netns(ns, make)
    except OSError as exc:
        raise LabError(f"NFQUEUE {queue} in {ns}: {exc}") from exc


@dataclass(slots=True)
class _Queue:
    ns: str
    num: int
    sock: socket.socket
    impairment: Impairment
    rng: random.Random
    queued: int = 0
    dropped: int = 0


class Delayer:
    """One thread holding verdicts for the NFQUEUE queues of several routers.

    Use :meth:`add` for each impaired router, then :meth:`start`; :meth:`close` stops the
    thread and closes the sockets (the kernel then lets packets bypass the queue).
    """

    def __init__(self, seed: int | None = None) -> None:
        self._queues: list[_Queue] = []
        self._seed = seed
        self._wake_r, self._wake_w = os.pipe()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, ns: str, queue: int, impairment: Impairment) -> None:
        """Serve NFQUEUE ``queue`` of namespace ``ns`` with ``impairment``."""
        sock = open_queue(ns, queue)
        # Seeded per queue by order of addition: reproducible across processes (namespace
        # names contain pids, and str hashes are salted per process).
        rng = random.Random(None if self._seed is None else f"{self._seed}:{len(self._queues)}")
        self._queues.append(_Queue(ns, queue, sock, impairment, rng))

    def start(self) -> None:
        """Start the verdict thread (a daemon: it must never keep a runner alive)."""
        if self._thread is None and self._queues:
            self._thread = threading.Thread(target=self._loop, name="rdv-lab-delayer", daemon=True)
            self._thread.start()

    def stats(self) -> dict[str, tuple[int, int]]:
        """``ns -> (packets queued, packets dropped)``."""
        return {q.ns: (q.queued, q.dropped) for q in self._queues}

    def close(self) -> None:
        """Stop the thread, flush pending verdicts as accepted, close the sockets."""
        self._stop.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        for q in self._queues:
            q.sock.close()
        self._queues.clear()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _loop(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._wake_r, selectors.EVENT_READ, None)
        for q in self._queues:
            sel.register(q.sock, selectors.EVENT_READ, q)
        pending: list[tuple[float, int, _Queue, int, int]] = []
        seq = 0
        try:
            while not self._stop.is_set():
                timeout = None
                if pending:
                    timeout = max(0.0, pending[0][0] - time.monotonic())
                for key, _mask in sel.select(timeout):
                    q = key.data
                    if q is None:
                        continue
                    for pid, due, verdict in self._receive(q):
                        heapq.heappush(pending, (due, seq, q, pid, verdict))
                        seq += 1
                now = time.monotonic()
                while pending and pending[0][0] <= now:
                    _due, _s, q, pid, verdict = heapq.heappop(pending)
                    self._send(q, pid, verdict)
        finally:
            # Release what is still held so that no connection stalls on teardown.
            for _due, _s, q, pid, _verdict in pending:
                self._send(q, pid, NF_ACCEPT)
            sel.close()

    def _receive(self, q: _Queue) -> list[tuple[int, float, int]]:
        out = []
        imp = q.impairment
        while True:
            try:
                data = q.sock.recv(1 << 16)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    log.warning("NFQUEUE in %s overran; some packets were dropped", q.ns)
                    continue
                raise
            ids, errors = parse_messages(data)
            for code in errors:
                log.warning("NFQUEUE in %s: %s", q.ns, os.strerror(code))
            now = time.monotonic()
            for pid in ids:
                q.queued += 1
                if imp.loss and q.rng.random() < imp.loss:
                    q.dropped += 1
                    out.append((pid, now, NF_DROP))
                    continue
                delay = imp.delay_ms + (q.rng.uniform(0, imp.jitter_ms) if imp.jitter_ms else 0)
                out.append((pid, now + delay / 1000.0, NF_ACCEPT))
        return out

    def _send(self, q: _Queue, packet_id: int, verdict: int) -> None:
        try:
            q.sock.send(verdict_message(q.num, packet_id, verdict))
        except OSError as exc:
            # The namespace is going away during teardown: nothing left to deliver.
            log.debug("verdict for packet %d in %s failed: %s", packet_id, q.ns, exc)
