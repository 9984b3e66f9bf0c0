"""A footer that shows every key it shows whole, at any width, ``ctrl+q`` included.

Textual's compact footer lays its keys in a row and lets the ones past the screen's edge
slide under the palette key: at 40 columns the Session screen showed ``^o Send file ^l End
session``, the race screen cut its screen keys in half, and no width ever showed how to quit.
:class:`FittedFooter` picks the richest of a few layouts that fits the width (the screen's
own keys first, then the screen keys F2-F6, which the palette also lists, then ``ctrl+q``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

QUIT_ACTIONS = ("quit", "app.quit")


def is_screen_key(binding: Binding) -> bool:
    """An app key that switches to a screen (F2-F6): the palette has each as ``Show X``."""
    return binding.action.startswith("show(")


@dataclass(frozen=True, slots=True)
class Layout:
    """One way to fill the footer, from the richest (first in :data:`LAYOUTS`) down.

    Attributes:
        short: The screen's keys with their short labels (``SHORT_LABELS``; a key whose
            short label is empty, e.g. one with a button on the screen, is left out).
        screens: Show the screen keys F2-F6.
        quit: Show ``ctrl+q``.
        palette: The palette key's label (empty: the key alone).
    """

    short: bool
    screens: bool
    quit: bool
    palette: bool = True


#: ``ctrl+q`` outranks the word ``palette`` (at 80 columns both did not fit, and no width
#: said how to quit); the screen keys go before the screen's own keys do.
LAYOUTS: tuple[Layout, ...] = (
    Layout(short=False, screens=True, quit=True),
    Layout(short=False, screens=True, quit=True, palette=False),
    Layout(short=True, screens=True, quit=True, palette=False),
    Layout(short=True, screens=False, quit=True),
    Layout(short=True, screens=False, quit=True, palette=False),
)


@dataclass(frozen=True, slots=True)
class Key:
    """A key to show: its binding, its label here, and whether it is enabled."""

    binding: Binding
    label: str
    enabled: bool
    tooltip: str


class FittedFooter(Footer):
    """The app's footer (always compact). Screens may set ``SHORT_LABELS``: action to
    a shorter label, or ``""`` to leave the key out where room is short."""

    def __init__(self) -> None:
        super().__init__(compact=True)
        self._width = 0

    def _keys(self) -> tuple[list[Key], list[Key], list[Key]]:
        """The screen's own keys, the screen keys, and the quit key, as bound now."""
        own: list[Key] = []
        screens: list[Key] = []
        quit_: list[Key] = []
        seen: set[str] = set()
        for _, binding, enabled, tooltip in self.screen.active_bindings.values():
            if binding.action in seen:
                continue  # one key per action, as Textual's footer shows
            if binding.action in QUIT_ACTIONS:
                quit_.append(Key(binding, binding.description or "Quit", enabled, tooltip))
            elif not binding.show:
                continue
            elif is_screen_key(binding):
                screens.append(Key(binding, binding.description, enabled, tooltip))
            else:
                own.append(Key(binding, binding.description, enabled, tooltip))
            seen.add(binding.action)
        return own, screens, quit_

    def _width_of(self, keys: list[Key], palette: str) -> int:
        """Cells the keys take in a compact footer: each key, then a space."""
        total = sum(cell_len(self.app.get_key_display(k.binding)) + 1 for k in keys)
        total += sum(cell_len(k.label) + 1 for k in keys if k.label)
        # The palette key: its left border, the key, a space, the label, and the padding
        # on its right (Textual's compact footer means to drop it, but its own rule for
        # the palette key comes later and wins).
        total += 2 + cell_len(self.app.get_key_display(self._palette_binding()))
        return total + (1 + cell_len(palette) if palette else 0)

    def _palette_binding(self) -> Binding:
        found = self.screen.active_bindings.get(self.app.COMMAND_PALETTE_BINDING)
        return found[1] if found else Binding(self.app.COMMAND_PALETTE_BINDING, "", "")

    def _laid_out(self, width: int) -> tuple[list[Key], str]:
        """The keys of the first layout that fits ``width`` (or of the last), and the
        palette's label."""
        own, screens, quit_ = self._keys()
        shorts: dict[str, str] = getattr(self.screen, "SHORT_LABELS", {})
        palette = self._palette_binding().description
        keys: list[Key] = []
        label = palette
        for layout in LAYOUTS:
            keys = []
            for key in own:
                short = shorts.get(key.binding.action, key.label) if layout.short else key.label
                if short:
                    keys.append(Key(key.binding, short, key.enabled, key.tooltip))
            keys += screens if layout.screens else []
            keys += quit_ if layout.quit else []
            label = palette if layout.palette else ""
            if self._width_of(keys, label) <= width:
                break
        return keys, label

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        self._width = self.size.width or self.app.size.width
        keys, palette = self._laid_out(self._width)
        yield from self._footer_keys(keys)
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            found = self.screen.active_bindings.get(self.app.COMMAND_PALETTE_BINDING)
            if found is not None:
                _, binding, enabled, _ = found
                yield FooterKey(
                    binding.key,
                    self.app.get_key_display(binding),
                    palette,
                    binding.action,
                    classes="-command-palette",
                    disabled=not enabled,
                    tooltip=binding.tooltip or binding.description,
                )

    def _footer_keys(self, keys: list[Key]) -> Iterator[FooterKey]:
        for key in keys:
            yield FooterKey(
                key.binding.key,
                self.app.get_key_display(key.binding),
                key.label,
                key.binding.action,
                disabled=not key.enabled,
                tooltip=key.tooltip or key.binding.tooltip or key.binding.description,
            ).data_bind(compact=Footer.compact)

    def on_resize(self, event: events.Resize) -> None:
        # Another width may take another layout (a terminal resized mid-race).
        if event.size.width != self._width and self._bindings_ready:
            self._width = event.size.width
            self.call_after_refresh(self.recompose)
