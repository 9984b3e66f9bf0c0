"""The rdv/1 line layer after the upgrade (docs/PROTOCOL.md section 6), sans-IO.

Once a conn is upgraded (relay) or connected (direct), rdv speaks ``\\n``-terminated
lines before the application bytes: a peer header line on direct conns, then the
dialer's command (``CONTINUE`` or ``OTHER ip:port``). Nothing here touches a socket:
the client race, the relay and the tests share this code.

Bounded: a line is at most :data:`MAX_LINE` bytes; past it :class:`LineBuffer` raises
:class:`ProtocolError`, never anything else. Every byte after the last line is kept
(:meth:`LineBuffer.rest`): it is application data.

Deliberate deviation from the reference, on input it never sends: ``OTHER`` must carry
a parsable address (Go records the zero address and still closes the pair; the wire
effect is the same: both relay conns are closed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from rdv_core.wire._addrs import Addr, AddrError
from rdv_core.wire._http1.head import ProtocolError
from rdv_core.wire._names import METHODS, UPGRADE_PROTOCOL, escape_token, opposite, unescape_token

#: Longest rdv line after the upgrade, newline included (section 6).
MAX_LINE: Final = 4096


class Misdial(ProtocolError):
    """A direct conn whose peer header line is not the one we expect (section 6)."""


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
