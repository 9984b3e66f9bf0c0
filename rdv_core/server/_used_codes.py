"""A bounded, time-limited memory of the session tokens whose pair met, so that a
receiver who comes back with a used code is told so instead of waiting for nobody.

``rdv send FILE`` prints a code, ``rdv receive CODE`` gets the file, both exit; another
``rdv receive CODE`` then waited in the lobby for the whole lobby timeout and read
``408 no matching peer found``. The server cannot know that nobody will come, but it
can know that this code's pair already met: docs/PROTOCOL.md section 5 (used codes).

Only the session's tokens (``rdv-session-<nameplate>``, section 12.1) are remembered, and
only an ``ACCEPT`` (a receiver) is answered: an rdv/1 pipe-mode pair may reuse a fixed
token for ever (``rdv accept`` in a loop), and a sender with a code of its own choosing
may send with it again.

Bounds: at most :data:`USED_CODES_MAX` entries (the oldest go first) for at most
:data:`USED_CODES_TTL_S` each, keyed by a 64-bit keyed BLAKE2b digest (a secret per
server), so no client can grow it, and nothing in it names a token. What it tells a
stranger: a receiver's request for a guessed nameplate learns, after
:data:`USED_CODE_WAIT_S`, whether a pair met with it in the last ten minutes; nameplates
are not secret (the code's words are), and the lobby's caps bound how many such
guesses wait at once.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from typing import Final

__all__ = [
    "USED_CODE",
    "USED_CODES_MAX",
    "USED_CODES_TTL_S",
    "USED_CODE_WAIT_S",
    "UsedCodes",
    "is_session_token",
]

#: The session's tokens (docs/PROTOCOL.md section 12.1).
SESSION_PREFIX: Final = "rdv-session-"
#: How long a pair's token is remembered after it met: a user reruns a command within
#: minutes; longer would refuse more receivers of a hand-picked code used twice.
USED_CODES_TTL_S: Final = 600.0
#: How many tokens are remembered at most (about 180 bytes each, 2.8 MiB in all): ten minutes of 27
#: pairs a second; past that the oldest are forgotten sooner (the old 408, no harm).
USED_CODES_MAX: Final = 16_384
#: How long a receiver with a used code waits for a sender all the same before it is
#: told: a sender who reuses a code of its own choosing and started a moment after
#: the receiver (a script, two people on the phone) still meets it.
USED_CODE_WAIT_S: Final = 2.0
#: The ``410`` body (no trailing newline: section 5 framing ends the body at close).
USED_CODE: Final = (
    "this code was already used: its pair met on this server and no sender is waiting "
    "with it now; ask the sender for a new code (a transfer cut short resumes with it)"
)


def is_session_token(token: str) -> bool:
    """Whether ``token`` is an encrypted session's (the only ones remembered)."""
    return token.startswith(SESSION_PREFIX)


class UsedCodes:
    """Session tokens whose pair met lately, as keyed digests, oldest first."""

    __slots__ = ("_key", "_met", "limit", "ttl_s")

    def __init__(self, limit: int = USED_CODES_MAX, ttl_s: float = USED_CODES_TTL_S) -> None:
        self.limit = limit
        self.ttl_s = ttl_s
        self._key = os.urandom(16)
        #: digest -> when its pair met (loop time), in that order. An OrderedDict: a plain
        #: dict emptied from the front scans its holes on each look at the oldest (193 us
        #: an add at the bound, where this takes about 1 us).
        self._met: OrderedDict[int, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._met)

    def add(self, token: str, now: float) -> None:
        """``token``'s pair met at ``now`` (a session token; others are ignored)."""
        if not is_session_token(token):
            return
        digest = self._digest(token)
        self._met[digest] = now
        self._met.move_to_end(digest)  # met again: it moves to the end
        self._expire(now)

    def used(self, token: str, now: float) -> bool:
        """Whether a pair met with ``token`` within the last ``ttl_s``."""
        self._expire(now)
        return is_session_token(token) and self._digest(token) in self._met

    def _expire(self, now: float) -> None:
        met = self._met
        while met:
            when = met[next(iter(met))]
            if len(met) <= self.limit and now - when < self.ttl_s:
                return
            met.popitem(last=False)

    def _digest(self, token: str) -> int:
        raw = hashlib.blake2b(token.encode(), digest_size=8, key=self._key).digest()
        return int.from_bytes(raw, "big")
