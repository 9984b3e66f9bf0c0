"""What the Session screen holds while it has never been shown: bounded, not a list.

Textual composes a mode's screen the first time it is shown. Until then the Session
screen queues its events, and a session left on another screen (the Server screen, F5,
for an hour) queued all of them: a progress event per transfer every 0.1 s, every chat
line. The backlog keeps what the screen would still show once built: the latest progress
of each transfer (a row shows only its latest), none for a transfer that ended, and as
many chat lines as the chat's scrollback keeps.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator

from rdv_core import events as ev
from rdv_tui.widgets.chat import SCROLLBACK

_Key = tuple[int, str, int]
"""(session number in the backlog, direction, transfer id): ids restart in each session."""


class Backlog:
    """Session events for a screen not yet mounted, in order, bounded by what it shows.

    Attributes:
        chat_lines: Chat lines kept (the oldest go first, as in the scrollback).
    """

    def __init__(self, *, chat_lines: int = SCROLLBACK) -> None:
        self.chat_lines = chat_lines
        # Insertion-ordered, and a replaced value keeps its place: a transfer's latest
        # progress stands where its first one did.
        self._events: dict[int, ev.Event] = {}
        self._numbers = itertools.count()
        self._session = 0
        self._progress: dict[_Key, int] = {}
        self._chat: deque[int] = deque()

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[ev.Event]:
        return iter(list(self._events.values()))

    def add(self, event: ev.Event) -> None:
        """Hold ``event``, dropping what it makes pointless to show."""
        number = next(self._numbers)
        match event:
            case ev.SessionEstablished():
                self._session += 1
                self._progress.clear()
            case ev.FileProgress():
                key = (self._session, event.direction, event.transfer_id)
                earlier = self._progress.get(key)
                if earlier is not None:
                    self._events[earlier] = event
                    return
                self._progress[key] = number
            case ev.FileCompleted() | ev.FileFailed() | ev.FileRejected():
                # The row's verdict says it all (a completed one fills its bar); the
                # byte counts take the completed size.
                earlier = self._progress.pop(
                    (self._session, event.direction, event.transfer_id), None
                )
                if earlier is not None:
                    del self._events[earlier]
            case ev.ChatSent() | ev.ChatReceived():
                self._chat.append(number)
                if len(self._chat) > self.chat_lines:
                    del self._events[self._chat.popleft()]
        self._events[number] = event

    def drain(self) -> list[ev.Event]:
        """Every event held, in order; the backlog is empty afterwards."""
        events = list(self._events.values())
        self._events.clear()
        self._progress.clear()
        self._chat.clear()
        return events
