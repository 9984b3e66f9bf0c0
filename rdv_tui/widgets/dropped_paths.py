"""What the user typed, pasted or dropped into the path field, as paths to send.

A file dragged onto a terminal arrives as typed text the way the terminal quotes it:
``'/home/ana/My Notes.pdf' `` (GNOME Terminal, Konsole), ``/Users/ana/My\\ Notes.pdf``
(iTerm, Terminal.app), several files at once separated by spaces, and file managers
copy a file as its ``file://`` URI. Taken as one path, each of those read
``no such file or folder``.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from rdv_tui.widgets.paste_input import PasteInput


@dataclass(frozen=True, slots=True)
class PathsTyped:
    """The paths in the field, or the first that does not exist."""

    paths: list[Path]
    missing: Path | None = None


def one_path(text: str) -> Path:
    """``text`` as a path: ``~`` expanded, a ``file://`` URI as its (unquoted) path."""
    if text.startswith("file://"):
        text = unquote(urlsplit(text).path)
    try:
        return Path(text).expanduser()
    except RuntimeError:  # ``~bob/x`` of a user this machine does not know: as typed
        return Path(text)


def _exists(path: Path) -> bool:
    """Whether ``path`` exists; a text no file system takes as a path is not one: a
    paragraph pasted into the field by mistake (a name over 255 bytes) raised
    ``OSError: File name too long`` and ended the app."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def paths_typed(text: str) -> PathsTyped:
    """The paths in ``text``: the whole of it when that exists (a name with spaces typed
    as is), else its shell words (quoted or escaped, as terminals drop files)."""
    text = text.strip()
    whole = one_path(text)
    if _exists(whole):
        return PathsTyped([whole])
    try:
        words = shlex.split(text)
    except ValueError:  # an unbalanced quote: not shell words
        return PathsTyped([], whole)
    paths = [one_path(word) for word in words]
    missing = [path for path in paths if not _exists(path)]
    if not paths or len(missing) == len(paths):
        return PathsTyped([], paths[0] if len(paths) == 1 else whole)
    if missing:
        return PathsTyped([], missing[0])
    return PathsTyped(paths)


def pasted_paths(text: str) -> str:
    """A paste of several lines (a file manager's copied files: one path or URI a line)
    as one line of shell words, which :func:`paths_typed` reads back; one line as is."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else ""
    return " ".join(shlex.quote(str(one_path(line))) for line in lines)


class PathInput(PasteInput):
    """The path field: copied files (one path or URI a line) become shell words."""

    def take_paste(self, text: str) -> str:
        return pasted_paths(text)
