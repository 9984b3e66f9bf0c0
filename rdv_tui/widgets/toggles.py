"""Checkboxes and radio buttons whose on/off state shows in the glyph, not only its colour.

Textual draws the same ``X`` (or ``●``) for both states and tells them apart by colour
alone, which a monochrome terminal, a colour-blind user or a screenshot in print
loses (issue 16). These subclasses draw ``✔`` / blank and ``●`` / ``○``.
"""

from __future__ import annotations

from textual.widgets import Checkbox, RadioButton


class OnOffCheckbox(Checkbox):
    """A checkbox that shows ``✔`` when on and a blank when off."""

    BUTTON_INNER = " "

    def watch_value(self) -> None:
        self.BUTTON_INNER = "✔" if self.value else " "
        super().watch_value()


class OnOffRadioButton(RadioButton):
    """A radio button that shows ``●`` when on and ``○`` when off."""

    BUTTON_INNER = "○"

    def watch_value(self) -> None:
        self.BUTTON_INNER = "●" if self.value else "○"
        super().watch_value()
