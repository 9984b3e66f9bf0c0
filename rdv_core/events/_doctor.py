"""Events of the two-sided diagnosis (docs/PROTOCOL.md section 15.5): reports and the verdict.

They carry plain JSON (a doctor report's documented form), so that the events JSONL of
``rdv send --explain`` holds the whole explanation next to the race it explains.
"""

from __future__ import annotations

from rdv_core.events._base import Event, event


@event
class DoctorReported(Event):
    """A doctor report: ours (``side`` ``self``) or the peer's (``peer``).

    ``report`` is the report's JSON form (docs/PROTOCOL.md section 15.3) as compact JSON text.
    """

    side: str
    report: str


@event
class VerdictReached(Event):
    """The merged explanation of a race, after both sides' reports and events were exchanged.

    ``expect``/``winner``/``why`` are the prediction (empty when a report was missing),
    ``outcome`` what happened (``direct``/``relay``), ``agrees`` whether the two match,
    ``sentence`` the reason in one sentence, ``ours``/``theirs`` one line per candidate.
    """

    expect: str
    winner: str
    why: str
    outcome: str
    chosen: str
    agrees: bool | None
    sentence: str
    ours: tuple[str, ...]
    theirs: tuple[str, ...]
