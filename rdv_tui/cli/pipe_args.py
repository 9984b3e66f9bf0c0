"""Command-line options of ``rdv dial`` and ``rdv accept`` (standard library only).

Kept apart from :mod:`rdv_tui.cli.pipe` so that building the ``rdv`` parser imports
nothing but the standard library.
"""

from __future__ import annotations

import argparse

from rdv_tui.cli.race_options import add_race_arguments
from rdv_tui.cli.secret_args import add_secret_file_argument


def add_pipe_arguments(parser: argparse.ArgumentParser, method: str) -> None:
    """The arguments of ``rdv dial`` and ``rdv accept``: URL, TOKEN and the race options."""
    parser.add_argument("url", metavar="URL", help="rdv server, e.g. http://example.com:8080")
    parser.add_argument(
        "token",
        metavar="TOKEN",
        nargs="?",
        help="shared token (use [A-Za-z0-9._~-]); or --token-file, or $RDV_TOKEN",
    )
    add_secret_file_argument(parser, "--token-file", "token")
    add_race_arguments(parser, dialer=method == "DIAL", picker_role="the dialer")
    parser.add_argument(
        "--predict-ports",
        action="store_true",
        help="run rdv doctor first; behind a NAT that allocates ports sequentially, also "
        "send the public ports our next conns will get, so that the peer can aim at them",
    )
