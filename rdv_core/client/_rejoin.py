"""Rejoining the lobby when the server conn is lost before the pair is made.

docs/PROTOCOL.md section 18. A peer waiting in the lobby (it showed a code or a token and
waits for its partner) lost its conn when the server restarted for an upgrade, was drained
or killed, or a balancer's backend died: the user had to run the command again and share
a new code, and a partner who typed the old one met an empty lobby. With a
:class:`RejoinPolicy`, the attempt sends the same request again (same token, same URL:
it never reconnects anywhere else), a bounded number of times with a growing pause.

Client behaviour only: each rejoin is an ordinary rdv/1 request, byte for byte. Only
before the ``101``: after it, the relay conn carries the peer's data and its errors stay.

What counts as a lost lobby conn, and why (anything else keeps its error at once):

- ``502``/``504`` (a gateway lost or timed out on its upstream: HAProxy's answer when the
  waiting client's backend died) and ``503`` (``rdv server shutting down, try again``, a
  draining server's ``rdv is closed``, a balancer with no backend up), honouring a
  ``Retry-After`` in seconds up to :attr:`RejoinPolicy.max_retry_after_s`. Not the
  lobby-full ``503`` (section 5): the server sheds load on purpose, and a rejoin there
  could evict another waiting request of our own network.
- A reset, or a close without a byte, while we waited (a killed server). A close within
  :attr:`RejoinPolicy.held_s` of our first request is an answer, not a loss (a TLS server
  closes a plain-HTTP conn at once: its error and hint must come now, not after the
  rejoins).
- Once rejoining: a refused or failed connect (the server is not back yet), except a TLS
  certificate the system refuses.
- Never a 4xx: ``400`` (bad token or request: the same request gets the same answer),
  ``404``, ``408`` (the server's lobby timeout is its operator's bound on the wait),
  ``409`` (a newer request holds the token: rejoining would evict it, and back),
  ``429`` (a rate limit: more requests are what it limits), nor a ``500`` (a hook of the
  server failed on this request).
"""

from __future__ import annotations

import asyncio
import errno
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Protocol, TypeVar

from rdv_core.client._response import CLOSED_SILENTLY
from rdv_core.errors import RdvProtocolError, ServerConnectError, ServerRejectedError
from rdv_core.events import Clock, Event, LobbyRejoined, ServerLost

#: The attempt's stages in which a lost conn can be rejoined (before the ``101``).
CONNECTING: Final = "connecting to the server"
WAITING: Final = "waiting for the peer"
#: The stage while we pause before a rejoin (a timeout then says so).
REJOINING: Final = "waiting to rejoin the lobby"
#: The body prefix of the lobby-full ``503`` (docs/PROTOCOL.md section 5).
LOBBY_FULL: Final = "rdv lobby is full"

Emit = Callable[[Event], None]
T = TypeVar("T")


class Staged(Protocol):
    """The attempt, as the rejoins see it: what it is doing, and when its request left."""

    stage: str
    sent_at: float | None


@dataclass(frozen=True, slots=True)
class RejoinPolicy:
    """How an attempt rejoins the lobby after losing its server conn (PROTOCOL.md 18).

    The pause before rejoin ``n`` is ``first_s * 2**(n-1)``, at most ``max_s``: with the
    defaults 0.5, 1, 2, 4, 5, 5 s, so 6 rejoins give up 17.5 s after the loss. A conn
    that then waited ``fresh_after_s`` in the lobby starts the count afresh (a server
    restarted twice in an hour is two losses, not a streak). Worst case: ``rejoins + 1``
    connects in a streak (7 by default), none sooner than ``first_s`` after the previous
    (15 in any minute at most with these pauses), all to the URL the user gave. The
    overall ``Client(timeout=...)`` bounds the whole wait, rejoins included.
    """

    rejoins: int = 6
    first_s: float = 0.5
    max_s: float = 5.0
    fresh_after_s: float = 60.0
    held_s: float = 0.5
    max_retry_after_s: float = 30.0

    def __post_init__(self) -> None:
        if self.rejoins < 0 or not self.first_s > 0 or not self.max_s >= self.first_s:
            raise ValueError("rejoins must be >= 0 and 0 < first_s <= max_s")

    def pause(self, rejoin: int) -> float:
        """Seconds before rejoin number ``rejoin`` (from 1)."""
        return float(min(self.max_s, self.first_s * 2 ** (rejoin - 1)))


