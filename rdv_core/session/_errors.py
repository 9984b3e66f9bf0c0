"""Errors of the session layer: one base class, one subclass per way a session ends badly."""

from __future__ import annotations

from rdv_core.errors import RdvError


class SessionError(RdvError):
    """Base class of every session-layer error."""


class CodeMismatch(SessionError):
    """The peers used different codes (or someone tried to guess the code)."""

    def __init__(self, detail: str = "") -> None:
        message = "code mismatch: the peer used a different code (or someone tried to guess it)"
        super().__init__(f"{message}; {detail}" if detail else message)


class ProtocolViolation(SessionError):
    """The peer sent something the session protocol does not allow."""


class FrameError(ProtocolViolation):
    """A frame could not be decoded: unknown type, oversized, malformed body."""


class TamperedError(SessionError):
    """A frame failed authentication after the keys were confirmed: corrupted or injected."""


class PeerError(SessionError):
    """The peer reported a fatal error and ended the session."""


class ConnectionLost(SessionError, ConnectionError):
    """The connection broke (EOF or socket error) before a clean close."""


def connection_lost(exc: BaseException) -> ConnectionLost:
    """``connection lost: WHY`` for the error that broke the connection, said once.

    The streams' own errors often say it already: users read "connection lost: the
    connection to the peer was lost" and "connection lost: Connection lost".
    """
    why = str(exc).strip()
    if not why:
        return ConnectionLost(f"connection lost ({type(exc).__name__})")
    lower = why.lower()
    if "connection" in lower and "lost" in lower:
        return ConnectionLost(why[0].lower() + why[1:])
    return ConnectionLost(f"connection lost: {why}")


class TransferFailed(SessionError):
    """Some files were not verified by the receiver.

    Attributes:
        failures: ``(name, reason)`` for every file that failed.
    """

    def __init__(self, failures: list[tuple[str, str]]) -> None:
        self.failures = failures
        shown = "; ".join(f"{name}: {reason}" for name, reason in failures[:5])
        more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
        files = f"{len(failures)} file" + ("" if len(failures) == 1 else "s")
        super().__init__(f"{files} failed: {shown}{more}")


class TransferRejected(TransferFailed):
    """The receiver declined the offer."""


class UnsafeName(RdvError, ValueError):
    """An offered path that could escape the download folder or is not portable."""
