"""The attempt's errors cross a process boundary whole: pickled, copied, their fields kept.

``ServerRejectedError`` took four arguments but handed ``Exception`` only its message, so
unpickling it (what ``concurrent.futures.ProcessPoolExecutor`` and ``multiprocessing`` do
with a worker's exception) or ``copy.copy`` raised ``TypeError: __init__() missing 2
required positional arguments``: the pool broke instead of reporting the server's answer.
``ServerConnectError`` lost its ``errno`` on the way. Real server, real worker process.
"""

from __future__ import annotations

import asyncio
import copy
import errno
import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor

import pytest

from rdv_core.client._client import Client
from rdv_core.errors import (
    NoConnectionError,
    RdvError,
    RdvTimeoutError,
    ServerConnectError,
    ServerRejectedError,
)
from rdv_core.server._core import RdvServer
from rdv_core.server._native import serve_native
from rdv_core.wire import AddrSpace


def dial_alone(url: str) -> None:
    """In the worker: a dial nobody accepts, which the server ends with its ``408``."""
    asyncio.run(Client(spaces=AddrSpace.NONE, timeout=60).dial(url, "nobody"))


async def test_a_rejection_raised_in_a_worker_process_reaches_the_parent() -> None:
    async with serve_native(RdvServer(lobby_timeout=0.2), host="127.0.0.1", port=0) as front:
        spawn = multiprocessing.get_context("spawn")  # no fork of a process with a loop
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            future = asyncio.get_running_loop().run_in_executor(pool, dial_alone, front.url)
            with pytest.raises(ServerRejectedError) as info:
                await asyncio.wait_for(future, 60)
    error = info.value
    assert (error.status, error.reason, error.body) == (
        408,
        "Request Timeout",
        "no matching peer found",
    )
    assert str(error) == "server rejected: 408 Request Timeout: no matching peer found"


@pytest.mark.parametrize(
    "error",
    [
        ServerRejectedError(409, "Conflict", "replaced by another conn", "a proxy answered"),
        ServerConnectError("cannot connect to the rdv server", errno.ECONNREFUSED),
        NoConnectionError("no conn to the peer could be used", ("relay: eof", "x: refused")),
        RdvTimeoutError("timed out after 5s while racing", "racing"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_every_attempt_error_pickles_and_copies_whole(error: RdvError) -> None:
    for again in (pickle.loads(pickle.dumps(error)), copy.copy(error)):
        assert type(again) is type(error)
        assert str(again) == str(error)
        assert again.args == error.args
        assert vars(again) == vars(error)
        assert getattr(again, "errno", None) == getattr(error, "errno", None)
