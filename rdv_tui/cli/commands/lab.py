"""``rdv lab``: real NATs in network namespaces, with the real rdv server and peers inside.

Headless: imports only the standard library at module level (rdv_core.lab inside run()),
never textual or rich. The arguments are parsed as :mod:`.lab_args` says.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any, Final, TextIO

from rdv_tui.cli.commands.lab_args import add_parser
from rdv_tui.cli.commands.lab_faststart import run_faststart_command
from rdv_tui.cli.formatting import fill_keeping_figures, ms_figure, plural

#: Overrides how the lab starts rdv (split on spaces), e.g. to put another rdv/1
#: implementation in the lab. Default: this interpreter's ``-m rdv_tui``.
RDV_COMMAND_ENV = "RDV_LAB_COMMAND"

__all__ = [
    "add_parser",
    "matrix_columns",
    "no_cell_matches",
    "rdv_command",
    "run",
    "terminal_room",
    "unknown_presets",
]


def rdv_command() -> list[str]:
    """The argv that runs rdv inside the lab: ``$RDV_LAB_COMMAND``, else ourselves."""
    return os.environ.get(RDV_COMMAND_ENV, "").split() or [sys.executable, "-m", "rdv_tui"]


def unknown_presets(names: Sequence[str], known: Sequence[str]) -> str | None:
    """The refusal naming every unknown preset of ``names`` and the known ones, or None."""
    unknown = list(dict.fromkeys(n for n in names if n not in known))
    if not unknown:
        return None
    which = ", ".join(repr(n) for n in unknown)
    word = "preset" if len(unknown) == 1 else "presets"
    return f"rdv lab: unknown {word} {which} (known: {', '.join(known)})"


def no_cell_matches(pattern: str | None, delays: Sequence[float] | None) -> str | None:
    """The refusal of a ``--cells`` pattern that matches no cell, naming the cells there
    are (``rdv lab matrix`` said only ``no cell matches 'x'``), or None."""
    from rdv_core.lab import matrix_cells

    kwargs: dict[str, Any] = {} if delays is None else {"delays": delays}
    if not pattern or matrix_cells(pattern=pattern, **kwargs):
        return None
    names = [cell.name for cell in matrix_cells(**kwargs)]
    routers = list(dict.fromkeys(name.split(" ", 1)[0] for name in names))
    links = list(dict.fromkeys(name.split(" ", 1)[1] for name in names))
    if len(routers) * len(links) == len(names):  # every filter pair with every delay
        there = (
            f"'FILTERS DELAYS' for the filters {', '.join(routers)} and the delays "
            f"{', '.join(links)}"
        )
    else:
        there = ", ".join(names)
    return (
        f"rdv lab matrix: no cell matches {pattern!r}; the {len(names)} cells are {there} "
        f"(e.g. --cells '{names[-1]}'; shell patterns, several joined by '|')"
    )


def _raise_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code (0 ok, 1 a run failed, 2 cannot build labs)."""
    from rdv_core.lab import PRESETS, can_isolate, is_isolated, reexec_isolated, setup_inside
    from rdv_tui.cli.closed_stdout import stdout_closed

    if stdout_closed("rdv lab", "its results"):  # `>&-` (list raised)
        return 2
    if args.lab_command == "list":
        return _list(PRESETS, sys.stdout)
    cells_only = [f"--{o}" for o in ("cells", "delays", "predict") if getattr(args, o, None)]
    if args.lab_command == "matrix" and args.presets and cells_only:  # (they were ignored)
        print(
            f"rdv lab matrix: {' and '.join(cells_only)} choose matrix cells, and "
            "--presets runs every preset instead: drop one or the other",
            file=sys.stderr,
        )
        return 2
    # Names and cells are checked before any namespace work, and every bad one is named:
    # `rdv lab doctor x y` named only x, and the run after fixing it stopped at y.
    refusal = None
    if args.lab_command in ("run", "shell"):
        refusal = unknown_presets([args.preset], list(PRESETS))
    elif args.lab_command == "doctor":
        refusal = unknown_presets(args.presets, [*PRESETS, "sequential-a"])
    elif args.lab_command == "faststart":
        refusal = unknown_presets(args.presets, list(PRESETS))
    elif args.lab_command == "matrix" and not args.presets:
        refusal = no_cell_matches(args.cells, args.delays)
    if refusal is not None:
        print(refusal, file=sys.stderr)
        return 2

    # `shell` stays in the root mount namespace when it can, so that the printed
    # `ip netns exec` commands work from any terminal.
    wants_isolation = not (args.lab_command == "shell" and os.geteuid() == 0)
    if wants_isolation and not is_isolated() and os.geteuid() != 0:
        from rdv_core.lab import probe as probe_outside

        outside = probe_outside()
        if not outside.userns:
            print(f"rdv lab: cannot build labs here: {outside.reason}", file=sys.stderr)
            return 2
    if wants_isolation and not is_isolated() and can_isolate():
        # orig_argv keeps how we were started (`-m rdv_tui`, the `rdv` script, ...).
        reexec_isolated([sys.executable, *sys.orig_argv[1:]])
    if is_isolated():
        try:
            setup_inside()
        except OSError as exc:
            print(f"rdv lab: cannot set up the private namespaces: {exc}", file=sys.stderr)
            return 2

    logging.basicConfig(level=logging.WARNING, format="rdv lab: %(message)s", stream=sys.stderr)
    signal.signal(signal.SIGTERM, _raise_interrupt)

    from rdv_core.lab import probe

    caps = probe()
    if args.lab_command == "probe":
        print(caps.describe())
        return 0 if caps.ok else 2
    if not caps.ok:
        print(f"rdv lab: cannot build labs here: {caps.reason}", file=sys.stderr)
        return 2
    from rdv_core.lab import LabError

    try:
        if args.lab_command == "run":
            return _run(args)
        if args.lab_command == "matrix":
            return _presets_matrix(args) if args.presets else _matrix(args)
        if args.lab_command == "doctor":
            from rdv_tui.cli.lab_doctor import run_lab_doctor

            return run_lab_doctor(args.presets, args.runs, args.json, rdv_command())
        if args.lab_command == "faststart":
            return run_faststart_command(args, rdv_command())
        return _shell(args)
    except LabError as exc:
        print(f"rdv lab: {exc}", file=sys.stderr)
        return 2


