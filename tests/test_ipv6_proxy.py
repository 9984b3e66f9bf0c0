"""An IPv6 server behind a real HTTP proxy (tinyproxy on loopback): the words name it right."""

from __future__ import annotations

from pathlib import Path

import pytest

from rdv_core.errors import ServerConnectError
from rdv_core.wire import AddrSpace

from tests.proxy_support import tinyproxy
from tests.race_support import client


@pytest.fixture(autouse=True)
def _no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUEST_METHOD"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


async def test_a_refused_connect_names_the_ipv6_server_in_brackets(tmp_path: Path) -> None:
    """Old: ``it does not allow CONNECT to ::1:8080``: which colon starts the port?"""
    with (
        tinyproxy(tmp_path, connect_ports=[443]) as proxy,
        pytest.raises(ServerConnectError) as info,
    ):
        await client(spaces=AddrSpace.NONE, proxy=proxy.url).dial("http://[::1]:8080", "t")
    assert "does not allow CONNECT to [::1]:8080 (" in str(info.value), info.value
