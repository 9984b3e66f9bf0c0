"""The hook API of the rdv server: what applications implement to wrap pairs.

A :class:`PairHandler` sees each accepted request (:class:`PeerInfo`) and each pair,
and may refuse either by raising :class:`Reject` (per-pair auth, rate limits); it is
also told when a pair relays and when it ends (monitoring). The server core
(:mod:`rdv_core.server._core`) calls these hooks through the ``call_*`` functions at the
end of this module, which say what a hook's outcome means, and re-exports the names.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Final

from rdv_core.errors import RdvError
from rdv_core.server._stats import PairStats
from rdv_core.wire import Addr, Method

log = logging.getLogger("rdv.server")

#: The section 5 body peers get when a hook fails (the application's bug stays in its log).
INTERNAL_ERROR: Final = "internal server error"


class Reject(RdvError):
    """Raised by a :class:`PairHandler` hook to refuse a request or a pair.

    The peer(s) get a section 5 error (``status`` and ``reason`` as the body) and the
    conn is closed.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """What the server knows of one accepted rdv request.

    Attributes:
        method: ``DIAL`` or ``ACCEPT``.
        token: The decoded token.
        remote: The TCP peer address (None if unknown).
        observed: The address reported as ``Rdv-Observed-Addr`` (None: omitted).
        self_addrs: The client's ``Rdv-Self-Addrs``.
        headers: Every request header in order (for per-pair auth, e.g. Authorization).
    """

    method: Method
    token: str
    remote: Addr | None
    observed: Addr | None
    self_addrs: tuple[Addr, ...]
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def header(self, name: str) -> str | None:
        """The first value of a request header (case-insensitive), or None."""
        lower = name.lower()
        for key, value in self.headers:
            if key.lower() == lower:
                return value
        return None

    @property
    def label(self) -> str:
        """The address to show for this peer: observed, else TCP peer, else ``?``."""
        addr = self.observed or self.remote
        return "?" if addr is None else str(addr)


class PairHandler:
    """Hooks around requests and pairs. Subclass and override what you need.

    ``on_join`` and ``on_match`` may raise :class:`Reject`; ``on_match`` may also be a
    coroutine (for an auth lookup): the ``101`` responses wait for it. Hooks run on the
    event loop: keep them quick.
    """

    def on_join(self, peer: PeerInfo) -> None:
        """A valid request arrived, before it enters the lobby. Raise Reject to refuse it."""

    def on_match(
        self, pair_id: int, dialer: PeerInfo, accepter: PeerInfo
    ) -> Awaitable[None] | None:
        """Both peers are present, before the ``101``s. Raise Reject to refuse the pair."""
        return None

    def on_relay(self, pair_id: int) -> None:
        """The dialer picked the relay; raise Reject (or call nothing) to allow it."""

    def on_end(self, stats: PairStats, reason: str) -> None:
        """A pair ended (p2p, relay finished, rejected, shut down)."""


# ----- how the core calls the hooks: an application's bug refuses, it never crashes the core


def call_on_join(handler: PairHandler | None, peer: PeerInfo) -> Reject | None:
    """Ask ``on_join``: None admits the request, a :class:`Reject` refuses it."""
    if handler is None:
        return None
    try:
        handler.on_join(peer)
    except Reject as exc:
        return exc
    except Exception:
        log.exception("pair handler on_join failed")
        return Reject(500, INTERNAL_ERROR)
    return None


def call_on_match(
    handler: PairHandler | None, pair_id: int, dialer: PeerInfo, accepter: PeerInfo
) -> Reject | Awaitable[None] | None:
    """Ask ``on_match``: None allows the pair, a :class:`Reject` refuses it, an awaitable
    decides later (:func:`match_decision` reads its outcome)."""
    if handler is None:
        return None
    try:
        pending = handler.on_match(pair_id, dialer, accepter)
    except Reject as exc:
        return exc
    except Exception:
        log.exception("pair handler on_match failed")
        return Reject(500, INTERNAL_ERROR)
    if pending is not None and inspect.isawaitable(pending):
        return pending
    return None


def match_decision(task: asyncio.Future[None]) -> Reject | None:
    """What a finished (not cancelled) async ``on_match`` decided."""
    exc = task.exception()
    if isinstance(exc, Reject):
        return exc
    if exc is not None:
        log.error("pair handler failed", exc_info=exc)
        return Reject(500, INTERNAL_ERROR)
    return None


def call_on_end(handler: PairHandler | None, stats: PairStats, reason: str) -> None:
    """Tell ``on_end``; a failing hook is logged (the pair is over anyway)."""
    if handler is None:
        return
    try:
        handler.on_end(stats, reason)
    except Exception:
        log.exception("pair handler on_end failed")