def _list(presets: dict[str, Any], out: TextIO, columns: int | None = None) -> int:
    """One entry per preset, its lines wrapped to the terminal under their own column.

    The reasons run to 300 characters: unwrapped, a terminal folded them back to column 0,
    under the preset names.
    """
    width = max(len(n) for n in presets)
    indent = " " * (width + 10)
    room = max(columns or terminal_room(), 30)
    stacked = room < len(indent) + 30
    if stacked:  # the name and the outcome on their own line: the text had 14 columns left
        indent = "    "
    for name, spec in presets.items():
        head = f"{name:<{width}}  {spec.expect:<6}  "
        if stacked:
            out.write(f"{name}  {spec.expect}\n")
            head = indent
        out.write(fill_keeping_figures(spec.summary, room, head, indent))
        out.write("\n")
        out.write(f"{fill_keeping_figures(spec.why, room, f'{indent}why: ', f'{indent}     ')}\n")
    return 0


#: Where a run's wrapped details continue: under its outcome.
_RUN_INDENT: Final = " " * 10


def _room(columns: int | None) -> int:
    """The terminal's width (or ``columns``), never so narrow that a line cannot start
    (a floor of 60 wrapped every line past a 40-column terminal's edge)."""
    return max(columns or terminal_room(), 30)


def _run_line(plan: Any, i: int, result: Any, columns: int | None = None) -> str:
    """One run: its fixed columns, then what became of the direct dials, wrapped under the
    outcome (a relay's story runs to 200 characters; a terminal folded it to column 0)."""
    where = ""
    if result.chosen:
        owner = plan.describe_addr(result.chosen)
        space = "relay" if result.outcome == "relay" else result.chosen_space
        where = f"{result.chosen} ({space}, {owner})"
    data = {True: "data ok", False: "DATA MISMATCH", None: ""}[result.data_ok]
    head = f"run {i:>3}: {result.outcome:<6} {ms_figure(result.connect_ms):>8} ms"
    pieces = [where, data]
    if result.outcome != "direct":
        from rdv_core.lab import direct_attempts

        tried = direct_attempts(result.events["dialer"])
        if tried:
            pieces.append(f"direct: {tried}")
    if result.error:
        pieces.append(f"[{result.error}]")
    room = _room(columns)
    # What fits beside the figures stays there, in order; the rest wraps under the outcome
    # (at 40 columns the run's path ran 30 columns past the edge).
    line, rest = head, list[str]()
    for piece in filter(None, pieces):
        if not rest and len(line) + 2 + len(piece) <= room:
            line += f"  {piece}"
        else:
            rest.append(piece)
    if rest:
        line += "\n" + fill_keeping_figures("  ".join(rest), room, _RUN_INDENT, _RUN_INDENT + "  ")
    # The router's port clash explains the relay (docs/LAB-NOTES.md section 11).
    for remap in result.port_remaps:
        line += "\n" + fill_keeping_figures(
            f"explained: {remap}", room, _RUN_INDENT, _RUN_INDENT + "  "
        )
    return line


