"""What the app sends for the paths the user gave, and what it leaves out, in words.

``Session.send_paths`` lists the paths itself and says nothing of what it skips: in the
app, an empty folder (or one of symlinks only) cleared the path field and then nothing
happened at all, no row and no message; and one name the receiver would refuse
(``aux.c``, a trailing dot) in a folder of hundreds stopped the whole send. ``rdv send``
lists first and tells (rdv_tui/cli/commands/send.py); the app now does the same.
"""

from __future__ import annotations

import asyncio
import os
import stat
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rdv_core.session import collect
from rdv_tui.cli.formatting import plural, shown

if TYPE_CHECKING:  # the type of what collect() lists (Session.send_files takes it)
    from rdv_core.session._files import LocalFile

#: What a special file is, in words, by the ``stat`` test that tells it.
_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)

SHOWN_REFUSED = 3
"""Refused names a notification names (the rest are counted)."""


@dataclass(frozen=True, slots=True)
class SendList:
    """The files to send and, if anything was left out, why (empty: nothing was)."""

    files: list[LocalFile]
    left_out: str


class ListingStopped(Exception):
    """The user stopped a listing (the files pane's Stop, ``escape``)."""


class Listing:
    """A listing under way: how many files it found, and the user's wish to stop it.

    ``~`` (a whole home) listed for minutes with nothing on screen and no way to stop
    it but ending the session. Called by :func:`rdv_core.session.collect` from the
    listing's thread (``count`` is one int, read by the UI's timer).
    """

    def __init__(self) -> None:
        self.count = 0
        self.stop = threading.Event()

    def __call__(self, found: int) -> None:
        self.count = found
        if self.stop.is_set():
            raise ListingStopped()


def list_for_sending(paths: list[Path], listing: Listing | None = None) -> SendList:
    """List ``paths`` as a send would (blocking: run it in a thread).

    Raises:
        FileNotFoundError, ValueError: as :func:`rdv_core.session.collect` (a path gone
            since it was typed, a special file named, two files of one name).
        ListingStopped: ``listing.stop`` was set.
    """
    skipped: Counter[str] = Counter()
    refused: list[tuple[str, str]] = []
    files = collect(paths, skipped, refused, listing)
    notes: list[str] = []
    if skipped:
        kinds = ", ".join(plural(n, kind) for kind, n in sorted(skipped.items()))
        notes.append(f"{kinds} (only regular files are sent)")
    if refused:
        named = "; ".join(f"{where}: {why}" for where, why in refused[:SHOWN_REFUSED])
        more = f" and {len(refused) - SHOWN_REFUSED} more" if len(refused) > SHOWN_REFUSED else ""
        notes.append(f"the receiver would refuse the name of {named}{more} (rename them)")
    if not files:
        why = "; ".join(notes) if notes else "the folders are empty"
        return SendList([], f"nothing to send: {why}")
    return SendList(files, f"not sent: {'; '.join(notes)}" if notes else "")


def not_sendable(paths: list[Path]) -> str | None:
    """Why one of ``paths`` (typed, each one that exists) cannot be sent, or None.

    Checked before the path field is emptied: a FIFO typed there cleared the field
    (the user's text was lost) and then failed with "not a regular file or folder".
    ``stat`` never opens the file, so a FIFO with no writer does not block.
    """
    for path in paths:
        try:
            mode = os.stat(path).st_mode
        except OSError:
            continue  # gone since it was typed: the send says so
        if stat.S_ISDIR(mode) or stat.S_ISREG(mode):
            continue
        kind = next((words for test, words in _KINDS if test(mode)), "a special file")
        return (
            f"cannot send {path}: it is {kind}, not a file: only regular files and "
            "folders are sent (to stream a pipe's bytes, use rdv dial / rdv accept)"
        )
    return None


async def list_shown(
    paths: list[Path],
    notify: Callable[..., Any],
    shown_by: Callable[[Listing | None], None] | None = None,
) -> SendList | None:
    """List ``paths`` in a thread, its count shown by ``shown_by`` (the files pane's
    listing line, told ``None`` at the end); the files to send, or None (said)."""
    listing = Listing()
    if shown_by is not None:
        shown_by(listing)
    try:
        result = await asyncio.to_thread(list_for_sending, paths, listing)
    except ListingStopped:
        notify(f"listing stopped after {listing.count:,} files: nothing was sent", title="Send")
        return None
    except (OSError, ValueError) as exc:
        notify(shown(str(exc)), severity="error", title="Send failed", markup=False)
        return None
    finally:
        if shown_by is not None:
            shown_by(None)
    if result.left_out:  # said, not left to a silence
        severity = "warning" if result.files else "error"
        notify(shown(result.left_out), severity=severity, title="Send", markup=False, timeout=10)
    return result if result.files else None
