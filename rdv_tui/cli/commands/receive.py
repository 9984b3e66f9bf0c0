"""``rdv receive CODE``: receive files from ``rdv send``, end-to-end encrypted.

Shows the offer (names, sizes), asks unless ``--yes``, shows progress, verifies every
file's digest. Standard library only at module level; rich and rdv_core are imported
in ``run()``.
"""

from __future__ import annotations

import argparse
import contextlib
from typing import TYPE_CHECKING, Any

from rdv_tui.cli.explain import add_explain_argument
from rdv_tui.cli.formatting import FiguresHelpFormatter, human_bytes, plural
from rdv_tui.cli.race_options import WAITING_REJOINS, add_race_arguments
from rdv_tui.cli.secret_args import add_secret_file_argument

if TYPE_CHECKING:
    from pathlib import Path

    from rdv_tui.transfer_stop import Stop


def add_parser(subparsers: Any) -> None:
    """Register ``rdv receive``."""
    parser = subparsers.add_parser(
        "receive",
        formatter_class=FiguresHelpFormatter,  # "0.5 s" stays on one line
        help="receive files from a peer running rdv send",
        description="Receive files from the peer that runs `rdv send` and shows CODE. "
        "Files are checked against the sender's BLAKE3 digest; names that would leave the "
        "download folder are refused; existing files are never overwritten (a new file "
        "becomes 'name (1).ext'). After a broken connection, partial files are kept: run "
        "both commands again (a fresh code is fine) to resume.",
        epilog="Exit codes: 0 every offered file was received and verified; 1 a file "
        "failed, the offer was declined, the code did not match or the connection failed; "
        "2 bad usage; 3 --timeout expired before the peer came; 130 Ctrl-C, 143 SIGTERM, "
        "129 SIGHUP (the sender is told; run both again to resume).",
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
    add_race_arguments(parser, dialer=False, fast_start=True, rejoin=WAITING_REJOINS)
    add_explain_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""

    from rdv_tui.transfer_stop import run_terminable

    return run_terminable(lambda stop: _receive(args, stop))


def _prepare(args: argparse.Namespace) -> tuple[str, Path]:
    """The server URL and the (created) download folder.

    Raises:
        ConfigError, CodeError, UsageError, ValueError, OSError: reported as usage errors.
    """
    from pathlib import Path

    from rdv_core.config import load_settings, resolve_server
    from rdv_core.session import describe_os_error
    from rdv_tui.cli.checks import check_code, check_server_url, spaces_for
    from rdv_tui.cli.race_options import UsageError
    from rdv_tui.cli.secret_args import ENV_CODE, resolve_secret

    settings = load_settings()
    server, source = resolve_server(args.server, settings)
    check_server_url(server, source)
    args.code = resolve_secret(args.code, args.code_file, ENV_CODE, "code")
    if args.code is None:
        raise UsageError("a CODE is needed: as an argument, with --code-file or in $RDV_CODE")
    check_code(args.code)
    args.spaces = spaces_for(server, args.spaces)
    download_dir = Path(args.dir).expanduser() if args.dir else settings.downloads
    if download_dir.exists() and not download_dir.is_dir():  # mkdir said "File exists"
        raise OSError(f"the download folder {download_dir} is not a folder")
    try:
        download_dir.mkdir(parents=True, exist_ok=True)
        _check_writable(download_dir)
    except OSError as exc:
        raise OSError(describe_os_error(exc, f"cannot write into {download_dir}")) from None
    return server, download_dir


def _check_writable(folder: Path) -> None:
    """Refuse a download folder nothing can be written into, before anyone waits.

    A read-only one was found out only after the offer was accepted: the sender waited
    for the code to be typed, then every file failed ("read-only file system"). An
    unnamed file (O_TMPFILE where the system has it) tests it, and nothing is left
    behind. Only "not allowed" counts: a full disk may still take a resume.

    Raises:
        OSError: read-only file system, or permission denied.
    """
    import errno
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise


#: After a session that ended: what arrived resumes.
AGAIN = "partial files are kept: run rdv send and rdv receive again to resume (a new code is fine)"


def _free_space(folder: Path) -> int | None:
    """Free bytes on the file system of ``folder``, or None if it cannot tell."""
    import shutil

    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _names(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


async def _receive(args: argparse.Namespace, stop: Stop) -> int:
    import asyncio
    import sys

    from rich.table import Table

    from rdv_core.config import ConfigError
    from rdv_core.errors import RdvError, RdvTimeoutError
    from rdv_core.session import (
        CANCELLED_BY_PEER,
        DECLINED,
        SESSION_ENDED,
        BurnedCodes,
        CodeError,
        CodeMismatch,
        IncomingOffer,
        SessionError,
        connect_session,
        describe_path,
    )
    from rdv_tui import transfer_ui as ui
    from rdv_tui.cli.events_file import open_events
    from rdv_tui.cli.explain import doctor_before_args, explain_after, predict_ports
    from rdv_tui.cli.race_options import UsageError, client_from_args
    from rdv_tui.cli.secret_args import ENV_CODE, resolve_secret_async
    from rdv_tui.transfer_ask import ask
    from rdv_tui.transfer_console import stderr_console
    from rdv_tui.transfer_ui import escape  # network text neutralised, then markup-escaped

    console = stderr_console()

    def say(text: str) -> None:
        console.print(escape(text))

    def fail(message: str, code: int = ui.EXIT_FAILED) -> int:
        # soft_wrap: one line even when stderr is a file or a pipe (no wrap at 80 columns)
        console.print(f"[red]rdv receive:[/] {escape(message)}", soft_wrap=True)
        return code

    ui.setup_logging(args.verbose)
    ui.tune_gc()
    try:
        # Awaited here, not read in _prepare: a FIFO's writer is waited for inside the
        # loop, where SIGTERM, SIGHUP and Ctrl-C end the wait (cli/secret_args.py).
        args.code = await resolve_secret_async(
            args.code, args.code_file, ENV_CODE, "code", lambda text: say(f"rdv receive: {text}")
        )
        args.code_file = None
        server, download_dir = _prepare(args)
    except (ConfigError, CodeError, UsageError, ValueError, OSError) as exc:
        return fail(str(exc), ui.EXIT_USAGE)

    view = ui.TransferView(console, "in")
    offers: list[IncomingOffer] = []
    declined: list[tuple[str, IncomingOffer]] = []

    #: The decision on each send (by its first batch), for the batches that follow it.
    decided: dict[int, asyncio.Future[bool]] = {}

    async def on_offer(offer: IncomingOffer) -> bool:
        offers.append(offer)
        if offer.send is not None:
            # One question per send, not per batch: a send of 100,000 files comes in
            # many batches, each answered with the answer to its first.
            earlier = decided.get(offer.send.first)
            if earlier is not None:
                return await earlier
            decision = decided[offer.send.first] = asyncio.get_running_loop().create_future()
            view.expect(offer.send.files, offer.send.bytes)
            try:
                answer = await _decide(offer)
            except BaseException:
                decision.set_result(False)
                raise
            decision.set_result(answer)
            return answer
        return await _decide(offer)

    async def _decide(offer: IncomingOffer) -> bool:
        # A heading of its own, not the table's title: rich wraps a title to the table's
        # width, and one short name made it "The sender" over "offers", both centered.
        table = Table(show_edge=False)
        # Folded, not cut: the end of a long name (the file itself) is what tells
        # two files apart, and what a person accepts.
        table.add_column("file", overflow="fold")
        table.add_column("size", justify="right")
        for f in offer.files[:50]:
            table.add_row(escape(f.path), human_bytes(f.size, largest_unit="TiB"))
        if len(offer.files) > 50:
            table.add_row(f"… and {len(offer.files) - 50} more in this batch", "")
        files, size = len(offer.files), offer.total_size
        if offer.send is not None:
            files, size = offer.send.files, offer.send.bytes
        if files > len(offer.files):
            table.add_row(f"… {plural(files, 'file')} in all, in batches", "")
        console.print("The sender offers:")
        console.print(table)
        summary = f"{plural(files, 'file')}, {human_bytes(size, largest_unit='TiB')}"
        if files > len(offer.files):
            # Only this batch was checked against the free space (the later ones are
            # checked as they come): a send of 9.8 GiB into 5 GiB free was accepted
            # without a word, and failed half-way.
            free = _free_space(download_dir)
            if free is not None and size - offer.total_size > free:
                view.say(
                    f"[yellow]note:[/] the send is {human_bytes(size, largest_unit='TiB')}, "
                    f"{human_bytes(free, largest_unit='TiB')} free in the download folder: "
                    "later files may not fit (files already there are not sent again)",
                    soft_wrap=True,
                )
        if args.yes:
            console.print(f"accepting {summary} into {escape(str(download_dir))}", soft_wrap=True)
            return True
        # stdin is a terminal here: _prepare refused a receive that could not ask.
        question = f"Accept {summary} into {download_dir}? [y/N] "
        with view.progress_paused():
            try:
                answer = await ask(console, escape(question))
            except EOFError:
                answer = ""
        if answer.strip().lower() in ("y", "yes"):
            return True
        declined.append(("you declined", offer))
        return False

    try:
        stream = open_events(args.events) if args.events else None
    except OSError as exc:
        return fail(f"cannot write events to {args.events}: {exc.strerror or exc}", ui.EXIT_USAGE)
    sink = ui.EventSink(args, console, view, stream, server)
    try:
        try:
            client = client_from_args(args, sink)
        except UsageError as exc:
            return fail(str(exc), ui.EXIT_USAGE)
        if not args.yes and not sys.stdin.isatty():
            # Said after every other usage error and before the code is used: found out
            # at the offer, it burned the code ("the receiver declined": start again).
            return fail(
                "stdin is not a terminal, so the offer cannot be asked about: pass --yes to "
                "accept it without asking (the code is still good)",
                ui.EXIT_USAGE,
            )
        wants_doctor = args.explain or args.predict_ports
        report = await doctor_before_args(server, say, args) if wants_doctor else None
        if args.predict_ports:
            predict_ports(client, report)
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
                on_notice=lambda text: view.say(
                    f"[yellow]rdv receive:[/] {escape(text)}", soft_wrap=True
                ),
                burned=BurnedCodes(),
                batched_events=True,  # the view takes an offer's, a bundle's files at once
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
        console.print(f"connected, encrypted: {escape(describe_path(session.conn))}")
        if args.explain:
            await explain_after(session, report, sink, say, client.spaces)
        try:
            with view.shown():
                reason = await session.wait_closed()
        except asyncio.CancelledError:  # Ctrl-C, SIGTERM: the sender is told why, not "closed"
            sink.ended = True
            await session.close(stop.reason, ours=stop.word)
            console.print(escape(view.summary()), soft_wrap=True)
            fail(f"{stop.word}; {AGAIN}")  # the exit code stays 130 (143)
            raise
        finally:
            sink.ended = True
            await session.close()
            await session.conn.close()
        results = session.received
        verified = [r for r in results if r.ok]
        failed = [r for r in results if not r.ok]
        if view.files_total:  # "0 of 0 files verified" above "ended without files": noise
            console.print(escape(view.summary()), soft_wrap=True)
        # Every offered file verified, not only every file that came: a send whose later
        # batch was refused (no room) ended "done: 235 file(s) verified", exit 0.
        complete = not view.failures and view.files_ok >= view.files_total
        if session.error is None and not failed and not declined and verified and complete:
            where = escape(str(download_dir))
            done = f"[green]done:[/] {plural(len(verified), 'file')} verified in {where}"
            console.print(done, soft_wrap=True)
            return ui.EXIT_OK
        # Say what happened to every file, not only the last thing that went wrong.
        parts = [f"{plural(len(verified), 'file')} verified in {download_dir}"] if verified else []
        # Files the sender cancelled (docs/PROTOCOL.md 12.14) are not failures.
        stopped = [r for r in failed if r.reason == CANCELLED_BY_PEER]
        failed = [r for r in failed if r.reason != CANCELLED_BY_PEER]
        if stopped:
            parts.append(
                f"{len(stopped)} cancelled by the sender ({_names([r.name for r in stopped])})"
            )
        if failed:
            parts.append(f"{len(failed)} failed ({_names([r.name for r in failed])})")
            first = failed[0]
            if not first.reason.startswith(SESSION_ENDED):  # that one is said below
                # Why, as the sender's last line says it: a disk that filled up read
                # "16 failed (a, b, c and 13 more)", its cause 16 lines above.
                parts[-1] += f"; the first: {first.name} ({first.reason})"
        for why, offer in declined:
            names = _names([f.path for f in offer.files])
            parts.append(f"{len(offer.files)} declined ({names}): {why}")
        # Offers refused before anyone was asked (no room, unsafe names): without this
        # the receiver read "the session ended without files" and never learnt why.
        refused: dict[str, list[str]] = {}
        for name, why in view.refused:
            if why != DECLINED:  # asked and declined: said above, in the user's words
                refused.setdefault(why, []).append(name)
        for why, refused_names in refused.items():
            parts.append(f"{len(refused_names)} refused ({_names(refused_names)}): {why}")
        missing = view.files_total - view.files_ok - len(view.failures)
        if missing > 0:
            parts.append(f"{missing} offered but not received")
        again = AGAIN
        if session.error is not None:
            parts.append(f"session ended: {session.error}; {again}")
        elif any(r.reason.startswith(SESSION_ENDED) for r in failed):
            # The sender stopped (Ctrl-C there) in the middle: a clean end, no error,
            # but what arrived resumes; "1 failed (big.bin)" alone read as a loss.
            parts.append(again)
        elif not parts:
            parts.append(f"the session ended without files ({reason})")
        return fail("; ".join(parts))
    finally:
        if stream is not None:
            with contextlib.suppress(OSError):  # its last flush fails as its writes did
                stream.close()
