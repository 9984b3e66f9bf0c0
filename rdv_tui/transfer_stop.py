"""SIGTERM for ``rdv send`` / ``rdv receive``: the end Ctrl-C gets, and its own words.

Left to its default, SIGTERM (``kill``, ``timeout 600 rdv send``, a service manager, a
closed container) ended the process at once: the peer read "the peer hung up" (or, on
a relay, whatever the server made of the FIN) and nobody was told that running both
again resumes. Here it cancels the command as Ctrl-C does, so the peer is told why
(the session's ``close`` frame, docs/PROTOCOL.md section 12), and the exit code is
143 (128 + SIGTERM) as for ``rdv dial``. SIGHUP (the terminal closed, an ssh link
dropped) likewise, exit 129: the peer read "connection lost" of a sender still there
for all it knew. Under ``nohup`` (SIGHUP ignored from the start) it stays ignored.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine
from typing import Any, Final

from rdv_tui.cli.stop_signals import last_exit, note_late, on_stop, take

#: Why a session ends on Ctrl-C (SIGINT), for the peer: "closed by peer" did not say.
INTERRUPTED: Final = "the peer was interrupted (Ctrl-C)"
#: Why a session ends on SIGTERM, for the peer.
TERMINATED: Final = "the peer was stopped (SIGTERM)"
#: Why a session ends on SIGHUP, for the peer.
HUNG_UP: Final = "the peer's terminal was closed (SIGHUP)"
EXIT_TERMINATED: Final = 128 + signal.SIGTERM
#: The signals that end the command as Ctrl-C does: (what the peer reads, our word).
STOPPING: Final = {
    signal.SIGTERM: (TERMINATED, "stopped (SIGTERM)"),
    signal.SIGHUP: (HUNG_UP, "stopped (SIGHUP: the terminal was closed)"),
}


class Stop:
    """What ended the command, once it was cancelled: Ctrl-C unless a signal came."""

    def __init__(self) -> None:
        self.signal: signal.Signals | None = None

    @property
    def terminated(self) -> bool:
        """Whether a signal (not Ctrl-C) stopped the command."""
        return self.signal is not None

    @property
    def reason(self) -> str:
        """For the peer (the session's close reason)."""
        return INTERRUPTED if self.signal is None else STOPPING[self.signal][0]

    @property
    def word(self) -> str:
        """For our own last line: ``rdv send: interrupted; ...``."""
        return "interrupted" if self.signal is None else STOPPING[self.signal][1]


def run_terminable(main: Callable[[Stop], Coroutine[Any, Any, int]]) -> int:
    """Run ``main(stop)`` in a new event loop; SIGTERM or SIGHUP cancels it (as Ctrl-C
    does) and the command exits 128 + the signal's number.

    The signals are taken once, before the loop exists, with the Python-level handler
    of :mod:`rdv_tui.cli.stop_signals` that is never reset: asyncio's
    ``loop.add_signal_handler`` served here before, and its ``remove_signal_handler``
    put SIGTERM back to the default action while the command ended, so the second
    SIGTERM of a burst (a supervisor repeating itself, ``kill`` in a loop) killed it
    with exit -15 and no last line (17 runs in 20 of a burst against a waiting
    ``rdv receive``); a fast burst also filled asyncio's wakeup pipe (``Exception
    ignored when trying to write to the signal wakeup fd`` tracebacks).
    """
    taken = take(STOPPING)  # but the ones inherited as ignored: nohup keeps SIGHUP away
    try:
        code = asyncio.run(_terminable(main, taken))
    except BaseException:
        last_exit(0)  # Ctrl-C's KeyboardInterrupt and the like: the caller's exit
        raise
    return last_exit(code)


async def _terminable(
    main: Callable[[Stop], Coroutine[Any, Any, int]], taken: tuple[signal.Signals, ...]
) -> int:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    stop = Stop()

    def on_signal(signum: signal.Signals) -> None:
        if stop.signal is None:
            stop.signal = signum
        if task is not None:
            task.cancel()

    # The handler runs between two bytecodes of this thread: it only schedules. Told
    # once; later ones of a burst are only noted (the exit code is fixed by the first).
    def told(signum: signal.Signals) -> None:
        loop.call_soon_threadsafe(on_signal, signum)

    early = on_stop(told)
    try:
        if early is not None:  # came while the loop started: nothing began, nothing to say
            return 128 + early
        return await main(stop)
    except asyncio.CancelledError:
        if stop.signal is not None:
            return 128 + stop.signal
        raise
    finally:
        # Before the loop closes: a signal from now on is only noted, never scheduled
        # on a closed loop; last_exit then ignores them through the interpreter's end.
        note_late(taken)
