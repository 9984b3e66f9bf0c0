"""The observed address: TCP peer by default, forwarding headers only from trusted proxies."""

from __future__ import annotations

import pytest

from rdv_core.server._core import RdvServer
from rdv_core.server._native import start_native
from rdv_core.server._observed import TrustedProxies, make_observed_addr, peer_address
from rdv_core.wire import Addr

from tests.server_support import Env


def headers(**values: str) -> object:
    table = {k.replace("_", "-").lower(): v for k, v in values.items()}
    return lambda name: table.get(name.lower())


PROXY = Addr.parse("10.0.0.5:40000")
STRANGER = Addr.parse("198.51.100.9:5555")
trusted = TrustedProxies(["10.0.0.0/8", "::1/128"])

CASES = [
    pytest.param(
        STRANGER,
        {"X_Forwarded_For": "1.2.3.4", "X_Forwarded_Port": "7"},
        "198.51.100.9:5555",
        id="untrusted-headers-ignored",
    ),
    pytest.param(
        PROXY,
        {"X_Forwarded_For": "1.2.3.4", "X_Forwarded_Port": "7"},
        "1.2.3.4:7",
        id="xff-and-port",
    ),
    pytest.param(
        PROXY,
        {"X_Forwarded_For": "::ffff:1.2.3.4", "X_Forwarded_Port": "7"},
        "1.2.3.4:7",
        id="xff-mapped-unmapped",
    ),
    pytest.param(PROXY, {"X_Forwarded_For": "1.2.3.4:999"}, "1.2.3.4:999", id="xff-with-port"),
    pytest.param(
        PROXY, {"X_Forwarded_For": "[2001:db8::7]:80"}, "[2001:db8::7]:80", id="xff-v6-with-port"
    ),
    pytest.param(
        PROXY,
        {"X_Forwarded_For": "6.6.6.6, 1.2.3.4, 10.1.1.1", "X_Forwarded_Port": "9, 8, 7"},
        "1.2.3.4:8",
        id="rightmost-untrusted-aligned-ports",
    ),
    pytest.param(
        PROXY,
        {"X_Forwarded_For": "1.2.3.4, 10.1.1.1", "X_Forwarded_Port": "7"},
        None,
        id="port-of-another-hop",
    ),
    pytest.param(PROXY, {"X_Forwarded_For": "1.2.3.4"}, None, id="no-port-unknown"),
    pytest.param(
        PROXY, {"X_Forwarded_For": "garbage", "X_Forwarded_Port": "7"}, None, id="bad-xff"
    ),
    pytest.param(
        PROXY, {"X_Forwarded_For": "1.2.3.4", "X_Forwarded_Port": "99999"}, None, id="bad-port"
    ),
    pytest.param(PROXY, {"X_Real_IP": "1.2.3.4", "X_Real_Port": "7"}, "1.2.3.4:7", id="real-ip"),
    pytest.param(
        PROXY,
        {"X_Real_IP": "1.2.3.4", "X_Forwarded_Port": "8"},
        "1.2.3.4:8",
        id="real-ip-forwarded-port",
    ),
    pytest.param(PROXY, {"X_Real_IP": "1.2.3.4"}, None, id="real-ip-no-port"),
    pytest.param(PROXY, {}, None, id="trusted-proxy-without-headers"),
    pytest.param(
        Addr.parse("[::ffff:10.0.0.5]:1"),
        {"X_Real_IP": "1.2.3.4", "X_Real_Port": "7"},
        "1.2.3.4:7",
        id="mapped-proxy-trusted",
    ),
    pytest.param(
        Addr.parse("[::1]:1"),
        {"X_Forwarded_For": "10.9.9.9", "X_Forwarded_Port": "5"},
        "10.9.9.9:5",
        id="only-trusted-hops-leftmost",
    ),
]


@pytest.mark.parametrize(("remote", "hdrs", "expected"), CASES)
def test_trusted_proxies(remote: Addr, hdrs: dict[str, str], expected: str | None) -> None:
    got = trusted(remote, headers(**hdrs))  # type: ignore[arg-type]
    assert (None if got is None else str(got)) == expected


def test_default_is_tcp_peer_unmapped() -> None:
    assert str(peer_address(Addr.parse("[::ffff:1.2.3.4]:5"), lambda _: "9.9.9.9")) == "1.2.3.4:5"
    assert peer_address(None, lambda _: None) is None
    assert make_observed_addr([]) is peer_address
    with pytest.raises(ValueError):
        make_observed_addr(["not-a-net"])


async def test_forwarded_headers_through_the_native_front() -> None:
    server = RdvServer(observed_addr=make_observed_addr(["127.0.0.0/8"]))
    front = await start_native(server)
    try:
        env = Env("native", server, front.port, "")
        accepter = await env.request(
            "ACCEPT",
            "fw",
            headers=[("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Port", "4242")],
        )
        await env.wait_lobby(1)
        dialer = await env.request("DIAL", "fw", headers=[("X-Real-IP", "203.0.113.8")])
        head_d = await dialer.read_head()
        head_a = await accepter.read_head()
        # D's proxy sent no port: its observed address is unknown and omitted.
        assert b"Rdv-Observed-Addr" not in head_d
        assert b"Rdv-Peer-Addrs: 203.0.113.7:4242\r\n" in head_d
        assert b"Rdv-Observed-Addr: 203.0.113.7:4242\r\n" in head_a
        assert b"Rdv-Peer-Addrs: \r\n" in head_a
    finally:
        await server.close()
        await front.close()
