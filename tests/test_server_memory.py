"""``rdv serve`` gives memory back after a burst of conns (rdv_tui/cli/memory.py): it trims
once the conns it holds fell by a tenth from their peak, and leaves a churning lobby alone."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from rdv_tui.cli import memory


@dataclass
class _Stats:
    lobby: int = 0
    pairs: list[object] = field(default_factory=list)


class _Server:
    def __init__(self) -> None:
        self.now = _Stats()

    def stats(self) -> _Stats:
        return self.now


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
