"""Secrets on the command line without putting them in argv (standard library only).

A pipe token or a session code given as an argument is visible to every user of the
machine (``ps``, ``/proc/PID/cmdline``) and often lands in shell history. Each command
that takes one also reads it from a file (``--token-file``, ``--code-file``) or from an
environment variable (``$RDV_TOKEN``, ``$RDV_CODE``: only the same user and root can read
a process's environment). Order: the argument, then the file, then the variable.
"""

from __future__ import annotations

import argparse
import os

from rdv_tui.cli.race_options import UsageError

ENV_TOKEN = "RDV_TOKEN"
ENV_CODE = "RDV_CODE"


def add_secret_file_argument(parser: argparse.ArgumentParser, option: str, what: str) -> None:
    """``--token-file FILE`` / ``--code-file FILE``: read ``what`` from FILE's first line."""
    parser.add_argument(
        option,
        metavar="FILE",
        help=f"read the {what} from the first line of FILE (keeps it out of ps and history)",
    )


def resolve_secret(value: str | None, path: str | None, env: str, what: str) -> str | None:
    """The secret from the argument, else the file, else ``$env``; None if none is given.

    Raises:
        UsageError: both an argument and a file, or a file that is unreadable or empty.
    """
    if value is not None and path is not None:
        raise UsageError(f"give the {what} as an argument or in a file, not both")
    if value is not None:
        return value
    if path is not None:
        try:
            with open(path, encoding="utf-8") as handle:
                line = handle.readline(4096).strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read the {what} from {path}: {exc}") from None
        if not line:
            raise UsageError(f"{path}: the {what} file is empty")
        return line
    return os.environ.get(env, "").strip() or None