def _summary_line(summary: dict[str, Any], columns: int | None = None) -> str:
    paths = ", ".join(f"{k} x{v}" for k, v in summary["chosen"].items())
    text = (
        f"summary: {summary['direct']} direct, {summary['relay']} relay, "
        f"{summary['failed']} failed; time to connected p50 {ms_figure(summary['p50_ms'])} ms, "
        f"p90 {ms_figure(summary['p90_ms'])} ms; chosen: {paths}; "
        f"data verified {summary['data_verified']}/{summary['runs']}"
        + (
            f"; {summary['port_remaps']} not direct by a router's port clash"
            if summary.get("port_remaps")
            else ""
        )
    )
    return fill_keeping_figures(text, _room(columns), "", "         ")


def _run(args: argparse.Namespace) -> int:
    from rdv_core.lab import Lab, LabRunner, PresetResult, get_preset

    spec = get_preset(args.preset)
    if args.delay is not None:
        spec = spec.with_delay(args.delay)
    result = PresetResult(spec)
    text = not args.json
    with Lab(spec, rdv_command=rdv_command()) as lab:
        result.build_ms = lab.build_s * 1000
        result.impairment = lab.impairment_method
        if text:
            room = _room(None)
            print(fill_keeping_figures(f"lab {spec.name}: {spec.summary}", room, "", "    "))
            built = (
                f"built in {result.build_ms:.0f} ms; impairment: {lab.impairment_method}; "
                f"server {lab.plan.server_addr}; expect {spec.expect}: {spec.why}"
            )
            print(fill_keeping_figures(built, room, "  ", "    "), flush=True)
        lab.start_server()
        runner = LabRunner(lab)
        for i in range(1, args.runs + 1):
            one = runner.run_once()
            result.runs.append(one)
            if text:
                print(_run_line(lab.plan, i, one), flush=True)
    if args.json:
        json.dump(result.to_json(), sys.stdout, separators=(",", ":"))
        sys.stdout.write("\n")
    else:
        print(_summary_line(result.summary()))
    bad = any(r.outcome == "failed" or r.data_ok is False for r in result.runs)
    return 1 if bad else 0


def _matrix(args: argparse.Namespace) -> int:
    from rdv_core.lab import (
        LOTTERY_NOTE,
        format_header,
        format_row,
        matrix_cells,
        run_cell,
    )
    from rdv_tui.cli.lab_doctor import predicted_cell

    kwargs: dict[str, Any] = {"pattern": args.cells}
    if args.delays is not None:
        kwargs["delays"] = args.delays
    cells = matrix_cells(**kwargs)
    if not cells:  # run() checked it already; kept for callers of _matrix
        print(no_cell_matches(args.cells, args.delays), file=sys.stderr)
        return 2
    room = terminal_room()
    columns, note = matrix_columns(cells, predict=args.predict, room=room)
    if not args.json:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        title = f"rdv lab matrix: {len(cells)} cells, {plural(args.runs, 'run')} each; load {load}"
        print(fill_keeping_figures(title, room, "", "  "))
        print("\n".join(format_header(columns, note, room)), flush=True)
    rows = []
    for cell in cells:
        if args.predict:
            row = predicted_cell(cell, args.runs, rdv_command())
        else:
            row = run_cell(cell, args.runs, rdv_command=rdv_command())
        rows.append(row)
        if not args.json:
            print(format_row(row, columns, room), flush=True)
    if args.json:
        json.dump({"matrix": [r.to_json() for r in rows]}, sys.stdout, separators=(",", ":"))
        sys.stdout.write("\n")
    else:
        if any(r.cell.lottery for r in rows):  # a footnote only for a star in the table
            print(LOTTERY_NOTE)
        good = sum(1 for r in rows if r.ok)
        print(f"{good}/{len(rows)} cells meet the bar", flush=True)
        if args.predict:
            agreed = sum(1 for r in rows if r.extra.get("agree") == "yes")
            possible = sum(1 for r in rows if r.extra.get("predicted") == "possible")
            print(
                f"prediction agrees with the outcome in {agreed}/{len(rows)} cells "
                f"({possible} predicted timing-dependent)",
                flush=True,
            )
    agreed_all = all(r.extra.get("agree", "yes") == "yes" for r in rows)
    return 0 if all(r.ok for r in rows) and agreed_all else 1


