"""Reading the server's answer to DIAL/ACCEPT: its head, and an error's body (section 4, 5).

docs/PROTOCOL.md sections 4 and 5: the head is read line by line so that the bytes after it
(the relayed stream) stay in the reader; an error body is read up to a bound, with a time
limit, chunked or not.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

from rdv_core.errors import MAX_BODY, RdvProtocolError, ServerConnectError
from rdv_core.wire import (
    MAX_HEADER_BLOCK,
    MAX_HEADERS,
    Addr,
    AddrSpace,
    BodyCollector,
    Head,
    HeadParser,
    ProtocolError,
)

#: How long we wait for the rest of an error body once the status line arrived. The
#: server sends it in the same breath; a server that keeps the conn open without a
#: Content-Length should not hold the user's error message hostage.
ERROR_BODY_TIMEOUT: Final = 1.0


async def read_response_head(reader: asyncio.StreamReader, stage: str, *, tls: bool = True) -> Head:
    """The response head, line by line, so that bytes after it stay in ``reader``.

    ``stage`` says what the attempt was doing, for the error when the conn is lost;
    ``tls`` False (an ``http://`` URL) adds the likeliest cause to a close without a byte.
    """
    parser = HeadParser("response")
    # The first bytes at once: another service on the port (SSH, SMTP: a banner, then a
    # wait for its own protocol) held the attempt until that service gave up.
    start = await _take(reader, stage, 0, len(STATUS_START), tls)
    if start != STATUS_START:
        raise RdvProtocolError(f"bad response from the server: {not_http(start, reader)}")
    size = len(start)
    for lines in range(1, MAX_HEADERS + 3):
        line = await _take(reader, stage, size, None, tls)
        size += len(line)
        if lines == 1:
            line = start + line
        if size > MAX_HEADER_BLOCK:
            raise RdvProtocolError("response header block too large")
        head = _feed(parser, line)
        if head is not None:
            return head
        # The server writes its head at once: the rest is usually in the reader already.
        # Take it in one piece, no further than the line-by-line reading would go (one
        # parse instead of a read and a parse per line, issue-10-connect-fifth.md).
        rest = _buffered_head(reader, MAX_HEADER_BLOCK - size, MAX_HEADERS + 2 - lines)
        if rest:
            block = await _take(reader, stage, size, rest, tls)
            size += rest
            head = _feed(parser, block)
            if head is not None:
                return head
    raise RdvProtocolError("too many response header lines")


#: The error of a conn closed before a byte of the answer came (client/_rejoin.py reads it).
CLOSED_SILENTLY: Final = "the server closed the connection before answering"
#: How every HTTP/1.x response begins (RFC 9112 section 4).
STATUS_START: Final = b"HTTP/"
#: The frame type byte of HTTP/2's SETTINGS frame, the first frame an HTTP/2 server sends.
H2_SETTINGS: Final = b"\x04"
#: What the error says for an answer that is not HTTP (``rdv doctor``'s summary looks for it).
NOT_HTTP: Final = "it does not speak HTTP"


def not_http(start: bytes, reader: asyncio.StreamReader) -> str:
    """Why an answer that does not begin as HTTP is not one: what it said, its first line
    (``SSH-2.0-OpenSSH_9.6``, ``220 mail ESMTP``) as far as it is in already, printable."""
    buffer = getattr(reader, "_buffer", b"")  # CPython's StreamReader; else the 5 bytes
    if start[3:4] == H2_SETTINGS and start[:1] == b"\0":
        # An HTTP/2 server's preface (RFC 9113 section 3.4): a SETTINGS frame, binary.
        return (
            f"{NOT_HTTP}/1.1 (it answered with an HTTP/2 frame: an HTTP/2-only service, such "
            "as gRPC): is that port the rdv server's?"
        )
    line = (start + bytes(buffer[:120])).split(b"\n", 1)[0].rstrip(b"\r")
    text = "".join(c if c.isprintable() and c.isascii() else "?" for c in line.decode("latin-1"))
    return f"{NOT_HTTP} (it said {text[:80]!r}): is that port the rdv server's?"


def _buffered_head(reader: asyncio.StreamReader, max_bytes: int, max_lines: int) -> int:
    """How many bytes already in ``reader`` end the head (its first line read), or 0.

    0 when the blank line is not in yet, or lies past ``max_bytes`` or ``max_lines``
    lines. Reads ``StreamReader._buffer`` (CPython's, not public: another reader class
    gets 0, the line-by-line path).
    """
    buffer = getattr(reader, "_buffer", None)
    if not isinstance(buffer, bytearray):
        return 0
    if buffer[:1] == b"\n":  # the blank line right after the first line
        end = 1
    elif buffer[:2] == b"\r\n":
        end = 2
    else:
        limit = max_bytes + 3
        ends = [
            found + len(blank)
            for blank in (b"\n\n", b"\n\r\n")
            if (found := buffer.find(blank, 0, limit)) >= 0
        ]
        if not ends:
            return 0
        end = min(ends)
    if end > max_bytes or buffer.count(b"\n", 0, end) > max_lines:
        return 0
    return end


async def _take(
    reader: asyncio.StreamReader, stage: str, size: int, count: int | None, tls: bool
) -> bytes:
    """One line (``count`` None) or ``count`` bytes of the head; the conn's errors as ours."""
    try:
        if count is None:
            return await reader.readuntil(b"\n")
        return await reader.readexactly(count)
    except asyncio.IncompleteReadError as exc:
        if size or exc.partial:
            raise RdvProtocolError("the server closed the connection inside its response") from None
        # A TLS server (OpenSSL's, rdv serve --tls-cert) closes a plain-HTTP conn without
        # a byte: the one case of a silent close a user can mend at once.
        raise RdvProtocolError(
            CLOSED_SILENTLY + ("" if tls else " (if it serves TLS, use https://)")
        ) from None
    except asyncio.LimitOverrunError:
        raise RdvProtocolError("response header line too long") from None
    except OSError as exc:
        raise ServerConnectError(
            f"lost the connection to the rdv server while {stage}: {exc}", exc.errno
        ) from exc


def _feed(parser: HeadParser, data: bytes) -> Head | None:
    try:
        return parser.feed(data)
    except ProtocolError as exc:
        raise RdvProtocolError(f"bad response from the server: {exc.message}") from exc


async def read_error_body(reader: asyncio.StreamReader, head: Head) -> str:
    """Up to :data:`~rdv_core.errors.MAX_BODY` bytes of an error response's body.

    A chunked body (an HTTP/1.1 proxy such as nginx frames rdv's close-delimited errors
    that way) is decoded; a bad Content-Length is read as no length (up to the bound).
    """
    try:
        collector = BodyCollector(head, MAX_BODY)
    except ProtocolError:
        collector = BodyCollector(Head(head.start_line, head.version, []), MAX_BODY)
    with contextlib.suppress(TimeoutError, OSError):
        async with asyncio.timeout(ERROR_BODY_TIMEOUT):
            while not collector.done:
                chunk = await reader.read(4096)
                if not chunk:
                    break
                collector.feed(chunk)
    return collector.text


def retry_after_s(head: Head) -> float | None:
    """The answer's ``Retry-After`` in seconds (RFC 9110 section 10.2.3), or None when it
    is absent or an HTTP date (client/_rejoin.py then paces by its own backoff)."""
    raw = (head.get("Retry-After") or "").strip()
    return float(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else None


#: The seed's hint, for an observed address that is missing or not public IPv4.
OBSERVED_HINT: Final = (
    "p2p across NATs will likely fail (normal on a local network; else check server config)"
)


def observed_warning(observed: Addr | None) -> str | None:
    """The warning for the ``101``'s observed address (docs/PROTOCOL.md section 4), or None."""
    if observed is None:
        return f"the server did not report our observed address: {OBSERVED_HINT}"
    if observed.space == AddrSpace.PUBLIC6:
        # Reached over IPv6, a public address is what a peer needs (no NAT to cross):
        # Go warns for anything but public IPv4 (it dials IPv4 only), we do not.
        return None
    if not observed.is_ipv4 or observed.space != AddrSpace.PUBLIC4:
        return f"expected observed address {observed} to be public IPv4: {OBSERVED_HINT}"
    return None
