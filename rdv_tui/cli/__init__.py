"""The ``rdv`` command: argument parsing and dispatch to one module per subcommand.

Each subcommand lives in ``rdv_tui/cli/commands/<name>.py`` with two functions,
``add_parser(subparsers)`` and ``run(args) -> int``. Command modules import only
the standard library at module level, so that building the parser stays fast and
headless commands (serve, dial, accept, lab) never import textual or rich.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from rdv_core import __version__

#: Subcommands in the order ``rdv --help`` lists them.
COMMANDS: tuple[str, ...] = (
    "tui",
    "demo",
    "serve",
    "dial",
    "accept",
    "send",
    "receive",
    "lab",
)


def _command_module(name: str) -> ModuleType:
    return importlib.import_module(f"rdv_tui.cli.commands.{name}")


def build_parser() -> argparse.ArgumentParser:
    """The full ``rdv`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="rdv",
        description="Relay-assisted peer-to-peer TCP: see why two machines can or cannot "
        "talk directly, then chat and move files between them. "
        "With no command, opens the app on an embedded local server.",
    )
    parser.add_argument("--version", action="version", version=f"rdv {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        _command_module(name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rdv`` console script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(args_list or ["tui"])
    if args.command is None:
        args = parser.parse_args(["tui", *args_list])
    module = _command_module(args.command)
    try:
        code: int = module.run(args)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