class Rejoiner:
    """One attempt's rejoins: decides on each failure, counts, emits the events."""

    def __init__(self, policy: RejoinPolicy | None, clock: Clock, emit: Emit) -> None:
        self.policy = policy
        self.clock = clock
        self.emit = emit
        #: Rejoins in the current streak.
        self.count = 0
        #: When the streak's first loss happened (its rejoins count from there).
        self._first_lost_at = 0.0

    async def run(self, once: Callable[[], Awaitable[T]], attempt: Staged) -> T:
        """``once()``, again after each lost lobby conn while the policy allows."""
        while True:
            attempt.sent_at = None
            try:
                return await once()
            except (ServerRejectedError, ServerConnectError, RdvProtocolError) as exc:
                pause = self.pause_after(exc, attempt.stage, attempt.sent_at)
                if pause is None:
                    raise
            attempt.stage = REJOINING
            await asyncio.sleep(pause)
            attempt.stage = CONNECTING

    def pause_after(self, exc: Exception, stage: str, sent_at: float | None) -> float | None:
        """Seconds to pause before the next rejoin, or None: ``exc`` stands.

        ``sent_at`` is when our request went out on the lost conn (None: it never did).

        Raises:
            ServerConnectError: the loss of a streak that used up its rejoins.
        """
        policy = self.policy
        if policy is None or policy.rejoins == 0 or stage not in (CONNECTING, WAITING):
            return None
        now = self.clock()
        waited = now - sent_at if sent_at is not None else 0.0
        if waited >= policy.fresh_after_s:
            self.count = 0  # the server was back for a while: a new loss, not the same one
        why = self._why(exc, stage, waited, policy)
        if why is None:
            return None
        pause = policy.pause(self.count + 1)
        retry_after = exc.retry_after if isinstance(exc, ServerRejectedError) else None
        if retry_after is not None:
            if retry_after > policy.max_retry_after_s:
                return None  # it asks for a longer wait than we give: its answer stands
            pause = max(pause, retry_after)
        if self.count == 0:
            self._first_lost_at = now
        if self.count >= policy.rejoins:
            away = now - self._first_lost_at
            raise ServerConnectError(
                f"the rdv server went away while we waited and did not come back: "
                f"{self.count} rejoin{'s' if self.count > 1 else ''} over {away:.1f} s "
                f"failed (the last: {why}); try again once the server is back",
                getattr(exc, "errno", None),
            ) from exc
        self.count += 1
        self.emit(ServerLost(now, why, pause, self.count, policy.rejoins))
        return pause

    def joined(self) -> None:
        """Our request went out again: a rejoin, when one was under way."""
        if self.count:
            now = self.clock()
            self.emit(LobbyRejoined(now, self.count, now - self._first_lost_at))

    def _why(self, exc: Exception, stage: str, waited: float, policy: RejoinPolicy) -> str | None:
        """The loss in words, or None when ``exc`` is no lost lobby conn (see the module)."""
        if isinstance(exc, ServerRejectedError):
            if exc.status not in (502, 503, 504) or exc.body.startswith(LOBBY_FULL):
                return None
            said = " ".join(exc.body.split())[:120] or exc.reason
            return f"{exc.status} {said}"
        if isinstance(exc, RdvProtocolError):
            if not str(exc).startswith(CLOSED_SILENTLY) or stage != WAITING:
                return None
            held = self.count > 0 or waited >= policy.held_s
            return "closed without answering" if held else None
        if not isinstance(exc, ServerConnectError):
            return None
        cause = exc.__cause__
        if stage == WAITING:
            if not isinstance(cause, OSError):
                return None  # an answer read as an error (a TLS server's 400), not a loss
        elif not self.count:
            return None  # a first connect that fails: nothing was joined (a wrong URL?)
        if isinstance(cause, ssl.SSLCertVerificationError):
            return None  # the same certificate would be refused again
        return _said(exc, cause)


def _said(exc: ServerConnectError, cause: BaseException | None) -> str:
    """A failed connect or a broken conn in a few words (the CLI's line, the event)."""
    if exc.errno == errno.ECONNREFUSED:
        return "connection refused"
    if exc.errno in (errno.ECONNRESET, errno.EPIPE) or isinstance(cause, ConnectionResetError):
        return "connection reset"
    if isinstance(cause, ssl.SSLError):
        return "the TLS connection broke"
    last = str(exc).rsplit(": ", 1)[-1]
    return last[:1].lower() + last[1:120]
