"""HTTP/1.x heads: the :class:`Head` value, its incremental parser, header names.

Also home of the errors every layer above raises (:class:`ProtocolError`,
:class:`RequestRejected`), because the parser itself raises both. See
:mod:`rdv_core.wire._http1` for the design (bounds, deviations from Go).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from rdv_core.errors import RdvError

#: Largest HTTP header block we parse; the reference (Go) allows 1 MiB, but rdv requests
#: carry at most a few application headers and a lobby holds many idle requests.
MAX_HEADER_BLOCK: Final = 32 * 1024
MAX_HEADERS: Final = 100


class ProtocolError(RdvError):
    """Input that breaks rdv/1 or HTTP/1.1. ``status`` is the HTTP status a server answers."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class RequestRejected(ProtocolError):
    """A well-formed HTTP request that is not an acceptable rdv request (section 3).

    ``message`` is the exact body text (without the trailing newline) the server answers.
    ``http_level`` is True for what Go's net/http answers before any handler runs
    (``message`` is then the whole public error, e.g. ``400 Bad Request: missing required
    Host header``): :func:`build_rejection` frames it as Go does and the conn is closed.
    """

    def __init__(self, message: str, status: int = 400, *, http_level: bool = False) -> None:
        super().__init__(message, status)
        self.http_level = http_level


@dataclass(slots=True)
class Head:
    """A parsed HTTP head: request (``method``, ``target``) or response (``status``, ``reason``).

    ``headers`` keeps order and duplicates; names keep their case.
    """

    start_line: str
    version: str
    headers: list[tuple[str, str]]
    method: str = ""
    target: str = ""
    status: int = 0
    reason: str = ""

    def get(self, name: str) -> str | None:
        """The first value of a header (case-insensitive name), or None."""
        lower = name.lower()
        for key, value in self.headers:
            if key.lower() == lower:
                return value
        return None

    def get_joined(self, name: str) -> str | None:
        """Every value of a header, in order, joined with ``", "`` (None: absent).

        A list header sent on several lines is one list (RFC 9110 section 5.3): HAProxy's
        ``option forwardfor`` adds its own ``X-Forwarded-For`` line after the client's, so
        the first line alone is whatever the client wrote (docs/PROTOCOL.md section 8,
        observed address).
        """
        lower = name.lower()
        values = [value for key, value in self.headers if key.lower() == lower]
        return ", ".join(values) if values else None

    def has(self, name: str) -> bool:
        """True if the header is present (even with an empty value)."""
        return self.get(name) is not None

    @property
    def content_length(self) -> int | None:
        """The Content-Length, or None when absent.

        Raises:
            ProtocolError: when present but not a non-negative integer.
        """
        raw = self.get("Content-Length")
        if raw is None:
            return None
        if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
            raise ProtocolError(f"invalid Content-Length {raw!r}")
        return int(raw)


#: An HTTP token (method, header name). Use ``fullmatch``: ``$`` also matches before a newline.
_TOKEN_RE: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSION_RE: Final = re.compile(r"HTTP/([0-9])\.([0-9])")


def is_token(text: str) -> bool:
    """True if ``text`` is an HTTP token (a valid method or header name)."""
    return text.isascii() and _TOKEN_RE.fullmatch(text.encode("ascii")) is not None


#: The first byte of a TLS record carrying a handshake (RFC 8446 section 5.1): no HTTP
#: method starts with it.
TLS_HANDSHAKE: Final = b"\x16"
#: How PROXY v1/v2 headers begin (wire/_proxy_protocol.py's V1_PREFIX and V2_SIGNATURE;
#: that module imports this one): a balancer sending them to a server that does not read
#: them got "empty HTTP head" or "malformed request line" in the server's log.
_PROXY_STARTS: Final = (b"PROXY ", b"\r\n\r\n\x00\r\nQUIT\n")
_PROXY_V1_LINES: Final = (b"PROXY TCP4 ", b"PROXY TCP6 ", b"PROXY UNKNOWN")
PROXY_NOT_READ: Final = (
    "a PROXY protocol header, and PROXY protocol is off here (rdv serve --proxy-protocol)"
)


