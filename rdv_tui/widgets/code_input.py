"""The Connect form's code field: a pasted ``rdv receive --server URL CODE`` line gives
its code (and its server) instead of reading as a broken code.

The Connect screen tells the other machine to run ``rdv receive --server URL CODE``; the
user of the other machine who has the app pasted that whole line into the code field,
and read ``a code has no empty words (doubled '-')`` (from ``--server``).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from textual import events
from textual.message import Message
from textual.widgets.input import Selection

from rdv_tui.attempt import Role
from rdv_tui.cli.checks import check_code
from rdv_tui.widgets.paste_input import PasteInput

ROLES: dict[str, Role] = {"receive": "accept", "accept": "accept", "send": "dial", "dial": "dial"}
"""The role this side takes for the other side's command (``rdv receive`` accepts: this
side dials)."""


@dataclass(frozen=True, slots=True)
class PastedCommand:
    """What an ``rdv`` command line names: its code, its server and the role it leaves
    to this side, when it says."""

    code: str
    server: str | None = None
    role: Role | None = None


def command_in(text: str) -> PastedCommand | None:
    """The code, server and role of an ``rdv ...`` command line, or None if ``text`` is
    not one: its last word that is a session code, ``--server URL`` or an ``http(s)://``
    word, and the role opposite to its command's."""
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
    other = ROLES.get(words[1])
    role: Role | None = None if other is None else "accept" if other == "dial" else "dial"
    return PastedCommand(code, server, role) if code else None


def _is_code(word: str) -> bool:
    try:
        check_code(word)
    except ValueError:
        return False
    return True


class CodeInput(PasteInput):
    """The code field: a pasted command line gives its code; its server and role go to
    the form (:class:`CodeInput.CommandPasted`)."""

    @dataclass
    class CommandPasted(Message):
        """A command line was pasted: the form takes its server and role."""

        command: PastedCommand

    def take_paste(self, text: str) -> str:
        command = command_in(text)
        if command is None:
            return super().take_paste(text)
        self.post_message(self.CommandPasted(command))
        self.show_code(command.code)  # a whole code: not inserted into the one there
        return ""

    def show_code(self, code: str) -> None:
        """Put a whole code in the field (a fresh one, a recent one, a pasted one) and show
        it from its start: in a narrow field (40 columns) the end of ``652125-sierra-planet``
        read ``rra-planet``, a code nobody typed. Focused, it stays selected whole, so typing
        replaces it."""
        self.value = code
        if not self._fits(code):
            self.selection = Selection(len(code), 0) if self.has_focus else Selection.cursor(0)

    def on_focus(self, event: events.Focus) -> None:
        # Select-on-focus (Input's handler, which runs after this one) puts the cursor at
        # the end, which scrolls the code's number out of a narrow field: the same
        # selection, from the end, keeps the start in view.
        self.call_next(self._start_in_view)

    def _start_in_view(self) -> None:
        whole = Selection(0, len(self.value))
        if self.value and self.selection == whole and not self._fits(self.value):
            self.selection = Selection(len(self.value), 0)

    def _fits(self, code: str) -> bool:
        """Whether ``code`` and the cursor after it fit the field: then it stays at the end."""
        return len(code) < self.content_size.width
