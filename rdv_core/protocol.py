"""The rdv/1 wire protocol, sans-IO: bytes in, values out, values in, bytes out.

Nothing here touches a socket or an event loop, so the same code serves the client,
the native server front and the tests (which feed every input whole and one byte
at a time). Section numbers refer to ``PROTOCOL.md``.

Strict on what we send, tolerant but bounded on what we accept:
- parsers accept input split at any byte and keep every byte that follows the
  header block or line (:attr:`HeadParser.trailing`, :meth:`LineBuffer.rest`);
- every size is bounded (header block, line length, address counts); past a bound
  the parser raises :class:`ProtocolError`, never anything else.
"""

from __future__ import annotations

import email.utils
import re
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from rdv_core.addrs import Addr, AddrError, sort_addrs

DIAL: Final = "DIAL"
ACCEPT: Final = "ACCEPT"
METHODS: Final = (DIAL, ACCEPT)
UPGRADE_PROTOCOL: Final = "rdv/1"

#: Longest rdv line after the upgrade, newline included (section 6).
MAX_LINE: Final = 4096
#: Largest HTTP header block we parse; the reference (Go) allows 1 MiB, but rdv requests
#: carry at most a few application headers and a lobby holds many idle requests.
MAX_HEADER_BLOCK: Final = 32 * 1024
MAX_HEADERS: Final = 100
MAX_SELF_ADDRS: Final = 9
MAX_PEER_ADDRS: Final = 10
#: How much of an error body a client keeps for the user (section 4).
MAX_ERROR_BODY: Final = 1024

USER_AGENT: Final = "rdv-python/0.1"

Method = Literal["DIAL", "ACCEPT"]

