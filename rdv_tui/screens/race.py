"""The race dashboard: the product's signature.

Rows for every candidate, a waterfall on one shared time axis, the server phase on top
and the result banner. The app feeds it every race event (:meth:`RaceScreen.feed`):
live ones as they arrive from the client's ``on_event``, a replayed file's at start.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import DataTable

from rdv_core.doctor import render_verdict
from rdv_core.doctor._text import wrap
from rdv_core.events import Event, VerdictReached, write_jsonl
from rdv_tui.race_model import RaceModel, is_race_event
from rdv_tui.screens.candidate import CandidateDetails
from rdv_tui.widgets.fitted_footer import FittedFooter
from rdv_tui.widgets.race_header import ResultBanner, ServerPhaseHeader
from rdv_tui.widgets.race_table import RaceTable
from rdv_tui.widgets.waterfall import Waterfall
from rdv_tui.widgets.wrapped_text import Maker, WrappedText

TICK_S = 0.25
"""While a live race runs, the axis and the banner advance this often (lobby waits)."""

REPLAY_MAX_GAP_S = 0.5
"""An animated replay never waits longer than this between two events, so that a long
lobby wait does not look like a hang."""


class RaceScreen(Screen[None]):
    """The live (or replayed) race of one attempt.

    Attributes:
        model: The race as folded from its events.
        source: Where the events came from (``live``, or the replayed file's name).
        export_dir: Where the ``e`` key saves the race (None: the working folder).
    """

    AUTO_FOCUS = "#race-table"
    """The table, not the first focusable widget (the scrolling body around it): there
    ``Enter`` did nothing, though the README and the table promise a row's story, and
    Up/Down scrolled the table's header out of sight. ``tab`` reaches the body."""

    BINDINGS: ClassVar[list[BindingType]] = [
        # Short labels: with the app's screen keys they must fit 80 columns (the palette,
        # ctrl+p, gives each its long name).
        Binding("e", "export_race", "Export", tooltip="Export the race as JSONL"),
        Binding("s", "app.save_svg", "SVG", show=False),  # also ctrl+s, in the palette
        Binding("z", "toggle_zoom", "Zoom", tooltip="Zoom the time axis"),
        Binding("p", "play", "Replay"),
        Binding("c", "cancel_attempt", "Cancel", tooltip="Cancel the attempt"),
    ]

    class CancelRequested(Message):
        """The user wants the attempt that races or waits in the lobby stopped."""

    note = var("", init=False)
    """A line of context after the result (e.g. the session being set up); set from outside."""

    running = var(False, init=False)
    """Whether a live attempt races or waits (the ``c`` key cancels it); set from outside."""

    def __init__(
        self,
        events: list[Event] | None = None,
        *,
        source: str = "live",
        export_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.model = RaceModel()
        self.source = source
        self.export_dir = export_dir
        self._origin: float | None = None  # monotonic time of t=0 of a live attempt
        self._ready = False  # set in on_mount (is_mounted is still False there)
        #: The doctor's line: prediction before the race, verdict after (docs/PROTOCOL.md 14).
        self.diagnosis = ""
        self._diagnosis_maker: Maker = lambda _width: ""
        self._verdict_maker: Maker = lambda _width: ""
        self.model.apply_all([e for e in (events or []) if is_race_event(e)])

    def compose(self) -> ComposeResult:
        yield ServerPhaseHeader(id="server-phase")
        yield ResultBanner(id="result")
        # The verdict's sentence (how the race ended and why) under the banner, not under
        # the waterfall: there, at 80x24, it started below the last row (the body had to
        # be scrolled to learn the outcome). The rest of the story stays below.
        yield WrappedText(id="verdict")
        with VerticalScroll(id="race-body"):
            yield RaceTable(id="race-table")
            yield Waterfall(self.model, id="waterfall")
            yield WrappedText(id="diagnosis")
        yield FittedFooter()  # every key it shows is whole, at any width

    def on_mount(self) -> None:
        self._ready = True
        if not self._drawable:
            # Mounted while the app quits (the demo's race pushed as a SIGTERM or ctrl+q
            # lands): its widgets may be gone already, and the query below ended the app
            # with a traceback (NoMatches), 2 runs in 7 of the SIGTERM-storm test.
            return
        self._show_boxes()
        self._redraw_all()
        self.set_interval(TICK_S, self.tick)
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._restyle())

    @property
    def _drawable(self) -> bool:
        """Mounted, and the app not shutting down. Textual takes the screens apart before
        the workers feeding them end: a verdict arriving then found no ``#diagnosis`` and
        ended the app with a traceback (``App.is_running`` turns false first; ``is_attached``
        once the screen is gone, and outside the app's context)."""
        return self._ready and self.is_attached and self.app.is_running

    # ----- feeding events

    def feed(self, event: Event) -> None:
        """Apply one event and update only what it changed (before mount: the model only)."""
        change = self.model.apply(event)
        if self.source == "live" and self._origin is None:
            self._origin = time.monotonic() - event.t
        if not self._drawable:
            return  # on_mount draws everything from the model
        if change.rows:
            table = self.query_one(RaceTable)
            for row_id in change.rows:
                table.show_row(self.model.rows[row_id])
        if change.header:
            self.query_one(ServerPhaseHeader).show(self.model, running=self._live)
        self.query_one(ResultBanner).show(self.model, extra=self.note)
        waterfall = self.query_one(Waterfall)
        waterfall.refresh(layout=bool(change.rows))

    def show_diagnosis(self, text: str | Maker) -> None:
        """The doctor's prediction before the race, the verdict after (empty: hidden).

        ``text`` may be made for the width (:class:`~rdv_tui.widgets.wrapped_text.Maker`,
        e.g. ``lambda width: render_verdict(v, width)``): its lines then wrap under their
        own column, at every width the screen takes.
        """
        maker = text if callable(text) else (lambda _width, text=text: text)
        self._diagnosis_maker = maker
        self._verdict_maker = lambda _width: ""
        self.diagnosis = maker(None)
        self._show_boxes()

    def show_verdict(self, v: VerdictReached) -> None:
        """The two-sided verdict (docs/PROTOCOL.md 15.5): its sentence under the banner,
        in sight at every size; the prediction and each side's candidates under the
        waterfall. :attr:`diagnosis` has the whole text, as the CLI prints it."""

        def sentence(width: int | None) -> str:
            return "\n".join(wrap(v.sentence, width, "verdict: ", " " * 9))

        def story(width: int | None) -> str:
            return _without(render_verdict(v, width), sentence(width))

        self._diagnosis_maker = story
        self._verdict_maker = sentence
        self.diagnosis = render_verdict(v)
        self._show_boxes()

    def _show_boxes(self) -> None:
        if not self._drawable:
            return
        boxes = (("#diagnosis", self._diagnosis_maker), ("#verdict", self._verdict_maker))
        for box_id, maker in boxes:
            box = self.query_one(box_id, WrappedText)
            box.show(maker)
            box.display = bool(maker(None))

    def merge_peer(self, events: list[Event]) -> None:
        """Show the peer's direct candidates (from the session's diagnosis) as extra rows."""
        ids = self.model.merge_peer(events)
        if not self._drawable or not ids:
            return
        table = self.query_one(RaceTable)
        for row_id in ids:
            table.show_row(self.model.rows[row_id])
        self.query_one(Waterfall).refresh(layout=True)

    def reset(self, source: str = "live") -> None:
        """Forget every event (a new attempt, or the start of an animated replay)."""
        self.model = RaceModel()
        self.source, self.note = source, ""
        self.show_diagnosis("")
        self._origin = None
        if not self._drawable:
            return
        self.query_one(RaceTable).forget()
        self.query_one(Waterfall).model = self.model
        self._redraw_all()

    def tick(self) -> None:
        """Advance the axis of a live race to now, so waits are visible as they happen."""
        if self._origin is None or not self._drawable:
            return
        if self.model.advance(time.monotonic() - self._origin):
            self.query_one(ResultBanner).show(self.model, extra=self.note)
            self.query_one(Waterfall).refresh()

    @property
    def _live(self) -> bool:
        """An attempt is under way, or events came (a replay is never waited for)."""
        return self.running or bool(self.model.events)

    def watch_running(self) -> None:
        self.refresh_bindings()
        if self._drawable:
            self.query_one(ServerPhaseHeader).show(self.model, running=self._live)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """``c`` only while there is an attempt to cancel; ``p`` only when there is none (a
        replay would mix with the live events), so the footer keeps to 80 columns."""
        if action == "cancel_attempt":
            return self.running
        if action == "play":
            return not self.running
        return True

    def action_cancel_attempt(self) -> None:
        """Stop the live attempt (e.g. one waiting in the lobby for a peer who won't come)."""
        self.post_message(self.CancelRequested())

    def watch_note(self, note: str) -> None:
        if self._drawable:
            self.query_one(ResultBanner).show(self.model, extra=note)

    def _redraw_all(self) -> None:
        self.sub_title = f"race ({self.source})"
        table = self.query_one(RaceTable)
        for row in self.model.rows.values():
            table.show_row(row)
        self.query_one(ServerPhaseHeader).show(self.model, running=self._live)
        self.query_one(ResultBanner).show(self.model, extra=self.note)
        self.query_one(Waterfall).refresh(layout=True)

    def _restyle(self) -> None:
        self.query_one(RaceTable).restyle(list(self.model.rows.values()))
        self.query_one(Waterfall).refresh()

    # ----- actions

    def on_data_table_row_selected(self, message: DataTable.RowSelected) -> None:
        """Enter or a click on a row: that candidate's whole story."""
        key = message.row_key.value or ""
        row = self.model.rows.get(int(key[1:])) if key.startswith("c") else None
        if row is not None:
            self.app.push_screen(CandidateDetails(row, self.model.events))

    def action_toggle_zoom(self) -> None:
        """Zoom the time axis onto the race (from the server's answer) or back to 0."""
        waterfall = self.query_one(Waterfall)
        waterfall.zoomed = not waterfall.zoomed
        self.notify("axis: race only" if waterfall.zoomed else "axis: whole attempt")

    def action_export_race(self) -> None:
        """Save the race's events as JSONL in the export folder (default: the working one)."""
        if not self.model.events:
            # An empty file is refused by --replay: say so now, write nothing.
            self.notify("no race to export yet: F2 to connect", title="Export")
            return
        try:
            path = export_race(self.model.events, self.export_dir or Path.cwd())
        except OSError as exc:  # a folder that cannot be written: a message, not a crash
            self.notify(
                f"cannot save the race: {exc}", title="Export", severity="error", markup=False
            )
            return
        self.notify(f"race saved to {path}", title="Export", markup=False)

    def action_play(self) -> None:
        """Play the recorded events again with their original timing."""
        self.play(list(self.model.events))

    def palette_commands(self) -> Iterable[SystemCommand]:
        """This screen's command palette entries."""
        yield SystemCommand(
            "Export race as JSONL", "Save every race event to a file (e)", self.action_export_race
        )
        yield SystemCommand(
            "Zoom time axis", "Race only / whole attempt (z)", self.action_toggle_zoom
        )
        if self.running:
            yield SystemCommand(
                "Cancel attempt",
                "Stop the attempt that races or waits (c)",
                self.action_cancel_attempt,
            )
        else:
            yield SystemCommand(
                "Replay race", "Play the recorded events again (p)", self.action_play
            )

    @work(exclusive=True, group="race-replay")
    async def play(self, events: list[Event], speed: float = 1.0) -> None:
        """Reset and re-apply ``events`` paced by their ``t`` (gaps capped)."""
        if not events:
            self.notify("nothing to replay yet")
            return
        self.reset("replay" if self.source == "live" else self.source)  # no live clock
        last = events[0].t
        for event in events:
            gap = min(max(0.0, event.t - last), REPLAY_MAX_GAP_S) / speed
            last = event.t
            if gap:
                await asyncio.sleep(gap)
            self.feed(event)


def _without(text: str, part: str) -> str:
    """``text`` less the lines of ``part`` (the verdict's sentence, shown on its own)."""
    lines, cut = text.splitlines(), part.splitlines()
    for i in range(len(lines) - len(cut) + 1):
        if lines[i : i + len(cut)] == cut:
            return "\n".join(lines[:i] + lines[i + len(cut) :])
    return text


def export_race(events: list[Event], directory: Path, name: str | None = None) -> Path:
    """Write ``events`` as ``rdv-race-<time>.jsonl`` (or ``name``) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (name or time.strftime("rdv-race-%Y%m%d-%H%M%S.jsonl"))
    stem, number = path.stem, 2
    while name is None and path.exists():  # never overwrite an earlier export
        path = path.with_name(f"{stem}-{number}.jsonl")
        number += 1
    with path.open("w", encoding="utf-8") as stream:
        write_jsonl(events, stream)
    return path
