"""Give freed memory back to the operating system while ``rdv serve`` runs.

After a burst of conns the server's heap is full of holes: relay buffers and per-conn
objects are freed, but the allocators keep the memory (1,000 pairs x 1 MiB each way left
~100 MB of RSS behind, issue 13). Two things keep it:

- glibc keeps freed pages: ``malloc_trim`` returns them;
- CPython's small-object allocator (pymalloc) returns a 1 MiB arena only once every block
  in it is free, and a few long-lived blocks allocated during the burst pin whole arenas.
  Measured (docs/LAB-NOTES.md section 10.1): the live Python objects were back at their
  baseline, but 16-18 arenas each held a handful of *parked* objects: the free lists of
  asyncio's future iterators (255, any loop) and of uvloop's ``Handle`` and
  ``TimerHandle`` (250 each), filled by the last objects the burst freed. Python's own
  free lists (tuples, dicts, contexts) are emptied by a full ``gc.collect()``; these are
  not. :func:`refill_free_lists` swaps the parked objects for freshly allocated ones, which
  land in the arenas still in use, so the burst's arenas empty and go back.

Both run a few seconds after a burst of conns ended, never on the relay's hot path.
Elsewhere than glibc the trim does nothing. Standard library only (``rdv serve`` imports
it at start).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
from collections.abc import Callable
from typing import Any

from rdv_core.wire import clear_caches

#: How often the server's size is looked at.
TRIM_EVERY_S = 2.0
#: At least the length of the free lists refilled (asyncio's future iterators: 255;
#: uvloop's handles: 250).
FREE_LIST_LEN = 256


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def _noop() -> None:
    pass


def _rotate(objects: list[Any]) -> None:
    """Free ``objects`` (all from one free list, oldest first) so that the list keeps the
    newest: those freed first are the ones it parks, the rest go back to the allocator."""
    newest = objects[-FREE_LIST_LEN:]
    del objects[-FREE_LIST_LEN:]
    del newest  # parked by the free list (it is empty: ``objects`` took all it had)
    objects.clear()  # the list is full now: these are freed, the old parked ones too


async def refill_free_lists() -> None:
    """Swap the objects parked in the event loop's free lists for fresh ones (see module doc).

    Taking twice ``FREE_LIST_LEN`` objects of a type empties its free list (the first ones
    taken are the parked ones, scattered over the burst's arenas) and allocates the rest
    anew, side by side in a few pools; freeing the new ones first parks them instead.
    Harmless where a type has no free list.
    """
    loop = asyncio.get_running_loop()
    count = 2 * FREE_LIST_LEN
    futures = [loop.create_future() for _ in range(count)]
    _rotate([f.__await__() for f in futures])
    handles: list[Any] = [loop.call_soon(_noop) for _ in range(count)]
    timers: list[Any] = [loop.call_later(3600.0, _noop) for _ in range(count)]
    for handle in (*handles, *timers):
        handle.cancel()
    # Let the loop drop its references (the ready queue, closing timers) before ours go.
    for _ in range(3):
        await asyncio.sleep(0)
    _rotate(handles)
    _rotate(timers)
    del futures


async def give_back_memory(server: Any, every_s: float = TRIM_EVERY_S) -> None:
    """Collect garbage and trim the heap after a burst of conns of ``server`` ended (forever).

    A burst has ended when the conns the server holds (lobby, and two per pair) fell by at
    least a tenth (and 50) from their peak since the last trim: a busy server whose lobby
    merely churns is left alone. The count is ``open_conns``, not ``stats()``: a snapshot
    builds a record per open pair, and at 100,000 pairs that held the loop for about half a
    second every ``every_s``, whether anybody looked or not.
    """
    trim = _malloc_trim()
    if trim is None:
        return
    peak = 0
    while True:
        await asyncio.sleep(every_s)
        held = server.open_conns
        peak = max(peak, held)
        if held <= peak - max(50, peak // 10):
            # The address memo caches (bounded, docs/PROTOCOL.md section 9) hold entries
            # made late in the burst, scattered over its arenas: they pin them too.
            clear_caches()
            await refill_free_lists()
            gc.collect()
            trim(0)
            peak = held
