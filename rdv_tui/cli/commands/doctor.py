"""``rdv doctor [URL ...]``: why this machine can or cannot take direct conns.

Measures from one local port, as the race does (docs/PROTOCOL.md section 15): reachability of
each server (IPv4, IPv6, TLS), the observed address, the NAT's mapping and port allocation,
filtering (via the server's dial-back), hairpinning, a middlebox that strips ``Upgrade``, the
RTT. Text by default; ``--format json`` prints one JSON document on stdout (logs go to stderr),
``json-line`` one line per run (with ``--every``). Headless: imports only the standard library
at module level.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import sys
from typing import Any


def add_parser(subparsers: Any) -> None:
    """Register ``rdv doctor``."""
    parser = subparsers.add_parser(
        "doctor",
        help="check this network: NAT mapping, filtering, hairpinning, reachability",
        description="Measure, from one local port as the race does, what stands between this "
        "machine and a direct TCP conn: the servers' reachability (IPv4, IPv6, TLS) and RTT, "
        "the observed address, the NAT's mapping (name two servers, or use a server with "
        "--probe-port, to tell its kinds apart), port preservation and allocation, filtering "
        "(from the server's dial-back, rdv serve --dial-back), hairpinning, a middlebox "
        "that strips Upgrade and the HTTP proxy the race would go through. Every finding is "
        "yes / no / not measured, with the reason.",
        epilog="Exit codes: 0 measured; 1 no rdv server answered (unreachable, TLS failed, not "
        "an rdv server or not at the URL's path, or it took the conn and said nothing); 2 bad "
        "usage; 130 Ctrl-C before a report (with --every: the last report's code); 143 "
        "SIGTERM.",
    )
    parser.add_argument(
        "urls",
        metavar="URL",
        nargs="*",
        help="rdv servers (default: $RDV_SERVER, then the config file); a second server "
        "tells address-dependent mapping from port-dependent",
    )
    parser.add_argument(
        "--format",
        choices=("text", "json", "json-line"),
        default="text",
        help="text for people (default), json: one document, json-line: one line per run",
    )
    parser.add_argument(
        "--every",
        metavar="SECONDS",
        type=_interval,
        help="run again every SECONDS until interrupted",
    )
    parser.add_argument(
        "--proxy",
        metavar="URL",
        help="the HTTP proxy the race would use (http://[user:password@]host:port, or none); "
        "default: HTTPS_PROXY/HTTP_PROXY/ALL_PROXY/NO_PROXY as rdv dial reads them. Its "
        "CONNECT tunnel is measured beside the direct probes",
    )
    parser.add_argument(
        "--interface",
        action="append",
        default=[],
        metavar="NAME",
        help="measure only from this network interface (repeatable), as rdv dial "
        "--interface uses it; default: the default route and every other uplink the race "
        "dials from, side by side",
    )
    parser.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="ADDR",
        help="measure only from this local address (repeatable), like --interface",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log each probe on stderr")


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
    if not (value >= 1 and math.isfinite(value)):  # inf: a traceback after one report
        raise argparse.ArgumentTypeError(f"must be at least 1 second: {text!r}")
    return value


def _urls(args: argparse.Namespace) -> list[str] | None:
    if args.urls:
        return list(args.urls)
    from rdv_core.config import ConfigError, resolve_server
    from rdv_tui.cli.checks import check_server_url

    try:
        # The advice names the way rdv doctor takes a URL: it has no --server flag.
        server, source = resolve_server(None, how_to_pass="name one (rdv doctor URL)")
        check_server_url(server, source)
    except (ConfigError, ValueError) as exc:  # none anywhere, an unreadable file, a bad URL
        print(f"rdv doctor: {exc}", file=sys.stderr)
        return None
    return [server]


def _print(report: Any, fmt: str) -> None:
    from rdv_core.doctor import render_text

    if fmt == "text":
        from rdv_core.wire import printable

        # Reasons quote what servers answered: control characters are shown, not obeyed.
        # Wrapped to the terminal (80 columns into a pipe): unwrapped, an 80-column terminal
        # folded every reason back to column 0. Machines read --format json. At least 40:
        # the reasons start at column 14 (the floor was 60, and a 50-column terminal folded
        # every line the doctor had wrapped at 60).
        width = max(shutil.get_terminal_size().columns, 40)
        text = "\n".join(printable(line) for line in render_text(report, width).splitlines())
        print(text, flush=True)
    elif fmt == "json":
        print(json.dumps(report.to_json(), indent=2), flush=True)
    else:
        print(json.dumps(report.to_json(), separators=(",", ":")), flush=True)


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""
    import asyncio
    import time

    from rdv_core.doctor import Doctor

    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if args.verbose else logging.WARNING,
        format="rdv doctor: %(message)s",
    )
    from rdv_tui.cli.closed_stdout import stdout_closed

    if stdout_closed("rdv doctor", "the report"):
        return 2
    urls = _urls(args)
    if urls is None:
        return 2
    try:
        # Checks every URL, the proxy and each --interface/--source before any traffic.
        Doctor(urls, proxy=args.proxy, interfaces=args.interface, sources=args.source)
    except ValueError as exc:
        print(f"rdv doctor: {exc}", file=sys.stderr)
        return 2
    code: int | None = None  # no report printed yet
    try:
        while True:
            started = time.monotonic()
            doctor = Doctor(urls, proxy=args.proxy, interfaces=args.interface, sources=args.source)
            report = asyncio.run(doctor.run())
            try:
                _print(report, args.format)
            except BrokenPipeError:
                raise  # the reader left (`| head`): the dispatcher ends quietly
            except OSError as exc:  # `> /dev/full`, a full disk, a quota: say it in one line
                print(f"rdv doctor: writing stdout failed: {exc.strerror or exc}", file=sys.stderr)
                return 1
            code = 0 if report.answered else 1
            if args.every is None:
                return code
            time.sleep(max(0.0, args.every - (time.monotonic() - started)))
    except KeyboardInterrupt:
        # --every ends this way: the last report's code. Before any report, nothing was
        # measured, and 0 ("measured") would tell a script otherwise.
        return 130 if code is None else code
