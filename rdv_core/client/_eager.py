"""A coroutine's first step run at once, a task only for what is left (Python 3.12's eager tasks).

The race starts its dials as tasks (client/_race.py). On loopback and on veth paths a dial's
whole work (socket, bind, ``connect()``, which the kernel answers inside the call, the
header line written, the reader registered) is its first step: as a task, that step waited
for the next event-loop turn, and the task's end for one more (its done callback), on both
peers, while the other peer waited for the SYN. Run now, a dial that connects or fails in
its first step costs no task, no handle and no turn (bench/connect.py, phase "race";
docs/notes/issue-10-connect-seventh.md).

Python 3.12 does this with ``eager_start``; the project supports 3.11, so the rest of the
coroutine goes to a task as :class:`_Rest`, a coroutine object that hands the task what the
coroutine awaits first, then passes every value, exception and cancel the task sends on to
the coroutine unchanged. A cancel that comes before the task's first step reaches the
coroutine too (a plain wrapper coroutine would end without ever running it, and the dial
would neither close its socket nor say ``cancelled``).

The first step runs inside the caller's task (``asyncio.current_task()`` is the caller's
there) and in the caller's context; it must not depend on either.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar

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
    return asyncio.get_running_loop().create_task(_Rest(coro, first))


class _Rest(Coroutine[Any, Any, T]):
    """The rest of a started coroutine, for a task to drive (not to be awaited)."""

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, T], first: Any) -> None:
        self._coro, self._first = coro, first

    def send(self, value: Any) -> Any:
        if self._first is not _TAKEN:
            # The task's first step: what the coroutine awaits (a future, or None for a
            # bare yield), as if the task had run that step itself.
            first, self._first = self._first, _TAKEN
            return first
        return self._coro.send(value)  # its StopIteration is the task's result

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        self._first = _TAKEN
        if val is None and tb is None:
            return self._coro.throw(typ)
        return self._coro.throw(typ, val, tb)

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, Any, T]:
        raise TypeError("the rest of a started coroutine is for a task, not for await")


#: :attr:`_Rest._first` once the task took it.
_TAKEN: Any = object()
