"""The rdv/1 handshake, sans-IO: bytes in, values out, values in, bytes out.

rdv/1 is an HTTP/1.1 upgrade. This module is the rdv part of the handshake
(
order, the ``101`` response, errors after the upgrade) on top of layers that each do
one job:

- :mod:`rdv_core.wire._http1`: generic, strict HTTP/1.1 heads (parser, Go's pre-handler
  checks and error framing, reason phrases); the bounds on what we parse live there;
- :mod:`rdv_core.wire._names`: the methods, the protocol name, token percent-encoding;
- :mod:`rdv_core.wire._lines`: the line layer after the upgrade (section 6).

Nothing here touches a socket or an event loop, so the same code serves the client,
the native server front and the tests (which feed every input whole and one byte at a
time). :mod:`rdv_core.wire` exports every public name of these layers: callers import
the whole format from there.

Strict on what we send (byte for byte the reference's requests and responses, apart
from the ``Date`` and the User-Agent), tolerant but bounded on what we accept: address
lists are bounded at :data:`MAX_SELF_ADDRS` and :data:`MAX_PEER_ADDRS`; past a bound
the check raises :class:`ProtocolError` (or :class:`RequestRejected`), never anything else.

Deliberate deviations from the reference (Go rdv v0.0.6), all on input it never sends
(the HTTP-level ones are listed in :mod:`rdv_core.wire._http1`, the line-level one in
:mod:`rdv_core.wire._lines`):
- a percent-decoded token must be UTF-8 (Go keeps raw bytes): otherwise ``400``;
- peer address lists are de-duplicated after unmapping IPv4-mapped addresses and
  dropping IPv6 zones (a zone means nothing on the peer's machine).
"""

from __future__ import annotations

import functools
import ipaddress
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from rdv_core.wire._addrs import Addr, AddrError, sort_addrs
from rdv_core.wire._extensions import format_extensions, offered_extensions, parse_extensions
from rdv_core.wire._http1.checks import check_http_request, strict_request_path
from rdv_core.wire._http1.head import (
    Head,
    ProtocolError,
    RequestRejected,
    canonical_header_name,
    is_token,
)
from rdv_core.wire._http1.responses import (
    check_status,
    reason_phrase,
)
from rdv_core.wire._names import (
    ACCEPT,
    DIAL,
    METHODS,
    PATH_SEGMENT_SAFE,
    UPGRADE_PROTOCOL,
    Method,
    escape_token,
    unescape_token,
)

MAX_SELF_ADDRS: Final = 9
MAX_PEER_ADDRS: Final = 10

USER_AGENT: Final = "rdv-python/0.1"


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
        return f"{_escape_prefix(self.path_prefix)}/{escape_token(token)}"

    def __str__(self) -> str:
        # The zone stays in what users read: "http://[fe80::1]:8080" in an error named
        # another address than the one they typed (the Host header leaves it out).
        if "%" not in self.host:
            return f"{self.scheme}://{self.host_header}{self.path_prefix}"
        default = 443 if self.tls else 80
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://[{self.host}]{port}{self.path_prefix}"


@functools.lru_cache(maxsize=64)
def _escape_prefix(path_prefix: str) -> str:
    """A server URL's path as a request target's start (memoized: a client has few)."""
    # Keep the prefix's own escapes, escape what may not appear raw in a request line.
    return urllib.parse.quote(path_prefix.rstrip("/"), safe="/%" + PATH_SEGMENT_SAFE + ";,")