def matrix_columns(cells: Any, *, predict: bool, room: int | None = None) -> tuple[list[Any], str]:
    """The table's columns for these cells in ``room`` (the terminal's: $COLUMNS, 80 into
    a pipe), and the legend's note on what did not fit: with --predict, 97 columns folded."""
    from rdv_core.lab import COLUMNS, Column, fit_columns, insert_column

    columns = list(COLUMNS)
    if predict:  # the doctor's prediction beside the outcome (docs/PROTOCOL.md 15.4)
        predicted = Column("predicted", 9, lambda r: r.extra.get("predicted", "-"), gap=1)
        agree = Column("agree", 5, lambda r: r.extra.get("agree", "-"))
        columns = insert_column(
            insert_column(columns, predicted, after="expect"), agree, after="outcome"
        )
    return fit_columns(columns, room or terminal_room(), (c.name for c in cells))


def terminal_room() -> int:
    """The width a table gets: $COLUMNS, else the terminal's, else 80 (a pipe, a file),
    as the rest of rdv decides it. A floor of 60 printed 63-column rows into a 40-column
    terminal, which folded each to column 0; the rows fold themselves now (``_fold``)."""
    return max(shutil.get_terminal_size().columns, 20)


def _presets_matrix(args: argparse.Namespace) -> int:
    from rdv_core.lab import PRESETS, run_preset
    from rdv_core.lab._preset_table import preset_header, preset_row

    room = max(shutil.get_terminal_size().columns, 60)
    if not args.json:
        print(f"rdv lab matrix: {plural(args.runs, 'run')} per preset")
        print("\n".join(preset_header()), flush=True)
    out = []
    bad = False
    for spec in PRESETS.values():
        result = run_preset(spec, args.runs, rdv_command=rdv_command())
        s = result.summary()
        bad = bad or any(r.outcome == "failed" or r.data_ok is False for r in result.runs)
        out.append({"preset": spec.name, "summary": s})
        if not args.json:
            print(preset_row(spec.name, spec.expect, s, room), flush=True)
    if args.json:
        json.dump({"matrix": out}, sys.stdout, separators=(",", ":"))
        sys.stdout.write("\n")
    return 1 if bad else 0


def _shell(args: argparse.Namespace) -> int:
    from rdv_core.lab import Lab, get_preset, host_doctor_urls, is_isolated, start_doctor_server

    spec = get_preset(args.preset)
    with Lab(spec, rdv_command=rdv_command()) as lab:
        # The server `rdv lab doctor` runs (probe port, dial-back, a second address), so
        # that `rdv doctor` and `--explain` measure here what they would measure outside,
        # instead of "not measured: the server has no --probe-port".
        start_doctor_server(lab)
        plan = lab.plan
        print(f"lab {spec.name} is up: {spec.summary}")
        print(f"rdv server: {plan.server_url} (in {plan.ns('srv')})")
        print("namespaces:")
        for role, ns in plan.namespaces.items():
            addrs = plan.host_addrs.get(role) or plan.router_wan.get(role)
            extra = ""
            if addrs is not None:
                extra = f"  {addrs.v4}" + (f" {addrs.v6}" if addrs.v6 else "")
            print(f"  {role:<6} {ns}{extra}")
        a, b = plan.ns(spec.dialer), plan.ns(spec.accepter)
        first_router = plan.ns(spec.routers[0].name) if spec.routers else plan.ns("inet")
        rdv = " ".join(lab.rdv_argv())
        print("try:")
        # Each host's own URL: an IPv6-only host (nat64) reaches the server through NAT64.
        url_a, url_b = plan.server_url_for(spec.dialer), plan.server_url_for(spec.accepter)
        print(f"  ip netns exec {b} {rdv} accept {url_b} mytoken --spaces {spec.spaces} -v")
        print(f"  ip netns exec {a} {rdv} dial {url_a} mytoken --spaces {spec.spaces} -v")
        print(f"  ip netns exec {a} {rdv} doctor {' '.join(host_doctor_urls(lab, spec.dialer))}")
        print(f"  ip netns exec {a} {rdv} send FILE --server {url_a} --explain")
        print(f"  ip netns exec {b} {rdv} receive CODE --server {url_b} --explain")
        print(f"  ip netns exec {first_router} tcpdump -ni wan tcp")
        print(f"  ip netns exec {first_router} conntrack -L")
        print(f"  ip netns exec {first_router} nft list ruleset")
        sys.stdout.flush()
        if is_isolated():
            # These namespaces exist only in our private mount namespace: give a shell in it.
            print("(rootless: a shell inside the lab's private namespaces; exit to tear down)")
            subprocess.call([os.environ.get("SHELL", "/bin/sh")])
        else:
            print("press Enter or Ctrl-C to tear the lab down", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                sys.stdin.readline()
    print("lab torn down")
    return 0
