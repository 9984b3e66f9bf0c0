"""What a user behind a proxy reads, and the proxy URLs they really write (PROTOCOL.md 17.1).

Real sockets: a real rdv server, tinyproxy where it can do the job, else the small
CONNECT proxy of tests/proxy_support.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rdv_core.errors import ServerConnectError
from rdv_core.events import Event, ServerConnected
from rdv_core.wire import AddrSpace

from tests.proxy_support import connect_proxy, tinyproxy
from tests.race_support import client, exchange, of, pair


@pytest.fixture(autouse=True)
def _no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUEST_METHOD"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


async def test_a_password_with_bare_specials_works_and_never_leaks(url: str) -> None:
    """``http://alice:pa#ss/w?rd@proxy`` (unencoded, as people paste them) reaches the proxy
    with that password; before, the URL parser cut it at ``#`` and its error quoted the
    first piece of the password (``Port could not be cast to integer value as 'pa'``)."""
    async with connect_proxy(auth=("alice", "pa#ss/w?rd"), version="HTTP/1.0") as port:
        proxy = f"http://alice:pa#ss/w?rd@127.0.0.1:{port}"
        events: list[Event] = []
        d, a = await pair(
            url,
            client(events, spaces=AddrSpace.NONE, proxy=proxy),
            client(spaces=AddrSpace.NONE, proxy=proxy),
        )
        try:
            assert d.is_relay and a.is_relay  # through an HTTP/1.0 proxy's tunnel too
            await exchange(d, a)
        finally:
            d.writer.close()
            a.writer.close()
        assert of(events, ServerConnected)[0].proxy == f"http://alice:***@127.0.0.1:{port}"
    with pytest.raises(ValueError, match="bad proxy URL") as info:
        client(proxy="http://alice:pa#ss@127.0.0.1:99999")
    assert "pa" not in str(info.value).replace("alice:***", "")


async def test_a_407_from_an_env_proxy_says_what_to_set(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tinyproxy(tmp_path, auth=("alice", "s3cret")) as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        with pytest.raises(ServerConnectError) as info:
            await client(spaces=AddrSpace.NONE).dial(url, "t1")
        message = str(info.value)
        assert f"the proxy http://127.0.0.1:{proxy.port} (from HTTP_PROXY) answered 40" in message
        assert "the proxy wants credentials: put them in HTTP_PROXY as" in message
        assert "http://user:password@host:port" in message and "%40" in message

        monkeypatch.setenv("http_proxy", f"http://alice:n0p3@127.0.0.1:{proxy.port}")
        with pytest.raises(ServerConnectError) as info:
            await client(spaces=AddrSpace.NONE).dial(url, "t2")
        message = str(info.value)
        assert "refused the credentials of user 'alice'" in message and "http_proxy" in message
        assert "n0p3" not in message


async def test_an_unreachable_proxy_says_connection_refused(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: ``cannot connect to the proxy http://127.0.0.1:9: Connect call failed
    ('127.0.0.1', 9)``, asyncio's words, not the reason."""
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    with pytest.raises(ServerConnectError) as info:
        await client(spaces=AddrSpace.NONE).dial(url, "t")
    message = str(info.value)
    assert "cannot connect to the proxy http://127.0.0.1:9 (from ALL_PROXY)" in message
    assert "connection refused" in message and "Connect call failed" not in message


async def test_a_bad_proxy_url_in_the_environment_names_the_variable(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.corp:31a8")
    with pytest.raises(ValueError, match=r"^HTTP_PROXY: bad proxy URL .*unset HTTP_PROXY"):
        await client(spaces=AddrSpace.NONE).dial(url, "t")


async def test_no_proxy_star_dot_domain_goes_direct(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``NO_PROXY=*.localhost`` (Go's and Node's spelling) exempts ``localhost``; before,
    the entry matched nothing and the dial went to the (here dead) proxy."""
    named = url.replace("127.0.0.1", "localhost")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "*.localhost")
    events: list[Event] = []
    d, a = await pair(named, client(events, spaces=AddrSpace.NONE), client(spaces=AddrSpace.NONE))
    d.writer.close()
    a.writer.close()
    assert of(events, ServerConnected)[0].proxy is None
