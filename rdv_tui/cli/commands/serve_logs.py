"""``rdv serve``'s logging: the readable or JSON log lines and the ``--events`` file.

One log line per pair (matched, p2p or relayed, bytes each way, duration); with ``-v``
one per event. Text logs escape what clients control: tokens as in their URL (``%0A``),
every other unprintable character as ``\\xNN`` (no forged lines, no terminal escape
sequences). Standard library only at module level, like every command module.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import sys
import threading
from collections import deque
from typing import IO, Any, Final

from rdv_tui.cli.formatting import event_fields, human_bytes

log = logging.getLogger("rdv.server")


def _token(token: str) -> str:
    from rdv_core.wire import escape_token

    return escape_token(token)


class _TextFormatter(logging.Formatter):
    """The readable log line; the message escaped (its traceback, ours, is not)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        from rdv_core.wire import printable

        record.message = printable(record.message)
        return super().formatMessage(record)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:  # formatted on the loop's thread (_Queued)
            out["exc"] = record.exc_text
        return json.dumps(out, separators=(",", ":"))


#: Log records waiting for stderr; past that the oldest are dropped (and counted).
QUEUE_RECORDS: Final = 4096


class _Fd2:
    """stderr as a descriptor: the writer thread never takes ``sys.stderr``'s lock, which a
    blocked write would hold when the interpreter exits (a fatal error)."""

    def write(self, text: str) -> None:
        data = text.encode("utf-8", "backslashreplace")
        try:
            while data:
                data = data[os.write(2, data) :]
        except OSError:
            pass  # stderr is gone: there is nobody to tell


class _Queued(logging.Handler):
    """Hands records to a writer thread through a bounded queue, never waiting.

    Writing stderr on the loop's thread stopped the server whenever stderr stopped taking
    lines (a terminal paused with Ctrl-S, ``| less`` left unscrolled, a stalled log
    shipper): after 64 KiB of log (463 rejected requests at ``-v``) no conn was served,
    not even ``/healthz``. Now a full queue drops its *oldest* records, and the writer
    says how many: the newest lines, the end of the story (``SIGTERM: shutting down``, an
    error), still come out once stderr takes lines again (dropping the newest lost them).
    """

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__()
        # Not a second Handler: logging.shutdown() at exit would wait for its lock, held
        # by the writer thread for as long as stderr is stuck.
        self._formatter = formatter
        self._stderr = _Fd2()
        self._records: deque[logging.LogRecord] = deque()
        self._dropped = 0
        self._closing = False
        # Held only to hand records over, never while writing (stderr may be stuck).
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._write, name="rdv-log", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        # Formatted here, as the caller's values are now; tracebacks too (exc_text).
        record.msg, record.args = record.getMessage(), None
        if record.exc_info:
            record.exc_text = self._formatter.formatException(record.exc_info)
            record.exc_info = None
        with self._ready:
            if len(self._records) >= QUEUE_RECORDS:
                self._records.popleft()
                self._dropped += 1
            self._records.append(record)
            self._ready.notify()

    def _take(self) -> tuple[logging.LogRecord, int] | None:
        """The next record and how many were dropped before it; None once closed and empty."""
        with self._ready:
            while not self._records and not self._closing:
                self._ready.wait()
            if not self._records:
                return None
            dropped, self._dropped = self._dropped, 0
            return self._records.popleft(), dropped

    def _write(self) -> None:
        while (taken := self._take()) is not None:
            record, dropped = taken
            if dropped:
                note = {
                    "name": "rdv.server",
                    "levelno": logging.WARNING,
                    "levelname": "WARNING",
                    "msg": f"{dropped} log lines dropped: stderr did not keep up",
                }
                self._stderr.write(self._formatter.format(logging.makeLogRecord(note)) + "\n")
            self._stderr.write(self._formatter.format(record) + "\n")

    def close(self, within: float = 2.0) -> None:
        """Write what is queued (for at most ``within`` s: stderr may be stuck), then stop."""
        with self._ready:
            self._closing = True
            self._ready.notify()
        self._thread.join(within)
        super().close()


def configure_logging(verbose: int, json_logs: bool) -> logging.Handler:
    """Log ``rdv.*`` to stderr from a writer thread; close the handler returned at exit."""
    formatter = (
        _JsonFormatter()
        if json_logs
        else _TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    )
    queued = _Queued(formatter)
    root = logging.getLogger("rdv")
    root.handlers[:] = [queued]
    root.setLevel(logging.DEBUG if verbose >= 2 else logging.INFO)
    root.propagate = False
    return queued


