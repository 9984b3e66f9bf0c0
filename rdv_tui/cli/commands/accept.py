"""``rdv accept URL TOKEN``: pipe mode, stdin to the peer and the peer to stdout.

Headless: imports only the standard library at module level, never textual or rich.
"""

from __future__ import annotations

import argparse
from typing import Any

from rdv_tui.cli.pipe_args import add_pipe_arguments


def add_parser(subparsers: Any) -> None:
    """Register ``rdv accept``."""
    parser = subparsers.add_parser(
        "accept",
        help="wait for a peer's dial (pipe mode)",
        description="Wait for the peer that runs `rdv dial` with the same TOKEN, then copy stdin "
        "to the peer and the peer to stdout. The dialer picks the conn; accept takes "
        "whichever the dialer chose.",
        epilog="Exit codes: 0 the peer closed after a connection; 1 the attempt or the "
        "connection failed; 2 bad usage; 3 --timeout expired; 130 (Ctrl-C), 143 (SIGTERM), "
        "129 (SIGHUP: the terminal closed; under nohup it goes on) interrupted, the conn "
        "reset so that the peer does not take it for an end. A warning "
        "is printed when the server-observed address is not public (IPv4, or IPv6 over IPv6).",
    )
    add_pipe_arguments(parser, "ACCEPT")


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""
    from rdv_tui.cli.pipe import run_pipe

    return run_pipe(args, "ACCEPT")
