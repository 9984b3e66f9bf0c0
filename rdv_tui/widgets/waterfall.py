"""The waterfall: every candidate on one shared time axis (ms since the attempt began).

One line per candidate, plus the server phase on top: who started when, when TCP and
the header exchange came up, who won and why the others lost, at a glance.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from rdv_tui.cli.formatting import format_ms
from rdv_tui.race_model import CandidateRow, Mark, RaceModel, RowState, without_asides
from rdv_tui.widgets.palette import colour, state_colour

LABEL_WIDTH = 13
"""Fewest columns for the row labels (``#12 observed``); longer labels widen the column."""

LABEL_SHARE = 3
"""The labels take at most a third of the width: the peer's rows (``#1003 peer observed``)
were cut to ``#1003 peer o`` at any width, while the race table shows them whole."""

_END_GLYPHS: dict[RowState, str] = {
    RowState.PICKED: "★",
    RowState.FAILED: "✗",
    RowState.REJECTED: "✗",
    RowState.DISCARDED: "○",
    RowState.SKIPPED: "·",
}

#: Reasons longer than this lose their asides even where they would fit.
_SHORT_REASON_LIMIT = 28
#: Fewest cells worth a cut reason.
_MIN_REASON = 6

REASON_WIDTH = 24
"""Columns kept free right of the bars, so the reason of a late end always fits."""

_Col = Callable[[float], int]
"""Maps a time (seconds since the start) to a column of the bar area."""


class Waterfall(Widget):
    """A time-axis view of the race, redrawn (never recomposed) when the model changes.

    Attributes:
        zoomed: When True the axis starts where the race starts (the server's answer)
            instead of at 0, so that the candidates get the whole width.
    """

    DEFAULT_CSS = """
    Waterfall { height: auto; min-height: 3; padding: 0 1; margin-top: 1; }
    """

    zoomed: reactive[bool] = reactive(True)

    def __init__(self, model: RaceModel, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.model = model

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return len(self.model.rows) + 2

    def axis_window(self) -> tuple[float, float]:
        """The (start, end) of the axis in seconds since the attempt began."""
        end = max(self.model.t_end, 0.001)
        start = 0.0
        responded = self.model.server.responded_t
        if self.zoomed and responded is not None and responded < end:
            start = responded
        return start, end

    def label_width(self, width: int) -> int:
        """Columns of the label column at ``width``: the longest label and a space,
        within [:data:`LABEL_WIDTH`, a :data:`LABEL_SHARE` of the width]."""
        longest = max((len(_label(row)) for row in self.model.rows.values()), default=0)
        return max(LABEL_WIDTH, min(longest + 1, width // LABEL_SHARE))

    def reason_width(self, width: int) -> int:
        """Columns kept right of the bars at ``width``: :data:`REASON_WIDTH`, more for
        a longer reason when the width allows (at 300 columns the peer's pick read
        ``picked the peer's end…`` with 200 columns of bars), at most a third."""
        longest = max(
            (len(_shown_reason(row.reason_text)) for row in self.model.rows.values()), default=0
        )
        return min(width // 3, max(REASON_WIDTH, longest + 1))  # the glyph, then the reason

    def render(self) -> Text:
        width = max(self.size.width, LABEL_WIDTH + 20)
        label_width = self.label_width(width)
        bar_width = width - label_width - self.reason_width(width)
        start, end = self.axis_window()
        span = max(end - start, 1e-6)

        def col(t: float) -> int:
            return max(0, min(bar_width - 1, round((t - start) / span * (bar_width - 1))))

        lines = [self._axis(label_width, bar_width, start, end, col)]
        lines.append(self._server_line(label_width, bar_width, col))
        for row in sorted(self.model.rows.values(), key=lambda r: r.candidate.id):
            lines.append(self._row_line(row, label_width, width, bar_width, col, end))
        for line in lines:
            line.truncate(width)  # never wrap: one line per candidate
        return Text("\n").join(lines)

    # ----- lines

    def _axis(self, label_width: int, bar_width: int, start: float, end: float, col: _Col) -> Text:
        muted = colour(self.app, "foreground-darken-2")
        title = "t (ms)"
        line = Text(f"{title:<{label_width}}", style=muted, no_wrap=True, overflow="crop")
        ticks = 4 if bar_width >= 50 else 2
        # Enough decimals to tell the ticks apart: an attempt that failed in 1 ms (no
        # server on that port) read "0  0  1".
        step_ms = (end - start) * 1000 / ticks
        decimals = 0 if step_ms >= 1 else 1 if step_ms >= 0.1 else 2
        chars = [" "] * bar_width
        for i in range(ticks + 1):
            t = start + (end - start) * i / ticks
            label = f"{t * 1000:.{decimals}f}"
            pos = col(t)
            pos = min(pos, bar_width - len(label))
            if i > 0 and chars[max(0, pos - 1)] != " ":
                continue
            chars[pos : pos + len(label)] = list(label)
        line.append("".join(chars), style=muted)
        return line

    def _server_line(self, label_width: int, bar_width: int, col: _Col) -> Text:
        s = self.model.server
        line = Text(f"{'server':<{label_width}}", style="bold", no_wrap=True)
        chars = [" "] * bar_width
        styles: list[str] = [""] * bar_width
        connect_colour = colour(self.app, "primary-lighten-2")
        lobby_colour = colour(self.app, "foreground-darken-2")
        if s.connected_t is not None:
            for i in range(0, col(s.connected_t) + 1):
                chars[i], styles[i] = "━", connect_colour
            stop = s.responded_t if s.responded_t is not None else self.model.t_end
            for i in range(col(s.connected_t) + 1, col(stop) + 1):
                chars[i], styles[i] = "─", lobby_colour
            if s.responded_t is not None:
                chars[col(s.responded_t)], styles[col(s.responded_t)] = "┤", connect_colour
        _paint(line, chars, styles)
        if s.responded_t is not None and s.lobby_s is not None:
            note = f" lobby {format_ms(s.lobby_s)}"
            _annotate(line, label_width + col(s.responded_t) + 1, note, lobby_colour)
        return line

    def _row_line(
        self,
        row: CandidateRow,
        label_width: int,
        width: int,
        bar_width: int,
        col: _Col,
        now: float,
    ) -> Text:
        label = _label(row)
        if len(label) >= label_width:  # a narrow terminal: cut visibly, never silently
            label = label[: label_width - 2] + "…"
        line = Text(f"{label:<{label_width}}", no_wrap=True)
        chars = [" "] * bar_width
        styles: list[str] = [""] * bar_width
        final_colour = state_colour(self.app, row.state)
        dial_colour = colour(self.app, "foreground-darken-2")
        tcp_colour = colour(self.app, "primary-lighten-2")
        stop = row.end_t if row.end_t is not None else now

        def fill(a: float, b: float, glyph: str, style: str) -> None:
            for i in range(col(a), col(b) + 1):
                chars[i], styles[i] = glyph, style

        if row.state is not RowState.SKIPPED:
            up = row.connected_t if row.connected_t is not None else stop
            fill(row.first_t, min(up, stop), "─", dial_colour)
            if row.connected_t is not None:
                shaken = row.handshake_t if row.handshake_t is not None else stop
                fill(row.connected_t, min(shaken, stop), "━", tcp_colour)
                if row.handshake_t is not None:
                    fill(row.handshake_t, stop, "━", final_colour)
        for t, mark in row.marks:
            if mark is Mark.RETRY:
                chars[col(t)], styles[col(t)] = "↻", state_colour(self.app, RowState.RETRYING)
        glyph = _END_GLYPHS.get(row.state, "▸")
        chars[col(stop)], styles[col(stop)] = glyph, final_colour
        _paint(line, chars, styles)
        if row.state.is_final:
            reason = row.reason_text
            at = label_width + col(stop) + 1
            note = _fit_reason(reason, width - at - 1)
            if note:
                _annotate(line, at, f" {note}", final_colour)
        return line


def _label(row: CandidateRow) -> str:
    """A row's label: its number and origin (``#1003 peer observed``)."""
    return f"#{row.candidate.id} {row.candidate.origin}"


def _shown_reason(reason: str) -> str:
    """A long reason loses its asides even where it would fit (the waterfall is a glance)."""
    return without_asides(reason) if len(reason) > _SHORT_REASON_LIMIT else reason


def _fit_reason(reason: str, room: int) -> str:
    """``reason`` in at most ``room`` cells: whole, else without its asides, else cut
    with ``…``; empty when not even a few letters fit."""
    if len(reason) > _SHORT_REASON_LIMIT or len(reason) > room:
        reason = without_asides(reason)
    if len(reason) <= room:
        return reason
    return reason[: room - 1].rstrip() + "…" if room >= _MIN_REASON else ""


def _paint(line: Text, chars: list[str], styles: list[str]) -> None:
    """Append ``chars`` to ``line``, merging runs of the same style."""
    run_start = 0
    for i in range(1, len(chars) + 1):
        if i == len(chars) or styles[i] != styles[run_start]:
            line.append("".join(chars[run_start:i]), style=styles[run_start] or None)
            run_start = i


def _annotate(line: Text, at: int, note: str, style: str) -> None:
    """Write ``note`` over blank cells of ``line`` from column ``at``, when it fits."""
    if at + len(note) > len(line):
        line.pad_right(at + len(note) - len(line))
    plain = line.plain
    end = at + len(note)
    if plain[at:end].strip():
        note = note[: max(0, len(plain) - at)]
        end = at + len(note)
        if not note.strip() or plain[at:end].strip():
            return
    before, after = line[:at], line[end:]
    line.truncate(0)
    line.append_text(before)
    line.append(note, style=style)
    line.append_text(after)
