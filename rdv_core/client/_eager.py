"""A coroutine's first step run at once, a task only for what is left (Python 3.12's eager tasks).

The race starts its dials and its relay side (client/_race.py) as tasks. On loopback and on
veth paths a dial's whole work (socket, bind, ``connect()``, which the kernel answers inside
the call) is its first step, and so are the header line written and the reader registered:
as a task, that step waited for the next event-loop turn, and the task's end for one more
(its done callback), on both peers, while the other peer waited for the SYN. Run now, a
dial that connects or fails in its first step costs no task, no handle and no turn
(bench/connect.py, phase "race"; docs/notes/issue-10-connect-seventh.md).

Python 3.12 does this with ``eager_start``; the project supports 3.11, so the rest of the
coroutine is driven by a task through :class:`_Rest`, which passes every value, exception
and cancellation the task sends on to the coroutine unchanged: the task awaits exactly the
futures the coroutine awaits, and a cancel reaches it as it would reach its own task.

The first step runs inside the caller's task (``asyncio.current_task()`` is the caller's
there) and in the caller's context; it must not depend on either.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def start_now(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T] | None:
    """Run ``coro`` up to its first suspension now; a task for the rest, None if it ended.

    Raises:
        Whatever the first step raises (the coroutine is then finished).
    """
    try:
        first = coro.send(None)
    except StopIteration:
        return None
    return asyncio.get_running_loop().create_task(_finish(_Rest(coro, first)))


async def _finish(rest: _Rest[T]) -> T:
    return await rest


class _Rest(Generic[T]):
    """The rest of a started coroutine, awaitable once: yields what it yielded first."""

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, T], first: Any) -> None:
        self._coro, self._first = coro, first

    def __await__(self) -> Generator[Any, Any, T]:
        coro, yielded = self._coro, self._first
        while True:
            try:
                sent = yield yielded
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # the task's throw: an awaited future's error, a cancel
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value  # type: ignore[no-any-return]
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration as stop:
                    return stop.value  # type: ignore[no-any-return]
