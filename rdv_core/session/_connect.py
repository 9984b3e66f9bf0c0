"""Open a session through an rdv server: code -> token -> conn -> encrypted session.

Also says in words which path the conn took and why (:func:`describe_path`), from the
race events the client recorded.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Literal

from rdv_core.client._client import Client
from rdv_core.client._conn import Conn
from rdv_core.events import (
    AttemptStarted,
    CandidateFailed,
    CandidateSkipped,
    DialStarted,
    EventCallback,
    HandshakeFailed,
    HandshakeOk,
    InboundAccepted,
    Picked,
    Upgraded,
)
from rdv_core.session._codes import parse_code
from rdv_core.session._incoming import OfferCallback
from rdv_core.session._session import Session

log = logging.getLogger("rdv.session")

Role = Literal["send", "receive", "dial", "accept"]


async def connect_session(
    server_url: str,
    code: str,
    role: Role,
    *,
    client: Client | None = None,
    on_event: EventCallback | None = None,
    on_offer: OfferCallback | None = None,
    download_dir: Path | None = None,
    chunk_size: int | None = None,
) -> Session:
    """Meet the peer holding the same code and start an encrypted session.

    The sender dials and the receiver accepts (``dial``/``accept`` may be given
    directly); only the code's nameplate reaches the server, as the rdv token.

    Args:
        server_url: ``http://`` or ``https://`` rdv server.
        code: The shared code, e.g. ``7-tulip-orbit``.
        role: ``send``/``dial`` on one side, ``receive``/``accept`` on the other.
        client: The rdv client (spaces, picker, timeout); its ``on_event`` sees the race.
            Default: ``Client(fast_start=True)``.
        on_event: Receives the session's events.
        on_offer: Decides about incoming offers (see :class:`Session`).
        download_dir: Where received files go (None: offers are declined).
        chunk_size: File bytes per data frame (default: the session's).

    Raises:
        CodeError: the code is malformed (before any network traffic).
        rdv_core.errors.RdvError: the rendezvous failed (server, race, timeout).
        SessionError: the key exchange failed; ``CodeMismatch`` for a wrong code.
    """
    parsed = parse_code(code)
    client = client or Client(fast_start=True)  # docs/PROTOCOL.md section 14
    is_dialer = role in ("send", "dial")
    if is_dialer:
        conn = await client.dial(server_url, parsed.token)
    else:
        conn = await client.accept(server_url, parsed.token)
    log.info("rdv conn ready: %s", describe_path(conn))
    extra = {} if chunk_size is None else {"chunk_size": chunk_size}
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
        **extra,  # type: ignore[arg-type]
    )
    session.conn = conn
    try:
        await session.start()
    finally:
        if session.closed:
            await conn.close()
    return session


def describe_path(conn: Conn) -> str:
    """Which path the conn took and why, in one line.

    Examples: ``p2p: 127.0.0.1:40123 (loopback4, self) after 0.01 s`` or
    ``relay: no direct candidate answered within wait-for-p2p 1s (#2 refused, #3 timeout)``.
    """
    picked = next((e for e in conn.events if isinstance(e, Picked)), None)
    if conn.upgrader is not None:  # fast start (docs/PROTOCOL.md section 14)
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
