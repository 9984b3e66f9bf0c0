"""The link strip: which path the session uses, to whom, RTT and a throughput sparkline."""

from __future__ import annotations

from collections import deque

from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Sparkline, Static

from rdv_tui.cli.formatting import human_bytes

HISTORY = 60
"""Throughput samples kept for the sparkline (one per sample period)."""

NARROW = 60
"""Below this many columns the strip keeps its row for the text (path, peer, RTT, rates)."""


class _WholeFigures(Static):
    """One line of figures: those that fit whole, in order; the rest are left out.

    The strip's text was one string cut with an ellipsis: at 60 columns it read
    ``RTT 23.4 ms  ↓11.…``, a rate cut inside its number. A first figure wider than the
    line (a long reason the session ended) is still cut, with the ellipsis.
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._figures: list[Content] = []
        self._ranks: list[int] = []

    def show(self, figures: list[Content], ranks: list[int] | None = None) -> None:
        """``figures`` in order; where they do not all fit, those of the lowest ``ranks``
        (default: their order) are kept, up to the first that does not fit, and shown in
        order."""
        self._figures = figures
        self._ranks = ranks if ranks is not None else list(range(len(figures)))
        self._draw()

    def _draw(self) -> None:
        width = self.content_size.width or None
        kept = {0}  # the first is always shown (cut with the ellipsis if it must be)
        used = self._figures[0].cell_length if self._figures else 0
        for i in sorted(range(1, len(self._figures)), key=lambda i: (self._ranks[i], i)):
            size = self._figures[i].cell_length
            if width is not None and used + size > width:
                break  # not a later, shorter one: the idle rate alone misled
            kept.add(i)
            used += size
        line = Content("")
        for i, figure in enumerate(self._figures):
            if i in kept:
                line = line + figure
        self.update(line)

    def on_resize(self, event: events.Resize) -> None:
        self._draw()


class LinkStrip(Horizontal):
    """One line: path, peer, RTT, current rates, and the recent throughput.

    Attributes:
        path: ``p2p``, ``relay`` or ``""`` before the session is up.
        peer_addr: The peer's address as seen on the conn.
        rtt_ms: TCP RTT of the conn (to the peer, or to the server on the relay).
        closed: Why the session ended, once it has.
    """

    DEFAULT_CSS = """
    LinkStrip { height: 1; background: $boost; padding: 0 1; }
    LinkStrip #link-info { width: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    LinkStrip Sparkline { width: 25%; max-width: 40; height: 1; }
    /* Below 60 columns the sparkline left the text 28 cells: the RTT was cut ('RTT 8…'). */
    LinkStrip.-narrow Sparkline { display: none; }
    LinkStrip Sparkline > .sparkline--max-color { color: $success; }
    LinkStrip Sparkline > .sparkline--min-color { color: $primary-muted; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.path = ""
        self.peer_addr = ""
        self.rtt_ms: float | None = None
        self.rate_in = 0.0
        self.rate_out = 0.0
        self.closed = ""
        self.samples: deque[float] = deque([0.0] * HISTORY, maxlen=HISTORY)
        self._info = _WholeFigures(id="link-info")
        self._info.show(self._figures())
        self._sparkline = Sparkline(list(self.samples), id="throughput")

    def compose(self) -> ComposeResult:
        yield self._info
        yield self._sparkline

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < NARROW, "-narrow")

    def _ranks(self) -> list[int] | None:
        """Which figures a narrow strip keeps first: the path, the RTT, the rate that
        moves, then the idle one (at 60 columns an upload at 50 MiB/s read ``↓0 B/s``,
        the idle download: the transfer looked stalled)."""
        if self.closed or not self.path:
            return None
        rtt = [1] if self.rtt_ms is not None else []
        busy_out = self.rate_out > self.rate_in
        return [0, *rtt, 3 if busy_out else 2, 2 if busy_out else 3]

    def _figures(self) -> list[Content]:
        if self.closed:
            return [Content.assemble(("✗ session ended: ", "bold $text-error"), self.closed)]
        if not self.path:
            return [Content.styled("no session yet: connect first (F2)", "$text-muted")]
        if self.path == "p2p":
            figures = [Content.assemble(("★ P2P ", "bold $text-success"), self.peer_addr)]
            rtt_label = "  RTT "
        else:
            figures = [
                Content.assemble(("⇄ RELAY ", "bold $text-warning"), ("via server", "$text-muted"))
            ]
            rtt_label = "  RTT to server "
        if self.rtt_ms is not None:
            figures.append(Content.assemble((rtt_label, "$text-muted"), f"{self.rtt_ms:.1f} ms"))
        figures += [
            Content.assemble(("  ↓", "$text-muted"), f"{human_bytes(self.rate_in)}/s"),
            Content.assemble((" ↑", "$text-muted"), f"{human_bytes(self.rate_out)}/s "),
        ]
        return figures

    def redraw(self) -> None:
        """Refresh the text (after changing the attributes)."""
        self._info.show(self._figures(), self._ranks())

    def sample(self, rate_in: float, rate_out: float) -> None:
        """Record the current rates (bytes per second) and move the sparkline."""
        self.rate_in, self.rate_out = rate_in, rate_out
        self.samples.append(rate_in + rate_out)
        self._sparkline.data = list(self.samples)
        self.redraw()
