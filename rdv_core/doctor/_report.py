"""The doctor's report: what was measured, each finding tri-state with its reason.

docs/PROTOCOL.md section 15.3 is the JSON form (``version`` 1, stable names). Every finding is
``{"value": ..., "reason": "..."}``: ``value`` is the answer (``true``/``false``, or a word such
as ``endpoint-independent``), or ``null`` when it was not measured, and then ``reason`` says
why (a Go server without the probe routes, one server only, ...). A person reads ``reason``;
programs read ``value``.

:func:`Report.from_json` reads a report back strictly (the peer sends its report over the
session, docs/PROTOCOL.md section 15.5): a field of the wrong type, a string over its bound or
too many entries is a :class:`ReportError`, never a crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeGuard

from rdv_core.errors import RdvError

#: Version of the report's JSON form.
REPORT_VERSION: Final = 1
#: Bounds of a report read from elsewhere (the peer, a file).
MAX_SERVERS: Final = 8
MAX_SAMPLES: Final = 32
MAX_TEXT: Final = 400
#: Reports of extra uplinks one report may carry (docs/PROTOCOL.md 15.8).
MAX_UPLINK_REPORTS: Final = 4

Value = bool | str | int | None

#: The words a finding may hold, per field (docs/PROTOCOL.md section 15.3).
MAPPINGS: Final = (
    "endpoint-independent",
    "port-dependent",
    "address-dependent",
    "address-and-port-dependent",
    "none",
)
ALLOCATIONS: Final = ("preserved", "sequential", "random")
FILTERINGS: Final = ("open", "drop", "rst", "icmp", "intercepted")
#: How the server is reached (section 15.7): ``none`` (direct), ``tunnel`` (a proxy's
#: ``CONNECT`` tunnel works), ``failed`` (a proxy is configured and did not give a tunnel).
PROXIES: Final = ("none", "tunnel", "failed")
#: Findings added after version 1 was published: a report without them (an older rdv's)
#: still reads, as "not measured".
OPTIONAL_FINDINGS: Final = frozenset({"proxy", "filtering6", "http"})


class ReportError(RdvError, ValueError):
    """A doctor report (from the peer, or a file) does not have the documented form."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One answer: ``value`` (None = not measured) and, always, the reason in plain words."""

    value: Value
    reason: str

    @property
    def measured(self) -> bool:
        return self.value is not None

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "reason": clip(self.reason)}

    @classmethod
    def from_json(cls, data: Any, allowed: tuple[str, ...] | None = None) -> Finding:
        if not isinstance(data, dict):
            raise ReportError("a finding must be an object")
        value = data.get("value")
        reason = _text(data.get("reason"), "reason")
        if value is not None and type(value) not in (bool, str, int):
            raise ReportError("a finding's value must be a boolean, a word or null")
        if isinstance(value, str) and (allowed is None or value not in allowed):
            raise ReportError(f"unknown finding value {value[:40]!r}")
        return cls(value, reason)


def clip(text: str) -> str:
    """``text`` within :data:`MAX_TEXT`, as every string of a report is written: a reader
    refuses a longer one (section 15.3), so a 2,000-character proxy or server URL in one
    reason made the peer refuse our whole report (``--explain``, section 15.5)."""
    if len(text) <= MAX_TEXT:
        return text
    return text[: MAX_TEXT - 1] + "\u2026"


def not_measured(reason: str) -> Finding:
    """A finding with no value."""
    return Finding(None, reason)


@dataclass(frozen=True, slots=True)
class Sample:
    """One conn and what the server saw of it.

    Attributes:
        local: Our ``ip:port``.
        server: The server's ``ip:port`` we connected to.
        observed: Our address as the server saw it (None: not measured).
        connect_ms: TCP connect time (SYN to SYN-ACK as the socket saw it).
    """

    local: str
    server: str
    observed: str | None
    connect_ms: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "local": clip(self.local),
            "server": clip(self.server),
            "observed": None if self.observed is None else clip(self.observed),
            "connect_ms": None if self.connect_ms is None else round(self.connect_ms, 3),
        }

    @classmethod
    def from_json(cls, data: Any) -> Sample:
        if not isinstance(data, dict):
            raise ReportError("a sample must be an object")
        ms = data.get("connect_ms")
        if ms is not None and (not _is_number(ms) or ms < 0):
            raise ReportError("bad connect_ms")
        observed = data.get("observed")
        return cls(
            _text(data.get("local"), "local"),
            _text(data.get("server"), "server"),
            None if observed is None else _text(observed, "observed"),
            None if ms is None else float(ms),
        )


