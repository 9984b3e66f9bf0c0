"""What a user behind a proxy reads, and the proxy URLs they really write (PROTOCOL.md 17.1).

Real sockets: a real rdv server, tinyproxy where it can do the job, else the small
CONNECT proxy of tests/proxy_support.py.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path

import pytest

from rdv_core.client import _proxy
from rdv_core.errors import ServerConnectError
from rdv_core.events import Event, ServerConnected
from rdv_core.server._core import RdvServer
from rdv_core.server._native import start_native
from rdv_core.wire import AddrSpace

from tests.proxy_support import connect_proxy, tinyproxy
from tests.race_support import client, exchange, of, pair
from tests.test_client_race import make_cert


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


async def test_an_https_server_through_the_env_proxy_keeps_tls_inside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``https://`` takes HTTPS_PROXY (not HTTP_PROXY, here a dead port), and TLS to the
    server runs end to end inside the tinyproxy tunnel, relay included."""
    cert, key = make_cert(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    server = RdvServer()
    front = await start_native(server, host="127.0.0.1", port=0, ssl=server_context)
    trust = ssl.create_default_context(cafile=str(cert))
    try:
        with tinyproxy(tmp_path) as proxy:
            monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
            monkeypatch.setenv("https_proxy", proxy.url)
            events: list[Event] = []
            d, a = await pair(
                front.url,
                client(events, spaces=AddrSpace.NONE, ssl_context=trust),
                client(spaces=AddrSpace.NONE, ssl_context=trust),
            )
            async with d, a:
                assert d.is_relay and a.is_relay
                await exchange(d, a)
            connected = of(events, ServerConnected)[0]
            assert connected.proxy == proxy.url and connected.tls
            assert f"127.0.0.1:{front.url.rsplit(':', 1)[1].rstrip('/')}" in proxy.log_text()
    finally:
        await server.close()
        await front.close()


async def test_a_proxy_that_closes_mid_answer_is_named(url: str) -> None:
    """Half a status line, then a close: the error names the proxy, not the server."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 Conn")
        await writer.drain()
        writer.close()

    proxy_server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = proxy_server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ServerConnectError) as info:
            await client(spaces=AddrSpace.NONE, proxy=f"http://127.0.0.1:{port}").dial(url, "t")
        assert str(info.value) == (
            f"the proxy http://127.0.0.1:{port} closed the connection before answering CONNECT"
        )
    finally:
        proxy_server.close()
        await proxy_server.wait_closed()


async def test_a_proxy_that_drops_the_syn_is_named_in_seconds(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listener with a full backlog drops further SYNs, as a firewall in front of a
    wrong proxy address does. Before, the attempt waited for the kernel's SYN retries
    (about 2 minutes; no --timeout by default); now the proxy gets PROXY_CONNECT_TIMEOUT."""
    monkeypatch.setattr(_proxy, "PROXY_CONNECT_TIMEOUT", 0.3)
    with socket.socket() as listener, socket.socket() as queued:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        queued.connect(("127.0.0.1", port))  # fills the backlog: the next SYN is dropped
        monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:1")
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        async with asyncio.timeout(1.5):
            with pytest.raises(ServerConnectError) as info:
                await client(spaces=AddrSpace.NONE, timeout=None).dial(url, "t")
    assert str(info.value).startswith(
        f"cannot connect to the proxy http://127.0.0.1:{port} (from HTTP_PROXY): "
        "no answer within 0.3 s"
    )


async def test_a_proxy_that_takes_only_kerberos_or_ntlm_says_so(url: str) -> None:
    """An office proxy that offers Negotiate and NTLM only: a password in the URL cannot
    help (rdv sends Basic), so the words point at a local logging-in proxy instead."""
    async with connect_proxy(
        auth=("alice", "pw"), challenges=("Negotiate", 'NTLM, Digest realm="x", qop="auth"')
    ) as port:
        with pytest.raises(ServerConnectError) as info:
            await client(spaces=AddrSpace.NONE, proxy=f"http://127.0.0.1:{port}").dial(url, "t")
    message = str(info.value)
    assert "the proxy wants Negotiate or NTLM or Digest login, which rdv cannot do" in message
    assert "cntlm" in message and "put them in" not in message
