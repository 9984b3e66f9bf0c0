"""``rdv lab faststart``'s verdict on a run whose peers exited non-zero.

What a user saw: a fast-start run whose direct path went silent after the relay retired
(docs/PROTOCOL.md 16.10: both peers end with exit 1, ``connection lost: the direct path
went silent``) was counted ``direct`` by the lab's judge: its events (``Upgraded``,
``RelayRetired``) read like a success, and the peers' exits were never looked at. Now a
peer's non-zero exit fails the run, whatever path the stream ended on, the reason says
where the stream was and what each peer said, and the command misses its target.

The events and the peers' stderr are real, recorded from
``tests/faststart_silent_driver.py retired`` (real ``rdv serve``, ``rdv dial/accept
--fast-start``, nftables blackholing the direct path; ``tests/data/``): that run takes
several seconds, so the fixture keeps this test in milliseconds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rdv_core.lab import PRESETS, FastResult, get_preset
from rdv_core.lab._faststart import judge
from rdv_core.lab._faststart_table import faststart_header, faststart_row
from rdv_core.lab._lab import exit_reason
from rdv_tui.cli.commands.lab_faststart import met_target

RECORDED = Path(__file__).parent / "data" / "faststart_silent_retired.json"
SILENT = "connection lost: the direct path went silent for 4 s (no answer from the peer)"


def _recorded(tmp_path: Path) -> tuple[dict[str, Any], list[str]]:
    """The recorded run's events, and each peer's exit reason as the runner makes it
    (from its exit code and its stderr file)."""
    run = json.loads(RECORDED.read_text())
    exits = []
    for name, side in (("accepter", "accept"), ("dialer", "dial")):
        log = tmp_path / f"{side}.stderr"
        log.write_text(run["stderr"][side])
        exits.append(exit_reason(name, run["codes"][side], str(log)))
    return run, exits


def test_a_run_whose_peers_exited_1_on_a_silent_direct_path_failed(tmp_path: Path) -> None:
    run, exits = _recorded(tmp_path)
    assert run["codes"] == {"accept": 1, "dial": 1}
    assert exits == [
        f"the accepter exited 1: rdv accept: {SILENT}",
        f"the dialer exited 1: rdv dial: {SILENT}",
    ]
    judged = judge(run["events"]["dial"], run["events"]["accept"], exits=exits)
    assert judged.outcome == "failed", judged.to_json()
    assert judged.error == (
        f"the stream was on the direct path, then the accepter exited 1: rdv accept: {SILENT}; "
        f"the dialer exited 1: rdv dial: {SILENT}"
    )
    # The measurements stay: the switch happened, it is what went silent after.
    assert judged.to_direct_ms is not None and judged.attempts == 1
    judged.data_ok = True  # even with every byte delivered: the peers said it failed
    result = FastResult(get_preset("cone-fw"), [judged])
    summary = result.summary()
    assert (summary["direct"], summary["failed"]) == (0, 1)
    assert not met_target("direct", summary)


def test_exit_0_is_no_failure_and_the_judge_keeps_its_verdict(tmp_path: Path) -> None:
    run, _ = _recorded(tmp_path)
    log = tmp_path / "ok.stderr"
    log.write_text("peer connected: relay in 3 ms\n")
    exits = [exit_reason("accepter", 0, str(log)), exit_reason("dialer", 0, str(log))]
    assert exits == ["", ""]
    judged = judge(run["events"]["dial"], run["events"]["accept"], exits=exits)
    assert (judged.outcome, judged.error) == ("direct", "")
    judged.data_ok = True
    assert met_target("direct", FastResult(get_preset("cone-fw"), [judged]).summary())


def test_the_table_and_its_reasons_fit_a_narrow_terminal(tmp_path: Path) -> None:
    run, exits = _recorded(tmp_path)
    judged = judge(run["events"]["dial"], run["events"]["accept"], exits=exits)
    summary = FastResult(get_preset("cone-fw"), [judged]).summary()
    wide = len("symmetric-both")
    for room in (40, 60):
        lines = faststart_header(wide, room)
        lines += faststart_row(
            "symmetric-both",
            "relay",
            summary,
            wide=wide,
            room=room,
            missed=True,
            notes=[f"{judged.outcome}: {judged.error}"],
        )
        assert max(map(len, lines)) <= room, max(lines, key=len)
        assert lines[0].startswith("preset ") and lines[2 if room == 60 else 3].startswith("-")
        text = " ".join(" ".join(lines).split())
        assert "failed: the stream was on the direct path, then the accepter exited 1" in text
    # Every preset in 80 columns (a pipe's, the default run) and at 200: one line each.
    widest = max(len(name) for name in PRESETS)
    for room in (80, 200):
        one = faststart_row("cone-fw", "direct", summary, wide=widest, room=room, missed=False)
        assert len(faststart_header(widest, room)) == len(one) + 1 == 2, one
        assert len(one[0]) <= 80 and one[0].split()[:6] == ["cone-fw", "direct", "0", "0", "1", "0"]
