"""Command-line options of ``rdv dial`` and ``rdv accept`` (standard library only).

Kept apart from :mod:`rdv_tui.cli.pipe` so that building the ``rdv`` parser imports
nothing but the standard library.
"""

from __future__ import annotations

import argparse

from rdv_tui.cli.race_options import WAITING_REJOINS, UsageError, add_race_arguments
from rdv_tui.cli.secret_args import add_secret_file_argument


def add_pipe_arguments(parser: argparse.ArgumentParser, method: str) -> None:
    """The arguments of ``rdv dial`` and ``rdv accept``: URL, TOKEN and the race options."""
    parser.add_argument(
        "url",
        metavar="URL",
        nargs="?",
        help="rdv server, e.g. http://example.com:8080 (default: $RDV_SERVER, then the config "
        "file: then the one argument is the TOKEN)",
    )
    parser.add_argument(
        "token",
        metavar="TOKEN",
        nargs="?",
        help="shared token (use [A-Za-z0-9._~-]); or --token-file, or $RDV_TOKEN",
    )
    add_secret_file_argument(parser, "--token-file", "token")
    # rdv accept shows its token and waits; rdv dial usually finds its peer waiting (it
    # rejoins too with --rejoin N: docs/PROTOCOL.md section 18).
    rejoin = 0 if method == "DIAL" else WAITING_REJOINS
    add_race_arguments(parser, dialer=method == "DIAL", picker_role="the dialer", rejoin=rejoin)
    parser.add_argument(
        "--predict-ports",
        action="store_true",
        help="run rdv doctor first; behind a NAT that allocates ports sequentially, also "
        "send the public ports our next conns will get, so that the peer can aim at them",
    )


def resolve_pipe_server(args: argparse.Namespace) -> None:
    """Set ``args.url`` (and ``args.token``) from what was given.

    ``rdv dial URL TOKEN`` is the Go CLI's form and stays as it was. With one argument that
    is no URL (no ``://``), that argument is the TOKEN and the server is the one ``rdv
    send`` would use (``$RDV_SERVER``, then ``server =`` in the config file): a user who
    set ``RDV_SERVER`` for ``rdv send`` and typed ``rdv dial my-token`` was told "a TOKEN
    is needed" of a command line that held one.

    Raises:
        UsageError: no server anywhere, or an unreadable config file.
    """
    from rdv_core.config import ConfigError, resolve_server

    if args.url is not None and "://" not in args.url and args.token is None:
        args.url, args.token = None, args.url
    if args.url is None:
        try:
            args.url, source = resolve_server(None, how_to_pass="give the URL before the TOKEN")
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
        from rdv_tui.cli.checks import check_server_url

        try:
            # A URL the user did not type is said with where it came from, as `rdv send`
            # says it ("RDV_SERVER: rdv server URL must be http:// or https://, ...").
            check_server_url(args.url, source)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
