"""The attempt's deadline (client/_deadline.py) keeps asyncio.timeout's rules."""

from __future__ import annotations

import asyncio

import pytest

from rdv_core.client._deadline import Deadline


async def run_with_deadline(seconds: float | None, body: asyncio.Future[None]) -> str:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    deadline = Deadline(loop, task, seconds)
    try:
        try:
            await body
        except asyncio.CancelledError as exc:
            if deadline.end(exc):
                raise TimeoutError from exc
            raise
        finally:
            deadline.end()
    except TimeoutError:
        assert deadline.expired
        return "timeout"
    return "done"


async def test_its_own_cancel_becomes_a_timeout_and_is_taken_back() -> None:
    body = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_with_deadline(0.01, body))
    assert await task == "timeout"
    assert task.cancelling() == 0


async def test_a_cancel_from_outside_stays_a_cancel() -> None:
    body = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_with_deadline(10, body))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cancel_from_outside_after_expiry_stays_a_cancel() -> None:
    loop = asyncio.get_running_loop()
    body = loop.create_future()
    task = asyncio.create_task(run_with_deadline(0, body))
    await asyncio.sleep(0)  # the task waits on body, its deadline due
    loop.call_soon(task.cancel)  # ... and the caller cancels it in the same turn
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_no_deadline_and_a_body_that_ends_in_time() -> None:
    loop = asyncio.get_running_loop()
    for seconds in (None, 10.0):
        body = loop.create_future()
        loop.call_later(0.001, body.set_result, None)
        assert await run_with_deadline(seconds, body) == "done"
