"""The screens of the rdv app: connect, race dashboard, session, server.

Each screen contributes its own command palette entries (:class:`PaletteCommands`);
the app gathers them for the screen that is showing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from textual.app import SystemCommand


@runtime_checkable
class PaletteCommands(Protocol):
    """A screen with command palette entries of its own (shown while it is active)."""

    def palette_commands(self) -> Iterable[SystemCommand]:
        """The entries, each bound to one of the screen's actions."""
        ...
