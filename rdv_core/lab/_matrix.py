"""The filtering x distance matrix: every way two home routers can treat early SYNs, near and far.

Each *cell* is one lab: peer A (the dialer) and peer B (the accepter), each behind a
port-preserving NAT, with A's router treating unsolicited SYNs one way ({drop, RST, ICMP
reject}) and B's another ({drop, RST}), each peer some milliseconds from its own router
(one way, on the peer's own link: the router answers strangers at once while the peer sits
behind it, docs/LAB-NOTES.md section 11), optionally with loss on both links.

Each cell states what physics allows (``expect``) and why. A direct path exists when at
least one side's mapping, once opened by that side's SYN, stays open for the other side's
SYN: a drop or an ICMP reject leaves the sender's mapping alone, so a SYN that meets one
opens its own router for good. Only when *both* routers answer with RST does every SYN's
mapping live just the few microseconds its SYN takes to the far router and back: the two
SYNs must then leave their routers within microseconds of each other. At zero delay quick
bursts make that likely; with a peer milliseconds behind its router each side gets one
such chance per round trip to its router, a lottery: those cells expect the relay, and a
direct conn there counts as a lucky draw, never as a failure. Unless B, the accepter, sits at
its router: then A's router resets B's SYN within microseconds, and B re-opens its mapping with
a SYN that dies at A's router without a reset (rdv_core.client._preopen), which A's next SYN
passes, at any distance of A's.

The table (:func:`format_table`) is a list of :class:`Column` objects over
:class:`MatrixRow` objects. To add a column (e.g. a *predicted* outcome next to the
measured one), put a value in :attr:`MatrixRow.extra` and a ``Column`` that reads it into
the list, at the place you want (:func:`insert_column`); nothing else changes.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from rdv_core.lab._fold import fill, fold, lay_out
from rdv_core.lab._runner import RunResult, run_preset
from rdv_core.lab._spec import Firewall, HostSpec, Impairment, LabSpec, NatKind, RouterSpec

Expect = Literal["direct", "relay"]

#: A's router's treatment of early SYNs, by the name used in cell names.
FILTERS_A: Final = {"drop": Firewall.DROP, "rst": Firewall.NONE, "icmp": Firewall.REJECT_ICMP}
#: B's router's.
FILTERS_B: Final = {"drop": Firewall.DROP, "rst": Firewall.NONE}
#: One-way delays between a peer and its router, ms.
DELAYS: Final = (0.0, 5.0, 20.0, 50.0, 100.0)
#: Bytes piped through each run of a cell.
MATRIX_PAYLOAD: Final = 16 * 1024
#: Loss per crossing of each peer's link in the lossy cells, and their delay.
LOSS: Final = 0.05
LOSS_DELAY: Final = 20.0


@dataclass(frozen=True, slots=True)
class MatrixCell:
    """One cell: a lab and what it should give.

    Attributes:
        name: ``a-rst/b-drop 20/0`` (filters, then A's and B's delay in ms, then loss).
        spec: The lab.
        expect: The physically right outcome.
        why: One sentence.
        lottery: A direct path opens only by a lucky coincidence (both routers reset): a
            direct outcome is then fine too.
    """

    name: str
    spec: LabSpec
    expect: Expect
    why: str
    lottery: bool = False

    def as_expected(self, outcome: str) -> bool:
        """True if ``outcome`` (direct, relay, failed) is right for this cell."""
        if outcome == "failed":
            return False
        return outcome == self.expect or (self.lottery and outcome == "direct")


def _physics(fa: str, fb: str, delay_a: float, delay_b: float) -> tuple[Expect, str, bool]:
    if fa == "rst" and fb == "rst":
        if delay_b == 0:
            # docs/LAB-NOTES.md section 11, "cone-rst: the pre-opening dial".
            return (
                "direct",
                "both routers reset early SYNs, but B sits at its router: A's router resets "
                "B's SYN within microseconds, so B re-opens its mapping with a SYN that A's "
                "router drops without a reset, and A's next SYN passes it",
                False,
            )
        return (
            "relay",
            "both routers reset early SYNs, so each SYN opens its mapping only for the "
            "microseconds to the far router and back, once per round trip to its own "
            "router: the SYNs cross only by luck",
            True,
        )
    keeper = "A's" if fa != "rst" else "B's"
    return (
        "direct",
        f"{keeper} router drops or ICMP-rejects early SYNs, which leaves the other side's "
        "mapping open: its next SYN gets through",
        False,
    )


def _cell(fa: str, fb: str, delay_a: float, delay_b: float, loss: float) -> MatrixCell:
    name = f"a-{fa}/b-{fb} {delay_a:g}/{delay_b:g}" + (f" loss{loss * 100:g}%" if loss else "")
    expect, why, lottery = _physics(fa, fb, delay_a, delay_b)
    spec = LabSpec(
        name=name,
        summary=f"A behind a {fa} router {delay_a:g} ms away, B behind a {fb} router "
        f"{delay_b:g} ms away" + (f", {loss * 100:g}% loss each link" if loss else ""),
        routers=(
            RouterSpec("rtrA", NatKind.PORT_PRESERVING, FILTERS_A[fa]),
            RouterSpec("rtrB", NatKind.PORT_PRESERVING, FILTERS_B[fb]),
        ),
        hosts=(
            HostSpec("cliA", "rtrA", Impairment(delay_ms=delay_a, loss=loss)),
            HostSpec("cliB", "rtrB", Impairment(delay_ms=delay_b, loss=loss)),
        ),
        expect=expect,
        why=why,
    )
    return MatrixCell(name, spec, expect, why, lottery)


def matrix_cells(
    *,
    delays: Sequence[float] = DELAYS,
    loss: float = LOSS,
    loss_delay: float = LOSS_DELAY,
    pattern: str | None = None,
) -> list[MatrixCell]:
    """Every cell: filters x (symmetric delays, then A slow / B slow), then lossy cells.

    Args:
        delays: The one-way delays (ms); 0 gives the symmetric zero-delay cell only.
        loss: Loss of the lossy cells (0: none).
        loss_delay: Their symmetric delay.
        pattern: Keep only cells whose name matches this ``fnmatch`` pattern (several
            patterns: separated by ``|``).
    """
    pairs: list[tuple[float, float]] = [(d, d) for d in delays]
    pairs += [(d, 0.0) for d in delays if d > 0]
    pairs += [(0.0, d) for d in delays if d > 0]
    cells = []
    for fa in FILTERS_A:
        for fb in FILTERS_B:
            for delay_a, delay_b in pairs:
                cells.append(_cell(fa, fb, delay_a, delay_b, 0.0))
            if loss:
                cells.append(_cell(fa, fb, loss_delay, loss_delay, loss))
    if pattern:
        patterns = pattern.split("|")
        cells = [c for c in cells if any(fnmatch.fnmatchcase(c.name, p) for p in patterns)]
    return cells


@dataclass(slots=True)
class MatrixRow:
    """A cell and what its runs gave: one line of the table.

    Attributes:
        cell: The cell.
        summary: :meth:`~rdv_core.lab.PresetResult.summary` of its runs.
        integrity_failures: Runs whose payload did not arrive intact on the picked path.
        extra: More columns' values by column name (e.g. ``predicted``).
        runs: The runs themselves (their events and port remaps, for a failure's story).
    """

    cell: MatrixCell
    summary: dict[str, Any]
    integrity_failures: int = 0
    extra: dict[str, str] = field(default_factory=dict)
    runs: list[RunResult] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        """``10/10 direct`` or ``7 direct, 3 relay``."""
        s = self.summary
        parts = [(s[k], k) for k in ("direct", "relay", "failed") if s[k]]
        if len(parts) == 1:
            return f"{parts[0][0]}/{s['runs']} {parts[0][1]}"
        return ", ".join(f"{n} {k}" for n, k in parts)

    @property
    def as_expected(self) -> int:
        """Runs whose outcome is right for the cell."""
        s = self.summary
        good = sum(s[k] for k in ("direct", "relay") if self.cell.as_expected(k))
        return int(good)

    @property
    def ok(self) -> bool:
        """The cell meets the bar: 9 in 10 direct where direct is expected, all relay (or
        lucky direct) where not, never a failure, never corrupt data."""
        s = self.summary
        if s["failed"] or self.integrity_failures:
            return False
        if self.cell.expect == "direct":
            return bool(s["direct"] * 10 >= 9 * s["runs"])
        return bool(self.as_expected == s["runs"])

    def to_json(self) -> dict[str, Any]:
        """The row as ``rdv lab matrix --json`` prints it."""
        return {
            "cell": self.cell.name,
            "expect": self.cell.expect,
            "lottery": self.cell.lottery,
            "outcome": self.outcome,
            "ok": self.ok,
            "integrity_failures": self.integrity_failures,
            "summary": self.summary,
            # Runs not direct because a router could not keep a peer's port (LAB-NOTES 11).
            "port_remaps": self.summary.get("port_remaps", 0),
            **self.extra,
        }


def run_cell(cell: MatrixCell, runs: int, *, rdv_command: Sequence[str]) -> MatrixRow:
    """Build the cell's lab once, race ``runs`` times, and make its row.

    Each run checks :data:`MATRIX_PAYLOAD` bytes end to end (the presets pipe 256 KiB):
    enough for integrity on any path, and slow start over 400 ms round trips makes big
    payloads cost the matrix minutes.
    """
    result = run_preset(cell.spec, runs, rdv_command=rdv_command, payload_size=MATRIX_PAYLOAD)
    bad = sum(1 for r in result.runs if r.data_ok is False)
    return MatrixRow(cell, result.summary(), bad, runs=result.runs)


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the table: a header, a width, how to read a row, and the spaces
    before it (none before the first)."""

    header: str
    width: int
    value: Callable[[MatrixRow], str]
    align: Literal["<", ">"] = "<"
    gap: int = 2


def _ms(value: float | None) -> str:
    """Milliseconds in at most 4 characters below 10 s: one decimal below 100 (``3.5``,
    ``56.8``), none above (``1068``): the table fits 80 columns."""
    if value is None:
        return "-"
    return f"{value:.1f}" if value < 99.95 else f"{value:.0f}"


def _clash(row: MatrixRow) -> str:
    # "-" for a row from before the lab counted clashes (the README's older table).
    return str(row.summary["port_remaps"]) if "port_remaps" in row.summary else "-"


#: The widest cell name (``a-icmp/b-drop 20/20 loss5%``).
CELL_WIDTH: Final = 26

#: The default columns, in order. ``outcome`` is where a ``predicted`` column belongs.
#: Together 79 columns: the numbers sit one space apart, named in :data:`LEGEND`
#: (the table was 98 columns wide, and an 80-column terminal folded every row).
COLUMNS: Final[tuple[Column, ...]] = (
    Column("cell", CELL_WIDTH, lambda r: r.cell.name),
    Column("expect", 6, lambda r: r.cell.expect + ("*" if r.cell.lottery else "")),
    Column("outcome", 17, lambda r: r.outcome),
    Column("ok", 3, lambda r: "yes" if r.ok else "NO"),
    Column("bad", 3, lambda r: str(r.integrity_failures), ">"),
    # Runs that did not go direct because a router could not keep a peer's port: the
    # zero-delay lottery, told apart from a real miss (docs/LAB-NOTES.md section 11).
    Column("clash", 5, _clash, ">", gap=1),
    Column("p50", 4, lambda r: _ms(r.summary["p50_ms"]), ">", gap=1),
    Column("p90", 4, lambda r: _ms(r.summary["p90_ms"]), ">", gap=1),
)

#: What the short headers mean, above the table (it streams for minutes: the legend is
#: read while the rows come).
LEGEND: Final = (
    "bad: runs whose payload arrived corrupt; clash: runs a router's port clash kept",
    "off the direct path; p50/p90: ms from the dialer's start to its pick",
)


def insert_column(columns: Iterable[Column], column: Column, *, after: str) -> list[Column]:
    """``columns`` with ``column`` placed right after the one headed ``after``."""
    out: list[Column] = []
    for c in columns:
        out.append(c)
        if c.header == after:
            out.append(column)
    if column not in out:
        out.append(column)
    return out


#: The columns a narrow terminal loses first, in this order: the timings, then the clash
#: count; the outcome, the bar and the integrity count stay (``--json`` keeps every figure).
SPARE: Final = ("p90", "p50", "clash")


def table_width(columns: Sequence[Column]) -> int:
    """The width of a line whose every column is full."""
    return sum(c.width for c in columns) + sum(c.gap for c in columns[1:])


def fit_columns(
    columns: Sequence[Column], room: int, names: Iterable[str] = ()
) -> tuple[list[Column], str]:
    """``columns`` for a terminal ``room`` columns wide, and a note for the legend.

    The cell column is as wide as the longest of ``names`` (the cells to run: 26 only with
    the loss cells), then the :data:`SPARE` columns go, one by one, until the table fits;
    the note says which went (empty when none). ``rdv lab matrix --predict`` was 97
    columns wide, folded by an 80-column terminal row under row.
    """
    names = list(names)
    fitted = list(columns)
    if names and fitted and fitted[0].header == "cell":
        width = max(len(fitted[0].header), *map(len, names))
        fitted[0] = dataclasses.replace(fitted[0], width=width)
    dropped: list[str] = []
    for header in SPARE:
        if table_width(fitted) <= room:
            break
        fitted = [c for c in fitted if c.header != header]
        dropped.append(header)
    if not dropped:
        return fitted, ""
    return fitted, f"left out to fit {room} columns: {', '.join(reversed(dropped))} (see --json)"


def _lines(columns: Sequence[Column], cells: Sequence[str], room: int | None) -> list[str]:
    """One row, folded onto more lines (``_fold``) where ``room`` is narrower than it."""
    spans = [(c.width, c.gap) for c in columns]
    return lay_out(cells, spans, fold(spans, room), [c.align for c in columns])


def format_header(
    columns: Sequence[Column] = COLUMNS, note: str = "", room: int | None = None
) -> list[str]:
    """The legend of the short headers (and ``note``, from :func:`fit_columns`), the
    header line(s) and the rule under them, for a terminal ``room`` wide (None: any)."""
    legend = list(LEGEND)
    if room is not None and room < max(map(len, LEGEND)):  # one sentence: refilled as one
        legend = fill(" ".join(LEGEND), room, "", "  ")
    legend += fill(note, room, "", "  ") if note else []
    head = _lines(columns, [c.header for c in columns], room)
    return [*legend, *head, "-" * max(map(len, head))]


def format_row(row: MatrixRow, columns: Sequence[Column] = COLUMNS, room: int | None = None) -> str:
    """One row of the table (more lines than one only where ``room`` is too narrow)."""
    return "\n".join(_lines(columns, [c.value(row) for c in columns], room))


def format_table(rows: Iterable[MatrixRow], columns: Sequence[Column] = COLUMNS) -> str:
    """The whole table, with a footnote for lottery cells."""
    rows = list(rows)
    lines = format_header(columns) + [format_row(r, columns) for r in rows]
    if any(r.cell.lottery for r in rows):
        lines.append(LOTTERY_NOTE)
    return "\n".join(lines)


#: The footnote of a table that has a lottery cell (its ``expect`` ends with ``*``).
LOTTERY_NOTE: Final = "* both routers reset: direct only by luck; a direct run counts as expected"
