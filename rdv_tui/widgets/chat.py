"""The chat pane: timestamped lines from both sides, scrollback, and an input."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, RichLog

from rdv_tui.widgets.palette import colour

Who = Literal["you", "peer", "info"]

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
            id=id, max_lines=5000, wrap=True, markup=False, auto_scroll=True, min_width=10
        )
        self.clock = clock
        self.lines_added: list[tuple[Who, str]] = []

    def add(self, who: Who, text: str) -> None:
        """Append one line, stamped with the local time."""
        stamp = self.clock()
        muted = colour(self.app, "foreground-darken-2")
        who_colour = {
            "you": colour(self.app, "primary-lighten-2"),
            "peer": colour(self.app, "success"),
            "info": muted,
        }[who]
        label = {"you": "you ", "peer": "peer", "info": "  · "}[who]
        line = Text.assemble(
            (stamp + " ", muted),
            (label, f"bold {who_colour}"),
            " ",
            (text, muted if who == "info" else ""),
        )
        self.write(line)
        self.lines_added.append((who, text))


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

    def compose(self) -> ComposeResult:
        yield ChatLog(clock=self._clock, id="chat-log")
        yield Input(placeholder="type a message, Enter to send", id="chat-input", compact=True)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            return
        event.input.value = ""
        self.post_message(self.Send(text))

    def add(self, who: Who, text: str) -> None:
        """Append one line to the log."""
        self.query_one(ChatLog).add(who, text)
