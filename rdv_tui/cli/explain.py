"""``--explain`` for ``rdv send``/``rdv receive``: the doctor before, the verdict after.

Before the attempt, the doctor measures our network against the server (docs/PROTOCOL.md
section 15.2); once the session is up, both peers exchange their reports and race events over
it (section 15.5), and each side prints the prediction, both sides' candidates and the reason
in one sentence. The events JSONL (``--events``) gets ``DoctorReported`` (ours and the peer's)
and ``VerdictReached``. Imports only the standard library at module level.
"""

from __future__ import annotations

import argparse
import json
import shutil
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

#: How long we wait for the peer's diagnosis once ours is sent, past the time the peer may
#: spend waiting for its own quick attempts (:data:`UPGRADE_WAIT_S`).
PEER_WAIT_S = 5.0
#: How long we wait for fast start's quick attempts (docs/PROTOCOL.md section 16.5), so
#: that the verdict tells the path the stream ended on, not the relay it started on.
UPGRADE_WAIT_S = 10.0


async def settled_events(conn: Any, session: Any = None) -> list[Any]:
    """``conn``'s events once a fast-start upgrade settled (or after :data:`UPGRADE_WAIT_S`).

    The accepter's attempts are the dialer's (each starts on its ``SYNC``, section 16.5):
    once the dialer's diagnosis arrived, the dialer's quick attempts are over, and so are
    ours. Without that, an accepter whose dialer had no direct candidate (``--spaces none``)
    tried nothing and waited the whole 10 s for attempts that never came, while the dialer
    gave up on its report after 5 s: the sender said "the peer sent no doctor report", the
    receiver "no verdict: the session is closed".
    """
    import asyncio
    import contextlib

    upgrader = getattr(conn, "upgrader", None)
    if upgrader is not None:
        waits = [asyncio.ensure_future(upgrader.quick_done.wait())]
        if session is not None and not upgrader.is_dialer and session.diagnosis.peer_supports:
            waits.append(asyncio.ensure_future(session.diagnosis.received(UPGRADE_WAIT_S)))
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(UPGRADE_WAIT_S):
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
    return list(conn.events) if conn is not None else []


async def peer_diagnosis(session: Any, sent: bool, started: float) -> tuple[Any, str]:
    """The peer's diagnosis (None if none came), and why there is no prediction without it.

    The peer sends its own once its quick attempts settled, up to :data:`UPGRADE_WAIT_S`
    after the session came up (``started``, the loop's clock), so we wait that long and
    :data:`PEER_WAIT_S` more; 5 s from the end of our own, shorter, wait missed it.
    """
    import asyncio

    if not sent:
        return None, "the peer's rdv does not exchange diagnoses"
    loop = asyncio.get_running_loop()
    wait = max(PEER_WAIT_S, started + UPGRADE_WAIT_S + PEER_WAIT_S - loop.time())
    peer = await session.diagnosis.received(wait)
    if peer is None:
        return None, f"the peer's diagnosis did not come within {wait:.0f} s"
    return peer, "the peer sent no doctor report"


def add_explain_argument(parser: argparse.ArgumentParser) -> None:
    """``--explain``."""
    parser.add_argument(
        "--explain",
        action="store_true",
        help="check the network first (rdv doctor), then print why the conn went direct or "
        "through the relay, with the peer's side of the race (both sides need --explain "
        "or the app)",
    )
    parser.add_argument(
        "--predict-ports",
        action="store_true",
        help="run rdv doctor first; behind a NAT that allocates ports sequentially, also "
        "send the public ports our next conns will get, so that the peer can aim at them",
    )


def predict_ports(client: Any, report: Any) -> None:
    """Give ``client`` the predicted self addrs of ``report`` (docs/PROTOCOL.md 14.6)."""
    from rdv_core.doctor import predicted_addrs

    if report is not None:
        client.predicted_addrs = tuple(predicted_addrs(report))


async def doctor_before(
    server: str,
    say: Callable[[str], None],
    proxy: str | None = None,
    interfaces: Sequence[str] = (),
    sources: Sequence[str] = (),
) -> Any:
    """Our doctor report against ``server`` through ``proxy`` as the race would go, from the
    uplinks ``--interface``/``--source`` leave it (docs/PROTOCOL.md 15.8; without them
    ``rdv send --interface eth0 --explain`` measured every uplink and could predict "via
    eth1", a path the race would never dial). None if it cannot run."""
    from rdv_core.doctor import run_doctor, summary

    say("checking the network (rdv doctor)…")
    try:
        report = await run_doctor([server], proxy=proxy, interfaces=interfaces, sources=sources)
    except (OSError, ValueError) as exc:
        say(f"rdv doctor failed: {exc}")
        return None
    wrapped = textwrap.wrap(
        summary(report), _columns(), initial_indent="doctor: ", subsequent_indent=" " * 8
    )
    for line in wrapped:
        say(line)
    return report


async def doctor_before_args(server: str, say: Callable[[str], None], args: Any) -> Any:
    """:func:`doctor_before` with the race options of ``args`` (``--proxy``,
    ``--interface``, ``--source``): the doctor measures the way the race will go."""
    return await doctor_before(
        server,
        say,
        getattr(args, "proxy", None),
        getattr(args, "interface", ()),
        getattr(args, "source", ()),
    )


def _columns() -> int:
    """The terminal's width (80 into a pipe), never so narrow that a line cannot start."""
    return max(shutil.get_terminal_size().columns, 60)


async def explain_after(
    session: Any,
    report: Any,
    emit: Callable[[Any], None],
    say: Callable[[str], None],
    spaces: Any = None,
) -> Any:
    """Exchange reports and events over ``session``; print and emit the verdict."""
    import asyncio

    from rdv_core.doctor import predict, render_verdict, verdict
    from rdv_core.events import DoctorReported
    from rdv_core.session import SessionError
    from rdv_core.wire import AddrSpace

    started = asyncio.get_running_loop().time()
    events = await settled_events(session.conn, session)
    if report is not None:
        emit(DoctorReported(0.0, "self", json.dumps(report.to_json(), separators=(",", ":"))))
    try:
        sent = session.diagnosis.send(report, events)
    except SessionError as exc:
        say(f"no verdict: {exc}")
        return None
    peer, missing = await peer_diagnosis(session, sent, started)
    if peer is not None and peer.report is not None:
        emit(DoctorReported(0.0, "peer", json.dumps(peer.report.to_json(), separators=(",", ":"))))
    prediction = None
    if report is None:
        missing = "our doctor did not run"
    elif peer is not None and peer.report is not None:
        prediction = predict(report, peer.report, spaces or AddrSpace.DEFAULT)
    result = verdict(prediction, events, peer.events if peer else None, missing=missing)
    emit(result)
    if not sent:
        say("the peer's rdv does not exchange diagnoses: only our side is known")
    # Line by line: every line is shown through the caller's escaping (it holds the peer's
    # words, which must not reach the terminal raw).
    for line in render_verdict(result, _columns()).splitlines():
        say(line)
    return result
