"""The race's dials run their first step at once (client/_eager.py), on a real loopback race."""

from __future__ import annotations

import asyncio

import pytest

from rdv_core.client._eager import start_now
from rdv_core.events import CandidateConnected, DialStarted, Event, ServerResponded

from tests.race_support import client, exchange, pair


async def test_a_loopback_dial_connects_inside_the_races_start(url: str) -> None:
    """No task, no loop turn for a dial that the kernel answers inside ``connect()``.

    Before, every dial was a task of its own: its ``connect()`` ran one event-loop turn
    after the ``101`` was read (bench/connect.py, phase "race").
    """
    tasks: dict[str, asyncio.Task[object] | None] = {}

    def seen(event: Event) -> None:
        tasks.setdefault(event.type, asyncio.current_task())

    dialer = client()
    dialer.on_event = seen
    d, a = await pair(url, dialer, client(), token="eager")
    async with d, a:
        assert not d.is_relay
        # The dial ran in dial()'s own task, in the step that read the 101.
        responded = tasks[ServerResponded.__name__]
        assert responded is not None
        assert tasks[DialStarted.__name__] is responded
        assert tasks[CandidateConnected.__name__] is responded
        await exchange(d, a)


async def test_start_now_runs_the_first_step_and_hands_the_rest_to_a_task() -> None:
    loop = asyncio.get_running_loop()
    steps: list[str] = []

    async def at_once() -> None:
        steps.append("whole")

    assert start_now(at_once()) is None and steps == ["whole"]

    gate: asyncio.Future[int] = loop.create_future()

    async def waits() -> int:
        steps.append("first")
        value = await gate
        steps.append(f"got {value}")
        await asyncio.sleep(0)  # a bare yield is passed on too
        return value * 2

    task = start_now(waits())
    assert task is not None and steps[-1] == "first"
    gate.set_result(21)
    assert await asyncio.wait_for(task, 5) == 42 and steps[-1] == "got 21"


async def test_start_now_passes_errors_and_cancels_on() -> None:
    loop = asyncio.get_running_loop()

    async def broken() -> None:
        raise KeyError("first step")

    with pytest.raises(KeyError):
        start_now(broken())

    failing: asyncio.Future[None] = loop.create_future()
    caught: list[BaseException] = []

    async def awaits(future: asyncio.Future[None]) -> None:
        try:
            await future
        except BaseException as exc:
            caught.append(exc)
            raise

    task = start_now(awaits(failing))
    assert task is not None
    failing.set_exception(ConnectionResetError("from the awaited future"))
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(task, 5)
    assert isinstance(caught[-1], ConnectionResetError)

    task = start_now(awaits(loop.create_future()))
    assert task is not None
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled() and isinstance(caught[-1], asyncio.CancelledError)


async def test_a_cancel_before_the_tasks_first_step_reaches_the_coroutine() -> None:
    """The race may end in the very step that started a dial (a picker that takes the
    relay at once): the dial must still hear the cancel, close its socket and say so."""
    loop = asyncio.get_running_loop()
    seen: list[str] = []

    async def dial() -> None:
        seen.append("started")
        try:
            await loop.create_future()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    task = start_now(dial())
    assert task is not None
    task.cancel()  # no loop turn since start_now
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled() and seen == ["started", "cancelled"]
