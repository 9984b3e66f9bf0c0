"""A big send's sum (the files pane's aggregate mode): the line, and what it knows.

Past :data:`ROWS_UP_TO` files a direction shows one line, not a row per file. Stop 37's
per-file cancel (``x``, docs/PROTOCOL.md 12.14) had nothing to act on there: a user
sending 10,000 files could stop neither the file under way nor the rest. The pane now
keeps the moving file's row (:attr:`Aggregate.current_id`), and ``x`` on this line, pressed
twice, cancels every file of the direction that has no verdict yet (:attr:`Aggregate.open_ids`).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Static

from rdv_core import events as ev
from rdv_tui.cli.formatting import format_duration, format_eta, human_bytes
from rdv_tui.widgets.offer_bar import NAME_SHOWN, tail

#: A direction shows one row per file while it has offered at most this many files;
#: past that, one aggregate line, the moving file's row, the last files done and the
#: failures (bounded).
ROWS_UP_TO = 20
#: Names of the last files done, shown under the aggregate line.
RECENT = 5
#: What the aggregate's second line starts with.
LAST = "  last: "
#: Seconds within which a second ``x`` on the aggregate line cancels the rest.
CANCEL_ALL_CONFIRM_S = 5.0


class Aggregate:
    """The sum of one direction's transfers: what the aggregate line shows."""

    def __init__(self) -> None:
        self.files_total = 0
        self.bytes_total = 0
        self.files_ok = 0
        self.files_failed = 0
        #: Files a user stopped (either side): not failures (docs/PROTOCOL.md 12.14).
        self.files_cancelled = 0
        self.bytes_done = 0
        self.moving: dict[int, int] = {}
        #: Files offered that have no verdict yet (what ``x`` on the line cancels).
        self.open_ids: set[int] = set()
        #: The file whose bytes moved last, and its last progress (its row is kept).
        self.current_id: int | None = None
        self.current_progress: ev.FileProgress | None = None
        #: When ``x`` on the line was pressed first (a second press confirms), or None.
        self.cancel_asked: float | None = None
        self.ended = ""
        """Why the files still to come never will (the session ended), once it did."""
        self.current = ""
        self.recent: deque[str] = deque(maxlen=RECENT)
        self.started = time.monotonic()
        self.dirty = False

    @property
    def files_done(self) -> int:
        """Files settled (verified, failed or cancelled)."""
        return self.files_ok + self.files_failed + self.files_cancelled

    def moving_id(self) -> int | None:
        """The file under way: the last one whose bytes moved while it has no verdict,
        else the first accepted one without (files stream in id order)."""
        if self.current_id in self.moving:
            return self.current_id
        return min(self.moving, default=None)

    def offer(self, transfer_id: int, size: int) -> None:
        """A file offered (either way)."""
        self.files_total += 1
        self.bytes_total += size
        self.open_ids.add(transfer_id)
        self.dirty = True

    def settle(self, transfer_id: int, size: int) -> None:
        """A file ended; ``size`` bytes count as done."""
        self.moving.pop(transfer_id, None)
        self.open_ids.discard(transfer_id)
        self.bytes_done += size
        self.dirty = True

    def text(self, arrow: str, width: int | None = None) -> str:
        """The aggregate line: files, bytes, rate, ETA, current file; each name cut to
        fit ``width`` whole on a line after ``  last: `` (cut to 60 characters whatever
        the width, a name was folded mid-name at 60 columns)."""
        limit = NAME_SHOWN if width is None else max(8, min(NAME_SHOWN, width - len(LAST) - 1))
        done = self.bytes_done + sum(self.moving.values())
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = done / elapsed
        eta = (self.bytes_total - done) / rate if rate > 0 else None
        line = (
            # Verified files: a failed one counted here read "1/1 files · 0 B/3 GiB".
            f"{arrow} {self.files_ok}/{self.files_total} files · "
            f"{human_bytes(done)}/{human_bytes(self.bytes_total)} · {human_bytes(rate)}/s"
        )
        if self.files_done < self.files_total and self.ended:
            line += f" · stopped: {self.ended}"
        elif self.files_done < self.files_total:
            line += f" · {format_eta(eta)}"  # it says "ETA": the line read "ETA ETA 0:02"
            if self.current:
                line += f" · {tail(self.current, limit)}"
        else:
            line += f" · done in {format_duration(elapsed)}"
        if self.files_failed:
            line += f" · {self.files_failed} failed"
        if self.files_cancelled:
            line += f" · {self.files_cancelled} cancelled"
        if self.recent:
            line += f"\n{LAST}" + ", ".join(tail(name, limit) for name in self.recent)
        return line


def confirmed_cancel_all(
    app: App[object], direction: str, aggregate: Aggregate, *, open: bool
) -> list[int]:
    """``x`` on an aggregate line: the files to cancel once pressed again within
    :data:`CANCEL_ALL_CONFIRM_S` (the first press says how many), else none."""
    ids = sorted(aggregate.open_ids)
    asked, aggregate.cancel_asked = aggregate.cancel_asked, None
    if not open or aggregate.ended or not ids:
        app.notify("no file of this list is still to come", title="Cancel")
        return []
    now = time.monotonic()
    if asked is not None and now - asked <= CANCEL_ALL_CONFIRM_S:
        return ids
    aggregate.cancel_asked = now
    way = "sent" if direction == "out" else "received"
    app.notify(
        f"x again within {CANCEL_ALL_CONFIRM_S:g} s cancels the {len(ids):,} files "
        f"not yet {way} (the others keep their verdicts; the session goes on)",
        title="Cancel all",
        severity="warning",
        timeout=CANCEL_ALL_CONFIRM_S,
    )
    return []


class AggregateLine(Static, can_focus=True):
    """One direction's aggregate line; focused, ``x`` (twice) cancels the rest of it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x,delete", "cancel_all", "Cancel all", tooltip="stop every file still to come"),
    ]

    DEFAULT_CSS = """
    AggregateLine:focus { background: $boost; text-style: bold; }
    """

    @dataclass
    class CancelAll(Message):
        """The user pressed ``x`` on the line (the files pane asks for confirmation)."""

        direction: str

    def __init__(self, direction: str, *, id: str, classes: str) -> None:
        super().__init__("", id=id, classes=classes, markup=False)
        self.direction = direction

    def action_cancel_all(self) -> None:
        """Ask for every unsettled file of this direction to be stopped."""
        self.post_message(self.CancelAll(self.direction))
