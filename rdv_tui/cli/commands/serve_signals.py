"""``rdv serve``'s signals: SIGTERM, SIGINT and SIGHUP shut it down gracefully (a second
one cuts a ``--drain`` short), SIGUSR1 reloads a renewed TLS certificate.

Taken with Python-level handlers that are never reset (rdv_tui/cli/stop_signals.py).
asyncio's ``loop.add_signal_handler`` served here before, and ``remove_signal_handler``
put each signal back to its default action once the server had stopped: the next
SIGTERM of a burst (a supervisor repeating itself while the server ended) killed it,
exit -15 after "stopped in 0.00s" instead of the documented 0 (23 runs in 25 of a
burst), and a SIGUSR1 then killed it -10.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager

from rdv_tui.cli.commands.serve_reload import CertWatch
from rdv_tui.cli.stop_signals import ignore_held, not_ignored, note_late, on_stop, take

log = logging.getLogger("rdv.server")

__all__ = ["Stop", "ignore_held", "taken"]


class Stop:
    """The first stop signal's name; a later one cuts a ``--drain`` short."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.first: asyncio.Future[str] = loop.create_future()
        self.again = asyncio.Event()

    def __call__(self, sig: signal.Signals) -> None:
        if not self.first.done():
            self.first.set_result(sig.name)
        else:
            self.again.set()


def stop_signals() -> tuple[signal.Signals, ...]:
    """The signals that shut ``rdv serve`` down gracefully.

    SIGHUP too: a closed terminal (or an ssh session that drops) sends it, and its default
    action killed the server with no log line, lobby clients reset instead of told ``503``.
    There is nothing to reload (no configuration file; deploy/rdv@.service has no
    ExecReload), so a hangup ends the server as SIGTERM does. Unless it is ignored
    already: ``nohup rdv serve`` (or ``trap '' HUP``) asked to outlive the terminal.
    SIGINT likewise: a program started with it ignored keeps ignoring it (POSIX; a
    shell starts background jobs of a script so, ``rdv serve &``, and Ctrl-C meant for
    the foreground job stopped the server too).
    """
    return (signal.SIGTERM, *not_ignored(signal.SIGINT, signal.SIGHUP))


def _reload(watch: CertWatch | None) -> None:
    if watch is None:
        log.info("SIGUSR1: nothing to reload (no --tls-cert)")
    else:
        watch.check("SIGUSR1")


@contextmanager
def taken(loop: asyncio.AbstractEventLoop, watch: CertWatch | None) -> Iterator[Stop]:
    """The stop signals and SIGUSR1 told to ``loop`` while the block runs; after it, the
    stop signals only noted (and ignored once :func:`ignore_held` is called, the last
    thing ``rdv serve`` does), SIGUSR1 ignored: nothing is left to reload."""
    stop = Stop(loop)
    # SIGTERM even when inherited as ignored: a supervisor's stop must work.
    signals = take(stop_signals(), even_ignored=(signal.SIGTERM,))

    def told(sig: signal.Signals) -> None:  # in the main thread between two bytecodes
        loop.call_soon_threadsafe(stop, sig)

    on_stop(told, every=True)
    # SIGUSR1 reloads a renewed certificate (serve_reload); its default action killed us.
    signal.signal(signal.SIGUSR1, lambda _n, _f: loop.call_soon_threadsafe(_reload, watch))
    try:
        yield stop
    finally:
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        note_late(signals)
