"""What an operator reads from ``rdv serve``: its settings at start, and a deployment's mistakes.

Before: the start-up log listed the lobby timeout and the caps, and nothing of the trusted
proxy networks, ``--proxy-protocol``, TLS, the doctor's ports, the drain, the idle and
silence limits. And a balancer that sent PROXY headers to a server that does not read them
(or to its TLS port), a balancer outside ``--trust-proxy``, a trusted proxy that forwards no
client address: every client failed, and the log said nothing at the default level (the
``Rejected`` events are logged at ``-v`` only); a PROXY v1 header alone waited out the 30 s
head timeout. Real ``rdv serve`` processes, real sockets on loopback.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rdv_core.wire import Addr, build_proxy_v1, build_proxy_v2

from tests.test_server_cli import Served, rdv_serve
from tests.test_server_tls import make_cert

SOURCE, DESTINATION = Addr.parse("192.0.2.1:40000"), Addr.parse("192.0.2.2:8080")


async def _start_lines(served: Served, count: int) -> list[str]:
    assert served.process.stderr is not None
    async with asyncio.timeout(10):
        return [(await served.process.stderr.readline()).decode() for _ in range(count)]


async def test_the_start_up_log_says_what_was_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RDV_RELAY_SILENCE", "45")
    args = ["--trust-proxy", "10.0.0.0/8", "::1/128", "--proxy-protocol", "--drain", "7"]
    async with rdv_serve([*args, "--idle-timeout", "300"]) as served:
        limits, front = await _start_lines(served, 2)
        assert await served.stop() == 0
    assert "lobby timeout 600s, caps: 10000 in all" in limits, limits
    assert front.endswith(
        f"INFO rdv.server: bound to 127.0.0.1:{served.port}; trusted proxies 10.0.0.0/8, "
        "::1/128 (their forwarding headers name the client); PROXY protocol read from the "
        "trusted proxies; TLS off (plain HTTP); doctor probe ports none, dial-back off; "
        "drain 7s on a stop signal; pairs: idle timeout 300s, relay silence limit 45s "
        "(RDV_RELAY_SILENCE)\n"
    ), front


async def test_the_start_up_settings_in_json_with_tls(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    args = ["--json-logs", "--tls-cert", str(cert), "--tls-key", str(key), "--dial-back"]
    async with rdv_serve(args) as served:
        limits, front = (json.loads(line) for line in await _start_lines(served, 2))
        assert await served.stop() == 0
    assert limits["lobby_timeout_s"] == 600 and limits["max_lobby_per_address"] == 100
    assert f"TLS {cert} (plain HTTP to port {served.port} gets 400)" in front["msg"]
    fields = {k: front[k] for k in front if k not in ("ts", "level", "logger", "msg")}
    assert fields == {
        "bound": [f"127.0.0.1:{served.port}"],
        "trust_proxy": [],
        "proxy_protocol": False,
        "tls_cert": str(cert),
        "probe_ports": [],
        "dial_back": True,
        "drain_s": 0.0,
        "idle_timeout_s": None,
        "relay_silence_s": 30.0,
    }


def test_a_relay_silence_limit_that_is_not_seconds_is_refused() -> None:
    # It was taken as the default 30 s without a word ("0" and "-1" too: one code path).
    value = "2m"
    result = subprocess.run(
        [sys.executable, "-m", "rdv_tui", "serve", "--listen", "127.0.0.1:0"],
        env={**os.environ, "RDV_RELAY_SILENCE": value},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"rdv serve: RDV_RELAY_SILENCE={value!r} is not a number of seconds above 0 "
        "(unset it for the default, 30)"
    ]


async def _exchange(port: int, data: bytes, source: str = "127.0.0.1") -> bytes:
    """Send ``data`` and read until the server closes; within 5 s (the head timeout: 30)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        writer.write(data)
        async with asyncio.timeout(5):
            try:
                return await reader.read()
            except ConnectionResetError:  # closed with the header's bytes unread
                return b""
    finally:
        writer.close()


def _warnings(served: Served) -> list[str]:
    return [line.split(": ", 1)[1] for line in served.stderr_lines if " WARNING " in line]


