"""Structured events: every step of a race, of the server and of a peer session.

Each event is a frozen, slotted dataclass whose ``t`` is seconds since the attempt
(or the server, or the session) started, on the monotonic clock. Events are
past-tense facts. Each has a stable JSON form, ``{"type": <class name>, ...fields}``,
so a race can be saved as JSONL, attached to a bug report, replayed in the TUI and
compared between the two peers. Events never carry secrets (session codes, keys).

Delivery is a plain callback (:data:`EventCallback`); tests pass ``list.append``.

The vocabulary is split by who emits it (:mod:`._race`, :mod:`._upgrade`, :mod:`._server`,
:mod:`._session`),
the machinery is in :mod:`._base`; every name is importable from ``rdv_core.events``, and
:data:`RACE_EVENTS`, :data:`SERVER_EVENTS` and :data:`SESSION_EVENTS` list each vocabulary
(in the order a race, a server or a session emits them) for consumers that dispatch on them.
"""

from __future__ import annotations

from typing import Final

from rdv_core.events._base import (
    Candidate,
    Clock,
    E,
    Event,
    EventCallback,
    EventRecorder,
    FailReason,
    Origin,
    dumps,
    event,
    event_types,
    read_jsonl,
    write_jsonl,
)
from rdv_core.events._doctor import DoctorReported, VerdictReached
from rdv_core.events._race import (
    AttemptFailed,
    AttemptStarted,
    CandidateConnected,
    CandidateFailed,
    CandidateSkipped,
    DialRetried,
    DialStarted,
    Discarded,
    HandshakeFailed,
    HandshakeOk,
    InboundAccepted,
    InboundRejected,
    LobbyRejoined,
    ObservedAddrWarning,
    Picked,
    RelayReady,
    SelfAddrsGathered,
    ServerConnected,
    ServerLost,
    ServerRejected,
    ServerResponded,
)
from rdv_core.events._server import (
    LobbyLeft,
    LobbyTimedOut,
    P2PReported,
    PairMatched,
    PeerJoined,
    Rejected,
    RelayEnded,
    RelayStarted,
    Replaced,
    ServerClosed,
)
from rdv_core.events._session import (
    BATCHED_EVENTS,
    ChatReceived,
    ChatSent,
    FileAccepted,
    FileCompleted,
    FileFailed,
    FileOffered,
    FileProgress,
    FileRejected,
    FilesAccepted,
    FilesCompleted,
    FilesOffered,
    SessionClosed,
    SessionEstablished,
    TransferResumed,
)
from rdv_core.events._upgrade import (
    FastStartNegotiated,
    FirstByteReceived,
    RelayRetired,
    UpgradeAttempt,
    Upgraded,
    UpgradeFailed,
    UpgradeStarted,
)

#: The race vocabulary, in the order an attempt emits it (docs/ARCHITECTURE.md section 2).
RACE_EVENTS: Final[tuple[type[Event], ...]] = (
    AttemptStarted,
    SelfAddrsGathered,
    ServerConnected,
    ServerResponded,
    ObservedAddrWarning,
    ServerRejected,
    ServerLost,
    LobbyRejoined,
    CandidateSkipped,
    DialStarted,
    DialRetried,
    InboundAccepted,
    InboundRejected,
    CandidateConnected,
    HandshakeOk,
    HandshakeFailed,
    CandidateFailed,
    RelayReady,
    Picked,
    Discarded,
    AttemptFailed,
)
#: Fast start (docs/PROTOCOL.md section 16), after the relay was picked.
UPGRADE_EVENTS: Final[tuple[type[Event], ...]] = (
    FastStartNegotiated,
    FirstByteReceived,
    UpgradeStarted,
    UpgradeAttempt,
    Upgraded,
    RelayRetired,
    UpgradeFailed,
)
#: What the server emits (:class:`rdv_core.server.RdvServer`'s ``on_event``).
SERVER_EVENTS: Final[tuple[type[Event], ...]] = (
    PeerJoined,
    PairMatched,
    P2PReported,
    RelayStarted,
    RelayEnded,
    LobbyTimedOut,
    Replaced,
    LobbyLeft,
    Rejected,
    ServerClosed,
)
#: What a peer session emits (:class:`rdv_core.session.Session`'s ``on_event``).
#: The two-sided diagnosis (docs/PROTOCOL.md section 15.5), in emission order.
DOCTOR_EVENTS: Final[tuple[type[Event], ...]] = (DoctorReported, VerdictReached)

SESSION_EVENTS: Final[tuple[type[Event], ...]] = (
    SessionEstablished,
    ChatSent,
    ChatReceived,
    FileOffered,
    FileAccepted,
    FileRejected,
    FileProgress,
    TransferResumed,
    FileCompleted,
    FileFailed,
    SessionClosed,
    FilesOffered,
    FilesAccepted,
    FilesCompleted,
)

__all__ = [
    "BATCHED_EVENTS",
    "DOCTOR_EVENTS",
    "RACE_EVENTS",
    "SERVER_EVENTS",
    "SESSION_EVENTS",
    "UPGRADE_EVENTS",
    "AttemptFailed",
    "AttemptStarted",
    "Candidate",
    "CandidateConnected",
    "CandidateFailed",
    "CandidateSkipped",
    "ChatReceived",
    "ChatSent",
    "Clock",
    "DialRetried",
    "DialStarted",
    "Discarded",
    "DoctorReported",
    "E",
    "Event",
    "EventCallback",
    "EventRecorder",
    "FailReason",
    "FastStartNegotiated",
    "FileAccepted",
    "FileCompleted",
    "FileFailed",
    "FileOffered",
    "FileProgress",
    "FileRejected",
    "FilesAccepted",
    "FilesCompleted",
    "FilesOffered",
    "FirstByteReceived",
    "HandshakeFailed",
    "HandshakeOk",
    "InboundAccepted",
    "InboundRejected",
    "LobbyLeft",
    "LobbyRejoined",
    "LobbyTimedOut",
    "ObservedAddrWarning",
    "Origin",
    "P2PReported",
    "PairMatched",
    "PeerJoined",
    "Picked",
    "Rejected",
    "RelayEnded",
    "RelayReady",
    "RelayRetired",
    "RelayStarted",
    "Replaced",
    "SelfAddrsGathered",
    "ServerClosed",
    "ServerConnected",
    "ServerLost",
    "ServerRejected",
    "ServerResponded",
    "SessionClosed",
    "SessionEstablished",
    "TransferResumed",
    "UpgradeAttempt",
    "UpgradeFailed",
    "UpgradeStarted",
    "Upgraded",
    "VerdictReached",
    "dumps",
    "event",
    "event_types",
    "read_jsonl",
    "write_jsonl",
]
