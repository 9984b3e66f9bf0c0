"""``rdv lab``'s arguments: the parser of its subcommands and their value types.

The commands themselves run in :mod:`rdv_tui.cli.commands.lab` (which re-exports
:func:`add_parser`, as every command module does). Standard library only.
"""

from __future__ import annotations

import argparse
from typing import Any

from rdv_tui.cli.commands.lab_faststart import add_faststart_parser

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    """Register ``rdv lab`` and its subcommands."""
    parser = subparsers.add_parser(
        "lab",
        help="NAT lab: run rdv between real NATs in network namespaces",
        description="Build real NATs and firewalls out of Linux network namespaces (a "
        "simulated internet with the rdv server, two peers behind configurable routers), run "
        "the real rdv server and peers inside, and report what happened. Needs root, or "
        "unprivileged user namespaces; nothing is created outside the lab's own namespaces "
        "and nothing in the lab has a route out.",
    )
    sub = parser.add_subparsers(dest="lab_command", metavar="SUBCOMMAND", required=True)

    def add(name: str, line: str, **kwargs: Any) -> argparse.ArgumentParser:
        # Without a description, `rdv lab list --help` showed usage and options only:
        # the line `rdv lab --help` gives it, as a sentence, unless it has a longer one.
        kwargs.setdefault("description", f"{line[:1].upper()}{line[1:]}.")
        parser: argparse.ArgumentParser = sub.add_parser(name, help=line, **kwargs)
        return parser

    add("list", "list the presets, with the expected outcome and why")

    run = add("run", "run one preset N times and summarize")
    run.add_argument("preset", metavar="PRESET", help="preset name (see `rdv lab list`)")
    run.add_argument("--runs", type=_positive_int, default=1, metavar="N", help="runs (default 1)")
    run.add_argument(
        "--delay",
        type=_non_negative_float,
        default=None,
        metavar="MS",
        help="set every router's one-way delay to MS milliseconds",
    )
    run.add_argument(
        "--json", action="store_true", help="print one JSON object with every run's events"
    )

    matrix = add(
        "matrix",
        "filtering x distance matrix ({drop,rst,icmp} x {drop,rst}, 0-100 ms, loss)",
        description="Race in every cell of the matrix: A's router drops, resets or "
        "ICMP-rejects early SYNs, B's drops or resets; each peer 0, 5, 20, 50 or 100 ms from "
        "its router (both, or one side only), plus lossy cells. Prints one row per cell: "
        "outcome over N runs, whether it meets the bar, payload integrity failures, runs a "
        "router's port clash explains (clash), p50/p90.",
    )
    matrix.add_argument(
        "--runs", type=_positive_int, default=3, metavar="N", help="runs per cell (default 3)"
    )
    matrix.add_argument(
        "--cells",
        default=None,
        metavar="PATTERN",
        help="only cells whose name matches this shell pattern, e.g. 'a-rst/b-* 20/*' "
        "(several: separated by |)",
    )
    matrix.add_argument(
        "--delays",
        type=_delay_list,
        default=None,
        metavar="MS,MS",
        help="one-way delays to use (default 0,5,20,50,100)",
    )
    matrix.add_argument(
        "--presets", action="store_true", help="run every preset instead (the old table)"
    )
    matrix.add_argument(
        "--predict",
        action="store_true",
        help="also run rdv doctor on both peers of each cell first and show its prediction "
        "beside the outcome (columns predicted, agree)",
    )
    matrix.add_argument("--json", action="store_true", help="print the rows as JSON")

    doctor = add(
        "doctor",
        "on each preset: what rdv doctor says, what it predicts, what the races did",
    )
    doctor.add_argument(
        "presets",
        metavar="PRESET",
        nargs="*",
        help="presets, or sequential-a (A behind a sequential NAT); default: all of them",
    )
    doctor.add_argument(
        "--runs", type=_positive_int, default=3, metavar="N", help="races per preset (default 3)"
    )
    doctor.add_argument("--json", action="store_true", help="print the rows as JSON")

    shell = add("shell", "keep a lab up (server running) and print commands to poke around")
    shell.add_argument("preset", metavar="PRESET", help="preset name (see `rdv lab list`)")

    add("probe", "say what this machine can do (namespaces, nft, netem, NFQUEUE)")
    add_faststart_parser(sub, _positive_int, _non_negative_float)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
    return value


def _delay_list(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from exc
    if not values or any(not v >= 0 for v in values):
        raise argparse.ArgumentTypeError(f"need delays >= 0: {text!r}")
    return values
