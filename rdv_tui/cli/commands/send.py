"""``rdv send PATH...``: send files and folders end-to-end encrypted to ``rdv receive``.

Prints a code and the exact command to run on the other machine, shows progress bars
with rate and ETA, and exits 0 only after the receiver verified every file.
Standard library only at module level; rich and rdv_core are imported in ``run()``.
"""

from __future__ import annotations

import argparse
from typing import Any

from rdv_tui.cli.formatting import human_bytes
from rdv_tui.cli.race_options import add_race_arguments
from rdv_tui.cli.secret_args import add_secret_file_argument


def add_parser(subparsers: Any) -> None:
    """Register ``rdv send``."""
    parser = subparsers.add_parser(
        "send",
        help="send files and folders to a peer, end-to-end encrypted",
        description="Send files and folders to the peer that runs `rdv receive CODE`. Prints "
        "the code and the command to run on the other machine. Only the number before the "
        "first '-' of the code reaches the server; the rest keys the encryption (SPAKE2), "
        "so the server cannot read or change the files. Run it again after a broken "
        "connection (a fresh code is fine): the transfer resumes where the receiver's "
        "verified data ends.",
        epilog="Exit codes: 0 the receiver verified every file; 1 a file failed, the "
        "receiver declined, the code did not match or the connection failed; 2 bad usage; "
        "3 --timeout expired before the peer came.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files and folders to send")
    parser.add_argument(
        "--server", metavar="URL", help="rdv server (default: $RDV_SERVER, then the config file)"
    )
    parser.add_argument(
        "--code",
        metavar="CODE",
        help="use this code instead of a fresh one (form: 482913-tulip-orbit); or "
        "--code-file, or $RDV_CODE",
    )
    add_secret_file_argument(parser, "--code-file", "code")
    add_race_arguments(parser, dialer=True)


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""
    import asyncio

    return asyncio.run(_send(args))


async def _send(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from rdv_core.config import ConfigError, resolve_server
    from rdv_core.errors import RdvError, RdvTimeoutError
    from rdv_core.session import (
        BurnedCodes,
        CodeError,
        CodeMismatch,
        SessionError,
        TransferFailed,
        TransferRejected,
        UnsafeName,
        collect,
        connect_session,
        describe_path,
        parse_code,
    )
    from rdv_tui import transfer_ui as ui
    from rdv_tui.cli.race_options import UsageError, client_from_args
    from rdv_tui.cli.secret_args import ENV_CODE, resolve_secret
    from rdv_tui.transfer_ui import escape  # network text neutralised, then markup-escaped

    console = Console(stderr=True, highlight=False)

    def fail(message: str, code: int = ui.EXIT_FAILED) -> int:
        console.print(f"[red]rdv send:[/] {escape(message)}")
        return code

    ui.setup_logging(args.verbose)
    try:
        server, _source = resolve_server(args.server)
        code = resolve_secret(args.code, args.code_file, ENV_CODE, "code")
        if code is not None:
            parse_code(code)
        files = collect([Path(p) for p in args.paths])
    except (ConfigError, CodeError, UsageError, UnsafeName, ValueError, OSError) as exc:
        return fail(str(exc), ui.EXIT_USAGE)
    if not files:
        return fail("nothing to send (the folders are empty)", ui.EXIT_USAGE)
    total = sum(f.size for f in files)
    print(f"Sending {len(files)} file(s), {human_bytes(total, largest_unit='TiB')}.", flush=True)

    def show_code(shown: str) -> None:  # --code: unless burned; else once alone in the lobby
        print(f"Code: {shown}", flush=True)
        print("On the other machine run:", flush=True)
        print(f"    rdv receive {shown} --server {server}", flush=True)

    view = ui.TransferView(console, "out")
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
        console.print("waiting for the receiver…")
        try:
            session = await connect_session(
                server,
                code,
                "send",
                client=client,
                on_event=sink,
                on_code=show_code,
                on_notice=lambda text: console.print(f"[yellow]rdv send:[/] {escape(text)}"),
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
                results = await session.send_paths([Path(p) for p in args.paths])
        except TransferRejected as exc:
            return fail(f"the receiver declined: {exc.failures[0][1]}")
        except TransferFailed as exc:
            return fail(str(exc))
        except SessionError as exc:
            return fail(f"session ended: {exc}; run rdv send again to resume (a new code is fine)")
        finally:
            await session.close()
            if session.conn is not None:
                await session.conn.close()
        resumed = sum(r.resumed_from for r in results)
        note = f" ({human_bytes(resumed, largest_unit='TiB')} resumed)" if resumed else ""
        console.print(
            f"[green]done:[/] the receiver verified all {len(results)} file(s){escape(note)}"
        )
        return ui.EXIT_OK
    finally:
        if stream is not None:
            stream.close()