class HeadParser:
    """Incremental parser for one HTTP/1.x head (request or response).

    Feed bytes with :meth:`feed` until it returns a :class:`Head`; then
    :attr:`trailing` holds every byte that followed the blank line.
    """

    __slots__ = ("_buf", "_kind", "_max", "head", "trailing")

    def __init__(self, kind: Literal["request", "response"], max_size: int = MAX_HEADER_BLOCK):
        self._kind = kind
        self._max = max_size
        self._buf = bytearray()
        self.head: Head | None = None
        self.trailing = b""

    def feed(self, data: bytes) -> Head | None:
        """Add bytes; return the head once the blank line has arrived.

        Raises:
            ProtocolError: for malformed or oversized input.
        """
        if self.head is not None:
            self.trailing += data
            return self.head
        start = max(0, len(self._buf) - 3)
        self._buf += data
        end = _find_head_end(self._buf, start)
        if end < 0:
            if self._buf[:1] == TLS_HANDSHAKE and self._kind == "request":
                # A TLS ClientHello (https:// to a plain-HTTP server) holds no blank line:
                # waiting for one kept the client until the head timeout. Checked only on
                # an unfinished head, so a whole request in one read pays nothing.
                raise ProtocolError("a TLS handshake to a plain-HTTP server (use http://)")
            if self._buf.startswith(_PROXY_V1_LINES) and b"\n" in self._buf:
                # A whole PROXY v1 line is never a request line: answered now, as Go answers
                # a malformed request line, not when a blank line or the head timeout comes.
                raise ProtocolError(PROXY_NOT_READ)
            if len(self._buf) > self._max:
                raise ProtocolError("HTTP header block too large", status=431)
            return None
        if end > self._max:
            raise ProtocolError("HTTP header block too large", status=431)
        block = bytes(self._buf[:end])
        self.trailing = bytes(self._buf[end:])
        self._buf = bytearray()
        try:
            self.head = _parse_head(block, self._kind)
        except ProtocolError as exc:  # only then: a good head pays nothing for the check
            if self._kind == "request" and (block + self.trailing).startswith(_PROXY_STARTS):
                raise ProtocolError(PROXY_NOT_READ) from exc
            raise
        return self.head


def _find_head_end(buf: bytearray, start: int) -> int:
    """Index just past the blank line ending the head (CRLF or bare LF lines), or -1.

    A blank line is ``\\n\\n`` or ``\\n\\r\\n``; a head never starts with one. The
    first of the two patterns ends the head: two C searches instead of a Python loop
    over every line (that loop was 2 % of a loopback attempt's bytecodes, issue 10).
    """
    bare = buf.find(b"\n\n", start)
    crlf = buf.find(b"\n\r\n", start)
    if crlf >= 0 and (bare < 0 or crlf < bare):
        return crlf + 3
    return bare + 2 if bare >= 0 else -1


def _split_lines(block: bytes) -> list[bytes]:
    if block.count(b"\n") == block.count(b"\r\n"):
        # Every line ends with CRLF (all but odd clients): the same pieces in one C call.
        out = block.split(b"\r\n")
    else:
        out = [line[:-1] if line.endswith(b"\r") else line for line in block.split(b"\n")]
    # The block ends with the blank line: drop the two empty pieces it leaves.
    while out and out[-1] == b"":
        out.pop()
    return out


_CTL: Final = bytes(range(0x20)) + b"\x7f"
_CTL_BUT_TAB: Final = _CTL.replace(b"\t", b"")


def _has_ctl(data: bytes, allow_tab: bool = False) -> bool:
    """True if ``data`` holds an ASCII control byte (as Go's net/http defines them)."""
    return len(data.translate(None, _CTL_BUT_TAB if allow_tab else _CTL)) != len(data)


def _parse_head(block: bytes, kind: Literal["request", "response"]) -> Head:
    lines = _split_lines(block)
    if not lines:
        raise ProtocolError("empty HTTP head")
    if kind == "request":
        return _parse_request_head(lines[0], _parse_header_lines(lines[1:], kind))
    return _parse_response_head(lines[0], _parse_header_lines(lines[1:], kind))


