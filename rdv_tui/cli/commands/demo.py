"""``rdv demo``: a whole rdv session in one terminal, on this machine only.

The app starts an embedded server on 127.0.0.1, an in-process peer accepts, the
race plays on the dashboard, then the session screen opens: chat lines are echoed
by the peer and a sample file is sent and verified. Nothing leaves loopback; the
demo's files live in a temporary folder that is removed at exit.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any) -> None:
    """Register ``rdv demo``."""
    parser = subparsers.add_parser(
        "demo",
        help="see a whole session on this machine (embedded server, a second peer)",
        description="Run the app with an embedded server and a second, in-process peer on "
        "loopback: watch the race, chat (the peer echoes), and see a sample file sent and "
        "verified. Quit with ctrl+q.",
    )
    parser.add_argument(
        "--export-dir",
        metavar="DIR",
        type=Path,
        default=Path.cwd(),
        help="where the e and ctrl+s keys save the race (JSONL) and screens (SVG)",
    )
    parser.set_defaults(command="demo")


def run(args: argparse.Namespace) -> int:
    """Run the demo until the user quits."""
    from rdv_tui.app import EXIT_SIGNALS, AppConfig, make_app, run_app
    from rdv_tui.cli.checks import no_terminal
    from rdv_tui.cli.stop_signals import last_exit, take

    why = no_terminal("rdv demo")
    if why is not None:
        print(why, file=sys.stderr)
        return 2

    # Taken before the demo's folder exists, and never given back: one that comes
    # before the app mounted is noted and quits it at once; while the app quits or the
    # folder is removed, only noted (rdv_tui/cli/stop_signals.py). They raised
    # SystemExit before: wherever Textual's start-up was. One inherited as ignored
    # (nohup rdv demo) stays so.
    take(EXIT_SIGNALS)
    with tempfile.TemporaryDirectory(prefix="rdv-demo-") as workdir:
        base = Path(workdir)
        config = AppConfig(
            listen=("127.0.0.1", 0),
            export_dir=args.export_dir,
            download_dir=base / "you",
            demo_dir=base,
            exit_on_signals=True,  # SIGHUP (a closed terminal), SIGTERM: still clean up
        )
        code = run_app(make_app(config))
    return last_exit(code)  # a signal while the folder was removed: noted by the app
