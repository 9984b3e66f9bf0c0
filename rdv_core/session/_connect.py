"""Open a session through an rdv server: code -> token -> conn -> encrypted session.

Also says in words which path the conn took and why (:func:`describe_path`), from the
race events the client recorded.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal

from rdv_core.client._client import Client
from rdv_core.client._conn import Conn
from rdv_core.errors import ServerRejectedError
from rdv_core.events import (
    AttemptStarted,
    CandidateFailed,
    CandidateSkipped,
    DialStarted,
    Event,
    EventCallback,
    HandshakeFailed,
    HandshakeOk,
    InboundAccepted,
    Picked,
    ServerConnected,
    ServerResponded,
    Upgraded,
)
from rdv_core.session._burned import BurnedCodes
from rdv_core.session._codes import Code, CodeError, generate_code, parse_code
from rdv_core.session._errors import CodeMismatch, SessionError
from rdv_core.session._incoming import OfferCallback
from rdv_core.session._session import Session

log = logging.getLogger("rdv.session")

Role = Literal["send", "receive", "dial", "accept"]

#: How often a lobby conn replaced by another one (409) is tried again with the same
#: code. Safe: no key exchange happened, so nobody got a guess at the secret.
MAX_REPLACED_RETRIES = 3
#: The pause before each such retry, and before each fresh code after the first. A 409
#: says a newer request holds our slot (docs/PROTOCOL.md section 5); coming back at once
#: evicts it, and two peers of the same method (or a server that answers 409 to all)
#: then trade the slot back and forth at network speed. 0.5 s keeps the promise of
#: section 18 that no connect follows the previous one within 0.5 s.
RETRY_PAUSE_S = 0.5
#: How many fresh codes a sender with a generated code tries before giving up.
MAX_FRESH_CODES = 3
#: A generated code is shown only after our request waited this long in the lobby
#: (at least; more on a slow server) without meeting anyone: nobody else knows the
#: code yet, so whoever meets us before is squatting the nameplate.
QUIET_S = 0.25

USED_UP = (
    "if nobody mistyped it, someone on the server may be interfering; this code is now used "
    "up (another try would give a guesser another guess): start both sides with a fresh code"
)
INTERFERENCE = (
    "someone else may be using this nameplate on the server (a typo on the other side, "
    "another pair with the same nameplate, or interference)"
)
#: Each role's command, and the one the other side must run.
_COMMANDS: dict[str, tuple[str, str]] = {
    "send": ("rdv send", "rdv receive"),
    "receive": ("rdv receive", "rdv send"),
    "dial": ("rdv dial", "rdv accept"),
    "accept": ("rdv accept", "rdv dial"),
}


def replaced_hint(role: Role) -> str:
    """Why our lobby conn was replaced (409), for ``role``'s user.

    The server replaces a waiting request only with a newer one of the same method
    (docs/PROTOCOL.md section 5): both sides started as ``rdv send`` is the common
    cause, and the old words (a typo, another pair, interference) never named it.
    """
    ours, theirs = _COMMANDS[role]
    return (
        f"another {ours} is waiting with this nameplate: if the other side ran {ours} too, "
        f"it must run {theirs} instead (else: another pair with the same nameplate, or "
        "interference)"
    )


async def connect_session(
    server_url: str,
    code: str | None,
    role: Role,
    *,
    client: Client | None = None,
    on_event: EventCallback | None = None,
    on_offer: OfferCallback | None = None,
    download_dir: Path | None = None,
    chunk_size: int | None = None,
    on_code: Callable[[str], None] | None = None,
    on_notice: Callable[[str], None] | None = None,
    burned: BurnedCodes | None = None,
    batched_events: bool = False,
) -> Session:
    """Meet the peer holding the same code and start an encrypted session.

    The sender dials and the receiver accepts (``dial``/``accept`` may be given
    directly); only the code's nameplate reaches the server, as the rdv token.

    Interference (docs/PROTOCOL.md section 12.1): a lobby conn replaced by another one
    with the same nameplate (409) is tried again with the same code, which is safe (no
    key exchange happened). A failed key confirmation burns the code: it is never
    tried again (``burned`` remembers it across runs). With ``code=None`` (dialers
    only) the session makes its own code: it enters the lobby first and shows the code
    (``on_code``) only once nobody met it there, so a squatted nameplate is swapped for
    a fresh code before anyone saw it; after a code mismatch it starts over with a
    fresh code, shown again through ``on_code``.

    Args:
        server_url: ``http://`` or ``https://`` rdv server.
        code: The shared code, e.g. ``482913-tulip-orbit``; None: make one (dialers).
        role: ``send``/``dial`` on one side, ``receive``/``accept`` on the other.
        client: The rdv client (spaces, picker, timeout); its ``on_event`` sees the race.
            Default: ``Client(fast_start=True)``.
        on_event: Receives the session's events.
        on_offer: Decides about incoming offers (see :class:`Session`).
        download_dir: Where received files go (None: offers are declined).
        chunk_size: File bytes per data frame (default: the session's).
        on_code: Called with each code to give the other side: a given ``code`` once it
            passed its checks, a made one once it waited alone in the lobby.
        on_notice: Told, in words, about retries and suspected interference.
        burned: Codes never to use again; a failed key confirmation adds to it.
        batched_events: ``on_event`` takes events of many files at once (see
            :class:`Session`).

    Raises:
        CodeError: the code is malformed or burned (before any network traffic).
        rdv_core.errors.RdvError: the rendezvous failed (server, race, timeout).
        SessionError: the key exchange failed; ``CodeMismatch`` for a wrong code.
    """
    client = client or Client(fast_start=True)  # docs/PROTOCOL.md section 16
    is_dialer = role in ("send", "dial")
    notice = on_notice or (lambda text: log.warning("%s", text))
    extra = {} if chunk_size is None else {"chunk_size": chunk_size}

    async def start(conn: Conn, parsed: Code) -> Session:
        session = Session(
            conn.reader,
            conn.writer,
            parsed,
            is_dialer=is_dialer,
            on_event=on_event,
            on_offer=on_offer,
            download_dir=download_dir,
            is_relay=conn.is_relay,
            peer_addr=str(conn.remote_addr),
            batched_events=batched_events,
            **extra,  # type: ignore[arg-type]
        )
        session.conn = conn
        try:
            await session.start()
        except CodeMismatch:
            if burned is not None:
                burned.add(parsed)
            raise
        finally:
            if session.closed:
                await conn.close()
        return session

    if code is not None:
        parsed = parse_code(code)
        if burned is not None and parsed in burned:
            raise CodeError(
                "this code failed key confirmation before and must not be used again "
                "(each try gives whoever interfered another guess): use a fresh code"
            )
        if on_code is not None:
            on_code(code)
        conn = await _meet(client, server_url, parsed, role, notice)
        try:
            return await start(conn, parsed)
        except CodeMismatch:
            raise CodeMismatch(USED_UP) from None
    if not is_dialer:
        raise ValueError("only the dialing side can make its own code")
    for fresh in range(MAX_FRESH_CODES):
        if fresh:
            await asyncio.sleep(RETRY_PAUSE_S)
        parsed = parse_code(generate_code())
        found = await _meet_fresh(client, server_url, parsed, notice, on_code)
        if found is None:
            continue
        try:
            return await start(found, parsed)
        except CodeMismatch:
            notice(f"code mismatch: {INTERFERENCE}; that code is used up, here is a fresh one")
    raise SessionError(
        f"gave up after {MAX_FRESH_CODES} codes: someone keeps interfering with nameplates "
        "on this server (try another server)"
    )


async def _meet(
    client: Client, url: str, parsed: Code, role: Role, notice: Callable[[str], None]
) -> Conn:
    """Dial or accept ``parsed``'s token; a 409 (replaced) is tried again, a few times
    (each after ``RETRY_PAUSE_S``)."""
    hint = replaced_hint(role)
    for attempt in range(MAX_REPLACED_RETRIES + 1):
        try:
            if role in ("send", "dial"):
                return await client.dial(url, parsed.token)
            return await client.accept(url, parsed.token)
        except ServerRejectedError as exc:
            if exc.status != 409 or attempt == MAX_REPLACED_RETRIES:
                if exc.status == 409:
                    raise ServerRejectedError(
                        exc.status, exc.reason, f"{exc.body.strip()}: {hint}"
                    ) from None
                raise
            notice(f"the server replaced our lobby conn (409): {hint}; trying again")
            await asyncio.sleep(RETRY_PAUSE_S)
    raise AssertionError("unreachable: the loop returns or raises")


async def _meet_fresh(
    client: Client,
    url: str,
    parsed: Code,
    notice: Callable[[str], None],
    on_code: Callable[[str], None] | None,
) -> Conn | None:
    """Dial a code nobody has seen yet; show it once we wait alone in the lobby.

    Returns None when someone met us before the code was shown (a squatter: the conn
    is dropped before any key exchange) or replaced our lobby conn.
    """
    connected = asyncio.Event()
    responded = asyncio.Event()
    connect_s = [0.0]
    outer = client.on_event

    def watch(event: Event) -> None:
        if isinstance(event, ServerConnected):
            connect_s[0] = event.connect_s
            connected.set()
        elif isinstance(event, ServerResponded):
            responded.set()
        if outer is not None:
            outer(event)

    watched = copy.copy(client)
    watched.on_event = watch
    task = asyncio.create_task(watched.dial(url, parsed.token))
    try:
        await _first(task, connected.wait())
        if not task.done():
            # Our request is on its way: a peer already waiting answers within a few
            # round trips (the connect took about one and a half).
            await _first(task, responded.wait(), within=max(QUIET_S, 4 * connect_s[0]))
    except BaseException:
        await _drop(task)
        raise
    if responded.is_set() or (task.done() and task.exception() is None):
        await _drop(task)  # no key exchange happened: the secret was not exposed
        notice(
            f"nameplate {parsed.nameplate} was taken on the server before the code was "
            "shown (someone may be squatting nameplates): trying a fresh code"
        )
        return None
    if task.done():
        exc = task.exception()
        if isinstance(exc, ServerRejectedError) and exc.status == 409:
            notice(f"the server replaced our lobby conn (409): {INTERFERENCE}")
            return None
        return task.result()  # raises the attempt's error
    if on_code is not None:
        on_code(str(parsed))
    return await task


async def _first(
    task: asyncio.Task[Conn], other: Awaitable[object], within: float | None = None
) -> None:
    """Wait until ``task`` ends or ``other`` completes (or ``within`` seconds pass)."""
    waiter = asyncio.ensure_future(other)
    try:
        await asyncio.wait({task, waiter}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()


async def _drop(task: asyncio.Task[Conn]) -> None:
    """Cancel a dial and close the conn it may have produced all the same."""
    task.cancel()
    await asyncio.wait({task})  # never raises the task's error (nor swallows our cancel)
    if not task.cancelled() and task.exception() is None:
        await task.result().close()


def describe_path(conn: Conn) -> str:
    """Which path the conn took and why, in one line.

    Examples: ``p2p: 127.0.0.1:40123 (loopback4, self) after 0.01 s`` or
    ``relay: no direct candidate answered within wait-for-p2p 1s (#2 refused, #3 timeout)``.
    """
    picked = next((e for e in conn.events if isinstance(e, Picked)), None)
    if conn.upgrader is not None:  # fast start (docs/PROTOCOL.md section 16)
        up = next((e for e in reversed(conn.events) if isinstance(e, Upgraded)), None)
        if not conn.is_relay and up is not None:
            return f"p2p: {up.addr} after {up.after_s:.2f} s on the relay (fast start)"
        return "relay, fast start: moves to p2p when a direct path opens"
    if not conn.is_relay:
        if picked is None:
            return f"p2p: {conn.remote_addr}"
        c = picked.candidate
        return f"p2p: {c.addr} ({c.space}, {c.origin}) after {picked.elapsed_s:.2f} s"
    started = next((e for e in conn.events if isinstance(e, AttemptStarted)), None)
    if started is not None and started.spaces == "none":
        return "relay: direct connections are disabled (address spaces: none)"
    if conn.meta.method != "DIAL":
        return "relay: the dialing peer picked the relay"
    tried = [e for e in conn.events if isinstance(e, DialStarted | InboundAccepted)]
    if not tried:
        skipped = [e for e in conn.events if isinstance(e, CandidateSkipped)]
        if skipped:
            why = Counter(e.reason for e in skipped).most_common(1)[0][0]
            return f"relay: no direct candidate to try ({len(skipped)} skipped: {why})"
        return "relay: the peer reported no direct candidate"
    if any(isinstance(e, HandshakeOk) for e in conn.events):
        return "relay: picked before a direct connection was ready"
    failures = [e for e in conn.events if isinstance(e, CandidateFailed | HandshakeFailed)]
    picker = started.picker if started is not None else "the picker"
    detail = ", ".join(f"#{e.candidate.id} {e.reason}" for e in failures[:4])
    within = f"within {picker}" if picker else ""
    return f"relay: no direct candidate answered {within}" + (f" ({detail})" if detail else "")