async def test_a_balancer_in_front_of_a_server_without_proxy_flags() -> None:
    async with rdv_serve([]) as served:
        started = time.monotonic()
        alone = await _exchange(served.port, build_proxy_v1(SOURCE, DESTINATION))
        waited = time.monotonic() - started
        v2 = await _exchange(served.port, build_proxy_v2(SOURCE, DESTINATION))
        # A reverse proxy's forwarding headers, and no --trust-proxy: not believed.
        forwarded = await _exchange(
            served.port,
            b"GET /.rdv/observed HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 192.0.2.1\r\n"
            b"X-Forwarded-Port: 40000\r\nConnection: close\r\n\r\n",
        )
        assert await served.stop() == 0
    assert alone.startswith(b"HTTP/1.1 400 Bad Request\r\n") and waited < 2, (alone, waited)
    assert v2.startswith(b"HTTP/1.1 400 Bad Request\r\n"), v2
    assert forwarded.startswith(b"HTTP/1.1 200 OK\r\n") and b"192.0.2.1" not in forwarded
    assert _warnings(served) == [
        "a PROXY protocol header arrived from 127.0.0.1 and this server does not read it "
        "(answered 400): start rdv serve with --proxy-protocol --trust-proxy <the balancer's "
        "network>, or take send-proxy off the balancer",
        # once: the second within the minute is counted for the next warning
        "a request from 127.0.0.1 carried X-Forwarded-For or X-Real-IP, and 127.0.0.1 is not "
        "in --trust-proxy: the headers are ignored and the client is told 127.0.0.1 is its "
        "address; if 127.0.0.1 is your reverse proxy, add its address to --trust-proxy",
    ]


async def test_a_proxy_header_to_the_tls_port(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    async with rdv_serve(["--tls-cert", str(cert), "--tls-key", str(key)]) as served:
        hello = b"\x16\x03\x01\x00\x05hello"
        assert await _exchange(served.port, build_proxy_v2(SOURCE, DESTINATION) + hello) == b""
        assert await served.stop() == 0
    assert _warnings(served) == [
        "a PROXY protocol header arrived on the TLS port from 127.0.0.1 (closed): rdv does not "
        "read one before TLS; terminate TLS at the balancer and run rdv serve --proxy-protocol "
        "without --tls-cert, or take send-proxy off the balancer"
    ]


async def test_a_balancer_outside_trust_two_in_a_row_and_one_naming_no_client() -> None:
    async with rdv_serve(["--proxy-protocol", "--trust-proxy", "127.0.0.2/32"]) as served:
        header = build_proxy_v1(SOURCE, DESTINATION)
        stranger = await _exchange(served.port, header + b"GET /healthz HTTP/1.1\r\n\r\n")
        assert stranger.startswith(b"HTTP/1.1 400 Bad Request\r\n"), stranger
        # Two balancers in a row, each sending one: the second header is refused as such.
        twice = await _exchange(served.port, header + header + b"GET / HTTP/1.1\r\n", "127.0.0.2")
        assert twice.startswith(b"HTTP/1.1 400 Bad Request\r\n"), twice
        # From the trusted balancer, a request without a PROXY header or forwarding headers
        # (the doctor's, answered at once; an rdv request's observed address is found so).
        probe = b"GET /.rdv/observed HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        answer = await _exchange(served.port, probe, source="127.0.0.2")
        assert answer.endswith(b"\r\n\r\nno observed address for this conn\n"), answer
        assert await served.stop() == 0
    assert _warnings(served) == [
        "a PROXY protocol header arrived from 127.0.0.1, outside --trust-proxy (answered 400): "
        "if 127.0.0.1 is your balancer, add its network to --trust-proxy",
        "a second PROXY protocol header arrived on a conn whose first one named 192.0.2.1 "
        "(answered 400): two balancers in a row each send one; the inner one must read the "
        "outer's (HAProxy accept-proxy) instead of passing it on",
        "a request from 127.0.0.2, inside --trust-proxy, named no client (no PROXY header, no "
        "X-Forwarded-For or X-Real-IP with the client's port): it gets no Rdv-Observed-Addr "
        "and peers behind NATs will not connect directly; have the balancer send "
        "X-Forwarded-For and X-Forwarded-Port $remote_port, or a PROXY header (send-proxy) "
        "with rdv serve --proxy-protocol",
    ]
