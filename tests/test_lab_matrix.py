"""The matrix's pure parts: cells, expectations, rows, columns (no root needed)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from rdv_core.lab import (
    COLUMNS,
    LOTTERY_NOTE,
    Column,
    Firewall,
    MatrixRow,
    format_table,
    insert_column,
    matrix_cells,
)
from rdv_core.lab._builder import nft_ruleset, plan_lab, queue_rules
from rdv_core.lab._matrix import LEGEND


def _summary(direct: int, relay: int, failed: int = 0) -> dict[str, Any]:
    return {
        "runs": direct + relay + failed,
        "direct": direct,
        "relay": relay,
        "failed": failed,
        "p50_ms": 12.0,
        "p90_ms": None,
        "port_remaps": 0,
    }


def test_the_full_matrix_covers_filters_delays_and_loss() -> None:
    cells = matrix_cells()
    # 3 x 2 filters, 5 symmetric + 4 A-slow + 4 B-slow delays, plus one lossy cell each.
    assert len(cells) == 6 * (5 + 4 + 4 + 1)
    names = [c.name for c in cells]
    assert len(set(names)) == len(names)
    assert "a-icmp/b-rst 100/0" in names and "a-drop/b-drop 20/20 loss5%" in names
    by_name = {c.name: c for c in cells}
    # Both routers reset: direct while B (the accepter) sits at its router (its pre-opening
    # dial), a lottery as soon as B is far from it.
    assert by_name["a-rst/b-rst 0/0"].expect == "direct"
    assert by_name["a-rst/b-rst 5/0"].expect == "direct" and not by_name["a-rst/b-rst 5/0"].lottery
    assert by_name["a-rst/b-rst 0/5"].lottery and by_name["a-rst/b-rst 0/5"].expect == "relay"
    # One router that keeps the other side's mapping is enough.
    assert all(c.expect == "direct" for c in cells if "rst/b-rst" not in c.name)


def test_cells_carry_their_physics_into_the_lab_spec() -> None:
    (cell,) = matrix_cells(pattern="a-icmp/b-rst 50/0")
    spec = cell.spec
    assert [r.firewall for r in spec.routers] == [Firewall.REJECT_ICMP, Firewall.NONE]
    assert [h.link.delay_ms for h in spec.hosts] == [50.0, 0.0]
    plan = plan_lab(spec, owner_pid=1, number=1)
    assert "reject with icmpx type port-unreachable" in nft_ruleset(spec.routers[0], plan)
    assert "OUTPUT" in queue_rules(frozenset({4}), host=True)["iptables-restore"]
    assert "OUTPUT" not in queue_rules(frozenset({4}))["iptables-restore"]
    assert matrix_cells(pattern="a-icmp/b-rst 50/0", loss=0) == [cell]
    assert matrix_cells(delays=(0.0,), loss=0, pattern="a-drop/*") == [
        c for c in matrix_cells(loss=0) if c.name in ("a-drop/b-drop 0/0", "a-drop/b-rst 0/0")
    ]


@pytest.mark.parametrize(
    ("name", "direct", "relay", "failed", "ok"),
    [
        ("a-drop/b-drop 20/20", 9, 1, 0, True),
        ("a-drop/b-drop 20/20", 8, 2, 0, False),
        ("a-drop/b-drop 20/20", 10, 0, 1, False),
        ("a-rst/b-rst 20/20", 0, 10, 0, True),
        ("a-rst/b-rst 20/20", 3, 7, 0, True),  # lucky draws
        ("a-rst/b-rst 20/20", 0, 9, 1, False),
    ],
)
def test_a_row_meets_the_bar(name: str, direct: int, relay: int, failed: int, ok: bool) -> None:
    (cell,) = matrix_cells(pattern=name)
    row = MatrixRow(cell, _summary(direct, relay, failed))
    assert row.ok is ok
    assert MatrixRow(cell, _summary(direct, relay, failed), integrity_failures=1).ok is False


def test_the_table_takes_an_extra_column_next_to_the_outcome() -> None:
    (cell,) = matrix_cells(pattern="a-rst/b-drop 20/0")
    row = MatrixRow(cell, _summary(10, 0), extra={"predicted": "direct"})
    assert row.outcome == "10/10 direct"
    assert MatrixRow(cell, _summary(7, 3)).outcome == "7 direct, 3 relay"
    predicted = Column("predicted", 9, lambda r: r.extra.get("predicted", "-"))
    columns = insert_column(COLUMNS, predicted, after="outcome")
    headers = [c.header for c in columns]
    assert headers.index("predicted") == headers.index("outcome") + 1
    table = format_table([row], columns)
    assert "predicted" in table.splitlines()[len(LEGEND)]
    assert "10/10 direct       direct" in table.splitlines()[len(LEGEND) + 2]
    assert row.to_json()["predicted"] == "direct" and row.to_json()["ok"] is True


def test_the_table_counts_the_runs_a_port_clash_explains() -> None:
    """A relay that a router's port clash explains is not a miss of the race (LAB-NOTES 11):
    the table says how many runs of the cell it took, and 0 where none."""
    (cell,) = matrix_cells(pattern="a-icmp/b-rst 0/0")
    clashed = MatrixRow(cell, {**_summary(9, 1), "port_remaps": 1})
    clean = MatrixRow(cell, _summary(10, 0))
    lines = format_table([clashed, clean]).splitlines()[len(LEGEND) :]
    header, _, clashed_line, clean_line = lines[:4]
    at = header.index("clash") + len("clash")
    assert clashed_line[:at].split()[-1] == "1"
    assert clean_line[:at].split()[-1] == "0"
    assert clashed.to_json()["port_remaps"] == 1


def test_the_lottery_footnote_comes_with_a_lottery_cell_only() -> None:
    (plain,) = matrix_cells(pattern="a-rst/b-drop 20/0")
    (lottery,) = matrix_cells(pattern="a-rst/b-rst 20/20")
    assert lottery.lottery and not plain.lottery
    assert LOTTERY_NOTE not in format_table([MatrixRow(plain, _summary(10, 0))])
    table = format_table([MatrixRow(plain, _summary(10, 0)), MatrixRow(lottery, _summary(3, 7))])
    assert table.splitlines()[-1] == LOTTERY_NOTE and "relay*" in table


def test_the_table_fits_80_columns() -> None:
    """Every cell, with the widest figures ten runs give: the table was 98 columns wide
    (an 80-column terminal folded every row under the next)."""
    widest = {**_summary(9, 1), "p50_ms": 9999.4, "p90_ms": 0.04, "port_remaps": 10}
    rows = [MatrixRow(cell, widest, integrity_failures=10) for cell in matrix_cells()]
    assert max(len(cell.name) for cell in matrix_cells()) == COLUMNS[0].width
    table = format_table(rows).splitlines()
    assert max(len(line) for line in table) <= 80
    header = table[len(LEGEND)]
    # Each figure ends under the end of its header (right-aligned, never folded).
    for name in ("bad", "clash", "p50", "p90"):
        end = header.index(name) + len(name)
        assert all(
            line[end - 1] != " " and line[end : end + 1] in ("", " ")
            for line in table[len(LEGEND) + 2 : -1]
        ), name


def _readme_rows() -> tuple[str, list[MatrixRow]]:
    """The README's copy of the table, and the rows it shows (from its own figures)."""
    text = (Path(__file__).parents[1] / "README.md").read_text()
    start = text.index("```\n" + LEGEND[0]) + 4
    block = text[start : text.index("```", start)]
    cells = {c.name: c for c in matrix_cells()}
    rows = []
    line_re = re.compile(
        r"(?P<cell>\S+ \S+(?: loss\S+)?) +(?P<expect>\S+)"
        r" +(?P<outcome>\d+/\d+ \w+|\d+ \w+, \d+ \w+)"
        r" +(?P<ok>yes|NO) +(?P<bad>\d+) +(?P<clash>\S+) +(?P<p50>\S+) +(?P<p90>\S+)"
    )
    for line in block.splitlines():
        m = line_re.fullmatch(line)
        if m is None:
            continue
        counts = {"direct": 0, "relay": 0, "failed": 0}
        for n, kind in re.findall(r"(\d+)(?:/\d+)? (\w+)", m["outcome"]):
            counts[kind] = int(n)
        summary: dict[str, Any] = {
            **counts,
            "runs": sum(counts.values()),
            "p50_ms": float(m["p50"]),
            "p90_ms": float(m["p90"]),
        }
        if m["clash"] != "-":
            summary["port_remaps"] = int(m["clash"])
        rows.append(MatrixRow(cells[m["cell"]], summary, int(m["bad"])))
    return block, rows


def test_the_readme_shows_the_table_as_it_prints() -> None:
    block, rows = _readme_rows()
    assert len(rows) == len(matrix_cells())
    assert block == format_table(rows) + "\n"
