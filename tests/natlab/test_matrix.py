"""A representative subset of `rdv lab matrix` (the full matrix is a command, not a test).

The issue-10 topology (A 20 ms behind a router that resets early SYNs, B behind a dropping
NAT), an ICMP-rejecting router, an asymmetric cell with the slow side behind a dropping
router, and one lottery cell (both routers reset, 20 ms each side), which must never fail.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rdv_core.lab import get_preset, matrix_cells, run_cell, run_preset

from tests.natlab.natlab_support import require_impairment
from tests.natlab.test_presets import _check, _explain, explained_relays, zero_delay


def test_rst_far_goes_direct_in_about_two_round_trips(rdv_command: list[str]) -> None:
    require_impairment()
    result = run_preset(get_preset("rst-far"), 2, rdv_command=rdv_command)
    _check(result, "direct")
    for run in result.runs:
        # About two of A's 40 ms round trips: lobby, then the SYN-ACK; not the relay's 1 s.
        assert run.connect_ms is not None and run.connect_ms < 700, _explain(run)


@pytest.mark.parametrize(
    ("name", "runs"), [("a-icmp/b-rst 0/0", 2), ("a-rst/b-drop 0/50", 1), ("a-rst/b-rst 20/20", 1)]
)
def test_matrix_cells(name: str, runs: int, rdv_command: list[str]) -> None:
    (cell,) = matrix_cells(pattern=name)
    if any(h.link.active for h in cell.spec.hosts):
        require_impairment()
    row = run_cell(cell, runs, rdv_command=rdv_command)
    assert row.integrity_failures == 0, (row.outcome, row.summary)
    if cell.expect == "direct" and zero_delay(cell.spec):
        # A relay only when a router's port clash explains it (docs/LAB-NOTES.md section 11).
        explained_relays(row.runs)
        return
    unexpected = [r for r in row.runs if not cell.as_expected(r.outcome)]
    assert row.ok, (row.outcome, row.summary, "\n\n".join(_explain(r) for r in unexpected))


@pytest.mark.parametrize(("name", "predicted"), [("a-drop/b-drop 0/0", "direct")])
def test_the_doctor_predicts_a_matrix_cell(name: str, predicted: str) -> None:
    """``rdv lab matrix --predict``: the doctor's prediction and the outcome, side by side."""
    argv = ["lab", "matrix", "--predict", "--runs", "1", "--cells", name, "--json"]
    proc = subprocess.run(
        [sys.executable, "-m", "rdv_tui", *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(proc.stdout)["matrix"]
    assert row["predicted"] == predicted and row["agree"] == "yes", row
