"""The files pane's offer bar: the peer's pending offers, one at a time, Accept / Reject."""

from __future__ import annotations

import asyncio

from textual import events, on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Static

from rdv_core.session import IncomingOffer
from rdv_tui.cli.formatting import human_bytes, plural
from rdv_tui.look_alike import look_alikes, shown_apart

#: Characters of a path shown where a line holds several (a peer may offer 4,096).
NAME_SHOWN = 60
#: Below this many columns the offer's text goes above its buttons.
STACKED = 60


def tail(path: str, limit: int = NAME_SHOWN) -> str:
    """``path`` in at most ``limit`` characters: its end (the file's name), after ``…``."""
    return path if len(path) <= limit else "…" + path[len(path) - limit + 1 :]


class _OfferText(Static):
    """``Peer offers N files, SIZE: name, name, name and K more``, each name cut (keeping
    its end) to the width it gets: cut to :data:`NAME_SHOWN` characters whatever the
    width, a long name was then folded mid-name (``…-offer-bar-1`` / ``.txt`` at 60
    columns; ``…-name-for-t`` beside the buttons at 80)."""

    def __init__(self, *, id: str) -> None:
        super().__init__("", id=id, markup=False)
        self._parts: tuple[str, list[str], int] = ("", [], 0)

    @property
    def parts(self) -> tuple[str, list[str], int]:
        """What :meth:`show` was given last."""
        return self._parts

    def show(self, head: str, names: list[str], files: int) -> None:
        """``head``, then the first ``names`` of the ``files`` offered."""
        self._parts = (head, names, files)
        self._fit()

    def _fit(self) -> None:
        head, names, files = self._parts
        width = self.content_size.width or NAME_SHOWN
        limit = max(8, min(NAME_SHOWN, width - 1))  # the name and its comma on one line
        # Above its buttons (a narrow pane), one name only: three took a line each, and at
        # 60x20 the bar grew past the pane, Accept and Reject out of sight.
        stacked = self.parent is not None and self.parent.has_class("-stacked")
        shown = names[:1] if stacked else names
        more = f" and {files - len(shown)} more" if files > len(shown) else ""
        self.update(f"{head}{', '.join(tail(name, limit) for name in shown)}{more}")

    def on_resize(self) -> None:
        self._fit()


class OfferBar(Horizontal):
    """The peer's pending offer, with Accept / Reject. Offers queue up in order."""

    DEFAULT_CSS = """
    OfferBar { height: auto; display: none; background: $warning-muted; padding: 0 1; }
    OfferBar.-pending { display: block; layout: horizontal; }
    OfferBar #offer-text { width: 1fr; }
    OfferBar #offer-buttons { width: 46%; min-width: 24; max-width: 34; height: 1; }
    OfferBar #offer-buttons Button { width: 1fr; min-width: 11; margin-left: 1; }
    OfferBar.-pending.-stacked { layout: vertical; }
    OfferBar.-stacked #offer-buttons { width: 100%; max-width: 100%; }
    """
    # The buttons: a fifth of the bar each, 11 to 16 cells (at 40 columns two 16-cell
    # buttons left the offer's text 2 cells: 'Pe'). Below STACKED columns the text goes
    # above them: beside them it had 12 cells at 40 columns, and an offered name broke
    # into five lines ('holiday-phot', 'os-2026-summ', ...).

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._queue: list[tuple[IncomingOffer, asyncio.Future[bool]]] = []
        #: The answer to each send (by its first batch): its later batches take it too.
        self._sends: dict[int, asyncio.Future[bool]] = {}

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < STACKED, "-stacked")
        self.query_one(_OfferText).show(*self.query_one(_OfferText).parts)

    def compose(self) -> ComposeResult:
        yield _OfferText(id="offer-text")
        # The keys are on the buttons, not in the footer (no room there at 80 columns).
        with Horizontal(id="offer-buttons"):
            yield Button("Accept ^t", variant="success", id="offer-accept", compact=True)
            yield Button("Reject ^n", variant="error", id="offer-reject", compact=True)

    @property
    def pending(self) -> int:
        """Offers waiting for an answer."""
        return len(self._queue)

    def ask(self, offer: IncomingOffer) -> asyncio.Future[bool]:
        """Queue an offer; the future resolves with the user's answer.

        A send of many files comes in many batches (each offer names its send): the
        user answers its first batch once, and the later ones follow that answer.
        """
        if offer.send is not None and offer.send.first in self._sends:
            return self._sends[offer.send.first]
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if offer.send is not None:
            self._sends[offer.send.first] = future
        self._queue.append((offer, future))
        self._show()
        return future

    def withdraw(self) -> None:
        """The session ended: its offers can no longer be answered, and the answers
        given to its sends must not answer the next session's (whose transfer ids,
        and so ``send.first``, start at 1 again: its first send was answered without
        asking)."""
        for _, future in self._queue:
            future.cancel()  # the session's offer tasks are cancelled with it anyway
        self._queue.clear()
        self._sends.clear()
        self._show()

    def answer(self, accept: bool) -> None:
        """Answer the first pending offer."""
        if not self._queue:
            return
        _, future = self._queue.pop(0)
        if not future.done():
            future.set_result(accept)
        self._show()

    def _show(self) -> None:
        self.screen.refresh_bindings()  # the offer keys appear or disappear
        if not self._queue:
            self.remove_class("-pending")
            return
        offer = self._queue[0][0]
        files, size = len(offer.files), offer.total_size
        if offer.send is not None:
            files, size = offer.send.files, offer.send.bytes
        head = f"Peer offers {plural(files, 'file')}, {human_bytes(size)}: "
        names = [f.path for f in offer.files[:3]]
        alike = look_alikes(f.path for f in offer.files)
        if alike:  # the same on screen, two files on disk (rdv_tui/look_alike.py)
            pair = " and ".join(shown_apart(name) for name in alike[:2])
            head += f"{len(alike)} names look alike ({pair}); "
            names = [shown_apart(name) if name in alike else name for name in names]
        self.query_one(_OfferText).show(head, names, files)
        self.add_class("-pending")

    @on(Button.Pressed, "#offer-accept")
    def _accept(self) -> None:
        self.answer(True)

    @on(Button.Pressed, "#offer-reject")
    def _reject(self) -> None:
        self.answer(False)