@dataclass(frozen=True, slots=True)
class ServerCheck:
    """What one server URL told us.

    Attributes:
        url: The URL as given.
        tcp4, tcp6, tls: Could we reach it over IPv4 / IPv6 / TLS.
        rtt_ms: The quickest TCP connect to it (a round trip), None if unreachable.
        observed: Our address as it saw it from the shared port (None: not measured).
        probe_ports: The probe ports it announced (empty: none, or no probe routes).
        upgrade: Did our ``Upgrade`` header arrive (False: a middlebox stripped it).
        dial_back: What its SYN back to our observed address got (``open``, ``drop``, ...).
        proxy: Whether we reach it through an HTTP proxy (a word of :data:`PROXIES`).
        http: Did it answer HTTP on the main conn (False: it took the conn and said nothing,
            or not HTTP; any status is an answer: a server without the doctor routes
            answers with an error status).
    """

    url: str
    tcp4: Finding
    tcp6: Finding
    tls: Finding
    rtt_ms: float | None
    observed: str | None
    probe_ports: tuple[int, ...]
    upgrade: Finding
    dial_back: Finding
    proxy: Finding = field(default_factory=lambda: Finding("none", "no proxy configured"))
    http: Finding = field(default_factory=lambda: not_measured("not tried"))

    def to_json(self) -> dict[str, Any]:
        return {
            "url": clip(self.url),
            "tcp4": self.tcp4.to_json(),
            "tcp6": self.tcp6.to_json(),
            "tls": self.tls.to_json(),
            "rtt_ms": None if self.rtt_ms is None else round(self.rtt_ms, 3),
            "observed": None if self.observed is None else clip(self.observed),
            "probe_ports": list(self.probe_ports),
            "upgrade": self.upgrade.to_json(),
            "dial_back": self.dial_back.to_json(),
            "proxy": self.proxy.to_json(),
            "http": self.http.to_json(),
        }

    @classmethod
    def from_json(cls, data: Any) -> ServerCheck:
        if not isinstance(data, dict):
            raise ReportError("a server check must be an object")
        rtt = data.get("rtt_ms")
        if rtt is not None and (not _is_number(rtt) or rtt < 0):
            raise ReportError("bad rtt_ms")
        ports = data.get("probe_ports")
        if not isinstance(ports, list) or len(ports) > MAX_SAMPLES:
            raise ReportError("bad probe_ports")
        if any(type(p) is not int or not 0 < p <= 65535 for p in ports):
            raise ReportError("bad probe port")
        observed = data.get("observed")
        return cls(
            url=_text(data.get("url"), "url"),
            tcp4=Finding.from_json(data.get("tcp4")),
            tcp6=Finding.from_json(data.get("tcp6")),
            tls=Finding.from_json(data.get("tls")),
            rtt_ms=None if rtt is None else float(rtt),
            observed=None if observed is None else _text(observed, "observed"),
            probe_ports=tuple(ports),
            upgrade=Finding.from_json(data.get("upgrade")),
            dial_back=Finding.from_json(data.get("dial_back"), FILTERINGS),
            proxy=_optional_finding(data, "proxy", PROXIES),
            http=_optional_finding(data, "http", None),
        )


#: The top-level findings, in the order people read them, with the words each may hold.
FINDINGS: Final[Mapping[str, tuple[str, ...] | None]] = {
    "nat": None,
    "mapping": MAPPINGS,
    "port_preserved": None,
    "allocation": ALLOCATIONS,
    "filtering": FILTERINGS,
    "hairpin": None,
    "upgrade": None,
    "ipv6": None,
    "nat6": None,
    # Came after version 1 was published, as "proxy" did: a report without it reads as
    # "not measured" (docs/PROTOCOL.md 15.3).
    "filtering6": FILTERINGS,
    "loss": None,
    "proxy": PROXIES,
}


