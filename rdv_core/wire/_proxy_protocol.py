"""The PROXY protocol, versions 1 and 2, sans-IO (docs/PROTOCOL.md section 14).

An L4 load balancer (HAProxy ``send-proxy-v2``, nginx ``stream`` with ``proxy_protocol
on``, AWS NLB) opens its own TCP conn to the backend and writes, before the client's
first byte, one header naming the client's address and port. rdv's observed address
(section 8) must be the client's, so the native front reads this header, and only from
conns whose TCP peer is a trusted proxy, before the HTTP head.

The format is HAProxy's specification (``doc/proxy-protocol.txt``, 2020 revision):

- v1, text: ``PROXY TCP4 <src> <dst> <sport> <dport>\\r\\n`` (``TCP6`` alike, or
  ``PROXY UNKNOWN ...\\r\\n``), at most 107 bytes with the CRLF;
- v2, binary: a 12-byte signature, a version/command byte (``0x20`` LOCAL, ``0x21``
  PROXY), a family/protocol byte, a 16-bit big-endian length, the address block
  (12 bytes for IPv4, 36 for IPv6, 216 for unix sockets) and TLVs filling the rest.

Strict on all of it, as the HTTP layer is: one space between v1 fields, CRLF only,
addresses of the announced family (IPv4 dotted quads without leading zeros, IPv6
without a scope), ports in decimal without leading zeros, v2 version 2 and known command, family and
protocol nibbles, an address block as long as its family needs, TLVs that tile the rest
exactly, and the whole v2 header bounded at :data:`MAX_V2_HEADER` bytes. Anything else
raises :class:`ProxyHeaderError` (a :class:`ProtocolError` with status 400). Deliberate
leniency: the optional CRC32C TLV is kept but not verified (no stdlib CRC32C), and a v2
header for a unix socket, or with an unspecified family or protocol, parses with unknown
addresses (the spec says to use the conn's own then; for rdv that means "unknown", see
:mod:`rdv_core.server._observed`). Datagram (UDP) headers are refused: rdv is TCP.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Final, Literal

from rdv_core.wire._addrs import Addr
from rdv_core.wire._http1.head import ProtocolError

V1_PREFIX: Final = b"PROXY "
#: The longest v1 line the specification allows, CRLF included.
V1_MAX_LINE: Final = 107
V2_SIGNATURE: Final = b"\r\n\r\n\x00\r\nQUIT\n"
#: Largest v2 header we accept (signature, fixed part, addresses and TLVs). Balancers send
#: well under 300 bytes (AWS adds a VPC endpoint TLV); the format allows 64 KiB.
MAX_V2_HEADER: Final = 4096
_V2_FIXED: Final = 16  # signature, ver/cmd, fam/proto, length
_V2_ADDR_LENGTHS: Final = {0x0: 0, 0x1: 12, 0x2: 36, 0x3: 216}  # by family nibble
_V1_FAMILIES: Final = {"TCP4": 4, "TCP6": 6}

Command = Literal["proxy", "local"]


class ProxyHeaderError(ProtocolError):
    """A PROXY protocol header that breaks the specification (or comes from a stranger)."""


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """One parsed PROXY header.

    Attributes:
        version: 1 or 2.
        command: ``"proxy"`` (a relayed conn) or ``"local"`` (v2 only: the balancer's own
            conn, e.g. a health check; its addresses are the conn's own).
        source: The client's address as the balancer saw it; None when the header does not
            say (v1 ``UNKNOWN``, v2 ``LOCAL``, unspecified family, unix socket).
        destination: The address the client connected to, or None likewise.
        tlvs: v2 type-length-value entries, in order (empty for v1).
    """

    version: Literal[1, 2]
    command: Command
    source: Addr | None
    destination: Addr | None
    tlvs: tuple[tuple[int, bytes], ...] = ()


def sniff_proxy_header(data: bytes) -> Literal[1, 2] | bool | None:
    """Which PROXY version ``data`` (the first bytes of a conn) starts with.

    Returns 1 or 2 when ``data`` starts with that version's prefix, False when it cannot
    be a PROXY header (e.g. an HTTP request), None when too few bytes arrived to tell.
    """
    for version, prefix in ((1, V1_PREFIX), (2, V2_SIGNATURE)):
        if data.startswith(prefix):
            return 1 if version == 1 else 2
    if V1_PREFIX.startswith(data) or V2_SIGNATURE.startswith(data):
        return None
    return False


class ProxyHeaderParser:
    """Incremental parser for the one PROXY header at the start of a conn.

    Feed bytes with :meth:`feed` until :attr:`finished`; then :attr:`header` is the header
    (None when an optional one was absent) and :attr:`trailing` holds every byte that
    followed it (the start of the HTTP head). With ``required`` (the default) input that
    does not start with a PROXY header is an error; without it, such input finishes the
    parser at once with no header and every byte in :attr:`trailing`.
    """

    __slots__ = ("_buf", "_required", "finished", "header", "trailing")

    def __init__(self, *, required: bool = True) -> None:
        self._buf = bytearray()
        self._required = required
        self.finished = False
        self.header: ProxyHeader | None = None
        self.trailing = b""

    def feed(self, data: bytes) -> ProxyHeader | None:
        """Add bytes; return the header once it is complete, else None (see :attr:`finished`).

        Raises:
            ProxyHeaderError: for a malformed or oversized header, or a missing required one.
        """
        if self.finished:
            self.trailing += data
            return self.header
        self._buf += data
        kind = sniff_proxy_header(bytes(self._buf[: len(V2_SIGNATURE)]))
        if kind is None:
            return None
        if kind is False:
            if self._required:
                raise ProxyHeaderError("not a PROXY protocol header")
            self._finish(None, 0)
            return None
        parsed = _parse_v1(self._buf) if kind == 1 else _parse_v2(self._buf)
        if parsed is None:
            return None
        self._finish(*parsed)
        return self.header

    def _finish(self, header: ProxyHeader | None, end: int) -> None:
        self.finished = True
        self.header = header
        self.trailing = bytes(self._buf[end:])
        self._buf = bytearray()


# ----- v1


def _parse_v1(buf: bytearray) -> tuple[ProxyHeader, int] | None:
    end = buf.find(b"\r\n", 0, V1_MAX_LINE)
    if end < 0:
        if b"\n" in buf[:V1_MAX_LINE]:
            raise ProxyHeaderError("PROXY v1 line must end with CRLF")
        if len(buf) >= V1_MAX_LINE:
            raise ProxyHeaderError(f"PROXY v1 line longer than {V1_MAX_LINE} bytes")
        return None
    raw = bytes(buf[:end])
    if b"\r" in raw or b"\n" in raw or not raw.isascii():
        raise ProxyHeaderError("PROXY v1 line holds a control or non-ASCII byte")
    fields = raw.decode("ascii").split(" ")
    if len(fields) >= 2 and fields[1] == "UNKNOWN":
        # The specification: anything may follow UNKNOWN up to the CRLF; it is ignored.
        return ProxyHeader(1, "proxy", None, None), end + 2
    if len(fields) != 6:
        raise ProxyHeaderError(f"PROXY v1 line needs 6 fields, got {len(fields)}: {raw!r}")
    _, proto, src, dst, sport, dport = fields
    family = _V1_FAMILIES.get(proto)
    if family is None:
        raise ProxyHeaderError(f"PROXY v1 protocol must be TCP4, TCP6 or UNKNOWN, not {proto!r}")
    source = Addr(_v1_ip(src, family), _v1_port(sport))
    destination = Addr(_v1_ip(dst, family), _v1_port(dport))
    return ProxyHeader(1, "proxy", source, destination), end + 2


def _v1_ip(text: str, family: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        ip = ipaddress.IPv4Address(text) if family == 4 else ipaddress.IPv6Address(text)
    except ValueError:
        raise ProxyHeaderError(f"PROXY v1: {text!r} is not an IPv{family} address") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        raise ProxyHeaderError(f"PROXY v1: {text!r} carries a scope")
    return ip


def _v1_port(text: str) -> int:
    if (
        not (text.isascii() and text.isdigit())
        or len(text) > 5
        or (len(text) > 1 and text[0] == "0")
    ):
        raise ProxyHeaderError(f"PROXY v1: bad port {text!r}")
    port = int(text)
    if port > 65535:
        raise ProxyHeaderError(f"PROXY v1: port {port} out of range")
    return port


# ----- v2


def _parse_v2(buf: bytearray) -> tuple[ProxyHeader, int] | None:
    if len(buf) < _V2_FIXED:
        return None
    ver_cmd, fam_proto, length = struct.unpack_from("!BBH", buf, len(V2_SIGNATURE))
    if ver_cmd >> 4 != 2:
        raise ProxyHeaderError(f"PROXY v2: version {ver_cmd >> 4} (want 2)")
    if ver_cmd & 0xF not in (0x0, 0x1):
        raise ProxyHeaderError(f"PROXY v2: unknown command {ver_cmd & 0xF:#x}")
    family, proto = fam_proto >> 4, fam_proto & 0xF
    if family not in _V2_ADDR_LENGTHS or proto > 0x2:
        raise ProxyHeaderError(f"PROXY v2: unknown family/protocol byte {fam_proto:#04x}")
    total = _V2_FIXED + length
    if total > MAX_V2_HEADER:
        raise ProxyHeaderError(f"PROXY v2 header of {total} bytes (at most {MAX_V2_HEADER})")
    if len(buf) < total:
        return None
    body = bytes(buf[_V2_FIXED:total])
    command: Command = "proxy" if ver_cmd & 0xF == 0x1 else "local"
    if command == "local":
        # The balancer's own conn: the specification says to skip the whole block unread.
        return ProxyHeader(2, "local", None, None), total
    addr_len = _V2_ADDR_LENGTHS[family]
    if length < addr_len:
        raise ProxyHeaderError(
            f"PROXY v2: {length} bytes cannot hold a {addr_len}-byte address block"
        )
    if proto == 0x2:
        raise ProxyHeaderError("PROXY v2: a datagram (UDP) header on a TCP conn")
    source = destination = None
    if proto == 0x1 and family in (0x1, 0x2):
        size = 4 if family == 0x1 else 16
        src_ip = ipaddress.ip_address(body[:size])
        dst_ip = ipaddress.ip_address(body[size : 2 * size])
        sport, dport = struct.unpack_from("!HH", body, 2 * size)
        source, destination = Addr(src_ip, sport), Addr(dst_ip, dport)
    return ProxyHeader(2, "proxy", source, destination, _tlvs(body, addr_len)), total


def _tlvs(body: bytes, start: int) -> tuple[tuple[int, bytes], ...]:
    """The TLVs after the address block; they must tile the rest of it exactly."""
    out: list[tuple[int, bytes]] = []
    i = start
    while i < len(body):
        if i + 3 > len(body):
            raise ProxyHeaderError("PROXY v2: truncated TLV header")
        kind, size = body[i], int.from_bytes(body[i + 1 : i + 3], "big")
        if i + 3 + size > len(body):
            raise ProxyHeaderError(f"PROXY v2: TLV {kind:#04x} of {size} bytes overruns the header")
        out.append((kind, body[i + 3 : i + 3 + size]))
        i += 3 + size
    return tuple(out)


# ----- building (tests, benches, clients that speak to a PROXY-enabled server directly)


def build_proxy_v1(source: Addr | None, destination: Addr | None) -> bytes:
    """A v1 line; ``UNKNOWN`` when either address is None.

    Raises:
        ValueError: when the two addresses are not of the same family.
    """
    if source is None or destination is None:
        return b"PROXY UNKNOWN\r\n"
    if source.ip.version != destination.ip.version:
        raise ValueError("PROXY v1: source and destination must be of one family")
    proto = "TCP4" if source.ip.version == 4 else "TCP6"
    line = f"PROXY {proto} {source.ip} {destination.ip} {source.port} {destination.port}\r\n"
    return line.encode("ascii")


def build_proxy_v2(
    source: Addr | None,
    destination: Addr | None,
    command: Command = "proxy",
    tlvs: tuple[tuple[int, bytes], ...] = (),
) -> bytes:
    """A v2 header (``LOCAL`` or unspecified family when an address is None).

    Raises:
        ValueError: for mixed families, or TLVs past :data:`MAX_V2_HEADER`.
    """
    if command == "local" or source is None or destination is None:
        fam_proto, block = 0x00, b""
    elif source.ip.version != destination.ip.version:
        raise ValueError("PROXY v2: source and destination must be of one family")
    else:
        fam_proto = 0x11 if source.ip.version == 4 else 0x21
        block = source.ip.packed + destination.ip.packed
        block += struct.pack("!HH", source.port, destination.port)
    for kind, value in tlvs:
        block += struct.pack("!BH", kind, len(value)) + value
    if _V2_FIXED + len(block) > MAX_V2_HEADER:
        raise ValueError(f"PROXY v2 header over {MAX_V2_HEADER} bytes")
    ver_cmd = 0x21 if command == "proxy" else 0x20
    return V2_SIGNATURE + struct.pack("!BBH", ver_cmd, fam_proto, len(block)) + block
