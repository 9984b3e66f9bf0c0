"""The doctor's probe routes, sans-IO: paths, query checks and the JSON bodies both ends share.

docs/PROTOCOL.md section 15. Three plain ``GET`` routes, at the server root whatever its rdv
prefix, on the main port and on every probe port (``rdv serve --probe-port``):

- ``/.rdv/observed``: what the server saw of this conn (the observed address, the port it
  arrived on, the ``Upgrade`` header as it arrived);
- ``/.rdv/probes``: which probe ports exist and whether dial-back is on (discovery);
- ``/.rdv/dial-back?nonce=HEX``: the server connects, from another port, back to the address
  this very request came from (never any other), writes the nonce and reports what the SYN
  got: ``syn-ack``, ``rst``, ``icmp`` or ``timeout``.

A Go rdv/1 server has none of these routes: it answers them with an error status, and the
client reports "not measured". Every body a client reads is checked field by field here, so
that a lying or broken server yields :class:`ProtocolError`, never a crash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeGuard
from urllib.parse import parse_qs

from rdv_core.wire._addrs import Addr, AddrError
from rdv_core.wire._http1.head import ProtocolError

#: Version of the probe bodies (``"v"`` in every body).
PROBE_VERSION: Final = 1
OBSERVED_PATH: Final = "/.rdv/observed"
PROBES_PATH: Final = "/.rdv/probes"
DIALBACK_PATH: Final = "/.rdv/dial-back"
PROBE_PATHS: Final = frozenset({OBSERVED_PATH, PROBES_PATH, DIALBACK_PATH})
#: The ``Upgrade`` value the doctor sends with ``/.rdv/observed`` to see if it arrives.
PROBE_UPGRADE: Final = "rdv-probe/1"
#: First bytes the server writes on a dial-back conn, then the nonce and a newline.
DIALBACK_GREETING: Final = b"RDV-DIALBACK "
#: Nonces are 16..64 lowercase hex digits (the client's secret for one dial-back).
NONCE_MIN: Final = 16
NONCE_MAX: Final = 64
#: Bodies a client reads are small: more is a protocol error.
MAX_PROBE_BODY: Final = 4096
#: At most this many probe ports are announced (and read).
MAX_PROBE_PORTS: Final = 16

_HEX: Final = frozenset("0123456789abcdef")

DialBackResult = Literal["syn-ack", "rst", "icmp", "timeout", "error"]
DIALBACK_RESULTS: Final = ("syn-ack", "rst", "icmp", "timeout", "error")


@dataclass(frozen=True, slots=True)
class Observed:
    """``GET /.rdv/observed``: the conn as the server saw it.

    Attributes:
        observed: The client's address as the server reports it (``Rdv-Observed-Addr`` rules).
        port: The server port the request arrived on.
        upgrade: The request's ``Upgrade`` header as it arrived (None: absent).
    """

    observed: Addr
    port: int
    upgrade: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "v": PROBE_VERSION,
            "observed": str(self.observed),
            "port": self.port,
            "upgrade": self.upgrade,
        }


@dataclass(frozen=True, slots=True)
class ProbeDirectory:
    """``GET /.rdv/probes``: the server's probe ports and whether it dials back."""

    probe_ports: tuple[int, ...]
    dial_back: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "v": PROBE_VERSION,
            "probe_ports": list(self.probe_ports),
            "dial_back": self.dial_back,
        }


@dataclass(frozen=True, slots=True)
class DialBack:
    """``GET /.rdv/dial-back``: what the server's SYN to ``target`` got.

    Attributes:
        target: Where the server dialled (always the request's observed address).
        result: ``syn-ack``, ``rst``, ``icmp``, ``timeout`` or ``error``.
        errno: The errno behind ``rst``/``icmp``/``error`` (None otherwise).
        elapsed_ms: From the SYN to its answer (or to giving up).
        from_port: The server's local port of the dial-back (not the one the request used).
    """

    target: Addr
    result: DialBackResult
    errno: int | None
    elapsed_ms: float
    from_port: int

    def to_json(self) -> dict[str, Any]:
        return {
            "v": PROBE_VERSION,
            "target": str(self.target),
            "result": self.result,
            "errno": self.errno,
            "elapsed_ms": round(self.elapsed_ms, 3),
            "from_port": self.from_port,
        }


