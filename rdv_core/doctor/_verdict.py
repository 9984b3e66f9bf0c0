"""After a race: the prediction, what each side's candidates did, and the reason in one sentence.

docs/PROTOCOL.md section 15.5. Each side folds its own race events into one line per
candidate (``203.0.113.12:41921 public4: refused x12, cancelled``); with the peer's events
(exchanged over the session) both halves of the story sit side by side, and the sentence says
whether the race went as predicted, and if not, what the candidates ran into.

With fast start (section 16) the race picks the relay at once and the direct path may come
later: the verdict then tells the path the stream ended on, and when it switched
(:func:`fast_start_line`), from the upgrade's events of either side.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rdv_core.doctor._predict import Prediction
from rdv_core.doctor._text import wrap
from rdv_core.events import (
    CandidateConnected,
    CandidateFailed,
    CandidateSkipped,
    DialRetried,
    Discarded,
    Event,
    FastStartNegotiated,
    HandshakeFailed,
    HandshakeOk,
    InboundAccepted,
    Picked,
    RelayRetired,
    Upgraded,
    UpgradeFailed,
    VerdictReached,
)
from rdv_core.events._upgrade import NO_CANDIDATE


@dataclass(slots=True)
class _Story:
    label: str
    retries: Counter[str]
    end: str = "dialing"
    reached: bool = False


def candidate_lines(events: Iterable[Event]) -> tuple[list[str], str, str]:
    """One line per direct candidate, and the outcome (``direct``/``relay``/``failed``) and
    chosen address of these events."""
    stories: dict[int, _Story] = {}
    outcome, chosen = "failed", ""
    for ev in events:
        candidate = getattr(ev, "candidate", None)
        if candidate is None:
            continue
        if isinstance(ev, Picked):
            outcome = "relay" if ev.is_relay else "direct"
            chosen = candidate.addr
        if candidate.space == "relay":
            continue
        story = stories.get(candidate.id)
        if story is None:
            label = f"{candidate.addr} {candidate.space}" + (
                " inbound" if candidate.origin == "inbound" else ""
            )
            story = stories[candidate.id] = _Story(label, Counter())
        if isinstance(ev, DialRetried):
            story.retries[ev.reason] += 1
        elif isinstance(ev, CandidateSkipped):
            story.end = f"skipped ({ev.reason})"
        elif isinstance(ev, CandidateFailed):
            story.end = f"{ev.reason}" + (f" (errno {ev.errno})" if ev.errno else "")
        elif isinstance(ev, CandidateConnected | InboundAccepted | HandshakeOk):
            story.reached = True
            story.end = "connected"
        elif isinstance(ev, HandshakeFailed):
            # TCP came up but the peer's line was wrong or never came: the verdict said
            # "connected" where the race table said "failed: misdial".
            story.end = f"connected, then {ev.reason}"
        elif isinstance(ev, Picked):
            story.end = "picked"
        elif isinstance(ev, Discarded):
            story.end = f"discarded ({ev.reason})" if story.reached else f"{ev.reason}"
    lines = []
    for story in stories.values():
        retries = ", ".join(f"{reason} x{n}" for reason, n in story.retries.most_common())
        lines.append(f"{story.label}: {retries + ', ' if retries else ''}{story.end}")
    return lines, outcome, chosen


@dataclass(frozen=True, slots=True)
class Switch:
    """What fast start did: ``addr`` and ``after_s`` are set when the stream moved to a
    direct path and the relay was retired."""

    addr: str = ""
    after_s: float = 0.0
    attempt: int = 0
    failure: str = ""  # the last UpgradeFailed reason, when it stayed on the relay


def fast_start(events: Iterable[Event]) -> Switch | None:
    """The switch of these events, or None when fast start was not confirmed here."""
    confirmed, upgraded, retired, failure = False, None, False, ""
    for ev in events:
        if isinstance(ev, FastStartNegotiated) and ev.confirmed:
            confirmed = True
        elif isinstance(ev, Upgraded):
            upgraded = ev
        elif isinstance(ev, RelayRetired):
            retired = True
        elif isinstance(ev, UpgradeFailed):
            failure = ev.reason
            if not retired:
                upgraded = None  # that direct path died before it was proven
    if not confirmed:
        return None
    if upgraded is not None and retired:
        return Switch(upgraded.addr, upgraded.after_s, upgraded.attempt)
    return Switch(failure=failure)


def _tried_nothing(switch: Switch | None, lines: Sequence[str]) -> bool:
    """Did this side dial nothing: fast start had no candidate, or (classic) every
    candidate was skipped because its address space is not enabled."""
    if switch is not None:
        return switch.failure == NO_CANDIDATE
    return bool(lines) and all(": skipped (address space " in line for line in lines)


def fast_start_line(switch: Switch) -> str:
    """One line for the verdict: where a fast-start stream went, and when."""
    if switch.addr:
        return (
            f"fast start: relay from the first byte, switched to p2p {switch.addr} after "
            f"{switch.after_s * 1000:.0f} ms (attempt {switch.attempt})"
        )
    why = f": {switch.failure}" if switch.failure else ""
    return f"fast start: relay from the first byte, no direct path opened{why}"


def _space_of(line: str) -> str:
    """The space of a candidate line (``203.0.113.12:41921 public4: ...`` -> ``public4``)."""
    head = line.split(": ", 1)[0].split()
    return head[1] if len(head) > 1 else ""


def _telling(lines: Sequence[str], winner: str) -> list[str]:
    """The lines the outcome turned on: the predicted winner's space, else the public ones.

    A private address of the peer's other LAN is unreachable in every race between two
    networks (errno 101): it says nothing of why the public candidates failed, and named
    first it hid them ("this time an address was unreachable").
    """
    for wanted in ({winner}, {"public4", "public6"}):
        chosen = [line for line in lines if _space_of(line) in wanted]
        if chosen:
            return chosen
    return list(lines)


def _trouble(lines: Sequence[str], winner: str = "", fast: bool = False) -> str:
    """The most telling failure among candidate lines, in words."""
    lines = _telling([line for line in lines if not line.startswith("fast start:")], winner)
    text = " ".join(lines)
    space = {_space_of(line) for line in lines}
    which = f"the {space.pop()} " if len(space) == 1 else ""
    # With fast start the relay was picked at once: what ended the SYNs was the end of
    # the upgrade's attempts (docs/PROTOCOL.md section 16), not the pick.
    until = "before fast start's attempts ended" if fast else "before the relay was picked"
    unreachable = "an address was unreachable"
    for word, meaning in (
        ("reset", f"{which}SYNs were reset"),
        ("refused", f"{which}SYNs were refused (reset by a router or a firewall)"),
        ("timeout", f"{which}SYNs got no answer"),
        ("unreachable", f"{which}addresses were unreachable" if which else unreachable),
        ("cancelled", f"{which}SYNs got no answer {until}"),
    ):
        if word in text:
            return meaning
    return "no direct conn came up in time"


def _advice_for(trouble: str, *, fast: bool) -> str:
    """What to change when the prediction had no advice (it expected direct) and the race
    ended on the relay: read from what the candidates ran into (:func:`_trouble`)."""
    if "before the relay was picked" in trouble:
        # A path slower than the race's wait (the lab's delay25 with --wait-p2p 50ms):
        # fast start keeps the relay and goes on trying (docs/PROTOCOL.md section 16).
        return (
            "give the race longer (--wait-p2p 3s), or run both sides with --fast-start, "
            "which starts on the relay and keeps trying"
        )
    if "got no answer" in trouble:
        return (
            "a firewall between the two drops every SYN: let TCP from the peer's address in "
            "(rdv doctor on each side tells which)"
        )
    if "refused" in trouble or "reset" in trouble:
        return (
            "a router or firewall answers the SYNs with a reset: have it drop them instead, "
            "or let TCP from the peer's address in"
        )
    if "unreachable" in trouble:
        return "leave out the address space that has no route (--spaces)"
    return "" if fast else "give the race longer (--wait-p2p 3s)"


def verdict(
    prediction: Prediction | None,
    ours: Iterable[Event],
    theirs: Iterable[Event] | None,
    t: float = 0.0,
    *,
    missing: str = "the peer sent no doctor report",
) -> VerdictReached:
    """Merge the prediction and both sides' race events into one explanation (``missing``:
    why there is no prediction, when there is none)."""
    ours, theirs = list(ours), list(theirs or ())
    our_lines, outcome, chosen = candidate_lines(ours)
    their_lines, their_outcome, _ = candidate_lines(theirs)
    if outcome == "failed" and their_outcome != "failed":
        outcome = their_outcome
    path = f"direct via {chosen}" if outcome == "direct" else outcome
    # Either side's events may have seen the switch (ours may stop before it did).
    our_switch, their_switch = fast_start(ours), fast_start(theirs)
    seen = [x for x in (our_switch, their_switch) if x is not None]
    switch = next((x for x in seen if x.addr), seen[0] if seen else None)
    # A side that tried nothing decided the relay (section 16.5: the accepter's attempts are
    # the dialer's; in a classic race, every candidate skipped for its space). The other
    # side's verdict said "no direct conn came up in time", or "SYNs were refused (reset by
    # a router)" for the peer's closed port, for a peer run with --spaces none.
    idle = ""
    if switch is None or not switch.addr:
        if _tried_nothing(our_switch, our_lines):
            idle = "we had no direct candidate to try (no peer address is in our --spaces)"
        elif _tried_nothing(their_switch, their_lines):
            idle = "the peer had no direct candidate to try (none of ours is in its --spaces)"
            if their_switch is not None:
                their_lines.insert(0, fast_start_line(their_switch))
    if switch is not None and outcome != "failed":
        # Fast start picked the relay on purpose: the stream's path is where it ended.
        our_lines.insert(0, fast_start_line(switch))
        if switch.addr:
            outcome, chosen = "direct", switch.addr
            path = f"direct via {chosen} (after {switch.after_s * 1000:.0f} ms on the relay)"
        else:
            outcome, path = "relay", "relay (fast start found no direct path)"
    if prediction is None:
        sentence = f"{path.capitalize()}; no prediction ({missing})."
        return VerdictReached(
            t, "", "", "", outcome, chosen, None, sentence, tuple(our_lines), tuple(their_lines)
        )
    agrees = prediction.agrees_with(outcome)
    trouble = idle or _trouble(
        [*our_lines, *their_lines], prediction.winner, fast=switch is not None and not switch.addr
    )
    if prediction.expect == "possible":
        # "Either way", not "timing-dependent": a possible prediction is also a finding not
        # measured, or a sequential NAT that goes direct only with --predict-ports (the
        # lab's sequential-a relayed every time and the verdict blamed timing).
        sentence = f"{path.capitalize()}; it could go either way: {prediction.reason}" + (
            "." if outcome == "direct" else f"; this time {trouble}."
        )
    elif agrees:
        sentence = f"{path.capitalize()}, as predicted: {prediction.reason}."
    elif outcome == "direct":
        sentence = (
            f"Direct via {chosen}, against the prediction ({prediction.reason}): the doctor's "
            "view of one network was incomplete."
        )
    else:
        sentence = (
            f"{path.capitalize()}, though direct was expected ({prediction.reason}): {trouble}."
        )
    won = next((_space_of(x) for x in our_lines if x.startswith(f"{chosen} ")), "")
    if outcome == "direct" and won and prediction.winner not in ("relay", won):
        # dualstack-v4slow with --explain against an IPv4 URL: "as predicted: both NATs keep
        # the port ..." for a conn over IPv6 that the prediction never looked at.
        sentence += f" The {won} candidate won, not the predicted {prediction.winner}."
    # What the user can change, in the sentence every front end shows (the CLI, the events'
    # VerdictReached, the app's race screen): a verdict that only said why left them to
    # work out what to do.
    advice = "run both sides with address spaces in common (--spaces)" if idle else ""
    advice = advice or prediction.advice or _advice_for(trouble, fast=switch is not None)
    if outcome != "direct" and advice:
        sentence += f" To go direct: {advice}."
    return VerdictReached(
        t,
        prediction.expect,
        prediction.winner,
        prediction.reason,
        outcome,
        chosen,
        agrees,
        sentence,
        tuple(our_lines),
        tuple(their_lines),
    )


def render_verdict(v: VerdictReached, width: int | None = None) -> str:
    """The verdict as text for a terminal; ``width``: wrapped to it, each line's rest under
    its own text (None: one line each)."""
    lines = []
    if v.expect:
        lines += wrap(f"{v.expect} ({v.winner}): {v.why}", width, "predicted: ", " " * 11)
    lines += wrap(v.sentence, width, "verdict: ", " " * 9)
    for title, rows in (("our candidates", v.ours), ("the peer's candidates", v.theirs)):
        if rows:
            lines.append(f"  {title}:")
            for row in _folded(rows):
                lines += wrap(row, width, "    ", " " * 6)
    return "\n".join(lines)


#: Ports a folded line names before it says how many more.
FOLDED_PORTS_SHOWN = 3


def _folded(rows: Sequence[str]) -> list[str]:
    """Candidate lines that differ only by port, as one: fast start's attempts each dial
    the same addresses from new ports, and five attempts listed 20 lines of the same
    story (``10.0.1.2:40921 private4: unreachable``, ``10.0.1.2:37831 private4: ...``)."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    order: list[tuple[str, str, str] | str] = []
    for row in rows:
        label, sep, story = row.partition(": ")
        addr, _, rest = label.partition(" ")
        ip, colon, port = addr.rpartition(":")
        if not sep or not colon or not port.isdigit():
            order.append(row)  # not a candidate line (the fast start line): as it is
            continue
        key = (ip, rest, story)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(port)
    out = []
    for item in order:
        if isinstance(item, str):
            out.append(item)
            continue
        ip, rest, story = item
        ports = groups[item]
        if len(ports) == 1:
            out.append(f"{ip}:{ports[0]} {rest}: {story}")
            continue
        shown = ", ".join(ports[:FOLDED_PORTS_SHOWN])
        more = f", +{len(ports) - FOLDED_PORTS_SHOWN}" if len(ports) > FOLDED_PORTS_SHOWN else ""
        out.append(f"{ip} {rest}, {len(ports)} ports ({shown}{more}): {story}")
    return out
