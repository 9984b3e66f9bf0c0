"""Plain HTTP sent to the TLS port: a plain ``400`` that says to use ``https://``.

Go's net/http answers such a request ``400`` with ``Client sent an HTTP request to an HTTPS
server.``, nginx with ``The plain HTTP request was sent to HTTPS port``; behind OpenSSL the
rdv front closed the conn without a byte, and the user met a bare close (docs/PROTOCOL.md
section 3, the row after the ``0x16`` one). Before the TLS wrap, the front peeks at the
conn's first bytes (``MSG_PEEK``: they stay for OpenSSL); a first byte that starts an HTTP
method token (``A``-``Z``) gets this module's answer instead of the handshake.

Bounded as a head is: the peek waits within the conn's head deadline and its head slot
(slowloris, server/_head_slots.py), reads at most :data:`PEEK_BYTES`, and the plain
request's head is parsed with the front's own bound before the one answer and the close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Final, Literal, cast

from rdv_core import wire
from rdv_core.server._deploy_hints import PROXY_ON_TLS
from rdv_core.wire import HeadParser, ProtocolError
from rdv_core.wire._proxy_protocol import V1_PREFIX, V2_SIGNATURE

log = logging.getLogger("rdv.server")

#: What the peek reads (and leaves): enough to tell ``PROXY `` from a method.
PEEK_BYTES: Final = 8
#: The answer's words: Go's sentence (clients that know Go's answer know ours), then the
#: URL to use when the request named one.
PLAIN_ON_TLS: Final = "Client sent an HTTP request to an HTTPS server"

#: What is read of a PROXY header before the close (a close with bytes unread resets):
#: a v1 line (at most 107 bytes) or a v2 header (at most 4096), and what came with it.
PROXY_LINE_MAX: Final = 8192

_PEEK_FLAGS: Final = socket.MSG_PEEK | getattr(socket, "MSG_DONTWAIT", 0)


async def peek(sock: socket.socket, wait_s: float) -> bytes | None:
    """The first bytes the client sent, left in ``sock``; ``b""`` at a close or an error,
    None when nothing came within ``wait_s`` seconds."""
    loop = asyncio.get_running_loop()
    first: asyncio.Future[bytes] = loop.create_future()

    def readable() -> None:
        if first.done():
            return
        try:
            data = sock.recv(PEEK_BYTES, _PEEK_FLAGS)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""  # reset before a byte: nothing to answer
        first.set_result(data)

    fd = sock.fileno()
    loop.add_reader(fd, readable)
    try:
        async with asyncio.timeout(wait_s):
            return await first
    except TimeoutError:
        return None
    finally:
        loop.remove_reader(fd)


def kind(first: bytes) -> Literal["tls", "plain", "proxy"]:
    """What the first bytes on a TLS port are: a TLS record (or anything OpenSSL should
    judge), an HTTP request (a method starts with ``A``-``Z``), or a PROXY v1/v2 header.

    A PROXY header (a balancer with ``send-proxy`` passing TLS through; ``--proxy-protocol``
    refuses TLS) gets a bare close, since the client behind the balancer expects TLS, not
    our plain words; and a warning naming the fix (server/_deploy_hints.py). The v2
    signature went to OpenSSL, which dropped the conn with a debug line only.
    """
    if first.startswith(V1_PREFIX) or (len(first) >= 4 and V2_SIGNATURE.startswith(first)):
        return "proxy"
    if first[:1].isupper():
        return "plain"
    return "tls"


class PlainOnTls(asyncio.Protocol):
    """A plain-HTTP conn on the TLS port: read its head (bounded), answer ``400``, close.

    ``done`` is called once, with the request's method ("" for no head), when the conn is
    gone: it gives the conn's head slot back and counts the refusal.
    """

    def __init__(self, max_head: int, deadline_s: float, done: Callable[[str], None]) -> None:
        self._parser = HeadParser("request", max_head)
        self._deadline_s = deadline_s
        self._done: Callable[[str], None] | None = done
        self._method = ""
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._timer = asyncio.get_running_loop().call_later(self._deadline_s, transport.close)

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        try:
            head = self._parser.feed(data)
        except ProtocolError:
            head = None
        else:
            if head is None:
                return
        self._method = head.method if head is not None else ""
        url = _url_to_use(head) if head is not None else None
        body = f"{PLAIN_ON_TLS}: use {url}\n" if url else f"{PLAIN_ON_TLS}: use https://\n"
        version = "HTTP/1.0" if head is not None and head.version == "HTTP/1.0" else "HTTP/1.1"
        response = wire.build_plain_response(
            400, body, version=version, close=True, add_newline=False
        )
        if self._method == "HEAD":
            response = response[: response.index(b"\r\n\r\n") + 4]
        transport.write(response)
        transport.close()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._transport = None
        done, self._done = self._done, None
        if done is not None:
            done(self._method)


def _url_to_use(head: wire.Head) -> str | None:
    """``https://`` + the request's Host + its path, when both are plain printable text
    (they are echoed in a text/plain body: nothing else is)."""
    host = head.get("Host") or ""
    target = head.target if head.target.startswith("/") else "/"
    text = host + target
    if not host or len(text) > 512 or not text.isascii() or not text.isprintable():
        return None
    if any(c in text for c in ' "<>\\^`{|}'):
        return None
    return f"https://{text}"


async def front_door(
    sock: socket.socket,
    deadline_s: float,
    max_head: int,
    release: Callable[[], None],
    count: Callable[[str, str], None],
) -> float | None:
    """Peek at a conn on the TLS port before its handshake.

    Returns the seconds left of ``deadline_s`` for the handshake when the conn starts as
    TLS should; None when it was dealt with here: closed (silent past the deadline, gone,
    or a PROXY header), or handed to :class:`PlainOnTls`. ``release`` gives the conn's head
    slot back (called once, on the paths that end here); ``count(reason, method)`` counts
    a refusal. ``sock`` is closed on every path that returns None, and on an exception.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        first = await peek(sock, deadline_s)
    except BaseException:
        release()
        sock.close()
        raise
    left = deadline_s - (loop.time() - started)
    what = kind(first) if first else "closed"
    if what == "tls" and left > 0:
        return left
    if what == "plain" and left > 0:

        def done(method: str) -> None:
            release()
            count(PLAIN_ON_TLS, method)

        try:
            transport, _ = await loop.connect_accepted_socket(
                lambda: PlainOnTls(max_head, left, done), sock
            )
        except Exception as exc:  # reset meanwhile; EMFILE on uvloop
            log.debug("plain conn on the TLS port dropped: %r", exc)
            sock.close()
            done("")
            return None
        handed = transport.get_extra_info("socket")
        if handed is not None and handed.fileno() != sock.fileno():
            sock.close()  # uvloop works on a duplicate of the descriptor
        return None
    if what == "proxy":
        count(PROXY_ON_TLS, "")
        with contextlib.suppress(OSError):  # read, not left: a close with it unread resets
            sock.recv(PROXY_LINE_MAX, getattr(socket, "MSG_DONTWAIT", 0))
    release()
    sock.close()
    return None
