"""A modal with one candidate's whole story: every event about it, with times."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from rdv_core.events import Event
from rdv_tui.cli.formatting import event_fields, event_time
from rdv_tui.race_model import CandidateRow


def _what(event: Event) -> str:
    """A candidate event's type and fields other than the candidate."""
    # readable: times as ms with one decimal, never a raw float (elapsed_s=7.893123550000041)
    details = ", ".join(event_fields(event, readable=True, skip_empty=True, exclude=("candidate",)))
    return event.type + (f"  {details}" if details else "")


def describe_event(event: Event) -> str:
    """One line for a candidate event: its time, type and fields other than the candidate."""
    return f"{event_time(event)}  {_what(event)}"


def story(events: list[Event]) -> Table:
    """The events one under the other, each wrapped beside its time: at 60 columns the
    fields of a retry went on under the times (``reason=refused, errno=111`` at the edge)."""
    grid = Table.grid(padding=(0, 2, 0, 0))
    grid.add_column(no_wrap=True)
    grid.add_column(ratio=1, overflow="fold")
    for event in events:
        # Plain Text: a peer's line is quoted as it came (``[/x]`` is not markup).
        grid.add_row(Text(event_time(event)), Text(_what(event)))
    return grid


class CandidateDetails(ModalScreen[None]):
    """Everything that happened to one candidate (Enter or a click on its row)."""

    DEFAULT_CSS = """
    CandidateDetails { align: center middle; }
    CandidateDetails > VerticalScroll {
        width: 90%; max-width: 120; height: auto; max-height: 80%;
        border: thick $primary; background: $surface; padding: 0 1;
        /* Its scrollbar's cells are kept whether it shows or not: at 6 and 7 columns it
           came and went 30 times a second (tests/tui/test_small_terminals.py, module doc). */
        scrollbar-gutter: stable;
        /* With that gutter Textual adds a horizontal scrollbar's row to an auto height
           (widget.py, _get_box_model), an empty row under the hint: overflow-x is hidden,
           the row is never one. */
        scrollbar-size-horizontal: 0;
    }
    CandidateDetails #title { text-style: bold; margin-bottom: 1; }
    CandidateDetails #hint { color: $text-muted; margin-top: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,q", "close", "Close"),
    ]

    def __init__(self, row: CandidateRow, events: list[Event]) -> None:
        super().__init__()
        self.row = row
        self.events = [e for e in events if getattr(e, "candidate", None) == row.candidate]

    def compose(self) -> ComposeResult:
        c = self.row.candidate
        with VerticalScroll():
            # A Static wraps; a Label cut the state off at the modal's edge ("unreac").
            yield Static(f"{c.describe()}: {self.row.state_text}", id="title", markup=False)
            yield Static(story(self.events), id="events")
            yield Label("Esc to close", id="hint")

    def action_close(self) -> None:
        """Close the details."""
        self.dismiss(None)
