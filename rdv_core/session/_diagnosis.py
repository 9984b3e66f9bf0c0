"""The two-sided diagnosis over the session: each side sends its doctor report and race events.

docs/PROTOCOL.md section 15.5. The ``diagnosis`` frame (type 13) goes only to a peer whose
``hello`` announced the ``diagnosis`` feature (an older rdv would end the session on an
unknown frame type). Its body::

    {"v": 1, "report": <doctor report JSON (section 15.3)> | null,
     "events": [<race event JSON>, ...]}

A peer's diagnosis is advice, never a reason to end the session: a report that does not
read (:class:`~rdv_core.doctor.ReportError`) is dropped, and so is any event that does not.
A second diagnosis frame is a breach of 15.5 (sent once), though, and ends the session.
At most :data:`MAX_EVENTS` events travel; the encrypted session carries them, so the server
never sees either side's report or events, and neither carries the code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from rdv_core.doctor import Report, ReportError
from rdv_core.events import DialRetried, Event
from rdv_core.session import _frames as fr
from rdv_core.session._errors import FrameError, ProtocolViolation
from rdv_core.session._outbox import Outbox

log = logging.getLogger("rdv.session")

#: The hello feature that announces the diagnosis frame.
FEATURE: Final = "diagnosis"
DIAGNOSIS_VERSION: Final = 1
#: Race events sent at most (the frame must stay under the control-frame bound).
MAX_EVENTS: Final = 400


@dataclass(frozen=True, slots=True)
class PeerDiagnosis:
    """What the peer sent: its report (None when it had none) and its race events."""

    report: Report | None
    events: tuple[Event, ...]


def _body(report: Report | None, events: Sequence[Event], limit: int) -> dict[str, Any]:
    chosen = list(events)
    if len(chosen) > limit:
        # Retries are the bulk of a long race; every other event says more.
        chosen = [e for e in chosen if not isinstance(e, DialRetried)][-limit:]
    return {
        "v": DIAGNOSIS_VERSION,
        "report": None if report is None else report.to_json(),
        "events": [e.to_json() for e in chosen],
    }


def read_body(body: dict[str, Any]) -> PeerDiagnosis:
    """The peer's diagnosis from a frame body, dropping whatever does not read."""
    report: Report | None = None
    if body.get("v") != DIAGNOSIS_VERSION:
        return PeerDiagnosis(None, ())
    raw = body.get("report")
    if raw is not None:
        try:
            report = Report.from_json(raw)
        except ReportError as exc:
            log.info("the peer's doctor report does not read: %s", exc)
    events: list[Event] = []
    raw_events = body.get("events")
    if isinstance(raw_events, list):
        for item in raw_events[:MAX_EVENTS]:
            try:
                events.append(Event.from_json(item))
            except (ValueError, TypeError):
                continue
    return PeerDiagnosis(report, tuple(events))


class DiagnosisExchange:
    """Our half of the exchange and the peer's, once it arrives."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox
        self.peer_supports = False
        self._received: asyncio.Future[PeerDiagnosis] | None = None

    def _future(self) -> asyncio.Future[PeerDiagnosis]:
        if self._received is None:
            self._received = asyncio.get_running_loop().create_future()
        return self._received

    def send(self, report: Report | None, events: Sequence[Event]) -> bool:
        """Send our report and events; False (nothing sent) when the peer cannot read them.

        Raises:
            SessionError: the session is closed.
        """
        self._outbox.check_open()
        if not self.peer_supports:
            return False
        limit = MAX_EVENTS
        while True:
            try:
                self._outbox.write(fr.Diagnosis(_body(report, events, limit)))
                return True
            except FrameError:
                if limit < 10:
                    raise
                limit //= 2

    def on_frame(self, body: dict[str, Any]) -> None:
        """The peer's diagnosis frame arrived (the reader task calls this).

        Raises:
            ProtocolViolation: a second one (docs/PROTOCOL.md 15.5: sent once). Ignored,
                each extra frame still cost parsing up to 256 KiB of JSON, without end.
        """
        future = self._future()
        if future.done():
            raise ProtocolViolation(
                "the peer sent a second diagnosis frame (rdv sends one per session)"
            )
        future.set_result(read_body(body))

    async def received(self, wait_s: float) -> PeerDiagnosis | None:
        """The peer's diagnosis, or None if it sends none within ``wait_s`` seconds."""
        if not self.peer_supports:
            return None
        try:
            async with asyncio.timeout(wait_s):
                return await asyncio.shield(self._future())
        except TimeoutError:
            return None
