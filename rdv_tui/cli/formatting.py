"""How rdv writes sizes, durations and events as text: one place for the CLI and the app.

The headless commands, the rich progress view of ``rdv send``/``rdv receive`` and the
Textual widgets all format through these functions, so a byte count or a race event
reads the same everywhere. Where two callers used to render differently, the
difference is a parameter here and each caller keeps its output character for
character (the CLI tests and the app's snapshots pin it).

Standard library only at module level: the Textual widgets import this module, and so
does ``rdv serve``, which must never import textual or rich. ``rdv_core`` is imported
inside the functions that need it.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import re
import textwrap
from collections import Counter
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    from rdv_core.events import Event

# ----- sizes

ByteUnit = Literal["GiB", "TiB"]
_BYTE_UNITS: tuple[str, ...] = ("B", "KiB", "MiB", "GiB", "TiB")


def human_bytes(n: float, *, largest_unit: ByteUnit = "GiB") -> str:
    """``512 B``, ``1.5 MiB``: binary units, one decimal above bytes.

    Args:
        n: A size or a rate in bytes.
        largest_unit: The unit beyond which the number just grows (``2048.0 GiB``). The
            app and ``rdv serve`` stop at GiB; ``rdv send``/``rdv receive`` go on to TiB.
    """
    units = _BYTE_UNITS[: _BYTE_UNITS.index(largest_unit) + 1]
    for unit in units:
        if abs(n) < 1024 or unit == largest_unit:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable: the loop returns at largest_unit")


def human_rate(bytes_per_s: float | None, *, largest_unit: ByteUnit = "GiB") -> str:
    """``11.2 MiB/s``: a rate in the same binary units as every size (``-`` when unknown)."""
    if bytes_per_s is None:
        return "- B/s"
    return f"{human_bytes(bytes_per_s, largest_unit=largest_unit)}/s"


def human_done(done: float, total: float, *, largest_unit: ByteUnit = "GiB") -> str:
    """``1.5/3.0 MiB``: progress of a transfer, both in the unit of the total."""
    units = _BYTE_UNITS[: _BYTE_UNITS.index(largest_unit) + 1]
    scale, unit = 1.0, "B"
    for unit in units:
        if abs(total) < 1024 * scale or unit == largest_unit:
            break
        scale *= 1024
    if unit == "B":
        return f"{done:.0f}/{total:.0f} B"
    return f"{done / scale:.1f}/{total / scale:.1f} {unit}"


# ----- reasons


def join_reason(reason: str, detail: str) -> str:
    """``reason (detail)``, without saying the same thing twice.

    ``read-only file system (Read-only file system)``, ``declined: declined by the
    receiver`` and ``unreachable (errno 101) ([Errno 101] Connect call failed ...)``
    each said one thing twice (issue 16): a detail that repeats the reason, or an OS
    error message whose errno the reason already names, is left out; a detail that
    contains the reason replaces it.
    """
    reason, detail = reason.strip(), detail.strip()
    if not detail:
        return reason
    if not reason:
        return detail
    if detail.startswith("[Errno") and "errno" in reason.lower():
        return reason
    said, extra = _words(reason), _words(detail)
    if extra <= said:
        return reason
    if said <= extra:
        return detail
    return f"{reason} ({detail})"


_FILLER = frozenset({"a", "an", "the", "by", "of", "to", "is", "was"})


def _words(text: str) -> set[str]:
    """The words that carry meaning (``declined by the receiver`` = ``the receiver declined``)."""
    words = "".join(c if c.isalnum() else " " for c in text.lower()).split()
    return {w for w in words if w not in _FILLER}


# ----- durations


def format_ms(seconds: float | None) -> str:
    """Seconds as milliseconds for display: ``412 ms``, ``1.2 ms``, ``-`` when unknown."""
    if seconds is None:
        return "-"
    ms = seconds * 1000
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"


#: A figure and its unit (``16.4 ms``, ``3.0 s;``): joined by a no-break space while a line
#: is wrapped, which textwrap never breaks at (its whitespace is ASCII only).
_FIGURE_UNIT = re.compile(r"(\d) (ms|s|B|KiB|MiB|GiB|TiB)(?=[,;:.)]*(\s|$))")


def fill_keeping_figures(text: str, room: int, first: str = "", rest: str = "") -> str:
    """``textwrap.fill`` that keeps hyphenated words whole ("port-preserving",
    "reject-with-tcp-reset") and each figure with its unit: ``rdv lab run``'s summary read
    "p90 16.4" over "ms" at 80 columns."""
    kept = _FIGURE_UNIT.sub("\\1\u00a0\\2", text)
    filled = textwrap.fill(
        kept, room, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False
    )
    return filled.replace("\u00a0", " ")


class FiguresHelpFormatter(argparse.HelpFormatter):
    """argparse's help, each figure kept beside its unit as in :func:`fill_keeping_figures`:
    ``rdv send --help`` read "0.5" at the end of a line and "s doubling" on the next at 80
    columns (argparse, too, wraps at ASCII whitespace only)."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        lines = super()._split_lines(_FIGURE_UNIT.sub("\\1\u00a0\\2", text), width)
        return [line.replace("\u00a0", " ") for line in lines]

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        kept = _FIGURE_UNIT.sub("\\1\u00a0\\2", text)
        return super()._fill_text(kept, width, indent).replace("\u00a0", " ")


