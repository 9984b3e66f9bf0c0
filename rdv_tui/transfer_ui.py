"""What ``rdv send`` and ``rdv receive`` share: event sinks, progress bars, messages.

Imported only inside those commands' ``run()``. It imports rich, so it lives beside
the app and not in :mod:`rdv_tui.cli`, whose modules import only the standard library.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import PurePath
from typing import IO, Literal

from rich.console import Console
from rich.markup import escape as markup_escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from rdv_core.events import (
    ChatReceived,
    Event,
    EventRecorder,
    FileAccepted,
    FileCompleted,
    FileFailed,
    FileOffered,
    FileProgress,
    FileRejected,
    ObservedAddrWarning,
    TransferResumed,
    Upgraded,
)
from rdv_core.session import DIGEST
from rdv_tui.cli.formatting import PrintableFormatter, format_event, human_bytes, shown
from rdv_tui.progress_columns import RateColumn, SizeDoneColumn

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3


class TransferView:
    """Progress bars (rate, ETA) and one-line notices, driven by session events.

    Args:
        console: Where everything is drawn (stderr).
        direction: ``out`` for the sender, ``in`` for the receiver.
    """

    def __init__(self, console: Console, direction: Literal["in", "out"]) -> None:
        self.console = console
        self.direction = direction
        self.progress = Progress(
            TextColumn("{task.description}", markup=True),
            BarColumn(),
            SizeDoneColumn(),
            RateColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self._tasks: dict[int, TaskID] = {}
        self._names: dict[int, str] = {}
        self._sizes: dict[int, int] = {}
        self._chat_noted = False

    @contextlib.contextmanager
    def shown(self) -> Iterator[None]:
        """Show live bars while the transfer runs."""
        with self.progress:
            yield

    @contextlib.contextmanager
    def progress_paused(self) -> Iterator[None]:
        """Stop redrawing the bars while the user answers a question."""
        live = self.progress.live
        if not live.is_started:
            yield
            return
        live.stop()
        try:
            yield
        finally:
            live.start()

    def __call__(self, event: Event) -> None:
        """Take one event (call for every event; others are ignored)."""
        if isinstance(event, ChatReceived):
            self.console.print(f"[bold]peer:[/] {escape(event.text)}")
            if not self._chat_noted:
                self._chat_noted = True
                self.console.print(
                    "[dim](this command shows the peer's chat but cannot send any: "
                    "to reply, use the app, rdv tui)[/]"
                )
            return
        if getattr(event, "direction", None) != self.direction:
            return
        match event:
            case FileOffered(transfer_id=tid, name=name, size=size):
                self._names[tid] = name
                self._sizes[tid] = size
                self._tasks[tid] = self.progress.add_task(escape(name), total=size or 1)
            case FileAccepted(transfer_id=tid, offset=offset):
                self._update(tid, completed=offset)
            case TransferResumed(transfer_id=tid, name=name, offset=offset):
                if offset == self._sizes.get(tid):
                    self.console.print(f"already there: {escape(name)} (checking its digest)")
                else:
                    resumed_at = human_bytes(offset, largest_unit="TiB")
                    self.console.print(f"resuming {escape(name)} after {resumed_at}")
            case FileProgress(transfer_id=tid, done=done):
                self._update(tid, completed=done)
            case FileCompleted(transfer_id=tid, name=name, size=size, digest=digest):
                self._update(tid, completed=size or 1, description=f"[green]✓[/] {escape(name)}")
                self.console.print(
                    f"[green]verified[/] {escape(saved_name(name, event.path))} "
                    f"({human_bytes(size, largest_unit='TiB')}, {DIGEST} {digest[:16]}…)",
                    highlight=False,
                )
            case FileFailed(transfer_id=tid, name=name, reason=reason):
                self._update(tid, description=f"[red]✗[/] {escape(name)}")
                self.console.print(f"[red]failed[/] {escape(name)}: {escape(reason)}")
            case FileRejected(transfer_id=tid, reason=reason):
                self._update(tid, description=f"[red]✗[/] {escape(self._names.get(tid, ''))}")

    def _update(self, tid: int, **fields: object) -> None:
        task = self._tasks.get(tid)
        if task is not None:
            self.progress.update(task, **fields)  # type: ignore[arg-type]


def saved_name(offered: str, path: str) -> str:
    """The name a received file was saved under: after a collision ``f1.dat`` arrives
    as ``f1 (1).dat``, and saying "verified f1.dat" would name the other file."""
    if not path:
        return offered
    saved = PurePath(path).name
    head, _, tail = offered.rpartition("/")
    if tail == saved:
        return offered
    return f"{head}/{saved}" if head else saved


async def ask(console: Console, prompt: str) -> str:
    """Read one answer from the terminal without blocking the event loop.

    A daemon thread, not the loop's executor: on Ctrl-C the process must not wait
    at exit for a thread stuck in ``input()``.

    Raises:
        EOFError: stdin closed.
    """
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()

    def deliver(result: str | None, error: BaseException | None) -> None:
        if answer.done():
            return
        if error is not None:
            answer.set_exception(error)
        else:
            answer.set_result(result or "")

    def read() -> None:
        result: str | None = None
        error: BaseException | None = None
        try:
            flush_typed_ahead()
            text = console.input(prompt)
        except (EOFError, KeyboardInterrupt, OSError) as exc:
            error = EOFError(str(exc))
        else:
            result = text
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(deliver, result, error)

    threading.Thread(target=read, name="rdv-ask", daemon=True).start()
    return await answer


def flush_typed_ahead() -> None:
    """Drop what was typed before the question was shown.

    Only an answer typed after the prompt may answer it: a line typed earlier (a chat
    reply, say, which this command cannot send) declined a 50 MB offer unseen (issue 16).
    """
    if not sys.stdin.isatty():
        return
    try:
        import termios

        termios.tcflush(sys.stdin.fileno(), termios.TCIFLUSH)
    except (ImportError, OSError, ValueError):  # not a POSIX terminal: nothing to drop
        pass


def open_events(path: str | None) -> IO[str] | None:
    """The ``--events`` file, or None.

    Raises:
        OSError: the file cannot be created.
    """
    return open(path, "w", encoding="utf-8") if path else None


class EventSink:
    """Fans events out: the --events recorder, -v race lines, the view."""

    def __init__(
        self, args: argparse.Namespace, console: Console, view: TransferView, stream: IO[str] | None
    ) -> None:
        self.recorder = EventRecorder(stream=stream)
        self.verbose = bool(args.verbose)
        self.console = console
        self.view = view

    def __call__(self, event: Event) -> None:
        """Take one event."""
        self.recorder(event)
        if isinstance(event, ObservedAddrWarning):
            self.console.print(f"[yellow]warning:[/] {escape(event.message)}", soft_wrap=True)
        elif isinstance(event, Upgraded):  # fast start: RELAY -> P2P
            self.console.print(f"switched to p2p: {event.addr} after {event.after_s * 1000:.0f} ms")
        if self.verbose and not isinstance(event, FileProgress):
            line = format_event(event, readable=False)
            self.console.print(f"[dim]{escape(line)}[/]", highlight=False)
        self.view(event)


def escape(text: str) -> str:
    """Text for rich markup: neutralised (:func:`shown`: it may come from the network),
    then markup-escaped. Every dynamic string this module prints goes through it."""
    return markup_escape(shown(text))


def setup_logging(verbose: bool) -> None:
    """Log rdv's own warnings (and debug lines with -v) on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(PrintableFormatter("rdv: %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, handlers=[handler])
    if not verbose:
        # The CLI reports session failures itself, in words; avoid saying it twice.
        logging.getLogger("rdv.session").setLevel(logging.ERROR)
