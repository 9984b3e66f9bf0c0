"""The rdv/1 wire protocol, sans-IO: bytes in, values out, values in, bytes out.

Nothing here touches a socket or an event loop, so the same code serves the client,
the native server front and the tests (which feed every input whole and one byte
at a time). Section numbers refer to ``PROTOCOL.md``.

Strict on what we send, tolerant but bounded on what we accept:
- parsers accept input split at any byte and keep every byte that follows the
  header block or line (:attr:`HeadParser.trailing`, :meth:`LineBuffer.rest`);
- every size is bounded (header block, line length, address counts); past a bound
  the parser raises :class:`ProtocolError`, never anything else.

Where the reference (Go rdv v0.0.6 on Go's net/http) answers before its handler runs
(missing Host, unparsable target, bad percent escape, unsupported HTTP major version),
:func:`check_http_request` raises :class:`RequestRejected` with ``http_level=True`` and
:func:`build_rejection` renders Go's pre-handler framing (``Connection: close``, no
Content-Length, body without newline).

Deliberate deviations from the reference, all on input the reference never sends:
- the header block is bounded at :data:`MAX_HEADER_BLOCK` (Go allows 1 MiB) and at
  :data:`MAX_HEADERS` lines; past either the answer is ``431``;
- a percent-decoded token (request path or peer header line) must be UTF-8 (Go keeps
  raw bytes): otherwise ``400``;
- ``OTHER`` must carry a parsable address (Go records the zero address and still closes
  the pair; the wire effect is the same: both relay conns are closed);
- header values are decoded as Latin-1, so a non-ASCII byte echoed in an error body
  (``invalid self addrs [...]``) comes back UTF-8 encoded;
- a request line must be UTF-8 (Go takes any byte above 0x7F in a target);
- peer address lists are de-duplicated after unmapping IPv4-mapped addresses and
  dropping IPv6 zones (a zone means nothing on the peer's machine).
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


class ProtocolError(Exception):
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


class Misdial(ProtocolError):
    """A direct conn whose peer header line is not the one we expect (section 6)."""


def reason_phrase(status: int) -> str:
    """The reason phrase Go writes for a status code (``status code N`` if it has none)."""
    return REASONS.get(status) or f"status code {status}"


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


#: What Go's strings.TrimSpace removes around list elements (a header value holds no CR/LF).
_ADDR_LIST_BLANKS: Final = " \t\v\f"


def parse_addr_list(value: str) -> list[Addr]:
    """Split on ``,``, trim spaces, parse every element; an empty value is an empty list.

    Raises:
        AddrError: for an empty or unparsable element.
    """
    if value.strip(_ADDR_LIST_BLANKS) == "":
        return []
    out: list[Addr] = []
    for part in value.split(","):
        element = part.strip(_ADDR_LIST_BLANKS)
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


#: An HTTP token (method, header name). Use ``fullmatch``: ``$`` also matches before a newline.
_TOKEN_RE: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSION_RE: Final = re.compile(r"HTTP/([0-9])\.([0-9])")


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
    if not method.isascii() or not _TOKEN_RE.fullmatch(method.encode("ascii")):
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
    for raw in lines:
        if raw[:1] in (b" ", b"\t"):
            raise ProtocolError("obsolete header line folding")
        name, colon, value = raw.partition(b":")
        if not colon or not _TOKEN_RE.fullmatch(name):
            raise ProtocolError(f"malformed header line {raw[:100]!r}")
        if b"\0" in value or b"\r" in value:
            raise ProtocolError("invalid character in header value")
        if kind == "request" and _has_ctl(value, allow_tab=True):
            # What Go's net/http answers before any handler runs.
            raise RequestRejected("400 Bad Request: invalid header value", 400, http_level=True)
        # Latin-1 maps every byte to one character and never fails.
        headers.append((name.decode("ascii"), value.decode("latin-1").strip(" \t")))
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
        """The ``Host`` header value (port omitted when it is the scheme's default).

        An IPv6 zone (``fe80::1%eth0``) is left out, as Go does: it means nothing to the server.
        """
        host = f"[{self.host.split('%', 1)[0]}]" if ":" in self.host else self.host
        default = 443 if self.tls else 80
        return host if self.port == default else f"{host}:{self.port}"

    def request_path(self, token: str) -> str:
        """The request target: the URL's path joined with the token as ONE escaped segment.

        The reference joins the raw token as a path (``a/b`` stays two segments, ``../``
        is cleaned away); we escape it so that every token round-trips (section 2).
        """
        # Keep the prefix's own escapes, escape what may not appear raw in a request line.
        prefix = urllib.parse.quote(self.path_prefix.rstrip("/"), safe="/%" + _SEGMENT_SAFE + ";,")
        return f"{prefix}/{escape_token(token)}"

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


def canonical_header_name(name: str) -> str:
    """Go's ``CanonicalMIMEHeaderKey``: ``rdv-self-addrs`` -> ``Rdv-Self-Addrs``.

    A name with a byte that is not an HTTP token character is returned unchanged.
    """
    if not name.isascii() or not _TOKEN_RE.fullmatch(name.encode("ascii")):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def build_request(
    method: str,
    url: ServerURL,
    token: str,
    self_addrs: Sequence[Addr],
    headers: Sequence[tuple[str, str]] = (),
    user_agent: str = USER_AGENT,
) -> bytes:
    """The DIAL/ACCEPT request bytes (section 2), laid out as Go's ``Request.Write`` does.

    ``Host`` and ``User-Agent`` come first, then every other header sorted by its
    canonical name (application headers such as ``Authorization`` included), so that
    the request equals the reference client's byte for byte apart from the path escaping
    of unusual tokens and the User-Agent. A ``User-Agent`` in ``headers`` replaces
    ``user_agent``, as in Go.

    Raises:
        ValueError: for a bad method, an empty token, too many addresses or an unsafe
            extra header.
    """
    if method not in METHODS:
        raise ValueError(f"not an rdv method: {method!r}")
    if not token:
        raise ValueError("empty rdv token")
    if len(self_addrs) > MAX_SELF_ADDRS:
        raise ValueError(f"at most {MAX_SELF_ADDRS} self addrs, got {len(self_addrs)}")
    reserved = {"host", "connection", "upgrade", "rdv-self-addrs", "content-length"}
    reserved |= {"transfer-encoding", "trailer"}
    sorted_headers: list[tuple[str, str]] = [
        ("Connection", "upgrade"),
        ("Rdv-Self-Addrs", format_addr_list(self_addrs)),
        ("Upgrade", UPGRADE_PROTOCOL),
    ]
    for name, value in headers:
        if (
            not name.isascii()
            or not _TOKEN_RE.fullmatch(name.encode("ascii"))
            or name.lower() in reserved
        ):
            raise ValueError(f"invalid extra header name {name!r}")
        if any(c in value for c in "\r\n\0"):
            raise ValueError(f"invalid extra header value for {name!r}")
        if name.lower() == "user-agent":
            user_agent = value
            continue
        sorted_headers.append((canonical_header_name(name), value.strip(" \t")))
    if any(c in user_agent for c in "\r\n\0"):
        raise ValueError("invalid User-Agent")
    sorted_headers.sort(key=lambda item: item[0])  # stable: repeated names keep their order
    lines = [
        f"{method} {url.request_path(token)} HTTP/1.1",
        f"Host: {url.host_header}",
        f"User-Agent: {user_agent}",
        *(f"{name}: {value}" for name, value in sorted_headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass(frozen=True, slots=True)
class RdvRequest:
    """A request that passed every check of section 3."""

    method: Method
    token: str
    self_addrs: tuple[Addr, ...]
    head: Head = field(repr=False)


_SCHEME_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_BAD_ESCAPE_RE: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _bad_target() -> RequestRejected:
    # Go's url.ParseRequestURI failed: net/http answers before any handler runs.
    return RequestRejected("400 Bad Request", 400, http_level=True)


def request_path(target: str) -> str:
    """The raw (still escaped) path of a request target, as Go's ``ParseRequestURI`` sees it.

    Origin form (``/tok?q``) gives ``/tok``; absolute form (``http://host/tok``) gives
    ``/tok``; an opaque or authority-only absolute URL gives ``""``; ``*`` gives ``*``.
    The query is cut off; like Go for a request, a ``#`` stays in the path. Never raises:
    a target Go cannot parse comes back without its query (routing then finds nothing,
    and :func:`check_request` rejects it).
    """
    try:
        return _target_path(target)
    except RequestRejected:
        return target.split("?", 1)[0]


def _target_path(target: str) -> str:
    """:func:`request_path`, strict.

    Raises:
        RequestRejected: http-level ``400 Bad Request`` for a target Go cannot parse
            (neither origin nor absolute form, or a bad percent escape in the path).
    """
    if target == "*":
        return target
    absolute = not target.startswith("/")
    rest = target
    if absolute:
        scheme = _SCHEME_RE.match(target)
        if scheme is None:
            raise _bad_target()
        rest = target[scheme.end() :]
    rest = rest.split("?", 1)[0]
    if absolute and not rest.startswith("/"):
        return ""  # opaque URL (``http:tok``): no path at all
    if absolute and rest.startswith("//"):
        # Skip the authority: Go ignores it for routing (the Host header names the host).
        slash = rest.find("/", 2)
        rest = "" if slash < 0 else rest[slash:]
    if _BAD_ESCAPE_RE.search(rest):
        raise _bad_target()
    return rest


#: Go's ``httpguts.ValidHostHeader`` byte set.
_HOST_CHARS: Final = frozenset(
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!$%&()*+,-.:;=[]'_~"
)


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


def check_http_request(head: Head) -> None:
    """The checks Go's net/http makes before any handler runs, in its order.

    A server calls this first, then answers ``503 rdv is closed`` when it is shut down,
    then calls :func:`check_request` (which calls this again; it is cheap).

    Raises:
        RequestRejected: with ``http_level=True`` (render with :func:`build_rejection`).
    """
    _target_path(head.target)
    major, minor = http_version(head)
    if major != 1:
        raise RequestRejected(
            "505 HTTP Version Not Supported: unsupported protocol version", 505, http_level=True
        )
    hosts = [value for name, value in head.headers if name.lower() == "host"]
    if minor >= 1 and not hosts and head.method != "CONNECT":
        raise RequestRejected("400 Bad Request: missing required Host header", 400, http_level=True)
    if len(hosts) > 1:
        raise RequestRejected("400 Bad Request: too many Host headers", 400, http_level=True)
    if hosts and not set(hosts[0]) <= _HOST_CHARS:
        raise RequestRejected("400 Bad Request: malformed Host header", 400, http_level=True)


def _trim(value: str) -> str:
    # Go's strings.TrimSpace on ASCII (values are already trimmed of spaces and tabs).
    return value.strip(" \t\n\v\f\r")


def check_request(head: Head, prefix: str = "") -> RdvRequest:
    """Validate a request head in the order of section 3 (shutdown is the caller's check).

    ``prefix`` is the mount path (``/rdv``); the token is the percent-decoded rest.
    Order: :func:`check_http_request`, then the mount prefix (``404 page not found``, as
    Go's ``http.StripPrefix``), then the rows of section 3.

    Raises:
        RequestRejected: with the exact status and body message of section 3.
    """
    check_http_request(head)
    path_token = token_from_target(head.target, prefix)
    if (head.get("Connection") or "").lower() != "upgrade":
        raise RequestRejected("invalid rdv upgrade: requires connection upgrade", 426)
    upgrade = _trim((head.get("Upgrade") or "").lower())
    if not upgrade:
        raise RequestRejected("invalid rdv upgrade: missing upgrade header", 426)
    if upgrade != UPGRADE_PROTOCOL:
        # Go echoes the lower-cased, trimmed value.
        raise RequestRejected(f"invalid rdv upgrade: bad upgrade {upgrade}", 426)
    if head.version != "HTTP/1.1":
        raise RequestRejected(
            f"invalid rdv upgrade: bad http version for upgrade {head.version}", 426
        )
    if not path_token:
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
    return RdvRequest(method, path_token, tuple(addrs), head)


def token_from_target(target: str, prefix: str = "") -> str:
    """The decoded token of a request target under a mount ``prefix``.

    Like the README's ``http.StripPrefix("/rdv/", server)`` in front of the reference:
    the path must start with ``prefix + "/"``; the rest, less one leading ``/``, is
    percent-decoded. Without a prefix, ``/x%2Fy%20z`` and ``/x/y%20z`` both give ``x/y z``.

    Raises:
        RequestRejected: 404 when the path is not under the prefix; http-level 400 for an
            unparsable target or a bad escape; 400 when the decoded token is not UTF-8.
    """
    path = _target_path(target)
    prefix = prefix.rstrip("/")
    if prefix:
        if not path.startswith(prefix + "/"):
            raise RequestRejected("404 page not found", 404)
        path = path[len(prefix) + 1 :]
    if path.startswith("/"):
        path = path[1:]
    try:
        return unescape_token(path)
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


def _check_status(status: int) -> None:
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
    _check_status(status)
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
    _check_status(status)
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


def build_upgrade_error(status: int, message: str) -> bytes:
    """An error after the upgrade was accepted (section 5): no length, body ends at close.

    Like Go's ``Response.Write``: an empty body is sent as ``Content-Length: 0`` instead.

    Raises:
        ValueError: for a status outside 100..999.
    """
    _check_status(status)
    framing = "Connection: close\r\n" if message else "Content-Length: 0\r\n"
    head = (
        f"HTTP/1.1 {status} {reason_phrase(status)}\r\n"
        f"{framing}"
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
    if (head.get("Connection") or "").lower() != "upgrade":
        raise ProtocolError("invalid rdv upgrade: requires connection upgrade")
    upgrade = _trim((head.get("Upgrade") or "").lower())
    if not upgrade:
        raise ProtocolError("invalid rdv upgrade: missing upgrade header")
    if upgrade != UPGRADE_PROTOCOL:
        raise ProtocolError(f"invalid rdv upgrade: bad upgrade {upgrade}")
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


class BodyCollector:
    """Keeps up to :data:`MAX_ERROR_BODY` bytes of a non-101 response body (section 4).

    Feed the bytes that follow the head (:attr:`HeadParser.trailing` first) until
    :attr:`done`, or until EOF (a body without Content-Length ends at close, as in
    section 5). ``Transfer-Encoding: chunked`` bodies are kept raw (chunk sizes included).
    """

    __slots__ = ("_buf", "_want")

    def __init__(self, head: Head, limit: int = MAX_ERROR_BODY) -> None:
        """Raises ProtocolError for an invalid Content-Length."""
        length = head.content_length
        self._want = limit if length is None else min(length, limit)
        self._buf = bytearray()

    def feed(self, data: bytes) -> bool:
        """Add bytes (those past the bound are dropped); return :attr:`done`."""
        room = self._want - len(self._buf)
        if room > 0:
            self._buf += data[:room]
        return self.done

    @property
    def done(self) -> bool:
        """True once the whole body (or the first ``limit`` bytes) arrived."""
        return len(self._buf) >= self._want

    @property
    def body(self) -> bytes:
        """The bytes kept so far."""
        return bytes(self._buf)

    @property
    def text(self) -> str:
        """The body as text for the user (invalid UTF-8 replaced)."""
        return self._buf.decode("utf-8", "replace")


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

    Like the reference's ``Sscanf("%v %s %s\\n")``, the three fields may be separated by
    any run of spaces or tabs (a trailing ``\\r`` is tolerated); a fourth field is an error.

    Raises:
        Misdial: when it is not ``rdv/1 <opposite method> <our token>``.
    """
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError as exc:
        raise Misdial("non-ASCII peer header line") from exc
    # bytes.split() splits on ASCII whitespace only (str.split() would also take \\x1c..\\x1f).
    parts = [part.decode("ascii") for part in line.split()]
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
    """Parse a command line (without ``\\n``).

    As the reference reads it (``Sscanf("%v %s\\n")``): the first whitespace-separated
    field is the command. ``CONTINUE`` may be followed by anything on the line
    (``CONTINUE extra-arg``), but ``CONTINUEX`` is not ``CONTINUE``. ``OTHER`` takes
    exactly one argument, an address.

    Raises:
        ProtocolError: for anything else (an ``OTHER`` whose address does not parse too).
    """
    fields = line.split()
    if fields and fields[0] == b"CONTINUE":
        return Continue()
    if fields and fields[0] == b"OTHER":
        if len(fields) != 2:
            raise ProtocolError(f"invalid OTHER command {line[:80]!r}")
        try:
            return Other(Addr.parse(fields[1].decode("ascii")))
        except (UnicodeDecodeError, AddrError) as exc:
            raise ProtocolError(f"invalid OTHER command {line[:80]!r}") from exc
    raise ProtocolError(f"unknown rdv command {line[:80]!r}")
