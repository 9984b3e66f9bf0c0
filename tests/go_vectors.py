"""Bytes recorded on the wire from the reference Go rdv v0.0.6 (test vectors).

Copied from ``vectors/go-v0.0.6-wire.md`` of the project's shared notes, so that the
tests run from a fresh clone. Dates and ports vary between recordings: compare with
:func:`without_date`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


def without_date(data: bytes) -> bytes:
    """``data`` with the value of any ``Date:`` header replaced by ``<date>``."""
    return re.sub(rb"\r\nDate: [^\r\n]*\r\n", b"\r\nDate: <date>\r\n", data)


@dataclass(frozen=True)
class ServerAnswer:
    """A raw request sent to the reference server and what it answered.

    ``answer`` is None when the server kept the request in its lobby (no byte within 1 s).
    ``closed`` is True when the server closed the conn after answering.
    """

    name: str
    request: bytes
    answer: bytes | None
    closed: bool = False


SERVER_ANSWERS: tuple[ServerAnswer, ...] = (
    ServerAnswer(
        "GET without upgrade headers",
        b"GET /tok HTTP/1.1\r\nHost: 127.0.0.1:18080\r\n\r\n",
        b"HTTP/1.1 426 Upgrade Required\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"X-Content-Type-Options: nosniff\r\nDate: Wed, 25 Nov 2026 14:26:22 GMT\r\n"
        b"Content-Length: 49\r\n\r\ninvalid rdv upgrade: requires connection upgrade\n",
    ),
    ServerAnswer(
        "DIAL with Connection: upgrade but no Upgrade",
        b"DIAL /tok HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nConnection: upgrade\r\n\r\n",
        b"HTTP/1.1 426 Upgrade Required\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"X-Content-Type-Options: nosniff\r\nDate: Wed, 25 Nov 2026 14:26:23 GMT\r\n"
        b"Content-Length: 44\r\n\r\ninvalid rdv upgrade: missing upgrade header\n",
    ),
    ServerAnswer(
        "Upgrade: websocket",
        b"DIAL /tok HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nConnection: upgrade\r\n"
        b"Upgrade: websocket\r\n\r\n",
        b"HTTP/1.1 426 Upgrade Required\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"X-Content-Type-Options: nosniff\r\nDate: Wed, 25 Nov 2026 14:26:24 GMT\r\n"
        b"Content-Length: 43\r\n\r\ninvalid rdv upgrade: bad upgrade websocket\n",
    ),
    ServerAnswer(
        "Connection: keep-alive, Upgrade",
        b"DIAL /tok HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nConnection: keep-alive, Upgrade\r\n"
        b"Upgrade: rdv/1\r\n\r\n",
        b"HTTP/1.1 426 Upgrade Required\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"X-Content-Type-Options: nosniff\r\nDate: Wed, 25 Nov 2026 14:26:25 GMT\r\n"
        b"Content-Length: 49\r\n\r\ninvalid rdv upgrade: requires connection upgrade\n",
    ),
    ServerAnswer(
        "HTTP/1.0 with upgrade headers",
        b"DIAL /tok HTTP/1.0\r\nHost: 127.0.0.1:18080\r\nConnection: upgrade\r\n"
        b"Upgrade: rdv/1\r\nRdv-Self-Addrs: \r\n\r\n",
        b"HTTP/1.0 426 Upgrade Required\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"X-Content-Type-Options: nosniff\r\nDate: Wed, 25 Nov 2026 14:26:26 GMT\r\n"
        b"Content-Length: 59\r\n\r\ninvalid rdv upgrade: bad http version for upgrade HTTP/1.0\n",
        closed=True,
    ),
    ServerAnswer(
        "GET with upgrade headers",
        b"GET /tok HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nConnection: upgrade\r\nUpgrade: rdv/1\r\n"
        b"Rdv-Self-Addrs: \r\n\r\n",
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"X-Content-Type-Options: nosniff\r\nDate: Wed, 25 Nov 2026 14:26:26 GMT\r\n"
        b"Content-Length: 25\r\n\r\nunknown rdv method [GET]\n",
    ),
    ServerAnswer(
        "DIAL / (empty token)",
        b"DIAL / HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nConnection: upgrade\r\nUpgrade: rdv/1\r\n"
        b"Rdv-Self-Addrs: \r\n\r\n",
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"X-Content-Type-Options: nosniff\r\nDate: Wed, 25 Nov 2026 14:26:27 GMT\r\n"
        b"Content-Length: 18\r\n\r\nmissing rdv token\n",
    ),
    ServerAnswer(
        "invalid Rdv-Self-Addrs",
        b"DIAL /tok-bad-self HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nConnection: upgrade\r\n"
        b"Upgrade: rdv/1\r\nRdv-Self-Addrs: foo\r\n\r\n",
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"X-Content-Type-Options: nosniff\r\nDate: Wed, 25 Nov 2026 14:26:28 GMT\r\n"
        b"Content-Length: 25\r\n\r\ninvalid self addrs [foo]\n",
    ),
    ServerAnswer(
        "Rdv-Self-Addrs with trailing comma",
        b"DIAL /tok-tc HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nConnection: upgrade\r\n"
        b"Upgrade: rdv/1\r\nRdv-Self-Addrs: 1.2.3.4:5,\r\n\r\n",
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"X-Content-Type-Options: nosniff\r\nDate: Wed, 25 Nov 2026 14:26:29 GMT\r\n"
        b"Content-Length: 32\r\n\r\ninvalid self addrs [1.2.3.4:5,]\n",
    ),
    ServerAnswer(
        "10 self addrs",
        b"DIAL /tok-many HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nConnection: upgrade\r\n"
        b"Upgrade: rdv/1\r\nRdv-Self-Addrs: 10.0.0.1:1000, 10.0.0.2:1000, 10.0.0.3:1000, "
        b"10.0.0.4:1000, 10.0.0.5:1000, 10.0.0.6:1000, 10.0.0.7:1000, 10.0.0.8:1000, "
        b"10.0.0.9:1000, 10.0.0.10:1000\r\n\r\n",
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"X-Content-Type-Options: nosniff\r\nDate: Wed, 25 Nov 2026 14:26:30 GMT\r\n"
        b"Content-Length: 172\r\n\r\ntoo many self addrs [10.0.0.1:1000, 10.0.0.2:1000, "
        b"10.0.0.3:1000, 10.0.0.4:1000, 10.0.0.5:1000, 10.0.0.6:1000, 10.0.0.7:1000, "
        b"10.0.0.8:1000, 10.0.0.9:1000, 10.0.0.10:1000]\n",
    ),
    ServerAnswer(
        "9 self addrs",
        b"DIAL /tok-nine HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nConnection: upgrade\r\n"
        b"Upgrade: rdv/1\r\nRdv-Self-Addrs: 10.0.0.1:1000,10.0.0.2:1000,10.0.0.3:1000,"
        b"10.0.0.4:1000,10.0.0.5:1000,10.0.0.6:1000,10.0.0.7:1000,10.0.0.8:1000,"
        b"10.0.0.9:1000\r\n\r\n",
        None,
    ),
    ServerAnswer(
        "no Rdv-Self-Addrs header at all",
        b"DIAL /tok-noself HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nConnection: upgrade\r\n"
        b"Upgrade: rdv/1\r\n\r\n",
        None,
    ),
    ServerAnswer(
        "lower/upper-case header values",
        b"ACCEPT /tok-ci HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nconnection: Upgrade\r\n"
        b"upgrade:  RDV/1 \r\n\r\n",
        None,
    ),
    ServerAnswer(
        "missing Host header",
        b"DIAL /tok HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: rdv/1\r\n\r\n",
        b"HTTP/1.1 400 Bad Request: missing required Host header\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
        b"400 Bad Request: missing required Host header",
        closed=True,
    ),
    ServerAnswer(
        "lowercase method 'dial'",
        b"dial /tok HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: rdv/1\r\n\r\n",
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"X-Content-Type-Options: nosniff\r\nDate: Wed, 25 Nov 2026 14:27:38 GMT\r\n"
        b"Content-Length: 26\r\n\r\nunknown rdv method [dial]\n",
    ),
    ServerAnswer(
        "absolute-form target",
        b"DIAL http://127.0.0.1:18080/abs-tok HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n"
        b"Upgrade: rdv/1\r\nRdv-Self-Addrs: [fe80::1%eth0]:5\r\n\r\n",
        None,
    ),
    ServerAnswer(
        "ipv6 zone in self addr + ipv4-mapped",
        b"DIAL /tok-z HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: rdv/1\r\n"
        b"Rdv-Self-Addrs: [::ffff:1.2.3.4]:7 ,  [fe80::1%25eth0]:5\r\n\r\n",
        None,
    ),
)

#: What a new request got after the server shut down (the caller's check, section 3).
CLOSED_ANSWER = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"X-Content-Type-Options: nosniff\r\nDate: Wed, 25 Nov 2026 14:26:53 GMT\r\n"
    b"Content-Length: 14\r\n\r\nrdv is closed\n"
)

#: Section 5: errors written after the upgrade was accepted, then the conn closed.
UPGRADE_ERRORS: tuple[tuple[int, str, bytes], ...] = (
    (
        400,
        "conn must idle while waiting for response header",
        b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain; "
        b"charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n\r\n"
        b"conn must idle while waiting for response header",
    ),
    (
        409,
        "replaced by another conn",
        b"HTTP/1.1 409 Conflict\r\nConnection: close\r\nContent-Type: text/plain; "
        b"charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n\r\nreplaced by another conn",
    ),
    (
        408,
        "no matching peer found",
        b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain; "
        b"charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n\r\nno matching peer found",
    ),
    (
        503,
        "rdv server shutting down, try again",
        b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain; "
        b"charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n\r\n"
        b"rdv server shutting down, try again",
    ),
)


@dataclass(frozen=True)
class Upgrade101:
    """A recorded ``101``: the bytes, and the values they carry."""

    name: str
    data: bytes
    observed: str | None
    peers: tuple[str, ...]


UPGRADES: tuple[Upgrade101, ...] = (
    Upgrade101(
        "ACCEPT /x%2Fy%20z + DIAL /x/y%20z: dialer",
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
        b"Rdv-Observed-Addr: 127.0.0.1:50824\r\nRdv-Peer-Addrs: 127.0.0.1:50822\r\n"
        b"Upgrade: rdv/1\r\n\r\n",
        "127.0.0.1:50824",
        ("127.0.0.1:50822",),
    ),
    Upgrade101(
        "DIAL first, then ACCEPT: accepter",
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
        b"Rdv-Observed-Addr: 127.0.0.1:50844\r\nRdv-Peer-Addrs: 127.0.0.1:50836\r\n"
        b"Upgrade: rdv/1\r\n\r\n",
        "127.0.0.1:50844",
        ("127.0.0.1:50836",),
    ),
    Upgrade101(
        "raw pair: dialer",
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
        b"Rdv-Observed-Addr: 127.0.0.1:50864\r\n"
        b"Rdv-Peer-Addrs: 127.0.0.1:50848, 192.0.2.77:4000, [2001:db8::1]:4000\r\n"
        b"Upgrade: rdv/1\r\n\r\n",
        "127.0.0.1:50864",
        ("127.0.0.1:50848", "192.0.2.77:4000", "[2001:db8::1]:4000"),
    ),
    Upgrade101(
        "raw pair: accepter",
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
        b"Rdv-Observed-Addr: 127.0.0.1:50848\r\n"
        b"Rdv-Peer-Addrs: 127.0.0.1:50864, 192.0.2.77:5000\r\nUpgrade: rdv/1\r\n\r\n",
        "127.0.0.1:50848",
        ("127.0.0.1:50864", "192.0.2.77:5000"),
    ),
)

#: The 101 to the accepter of a p2p session, in the TCP segments the Go server wrote.
SEGMENTED_101_P2P: tuple[bytes, ...] = (
    b"HTTP/1.1 101 Switching Protocols\r\n",
    b"Connection",
    b": ",
    b"upgrade",
    b"\r\n",
    b"Rdv-Observed-Addr",
    b": ",
    b"127.0.0.1:41851",
    b"\r\n",
    b"Rdv-Peer-Addrs",
    b": ",
    b"127.0.0.1:36481, 192.0.2.2:36481, [fd00::2]:36481",
    b"\r\n",
    b"Upgrade",
    b": ",
    b"rdv/1",
    b"\r\n",
    b"\r\n",
)

#: The accepter's conn of a relayed session: the 101 segments, then CONTINUE and data.
SEGMENTED_101_RELAY: tuple[bytes, ...] = (
    b"HTTP/1.1 101 Switching Protocols\r\n",
    b"Connection",
    b": ",
    b"upgrade",
    b"\r\n",
    b"Rdv-Observed-Addr",
    b": ",
    b"127.0.0.1:41419",
    b"\r\n",
    b"Rdv-Peer-Addrs",
    b": ",
    b"127.0.0.1:42555",
    b"\r\n",
    b"Upgrade",
    b": ",
    b"rdv/1",
    b"\r\n",
    b"\r\n",
    b"CONTINUE\n",
    b"hello from the dialer\nsecond line\n",
)


@dataclass(frozen=True)
class ClientRequest:
    """What a reference client sent for a token (section 2 and 6)."""

    token: str
    request: bytes
    header_line: bytes
    server_token: str
    self_addrs: tuple[str, ...]


UNUSUAL_TOKENS: tuple[ClientRequest, ...] = (
    ClientRequest(
        "simple-token",
        b"DIAL /simple-token HTTP/1.1\r\nHost: 127.0.0.1:18090\r\n"
        b"User-Agent: Go-http-client/1.1\r\nConnection: upgrade\r\n"
        b"Rdv-Self-Addrs: 127.0.0.1:39725, 192.0.2.2:39725, [::1]:39725, [fd00::2]:39725\r\n"
        b"Upgrade: rdv/1\r\n\r\n",
        b"rdv/1 DIAL simple-token\n",
        "simple-token",
        ("127.0.0.1:39725", "192.0.2.2:39725", "[::1]:39725", "[fd00::2]:39725"),
    ),
    ClientRequest(
        "a b/c%2Fd?e#f",
        b"DIAL /a%20b/c/d%3Fe%23f HTTP/1.1\r\nHost: 127.0.0.1:18090\r\n"
        b"User-Agent: Go-http-client/1.1\r\nConnection: upgrade\r\n"
        b"Rdv-Self-Addrs: 127.0.0.1:36597, 192.0.2.2:36597, [::1]:36597, [fd00::2]:36597\r\n"
        b"Upgrade: rdv/1\r\n\r\n",
        b"rdv/1 DIAL a%20b%2Fc%252Fd%3Fe%23f\n",
        "a b/c/d?e#f",
        ("127.0.0.1:36597", "192.0.2.2:36597", "[::1]:36597", "[fd00::2]:36597"),
    ),
    ClientRequest(
        "\u00fcmlaut+plus;semi",
        b"DIAL /%C3%BCmlaut+plus;semi HTTP/1.1\r\nHost: 127.0.0.1:18090\r\n"
        b"User-Agent: Go-http-client/1.1\r\nConnection: upgrade\r\n"
        b"Rdv-Self-Addrs: 127.0.0.1:43163, 192.0.2.2:43163, [::1]:43163, [fd00::2]:43163\r\n"
        b"Upgrade: rdv/1\r\n\r\n",
        b"rdv/1 DIAL %C3%BCmlaut+plus%3Bsemi\n",
        "\u00fcmlaut+plus;semi",
        ("127.0.0.1:43163", "192.0.2.2:43163", "[::1]:43163", "[fd00::2]:43163"),
    ),
    ClientRequest(
        "../x/./y",
        b"DIAL /x/y HTTP/1.1\r\nHost: 127.0.0.1:18090\r\n"
        b"User-Agent: Go-http-client/1.1\r\nConnection: upgrade\r\n"
        b"Rdv-Self-Addrs: 127.0.0.1:43157, 192.0.2.2:43157, [::1]:43157, [fd00::2]:43157\r\n"
        b"Upgrade: rdv/1\r\n\r\n",
        b"rdv/1 DIAL ..%2Fx%2F.%2Fy\n",
        "x/y",
        ("127.0.0.1:43157", "192.0.2.2:43157", "[::1]:43157", "[fd00::2]:43157"),
    ),
)

#: Requests captured by tcpdump in whole sessions (p2p, then relayed).
SESSION_REQUESTS: tuple[tuple[str, str, bytes, tuple[str, ...]], ...] = (
    (
        "ACCEPT",
        "tok-cap1",
        b"ACCEPT /tok-cap1 HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nUser-Agent: Go-http-client/1.1\r\n"
        b"Connection: upgrade\r\nRdv-Self-Addrs: 192.0.2.2:41851, [fd00::2]:41851\r\n"
        b"Upgrade: rdv/1\r\n\r\n",
        ("192.0.2.2:41851", "[fd00::2]:41851"),
    ),
    (
        "DIAL",
        "tok-cap1",
        b"DIAL /tok-cap1 HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nUser-Agent: Go-http-client/1.1\r\n"
        b"Connection: upgrade\r\nRdv-Self-Addrs: 192.0.2.2:36481, [fd00::2]:36481\r\n"
        b"Upgrade: rdv/1\r\n\r\n",
        ("192.0.2.2:36481", "[fd00::2]:36481"),
    ),
    (
        "ACCEPT",
        "tok-cap2",
        b"ACCEPT /tok-cap2 HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nUser-Agent: Go-http-client/1.1\r\n"
        b"Connection: upgrade\r\nRdv-Self-Addrs: \r\nUpgrade: rdv/1\r\n\r\n",
        (),
    ),
    (
        "DIAL",
        "tok-cap2",
        b"DIAL /tok-cap2 HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nUser-Agent: Go-http-client/1.1\r\n"
        b"Connection: upgrade\r\nRdv-Self-Addrs: \r\nUpgrade: rdv/1\r\n\r\n",
        (),
    ),
)

#: Lines seen on direct conns and relay conns.
HEADER_LINES: tuple[tuple[str, str, bytes], ...] = (
    ("ACCEPT", "tok-cap1", b"rdv/1 ACCEPT tok-cap1\n"),
    ("DIAL", "tok-cap1", b"rdv/1 DIAL tok-cap1\n"),
)
OTHER_LINES: tuple[tuple[str, bytes], ...] = (
    ("127.0.0.1:18091", b"OTHER 127.0.0.1:18091\n"),
    ("[fd00::2]:41851", b"OTHER [fd00::2]:41851\n"),
)
