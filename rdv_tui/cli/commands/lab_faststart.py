"""``rdv lab faststart``: fast start across the lab's presets (docs/PROTOCOL.md section 16).

For each preset: N runs of ``rdv dial/accept --fast-start`` with a payload that crosses
the switch; one table line with how many runs ended on the direct path, the first byte's
delay after the ``101`` against the relay round trip, and the time to direct. Standard
library only at module level.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from typing import Any

from rdv_tui.cli.formatting import ms_figure, plural


def add_faststart_parser(sub: Any, positive_int: Any, delay: Any) -> None:
    """Register ``rdv lab faststart`` under ``rdv lab``."""
    fast = sub.add_parser(
        "faststart",
        help="fast start in each preset: ends direct? first byte vs relay RTT, time to direct",
        description="Run rdv dial/accept --fast-start N times in each preset with a payload "
        "that crosses the switch from the relay to the direct path. Prints one row per "
        "preset: how many runs ended direct, payload integrity, the first byte's delay "
        "after the 101 against the relay's round trip, and the time to direct. Exit 0 when "
        "every preset met its target (direct in at least 90% of the runs, or relay in all "
        "for a relay preset, every payload intact, no run failed).",
    )
    fast.add_argument("presets", nargs="*", metavar="PRESET", help="presets (default: all)")
    fast.add_argument(
        "--runs", type=positive_int, default=10, metavar="N", help="runs per preset (default 10)"
    )
    fast.add_argument(
        "--delay", type=delay, default=None, metavar="MS", help="every router's one-way delay"
    )
    fast.add_argument("--json", action="store_true", help="print the runs as JSON")


def run_faststart_command(args: argparse.Namespace, rdv_command: list[str]) -> int:
    """Exit 0 when every preset met its target (:func:`met_target`)."""
    from rdv_core.lab import PRESETS, get_preset, run_faststart

    names = args.presets or list(PRESETS)  # checked by `rdv lab`'s run() (every unknown one)
    from rdv_core.lab._faststart_table import faststart_header, faststart_row

    # As wide as the longest preset run: every preset's table fits 80 columns; a narrower
    # terminal folds the rows at their columns (``_faststart_table``).
    wide = max(len("preset"), *(len(n) for n in names))
    room = max(shutil.get_terminal_size().columns, 20)  # $COLUMNS, else 80 into a pipe
    if not args.json:
        print(
            f"rdv lab faststart: {plural(args.runs, 'run')} per preset "
            "(ms, medians; RTT: the relay's round trip)"
        )
        print("\n".join(faststart_header(wide, room)), flush=True)
    ok = True
    out = []
    for name in names:
        spec = get_preset(name)
        if args.delay is not None:
            spec = spec.with_delay(args.delay)
        result = run_faststart(spec, args.runs, rdv_command=rdv_command)
        s = result.summary()
        target = met_target(spec.expect, s)
        ok = ok and target
        out.append({"summary": s, "runs": [r.to_json() for r in result.runs]})
        if not args.json:
            notes = [f"{run.outcome}: {run.error}" for run in result.runs if run.error]
            row = faststart_row(
                name,
                spec.expect,
                s,
                wide=wide,
                room=room,
                missed=not target,
                notes=notes,
                figure=ms_figure,
            )
            print("\n".join(row), flush=True)
    if args.json:
        json.dump({"faststart": out}, sys.stdout, separators=(",", ":"))
        sys.stdout.write("\n")
    return 0 if ok else 1


def met_target(expect: str, summary: dict[str, Any]) -> bool:
    """Direct in >= 90% of the runs (or relay in all, for a relay preset), every payload
    intact and no run failed: a run whose peer exited non-zero (a direct path that went
    silent after the relay retired, docs/PROTOCOL.md 16.10) is no success of any kind."""
    n = summary["runs"]
    wanted = summary["direct"] * 10 >= 9 * n if expect == "direct" else summary["relay"] == n
    return bool(wanted and summary["data_ok"] == n and summary["failed"] == 0)
