"""The race as the dashboard sees it: race events folded into rows, a header and a result.

This module knows nothing of Textual: it turns the event stream of one attempt
(``rdv_core.events``) into plain values that the widgets render. Each call to
:meth:`RaceModel.apply` says what changed, so the table updates only those rows by
key and nothing recomposes on each event. The same model serves a live race, a
replayed JSONL file and the tests.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, cast

from rdv_core import events as ev
from rdv_core.events import Candidate, Event
from rdv_tui.cli.checks import is_local
from rdv_tui.cli.formatting import join_reason, rejoin_line


class RowState(enum.Enum):
    """Where one candidate stands. The value is the word shown in the table."""

    SKIPPED = "skipped"
    DIALING = "dialing"
    RETRYING = "retrying"
    INBOUND = "inbound"
    CONNECTED = "connected"
    HANDSHAKEN = "handshaken"
    READY = "ready"
    FAILED = "failed"
    REJECTED = "rejected"
    PICKED = "picked"
    DISCARDED = "discarded"

    @property
    def is_final(self) -> bool:
        """True once the candidate's story is over."""
        return self in _FINAL


_FINAL = frozenset(
    {RowState.SKIPPED, RowState.FAILED, RowState.REJECTED, RowState.PICKED, RowState.DISCARDED}
)


class Mark(enum.Enum):
    """A point on a candidate's waterfall line."""

    START = "start"
    RETRY = "retry"
    CONNECTED = "connected"
    HANDSHAKE = "handshake"
    END = "end"


@dataclass(slots=True)
class CandidateRow:
    """Everything the dashboard shows about one candidate.

    Attributes:
        candidate: The candidate itself (id, address, space, origin).
        state: Its current state.
        detail: Why it is in that state (a failure reason, a skip reason, ...).
        retries: How many times a refused or reset dial was tried again.
        first_t: When its story began (dial started, inbound accepted, relay ready, skipped).
        last_t: When it last changed.
        connected_t: When TCP came up (outbound connect or inbound accept).
        handshake_t: When the header lines checked out.
        end_t: When it ended (picked, failed, discarded, skipped).
        marks: Points in time to draw on the waterfall, in order.
    """

    candidate: Candidate
    state: RowState
    detail: str = ""
    retries: int = 0
    first_t: float = 0.0
    last_t: float = 0.0
    connected_t: float | None = None
    handshake_t: float | None = None
    end_t: float | None = None
    marks: list[tuple[float, Mark]] = field(default_factory=list)

    @property
    def key(self) -> str:
        """The row key used by the table: stable for the whole attempt."""
        return f"c{self.candidate.id}"

    @property
    def family(self) -> str:
        """``v4``, ``v6`` or ``-`` when the address does not parse."""
        return ip_family(self.candidate.addr)

    @property
    def reason_text(self) -> str:
        """What the waterfall writes after a final row's end (empty before it ends)."""
        if not self.state.is_final:
            return ""
        return f"picked {self.detail}" if self.state is RowState.PICKED else self.detail

    @property
    def state_text(self) -> str:
        """The state column: the state word plus retries and the reason."""
        n = self.retries
        head = self._state_head(f" (after {n} retr{'y' if n == 1 else 'ies'})")
        return f"{head}: {self.detail}" if self.detail else head

    @property
    def short_state_text(self) -> str:
        """The state column where :attr:`state_text` does not fit (80 columns): retries
        as the waterfall's ``↻N``, the reason without its asides in parentheses. The
        candidate's details (Enter) keep the whole text."""
        head = self._state_head(f" ↻{self.retries}")
        detail = without_asides(self.detail)
        return f"{head}: {detail}" if detail else head

    def _state_head(self, retried: str) -> str:
        """The state word, with ``retried`` after it when a dial was tried again."""
        text = self.state.value
        if self.state is RowState.RETRYING:
            text = f"retrying ×{self.retries + 1}"  # noqa: RUF001 (the multiplication sign)
        elif self.retries and self.state is not RowState.DIALING:
            text += retried
        return f"★ {text}" if self.state is RowState.PICKED else text


_ASIDE = re.compile(r"\s*\([^()]*\)")


