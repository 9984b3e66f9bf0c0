"""Structured events: every step of a race, of the server and of a peer session.

Each event is a frozen, slotted dataclass whose ``t`` is seconds since the attempt
(or the server, or the session) started, on the monotonic clock. Events are
past-tense facts. Each has a stable JSON form, ``{"type": <class name>, ...fields}``,
so a race can be saved as JSONL, attached to a bug report, replayed in the TUI and
compared between the two peers. Events never carry secrets (session codes, keys).

Delivery is a plain callback (:data:`EventCallback`); tests pass ``list.append``.

The vocabulary is split by who emits it (:mod:`.race`, :mod:`.server`, :mod:`.session`),
the machinery is in :mod:`.base`; every name is importable from ``rdv_core.events``.
"""

from rdv_core.events.base import (
    Candidate as Candidate,
)
from rdv_core.events.base import (
    Clock as Clock,
)
from rdv_core.events.base import (
    E as E,
)
from rdv_core.events.base import (
    Event as Event,
)
from rdv_core.events.base import (
    EventCallback as EventCallback,
)
from rdv_core.events.base import (
    EventRecorder as EventRecorder,
)
from rdv_core.events.base import (
    FailReason as FailReason,
)
from rdv_core.events.base import (
    Origin as Origin,
)
from rdv_core.events.base import (
    dumps as dumps,
)
from rdv_core.events.base import (
    event as event,
)
from rdv_core.events.base import (
    event_types as event_types,
)
from rdv_core.events.base import (
    read_jsonl as read_jsonl,
)
from rdv_core.events.base import (
    write_jsonl as write_jsonl,
)
from rdv_core.events.race import (
    AttemptFailed as AttemptFailed,
)
from rdv_core.events.race import (
    AttemptStarted as AttemptStarted,
)
from rdv_core.events.race import (
    CandidateConnected as CandidateConnected,
)
from rdv_core.events.race import (
    CandidateFailed as CandidateFailed,
)
from rdv_core.events.race import (
    CandidateSkipped as CandidateSkipped,
)
from rdv_core.events.race import (
    DialRetried as DialRetried,
)
from rdv_core.events.race import (
    DialStarted as DialStarted,
)
from rdv_core.events.race import (
    Discarded as Discarded,
)
from rdv_core.events.race import (
    HandshakeFailed as HandshakeFailed,
)
from rdv_core.events.race import (
    HandshakeOk as HandshakeOk,
)
from rdv_core.events.race import (
    InboundAccepted as InboundAccepted,
)
from rdv_core.events.race import (
    InboundRejected as InboundRejected,
)
from rdv_core.events.race import (
    ObservedAddrWarning as ObservedAddrWarning,
)
from rdv_core.events.race import (
    Picked as Picked,
)
from rdv_core.events.race import (
    RelayReady as RelayReady,
)
from rdv_core.events.race import (
    SelfAddrsGathered as SelfAddrsGathered,
)
from rdv_core.events.race import (
    ServerConnected as ServerConnected,
)
from rdv_core.events.race import (
    ServerRejected as ServerRejected,
)
from rdv_core.events.race import (
    ServerResponded as ServerResponded,
)
from rdv_core.events.server import (
    LobbyLeft as LobbyLeft,
)
from rdv_core.events.server import (
    LobbyTimedOut as LobbyTimedOut,
)
from rdv_core.events.server import (
    P2PReported as P2PReported,
)
from rdv_core.events.server import (
    PairMatched as PairMatched,
)
from rdv_core.events.server import (
    PeerJoined as PeerJoined,
)
from rdv_core.events.server import (
    Rejected as Rejected,
)
from rdv_core.events.server import (
    RelayEnded as RelayEnded,
)
from rdv_core.events.server import (
    RelayStarted as RelayStarted,
)
from rdv_core.events.server import (
    Replaced as Replaced,
)
from rdv_core.events.server import (
    ServerClosed as ServerClosed,
)
from rdv_core.events.session import (
    ChatReceived as ChatReceived,
)
from rdv_core.events.session import (
    ChatSent as ChatSent,
)
from rdv_core.events.session import (
    FileAccepted as FileAccepted,
)
from rdv_core.events.session import (
    FileCompleted as FileCompleted,
)
from rdv_core.events.session import (
    FileFailed as FileFailed,
)
from rdv_core.events.session import (
    FileOffered as FileOffered,
)
from rdv_core.events.session import (
    FileProgress as FileProgress,
)
from rdv_core.events.session import (
    FileRejected as FileRejected,
)
from rdv_core.events.session import (
    SessionClosed as SessionClosed,
)
from rdv_core.events.session import (
    SessionEstablished as SessionEstablished,
)
from rdv_core.events.session import (
    TransferResumed as TransferResumed,
)
