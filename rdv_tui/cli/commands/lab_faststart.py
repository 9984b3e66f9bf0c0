"""``rdv lab faststart``: fast start across the lab's presets (docs/PROTOCOL.md section 16).

For each preset: N runs of ``rdv dial/accept --fast-start`` with a payload that crosses
the switch; one table line with how many runs ended on the direct path, the first byte's
delay after the ``101`` against the relay round trip, and the time to direct. Standard
library only at module level.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rdv_tui.cli.formatting import ms_figure


def add_faststart_parser(sub: Any, positive_int: Any, delay: Any) -> None:
    """Register ``rdv lab faststart`` under ``rdv lab``."""
    fast = sub.add_parser(
        "faststart",
        help="fast start in each preset: ends direct? first byte vs relay RTT, time to direct",
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
    """Exit 0 when every preset met its target (direct in >= 90%, or relay in all runs)."""
    from rdv_core.lab import PRESETS, get_preset, run_faststart

    names = args.presets or list(PRESETS)
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        print(f"rdv lab: unknown preset(s) {', '.join(unknown)}", file=sys.stderr)
        return 2
    # As wide as the longest preset run: one preset's table fits 80 columns.
    wide = max(len("preset"), *(len(n) for n in names))
    header = (
        f"{'preset':<{wide}} {'expect':<6} {'direct':>6} {'relay':>5} {'failed':>6} {'data':>5} "
        f"{'1st byte':>8} {'relay RTT':>9} {'<=RTT':>5} {'to direct':>9}"
    )
    if not args.json:
        print(f"rdv lab faststart: {args.runs} run(s) per preset (ms, medians)")
        print(header)
        print("-" * len(header), flush=True)
    ok = True
    out = []
    for name in names:
        spec = get_preset(name)
        if args.delay is not None:
            spec = spec.with_delay(args.delay)
        result = run_faststart(spec, args.runs, rdv_command=rdv_command)
        s = result.summary()
        n = s["runs"]
        target = s["direct"] * 10 >= 9 * n if spec.expect == "direct" else s["relay"] == n
        ok = ok and target and s["data_ok"] == n
        out.append({"summary": s, "runs": [r.to_json() for r in result.runs]})
        if not args.json:
            print(
                f"{name:<{wide}} {spec.expect:<6} {s['direct']:>6} {s['relay']:>5} "
                f"{s['failed']:>6} {s['data_ok']:>5} {ms_figure(s['first_byte_p50_ms']):>8} "
                f"{ms_figure(s['relay_rtt_p50_ms']):>9} {s['first_byte_within_rtt']:>5} "
                f"{ms_figure(s['to_direct_p50_ms']):>9}" + ("" if target else "  (missed)"),
                flush=True,
            )
            for run in result.runs:
                if run.error:
                    print(f"    {run.outcome}: {run.error}", flush=True)
    if args.json:
        json.dump({"faststart": out}, sys.stdout, separators=(",", ":"))
        sys.stdout.write("\n")
    return 0 if ok else 1
