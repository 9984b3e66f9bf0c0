"""The responses a server writes at the HTTP level, and the error body a client reads.

Builders mirror Go's net/http byte for byte (apart from the ``Date``): the reason
phrases of ``http.StatusText``, ``http.Error``'s header order and framing, the bare
pre-handler errors. :func:`build_rejection` picks the framing for a refused request.
See :mod:`rdv_core.wire._http1` for the design.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from rdv_core.wire._http1.head import (
    Head,
    ProtocolError,
    RequestRejected,
    canonical_header_name,
    http_version,
)

#: How much of an error body a client keeps for the user (docs/PROTOCOL.md section 4).
MAX_ERROR_BODY: Final = 1024

#: Go's ``http.StatusText``: the reason phrases the reference writes.
REASONS: Final[dict[int, str]] = {
    100: "Continue",
    101: "Switching Protocols",
    102: "Processing",
    103: "Early Hints",
    200: "OK",
    201: "Created",
    202: "Accepted",
    203: "Non-Authoritative Information",
    204: "No Content",
    205: "Reset Content",
    206: "Partial Content",
    207: "Multi-Status",
    208: "Already Reported",
    226: "IM Used",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Found",
    303: "See Other",
    304: "Not Modified",
    305: "Use Proxy",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    409: "Conflict",
    410: "Gone",
    411: "Length Required",
    412: "Precondition Failed",
    413: "Request Entity Too Large",
    414: "Request URI Too Long",
    415: "Unsupported Media Type",
    416: "Requested Range Not Satisfiable",
    417: "Expectation Failed",
    418: "I'm a teapot",
    421: "Misdirected Request",
    422: "Unprocessable Entity",
    423: "Locked",
    424: "Failed Dependency",
    425: "Too Early",
    426: "Upgrade Required",
    428: "Precondition Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    451: "Unavailable For Legal Reasons",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
    506: "Variant Also Negotiates",
    507: "Insufficient Storage",
    508: "Loop Detected",
    510: "Not Extended",
    511: "Network Authentication Required",
}


def reason_phrase(status: int) -> str:
    """The reason phrase Go writes for a status code (``status code N`` if it has none)."""
    return REASONS.get(status) or f"status code {status}"


def check_status(status: int) -> None:
    """Raise ValueError for a status code Go would refuse to write (outside 100..999)."""
    if not 100 <= status <= 999:
        raise ValueError(f"invalid HTTP status code {status}")


def build_plain_response(
    status: int,
    message: str,
    version: str = "HTTP/1.1",
    close: bool = False,
    content_type: str = "text/plain; charset=utf-8",
    extra_headers: Sequence[tuple[str, str]] = (),
    add_newline: bool = True,
) -> bytes:
    """A plain HTTP response with Content-Length (section 3 framing), as Go's ``http.Error``.

    Header order is Go's: the handler's headers sorted by name (Content-Type,
    X-Content-Type-Options, ``extra_headers``), then ``Connection: close``, ``Date``,
    ``Content-Length``. Only the Date differs from the reference's bytes.

    Raises:
        ValueError: for a status outside 100..999.
    """
    check_status(status)
    body = (message + "\n" if add_newline else message).encode("utf-8")
    handler_headers = [("Content-Type", content_type)]
    if content_type.startswith("text/plain"):
        handler_headers.append(("X-Content-Type-Options", "nosniff"))
    handler_headers.extend(extra_headers)
    handler_headers.sort(key=lambda item: canonical_header_name(item[0]))
    lines = [f"{version} {status} {reason_phrase(status)}"]
    lines.extend(f"{k}: {v}" for k, v in handler_headers)
    if close:
        lines.append("Connection: close")
    lines.append(f"Date: {email.utils.formatdate(usegmt=True)}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def build_http_error(status: int, detail: str = "") -> bytes:
    """Go's net/http answer to a request it refuses before any handler runs.

    ``HTTP/1.1 400 Bad Request: missing required Host header`` + ``Content-Type`` +
    ``Connection: close``, and the same text as the body (no newline, no length): the
    server then closes the conn.

    Raises:
        ValueError: for a status outside 100..999.
    """
    check_status(status)
    public = f"{status} {reason_phrase(status)}"
    if detail:
        public += f": {detail}"
    return _http_error_bytes(public)


def _http_error_bytes(public: str) -> bytes:
    return (
        f"HTTP/1.1 {public}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Connection: close\r\n\r\n"
        f"{public}"
    ).encode("latin-1", "replace")


@dataclass(frozen=True, slots=True)
class Reply:
    """Bytes a server writes, and whether it then closes the conn."""

    data: bytes
    close: bool


def build_rejection(error: ProtocolError, head: Head | None = None) -> Reply:
    """The server's answer to a request that failed :class:`HeadParser` or the checks.

    - :class:`RequestRejected` (not http-level): a plain response (section 3) in the
      request's HTTP version; the conn stays open for HTTP/1.1 unless the request said
      ``Connection: close`` (Go's keep-alive rules), and closes for HTTP/1.0.
    - http-level rejections and parser errors (``head`` unknown): Go's pre-handler
      framing (:func:`build_http_error`), conn closed. A parser error's own message is
      not echoed (Go says only ``400 Bad Request`` or ``431 ...``).

    The answer to a ``HEAD`` request has no body (its Content-Length stays).
    """
    if isinstance(error, RequestRejected) and not error.http_level:
        if head is None or http_version(head) >= (1, 1):
            version = "HTTP/1.1"
            connection = (head.get("Connection") if head is not None else None) or ""
            close = "close" in (part.strip().lower() for part in connection.split(","))
        else:
            version, close = "HTTP/1.0", True
        data = build_plain_response(
            error.status, error.message, version, close=close and version == "HTTP/1.1"
        )
        if head is not None and head.method == "HEAD":
            data = data[: data.index(b"\r\n\r\n") + 4]
        return Reply(data, close)
    if isinstance(error, RequestRejected):
        return Reply(_http_error_bytes(error.message), True)
    return Reply(build_http_error(error.status), True)


class BodyCollector:
    """Keeps up to :data:`MAX_ERROR_BODY` bytes of a non-101 response body (section 4).

    Feed the bytes that follow the head (:attr:`HeadParser.trailing` first) until
    :attr:`done`, or until EOF (a body without Content-Length ends at close, as in
    section 5). A ``Transfer-Encoding: chunked`` body (what an HTTP/1.1 proxy such as
    nginx makes of a body that ends at close) is decoded; it is done at its last chunk.
    """

    __slots__ = ("_buf", "_chunks", "_want")

    def __init__(self, head: Head, limit: int = MAX_ERROR_BODY) -> None:
        """Raises ProtocolError for an invalid Content-Length."""
        coding = (head.get("Transfer-Encoding") or "").rsplit(",", 1)[-1].strip().lower()
        self._chunks = _ChunkDecoder() if coding == "chunked" else None
        # RFC 9112 section 6.3: with chunked framing any Content-Length is ignored.
        length = None if self._chunks is not None else head.content_length
        self._want = limit if length is None else min(length, limit)
        self._buf = bytearray()

    def feed(self, data: bytes) -> bool:
        """Add bytes (those past the bound are dropped); return :attr:`done`."""
        if self._chunks is not None:
            data = self._chunks.feed(data)
        room = self._want - len(self._buf)
        if room > 0:
            self._buf += data[:room]
        return self.done

    @property
    def done(self) -> bool:
        """True once the whole body (or the first ``limit`` bytes) arrived."""
        if self._chunks is not None and self._chunks.finished:
            return True
        return len(self._buf) >= self._want

    @property
    def body(self) -> bytes:
        """The bytes kept so far."""
        return bytes(self._buf)

    @property
    def text(self) -> str:
        """The body as text for the user (invalid UTF-8 replaced)."""
        return self._buf.decode("utf-8", "replace")


_CHUNK_SIZE_RE: Final = re.compile(rb"[0-9A-Fa-f]{1,16}")
#: A size or trailer line longer than this is not chunked framing.
_MAX_CHUNK_LINE: Final = 4096


class _ChunkDecoder:
    """``Transfer-Encoding: chunked`` (RFC 9112 section 7.1), sans-IO and lenient: the body
    is only shown to the user, so framing that breaks the rules just ends it."""

    __slots__ = ("_left", "_pending", "_state", "finished")

    def __init__(self) -> None:
        self._pending = bytearray()
        self._state = "size"  # size, data, data-end, trailers
        self._left = 0
        self.finished = False

    def feed(self, data: bytes) -> bytes:
        """Add framed bytes; return the payload bytes they complete."""
        out = bytearray()
        self._pending += data
        while not self.finished:
            if self._state == "data":
                take = min(self._left, len(self._pending))
                out += self._pending[:take]
                del self._pending[:take]
                self._left -= take
                if self._left:
                    break
                self._state = "data-end"
                continue
            if self._state == "data-end" and bytes(self._pending[:1]) not in (b"", b"\r", b"\n"):
                self.finished = True  # the data must end with its CRLF
                break
            end = self._pending.find(b"\n")
            if end < 0:
                self.finished = len(self._pending) > _MAX_CHUNK_LINE
                break
            line = bytes(self._pending[:end]).removesuffix(b"\r")
            del self._pending[: end + 1]
            self._line(line)
        return bytes(out)

    def _line(self, line: bytes) -> None:
        if self._state == "data-end":
            self._state = "size"
            self.finished = line != b""
        elif self._state == "size":
            size = line.split(b";", 1)[0].strip(b" \t")
            if _CHUNK_SIZE_RE.fullmatch(size) is None:
                self.finished = True
            elif int(size, 16) == 0:
                self._state = "trailers"
            else:
                self._left, self._state = int(size, 16), "data"
        else:  # trailers end with an empty line
            self.finished = line == b"" or len(line) > _MAX_CHUNK_LINE
