"""The logs of ``rdv serve`` (:mod:`rdv_tui.cli.commands.serve`): one line per pair, readable
or JSON, and the ``--events`` JSONL file.

Text logs escape what clients control: tokens as in their URL (``%0A``), every other
unprintable character as ``\\xNN`` (no forged lines, no terminal escape sequences).
Standard library only at module level; never textual or rich.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import IO, Any

from rdv_tui.cli.formatting import event_fields, human_bytes

log = logging.getLogger("rdv.server")


def escaped_token(token: str) -> str:
    """A token as in its URL (percent-encoded), for a log line."""
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
        return json.dumps(out, separators=(",", ":"))


def configure_logging(verbose: int, json_logs: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_logs:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(
            _TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger("rdv")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose >= 2 else logging.INFO)
    root.propagate = False


class EventLog:
    """Turns server events into log lines (one per pair) and the optional JSONL file."""

    def __init__(self, verbose: int, stream: IO[str] | None) -> None:
        self._verbose = verbose
        self._stream = stream
        self._pairs: dict[int, dict[str, Any]] = {}

    def __call__(self, event: Any) -> None:
        from rdv_core import events as ev

        if self._stream is not None:
            try:
                self._stream.write(ev.dumps(event) + "\n")
                self._stream.flush()
            except OSError as exc:  # a full disk, `--events - | head` gone: say it once
                self._stream = None  # and keep logging pairs: they matter more
                log.warning("events are no longer written: %s", exc.strerror or exc)
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
                    escaped_token(event.token),
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
            text = " ".join(words if token is None else [f"token={escaped_token(token)}", *words])
            log.info("%s %s", event.type, text, extra={"fields": data})

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
            escaped_token(pair["token"]) if "token" in pair else "?",
            pair.get("dialer", "?"),
            pair.get("accepter", "?"),
            outcome,
            human_bytes(event.dialer_to_accepter),
            human_bytes(event.accepter_to_dialer),
            event.duration_s,
            event.reason,
            extra={"fields": fields},
        )
