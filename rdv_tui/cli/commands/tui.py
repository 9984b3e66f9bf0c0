"""``rdv tui`` (and ``rdv`` with no command): the Textual app.

With no options it opens the Connect screen backed by an embedded rdv server on
127.0.0.1. ``--serve`` opens on the Server screen, ``--replay FILE`` opens a saved race
in the dashboard.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rdv_tui.cli.listen import parse_listen
from rdv_tui.cli.race_options import add_race_arguments


def add_parser(subparsers: Any) -> None:
    """Register ``rdv tui``."""
    parser = subparsers.add_parser(
        "tui",
        help="open the app (the default command)",
        description="Open the rdv app: connect, watch the race, chat and send files. "
        "By default the app hosts an rdv server on 127.0.0.1.",
    )
    parser.add_argument(
        "--replay",
        metavar="FILE",
        type=Path,
        help="open a saved race (JSONL, as exported with the 'e' key) in the dashboard",
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help="open on the Server screen of the embedded server",
    )
    parser.add_argument(
        "--listen",
        metavar="HOST:PORT",
        default="127.0.0.1:0",
        help="address of the embedded server (default 127.0.0.1 on a free port; "
        "use :8080 or 0.0.0.0:8080 to let other machines reach it)",
    )
    parser.add_argument(
        "--server",
        metavar="URL",
        help="use this rdv server instead of the embedded one (e.g. http://host:8080/); "
        "default: $RDV_SERVER, then server = in config.toml, else an embedded server",
    )
    parser.add_argument(
        "--export-dir",
        metavar="DIR",
        type=Path,
        default=Path.cwd(),
        help="where exported races (JSONL) and screenshots (SVG) go (default: current folder)",
    )
    parser.add_argument(
        "--download-dir",
        metavar="DIR",
        type=Path,
        help="where received files go (default: downloads = in config.toml, else ~/Downloads)",
    )
    add_race_arguments(parser, dialer=True, app=True)
    parser.set_defaults(command="tui")


def form_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The Connect form settings given on the command line (only those given).

    Raises:
        ValueError: a bad value (the message names the option).
    """
    from rdv_core.wire import format_spaces, parse_spaces

    form: dict[str, Any] = {}
    if args.spaces is not None:
        try:
            form["spaces"] = format_spaces(parse_spaces(args.spaces))
        except ValueError as exc:
            raise ValueError(f"--spaces: {exc}") from None
    for name in ("wait_p2p", "wait", "timeout"):
        value = getattr(args, name)
        if value is not None and value < 0:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 0")
    if args.pick_first:
        form["picker"] = "pick-first"
    elif args.wait is not None:
        form["picker"], form["wait_s"] = "wait-constant", args.wait
    elif args.wait_p2p is not None:
        form["picker"], form["wait_s"] = "wait-for-p2p", args.wait_p2p
    if args.timeout is not None:
        form["timeout_s"] = args.timeout or None  # 0: no limit
    return form


def run(args: argparse.Namespace) -> int:
    """Run the app until the user quits."""
    from rdv_core.config import ConfigError, load_settings, resolve_server
    from rdv_tui.app import AppConfig, load_race, make_app, run_app
    from rdv_tui.cli.checks import check_server_url, no_terminal
    from rdv_tui.cli.stop_signals import last_exit
    from rdv_tui.recent import default_path

    try:
        listen = parse_listen(args.listen, port_alone=False)
    except ValueError as exc:
        print(f"rdv tui: invalid --listen {args.listen!r}: {exc}", file=sys.stderr)
        return 2
    try:
        form = form_settings(args)
    except ValueError as exc:
        print(f"rdv tui: {exc}", file=sys.stderr)
        return 2
    if args.replay is not None:
        try:
            load_race(args.replay)  # fail here, with a clear message, not inside the app
        except (OSError, ValueError) as exc:
            # An OSError's own text repeated the path as a repr: "[Errno 2] No such
            # file or directory: 'race.jsonl'".
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            print(f"rdv tui: cannot replay {args.replay}: {why}", file=sys.stderr)
            return 2
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"rdv tui: {exc}", file=sys.stderr)
        return 2
    server_url: str | None = args.server
    source = "--server"
    if server_url is None and not args.serve:
        # --server, then RDV_SERVER, then config.toml; with none, the app hosts its own.
        try:
            server_url, source = resolve_server(None, settings)
        except ConfigError:
            server_url = None
    if server_url is not None:
        # Checked here as rdv dial and rdv send check it: `rdv tui --server ftp://x`
        # opened the app with a banner telling the other machine to use ftp://x.
        try:
            check_server_url(server_url, source)
        except ValueError as exc:
            print(f"rdv tui: {exc}", file=sys.stderr)
            return 2
    no_tty = no_terminal("rdv tui")  # after every usage error: those are said first
    if no_tty is not None:
        print(no_tty, file=sys.stderr)
        return 2
    config = AppConfig(
        replay=args.replay,
        serve=args.serve,
        listen=listen,
        server_url=server_url,
        export_dir=args.export_dir,
        download_dir=args.download_dir or settings.downloads,
        recent_path=default_path(),
        form=form,
        exit_on_signals=True,
    )
    return last_exit(run_app(make_app(config)))
