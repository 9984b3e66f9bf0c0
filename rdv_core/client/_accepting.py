"""The race's listeners, accepted from a reader callback (docs/PROTOCOL.md sections 6 and 11).

An accept loop task per listener cost a task, and a loop turn between the kernel's
``accept()`` being ready and the inbound conn being answered; the callback takes every
pending conn at once and hands each to the race synchronously, which checks and answers
its header line in the same callback when it is already in (client/_direct.py).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any, Final

from rdv_core.client._sockets import no_delay

logger = logging.getLogger("rdv.client")

#: Pause after a failed ``accept()`` (EMFILE and friends) before accepting again, so a
#: persistent error does not spin the loop.
ACCEPT_ERROR_PAUSE: Final = 0.1
#: Linux copies TCP_NODELAY from the listener (made by ``reuse_socket``, Nagle off) to
#: every conn it accepts: there an accepted conn needs no ``setsockopt`` of its own
#: (tests/test_race_direct.py checks both sides' winners). Elsewhere it is set here.
INHERITS_NO_DELAY: Final = sys.platform == "linux"


class Acceptor:
    """Accepts on the race's listeners until :meth:`stop`; each conn goes to ``on_inbound``.

    Args:
        listeners: listening, non-blocking sockets (the race closes them).
        on_inbound: called with each accepted (non-blocking) socket and its address.
        crash: an unexpected error in the callback (a bug): the race ends with it.
        loop: the running loop, if the caller has it at hand.
    """

    def __init__(
        self,
        listeners: Sequence[socket.socket],
        on_inbound: Callable[[socket.socket, Any], None],
        crash: Callable[[BaseException], None],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        # The race passes its loop: asking for the running one is a getpid() each time.
        self._loop = loop or asyncio.get_running_loop()
        self._on_inbound, self._crash = on_inbound, crash
        self._listening: list[socket.socket] = []
        self._pauses: dict[socket.socket, asyncio.TimerHandle] = {}
        for listener in listeners:
            self._listen(listener)

    @property
    def active(self) -> bool:
        """True until :meth:`stop` (a listener pausing after an error still counts)."""
        return bool(self._listening or self._pauses)

    def stop(self) -> None:
        """Accept no more (idempotent)."""
        for listener in self._listening:
            self._loop.remove_reader(listener.fileno())
        self._listening.clear()
        for pause in self._pauses.values():
            pause.cancel()
        self._pauses.clear()

    def accept_queued(self) -> None:
        """Take the conns already queued on each listener now, not a loop turn later.

        The race calls this before it dials when a peer on this host may have connected
        first (client/_race.py ``_start``); an empty queue costs one ``accept()``.
        """
        for listener in list(self._listening):
            self._acceptable(listener)

    def _listen(self, listener: socket.socket) -> None:
        self._pauses.pop(listener, None)
        self._loop.add_reader(listener.fileno(), self._acceptable, listener)
        self._listening.append(listener)

    def _acceptable(self, listener: socket.socket) -> None:
        # One conn per call: the loop's selector is level-triggered, so a listener with
        # more pending is readable again in the next turn. Accepting until EAGAIN cost
        # one failed accept() per inbound conn, and an attempt has only a few (issue 10).
        if listener not in self._listening:
            return
        try:
            try:
                sock, sockaddr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # ECONNABORTED and friends concern one half-made conn; EMFILE passes.
                logger.debug("accept failed: %s", exc)
                self._loop.remove_reader(listener.fileno())
                self._listening.remove(listener)
                pause = self._loop.call_later(ACCEPT_ERROR_PAUSE, self._listen, listener)
                self._pauses[listener] = pause
                return
            sock.setblocking(False)
            if not INHERITS_NO_DELAY:
                no_delay(sock)
            self._on_inbound(sock, sockaddr)
        except Exception as exc:  # a bug: end the race with it, not a log line
            self._crash(exc)
