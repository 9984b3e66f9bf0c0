"""What ``rdv send`` and ``rdv receive`` share: event sinks, progress bars, messages.

Imported only inside those commands' ``run()``. It imports rich, so it lives beside
the app and not in :mod:`rdv_tui.cli`, whose modules import only the standard library.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import PurePath
from typing import IO, Any, Literal

from rich.console import Console
from rich.markup import escape as markup_escape
from rich.progress import TaskID

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
    FilesAccepted,
    FilesCompleted,
    FilesOffered,
    ObservedAddrWarning,
    TransferResumed,
    Upgraded,
    UpgradeFailed,
)
from rdv_core.session import DECLINED, DIGEST
from rdv_tui.cli.checks import warns_of_observed
from rdv_tui.cli.formatting import (
    PrintableFormatter,
    format_duration,
    format_event,
    human_bytes,
    plural,
    rejoin_line,
    shown,
)
from rdv_tui.transfer_bar import FittedProgress

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3


#: Sends of at most this many files print one line per verified file; bigger ones print
#: only the aggregate bar, the failures and the summary.
FILE_LINES = 20
#: Failures printed as they happen; the rest are counted in the summary.
FAILURE_LINES = 20
#: Seconds between two redraws of the aggregate bar's fields (events can come by the
#: hundred thousand: a per-event update would cost more than the transfer).
REFRESH_S = 0.1


class TransferView:
    """One aggregate progress bar (files, bytes, rate, ETA, current file) and notices.

    Driven by session events; costs a few dict operations per event, so 100,000 small
    files do not slow the transfer (the bar itself is redrawn by rich 10 times a second).

    Args:
        console: Where everything is drawn (stderr).
        direction: ``out`` for the sender, ``in`` for the receiver.
    """

    def __init__(self, console: Console, direction: Literal["in", "out"]) -> None:
        self.console = console
        self.direction = direction
        self.progress = FittedProgress(console)  # one line at any width, 40 columns too
        self._task: TaskID | None = None
        self._names: dict[int, str] = {}
        self._sizes: dict[int, int] = {}
        self._chat_noted = False
        #: Lines held while a question is open (None: none is).
        self._held: list[tuple[str, dict[str, Any]]] | None = None
        #: Bytes of each file still moving (done ones are in ``_bytes_done``).
        self._moving: dict[int, int] = {}
        self.files_total = 0
        self.bytes_total = 0
        self.files_ok = 0
        self.failures: list[tuple[str, str]] = []
        #: Files refused before they moved, with the reason (also in ``failures``).
        self.refused: list[tuple[str, str]] = []
        #: Files a user stopped, either side (also in ``failures``): docs/PROTOCOL.md 12.14.
        self.cancelled = 0
        self._failures_shown = 0
        self._bytes_done = 0
        #: Bytes held by files that failed (their offsets included, like ``_resumed``).
        self._failed_held = 0
        self._resumed = 0
        self._current = ""
        #: When the first file was accepted: the summary's time and mean rate are the
        #: transfer's, not the lobby wait's, the doctor's or the receiver's think time.
        self._started: float | None = None
        self._redrawn = 0.0
        self._handlers: dict[type[Event], Callable[[Any], None]] = {
            FileOffered: self._on_offered,
            FileAccepted: self._on_accepted,
            TransferResumed: self._on_resumed,
            FileProgress: self._on_progress,
            FileCompleted: self._on_completed,
            FileFailed: self._on_failed,
            FileRejected: self._on_rejected,
            FilesOffered: self._on_files_offered,
            FilesAccepted: self._on_files_accepted,
            FilesCompleted: self._on_files_completed,
        }

    def expect(self, files: int, size: int) -> None:
        """Totals known before the offers arrive (the whole send), for the bar and ETA."""
        self.files_total = max(self.files_total, files)
        self.bytes_total = max(self.bytes_total, size)
        self._redraw(force=True)

    @property
    def files_done(self) -> int:
        """Files settled so far (verified or failed)."""
        return self.files_ok + len(self.failures)

    @property
    def bytes_done(self) -> int:
        """Bytes of settled files plus those of files still moving."""
        return self._bytes_done + sum(self._moving.values())

    @contextlib.contextmanager
    def shown(self) -> Iterator[None]:
        """Show the live bar while the transfer runs."""
        self._task = self.progress.add_task(
            "", total=self.bytes_total or None, files="", many=False
        )
        self._redraw(force=True)
        with self.progress:
            try:
                yield
            finally:
                # Also when the transfer failed: the bar left on screen is the last one
                # drawn, and a send that raised TransferFailed showed "0/4 files" above
                # the summary's "2 of 4 file(s) verified".
                self._redraw(force=True)
                if not self.files_total:
                    # Nothing was offered (the peer ended first): a bar left reading
                    # "0/0 files 0/0 B" told the receiver nothing.
                    self.progress.live.transient = True

    def say(self, text: str, **options: Any) -> None:
        """Print one line (``console.print`` options), or hold it while a question is
        open: printed then, it landed after the prompt, where the answer is typed
        ("Accept 5 file(s) ...? [y/N] switched to p2p: ..." with fast start on)."""
        if self._held is not None:
            self._held.append((text, options))
        else:
            self.console.print(text, **options)

    @contextlib.contextmanager
    def progress_paused(self) -> Iterator[None]:
        """Stop redrawing the bar and hold other lines while the user answers a question."""
        live = self.progress.live
        started = live.is_started
        if started:
            live.stop()
        self._held = []
        try:
            yield
        finally:
            held, self._held = self._held, None
            for text, options in held:
                self.console.print(text, **options)
            if started:
                live.start()

    def __call__(self, event: Event) -> None:
        """Take one event (call for every event; others are ignored).

        Dispatched on the event's type through a dict: a send of 100,000 files brings
        300,000 events, and a chain of ``match`` cases cost more than the transfer's
        own work per file.
        """
        handler = self._handlers.get(type(event))
        if handler is None:
            if isinstance(event, ChatReceived):
                self._on_chat(event)
            return
        if getattr(event, "direction", None) != self.direction:
            return
        handler(event)
        if time.monotonic() - self._redrawn >= REFRESH_S:
            self._redraw()

    def _on_chat(self, event: ChatReceived) -> None:
        self.say(f"[bold]peer:[/] {escape(event.text)}")
        if not self._chat_noted:
            self._chat_noted = True
            self.say(
                "[dim](this command shows the peer's chat but cannot send any: "
                "to reply, use the app, rdv tui)[/]"
            )

    def _on_offered(self, event: FileOffered) -> None:
        tid = event.transfer_id
        self._names[tid] = event.name
        self._sizes[tid] = event.size
        offered = len(self._names)
        if offered > self.files_total:
            self.files_total = offered
            self.bytes_total += event.size

    def _start_clock(self) -> None:
        if self._started is None:
            self._started = time.monotonic()

    def _on_accepted(self, event: FileAccepted) -> None:
        self._start_clock()
        self._moving[event.transfer_id] = event.offset
        self._resumed += event.offset
        self._current = self._names.get(event.transfer_id, "")

    # The session reports many files per event (connect_session(batched_events=True)):
    # an offer's files, a bundle's verified files (docs/ARCHITECTURE.md section 2).

    def _on_files_offered(self, event: FilesOffered) -> None:
        names, sizes = self._names, self._sizes
        for tid, name, size in zip(event.ids, event.names, event.sizes, strict=True):
            names[tid] = name
            sizes[tid] = size
        offered = len(names)
        if offered > self.files_total:  # past the announced totals: count the newcomers
            self.bytes_total += sum(event.sizes[len(event.sizes) - (offered - self.files_total) :])
            self.files_total = offered

    def _on_files_accepted(self, event: FilesAccepted) -> None:
        self._start_clock()
        self._moving.update(zip(event.ids, event.offsets, strict=True))
        self._resumed += sum(event.offsets)
        if event.ids:
            self._current = self._names.get(event.ids[0], "")

    def _on_files_completed(self, event: FilesCompleted) -> None:
        moving = self._moving
        for tid in event.ids:
            moving.pop(tid, None)
        self._bytes_done += sum(event.sizes)
        self.files_ok += len(event.ids)
        if event.names:
            self._current = event.names[-1]
        if self.files_total <= FILE_LINES:
            for name, size, digest, path in zip(
                event.names, event.sizes, event.digests, event.paths, strict=True
            ):
                self._verified(name, size, digest, path)

    def _on_resumed(self, event: TransferResumed) -> None:
        if self.files_total > FILE_LINES:
            return
        name, offset = escape(event.name), event.offset
        if offset == self._sizes.get(event.transfer_id):
            self.say(f"already there: {name} (checking its digest)", soft_wrap=True)
        else:
            resumed = human_bytes(offset, largest_unit="TiB")
            self.say(f"resuming {name} after {resumed}", soft_wrap=True)

    def _on_progress(self, event: FileProgress) -> None:
        tid = event.transfer_id
        if tid in self._moving:
            self._moving[tid] = event.done
            self._current = self._names.get(tid, "")

    def _on_completed(self, event: FileCompleted) -> None:
        self._settle(event.transfer_id, event.size)
        self.files_ok += 1
        if self.files_total <= FILE_LINES:
            self._verified(event.name, event.size, event.digest, event.path)

    def _verified(self, name: str, size: int, digest: str, path: str) -> None:
        self.say(
            f"[green]verified[/] {escape(saved_name(name, path))} "
            f"({human_bytes(size, largest_unit='TiB')}, "
            f"{DIGEST} {digest[:16]}…)",
            highlight=False,
            soft_wrap=True,
        )

    def _on_failed(self, event: FileFailed) -> None:
        # What it moved before it failed counts in the mean rate: a send cut short after
        # 700 MiB read "0 B in 2.1 s (0 B/s)".
        self._failed_held += self._moving.get(event.transfer_id, 0)
        self._settle(event.transfer_id, 0)
        if event.cancelled:  # not a failure: counted apart, said in its own words
            self.cancelled += 1
            self.failures.append((event.name, event.reason))
            self.say(f"[yellow]{escape(event.reason)}[/]: {escape(event.name)}", soft_wrap=True)
            return
        self._failed(event.name, event.reason)

    def _on_rejected(self, event: FileRejected) -> None:
        self._settle(event.transfer_id, 0)
        refused = (self._names.get(event.transfer_id, ""), event.reason)
        self.failures.append(refused)
        self.refused.append(refused)

    def _settle(self, tid: int, size: int) -> None:
        self._moving.pop(tid, None)
        self._bytes_done += size

    def _failed(self, name: str, reason: str) -> None:
        self.failures.append((name, reason))
        if self._failures_shown < FAILURE_LINES:
            self._failures_shown += 1
            # One line, also in a file or a pipe (the README's promise for errors):
            # rich wrapped it at 80 columns, "... partial file kept (...) to \nresume".
            self.say(f"[red]failed[/] {escape(name)}: {escape(reason)}", soft_wrap=True)

    def _redraw(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if self._task is None or (not force and now - self._redrawn < REFRESH_S):
            return
        self._redrawn = now
        current = self._current
        if len(current) > 40:
            current = "…" + current[-39:]
        self.progress.update(
            self._task,
            description=escape(current),
            completed=self.bytes_done,
            total=self.bytes_total or None,
            files=self._files_field(),
            many=self.files_total > 1,
        )

    def _files_field(self) -> str:
        """``3/10 files``: the verified ones, and the failed ones apart (``0/1 files, 1
        failed``). A failed file counted as done read ``1/1 files 0.0/3.0 GiB`` on a send
        that moved nothing: the count said finished, the bytes (verified only) did not."""
        return ", ".join([f"{self.files_ok}/{self.files_total} files", *self._unsettled()])

    def _unsettled(self) -> list[str]:
        """``1 failed``, ``2 declined``, ``3 refused``: files the receiver turned down are
        not failures (a declined offer read "0/2 files, 2 failed" on both sides)."""
        declined = sum(1 for _, why in self.refused if why == DECLINED)
        counts = (
            (len(self.failures) - len(self.refused) - self.cancelled, "failed"),
            (self.cancelled, "cancelled"),
            (declined, "declined"),
            (len(self.refused) - declined, "refused"),
        )
        return [f"{count} {word}" for count, word in counts if count]

    def summary(self) -> str:
        """One line for the end: files verified and failed, bytes, and the time and mean
        rate from the first accepted file on."""
        started = time.monotonic() if self._started is None else self._started
        elapsed = max(time.monotonic() - started, 1e-6)
        moved = max(self.bytes_done + self._failed_held - self._resumed, 0)
        rate = human_bytes(int(moved / elapsed), largest_unit="TiB")
        verified = human_bytes(self._bytes_done, largest_unit="TiB")
        if moved > self._bytes_done:
            # The rate is what moved; said beside the verified bytes, or a cut file read
            # "0 B in 0.4 s (151.0 MiB/s)".
            verified += f" ({human_bytes(moved, largest_unit='TiB')} moved)"
        text = f"{self.files_ok} of {plural(self.files_total, 'file')} verified"
        if self._started is not None:  # nothing accepted: no time or rate ("0 B in 0.0 ms")
            text += f", {verified} in {format_duration(elapsed)} ({rate}/s)"
        if self.failures:
            text += "; " + ", ".join(self._unsettled())
            # Refused files get no line of their own (the final line names them).
            hidden = len(self.failures) - len(self.refused) - self.cancelled - self._failures_shown
            if hidden > 0:
                text += f" ({hidden} not listed above; --events FILE records every one)"
        return text


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


class EventSink:
    """Fans events out: the --events recorder, -v race lines, the view.

    ``server`` is the session's server URL: one on this machine gets no observed-address
    warning (:func:`rdv_tui.cli.checks.warns_of_observed`).
    """

    def __init__(
        self,
        args: argparse.Namespace,
        console: Console,
        view: TransferView,
        stream: IO[str] | None,
        server: str,
    ) -> None:
        self.warn_observed = warns_of_observed(server)
        self.recorder = EventRecorder(stream=stream)
        self.events_path = str(getattr(args, "events", "") or "")
        self.verbose = bool(args.verbose)
        self.console = console
        self.view = view
        #: Set once the transfer is over: a path switch then is news to nobody.
        self.ended = False

    def __call__(self, event: Event) -> None:
        """Take one event."""
        if self.recorder.stream is not None:  # kept only to write them: memory stays flat
            try:
                self.recorder(event)
            except OSError as exc:
                # A full disk: say it once and go on with this event (before, each event
                # raised here: a traceback per event, and the view missed them all).
                self.recorder.stream = None
                why = escape(str(exc.strerror or exc))
                self.view.say(
                    f"[yellow]warning:[/] cannot write events to {escape(self.events_path)}: "
                    f"{why}; no more events are written",
                    soft_wrap=True,
                )
        if (line := rejoin_line(event, "code")) is not None:
            self.view.say(f"[yellow]{escape(line)}[/]", soft_wrap=True)
        elif isinstance(event, ObservedAddrWarning) and self.warn_observed:
            self.view.say(f"[yellow]warning:[/] {escape(event.message)}", soft_wrap=True)
        elif isinstance(event, Upgraded) and not self.ended:  # fast start: RELAY -> P2P
            # Not after the end: "switched to p2p" came after "rdv send: the receiver
            # declined ...", the last line, while the session was being closed.
            # Escaped: Rich reads [fd00::5] or [fe80::1%eth0] as a style tag and drops it.
            addr = escape(event.addr)
            self.view.say(f"switched to p2p: {addr} after {event.after_s * 1000:.0f} ms")
        elif isinstance(event, UpgradeFailed) and event.back_on_relay and not self.ended:
            # ... and back (a later attempt may switch again: docs/PROTOCOL.md 16.6).
            self.view.say(f"back on the relay: {escape(event.reason)}", soft_wrap=True)
        if self.verbose and not isinstance(event, FileProgress):
            line = format_event(event, readable=False)
            self.view.say(f"[dim]{escape(line)}[/]", highlight=False)
        self.view(event)


def escape(text: str) -> str:
    """Text for rich markup: neutralised (:func:`shown`: it may come from the network),
    then markup-escaped. Every dynamic string this module prints goes through it."""
    return markup_escape(shown(text))


def tune_gc() -> None:
    """Collect young objects every 50,000 allocations, not every 700.

    A send of 100,000 small files keeps a few objects per file alive until the end
    (names, results, events on their way); with the default thresholds the cyclic
    collector then ran some 1,000 times and took 1.6-1.7 s of each side's 9-13 CPU
    seconds (bench/transfer.py --files 100000). These short-lived commands make little
    cyclic garbage: collecting it less often costs a few MB at most.
    """
    gc.set_threshold(50_000, 100, 100)


def setup_logging(verbose: bool) -> None:
    """Log rdv's own warnings (and debug lines with -v) on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(PrintableFormatter("rdv: %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, handlers=[handler])
    if not verbose:
        # The CLI reports session failures itself, in words; avoid saying it twice.
        logging.getLogger("rdv.session").setLevel(logging.ERROR)