def dump_body(data: dict[str, Any]) -> str:
    """A probe body as compact JSON with a trailing newline."""
    return json.dumps(data, separators=(",", ":")) + "\n"


def parse_nonce(query: str) -> str:
    """The nonce of a dial-back request's query string (``nonce=HEX``, nothing else).

    Raises:
        ProtocolError: 400 for a missing, repeated, malformed nonce or an unknown parameter.
    """
    try:
        params = parse_qs(
            query, keep_blank_values=True, strict_parsing=bool(query), max_num_fields=4
        )
    except ValueError:
        raise ProtocolError("bad dial-back query") from None
    unknown = set(params) - {"nonce"}
    if unknown:
        # A target address is never accepted: the server dials the request's own address only.
        raise ProtocolError(f"unknown dial-back parameter {sorted(unknown)[0]!r}")
    values = params.get("nonce", [])
    if len(values) != 1:
        raise ProtocolError("dial-back needs exactly one nonce")
    nonce = values[0]
    if not NONCE_MIN <= len(nonce) <= NONCE_MAX or not set(nonce) <= _HEX:
        raise ProtocolError(f"nonce must be {NONCE_MIN}-{NONCE_MAX} lowercase hex digits")
    return nonce


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _body(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_PROBE_BODY:
        raise ProtocolError("probe body too large")
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("probe body is not JSON") from None
    if not isinstance(value, dict) or value.get("v") != PROBE_VERSION:
        raise ProtocolError("probe body has no known version")
    return value


def _port(value: Any, what: str) -> int:
    if type(value) is not int or not 0 < value <= 65535:
        raise ProtocolError(f"bad {what} in probe body")
    return value


def _addr(value: Any, what: str) -> Addr:
    if not isinstance(value, str) or len(value) > 64:
        raise ProtocolError(f"bad {what} in probe body")
    try:
        return Addr.parse(value)
    except AddrError:
        raise ProtocolError(f"bad {what} in probe body") from None


def parse_observed(data: bytes) -> Observed:
    """Read a ``/.rdv/observed`` body. Raises :class:`ProtocolError` for anything off."""
    body = _body(data)
    upgrade = body.get("upgrade")
    if upgrade is not None and (not isinstance(upgrade, str) or len(upgrade) > 200):
        raise ProtocolError("bad upgrade in probe body")
    return Observed(
        _addr(body.get("observed"), "observed"), _port(body.get("port"), "port"), upgrade
    )


def parse_directory(data: bytes) -> ProbeDirectory:
    """Read a ``/.rdv/probes`` body. Raises :class:`ProtocolError` for anything off."""
    body = _body(data)
    ports = body.get("probe_ports")
    if not isinstance(ports, list) or len(ports) > MAX_PROBE_PORTS:
        raise ProtocolError("bad probe_ports in probe body")
    dial_back = body.get("dial_back")
    if not isinstance(dial_back, bool):
        raise ProtocolError("bad dial_back in probe body")
    return ProbeDirectory(tuple(_port(p, "probe port") for p in ports), dial_back)


def parse_dial_back(data: bytes) -> DialBack:
    """Read a ``/.rdv/dial-back`` body. Raises :class:`ProtocolError` for anything off."""
    body = _body(data)
    result = body.get("result")
    if result not in DIALBACK_RESULTS:
        raise ProtocolError("bad result in probe body")
    errno = body.get("errno")
    if errno is not None and (type(errno) is not int or not 0 <= errno < 4096):
        raise ProtocolError("bad errno in probe body")
    elapsed = body.get("elapsed_ms")
    if not _is_number(elapsed) or not 0 <= elapsed < 3_600_000:
        raise ProtocolError("bad elapsed_ms in probe body")
    return DialBack(
        _addr(body.get("target"), "target"),
        result,
        errno,
        float(elapsed),
        _port(body.get("from_port"), "from_port"),
    )
