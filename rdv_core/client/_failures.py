"""Why a dial or a conn failed: a :data:`~rdv_core.events.FailReason` and the errno.

Every failure in the race is classified (refused, reset, unreachable, timeout, misdial,
cancelled, ...) with its errno, as events.
"""

from __future__ import annotations

import asyncio
import errno as errno_codes
from typing import Final

from rdv_core.events import FailReason
from rdv_core.wire import Misdial, ProtocolError

_ERRNO_REASONS: Final[dict[int, FailReason]] = {
    errno_codes.ECONNREFUSED: "refused",
    errno_codes.ECONNRESET: "reset",
    errno_codes.ECONNABORTED: "reset",
    errno_codes.EPIPE: "reset",
    errno_codes.ENETUNREACH: "unreachable",
    errno_codes.EHOSTUNREACH: "unreachable",
    errno_codes.ENETDOWN: "unreachable",
    errno_codes.EHOSTDOWN: "unreachable",
    errno_codes.EADDRNOTAVAIL: "unreachable",
    errno_codes.EAFNOSUPPORT: "unreachable",
    errno_codes.EINVAL: "unreachable",
    errno_codes.ETIMEDOUT: "timeout",
}


def classify(exc: BaseException) -> tuple[FailReason, int | None]:
    """Classify why a dial or a conn failed: a reason and the errno, if any."""
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled", None
    if isinstance(exc, Misdial):
        return "misdial", None
    if isinstance(exc, ProtocolError):
        return "protocol", None
    if isinstance(exc, asyncio.IncompleteReadError | EOFError):
        return "eof", None
    if isinstance(exc, OSError):
        code = exc.errno
        if code is not None and code in _ERRNO_REASONS:
            return _ERRNO_REASONS[code], code
        if isinstance(exc, TimeoutError):
            return "timeout", code
        if isinstance(exc, ConnectionRefusedError):
            return "refused", code
        if isinstance(exc, ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
            return "reset", code
        return "error", code
    return "error", None