def without_asides(reason: str) -> str:
    """``reason`` without its parenthesized parts: ``unreachable (errno 101) (no IPv6
    route)`` is ``unreachable``; a reason that is all aside stays whole."""
    short = reason
    while (shorter := _ASIDE.sub("", short)) != short:
        short = shorter
    return short.strip() or reason


def ip_family(addr: str) -> str:
    """``v4`` or ``v6`` for an ``ip:port`` (or ``[ip]:port``) string, ``-`` if it does not parse."""
    host = addr.rsplit(":", 1)[0] if addr.count(":") == 1 or addr.startswith("[") else addr
    host = host.strip("[]")
    try:
        return f"v{ipaddress.ip_address(host.split('%', 1)[0]).version}"
    except ValueError:
        return "-"


@dataclass(slots=True)
class ServerPhase:
    """What happened between us and the rdv server.

    Attributes:
        method: ``DIAL`` or ``ACCEPT``.
        server: The server URL.
        spaces: The enabled address spaces.
        picker: The picker's description.
        self_addrs: Our own candidate addresses.
        server_addr: The server's resolved address.
        connect_s: TCP (+TLS) connect time.
        tls: Whether TLS was used, and its version.
        lobby_s: How long the server kept us waiting for the peer.
        responded_t: When the ``101`` arrived.
        observed_addr: Our address as the server saw it.
        peer_addrs: The peer's addresses the server sent.
        warning: Why the observed address will probably not work across NATs.
        rejected: The server's error, when it refused the request.
        rejoin: The lost lobby conn and its rejoin, while the attempt rejoins (PROTOCOL.md 18).
    """

    method: str = ""
    server: str = ""
    spaces: str = ""
    picker: str = ""
    self_addrs: tuple[str, ...] = ()
    server_addr: str = ""
    connect_s: float | None = None
    connected_t: float | None = None
    tls: str | None = None
    lobby_s: float | None = None
    responded_t: float | None = None
    observed_addr: str | None = None
    peer_addrs: tuple[str, ...] = ()
    warning: str = ""
    rejected: str = ""
    rejoin: str = ""


@dataclass(frozen=True, slots=True)
class RaceResult:
    """How the attempt ended.

    Attributes:
        ok: True when a conn was picked.
        is_relay: True when the picked conn is the relay.
        candidate: The picked candidate, when there is one.
        elapsed_s: Time from the start to the pick (or the failure).
        reason: Why the attempt failed.
    """

    ok: bool
    is_relay: bool
    candidate: Candidate | None
    elapsed_s: float
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Change:
    """What one event changed: the rows to update and whether header or result moved."""

    rows: tuple[int, ...] = ()
    header: bool = False
    result: bool = False


#: Row ids of the peer's candidates start here (ours are small per-attempt numbers).
PEER_ID_BASE = 1000

#: Race event types the model understands; anything else (session, server) is ignored.
RACE_EVENT_TYPES: frozenset[type[Event]] = frozenset((*ev.RACE_EVENTS, *ev.UPGRADE_EVENTS))


def is_race_event(event: Event) -> bool:
    """True for the events of a client race (the ones a race JSONL file holds)."""
    return type(event) in RACE_EVENT_TYPES


