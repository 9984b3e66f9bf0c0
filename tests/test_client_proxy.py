"""The client reaches the server through a real HTTP proxy (tinyproxy) with CONNECT.

docs/PROTOCOL.md section 17.1. The proxy runs on loopback, the server too; the relay
carries the session through the tunnel.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from rdv_core.errors import ServerConnectError, ServerRejectedError
from rdv_core.events import Event, ServerConnected
from rdv_core.wire import AddrSpace, parse_server_url, proxy_for

from tests.proxy_support import tinyproxy
from tests.race_support import client, exchange, of, pair


@pytest.fixture(autouse=True)
def _no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUEST_METHOD"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


async def test_both_peers_through_the_proxy_relay_bytes(url: str, tmp_path: Path) -> None:
    with tinyproxy(tmp_path) as proxy:
        d_events: list[Event] = []
        dialer = client(d_events, spaces=AddrSpace.NONE, proxy=proxy.url)
        accepter = client(spaces=AddrSpace.NONE, proxy=proxy.url)
        d, a = await pair(url, dialer, accepter)
        try:
            assert d.is_relay and a.is_relay
            await exchange(d, a)
            # A bigger stream through the tunnel, both ways at once.
            blob = bytes(range(256)) * 4096
            d.writer.write(blob)
            a.writer.write(blob)
            got_a, got_d = await asyncio.gather(
                a.reader.readexactly(len(blob)), d.reader.readexactly(len(blob))
            )
            assert got_a == blob and got_d == blob
        finally:
            d.writer.close()
            a.writer.close()
        connected = of(d_events, ServerConnected)[0]
        assert connected.proxy == f"http://127.0.0.1:{proxy.port}"
        assert connected.server_addr == f"127.0.0.1:{proxy.port}"
        assert connected.proxy_agent is not None and "tinyproxy" in connected.proxy_agent
        server = parse_server_url(url)
        assert f"{server.host}:{server.port}" in proxy.log_text()


async def test_proxy_from_the_environment_and_no_proxy(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tinyproxy(tmp_path) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        events: list[Event] = []
        d, a = await pair(url, client(events, spaces=AddrSpace.NONE), client(spaces=AddrSpace.NONE))
        d.writer.close()
        a.writer.close()
        assert of(events, ServerConnected)[0].proxy is not None
        tunnels = proxy.log_text().count("CONNECT")
        assert tunnels >= 2

        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.0/8")
        events.clear()
        d, a = await pair(url, client(events, spaces=AddrSpace.NONE), client(spaces=AddrSpace.NONE))
        d.writer.close()
        a.writer.close()
        assert of(events, ServerConnected)[0].proxy is None
        assert proxy.log_text().count("CONNECT") == tunnels  # nothing more went through it

        # An explicit "none" beats the environment; an explicit proxy beats NO_PROXY.
        monkeypatch.delenv("NO_PROXY")
        assert client(proxy="none").proxy_for(parse_server_url(url)) is None
        monkeypatch.setenv("NO_PROXY", "*")
        assert client(proxy=proxy.url).proxy_for(parse_server_url(url)) is not None
        assert proxy_for(parse_server_url(url), {"NO_PROXY": "*", "HTTP_PROXY": proxy.url}) is None


async def test_proxy_authentication(url: str, tmp_path: Path) -> None:
    with tinyproxy(tmp_path, auth=("alice", "s3cret")) as proxy:
        d, a = await pair(
            url,
            client(spaces=AddrSpace.NONE, proxy=proxy.url),
            client(spaces=AddrSpace.NONE, proxy=proxy.url),
        )
        await exchange(d, a)
        d.writer.close()
        a.writer.close()

        anonymous = f"http://127.0.0.1:{proxy.port}"
        with pytest.raises(ServerConnectError, match=r"407.*wants credentials"):
            await client(spaces=AddrSpace.NONE, proxy=anonymous).dial(url, "t2")
        wrong = f"http://alice:nope@127.0.0.1:{proxy.port}"
        with pytest.raises(ServerConnectError, match="refused the credentials") as info:
            await client(spaces=AddrSpace.NONE, proxy=wrong).dial(url, "t3")
        assert "nope" not in str(info.value)  # the password is never printed


async def test_a_proxy_that_refuses_connect_to_the_port_is_named(url: str, tmp_path: Path) -> None:
    with tinyproxy(tmp_path, connect_ports=[443]) as proxy:
        with pytest.raises(ServerConnectError) as info:
            await client(spaces=AddrSpace.NONE, proxy=proxy.url).dial(url, "tok")
        message = str(info.value)
        assert f"the proxy http://127.0.0.1:{proxy.port} answered 403" in message
        assert "does not allow CONNECT" in message and "443" in message


async def test_an_unreachable_proxy_is_a_clear_error(url: str) -> None:
    with pytest.raises(
        ServerConnectError, match=r"cannot connect to the proxy http://127\.0\.0\.1:9"
    ):
        await client(spaces=AddrSpace.NONE, proxy="http://127.0.0.1:9").dial(url, "tok")


async def test_a_reverse_proxy_that_drops_upgrade_is_named(url: str, tmp_path: Path) -> None:
    """A plain HTTP proxy in front of the server (not CONNECT) cannot pass rdv's Upgrade."""
    extra = [f'ReversePath "/" "{url}/"', "ReverseOnly Yes"]
    with tinyproxy(tmp_path, extra=extra) as proxy:
        fronted = f"http://127.0.0.1:{proxy.port}"
        with pytest.raises((ServerRejectedError, ServerConnectError)) as info:
            await client(spaces=AddrSpace.NONE, timeout=5).dial(fronted, "tok")
        message = str(info.value)
        assert "proxy" in message and "tinyproxy" in message
        assert "Upgrade" in message


def test_bad_proxy_urls_fail_before_any_traffic() -> None:
    for bad in ("https://p:3128", "socks5://p:1080", "http://p:3128/path", "http://:3128"):
        with pytest.raises(ValueError, match="bad proxy URL"):
            client(proxy=bad)
    with pytest.raises(ValueError) as info:
        client(proxy="ftp://u:topsecret@p:21")
    assert "topsecret" not in str(info.value)
