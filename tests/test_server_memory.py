"""``rdv serve`` gives memory back after a burst of conns (rdv_tui/cli/memory.py): it trims
once the conns it holds fell by a tenth from their peak, and leaves a churning lobby alone."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from ipaddress import ip_address

import pytest

from rdv_core.wire import Addr, space_of
from rdv_core.wire._addrs import _parse_memo
from rdv_tui.cli import memory


@dataclass
class _Stats:
    lobby: int = 0
    pairs: list[object] = field(default_factory=list)


class _Server:
    def __init__(self) -> None:
        self.now = _Stats()

    @property
    def open_conns(self) -> int:
        return self.now.lobby + 2 * len(self.now.pairs)


async def test_trims_after_a_burst_not_on_churn(monkeypatch: pytest.MonkeyPatch) -> None:
    trims: list[int] = []
    monkeypatch.setattr(memory, "_malloc_trim", lambda: trims.append)
    server = _Server()
    task = asyncio.ensure_future(memory.give_back_memory(server, every_s=0.01))
    try:
        for lobby in (1000, 995, 1001, 990):  # churn: never a tenth below the peak
            server.now = _Stats(lobby=lobby)
            await asyncio.sleep(0.03)
        assert trims == []
        server.now = _Stats(lobby=10, pairs=[object()] * 5)  # the burst ended
        await asyncio.sleep(0.05)
        assert trims == [0]
    finally:
        task.cancel()


async def test_a_trim_empties_the_address_memo_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    """The memo caches of rdv_core/wire/_addrs.py keep the entries of the burst's last clients,
    scattered over its arenas: kept, they pinned about 13 MB after bench/load.py."""
    monkeypatch.setattr(memory, "_malloc_trim", lambda: lambda _pad: 0)
    for last in range(200):
        space_of(ip_address(f"127.0.{last}.1"))
        Addr.parse(f"127.0.{last}.1:4000")
    assert space_of.cache_info().currsize >= 200
    assert _parse_memo.cache_info().currsize >= 200
    server = _Server()
    server.now = _Stats(lobby=1000)
    task = asyncio.ensure_future(memory.give_back_memory(server, every_s=0.01))
    try:
        await asyncio.sleep(0.03)
        server.now = _Stats()  # the burst ended
        await asyncio.sleep(0.05)
        assert space_of.cache_info().currsize == 0
        assert _parse_memo.cache_info().currsize == 0
    finally:
        task.cancel()


async def _burst(loop: asyncio.AbstractEventLoop, n: int) -> None:
    """``n`` awaits at once, timers and handles: what a burst of conns leaves parked."""
    futures = [loop.create_future() for _ in range(n)]

    async def one(fut: asyncio.Future[None]) -> None:
        await fut

    tasks = [asyncio.ensure_future(one(f)) for f in futures]
    await asyncio.sleep(0)
    timers = [loop.call_later(3600.0, print) for _ in range(n)]
    # The newest first: whatever the free lists held before the burst is taken first, so
    # what they park afterwards is the burst's own.
    for fut in reversed(futures):
        fut.set_result(None)
    for timer in reversed(timers):
        timer.cancel()
    await asyncio.gather(*tasks)
    del futures, tasks, timers


@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
def test_refill_leaves_nothing_of_the_burst_parked(loop_name: str) -> None:
    """The objects a burst left in the loop's free lists (allocated by it, pinning its
    arenas) are swapped for fresh ones: tracemalloc sees none of the burst's left."""
    import inspect
    import tracemalloc

    if loop_name == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()

    def parked() -> int:
        """Small blocks still allocated by the burst's awaits and timers (not tables)."""
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(True, __file__, lineno) for lineno in burst_lines]
        )
        return sum(1 for trace in snapshot.traces if trace.size < 1024)

    source, first = inspect.getsourcelines(_burst)
    burst_lines = [first + i for i, line in enumerate(source) if "await fut" in line]
    burst_lines += [first + i for i, line in enumerate(source) if "call_later" in line]
    tracemalloc.start()
    try:
        loop.run_until_complete(_burst(loop, 2000))
        before = parked()
        loop.run_until_complete(memory.refill_free_lists())
        after = parked()
    finally:
        tracemalloc.stop()
        loop.close()
    assert before > 0  # the free lists parked some of the burst's objects
    assert after == 0


async def test_the_trimmer_builds_no_snapshot_of_the_pairs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It counts conns with ``open_conns``: ``stats()`` builds a record per open pair, about
    5 us each, and every 2 s at 100,000 pairs the loop stood still for half a second."""
    from rdv_core.server._relay import Relayer

    from tests.server_support import running_server

    monkeypatch.setattr(memory, "_malloc_trim", lambda: lambda _pad: 0)
    snapshots: list[int] = []
    real_stats = Relayer.stats

    def counted(self: Relayer, token: str, dialer: str, accepter: str) -> object:
        snapshots.append(self.pair_id)
        return real_stats(self, token, dialer, accepter)

    monkeypatch.setattr(Relayer, "stats", counted)
    async with running_server("native") as env:
        pairs = [await env.relayed_pair(f"held-{n}") for n in range(3)]
        task = asyncio.ensure_future(memory.give_back_memory(env.server, every_s=0.01))
        try:
            await asyncio.sleep(0.1)  # ten rounds
        finally:
            task.cancel()
        assert snapshots == []
        for dialer, accepter in pairs:
            await dialer.close()
            await accepter.close()
