"""``rdv receive CODE``: receive files from ``rdv send``, end-to-end encrypted.

Shows the offer (names, sizes), asks unless ``--yes``, shows progress, verifies every
file's digest. Standard library only at module level; rich and rdv_core are imported
in ``run()``.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from rdv_tui.cli.formatting import human_bytes
from rdv_tui.cli.race_options import add_race_arguments
from rdv_tui.cli.secret_args import add_secret_file_argument

if TYPE_CHECKING:
    from pathlib import Path


def add_parser(subparsers: Any) -> None:
    """Register ``rdv receive``."""
    parser = subparsers.add_parser(
        "receive",
        help="receive files from a peer running rdv send",
        description="Receive files from the peer that runs `rdv send` and shows CODE. "
        "Files are checked against the sender's BLAKE3 digest; names that would leave the "
        "download folder are refused; existing files are never overwritten (a new file "
        "becomes 'name (1).ext'). After a broken connection, partial files are kept: run "
        "both commands again (a fresh code is fine) to resume.",
        epilog="Exit codes: 0 every offered file was received and verified; 1 a file "
        "failed, the offer was declined, the code did not match or the connection failed; "
        "2 bad usage; 3 --timeout expired before the peer came.",
    )
    parser.add_argument(
        "code",
        metavar="CODE",
        nargs="?",
        help="the code rdv send printed (or --code-file, $RDV_CODE)",
    )
    add_secret_file_argument(parser, "--code-file", "code")
    parser.add_argument(
        "--server", metavar="URL", help="rdv server (default: $RDV_SERVER, then the config file)"
    )
    parser.add_argument(
        "--dir",
        metavar="DIR",
        help="download folder (default: 'downloads' in the config file, else ~/Downloads)",
    )
    parser.add_argument("-y", "--yes", action="store_true", help="accept offers without asking")
    add_race_arguments(parser, dialer=False)


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""
    import asyncio

    return asyncio.run(_receive(args))


def _prepare(args: argparse.Namespace) -> tuple[str, Path]:
    """The server URL and the (created) download folder.

    Raises:
        ConfigError, CodeError, UsageError, OSError: reported as usage errors.
    """
    from pathlib import Path

    from rdv_core.config import load_settings, resolve_server
    from rdv_core.session import parse_code
    from rdv_tui.cli.race_options import UsageError
    from rdv_tui.cli.secret_args import ENV_CODE, resolve_secret

    settings = load_settings()
    server, _source = resolve_server(args.server, settings)
    args.code = resolve_secret(args.code, args.code_file, ENV_CODE, "code")
    if args.code is None:
        raise UsageError("a CODE is needed: as an argument, with --code-file or in $RDV_CODE")
    parse_code(args.code)
    download_dir = Path(args.dir).expanduser() if args.dir else settings.downloads
    download_dir.mkdir(parents=True, exist_ok=True)
    return server, download_dir


async def _receive(args: argparse.Namespace) -> int:
    import sys

    from rich.console import Console
    from rich.table import Table

    from rdv_core.config import ConfigError
    from rdv_core.errors import RdvError, RdvTimeoutError
    from rdv_core.session import (
        BurnedCodes,
        CodeError,
        CodeMismatch,
        IncomingOffer,
        SessionError,
        connect_session,
        describe_path,
    )
    from rdv_tui import transfer_ui as ui
    from rdv_tui.cli.race_options import UsageError, client_from_args
    from rdv_tui.transfer_ui import escape  # network text neutralised, then markup-escaped

    console = Console(stderr=True, highlight=False)

    def fail(message: str, code: int = ui.EXIT_FAILED) -> int:
        console.print(f"[red]rdv receive:[/] {escape(message)}")
        return code

    ui.setup_logging(args.verbose)
    try:
        server, download_dir = _prepare(args)
    except (ConfigError, CodeError, UsageError, OSError) as exc:
        return fail(str(exc), ui.EXIT_USAGE)

    view = ui.TransferView(console, "in")
    offers: list[IncomingOffer] = []
    declined: list[str] = []

    async def on_offer(offer: IncomingOffer) -> bool:
        offers.append(offer)
        table = Table(title="The sender offers", show_edge=False)
        table.add_column("file")
        table.add_column("size", justify="right")
        for f in offer.files[:50]:
            table.add_row(escape(f.path), human_bytes(f.size, largest_unit="TiB"))
        if len(offer.files) > 50:
            table.add_row(f"… and {len(offer.files) - 50} more", "")
        console.print(table)
        total_text = human_bytes(offer.total_size, largest_unit="TiB")
        summary = f"{len(offer.files)} file(s), {total_text}"
        if args.yes:
            console.print(f"accepting {summary} into {download_dir}")
            return True
        if not sys.stdin.isatty():
            declined.append("stdin is not a terminal: pass --yes to accept without asking")
            return False
        question = f"Accept {summary} into {download_dir}? [y/N] "
        with view.progress_paused():
            try:
                answer = await ui.ask(console, escape(question))
            except EOFError:
                answer = ""
        if answer.strip().lower() in ("y", "yes"):
            return True
        declined.append("you declined the offer")
        return False

    try:
        stream = ui.open_events(args.events)
    except OSError as exc:
        return fail(f"--events: {exc}", ui.EXIT_USAGE)
    sink = ui.EventSink(args, console, view, stream)
    try:
        try:
            client = client_from_args(args, sink)
        except UsageError as exc:
            return fail(str(exc), ui.EXIT_USAGE)
        console.print("waiting for the sender…")
        try:
            session = await connect_session(
                server,
                args.code,
                "receive",
                client=client,
                on_event=sink,
                on_offer=on_offer,
                download_dir=download_dir,
                on_notice=lambda text: console.print(f"[yellow]rdv receive:[/] {escape(text)}"),
                burned=BurnedCodes(),
            )
        except CodeMismatch as exc:
            return fail(str(exc))
        except RdvTimeoutError as exc:
            return fail(str(exc), ui.EXIT_TIMEOUT)
        except ValueError as exc:
            return fail(str(exc), ui.EXIT_USAGE)
        except (RdvError, SessionError, OSError) as exc:
            return fail(str(exc))
        assert session.conn is not None
        console.print(f"connected, encrypted: {describe_path(session.conn)}")
        try:
            with view.shown():
                reason = await session.wait_closed()
        finally:
            await session.close()
            await session.conn.close()
        results = session.received
        failed = [r for r in results if not r.ok]
        if declined:
            return fail(declined[0])
        if session.error is not None:
            return fail(
                f"session ended: {session.error}; partial files are kept: run rdv send and "
                "rdv receive again to resume (a new code is fine)"
            )
        if failed:
            return fail(f"{len(failed)} of {len(results)} file(s) failed")
        if not results:
            return fail(f"the session ended without files ({reason})")
        console.print(f"[green]done:[/] {len(results)} file(s) verified in {download_dir}")
        return ui.EXIT_OK
    finally:
        if stream is not None:
            stream.close()
