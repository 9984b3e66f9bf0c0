"""Command-line options of ``rdv dial`` and ``rdv accept`` (standard library only).

Kept apart from :mod:`rdv_tui.pipe` so that building the ``rdv`` parser imports
nothing but the standard library.
"""

from __future__ import annotations

import argparse


def add_pipe_arguments(parser: argparse.ArgumentParser, method: str) -> None:
    """The options shared by ``rdv dial`` and ``rdv accept``."""
    parser.add_argument("url", metavar="URL", help="rdv server, e.g. http://example.com:8080")
    parser.add_argument("token", metavar="TOKEN", help="shared token (use [A-Za-z0-9._~-])")
    parser.add_argument(
        "--spaces",
        default="default",
        metavar="LIST",
        help="address spaces for direct conns: comma list of public4, public6, private4, "
        "private6, link4, link6, loopback4, loopback6, or default, all, public, none "
        "(none forces the relay); default: default",
    )
    pick = parser.add_mutually_exclusive_group()
    ignored = " (ignored by accept: the dialer picks)" if method == "ACCEPT" else ""
    pick.add_argument(
        "--wait-p2p",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"take the first direct conn, or the relay after SECONDS (default 1){ignored}",
    )
    pick.add_argument(
        "--pick-first",
        action="store_true",
        help=f"take the first conn available, relay included{ignored}",
    )
    pick.add_argument(
        "--wait",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"always wait SECONDS, then prefer a direct conn{ignored}",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="give up after SECONDS, lobby wait included (default: no limit)",
    )
    parser.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="extra request header, e.g. 'Authorization: Bearer x' (repeatable)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log the race on stderr, one line per event"
    )
    parser.add_argument(
        "--events", metavar="FILE", default=None, help="write every event to FILE as JSON lines"
    )