@dataclass(frozen=True, slots=True)
class Report:
    """A whole doctor run (docs/PROTOCOL.md section 15.3).

    Attributes:
        local_port: The shared local port every mapping probe used (SO_REUSEPORT).
        duration_ms: How long the run took.
        servers: One check per URL.
        samples: Conns from the shared port, one per server port.
        fresh: Conns from fresh ports, in the order they were made (allocation pattern).
        findings: name -> finding, names of :data:`FINDINGS`.
        local_addrs: space name -> our addresses in it.
        allocation_delta: The step of a ``sequential`` allocation (None otherwise).
        uplink: The uplink these findings were measured from (``eth0 10.0.1.2``; empty:
            the kernel's default route, not named).
        uplinks: One report per other uplink the race would dial from (section 15.8),
            each with its own ``uplink`` and no ``uplinks`` of its own.
    """

    local_port: int
    duration_ms: float
    servers: tuple[ServerCheck, ...]
    samples: tuple[Sample, ...]
    fresh: tuple[Sample, ...]
    findings: Mapping[str, Finding]
    local_addrs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    allocation_delta: int | None = None
    uplink: str = ""
    uplinks: tuple[Report, ...] = ()

    @property
    def paths(self) -> tuple[Report, ...]:
        """This report and every uplink's: each way out the race would use."""
        return (self, *self.uplinks)

    def finding(self, name: str) -> Finding:
        """The finding called ``name`` (not measured if absent)."""
        return self.findings.get(name) or not_measured("not part of this report")

    def value(self, name: str) -> Value:
        """The value of finding ``name`` (None when not measured)."""
        return self.finding(name).value

    @property
    def reached(self) -> bool:
        """Did any server answer, directly or through a proxy's tunnel (section 15.7)."""
        return any(
            s.tcp4.value is True or s.tcp6.value is True or s.proxy.value == "tunnel"
            for s in self.servers
        )

    @property
    def answered(self) -> bool:
        """Did any server answer HTTP, or a proxy give a tunnel to one (what ``rdv doctor``'s
        exit code 0 says: something was measured against a server)."""
        return any(s.http.value is True or s.proxy.value == "tunnel" for s in self.servers)

    @property
    def proxy_only(self) -> bool:
        """Is a proxy's tunnel the only way out to the servers (direct TCP failed)?"""
        direct = any(s.tcp4.value is True or s.tcp6.value is True for s in self.servers)
        return not direct and any(s.proxy.value == "tunnel" for s in self.servers)

    @property
    def observed4(self) -> str | None:
        """Our public IPv4 address as the first server that saw one reported it."""
        for sample in self.samples:
            if sample.observed is not None and ":" not in sample.observed.rsplit(":", 1)[0]:
                return sample.observed.rsplit(":", 1)[0]
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": REPORT_VERSION,
            "local_port": self.local_port,
            "duration_ms": round(self.duration_ms, 1),
            **{name: self.finding(name).to_json() for name in FINDINGS},
            "allocation_delta": self.allocation_delta,
            "servers": [s.to_json() for s in self.servers],
            "samples": [s.to_json() for s in self.samples],
            "fresh": [s.to_json() for s in self.fresh],
            "local_addrs": {clip(k): [clip(a) for a in v] for k, v in self.local_addrs.items()},
            "uplink": clip(self.uplink),
            "uplinks": [u.to_json() for u in self.uplinks],
        }

    @classmethod
    def from_json(cls, data: Any, *, nested: bool = False) -> Report:
        """Read a report strictly. Raises :class:`ReportError`.

        ``uplink`` and ``uplinks`` came after version 1 was published: a report without them
        (an older rdv's) reads as one path. An uplink's report has no ``uplinks`` itself.
        """
        if not isinstance(data, dict):
            raise ReportError("a report must be a JSON object")
        if data.get("version") != REPORT_VERSION:
            raise ReportError(f"unknown report version {str(data.get('version'))[:20]}")
        port = data.get("local_port")
        if type(port) is not int or not 0 <= port <= 65535:
            raise ReportError("bad local_port")
        duration = data.get("duration_ms")
        if not _is_number(duration) or duration < 0:
            raise ReportError("bad duration_ms")
        delta = data.get("allocation_delta")
        if delta is not None and (type(delta) is not int or abs(delta) > 65535):
            raise ReportError("bad allocation_delta")
        findings = {
            name: _optional_finding(data, name, allowed) for name, allowed in FINDINGS.items()
        }
        return cls(
            local_port=port,
            duration_ms=float(duration),
            servers=tuple(ServerCheck.from_json(s) for s in _list(data, "servers", MAX_SERVERS)),
            samples=tuple(Sample.from_json(s) for s in _list(data, "samples", MAX_SAMPLES)),
            fresh=tuple(Sample.from_json(s) for s in _list(data, "fresh", MAX_SAMPLES)),
            findings=findings,
            local_addrs=_local_addrs(data.get("local_addrs")),
            allocation_delta=delta,
            uplink=_text(data.get("uplink", ""), "uplink"),
            uplinks=_uplinks(data, nested),
        )


def _uplinks(data: dict[str, Any], nested: bool) -> tuple[Report, ...]:
    if "uplinks" not in data:
        return ()
    found = _list(data, "uplinks", 0 if nested else MAX_UPLINK_REPORTS)
    return tuple(Report.from_json(u, nested=True) for u in found)


def _optional_finding(data: dict[str, Any], name: str, allowed: tuple[str, ...] | None) -> Finding:
    """``data[name]`` as a finding; one of :data:`OPTIONAL_FINDINGS` may be absent."""
    if name in OPTIONAL_FINDINGS and name not in data:
        return not_measured("the report does not have this finding (an older rdv)")
    return Finding.from_json(data.get(name), allowed)


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise ReportError(f"bad {what}")
    return value


def _list(data: dict[str, Any], name: str, bound: int) -> list[Any]:
    value = data.get(name)
    if not isinstance(value, list) or len(value) > bound:
        raise ReportError(f"bad {name}")
    return value


def _local_addrs(value: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict) or len(value) > 16:
        raise ReportError("bad local_addrs")
    out: dict[str, tuple[str, ...]] = {}
    for space, addrs in value.items():
        if not isinstance(addrs, list) or len(addrs) > MAX_SAMPLES:
            raise ReportError("bad local_addrs")
        out[_text(space, "space")] = tuple(_text(a, "address") for a in addrs)
    return out
