"""The Connect form's code field: a pasted ``rdv receive --server URL CODE`` line gives
its code (and its server) instead of reading as a broken code.

The Connect screen tells the other machine to run ``rdv receive --server URL CODE``; the
user of the other machine who has the app pasted that whole line into the code field,
and read ``a code has no empty words (doubled '-')`` (from ``--server``).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from textual.message import Message

from rdv_tui.cli.checks import check_code
from rdv_tui.widgets.paste_input import PasteInput


@dataclass(frozen=True, slots=True)
class PastedCommand:
    """What an ``rdv`` command line names: its code, and its server if it has one."""

    code: str
    server: str | None


def command_in(text: str) -> PastedCommand | None:
    """The code (and server) of an ``rdv ...`` command line, or None if ``text`` is not
    one: its last word that is a session code, ``--server URL`` or an ``http(s)://`` word."""
    try:
        words = shlex.split(text.strip())
    except ValueError:
        return None
    if len(words) < 2 or words[0].rsplit("/", 1)[-1] != "rdv":
        return None
    server: str | None = None
    code: str | None = None
    for before, word in zip(["", *words], words, strict=False):
        if word.startswith("--server="):
            server = word.removeprefix("--server=")
        elif before == "--server" or (server is None and word.startswith(("http://", "https://"))):
            server = word
        elif word.startswith("--code="):
            code = word.removeprefix("--code=")
        elif not word.startswith("-") and _is_code(word):
            code = word
    return PastedCommand(code, server) if code else None


def _is_code(word: str) -> bool:
    try:
        check_code(word)
    except ValueError:
        return False
    return True


class CodeInput(PasteInput):
    """The code field: a pasted command line gives its code; its server goes to the form
    (:class:`CodeInput.ServerPasted`)."""

    @dataclass
    class ServerPasted(Message):
        """A pasted command line named this server."""

        url: str

    def take_paste(self, text: str) -> str:
        command = command_in(text)
        if command is None:
            return super().take_paste(text)
        if command.server:
            self.post_message(self.ServerPasted(command.server))
        self.value = command.code  # a whole code: not inserted into the one there
        self.cursor_position = len(command.code)
        return ""
