"""A one-line field that decides what a paste of several lines becomes.

Textual's Input keeps only the first line of a paste and drops the rest without a word:
three chat lines pasted from an editor went out as one, two of three files copied in a
file manager were not sent.
"""

from __future__ import annotations

from textual import events
from textual.widgets import Input


class PasteInput(Input):
    """An Input whose paste goes through :meth:`take_paste` (default: the lines joined)."""

    def take_paste(self, text: str) -> str:
        """What the field inserts for a paste of ``text``."""
        return " ".join(text.splitlines())

    def _on_paste(self, event: events.Paste) -> None:
        event.stop()
        event.prevent_default()  # Input's own handler would insert the first line again
        line = self.take_paste(event.text)
        if not line:
            return
        selection = self.selection
        if selection.is_empty:
            self.insert_text_at_cursor(line)
        else:
            self.replace(line, *selection)
