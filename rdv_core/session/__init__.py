"""End-to-end encrypted peer sessions on top of an rdv connection: chat and files.

Modules, one job each, from the bottom up: :mod:`~rdv_core.session._errors` (the
session's errors), :mod:`~rdv_core.session._codes` (human codes),
:mod:`~rdv_core.session._burned` (codes never to use again),
:mod:`~rdv_core.session._record` (the record layer: framing and size bounds),
:mod:`~rdv_core.session._channel` (records in, bytes out),
:mod:`~rdv_core.session._crypto` (SPAKE2 -> HKDF -> AEAD),
:mod:`~rdv_core.session._bundle` (many small files in one frame),
:mod:`~rdv_core.session._frames` (the frame codec), :mod:`~rdv_core.session._safepath`,
:mod:`~rdv_core.session._files` and :mod:`~rdv_core.session._incoming_file` (disk side),
:mod:`~rdv_core.session._transfers`
(what both transfer directions share), :mod:`~rdv_core.session._outbox` (sealed frames
out), :mod:`~rdv_core.session._outgoing` and :mod:`~rdv_core.session._incoming` (the two
transfer directions), :mod:`~rdv_core.session._session` (the session itself: handshake,
reader and dispatch, chat, close; it owns one outbox and one of each direction) and
:mod:`~rdv_core.session._connect` (a session through an rdv server). Each module
imports only modules before it in this list.
"""

from __future__ import annotations

from rdv_core.session._burned import BurnedCodes
from rdv_core.session._cancel import CANCELLED, CANCELLED_BY_PEER
from rdv_core.session._codes import Code, CodeError, generate_code, parse_code
from rdv_core.session._connect import connect_session, describe_path
from rdv_core.session._errors import (
    CodeMismatch,
    ConnectionLost,
    FrameError,
    PeerError,
    ProtocolViolation,
    SessionError,
    TamperedError,
    TransferFailed,
    TransferRejected,
    UnsafeName,
)
from rdv_core.session._files import DIGEST, collect
from rdv_core.session._frames import MAX_CHAT_BYTES
from rdv_core.session._incoming import DECLINED, IncomingOffer, OfferCallback
from rdv_core.session._session import Session
from rdv_core.session._transfers import SESSION_ENDED, TransferResult, describe_os_error

__all__ = [
    "CANCELLED",
    "CANCELLED_BY_PEER",
    "DECLINED",
    "DIGEST",
    "MAX_CHAT_BYTES",
    "SESSION_ENDED",
    "BurnedCodes",
    "Code",
    "CodeError",
    "CodeMismatch",
    "ConnectionLost",
    "FrameError",
    "IncomingOffer",
    "OfferCallback",
    "PeerError",
    "ProtocolViolation",
    "Session",
    "SessionError",
    "TamperedError",
    "TransferFailed",
    "TransferRejected",
    "TransferResult",
    "UnsafeName",
    "collect",
    "connect_session",
    "describe_os_error",
    "describe_path",
    "generate_code",
    "parse_code",
]
