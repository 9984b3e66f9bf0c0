"""The chat pane: timestamped lines from both sides, scrollback, and an input."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from rich.table import Table
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, RichLog

from rdv_core.session import MAX_CHAT_BYTES
from rdv_tui.cli.formatting import human_bytes
from rdv_tui.widgets.log_line import beside
from rdv_tui.widgets.palette import colour
from rdv_tui.widgets.paste_input import PasteInput

Who = Literal["you", "peer", "info"]

SCROLLBACK = 5000
"""Lines the chat keeps (a peer that chats without end cannot grow the app's memory)."""

STAMP_CELLS = len("12:00:00 peer ")
"""The cells left of a chat line's text (its time and who)."""


def rows_at_least(text: str, width: int) -> int:
    """The fewest rows ``text`` takes wrapped at ``width`` (a word wrap and wide
    characters take more): one per line, and one more per ``width`` characters."""
    width = max(1, width)
    return sum(max(1, -(-len(line) // width)) for line in text.split("\n"))


Clock = Callable[[], str]
"""The time stamp of a new line; snapshot tests pass a fixed one."""


def local_time() -> str:
    """``HH:MM:SS`` in local time."""
    return time.strftime("%H:%M:%S")


class ChatLog(RichLog):
    """Chat lines, newest at the bottom; keeps 5000 lines of scrollback."""

    DEFAULT_CSS = """
    ChatLog { height: 1fr; background: $surface; }
    """

    def __init__(self, *, clock: Clock = local_time, id: str | None = None) -> None:
        super().__init__(
            id=id, max_lines=SCROLLBACK, wrap=True, markup=False, auto_scroll=True, min_width=10
        )
        self.clock = clock
        self._stamped: list[tuple[str, Who, str]] = []
        self._keep = SCROLLBACK
        self._wrapped_at = 0

    def add(self, who: Who, text: str) -> None:
        """Append one line, stamped with the local time."""
        stamp = self.clock()
        self._stamped.append((stamp, who, text))
        del self._stamped[: -self._keep]
        self.write(self._line(stamp, who, text), expand=True)

    @property
    def lines_added(self) -> list[tuple[Who, str]]:
        """Who said what, oldest first: the last 5000 lines, as the scrollback keeps (a
        peer that chats without end cannot grow the app's memory)."""
        return [(who, text) for _, who, text in self._stamped]

    def _line(self, stamp: str, who: Who, text: str) -> Table:
        """The time and who in a column of their own, the text wrapped beside them (a
        long message or a file's path no longer continues under the times)."""
        muted = colour(self.app, "foreground-darken-2")
        who_colour = {
            "you": colour(self.app, "primary-lighten-2"),
            "peer": colour(self.app, "success"),
            "info": muted,
        }[who]
        label = {"you": "you ", "peer": "peer", "info": "  · "}[who]
        return beside(
            Text.assemble((stamp + " ", muted), (label, f"bold {who_colour}"), " "),
            Text(text, style=muted if who == "info" else ""),
        )

    def on_mount(self) -> None:
        # The lines hold the theme's colours of when they were written: after a switch
        # to a light theme the old stamps were light grey on white.
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._rewrite())

    def on_resize(self, event: events.Resize) -> None:
        """RichLog wraps a line once, when written: wrap everything again at the new width."""
        super().on_resize(event)
        width, before = event.size.width, self._wrapped_at
        self._wrapped_at = width
        if before and width != before:
            self._rewrite()

    def _rewrite(self) -> None:
        """Write the kept lines again (at the current width, in the current theme)."""
        if not self._stamped or not self._wrapped_at:
            return
        # Only the newest lines that the scrollback holds: all 5000 messages (of up to
        # 16 KiB each) were wrapped again, and a resize froze the app for a minute.
        budget, start = self.max_lines or SCROLLBACK, len(self._stamped)
        while start and budget > 0:
            start -= 1
            budget -= rows_at_least(self._stamped[start][2], self._wrapped_at - STAMP_CELLS)
        self.clear()
        for stamp, who, text in self._stamped[start:]:
            self.write(self._line(stamp, who, text), expand=True)


LINE_BREAK = "⏎"
"""Stands for a line break in the one-line chat field (a multi-line paste keeps its lines:
they are sent as one message of several lines, which the chat pane shows as such)."""

_UNSHOWN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
"""Controls a field shows as nothing (an escape sequence of copied terminal output): the
line sent would hold what the user could not see."""


def pasted_line(text: str) -> str:
    """``text`` as the chat field takes it: line breaks as :data:`LINE_BREAK`, tabs as
    spaces, other controls dropped."""
    lines = text.expandtabs(4).splitlines()
    return LINE_BREAK.join(_UNSHOWN.sub("", line) for line in lines)


class ChatInput(PasteInput):
    """The chat line: a paste keeps its lines (see :func:`pasted_line`); one that would
    make the line longer than a chat line holds is refused (Textual's Input draws its
    whole value on each key: after a 1 MiB paste each key took 3 s, for a line that
    could never be sent)."""

    def take_paste(self, text: str) -> str:
        line = pasted_line(text)
        size = len((self.value + line).replace(LINE_BREAK, "\n").encode())
        if size > MAX_CHAT_BYTES:
            self.app.notify(
                f"this paste makes the line {human_bytes(size)}: a chat line holds at most "
                f"{human_bytes(MAX_CHAT_BYTES)} (send a long text as a file)",
                severity="error",
                title="Chat",
            )
            return ""
        return line


class ChatPane(Vertical):
    """The chat log and the line the user types into."""

    DEFAULT_CSS = """
    ChatPane { height: 1fr; }
    ChatPane Input { margin-top: 0; }
    """

    @dataclass
    class Send(Message):
        """The user wants to send ``text``."""

        text: str

    def __init__(self, *, clock: Clock = local_time, id: str | None = None) -> None:
        super().__init__(id=id)
        self._clock = clock
        self.open = False
        """Whether a session is up to send to (the Session screen sets it)."""

    def compose(self) -> ComposeResult:
        yield ChatLog(clock=self._clock, id="chat-log")
        yield ChatInput(placeholder="type a message, Enter to send", id="chat-input", compact=True)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip().replace(LINE_BREAK, "\n").strip()
        if not text:
            return
        size = len(text.encode())
        if size > MAX_CHAT_BYTES:  # check before clearing: the line must not be lost
            self.app.notify(
                f"this line is {human_bytes(size)}: a chat line holds at most "
                f"{human_bytes(MAX_CHAT_BYTES)} (send a long text as a file)",
                severity="error",
                title="Chat",
            )
            return
        if not self.open:
            # The line was cleared, then refused ("no session"): typed after the peer
            # left, it was lost. It stays, to send in the next session.
            self.app.notify(
                "no session to send to: the line stays here (F2 to connect)",
                severity="warning",
                title="Chat",
            )
            return
        event.input.value = ""
        self.post_message(self.Send(text))

    def add(self, who: Who, text: str) -> None:
        """Append one line to the log."""
        self.query_one(ChatLog).add(who, text)
