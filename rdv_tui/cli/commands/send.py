"""``rdv send PATH...``: send files and folders end-to-end encrypted to ``rdv receive``.

Prints a code and the exact command to run on the other machine, shows progress bars
with rate and ETA, and exits 0 only after the receiver verified every file.
Standard library only at module level; rich and rdv_core are imported in ``run()``.
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
    from rdv_tui.transfer_stop import Stop


def add_parser(subparsers: Any) -> None:
    """Register ``rdv send``."""
    parser = subparsers.add_parser(
        "send",
        formatter_class=FiguresHelpFormatter,  # "0.5 s" stays on one line
        help="send files and folders to a peer, end-to-end encrypted",
        description="Send files and folders to the peer that runs `rdv receive CODE`. Prints "
        "the code and the command to run on the other machine. Only the number before the "
        "first '-' of the code reaches the server; the rest keys the encryption (SPAKE2), "
        "so the server cannot read or change the files. Only regular files are sent: "
        "inside folders, symlinks, fifos, sockets and devices are left out, and so are "
        "empty folders (it says how many). Run it again after a broken "
        "connection (a fresh code is fine): the transfer resumes where the receiver's "
        "verified data ends.",
        epilog="Exit codes: 0 the receiver verified every file; 1 a file failed or was not sent "
        "(a name the receiver would refuse), the "
        "receiver declined, the code did not match or the connection failed; 2 bad usage; "
        "3 --timeout expired before the peer came; 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP "
        "(the receiver is told; run both again to resume).",
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
    add_race_arguments(parser, dialer=True, fast_start=True, rejoin=WAITING_REJOINS)
    add_explain_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""

    from rdv_tui.transfer_stop import run_terminable

    return run_terminable(lambda stop: _send(args, stop))


#: After a session that ended: what the receiver holds resumes.
AGAIN = "run rdv send again to resume (a new code is fine)"
#: Names the receiver would refuse, each on its own ``not sent:`` line, up to this many.
SHOWN_REFUSED = 20


def _out(*lines: str) -> None:
    """Lines on stdout: the code and the command, for a person or a script to read.

    A stdout that takes nothing (``> /dev/full``, a reader gone) ended the send with a
    traceback ("OSError: [Errno 28] No space left on device") or "[Errno 32] Broken
    pipe"; and the code, the one thing the user needs, was lost with it.

    Raises:
        OSError: ``cannot write to stdout: WHY`` (what was not written is dropped, so
            that the flush at exit does not fail again).
    """
    import os
    import sys

    if sys.stdout is None:  # started with stdout closed (>&-): checked at the start
        return
    try:
        for line in lines:
            print(line, file=sys.stdout)
        sys.stdout.flush()
    except OSError as exc:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        raise OSError(f"cannot write to stdout: {exc.strerror or exc}") from None


def _all_files(count: int) -> str:
    """``all 6 files``, ``1 file`` (not "all 1 file(s)")."""
    return f"all {plural(count, 'file')}" if count > 1 else plural(count, "file")


def _refused_text(refused: list[tuple[str, str]]) -> str:
    """``2 not sent (names the receiver would refuse: d/aux.c, d/a.)`` (raw: to escape)."""
    names = ", ".join(where for where, _ in refused[:3])
    more = f" and {len(refused) - 3} more" if len(refused) > 3 else ""
    return f"{len(refused)} not sent (names the receiver would refuse: {names}{more})"


async def _send(args: argparse.Namespace, stop: Stop) -> int:
    import asyncio
    import sys
    from collections import Counter
    from pathlib import Path

    from rdv_core.config import ConfigError, resolve_server
    from rdv_core.errors import RdvError, RdvTimeoutError
    from rdv_core.session import (
        CANCELLED_BY_PEER,
        SESSION_ENDED,
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
    )
    from rdv_tui import transfer_ui as ui
    from rdv_tui.cli.checks import check_code, check_server_url, loopback_hint, spaces_for
    from rdv_tui.cli.events_file import open_events
    from rdv_tui.cli.explain import doctor_before_args, explain_after, predict_ports
    from rdv_tui.cli.formatting import join_reason
    from rdv_tui.cli.race_options import UsageError, client_from_args
    from rdv_tui.cli.secret_args import ENV_CODE, resolve_secret_async
    from rdv_tui.transfer_console import stderr_console
    from rdv_tui.transfer_ui import escape  # network text neutralised, then markup-escaped

    console = stderr_console()

    def say(text: str) -> None:
        console.print(escape(text))

    def fail(message: str, code: int = ui.EXIT_FAILED) -> int:
        # soft_wrap: one line even when stderr is a file or a pipe (no wrap at 80 columns)
        console.print(f"[red]rdv send:[/] {escape(message)}", soft_wrap=True)
        return code

    ui.setup_logging(args.verbose)
    ui.tune_gc()
    view = ui.TransferView(console, "out")
    # Everything is checked before anything is printed: a code and a command for the
    # other machine that can never work would send the user on a useless errand.
    try:
        server, source = resolve_server(args.server)
        check_server_url(server, source)
        sink = ui.EventSink(args, console, view, None, server)
        code = await resolve_secret_async(
            args.code, args.code_file, ENV_CODE, "code", lambda text: say(f"rdv send: {text}")
        )
        if code is not None:
            check_code(code)
        elif sys.stdout is None:  # the code would be shown nowhere: nobody could use it
            raise UsageError("stdout is closed: nowhere to show the code (give one with --code)")
        args.spaces = spaces_for(server, args.spaces)
        client = client_from_args(args, sink)
        skipped: Counter[str] = Counter()
        refused: list[tuple[str, str]] = []  # names the receiver would refuse: left out
        files = collect([Path(p) for p in args.paths], skipped, refused)
    except (ConfigError, CodeError, UsageError, UnsafeName, ValueError, OSError) as exc:
        return fail(str(exc), ui.EXIT_USAGE)
    # Said before anyone waits: "the receiver verified all 6 file(s)" of a folder that
    # also held a symlink or an empty folder read as if everything had arrived.
    left_out = ", ".join(plural(n, kind) for kind, n in sorted(skipped.items()))
    if not files:
        why = f"{left_out}; only regular files are sent" if left_out else "the folders are empty"
        if refused:  # the first one's reason: the user renames it
            where, reason = refused[0]
            more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
            why = f"{where}: the receiver would refuse the name: {reason}{more}"
            return fail(f"nothing to send: {why}", ui.EXIT_USAGE)
        return fail(f"nothing to send ({why})", ui.EXIT_USAGE)
    try:
        stream = open_events(args.events) if args.events else None
    except OSError as exc:
        return fail(f"cannot write events to {args.events}: {exc.strerror or exc}", ui.EXIT_USAGE)
    sink.recorder.stream = stream
    total = sum(f.size for f in files)
    try:
        _out(f"Sending {plural(len(files), 'file')}, {human_bytes(total, largest_unit='TiB')}.")
    except OSError as exc:
        return fail(str(exc))
    if left_out:
        note = f"[yellow]not sent:[/] {left_out} (only regular files are sent)"
        console.print(note, soft_wrap=True)
    for where, why in refused[:SHOWN_REFUSED]:  # each one named: the user renames it
        console.print(
            f"[yellow]not sent:[/] {escape(where)} (the receiver would refuse the name: "
            f"{escape(why)})",
            soft_wrap=True,
        )
    if len(refused) > SHOWN_REFUSED:
        hidden = len(refused) - SHOWN_REFUSED
        names = "name" if hidden == 1 else "names"
        console.print(f"[yellow]not sent:[/] {hidden} more {names} the receiver would refuse")

    def show_code(shown: str) -> None:  # --code: unless burned; else once alone in the lobby
        _out(
            f"Code: {shown}",
            "On the other machine run:",
            f"    rdv receive {shown} --server {server}{loopback_hint(server)}",
        )
        # After the code, not before it: the wait is for the person who is given it.
        console.print("waiting for the receiver…")

    view.expect(len(files), total)
    try:
        wants_doctor = args.explain or args.predict_ports
        report = await doctor_before_args(server, say, args) if wants_doctor else None
        if args.predict_ports:
            predict_ports(client, report)
        try:
            session = await connect_session(
                server,
                code,
                "send",
                client=client,
                on_event=sink,
                on_code=show_code,
                on_notice=lambda text: console.print(
                    f"[yellow]rdv send:[/] {escape(text)}", soft_wrap=True
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
                results = await session.send_files(files)  # listed above: not again
        except TransferRejected as exc:
            if view.files_ok:  # a later batch was refused (no room left): say what arrived
                console.print(escape(view.summary()), soft_wrap=True)
                return fail(
                    f"the receiver verified {plural(view.files_ok, 'file')}, then refused "
                    f"{len(exc.failures)} ({exc.failures[0][1]})"
                )
            return fail(join_reason("the receiver declined", exc.failures[0][1]))
        except TransferFailed as exc:
            console.print(escape(view.summary()), soft_wrap=True)
            # Files the receiver cancelled (docs/PROTOCOL.md 12.14) are not failures.
            stopped = [n for n, why in exc.failures if why == CANCELLED_BY_PEER]
            failures = [(n, why) for n, why in exc.failures if why != CANCELLED_BY_PEER]
            if not failures:
                names = ", ".join(stopped[:3]) + (" ..." if len(stopped) > 3 else "")
                return fail(f"the receiver cancelled {plural(len(stopped), 'file')} ({names})")
            name, why = failures[0]
            # The receiver went away (Ctrl-C there): the files failed, and what it holds
            # resumes; "1 file(s) failed" alone read as a loss to start over from.
            again = f"; {AGAIN}" if session.closed else ""
            failed = plural(len(failures), "file")
            return fail(f"{failed} failed; the first: {name} ({why}){again}")
        except SessionError as exc:
            console.print(
                escape(view.summary()), soft_wrap=True
            )  # what was verified before it ended
            # Not "session ended: session ended (the peer was interrupted (Ctrl-C))".
            ended = str(exc) if str(exc).startswith(SESSION_ENDED) else f"session ended: {exc}"
            return fail(f"{ended}; {AGAIN}")
        except asyncio.CancelledError:  # Ctrl-C, SIGTERM: the receiver is told why, not "closed"
            sink.ended = True
            await session.close(stop.reason, ours=stop.word)
            console.print(escape(view.summary()), soft_wrap=True)
            fail(f"{stop.word}; {AGAIN}")  # the exit code stays 130 (143)
            raise
        finally:
            sink.ended = True
            await session.close()
            if session.conn is not None:
                await session.conn.close()
        resumed = sum(r.resumed_from for r in results)
        note = f" ({human_bytes(resumed, largest_unit='TiB')} resumed)" if resumed else ""
        if refused:  # partial: a script's "rdv send dir && rm -rf dir" must not go on
            console.print(escape(view.summary()), soft_wrap=True)
            return fail(
                f"partial: the receiver verified {_all_files(len(results))} sent{note}; "
                f"{_refused_text(refused)}"
            )
        console.print(
            f"[green]done:[/] the receiver verified {_all_files(len(results))}{escape(note)}"
        )
        console.print(escape(view.summary()), soft_wrap=True)
        return ui.EXIT_OK
    finally:
        if stream is not None:
            with contextlib.suppress(OSError):  # its last flush fails as its writes did
                stream.close()