def plural(count: int, noun: str) -> str:
    """``1 file``, ``2 files``: counts in words, not ``2 file(s)``."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


def format_duration(seconds: float) -> str:
    """A span for a sentence: ``29 ms`` under a second (a 2.9 MiB send read ``in 0.0 s``),
    ``4.6 s``, then ``3 min 07 s``, ``1 h 02 min``."""
    if seconds < 1:
        return format_ms(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def ms_figure(ms: float | None) -> str:
    """Milliseconds as a bare figure with one decimal (``12.3``), ``-`` when unknown.

    For tables that print the unit once, in their header or after the column.
    """
    return "-" if ms is None else f"{ms:.1f}"


def format_eta(seconds: float | None) -> str:
    """``ETA 1:05`` or ``ETA -``."""
    if seconds is None:
        return "ETA -"
    seconds = int(seconds + 0.5)
    return f"ETA {seconds // 60}:{seconds % 60:02d}"


# ----- events


def event_time(event: Event) -> str:
    """An event's time since the attempt started, as the first column of an event line."""
    return f"{event.t * 1000:9.1f} ms"


def event_fields(
    event: Event,
    *,
    readable: bool = False,
    skip_empty: bool = False,
    exclude: Collection[str] = (),
) -> list[str]:
    """An event's fields as ``name=value`` words, in the order of its JSON form.

    ``type`` and ``t`` are never included (an event line shows them in their own columns).

    Args:
        event: Any rdv event.
        readable: Render for people: a candidate as its description, a tuple as
            ``name=[a, b]``, a ``*_s`` float as ``name=12.3ms``. Otherwise each value is
            printed as it appears in the event's JSON form.
        skip_empty: Leave out fields whose value is None or ``""``.
        exclude: More field names to leave out.
    """
    from rdv_core.events import Candidate

    words = []
    for name, json_value in event.to_json().items():
        if name in ("type", "t") or name in exclude:
            continue
        value = getattr(event, name) if readable else json_value
        if skip_empty and (value is None or value == ""):
            continue
        if not readable:
            words.append(f"{name}={value}")
        elif isinstance(value, Candidate):
            words.append(value.describe())
        elif isinstance(value, tuple):
            words.append(f"{name}=[{', '.join(str(v) for v in value)}]")
        elif isinstance(value, float) and name.endswith("_s"):
            words.append(f"{name[:-2]}={value * 1000:.1f}ms")
        else:
            words.append(f"{name}={value}")
    return words


def format_event(event: Event, *, readable: bool = True) -> str:
    """The race log's line for one event (``-v``): time, type, fields.

    e.g. ``     12.3 ms  DialStarted         direct public4 203.0.113.7:4000 ...``.

    Args:
        event: Any rdv event.
        readable: ``rdv dial``/``rdv accept`` (True): fields as :func:`event_fields`
            renders them for people, empty ones left out, no trailing blanks.
            ``rdv send``/``rdv receive`` (False): every field as in the JSON form, and
            the line keeps its blank after the type when the event has no fields.
    """
    from rdv_core.wire import printable

    fields = " ".join(event_fields(event, readable=readable, skip_empty=readable))
    # Fields carry text from the server and the peer (reasons, bodies): never raw.
    line = f"{event_time(event)}  {event.type:<19} {printable(fields)}"
    return line.rstrip() if readable else line


