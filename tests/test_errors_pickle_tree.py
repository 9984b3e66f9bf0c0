"""Every error of the tree pickles and copies whole, not only the client's attempt errors.

``Reject(status, reason)`` (a server hook's refusal) and the session's ``TransferFailed``
handed ``Exception`` only their message, so unpickling them (a worker process's error in
``ProcessPoolExecutor`` or ``multiprocessing``) or ``copy.copy`` raised ``TypeError`` or
``ValueError``; ``CodeMismatch`` came back with its message said twice. The root
``RdvError`` now rebuilds any of them (tests/test_client_errors_pickle.py: the client's).
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import multiprocessing
import pickle
import pkgutil
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import pytest

import rdv_core
from rdv_core.errors import RdvError
from rdv_core.faststart import UnconfirmedDataError
from rdv_core.server._handler import Reject
from rdv_core.session._errors import CodeMismatch, TransferFailed, TransferRejected
from rdv_core.wire import ProtocolError, RequestRejected

#: One of each error whose ``__init__`` takes more (or other) than the message.
SAMPLES: list[RdvError] = [
    Reject(403, "not on the guest list"),
    TransferFailed([("a.txt", "disk full"), ("b.txt", "checksum")]),
    TransferRejected([("a.txt", "declined")]),
    CodeMismatch("the peer hung up"),
    ProtocolError("HTTP header block too large", status=431),
    RequestRejected("400 Bad Request: missing required Host header", http_level=True),
    UnconfirmedDataError("the connection to the peer was lost before it confirmed 9 bytes", 9),
]


def refuse() -> None:
    """In the worker: what a pair hook running there raises."""
    raise Reject(403, "not on the guest list")


def _subclasses(cls: type[RdvError]) -> Iterator[type[RdvError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


@pytest.mark.parametrize("error", SAMPLES, ids=lambda error: type(error).__name__)
def test_the_error_pickles_and_copies_whole(error: RdvError) -> None:
    for again in (pickle.loads(pickle.dumps(error)), copy.copy(error), copy.deepcopy(error)):
        assert type(again) is type(error)
        assert str(again) == str(error)
        assert again.args == error.args
        assert vars(again) == vars(error)


def test_every_error_with_its_own_init_has_a_sample() -> None:
    # A new error class with its own arguments is checked here too, or this names it.
    for module in pkgutil.walk_packages(rdv_core.__path__, "rdv_core."):
        importlib.import_module(module.name)
    sampled = {type(error) for error in SAMPLES}
    own_init = {cls for cls in _subclasses(RdvError) if "__init__" in vars(cls)}
    client = {"ServerRejectedError", "ServerConnectError", "NoConnectionError", "RdvTimeoutError"}
    missing = {cls.__qualname__ for cls in own_init - sampled} - client
    assert missing == set()


async def test_a_reject_raised_in_a_worker_process_reaches_the_parent() -> None:
    spawn = multiprocessing.get_context("spawn")  # no fork of a process with a loop
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        future = asyncio.get_running_loop().run_in_executor(pool, refuse)
        with pytest.raises(Reject) as info:
            await asyncio.wait_for(future, 60)
    assert (info.value.status, info.value.reason) == (403, "not on the guest list")
