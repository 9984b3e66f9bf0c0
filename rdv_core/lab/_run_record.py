"""A lab run's record, and what it is judged by: the peers' and the server's events.

:class:`RunResult` is one run (outcome, time to connected, the picked path, the three
event streams, the data check); :class:`PresetResult` all runs of one preset and their
summary. The outcome comes from the dialer's ``Picked`` event (:func:`outcome_of`);
:func:`direct_attempts` says in one line why no direct candidate won. Running the peers
is :mod:`._runner`'s job.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rdv_core.lab._spec import LabSpec, Outcome
from rdv_core.wire import Addr, AddrError

__all__ = [
    "Json",
    "PresetResult",
    "RunResult",
    "direct_attempts",
    "outcome_of",
    "read_events",
    "server_events_for",
]

log = logging.getLogger("rdv.lab")

Json = dict[str, Any]


@dataclass(slots=True)
class RunResult:
    """One run of one lab.

    Attributes:
        outcome: ``direct``, ``relay`` or ``failed``.
        connect_ms: The dialer's ``Picked.elapsed_s`` in ms (None without ``Picked``).
        chosen: The picked candidate's address (the server's for the relay).
        events: ``dialer``, ``accepter`` and ``server`` event lists (JSON objects).
        data_ok: The payload arrived intact (None when no conn was picked).
        payload_bytes: Size of the payload sent from dialer to accepter.
        received_bytes: What the accepter wrote to stdout.
        error: Why the run failed, in words (empty when it did not).
        duration_s: Wall time of the whole run.
        port_remaps: After a run that did not go direct, the peers' ports that a
            port-preserving router did not keep (:meth:`PortRemap.describe` lines): the
            router's port clash explains the relay (docs/LAB-NOTES.md section 11).
    """

    outcome: Outcome
    connect_ms: float | None
    chosen: str | None
    events: dict[str, list[Json]]
    data_ok: bool | None = None
    payload_bytes: int = 0
    received_bytes: int = 0
    error: str = ""
    duration_s: float = 0.0
    chosen_space: str = ""
    port_remaps: list[str] = field(default_factory=list)

    def to_json(self) -> Json:
        """The run as ``rdv lab run --json`` prints it (``port_remaps``, ``error`` only when
        any: a failed run's JSON said ``failed`` and not why, where the text said it)."""
        out: Json = {
            "outcome": self.outcome,
            "connect_ms": None if self.connect_ms is None else round(self.connect_ms, 3),
            "chosen": self.chosen,
            "events": self.events,
        }
        if self.port_remaps:
            out["port_remaps"] = self.port_remaps
        if self.error:
            out["error"] = self.error
        return out

    @property
    def chosen_family(self) -> int | None:
        """4 or 6 for the picked address, None without one."""
        if self.chosen is None:
            return None
        try:
            return 4 if Addr.parse(self.chosen).is_ipv4 else 6
        except AddrError:
            return None

    @property
    def path(self) -> str:
        """A path label: ``relay``, ``direct public4``, or ``failed``."""
        if self.outcome == "direct":
            return f"direct {self.chosen_space or '?'}"
        return self.outcome


@dataclass(slots=True)
class PresetResult:
    """All runs of one preset."""

    spec: LabSpec
    runs: list[RunResult] = field(default_factory=list)
    build_ms: float = 0.0
    impairment: str = "none"

    def summary(self) -> Json:
        """Counts, p50/p90 time to connected, chosen paths, data checks."""
        counts = Counter(r.outcome for r in self.runs)
        times = sorted(r.connect_ms for r in self.runs if r.connect_ms is not None)
        return {
            "runs": len(self.runs),
            "direct": counts["direct"],
            "relay": counts["relay"],
            "failed": counts["failed"],
            "p50_ms": _percentile(times, 50),
            "p90_ms": _percentile(times, 90),
            "chosen": dict(Counter(r.path for r in self.runs).most_common()),
            "data_verified": sum(1 for r in self.runs if r.data_ok),
            "port_remaps": sum(1 for r in self.runs if r.port_remaps),
            "expected": self.spec.expect,
        }

    def to_json(self) -> Json:
        """The whole ``rdv lab run --json`` object."""
        return {
            "preset": self.spec.name,
            "runs": [r.to_json() for r in self.runs],
            "summary": self.summary(),
        }


def _percentile(sorted_values: Sequence[float], pct: int) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not sorted_values:
        return None
    if len(sorted_values) == 1:
        return round(sorted_values[0], 1)
    rank = max(1, -(-pct * len(sorted_values) // 100))
    return round(sorted_values[min(rank, len(sorted_values)) - 1], 1)


def outcome_of(dialer_events: Sequence[Json]) -> tuple[Outcome, float | None, str | None, str]:
    """``(outcome, connect_ms, chosen addr, chosen space)`` from the dialer's events."""
    for ev in dialer_events:
        if ev.get("type") == "Picked":
            cand = ev.get("candidate") or {}
            outcome: Outcome = "relay" if ev.get("is_relay") else "direct"
            return (
                outcome,
                float(ev.get("elapsed_s", 0.0)) * 1000.0,
                cand.get("addr"),
                str(cand.get("space", "")),
            )
    return "failed", None, None, ""


def direct_attempts(dialer_events: Sequence[Json]) -> str:
    """What became of each direct candidate the dialer tried, in one line.

    E.g. ``10.0.2.2:4000 unreachable; 203.0.113.12:4000 refused x11, cancelled``: the
    answer to "why not direct?" when a run ends on the relay.
    """
    order: list[str] = []
    retries: Counter[str] = Counter()
    reasons: dict[str, list[str]] = {}
    for ev in dialer_events:
        cand = ev.get("candidate") or {}
        addr = cand.get("addr")
        if not addr or cand.get("origin") == "relay":
            continue
        kind = ev.get("type")
        if addr not in reasons:
            order.append(addr)
            reasons[addr] = []
        if kind == "DialRetried":
            if not retries[addr]:
                reasons[addr].append(str(ev.get("reason")))
            # Retry events may be throttled: the attempt number is the true count.
            retries[addr] = max(retries[addr], int(ev.get("attempt") or 0))
        elif kind in ("CandidateFailed", "HandshakeFailed"):
            reasons[addr].append(str(ev.get("reason")))
        elif kind in ("CandidateSkipped", "InboundRejected"):
            reasons[addr].append(f"skipped ({ev.get('reason')})")
        elif kind in ("HandshakeOk", "Discarded"):
            reasons[addr].append("ok" if kind == "HandshakeOk" else "discarded")
    parts = []
    for addr in order:
        texts = reasons[addr]
        if retries[addr] and texts:
            texts[0] = f"{texts[0]} x{retries[addr] - 1}"
        if texts == ["cancelled"]:
            texts = ["no answer (SYN dropped), cancelled"]
        parts.append(f"{addr} {', '.join(texts) or 'pending'}")
    return "; ".join(parts)


def read_events(path: str) -> list[Json]:
    """JSON objects from a JSONL file (missing file: empty; bad lines are skipped)."""
    out: list[Json] = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    log.warning("%s: skipping a line that is not JSON", path)
                    continue
                if isinstance(obj, dict):
                    out.append(obj)
    except FileNotFoundError:
        pass
    return out


def server_events_for(events: Sequence[Json], token: str) -> list[Json]:
    """The server events of one token: its requests, its pair(s) and their ends."""
    pair_ids = {
        ev.get("pair_id")
        for ev in events
        if ev.get("type") == "PairMatched" and ev.get("token") == token
    }
    return [ev for ev in events if ev.get("token") == token or ev.get("pair_id") in pair_ids]