def rejoin_line(event: Event, secret: str) -> str | None:
    """The stderr line for a lost lobby conn and its rejoin (docs/PROTOCOL.md section 18),
    None for any other event. ``secret`` names what the peer types (code, token)."""
    from rdv_core.events import LobbyRejoined, ServerLost

    if isinstance(event, ServerLost):
        return (
            f"the rdv server went away while we waited ({shown(event.why)}): rejoining in "
            f"{event.rejoin_in_s:g} s ({event.rejoin}/{event.rejoins})"
        )
    if isinstance(event, LobbyRejoined):
        return (
            f"rejoined the lobby {event.away_s:.1f} s later: waiting for the peer again "
            f"(the same {secret})"
        )
    return None


def shown(text: str) -> str:
    """Text from the network (or holding it) as it may be printed on a terminal.

    Control characters and bidi overrides become visible escapes
    (:func:`rdv_core.wire.printable`): a hostile server or peer cannot clear the
    screen, set the title or forge lines through a reason or a name.
    """
    from rdv_core.wire import printable

    return printable(text)


class PrintableFormatter(logging.Formatter):
    """A log formatter that neutralises control characters of every record (see :func:`shown`)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record's line, with its controls escaped."""
        return shown(super().format(record))


def shown_event(event: Event) -> Event:
    """``event`` with every text field neutralised (see :func:`shown`), for the app.

    The app shows event fields in many widgets; cleaning the event once where it enters
    the app (a live attempt, or a replayed file that anyone may have written) covers all
    of them: strings, tuples of them (``peer_addrs``) and the candidate's fields. A chat
    message keeps its newlines (the chat pane shows several lines); nothing else does.
    """
    from rdv_core.events import ChatReceived, ChatSent

    is_chat = isinstance(event, ChatReceived | ChatSent)
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(event):
        value = getattr(event, field.name)
        safe = _shown_value(value, keep_newlines=is_chat and field.name == "text")
        if safe != value:
            changes[field.name] = safe
    return dataclasses.replace(event, **changes) if changes else event


def _shown_value(value: Any, *, keep_newlines: bool = False) -> Any:
    from rdv_core.events import Candidate
    from rdv_core.wire import printable

    if isinstance(value, str):
        return printable(value, keep_newlines=keep_newlines)
    if isinstance(value, tuple) and value and isinstance(value[0], str | Candidate):
        # Events' tuples hold one kind each: a batch's ids and offsets (thousands of
        # ints in a send of small files) are left alone without a look at each.
        return tuple(_shown_value(item) for item in value)
    if isinstance(value, Candidate):
        fields = dataclasses.fields(value)
        changes = {f.name: _shown_value(getattr(value, f.name)) for f in fields}
        return dataclasses.replace(value, **changes)
    return value


#: Outcomes of a direct dial that mean "nothing answered" (a drop, or no route out).
_SILENT: Final = frozenset({"timeout", "cancelled", "unreachable"})


def why_relay(events: Sequence[Event]) -> str:
    """Our side's answer to "why not direct?" in a few words, from the race's events.

    ``direct: 1 unreachable, 2 no answer``; through a proxy whose network let no direct dial
    get an answer, it says that the network seems to let nothing but the proxy out
    (docs/PROTOCOL.md section 17.1).
    """
    from rdv_core.events import CandidateFailed, DialStarted, ServerConnected

    dialled = {e.candidate.id for e in events if isinstance(e, DialStarted)}
    if not dialled:
        return "no direct candidate was dialled"
    ends: Counter[str] = Counter()
    for event in events:
        if isinstance(event, CandidateFailed) and event.candidate.id in dialled:
            ends["no answer" if event.reason == "cancelled" else event.reason] += 1
    text = ", ".join(f"{n} {reason}" for reason, n in ends.most_common()) or "no answer"
    proxy = next((e.proxy for e in events if isinstance(e, ServerConnected) and e.proxy), None)
    if proxy is not None and set(ends) <= {"no answer", *_SILENT}:
        return (
            f"direct: {text}; the server is reached only through the proxy {proxy}: this "
            "network seems to let nothing else out"
        )
    return f"direct: {text}"
