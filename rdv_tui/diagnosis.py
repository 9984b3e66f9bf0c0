"""The app's two-sided diagnosis: the doctor before the race, the verdict after the session.

The controller calls :func:`doctor_for` as an attempt starts (the Doctor screen's last
report is reused when it checked the same server) and :func:`explain_session` once the
session is up: both peers exchange reports and race events over the session
(docs/PROTOCOL.md section 15.5), and the Race screen shows the prediction and the verdict.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rdv_core.client import Conn
from rdv_core.doctor import Report, predict, run_doctor, summary, verdict
from rdv_core.session import Session, SessionError
from rdv_core.wire import AddrSpace
from rdv_tui.widgets.wrapped_text import labelled

if TYPE_CHECKING:
    from rdv_tui.app import RdvApp

log = logging.getLogger("rdv.tui")


async def doctor_for(app: RdvApp, url: str, *, direct: bool = False) -> Report | None:
    """Our report against ``url`` (the Doctor screen's, or a fresh run), on the Race screen;
    ``direct``: not through the environment's proxy (the app's embedded server)."""
    screen = app.doctor_screen
    report = screen.report
    if report is None or [s.url for s in report.servers] != [url]:
        try:
            report = await run_doctor([url], trust_env=not direct)
        except (OSError, ValueError) as exc:
            log.info("doctor before the race: %s", exc)
            return None
        if screen.urls in ([], [url]):
            screen.urls = [url]
            screen.show_report(report)
    if not app.race_screen.diagnosis:
        app.race_screen.show_diagnosis(labelled("doctor: ", summary(report)))
    return report


async def explain_session(
    app: RdvApp, session: Session, report: Report | None, spaces: AddrSpace, conn: Conn
) -> None:
    """Exchange reports and ``conn``'s race events over ``session``; show the verdict."""
    import asyncio

    from rdv_tui.cli.explain import peer_diagnosis, settled_events

    started = asyncio.get_running_loop().time()
    events = await settled_events(conn, session)  # after a fast-start switch, if any
    try:
        sent = session.diagnosis.send(report, events)
    except SessionError:
        return
    peer, missing = await peer_diagnosis(session, sent, started)
    prediction = None
    if report is None:
        missing = "our doctor did not run"
    elif peer is not None and peer.report is not None:
        prediction = predict(report, peer.report, spaces)
    result = verdict(prediction, events, peer.events if peer is not None else None, missing=missing)
    if peer is not None:
        app.race_screen.merge_peer(list(peer.events))
    app.race_screen.show_verdict(result)
