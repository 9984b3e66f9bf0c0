"""Fixtures shared across the suite.

``env`` is the raw-socket server fixture of the server tests: a real server on each front
(native and aiohttp, see :func:`tests.server_support.running_server`). A module or test
that only concerns some fronts says so with ``@pytest.mark.fronts("aiohttp")``.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Iterator

import pytest

from rdv_core.server._core import RdvServer
from rdv_core.server._native import serve_native

from tests.server_support import FRONTS, Env, running_server

#: The proxy environment (docs/PROTOCOL.md section 17.1): a CI machine or a developer's shell
#: may set it, and every test talks to servers on loopback or in its own namespaces.
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def pytest_configure(config: pytest.Config) -> None:
    for name in PROXY_VARIABLES:
        os.environ.pop(name, None)
        os.environ.pop(name.lower(), None)
    config.addinivalue_line(
        "markers", "fronts(*names): run the env fixture on these fronts only (native, aiohttp)"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``env`` over the fronts: all of them, or those of a ``fronts`` mark."""
    if "env" not in metafunc.fixturenames:
        return
    mark = metafunc.definition.get_closest_marker("fronts")
    fronts = mark.args if mark is not None else FRONTS
    unknown = set(fronts) - set(FRONTS)
    if unknown:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: unknown fronts {unknown}")
    metafunc.parametrize("env", fronts, indirect=True)


@pytest.fixture
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    """A running server on the front ``request.param``; closed afterwards."""
    async with running_server(request.param) as running:
        yield running


@pytest.fixture
async def url() -> AsyncIterator[str]:
    """A real rdv server (native front) on 127.0.0.1, port 0: its URL; closed afterwards."""
    async with serve_native(RdvServer(), host="127.0.0.1", port=0) as front:
        yield front.url


@pytest.fixture(autouse=True, scope="session")
def _private_state_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Burned codes (rdv_core.session._burned) go to a temporary folder, never the user's:
    the tests reuse fixed codes, and a code mismatch on purpose burns its code."""
    import os

    os.environ["RDV_STATE_DIR"] = str(tmp_path_factory.mktemp("rdv-state"))


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)


@pytest.fixture(autouse=True)
def _stop_signals_restored() -> Iterator[None]:
    """Every test leaves the worker's stop signals as it found them. A test that calls a
    command's ``main([...])`` in this process lets that command take the signals (its
    Python-level handlers stay for the process, rdv_tui/cli/stop_signals.py); a blocked
    mask or an ignored disposition left here was inherited by every process the worker
    started afterwards (34 signal tests of one fresh-clone CI ignored the SIGTERM they
    sent). The product no longer leaves either; this keeps one test from hiding in another."""
    before = {sig: signal.getsignal(sig) for sig in _STOP_SIGNALS}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    yield
    for sig, handler in before.items():
        if signal.getsignal(sig) is not handler and handler is not None:
            signal.signal(sig, handler)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
