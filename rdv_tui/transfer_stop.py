"""SIGTERM for ``rdv send`` / ``rdv receive``: the end Ctrl-C gets, and its own words.

Left to its default, SIGTERM (``kill``, ``timeout 600 rdv send``, a service manager, a
closed container) ended the process at once: the peer read "the peer hung up" (or, on
a relay, whatever the server made of the FIN) and nobody was told that running both
again resumes. Here it cancels the command as Ctrl-C does, so the peer is told why
(the session's ``close`` frame, docs/PROTOCOL.md section 12), and the exit code is
143 (128 + SIGTERM) as for ``rdv dial``.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine
from typing import Any, Final

#: Why a session ends on Ctrl-C (SIGINT), for the peer: "closed by peer" did not say.
INTERRUPTED: Final = "the peer was interrupted (Ctrl-C)"
#: Why a session ends on SIGTERM, for the peer.
TERMINATED: Final = "the peer was stopped (SIGTERM)"
EXIT_TERMINATED: Final = 128 + signal.SIGTERM


class Stop:
    """What ended the command, once it was cancelled: Ctrl-C unless SIGTERM came."""

    def __init__(self) -> None:
        self.terminated = False

    @property
    def reason(self) -> str:
        """For the peer (the session's close reason)."""
        return TERMINATED if self.terminated else INTERRUPTED

    @property
    def word(self) -> str:
        """For our own last line: ``rdv send: interrupted; ...``."""
        return "stopped (SIGTERM)" if self.terminated else "interrupted"


async def terminable(main: Callable[[Stop], Coroutine[Any, Any, int]]) -> int:
    """Run ``main(stop)``; SIGTERM cancels it (as Ctrl-C does) and exits 143."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    stop = Stop()

    def on_sigterm() -> None:
        stop.terminated = True
        if task is not None:
            task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    except (NotImplementedError, RuntimeError, ValueError):  # no signals here: as before
        return await main(stop)
    try:
        return await main(stop)
    except asyncio.CancelledError:
        if stop.terminated:
            return EXIT_TERMINATED
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
