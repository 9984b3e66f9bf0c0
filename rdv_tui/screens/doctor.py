"""The Doctor screen: the doctor's checks, live, field by field, each explained in plain words.

It runs :class:`rdv_core.doctor.Doctor` against the app's server (the embedded one, or
``--server``) and fills one row per finding as it is known: the check, the result, and what
the result means for a direct conn (docs/PROTOCOL.md section 15). ``r`` runs it again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich import box
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from rdv_core.doctor import LABELS, Doctor, Finding, Report, explain, summary, uplink_of
from rdv_core.wire import printable
from rdv_tui.widgets.fitted_footer import FittedFooter

_WORDS = {True: "yes", False: "no", None: "…"}
#: From this many columns on, the table also shows what was seen.
WIDE = 120
#: Below this many columns the result and its meaning share a column, one under the other:
#: beside a 20-cell result (``endpoint-independent``) the meaning had no room at all, and
#: at 40 columns the screen showed each check's result and no word of what it means.
NARROW = 72


def _value(finding: Finding | None) -> str:
    if finding is None:
        return "…"
    if finding.value is None:
        return "not measured"
    if isinstance(finding.value, bool):
        return _WORDS[finding.value]
    return str(finding.value)


class DoctorScreen(Screen[None]):
    """Why this machine can or cannot take direct conns.

    Attributes:
        urls: The servers to check (set by the app; empty: nothing to check yet).
        report: The last complete report (None before the first run ends).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "run", "Run again"),
        Binding("s", "app.save_svg", "Save SVG"),
    ]

    SHORT_LABELS: ClassVar[dict[str, str]] = {"run": "Run", "app.save_svg": "SVG"}
    """Where the footer is short (rdv_tui/widgets/fitted_footer.py)."""

    _ready = False

    def __init__(self, urls: Iterable[str] = ()) -> None:
        super().__init__()
        self.urls = list(urls)
        #: The app's embedded server (set when it listens): checked directly, never through
        #: the environment's proxy (an office proxy cannot reach this machine's loopback).
        self.own_server = ""
        self.report: Report | None = None
        self._findings: dict[str, Finding] = {}
        # Not ``_running``: that is Textual's own flag (the screen's message loop runs),
        # True from the start, so the doctor never ran on F6 and ``r`` did nothing.
        self._checking = False

    def compose(self) -> ComposeResult:
        yield Static("", id="doctor-summary", markup=False)
        with VerticalScroll(id="doctor-body"):
            yield Static("", id="findings")
            yield Static("", id="doctor-servers")
        yield FittedFooter()  # every key it shows is whole (tests/tui/test_footer_fits.py)

    def on_mount(self) -> None:
        self.sub_title = "doctor"
        self._ready = True
        self._draw_findings()
        if self.report is not None:
            self.show_report(self.report)
        elif self.urls:
            self.action_run()
        else:
            self._summary("no server to check: connect to one first (F2)")

    def _draw_findings(self) -> None:
        # Narrow terminals get the meaning only; the raw observation needs room.
        wide = self.size.width >= WIDE
        narrow = self.size.width < NARROW
        table = Table(expand=True, box=box.SIMPLE_HEAD, pad_edge=False)
        table.add_column("check", no_wrap=True, style="bold")
        if narrow:
            table.add_column("result and meaning", ratio=1)
        else:
            table.add_column("result", no_wrap=True)
            table.add_column("what it means", ratio=4)
        if wide:
            table.add_column("what was seen", ratio=4, style="dim")
        for name, label in LABELS.items():
            finding = self._findings.get(name)
            meaning = explain(name, finding) if finding and finding.value is not None else ""
            if finding is not None and finding.value is None:
                meaning = finding.reason
            seen = [finding.reason if finding else ""] if wide else []
            value = _value(finding)
            # As `rdv doctor` prints it ("sequential (+256)"), from the report this finding
            # belongs to (not a previous run's, while `r` measures again).
            shown = self.report
            if name == "allocation" and shown is not None and shown.finding(name) is finding:
                value += "" if shown.allocation_delta is None else f" ({shown.allocation_delta:+d})"
            # Reasons quote what servers answered: plain text, control characters shown.
            cells = [Text(printable(c)) for c in (value, meaning, *seen)]
            if narrow:
                result, meant = cells
                cells = [Text.assemble(result, "\n", meant) if meant.plain else result]
            table.add_row(label, *cells)
        self.query_one("#findings", Static).update(table)

    def _summary(self, text: str) -> None:
        if self._ready:
            self.query_one("#doctor-summary", Static).update(text)

    def on_resize(self) -> None:
        if self._ready:
            self._draw_findings()

    def found(self, name: str, finding: Finding) -> None:
        """Show one finding (the doctor's ``on_finding``); another uplink's (``nat@eth1
        203.0.113.30``) in a line per uplink under the table, until the report replaces it."""
        self._findings[name] = finding
        if self._ready and name in LABELS:
            self._draw_findings()
        elif self._ready and uplink_of(name)[1]:
            rows: dict[str, list[str]] = {}
            for key, seen in self._findings.items():
                field, uplink = uplink_of(key)
                if uplink and field in LABELS:
                    rows.setdefault(uplink, []).append(f"{LABELS[field]} {_value(seen)}")
            lines = [f"{uplink}: {', '.join(row)}" for uplink, row in rows.items()]
            self.query_one("#doctor-servers", Static).update(
                Text(printable("\n".join(lines), keep_newlines=True))
            )

    def show_report(self, report: Report) -> None:
        """Show a whole report (a finished run, a screenshot scene)."""
        self.report = report
        for name in LABELS:
            self.found(name, report.finding(name))
        self._summary(summary(report))
        lines = []
        for server in report.servers:
            rtt = f"{server.rtt_ms:.1f} ms" if server.rtt_ms is not None else "-"
            probes = ", ".join(str(p) for p in server.probe_ports) or "none"
            lines.append(
                f"{server.url}: IPv4 {_value(server.tcp4)}, IPv6 {_value(server.tcp6)}, "
                f"RTT {rtt}, observed {server.observed or '-'}, probe ports {probes}, "
                f"dial-back {_value(server.dial_back)}"
            )
        if self._ready:
            self.query_one("#doctor-servers", Static).update(
                Text(printable("\n".join(lines), keep_newlines=True))
            )

    def action_run(self) -> None:
        """Run the doctor again."""
        if self._checking or not self.urls:
            return
        self._checking = True
        self._summary(f"checking {', '.join(self.urls)}…")
        self._findings.clear()
        if self._ready:
            self._draw_findings()
        self.run_worker(self._run(), group="doctor", exclusive=True)

    async def _run(self) -> None:
        try:
            own = bool(self.own_server) and self.urls == [self.own_server]
            report = await Doctor(self.urls, on_finding=self.found, trust_env=not own).run()
        except ValueError as exc:
            self._summary(f"cannot check: {exc}")
            return
        finally:
            self._checking = False
        self.show_report(report)

    def palette_commands(self) -> Iterable[SystemCommand]:
        """This screen's command palette entries."""
        yield SystemCommand(
            "Run the doctor", "check NAT, filtering, hairpinning again", self.action_run
        )