REASONS: Final[dict[int, str]] = {
    101: "Switching Protocols",
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Request Entity Too Large",
    426: "Upgrade Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class ProtocolError(Exception):
    """Input that breaks rdv/1 or HTTP/1.1. ``status`` is the HTTP status a server answers."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class RequestRejected(ProtocolError):
    """A well-formed HTTP request that is not an acceptable rdv request (section 3).

    ``message`` is the exact body text (without the trailing newline) the server answers.
    """


class Misdial(ProtocolError):
    """A direct conn whose peer header line is not the one we expect (section 6)."""


def reason_phrase(status: int) -> str:
    """The standard reason phrase for a status code (``"Unknown"`` if we do not know it)."""
    return REASONS.get(status, "Unknown")


def opposite(method: str) -> Method:
    """``ACCEPT`` for ``DIAL`` and vice versa."""
    if method == DIAL:
        return ACCEPT
    if method == ACCEPT:
        return DIAL
    raise ValueError(f"not an rdv method: {method!r}")


# ----- tokens

# Go's url.PathEscape keeps these besides the unreserved characters.
_SEGMENT_SAFE: Final = "$&+=:@"


def escape_token(token: str) -> str:
    """Percent-encode a token as one URL path segment (``a b/c`` -> ``a%20b%2Fc``)."""
    return urllib.parse.quote(token, safe=_SEGMENT_SAFE)


def unescape_token(text: str) -> str:
    """Decode a percent-encoded token.

    Raises:
        ProtocolError: for a bad escape or bytes that are not UTF-8.
    """
    if re.search(r"%(?![0-9A-Fa-f]{2})", text):
        raise ProtocolError(f"invalid escape in token {text!r}")
    try:
        return urllib.parse.unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError("token is not UTF-8") from exc


# ----- address lists


def format_addr_list(addrs: Iterable[Addr]) -> str:
    """Join addresses with ``", "`` (section 9)."""
    return ", ".join(str(a) for a in addrs)


def parse_addr_list(value: str) -> list[Addr]:
    """Split on ``,``, trim spaces, parse every element; an empty value is an empty list.

    Raises:
        AddrError: for an empty or unparsable element.
    """
    if value.strip(" \t") == "":
        return []
    out: list[Addr] = []
    for part in value.split(","):
        element = part.strip(" \t")
        if not element:
            raise AddrError("empty element in address list")
        out.append(Addr.parse(element))
    return out


def peer_addrs_for(self_addrs: Sequence[Addr], observed: Addr | None) -> list[Addr]:
    """A peer's candidates: its self addrs plus its observed addr, sorted, de-duplicated."""
    addrs = list(self_addrs)
    if observed is not None:
        addrs.append(observed)
    return sort_addrs(addrs)[:MAX_PEER_ADDRS]


# ----- HTTP head parsing


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


_TOKEN_RE: Final = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_VERSION_RE: Final = re.compile(r"^HTTP/(\d)\.(\d)$")


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
            if len(self._buf) > self._max:
                raise ProtocolError("HTTP header block too large", status=431)
            return None
        if end > self._max:
            raise ProtocolError("HTTP header block too large", status=431)
        block = bytes(self._buf[:end])
        self.trailing = bytes(self._buf[end:])
        self._buf = bytearray()
        self.head = _parse_head(block, self._kind)
        return self.head


def _find_head_end(buf: bytearray, start: int) -> int:
    """Index just past the blank line ending the head (CRLF or bare LF lines), or -1."""
    i = buf.find(b"\n", start)
    while i >= 0:
        # A blank line is "\n\n" or "\n\r\n"; a head never starts with a blank line.
        if buf[i + 1 : i + 2] == b"\n":
            return i + 2
        if buf[i + 1 : i + 3] == b"\r\n":
            return i + 3
        i = buf.find(b"\n", i + 1)
    return -1


def _split_lines(block: bytes) -> list[bytes]:
    lines = block.split(b"\n")
    # The block ends with the blank line: drop the two empty pieces it leaves.
    out = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    while out and out[-1] == b"":
        out.pop()
    return out


def _parse_head(block: bytes, kind: Literal["request", "response"]) -> Head:
    lines = _split_lines(block)
    if not lines:
        raise ProtocolError("empty HTTP head")
    try:
        start_line = lines[0].decode("ascii")
    except UnicodeDecodeError as exc:
        raise ProtocolError("non-ASCII HTTP start line") from exc
    if any(c in start_line for c in "\r\0"):
        raise ProtocolError("malformed HTTP start line")
    headers = _parse_header_lines(lines[1:])
    if kind == "request":
        parts = start_line.split(" ")
        if len(parts) != 3 or not all(parts):
            raise ProtocolError(f"malformed request line {start_line[:100]!r}")
        method, target, version = parts
        if not _TOKEN_RE.match(method.encode()):
            raise ProtocolError(f"invalid method {method[:40]!r}")
        if _VERSION_RE.match(version) is None:
            raise ProtocolError(f"invalid HTTP version {version[:20]!r}", status=505)
        return Head(start_line, version, headers, method=method, target=target)
    version, _, rest = start_line.partition(" ")
    status_text, _, reason = rest.partition(" ")
    if _VERSION_RE.match(version) is None:
        raise ProtocolError(f"invalid HTTP version in status line {start_line[:100]!r}")
    if len(status_text) != 3 or not status_text.isdigit():
        raise ProtocolError(f"invalid status code in {start_line[:100]!r}")
    return Head(start_line, version, headers, status=int(status_text), reason=reason)


def _parse_header_lines(lines: list[bytes]) -> list[tuple[str, str]]:
    if len(lines) > MAX_HEADERS:
        raise ProtocolError("too many HTTP headers", status=431)
    headers: list[tuple[str, str]] = []
    for raw in lines:
        if raw[:1] in (b" ", b"\t"):
            raise ProtocolError("obsolete header line folding")
        name, colon, value = raw.partition(b":")
        if not colon or not _TOKEN_RE.match(name):
            raise ProtocolError(f"malformed header line {raw[:100]!r}")
        if b"\0" in value or b"\r" in value:
            raise ProtocolError("invalid character in header value")
        try:
            text = value.decode("ascii")
        except UnicodeDecodeError:
            text = value.decode("latin-1")
        headers.append((name.decode("ascii"), text.strip(" \t")))
    return headers


# ----- requests (section 2, 3)


@dataclass(frozen=True, slots=True)
class ServerURL:
    """An rdv server URL: ``http(s)://host[:port][/prefix]``."""

    scheme: Literal["http", "https"]
    host: str
    port: int
    path_prefix: str

    @property
    def tls(self) -> bool:
        """True for ``https://``."""
        return self.scheme == "https"

    @property
    def host_header(self) -> str:
        """The ``Host`` header value (port omitted when it is the scheme's default)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.tls else 80
        return host if self.port == default else f"{host}:{self.port}"

    def request_path(self, token: str) -> str:
        """The request target: the URL's path joined with the escaped token."""
        return f"{self.path_prefix.rstrip('/')}/{escape_token(token)}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host_header}{self.path_prefix}"


def parse_server_url(url: str) -> ServerURL:
    """Parse an rdv server URL.

    Raises:
        ValueError: for another scheme or a URL without a host.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"rdv server URL must be http:// or https://, got {url!r}")
    if not parts.hostname:
        raise ValueError(f"rdv server URL has no host: {url!r}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid port in {url!r}") from exc
    scheme: Literal["http", "https"] = "https" if parts.scheme == "https" else "http"
    default = 443 if scheme == "https" else 80
    return ServerURL(scheme, parts.hostname, port or default, parts.path.rstrip("/"))


def build_request(
    method: str,
    url: ServerURL,
    token: str,
    self_addrs: Sequence[Addr],
    headers: Sequence[tuple[str, str]] = (),
    user_agent: str = USER_AGENT,
) -> bytes:
    """The DIAL/ACCEPT request bytes (section 2).

    Raises:
        ValueError: for a bad method, too many addresses or an unsafe extra header.
    """
    if method not in METHODS:
        raise ValueError(f"not an rdv method: {method!r}")
    if len(self_addrs) > MAX_SELF_ADDRS:
        raise ValueError(f"at most {MAX_SELF_ADDRS} self addrs, got {len(self_addrs)}")
    reserved = {"host", "connection", "upgrade", "rdv-self-addrs", "content-length"}
    lines = [
        f"{method} {url.request_path(token)} HTTP/1.1",
        f"Host: {url.host_header}",
        f"User-Agent: {user_agent}",
        "Connection: upgrade",
        f"Rdv-Self-Addrs: {format_addr_list(self_addrs)}",
        f"Upgrade: {UPGRADE_PROTOCOL}",
    ]
    for name, value in headers:
        if not _TOKEN_RE.match(name.encode("ascii", "replace")) or name.lower() in reserved:
            raise ValueError(f"invalid extra header name {name!r}")
        if any(c in value for c in "\r\n\0"):
            raise ValueError(f"invalid extra header value for {name!r}")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass(frozen=True, slots=True)
class RdvRequest:
    """A request that passed every check of section 3."""

    method: Method
    token: str
    self_addrs: tuple[Addr, ...]
    head: Head = field(repr=False)


def request_path(target: str) -> str:
    """The raw (still escaped) path of a request target, origin- or absolute-form."""
    if target.startswith(("http://", "https://")):
        target = urllib.parse.urlsplit(target).path or "/"
    path = target.split("?", 1)[0].split("#", 1)[0]
    return path


def check_request(head: Head, prefix: str = "") -> RdvRequest:
    """Validate a request head in the order of section 3 (shutdown is the caller's check).

    ``prefix`` is the mount path (``/rdv``); the token is the percent-decoded rest.

    Raises:
        RequestRejected: with the exact status and body message of section 3.
    """
    if head.version == "HTTP/1.1" and head.get("Host") is None:
        # Go's net/http answers this before any handler runs.
        raise RequestRejected("400 Bad Request: missing required Host header", 400)
    if (head.get("Connection") or "").strip().lower() != "upgrade":
        raise RequestRejected("invalid rdv upgrade: requires connection upgrade", 426)
    upgrade = head.get("Upgrade")
    if not upgrade:
        raise RequestRejected("invalid rdv upgrade: missing upgrade header", 426)
    if upgrade.strip().lower() != UPGRADE_PROTOCOL:
        raise RequestRejected(f"invalid rdv upgrade: bad upgrade {upgrade}", 426)
    if head.version != "HTTP/1.1":
        raise RequestRejected(
            f"invalid rdv upgrade: bad http version for upgrade {head.version}", 426
        )
    token = token_from_target(head.target, prefix)
    if not token:
        raise RequestRejected("missing rdv token", 400)
    if head.method not in METHODS:
        raise RequestRejected(f"unknown rdv method [{head.method}]", 400)
    raw_addrs = head.get("Rdv-Self-Addrs") or ""
    try:
        addrs = parse_addr_list(raw_addrs)
    except AddrError as exc:
        raise RequestRejected(f"invalid self addrs [{raw_addrs}]", 400) from exc
    if len(addrs) > MAX_SELF_ADDRS:
        raise RequestRejected(f"too many self addrs [{raw_addrs}]", 400)
    method: Method = DIAL if head.method == DIAL else ACCEPT
    return RdvRequest(method, token, tuple(addrs), head)


def token_from_target(target: str, prefix: str = "") -> str:
    """The decoded token of a request target under a mount ``prefix``.

    Raises:
        RequestRejected: 404 when the path is not under the prefix, 400 for a bad escape.
    """
    path = request_path(target)
    prefix = prefix.rstrip("/")
    if prefix:
        if not path.startswith(prefix + "/") and path != prefix:
            raise RequestRejected("404 page not found", 404)
        path = path[len(prefix) :]
    try:
        return unescape_token(path[1:] if path.startswith("/") else path)
    except ProtocolError as exc:
        raise RequestRejected(f"invalid rdv token: {exc.message}", 400) from exc


# ----- responses (section 4, 5)


def build_upgrade_response(observed: Addr | None, peer_addrs: Sequence[Addr]) -> bytes:
    """The ``101`` response, byte for byte as the reference writes it (in one piece)."""
    lines = ["HTTP/1.1 101 Switching Protocols", "Connection: upgrade"]
    if observed is not None:
        lines.append(f"Rdv-Observed-Addr: {observed}")
    lines.append(f"Rdv-Peer-Addrs: {format_addr_list(peer_addrs)}")
    lines.append(f"Upgrade: {UPGRADE_PROTOCOL}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def build_plain_response(
    status: int,
    message: str,
    version: str = "HTTP/1.1",
    close: bool = False,
    content_type: str = "text/plain; charset=utf-8",
    extra_headers: Sequence[tuple[str, str]] = (),
    add_newline: bool = True,
) -> bytes:
    """A plain HTTP response with Content-Length (section 3 framing)."""
    body = (message + "\n" if add_newline else message).encode("utf-8")
    lines = [f"{version} {status} {reason_phrase(status)}", f"Content-Type: {content_type}"]
    if content_type.startswith("text/plain"):
        lines.append("X-Content-Type-Options: nosniff")
    lines.append(f"Date: {email.utils.formatdate(usegmt=True)}")
    lines.extend(f"{k}: {v}" for k, v in extra_headers)
    if close:
        lines.append("Connection: close")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def build_upgrade_error(status: int, message: str) -> bytes:
    """An error after the upgrade was accepted (section 5): no length, body ends at close."""
    head = (
        f"HTTP/1.1 {status} {reason_phrase(status)}\r\n"
        "Connection: close\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "X-Content-Type-Options: nosniff\r\n\r\n"
    )
    return head.encode("latin-1") + message.encode("utf-8")


@dataclass(frozen=True, slots=True)
class Upgrade:
    """A ``101`` that passed the client checks of section 4."""

    observed_addr: Addr | None
    peer_addrs: tuple[Addr, ...]
    head: Head = field(repr=False)


def check_upgrade_response(head: Head) -> Upgrade:
    """Validate a response head that has status 101 (section 4).

    Raises:
        ProtocolError: for a non-101 status or a bad header.
    """
    if head.status != 101:
        raise ProtocolError(f"unexpected http status {head.status} {head.reason}".rstrip())
    if (head.get("Connection") or "").strip().lower() != "upgrade":
        raise ProtocolError("invalid rdv upgrade: requires connection upgrade")
    upgrade = head.get("Upgrade")
    if not upgrade or upgrade.strip().lower() != UPGRADE_PROTOCOL:
        raise ProtocolError(f"invalid rdv upgrade: bad upgrade {upgrade or ''}".rstrip())
    raw_peers = head.get("Rdv-Peer-Addrs") or ""
    try:
        peers = parse_addr_list(raw_peers)
    except AddrError as exc:
        raise ProtocolError(f"invalid peer addrs [{raw_peers}]") from exc
    if len(peers) > MAX_PEER_ADDRS:
        raise ProtocolError(f"too many peer addrs [{raw_peers}]")
    raw_observed = head.get("Rdv-Observed-Addr")
    observed: Addr | None = None
    if raw_observed:
        try:
            observed = Addr.parse(raw_observed)
        except AddrError as exc:
            raise ProtocolError(f"invalid observed addr [{raw_observed}]") from exc
    return Upgrade(observed, tuple(peers), head)


# ----- lines (section 6)


class LineBuffer:
    """Splits a byte stream into ``\\n``-terminated lines of at most :data:`MAX_LINE` bytes."""

    __slots__ = ("_buf", "_max")

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._buf = bytearray()
        self._max = max_line

    def feed(self, data: bytes) -> None:
        """Add bytes."""
        self._buf += data

    def next_line(self) -> bytes | None:
        """The next line without its ``\\n``, or None if it has not fully arrived.

        Raises:
            ProtocolError: when a line exceeds the bound.
        """
        i = self._buf.find(b"\n", 0, self._max)
        if i < 0:
            if len(self._buf) >= self._max:
                raise ProtocolError(f"rdv line longer than {self._max} bytes")
            return None
        line = bytes(self._buf[:i])
        del self._buf[: i + 1]
        return line

    def rest(self) -> bytes:
        """Every byte not returned as a line yet (and forget them)."""
        out = bytes(self._buf)
        self._buf.clear()
        return out

    @property
    def pending(self) -> int:
        """How many bytes are buffered."""
        return len(self._buf)


def build_header_line(method: str, token: str) -> bytes:
    """Our header line on a direct conn: ``rdv/1 <METHOD> <escaped token>\\n``."""
    if method not in METHODS:
        raise ValueError(f"not an rdv method: {method!r}")
    return f"{UPGRADE_PROTOCOL} {method} {escape_token(token)}\n".encode("ascii")


def check_header_line(line: bytes, own_method: str, own_token: str) -> None:
    """Check the peer's header line (without ``\\n``) against our method and token.

    Raises:
        Misdial: when it is not ``rdv/1 <opposite method> <our token>``.
    """
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError as exc:
        raise Misdial("non-ASCII peer header line") from exc
    parts = text.split(" ")
    if len(parts) != 3:
        raise Misdial(f"malformed peer header line {text[:80]!r}")
    proto, method, escaped = parts
    if proto != UPGRADE_PROTOCOL:
        raise Misdial(f"unexpected protocol {proto[:20]!r} in peer header line")
    if method != opposite(own_method):
        raise Misdial(f"unexpected method {method[:20]!r} in peer header line")
    try:
        token = unescape_token(escaped)
    except ProtocolError as exc:
        raise Misdial(f"bad token in peer header line: {exc.message}") from exc
    if token != own_token:
        raise Misdial("token mismatch in peer header line")


@dataclass(frozen=True, slots=True)
class Continue:
    """``CONTINUE``: application data follows."""


@dataclass(frozen=True, slots=True)
class Other:
    """``OTHER ip:port``: the dialer went direct with the given address."""

    addr: Addr


Command = Continue | Other

CONTINUE_LINE: Final = b"CONTINUE\n"


def build_other(addr: Addr) -> bytes:
    """``OTHER <ip:port>\\n``."""
    return f"OTHER {addr}\n".encode("ascii")


def parse_command(line: bytes) -> Command:
    """Parse a command line (without ``\\n``). ``CONTINUE`` may be followed by anything.

    Raises:
        ProtocolError: for anything else.
    """
    if line.startswith(b"CONTINUE"):
        return Continue()
    if line.startswith(b"OTHER "):
        try:
            return Other(Addr.parse(line[6:].decode("ascii").strip()))
        except (UnicodeDecodeError, AddrError) as exc:
            raise ProtocolError(f"invalid OTHER command {line[:80]!r}") from exc
    raise ProtocolError(f"unknown rdv command {line[:80]!r}")