def parse_server_url(url: str) -> ServerURL:
    """Parse an rdv server URL.

    Raises:
        ValueError: for another scheme, a URL without a host, or parts an rdv server
            URL cannot have (a query string, a fragment, ``user@``): they would be
            dropped silently, and ``/rdv?x=1`` would join token ``rdv/TOKEN``.
    """
    if not url.strip():  # an empty field of the app, an empty $RDV_SERVER
        raise ValueError("no rdv server URL given: name one, e.g. http://host:8080")
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:  # "Invalid IPv6 URL" alone does not say which URL
        raise ValueError(f"bad rdv server URL {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        # '[2001:db8::1]:8080' or 'host:8080' alone: say what to write.
        hint = f" (write http://{url.strip()})" if "://" not in url and url.strip() else ""
        raise ValueError(f"rdv server URL must be http:// or https://, got {url!r}{hint}")
    unbracketed = _unbracketed_ipv6(parts.netloc)
    if unbracketed is not None:
        # 'http://2001:db8::1:8080' said "invalid port": which colon ends the address?
        raise ValueError(
            f"an IPv6 address in a URL takes brackets: "
            f"{parts.scheme}://{unbracketed}{parts.path} (got {url!r})"
        )
    if not parts.hostname:
        raise ValueError(f"rdv server URL has no host: {url!r}")
    try:  # what getaddrinfo does first: "a..b" escaped rdv doctor as a UnicodeError traceback
        parts.hostname.encode("idna")
    except UnicodeError:
        raise ValueError(
            f"rdv server URL has a bad host name {parts.hostname!r} (an empty part between "
            f"dots, or a part over 63 characters): {url!r}"
        ) from None
    if parts.query or url.rstrip().endswith("?"):
        raise ValueError(f"rdv server URL cannot have a query string: {url!r}")
    if parts.fragment or "#" in url:
        raise ValueError(f"rdv server URL cannot have a #fragment: {url!r}")
    if "@" in parts.netloc:
        raise ValueError(f"rdv server URL cannot have user@ (use -H for credentials): {url!r}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid port in {url!r}") from exc
    scheme: Literal["http", "https"] = "https" if parts.scheme == "https" else "http"
    default = 443 if scheme == "https" else 80
    return ServerURL(
        scheme, _unescape_zone(parts.hostname), port or default, parts.path.rstrip("/")
    )


def _unbracketed_ipv6(netloc: str) -> str | None:
    """``[2001:db8::1]:8080`` for a netloc ``2001:db8::1:8080`` (None if it is not that).

    The last group is taken as the port when it is all digits and the rest is an IPv6
    address; else the whole is the address (``[2001:db8::1]``, the scheme's port).
    """
    if "[" in netloc or "@" in netloc or netloc.count(":") < 2:
        return None
    head, _, tail = netloc.rpartition(":")
    for host, port in ((head, tail), (netloc, "")):
        if port and not port.isdigit():
            continue
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            continue
        return f"[{host}]:{port}" if port else f"[{host}]"
    return None


def _unescape_zone(host: str) -> str:
    """``fe80::1%25eth0`` (RFC 6874's URL form, as Go's net/url writes it) -> ``fe80::1%eth0``.

    The raw ``%eth0`` is taken too (as ``rdv serve`` prints it). Left escaped, the zone
    reached the resolver and the connect failed with "Unknown error -2".
    """
    addr, sep, zone = host.partition("%")
    if sep and ":" in addr and zone.startswith("25") and len(zone) > 2:
        return f"{addr}%{urllib.parse.unquote(zone[2:])}"
    return host


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
        if not is_token(name) or name.lower() in reserved:
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
    path = strict_request_path(target)
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


def build_upgrade_response(
    observed: Addr | None, peer_addrs: Sequence[Addr], peer_extensions: Sequence[str] = ()
) -> bytes:
    """The ``101`` response, byte for byte as the reference writes it (in one piece).

    ``peer_extensions`` (the other peer's offer, docs/PROTOCOL.md section 16.1) adds an
    ``Rdv-Peer-Extensions`` header in its sorted place; without it the bytes are Go's.
    """
    lines = ["HTTP/1.1 101 Switching Protocols", "Connection: upgrade"]
    if observed is not None:
        lines.append(f"Rdv-Observed-Addr: {observed}")
    lines.append(f"Rdv-Peer-Addrs: {format_addr_list(peer_addrs)}")
    if peer_extensions:
        lines.append(f"Rdv-Peer-Extensions: {format_extensions(peer_extensions)}")
    lines.append(f"Upgrade: {UPGRADE_PROTOCOL}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def upgrade_response_for(
    observed: Addr | None,
    peer_self_addrs: Sequence[Addr],
    peer_observed: Addr | None,
    peer_headers: Sequence[tuple[str, str]],
) -> bytes:
    """The ``101`` for one peer: its observed addr, the other's candidates and offer."""
    return build_upgrade_response(
        observed,
        peer_addrs_for(peer_self_addrs, peer_observed),
        offered_extensions(peer_headers),
    )


def build_upgrade_error(status: int, message: str) -> bytes:
    """An error after the upgrade was accepted (section 5): no length, body ends at close.

    Like Go's ``Response.Write``: an empty body is sent as ``Content-Length: 0`` instead.

    Raises:
        ValueError: for a status outside 100..999.
    """
    check_status(status)
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

    @property
    def peer_extensions(self) -> tuple[str, ...]:
        """What the server says the peer offered (docs/PROTOCOL.md section 16.1)."""
        return parse_extensions(self.head.get("Rdv-Peer-Extensions"))


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
