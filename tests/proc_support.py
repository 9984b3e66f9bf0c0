"""Cleaning up the subprocesses a test started (``rdv`` commands, servers, peers)."""

from __future__ import annotations

import asyncio


async def kill_left(*procs: asyncio.subprocess.Process) -> None:
    """Kill (SIGKILL) and reap each process still running: a test's ``finally``, so that
    a failed assertion leaves no ``rdv`` behind (and no zombie)."""
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
