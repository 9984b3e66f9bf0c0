"""Give freed memory back to the operating system while ``rdv serve`` runs.

After a burst of relayed pairs the server's heap is full of holes: relay buffers and
per-conn objects are freed, but glibc keeps the pages (1,000 pairs x 1 MiB each way left
~100 MB of RSS behind, issue 13). ``malloc_trim`` returns them; it is called a few seconds
after a burst of conns ended, never on the relay's hot path. Elsewhere than
glibc this does nothing. Standard library only (``rdv serve`` imports it at start).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
from collections.abc import Callable
from typing import Any

#: How often the server's size is looked at.
TRIM_EVERY_S = 2.0


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


async def give_back_memory(server: Any, every_s: float = TRIM_EVERY_S) -> None:
    """Collect garbage and trim the heap after a burst of conns of ``server`` ended (forever).

    A burst has ended when the conns the server holds (lobby, and two per pair) fell by at
    least a tenth (and 50) from their peak since the last trim: a busy server whose lobby
    merely churns is left alone.
    """
    trim = _malloc_trim()
    if trim is None:
        return
    peak = 0
    while True:
        await asyncio.sleep(every_s)
        stats = server.stats()
        held = stats.lobby + 2 * len(stats.pairs)
        peak = max(peak, held)
        if held <= peak - max(50, peak // 10):
            gc.collect()
            trim(0)
            peak = held