class EventLog:
    """Turns server events into log lines (one per pair) and the optional JSONL file."""

    def __init__(self, verbose: int, stream: IO[str] | None, name: str = "") -> None:
        self._verbose = verbose
        self._stream = None if stream is None else _Lines(stream, name)
        self._pairs: dict[int, dict[str, Any]] = {}

    def __call__(self, event: Any) -> None:
        from rdv_core import events as ev

        if self._stream is not None:
            self._stream.put(ev.dumps(event) + "\n")
        data = event.to_json()
        if isinstance(event, ev.PairMatched):
            self._pairs[event.pair_id] = {
                "token": event.token,
                "dialer": event.dialer,
                "accepter": event.accepter,
                "lobby_s": event.lobby_s,
                "p2p_addr": None,
            }
            if self._verbose:
                log.info(
                    "pair %d matched token=%s dialer=%s accepter=%s (lobby %.3fs)",
                    event.pair_id,
                    _token(event.token),
                    event.dialer,
                    event.accepter,
                    event.lobby_s,
                    extra={"fields": data},
                )
        elif isinstance(event, ev.P2PReported):
            pair = self._pairs.get(event.pair_id)
            if pair is not None:
                pair["p2p_addr"] = event.addr
        elif isinstance(event, ev.RelayEnded):
            self._pair_line(event)
        elif isinstance(event, ev.ServerClosed):
            log.info(
                "shut down with %d in the lobby and %d open pairs",
                event.lobby,
                event.pairs,
                extra={"fields": data},
            )
        elif self._verbose:
            token = getattr(event, "token", None)
            words = event_fields(event, exclude=() if token is None else ("token",))
            # A Rejected before the request named a token carries "": no empty token= word.
            text = " ".join([f"token={_token(token)}", *words] if token else words)
            log.info("%s %s", event.type, text, extra={"fields": data})

    def close(self) -> None:
        """Write what is queued for ``--events`` (a few seconds at most), close the file."""
        if self._stream is not None:
            self._stream.close()
        self._stream = None

    def _pair_line(self, event: Any) -> None:
        pair = self._pairs.pop(event.pair_id, {})
        if event.relayed:
            outcome = "relayed"
        elif pair.get("p2p_addr"):
            outcome = f"p2p via {pair['p2p_addr']}"
        else:
            outcome = "closed before relaying"
        fields = {
            **event.to_json(),
            "token": pair.get("token"),
            "dialer": pair.get("dialer"),
            "accepter": pair.get("accepter"),
            "outcome": "relayed" if event.relayed else ("p2p" if pair.get("p2p_addr") else "none"),
            "p2p_addr": pair.get("p2p_addr"),
        }
        log.info(
            "pair %d token=%s %s -> %s: %s, D->A %s, A->D %s, %.3fs (%s)",
            event.pair_id,
            _token(pair["token"]) if "token" in pair else "?",
            pair.get("dialer", "?"),
            pair.get("accepter", "?"),
            outcome,
            human_bytes(event.dialer_to_accepter),
            human_bytes(event.accepter_to_dialer),
            event.duration_s,
            event.reason,
            extra={"fields": fields},
        )


class _Lines:
    """``--events`` lines, written by a thread from a bounded queue, never waited for.

    Written on the loop's thread, a reader of ``--events -`` (or of a FIFO) that stopped
    reading froze the whole server once the pipe was full. Lines past the queue are
    dropped and counted. A write that fails (a disk that filled up, a reader gone) is
    said once and ends that file, not the log lines: a failed write may have left half a
    line behind. Writes go to the descriptor: a thread stuck in a write then holds no
    lock of ``sys.stdout`` (the interpreter's exit would wait for it, or abort).
    """

    def __init__(self, stream: IO[str], name: str) -> None:
        stream.flush()  # nothing buffered may come after our writes
        self._stream = stream
        self._fd = stream.fileno()
        self._name = name
        self._queue: queue.Queue[str | None] = queue.Queue(QUEUE_RECORDS)
        self._dropped = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._write, name="rdv-events", daemon=True)
        self._thread.start()

    def put(self, line: str) -> None:
        try:
            self._queue.put_nowait(line)
        except queue.Full:
            with self._lock:
                self._dropped += 1

    def _write(self) -> None:
        failed = False
        while (line := self._queue.get()) is not None:
            with self._lock:
                dropped, self._dropped = self._dropped, 0
            if failed:
                continue
            if dropped:
                log.warning("%d events dropped: --events %s did not keep up", dropped, self._name)
            data = line.encode("utf-8")
            try:
                while data:
                    data = data[os.write(self._fd, data) :]
            except OSError as exc:
                failed = True
                log.error(
                    "cannot write --events %s: %s; no more events are written there",
                    self._name,
                    exc.strerror or exc,
                )

    def close(self, within: float = 2.0) -> None:
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=within)
        self._thread.join(within)
        if not self._thread.is_alive() and self._stream is not sys.stdout:
            _close_quietly(self._stream)


def _close_quietly(stream: IO[str]) -> None:
    """Close ``stream``, dropping what it could not write (that was already reported).

    A close whose last flush fails still closes (and raises); for stdout it leaves the
    descriptor open, and the interpreter's exit then has nothing left to flush.
    """
    with contextlib.suppress(OSError, ValueError):
        stream.close()