class RaceModel:
    """The state of one attempt, built from its events.

    Attributes:
        rows: One row per candidate, by candidate id, in order of appearance.
        server: The server phase.
        result: How it ended, once it has.
        events: Every race event applied, in order (what an export writes).
        t_end: The latest ``t`` seen: the right end of the shared time axis.
    """

    def __init__(self) -> None:
        self.rows: dict[int, CandidateRow] = {}
        self.server = ServerPhase()
        self.result: RaceResult | None = None
        self.events: list[Event] = []
        self.t_end: float = 0.0

    def apply(self, event: Event) -> Change:
        """Fold one event into the model and say what changed."""
        if not is_race_event(event):
            return Change()
        self.events.append(event)
        self.t_end = max(self.t_end, event.t)
        candidate: Candidate | None = getattr(event, "candidate", None)
        if candidate is not None:
            self._apply_candidate(event, candidate)
            return Change(rows=(candidate.id,), result=isinstance(event, ev.Picked))
        return self._apply_attempt(event)

    def merge_peer(self, events: list[Event]) -> tuple[int, ...]:
        """Add the peer's direct candidates (sent over the session) as rows of their own.

        Their times are moved onto our axis by the moment both sides got the server's answer
        (the server writes both ``101`` at once, docs/PROTOCOL.md section 4); their ids are
        offset by :data:`PEER_ID_BASE` and their origin reads ``peer <origin>``. The peer's
        relay is left out, and its pick ends its row without touching the result (ours).
        Nothing is added to
        :attr:`events` (an export holds our race only). Returns the new rows' ids.
        """
        ours = next((e.t for e in self.events if isinstance(e, ev.ServerResponded)), None)
        theirs = next((e.t for e in events if isinstance(e, ev.ServerResponded)), None)
        if ours is None or theirs is None:
            return ()
        shift = ours - theirs
        added: list[int] = []
        for event in events:
            candidate: Candidate | None = getattr(event, "candidate", None)
            if candidate is None or candidate.space == "relay" or not is_race_event(event):
                continue
            moved = dataclasses.replace(
                candidate,
                id=candidate.id + PEER_ID_BASE,
                # Display only: the row's origin column and the waterfall's label read it.
                origin=cast(Any, f"peer {candidate.origin}"),
            )
            shifted: Event = dataclasses.replace(  # type: ignore[call-arg]
                event, t=max(0.0, event.t + shift), candidate=moved
            )
            if isinstance(shifted, ev.Picked):
                # The peer's end of the conn: final, but the race's result stays ours.
                row = self._row(shifted, moved, RowState.PICKED)
                row.last_t = shifted.t
                self._end(row, shifted.t, RowState.PICKED, "the peer's end of the picked conn")
            else:
                self._apply_candidate(shifted, moved)
            self.t_end = max(self.t_end, shifted.t)
            if moved.id not in added:
                added.append(moved.id)
        return tuple(added)

    def advance(self, t: float) -> bool:
        """Move the right end of the time axis to ``t`` while nothing happens (a live
        race waiting in the lobby); True if it moved. Running rows grow with it."""
        if self.result is not None or not self.events or t <= self.t_end:
            return False
        self.t_end = t
        return True

    def apply_all(self, events: list[Event]) -> None:
        """Fold many events (a replayed file) at once."""
        for event in events:
            self.apply(event)

    # ----- attempt-level events

    def _apply_attempt(self, event: Event) -> Change:
        s = self.server
        match event:
            case ev.AttemptStarted():
                s.method, s.server = event.method, event.server
                s.spaces, s.picker = event.spaces, event.picker
            case ev.SelfAddrsGathered():
                s.self_addrs = event.addrs
            case ev.ServerConnected():
                s.server_addr, s.connect_s, s.connected_t = (
                    event.server_addr,
                    event.connect_s,
                    event.t,
                )
                s.tls = (event.tls_version or "TLS") if event.tls else None
            case ev.ServerResponded():
                s.observed_addr, s.peer_addrs = event.observed_addr, event.peer_addrs
                s.lobby_s, s.responded_t = event.lobby_s, event.t
            case ev.ObservedAddrWarning():
                # A server on this machine sees us at loopback, as it should: not a sign
                # that "p2p across NATs will likely fail" (the demo's header said so in
                # three lines; the CLI stopped saying it in e6d6acd). The event is kept.
                if not is_local(s.server):
                    s.warning = event.message
            case ev.ServerRejected():
                s.rejected = f"{event.status} {event.reason}".strip()
                if event.body:
                    s.rejected += f": {event.body.strip()}"
            case ev.ServerLost() | ev.LobbyRejoined():
                # A loss, not a refusal: the 503 that came with it is no "server refused".
                s.rejected, s.rejoin = "", rejoin_line(event, "code") or ""
            case ev.AttemptFailed():
                reason = event.reason + (f": {event.detail}" if event.detail else "")
                self.result = RaceResult(False, False, None, event.t, reason)
                return Change(header=True, result=True)
            case ev.RelayRetired() | ev.UpgradeFailed():  # fast start, on the relay's row
                return self._relay_note(event)
        return Change(header=True)

    def _relay_note(self, event: ev.RelayRetired | ev.UpgradeFailed) -> Change:
        relay = next((r for r in self.rows.values() if r.candidate.origin == "relay"), None)
        if relay is None:
            return Change()
        if isinstance(event, ev.RelayRetired):
            self._end(relay, event.t, RowState.DISCARDED, "retired: the stream moved direct")
        elif event.final or relay.state == RowState.PICKED:
            relay.detail = f"fast start stays here: {event.reason}"
        return Change(rows=(relay.candidate.id,))

    # ----- candidate events

    def _row(self, event: Event, candidate: Candidate, state: RowState) -> CandidateRow:
        row = self.rows.get(candidate.id)
        if row is None:
            row = CandidateRow(candidate, state, first_t=event.t, last_t=event.t)
            row.marks.append((event.t, Mark.START))
            self.rows[candidate.id] = row
        return row

    def _apply_candidate(self, event: Event, candidate: Candidate) -> None:
        row = self._row(event, candidate, RowState.DIALING)
        row.last_t = event.t
        match event:
            case ev.CandidateSkipped():
                self._end(row, event.t, RowState.SKIPPED, event.reason)
            case ev.DialStarted():
                row.state, row.detail = RowState.DIALING, ""
            case ev.DialRetried():
                row.state, row.retries = RowState.RETRYING, max(row.retries + 1, event.attempt - 1)
                row.detail = _with_errno(event.reason, event.errno)
                row.marks.append((event.t, Mark.RETRY))
            case ev.InboundAccepted():
                row.state, row.detail = RowState.INBOUND, ""
                row.connected_t = event.t
                row.marks.append((event.t, Mark.CONNECTED))
            case ev.InboundRejected():
                self._end(row, event.t, RowState.REJECTED, event.reason)
            case ev.CandidateConnected():
                row.state, row.detail = RowState.CONNECTED, ""
                row.connected_t = event.t
                row.marks.append((event.t, Mark.CONNECTED))
            case ev.HandshakeOk():
                row.state, row.detail = RowState.HANDSHAKEN, ""
                row.handshake_t = event.t
                row.marks.append((event.t, Mark.HANDSHAKE))
            case ev.HandshakeFailed():
                detail = join_reason(event.reason, event.detail)
                # A peer that closes a conn it will not take, with our header line unread in
                # its buffer, sends a reset rather than a FIN: both are "the peer closed it".
                if event.reason in ("eof", "reset"):
                    detail += f"; {closed_by_peer_hint(candidate.space)}"
                self._end(row, event.t, RowState.FAILED, detail)
            case ev.CandidateFailed():
                detail = join_reason(_with_errno(event.reason, event.errno), event.detail)
                self._end(row, event.t, RowState.FAILED, detail)
            case ev.RelayReady():
                row.state, row.detail = RowState.READY, ""
                row.connected_t = row.handshake_t = event.t
            case ev.Picked():
                self._end(row, event.t, RowState.PICKED, f"{event.elapsed_s * 1000:.0f} ms")
                self.result = RaceResult(True, event.is_relay, candidate, event.elapsed_s)
            case ev.Discarded():
                self._end(row, event.t, RowState.DISCARDED, event.reason)
            case ev.Upgraded():  # fast start: the stream moved onto this conn
                row.detail = f"stream moved here {event.after_s * 1000:.0f} ms after the relay"

    @staticmethod
    def _end(row: CandidateRow, t: float, state: RowState, detail: str) -> None:
        row.state, row.detail, row.end_t = state, detail, t
        row.marks.append((t, Mark.END))


def closed_by_peer_hint(space: str) -> str:
    """Why a peer closes a conn right after TCP connected, in words: the rejection
    reason (``InboundRejected``) is only in the *peer's* events (issue 16)."""
    return f"the peer closed it: does its --spaces allow {space}? (its -v log says why)"


def _with_errno(reason: str, errno: int | None) -> str:
    return f"{reason} (errno {errno})" if errno is not None else reason