def _parse_request_head(raw_line: bytes, headers: list[tuple[str, str]]) -> Head:
    # Go's net/http rejects any control byte in the request line (method, target, version).
    if _has_ctl(raw_line):
        raise ProtocolError("control character in HTTP request line")
    try:
        # A Go client escapes its path, but Go's server takes raw UTF-8 in a target too.
        start_line = raw_line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError("HTTP request line is not UTF-8") from exc
    parts = start_line.split(" ")
    if len(parts) != 3 or not all(parts):
        raise ProtocolError(f"malformed request line {start_line[:100]!r}")
    method, target, version = parts
    if not is_token(method):
        raise ProtocolError(f"invalid method {method[:40]!r}")
    if _VERSION_RE.fullmatch(version) is None:
        raise ProtocolError(f"malformed HTTP version {version[:20]!r}")
    return Head(start_line, version, headers, method=method, target=target)


def _parse_response_head(raw_line: bytes, headers: list[tuple[str, str]]) -> Head:
    if b"\0" in raw_line or b"\r" in raw_line:
        raise ProtocolError("malformed HTTP status line")
    # Go's client takes any bytes in the reason phrase; Latin-1 never fails to decode.
    start_line = raw_line.decode("latin-1")
    version, _, rest = start_line.partition(" ")
    status_text, _, reason = rest.lstrip(" ").partition(" ")
    if _VERSION_RE.fullmatch(version) is None:
        raise ProtocolError(f"invalid HTTP version in status line {start_line[:100]!r}")
    # isascii(): Latin-1 has digits (superscripts) that isdigit() accepts but int() refuses.
    if len(status_text) != 3 or not status_text.isascii() or not status_text.isdigit():
        raise ProtocolError(f"invalid status code in {start_line[:100]!r}")
    return Head(start_line, version, headers, status=int(status_text), reason=reason)


def _parse_header_lines(
    lines: list[bytes], kind: Literal["request", "response"]
) -> list[tuple[str, str]]:
    if len(lines) > MAX_HEADERS:
        raise ProtocolError("too many HTTP headers", status=431)
    headers: list[tuple[str, str]] = []
    # No control byte but tabs in any line (every well-formed head): the value checks
    # below cannot fire, so one C pass over the whole block skips them (issue 10). The
    # errors stay the same, in the same order.
    clean = not _has_ctl(b"".join(lines), allow_tab=True)
    for raw in lines:
        if raw[:1] in (b" ", b"\t"):
            raise ProtocolError("obsolete header line folding")
        name, colon, value = raw.partition(b":")
        if not colon or not _TOKEN_RE.fullmatch(name):
            raise ProtocolError(f"malformed header line {raw[:100]!r}")
        if not clean:
            if b"\0" in value or b"\r" in value:
                raise ProtocolError("invalid character in header value")
            if kind == "request" and _has_ctl(value, allow_tab=True):
                # What Go's net/http answers before any handler runs.
                raise RequestRejected("400 Bad Request: invalid header value", 400, http_level=True)
        # Latin-1 maps every byte to one character and never fails.
        headers.append((name.decode("ascii"), value.decode("latin-1").strip(" \t")))
    return headers


def canonical_header_name(name: str) -> str:
    """Go's ``CanonicalMIMEHeaderKey``: ``rdv-self-addrs`` -> ``Rdv-Self-Addrs``.

    A name with a byte that is not an HTTP token character is returned unchanged.
    """
    if not is_token(name):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def http_version(head: Head) -> tuple[int, int]:
    """The (major, minor) HTTP version of a parsed head.

    Raises:
        RequestRejected: http-level 400 for a version that is not ``HTTP/<digit>.<digit>``
            (:class:`HeadParser` never builds such a head; a hand-built one may have it).
    """
    match = _VERSION_RE.fullmatch(head.version)
    if match is None:
        raise RequestRejected("400 Bad Request: malformed HTTP version", 400, http_level=True)
    return int(match.group(1)), int(match.group(2))
