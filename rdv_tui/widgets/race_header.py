"""The server phase header and the result banner of the race dashboard."""

from __future__ import annotations

from rich.text import Text
from textual.content import Content
from textual.widgets import Static

from rdv_core.wire import Addr
from rdv_tui.cli.formatting import format_ms, plural, why_relay
from rdv_tui.race_model import RaceModel
from rdv_tui.widgets.figures import FigureLines
from rdv_tui.widgets.log_line import KeptFigures


def _space_of(addr: str | None) -> str:
    if not addr:
        return ""
    try:
        return Addr.parse(addr).space.label
    except ValueError:
        return ""


class ServerPhaseHeader(FigureLines):
    """Who we are, which server, and how the rendezvous went (connect, TLS, lobby, observed)."""

    DEFAULT_CSS = """
    ServerPhaseHeader { height: auto; padding: 0 1; background: $boost; }
    """

    def show(self, model: RaceModel, *, running: bool = True) -> None:
        """Redraw from the model's server phase (a narrow header breaks between figures);
        ``running``: whether an attempt is under way (its first event may be to come)."""
        s = model.server
        muted = "$text-muted"
        first: list[Content] = []
        if s.method:
            first.append(Content.assemble((s.method, "bold $accent"), " ", s.server))
            if s.picker:
                first.append(Content(s.picker))
            if s.spaces:
                first.append(Content.styled(s.spaces, muted))
        elif running:
            first.append(Content.styled("waiting for the attempt to start…", muted))
        else:  # F3 before connecting: it waited for an attempt nobody had started
            first.append(Content.styled("no attempt yet", muted))

        second: list[Content] = []
        if s.server_addr:
            second.append(Content.assemble(("connect ", muted), format_ms(s.connect_s)))
            if s.tls:
                second.append(Content.styled(s.tls, "$text-success"))
        if s.lobby_s is not None:
            second.append(Content.assemble(("lobby ", muted), format_ms(s.lobby_s)))
        if s.responded_t is not None:
            space = _space_of(s.observed_addr)
            observed = Content.assemble(("observed ", muted), (s.observed_addr or "none", "bold"))
            if space:
                observed = observed + Content.styled(f" {space}", muted)
            second.append(observed)
            second.append(Content.assemble(("peers ", muted), str(len(s.peer_addrs))))
        elif s.server_addr and model.result is None:
            # Only while it is true: an attempt that failed in the lobby (timeout, the
            # server gone) kept saying it waited, under its FAILED banner.
            second.append(Content.styled("waiting in the lobby for the peer…", muted))
        lines = [first, second] if second else [first]
        if s.warning:
            lines.append([Content.assemble(("⚠ ", "bold $warning"), (s.warning, "$warning"))])
        if s.rejected:
            lines.append([Content.assemble(("✗ server refused: ", "bold $error"), s.rejected)])
        if s.rejoin and model.result is None:
            lines.append([Content.assemble(("↻ ", "bold $warning"), (s.rejoin, "$warning"))])
        self.show_figures(lines)


class ResultBanner(Static):
    """How the attempt ended: p2p or relay, with which address, in how long."""

    DEFAULT_CSS = """
    ResultBanner {
        height: auto; padding: 0 1;
        background: $panel; color: $text-muted; text-style: bold;
    }
    ResultBanner.-p2p { background: $success-muted; color: $text-success; }
    ResultBanner.-relay { background: $warning-muted; color: $text-warning; }
    ResultBanner.-failed { background: $error-muted; color: $text-error; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        # Plain text, never markup: a failure's reason quotes what a server answered.
        super().__init__(id=id, markup=False)
        self._text = ""

    def _draw(self) -> None:
        # Broken here, never between a figure and its unit: Textual's wrap broke at any
        # space, and at 60 columns the banner read "... #1) in 671" over "ms".
        width = self.content_size.width
        text = self._text
        self.update(KeptFigures(Text(text)).lines_for(width).plain if width else text)

    def on_resize(self) -> None:
        self._draw()

    def show(self, model: RaceModel, *, extra: str = "") -> None:
        """Redraw from the model's result."""
        r = model.result
        self.remove_class("-p2p", "-relay", "-failed")
        if r is None:
            running = len([row for row in model.rows.values() if not row.state.is_final])
            if model.rows:
                text = f"racing… {plural(running, 'candidate')} in flight"
            elif model.server.connected_t is not None:
                text = "waiting in the server's lobby for the peer…"
            elif model.events:
                text = "connecting to the server…"
            else:
                text = "no race yet: F2 to connect, or rdv tui --replay FILE"
            if model.events:
                text += f" {model.t_end:.1f} s"
        elif not r.ok:
            self.add_class("-failed")
            text = f"✗ FAILED after {format_ms(r.elapsed_s)}: {r.reason}"
        elif r.is_relay:
            self.add_class("-relay")
            via = r.candidate.addr if r.candidate else "?"
            # Why, from the race (a relay forced by --spaces read "no direct path won").
            why = why_relay(model.events)
            text = f"⇄ RELAY via server {via} in {format_ms(r.elapsed_s)}: {why}"
        else:
            self.add_class("-p2p")
            c = r.candidate
            where = f"{c.addr} ({c.space}, {c.origin}, #{c.id})" if c else "?"
            text = f"★ P2P to {where} in {format_ms(r.elapsed_s)}"
        if extra:
            text += f"  ·  {extra}"
        self._text = text
        self._draw()
