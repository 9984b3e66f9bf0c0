"""An attempt's deadline: :func:`asyncio.timeout`'s job for one task, in fewer steps.

``asyncio.timeout()`` asks for the current task and the running loop again on entry
(each of asyncio's C helpers compares ``getpid()``), builds its state machine and
reschedules a timer: about 150 bytecodes and three system calls per attempt, on the
path of every ``dial()`` (issue 10, bench/connect.py). The caller here already has the
loop and the task; a plain timer handle that cancels the task does the rest, with the
same rules as ``asyncio.timeout``: the deadline's own cancel becomes a
:class:`TimeoutError`, a cancel someone else asked for stays a cancel.
"""

from __future__ import annotations

import asyncio

__all__ = ["Deadline"]


class Deadline:
    """Cancel ``task`` after ``seconds`` (None: never), unless :meth:`end` comes first."""

    __slots__ = ("_cancels", "_handle", "_task", "expired")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[object], seconds: float | None
    ) -> None:
        self._task = task
        #: Cancels asked for before the deadline started (``Task.cancelling``).
        self._cancels = task.cancelling()
        #: True once the deadline cancelled the task.
        self.expired = False
        self._handle: asyncio.TimerHandle | None = (
            None if seconds is None else loop.call_later(seconds, self._expire)
        )

    def _expire(self) -> None:
        self.expired = True
        self._task.cancel()

    def end(self, exc: BaseException | None = None) -> bool:
        """Stop the clock (again: nothing); True when ``exc`` is the deadline's own cancel
        and nobody else asked to cancel the task meanwhile: the caller raises its timeout.
        """
        handle = self._handle
        if handle is None:
            return False
        handle.cancel()
        self._handle = None
        if not self.expired:
            return False
        # As asyncio.timeout's exit: take our cancel request back, whatever ended the body.
        return self._task.uncancel() <= self._cancels and isinstance(exc, asyncio.CancelledError)
