"""Give freed memory back to the operating system while ``rdv serve`` runs.

After a burst of relayed pairs the server's heap is full of holes: relay buffers and
per-conn objects are freed, but glibc keeps the pages (1,000 pairs x 1 MiB each way left
~100 MB of RSS behind, issue 13). ``malloc_trim`` returns them; it is called a few seconds
after the lobby or the open pairs shrank, never on the relay's hot path. Elsewhere than
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
    """Trim the heap whenever the lobby or the open pairs of ``server`` shrank (forever)."""
    trim = _malloc_trim()
    if trim is None:
        return
    last = (0, 0)
    while True:
        await asyncio.sleep(every_s)
        stats = server.stats()
        now = (stats.lobby, len(stats.pairs))
        if now[0] < last[0] or now[1] < last[1]:
            gc.collect()
            trim(0)
        last = now
