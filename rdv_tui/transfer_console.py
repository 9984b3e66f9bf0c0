"""The console of ``rdv send`` / ``rdv receive``: stderr, and a stderr that may fail.

Imported only inside the commands' ``run()`` (rich).
"""

from __future__ import annotations

import io
import sys
from typing import IO, cast

from rich.console import Console


class DroppingStream(io.TextIOBase):
    """A text stream that writes to ``stream`` until a write fails, then drops the rest.

    A stderr that takes nothing any more (the terminal closed: EIO; a reader gone:
    EPIPE; a full disk) raised from whatever printed next: closing the terminal in the
    middle of a file raised from the progress bar's last frame, before the peer was
    told why (it read "closed by peer"), and the command ended in a traceback, exit 1.
    Lines nobody can read are not worth the transfer: they are dropped, and the
    command ends as it would have (the peer told, its exit code).
    """

    def __init__(self, stream: IO[str]) -> None:
        super().__init__()
        self._stream = stream
        #: Set by the first failed write: nothing is written after it.
        self.lost = False

    def write(self, text: str) -> int:
        if not self.lost:
            try:
                self._stream.write(text)
                self._stream.flush()  # now, so a failure is ours to drop, not at exit's
            except (OSError, ValueError):  # ValueError: the stream was closed
                self.lost = True
        return len(text)

    def flush(self) -> None:
        pass  # every write flushed already

    def isatty(self) -> bool:
        try:
            return self._stream.isatty()
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", None) or "utf-8"


def stderr_console() -> Console:
    """The console of ``rdv send`` / ``rdv receive``: stderr, shown as it is.

    emoji=False: rich turned ":b:" into an emoji, so "a:b: the receiver would refuse"
    read "a🅱 the receiver ..."; names, paths and chat are shown as they are. In a file
    or a pipe no line is wrapped (a terminal wraps them itself): a log read
    "connected, encrypted: relay: direct connections are disabled (address spaces: "
    and "none)" on the next line, and grep found neither half.
    """
    stream = cast(IO[str], DroppingStream(sys.stderr))  # an IO[str] in all but name
    console = Console(file=stream, highlight=False, emoji=False)
    console.soft_wrap = not console.is_terminal
    return console
