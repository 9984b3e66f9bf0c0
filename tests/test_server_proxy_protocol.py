"""The native front with PROXY protocol on (docs/PROTOCOL.md section 14): the header names
the client for trusted balancers only; from anyone else it is refused."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import pytest

from rdv_core.events import Event, PeerJoined, Rejected
from rdv_core.server._core import RdvServer
from rdv_core.server._native import start_native
from rdv_core.server._observed import make_observed_addr
from rdv_core.wire import Addr, build_proxy_v1, build_proxy_v2
from rdv_tui.cli.commands import serve as serve_command

from tests.server_support import EOF, Env, parse_head, rdv_request

CLIENT_D = Addr.parse("203.0.113.7:40122")
CLIENT_A = Addr.parse("[2001:db8::9]:51812")
BALANCER_SIDE = Addr.parse("192.0.2.1:443")
BALANCER_SIDE6 = Addr.parse("[2001:db8::1]:443")


@asynccontextmanager
async def proxied_server(networks: Sequence[str], trust: Sequence[str] = ()) -> AsyncIterator[Env]:
    events: list[Event] = []
    server = RdvServer(on_event=events.append, observed_addr=make_observed_addr(trust))
    front = await start_native(server, "127.0.0.1", 0, proxy_protocol=networks)
    try:
        yield Env("native", server, front.port, "", events)
    finally:
        await server.close()
        await front.close()


def observed(head: bytes) -> str | None:
    return parse_head(head)[1].get("rdv-observed-addr")


async def test_trusted_headers_name_the_clients_v1_and_v2_split_bytewise() -> None:
    async with proxied_server(["127.0.0.0/8"]) as env:
        accept = build_proxy_v2(CLIENT_A, BALANCER_SIDE6) + rdv_request("ACCEPT", "/tok")
        accepter = await env.connect()
        for i in range(len(accept)):
            accepter.send(accept[i : i + 1])
            await accepter.writer.drain()
        await env.wait_lobby(1)
        # Forwarding headers after a PROXY header are not consulted: the header is the address.
        dial = build_proxy_v1(CLIENT_D, BALANCER_SIDE) + rdv_request(
            "DIAL", "/tok", headers=[("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-Port", "6")]
        )
        dialer = await env.raw(dial)
        head_d, head_a = await dialer.read_head(), await accepter.read_head()
        assert observed(head_d) == str(CLIENT_D)
        assert observed(head_a) == str(CLIENT_A)
        assert parse_head(head_d)[1]["rdv-peer-addrs"] == str(CLIENT_A)
        joins = [e for e in env.events if isinstance(e, PeerJoined)]
        assert [(j.remote, j.observed_addr) for j in joins] == [
            (str(CLIENT_A), str(CLIENT_A)),
            (str(CLIENT_D), str(CLIENT_D)),
        ]
        await dialer.close()
        await accepter.close()


async def test_keep_alive_requests_keep_the_headers_address() -> None:
    async with proxied_server(["127.0.0.1/32"]) as env:
        client = await env.raw(
            build_proxy_v2(CLIENT_D, BALANCER_SIDE)
            + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            + rdv_request("ACCEPT", "/k")
        )
        status, _, body = await client.read_response()
        assert (status, body) == (200, b"ok\n")
        await env.wait_lobby(1)
        dialer = await env.request("DIAL", "k")
        await dialer.read_head()
        assert observed(await client.read_head()) == str(CLIENT_D)
        await dialer.close()
        await client.close()


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(build_proxy_v2(None, None, command="local"), id="v2-local"),
        pytest.param(build_proxy_v1(None, None), id="v1-unknown"),
        pytest.param(b"", id="none"),
    ],
)
async def test_headers_naming_no_client_keep_the_usual_rules(header: bytes) -> None:
    # A health check (LOCAL), UNKNOWN or no header: the TCP peer, read by the usual rules
    # (here forwarding headers from a trusted 127.0.0.1, as nginx in http mode sends them).
    async with proxied_server(["127.0.0.1/32"], trust=["127.0.0.1/32"]) as env:
        healthz = await env.raw(header + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await healthz.read_response())[0] == 200
        accepter = await env.raw(
            header
            + rdv_request(
                "ACCEPT",
                "/u",
                headers=[("X-Forwarded-For", "198.51.100.4"), ("X-Forwarded-Port", "9")],
            )
        )
        await env.wait_lobby(1)
        dialer = await env.request("DIAL", "u")
        await dialer.read_head()
        assert observed(await accepter.read_head()) == "198.51.100.4:9"
        for client in (healthz, accepter, dialer):
            await client.close()


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(build_proxy_v1(CLIENT_D, BALANCER_SIDE), id="v1"),
        pytest.param(build_proxy_v2(CLIENT_D, BALANCER_SIDE), id="v2"),
        pytest.param(build_proxy_v2(None, None, command="local"), id="v2-local"),
    ],
)
async def test_header_from_a_stranger_is_refused(header: bytes) -> None:
    async with proxied_server(["10.0.0.0/8"]) as env:
        client = await env.raw(header + rdv_request("DIAL", "/s"))
        answer = await client.read_until_eof()
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer
        assert env.server.stats().lobby == 0
        rejected = [e for e in env.events if isinstance(e, Rejected)]
        assert [(r.status, r.reason, r.remote.split(":")[0]) for r in rejected] == [
            (400, "PROXY header from an untrusted address", "127.0.0.1")
        ]
        # The same stranger without a header is served, with its own address.
        accepter = await env.request("ACCEPT", "s")
        await env.wait_lobby(1)
        dialer = await env.request("DIAL", "s")
        head = await dialer.read_head()
        assert observed(head) == dialer.local
        await accepter.close()
        await dialer.close()


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", id="v1-bare-lf"),
        pytest.param(b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", id="v1-family"),
        pytest.param(b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff", id="v2-oversized"),
    ],
)
async def test_malformed_header_from_a_balancer_is_refused(raw: bytes) -> None:
    async with proxied_server(["127.0.0.1/32"]) as env:
        client = await env.raw(raw + rdv_request("DIAL", "/m"))
        answer = await client.read_until_eof()
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer
        assert env.server.stats().lobby == 0


async def test_without_proxy_protocol_a_header_is_a_bad_request() -> None:
    server = RdvServer()
    front = await start_native(server, "127.0.0.1", 0)
    try:
        env = Env("native", server, front.port, "")
        client = await env.raw(build_proxy_v1(CLIENT_D, BALANCER_SIDE) + rdv_request("DIAL", "/x"))
        answer = await client.read_for(2)
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n") and answer.endswith(EOF.encode())
        assert server.stats().lobby == 0
    finally:
        await server.close()
        await front.close()


async def test_proxy_protocol_with_tls_is_refused() -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with pytest.raises(ValueError, match="terminate TLS"):
        await start_native(RdvServer(), "127.0.0.1", 0, ssl=context, proxy_protocol=["127.0.0.1"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--proxy-protocol"], "needs --trust-proxy"),
        (
            ["--proxy-protocol", "--trust-proxy", "127.0.0.1", "--tls-cert", "c", "--tls-key", "k"],
            "terminate TLS at the balancer",
        ),
    ],
)
def test_cli_refuses_proxy_protocol_misuse(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Refused before anything listens: the real entry point, in this process.
    assert serve_command.main(["--listen", "127.0.0.1:0", *args]) == 2
    assert message in capsys.readouterr().err
