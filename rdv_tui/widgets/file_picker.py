"""The files pane's picker: a file or a folder to send, from a tree that starts in the
current folder and can climb to its parents (``backspace`` or the ``Up`` button)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Label, Static

from rdv_tui.widgets.fitted_footer import FittedFooter


class FilePicker(ModalScreen[Path | None]):
    """Pick a file or folder to send (Enter on a file, or the Select button for a folder).

    Attributes:
        root: The folder the tree shows (its parents are one ``backspace`` away).
        picked: The folder chosen with Enter, sent by ``Send this``.
    """

    DEFAULT_CSS = """
    FilePicker { align: center middle; }
    FilePicker > Vertical { width: 80%; height: 80%; border: thick $primary; background: $surface; }
    FilePicker #where { width: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    FilePicker DirectoryTree { height: 1fr; }
    FilePicker Horizontal { height: auto; }
    FilePicker #picked { width: 1fr; padding: 0 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        # The tree showed the current folder and nothing above it: a file in the home
        # folder or on another disk could only be typed. No DirectoryTree key is backspace.
        Binding("backspace", "up", "Parent folder"),
    ]

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root.resolve()
        self.picked: Path | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            with Horizontal():
                yield Label(self._where(), id="where", markup=False)
                yield Button("Up", id="up", tooltip="the parent folder (backspace)", compact=True)
            yield DirectoryTree(self.root)
            with Horizontal():
                yield Static("", id="picked", markup=False)
                yield Button("Send this", variant="primary", id="pick", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
        yield FittedFooter()

    def on_mount(self) -> None:
        self.query_one(DirectoryTree).focus()

    def _where(self) -> str:
        return f"Send a file or folder from {self.root}"

    @on(Button.Pressed, "#up")
    def action_up(self) -> None:
        """Show the parent folder (nothing above the file system's root)."""
        parent = self.root.parent
        if parent == self.root:
            self.notify("this is the top folder", title="Send")
            return
        self.root = parent
        self.query_one("#where", Label).update(self._where())
        tree = self.query_one(DirectoryTree)
        tree.path = parent
        tree.focus()

    @on(DirectoryTree.FileSelected)
    def _file(self, event: DirectoryTree.FileSelected) -> None:
        self.dismiss(event.path)

    @on(DirectoryTree.DirectorySelected)
    def _folder(self, event: DirectoryTree.DirectorySelected) -> None:
        self.picked = event.path
        self.query_one("#picked", Static).update(str(event.path))

    @on(Button.Pressed, "#pick")
    def _pick(self) -> None:
        if self.picked is None:  # dismissing None read as "cancelled", with no word
            self.notify("choose a file, or a folder with Enter, first", title="Send")
            return
        self.dismiss(self.picked)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        """Close without picking."""
        self.dismiss(None)
