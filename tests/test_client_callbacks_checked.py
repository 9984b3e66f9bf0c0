"""``Client`` refuses an ``on_event`` (or ``early_data``) that could never work, when built.

``on_event`` is called synchronously (README "Use it as a library"). An ``async def`` one
was accepted: each event made a coroutine nobody awaited, so the program saw no event at all
and only "coroutine ... was never awaited" warnings; a non-callable (``on_event=events``
instead of ``events.append``) failed at every event, logged and swallowed. Both are now a
``TypeError`` from ``Client(...)``, before any traffic; plain callables still see every
event of a real attempt.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rdv_core.client._client import Client
from rdv_core.events import AttemptStarted, Event, Picked

from tests.race_support import LOOP, client, of


async def observe(event: Event) -> None:
    """The mistake: an async observer."""


class AsyncObserver:
    async def __call__(self, event: Event) -> None:
        """The same mistake, as a class."""


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("on_event", observe, "async"),
        ("on_event", AsyncObserver(), "async"),
        ("on_event", [], "callable"),
        ("early_data", observe, "async"),
        ("early_data", b"first bytes", "callable"),
    ],
    ids=["async-def", "async-call", "list", "early-data-async", "early-data-bytes"],
)
def test_a_callback_that_cannot_work_is_a_type_error(name: str, value: Any, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        Client(**{name: value})


async def test_plain_callables_see_every_event(url: str) -> None:
    seen: list[Event] = []

    class Observer:
        def __call__(self, event: Event) -> None:
            seen.append(event)

    d, a = await asyncio.gather(
        Client(spaces=LOOP, timeout=10, on_event=Observer()).dial(url, "plain"),
        client().accept(url, "plain"),
    )
    async with d, a:
        assert seen[0] == d.events[0] and isinstance(seen[0], AttemptStarted)
        assert seen == d.events and of(seen, Picked)
