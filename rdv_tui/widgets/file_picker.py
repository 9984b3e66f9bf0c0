"""The files pane's picker: a file or a folder to send, from a tree of the current folder."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Label, Static


class FilePicker(ModalScreen[Path | None]):
    """Pick a file or folder to send (Enter on a file, or the Select button for a folder)."""

    DEFAULT_CSS = """
    FilePicker { align: center middle; }
    FilePicker > Vertical { width: 80%; height: 80%; border: thick $primary; background: $surface; }
    FilePicker DirectoryTree { height: 1fr; }
    FilePicker Horizontal { height: auto; }
    FilePicker #picked { width: 1fr; padding: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.picked: Path | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Send a file or folder from {self.root}", markup=False)
            yield DirectoryTree(self.root)
            with Horizontal():
                yield Static("", id="picked", markup=False)
                yield Button("Send this", variant="primary", id="pick")
                yield Button("Cancel", id="cancel")

    @on(DirectoryTree.FileSelected)
    def _file(self, event: DirectoryTree.FileSelected) -> None:
        self.dismiss(event.path)

    @on(DirectoryTree.DirectorySelected)
    def _folder(self, event: DirectoryTree.DirectorySelected) -> None:
        self.picked = event.path
        self.query_one("#picked", Static).update(str(event.path))

    @on(Button.Pressed, "#pick")
    def _pick(self) -> None:
        self.dismiss(self.picked)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        """Close without picking."""
        self.dismiss(None)
