"""The doctor's server routes on loopback, both fronts: answers, limits and bad input.

docs/PROTOCOL.md section 15.1: ``/.rdv/observed``, ``/.rdv/probes``, ``/.rdv/dial-back``; the
dial-back goes to the request's own address only, and is rate-limited per IP and globally.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
from pathlib import Path

import pytest

from rdv_core.client._sockets import bound_socket, local_port
from rdv_core.doctor import LABELS, Doctor, render_text, run_doctor, summary
from rdv_core.server._probes import DIALBACK_PER_IP_BURST, PROBE_BURST
from rdv_core.wire import parse_dial_back, parse_directory, parse_observed

from tests.doctor_support import probe_server

FRONTS = ("native", "aiohttp")


@pytest.mark.parametrize("kind", FRONTS)
async def test_observed_and_discovery(kind: str) -> None:
    async with probe_server(kind, probe_ports=2) as env:
        status, _, body = await env.get(
            "/.rdv/observed", headers=[("Connection", "Upgrade"), ("Upgrade", "rdv-probe/1")]
        )
        assert status == 200
        observed = parse_observed(body)
        assert str(observed.observed.ip) == "127.0.0.1"
        assert observed.port == env.port
        assert observed.upgrade == "rdv-probe/1"
        status, _, body = await env.get("/.rdv/probes")
        assert status == 200
        directory = parse_directory(body)
        assert directory.probe_ports == tuple(env.probe_ports) and directory.dial_back
        for port in env.probe_ports:
            status, _, body = await env.get("/.rdv/observed", port=port)
            assert status == 200 and parse_observed(body).port == port
            # A probe port speaks nothing else.
            status, _, _ = await env.get("/healthz", port=port)
            assert status == 404


@pytest.mark.parametrize("kind", FRONTS)
async def test_dial_back_reaches_the_listener_with_the_nonce(kind: str) -> None:
    async with probe_server(kind) as env:
        loop = asyncio.get_running_loop()
        listener = bound_socket(socket.AF_INET, 0, "127.0.0.1")
        listener.listen(4)
        port = local_port(listener)
        conn = bound_socket(socket.AF_INET, port, "127.0.0.1")
        try:
            await loop.sock_connect(conn, ("127.0.0.1", env.port))
            nonce = secrets.token_hex(16)
            request = f"GET /.rdv/dial-back?nonce={nonce} HTTP/1.1\r\nHost: x\r\n\r\n"
            await loop.sock_sendall(conn, request.encode())
            inbound, _ = await asyncio.wait_for(loop.sock_accept(listener), 5)
            with inbound:
                greeting = await asyncio.wait_for(loop.sock_recv(inbound, 200), 5)
            assert greeting == f"RDV-DIALBACK {nonce}\n".encode()
            data = b""
            while b"}\n" not in data:
                data += await asyncio.wait_for(loop.sock_recv(conn, 4096), 5)
            result = parse_dial_back(data.partition(b"\r\n\r\n")[2])
            assert result.result == "syn-ack"
            assert result.target.port == port and result.from_port != env.port
        finally:
            conn.close()
            listener.close()


@pytest.mark.parametrize("kind", FRONTS)
async def test_dial_back_to_nobody_is_a_reset_and_a_liar_is_ignored(kind: str) -> None:
    async with probe_server(kind) as env:
        # Nothing listens on the client's port: loopback answers the SYN with RST. The forged
        # X-Forwarded-For (no trusted proxy) changes nothing: the target is the TCP peer.
        status, body = await env.get_json(
            f"/.rdv/dial-back?nonce={secrets.token_hex(8)}",
            headers=[("X-Forwarded-For", "198.51.100.7"), ("X-Real-IP", "198.51.100.7")],
        )
        assert status == 200, body
        assert body["result"] == "rst" and body["target"].startswith("127.0.0.1:")


@pytest.mark.parametrize("kind", FRONTS)
async def test_dial_back_refuses_foreign_targets_and_bad_nonces(kind: str) -> None:
    async with probe_server(kind) as env:
        nonce = secrets.token_hex(8)
        for query in (
            f"nonce={nonce}&target=198.51.100.7:80",
            f"nonce={nonce}&port=22",
            "nonce=XYZ",
            "nonce=" + "a" * 65,
            f"nonce={nonce}&nonce={nonce}",
            "",
        ):
            status, body = await env.get_json(f"/.rdv/dial-back?{query}")
            assert status == 400, (query, body)
        assert env.service.dial_backs == 0
    async with probe_server(kind, dial_back=False) as env:
        status, body = await env.get_json(f"/.rdv/dial-back?nonce={nonce}")
        assert status == 404 and "off" in body
        assert env.service.dial_backs == 0


@pytest.mark.parametrize("kind", FRONTS)
async def test_dial_back_rate_limits(kind: str) -> None:
    async with probe_server(kind) as env:

        async def one() -> int:
            status, _ = await env.get_json(f"/.rdv/dial-back?nonce={secrets.token_hex(8)}")
            return status

        # Concurrent requests from one IP: one at a time, the rest 429 at once.
        statuses = await asyncio.gather(*(one() for _ in range(6)))
        assert statuses.count(200) <= DIALBACK_PER_IP_BURST
        assert statuses.count(429) >= 6 - DIALBACK_PER_IP_BURST
        # One after the other: the burst, then 429 with Retry-After.
        later = [await one() for _ in range(4)]
        assert later[-1] == 429
        status, headers, _ = await env.get(f"/.rdv/dial-back?nonce={secrets.token_hex(8)}")
        assert status == 429 and int(headers["retry-after"]) >= 1
        assert env.service.dial_backs <= DIALBACK_PER_IP_BURST


@pytest.mark.parametrize("kind", FRONTS)
async def test_probe_flood_is_limited_and_the_server_keeps_working(kind: str) -> None:
    async with probe_server(kind) as env:
        reader, writer = await asyncio.open_connection("127.0.0.1", env.port)
        count = int(PROBE_BURST) + 60
        request = b"GET /.rdv/observed HTTP/1.1\r\nHost: x\r\n\r\n"
        writer.write(request * count)  # pipelined on one conn
        statuses: list[int] = []
        try:
            async with asyncio.timeout(10):
                while len(statuses) < count:
                    line = await reader.readline()
                    if line.startswith(b"HTTP/1.1 "):
                        statuses.append(int(line.split()[1]))
        finally:
            writer.close()
        assert statuses.count(429) >= count - PROBE_BURST - 10
        assert statuses.count(200) <= PROBE_BURST + 10
        assert env.service.refused >= count - PROBE_BURST - 10
        # rdv itself is untouched by the probe limit.
        status, _, _ = await env.get("/healthz" if kind == "native" else "/.rdv/probes")
        assert status in (200, 429)


async def test_doctor_against_a_server_without_probe_routes_says_not_measured() -> None:
    async with probe_server("native", probes=False) as env:
        report = await run_doctor([env.url])
    server = report.servers[0]
    assert server.tcp4.value is True and server.rtt_ms is not None
    for name in ("mapping", "filtering", "allocation", "upgrade"):
        assert report.value(name) is None, name
        assert report.finding(name).reason
    assert "no doctor routes" in server.dial_back.reason


@pytest.mark.parametrize("kind", FRONTS)
async def test_doctor_on_loopback(kind: str) -> None:
    async with probe_server(kind, probe_ports=2) as env:
        report = await run_doctor([env.url])
    assert report.value("nat") is False
    assert report.value("mapping") == "none"
    assert report.value("port_preserved") is True
    assert report.value("allocation") == "preserved"
    assert report.value("filtering") == "open"
    assert report.value("upgrade") is True
    assert report.value("hairpin") is None
    assert len(report.samples) == 3 and len(report.fresh) == 4
    assert report.servers[0].probe_ports == tuple(env.probe_ports)


async def test_doctor_with_an_unreachable_server() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nobody listens there
    report = await run_doctor([f"http://127.0.0.1:{port}"])
    assert report.servers[0].tcp4.value is False
    assert report.value("nat") is None and report.finding("nat").reason
    # The first line a user reads says the server did not answer, and why; not that the
    # server "could not tell us our address", as if it had answered.
    said = summary(report)
    assert said.startswith("No rdv server could be reached (TCP to 127.0.0.1:"), said
    assert "connection refused" in said and "running" in said
    assert render_text(report).splitlines()[1] == said


async def test_rdv_doctor_command() -> None:
    from tests.test_session_cli import rdv

    async with probe_server("native") as env:
        code, out, err = await rdv("doctor", env.url, "--format", "json")
        assert code == 0, err
        report = json.loads(out)  # one document on stdout, nothing else
        assert report["version"] == 1 and report["filtering"]["value"] == "open"
        code, out, _ = await rdv("doctor", env.url)
        assert code == 0 and "No NAT" in out and "filtering" in out
    code, _, err = await rdv("doctor", "ftp://nowhere")
    assert code == 2 and "http://" in err
    code, out, _ = await rdv("doctor", "http://127.0.0.1:1", "--format", "json-line")
    assert code == 1 and len(out.splitlines()) == 1
    assert json.loads(out)["servers"][0]["tcp4"]["value"] is False


async def test_rdv_doctor_without_a_server_says_how_to_name_one(tmp_path: Path) -> None:
    from tests.test_session_cli import rdv

    # No URL, no RDV_SERVER, no config file: the advice must be one the command takes
    # (`rdv doctor` has no --server flag; the URL is its argument).
    code, out, err = await rdv("doctor", env={"RDV_SERVER": "", "XDG_CONFIG_HOME": str(tmp_path)})
    assert code == 2 and out == ""
    assert "rdv doctor URL" in err and "--server" not in err and "RDV_SERVER" in err


@pytest.mark.parametrize("kind", FRONTS)
async def test_doctor_over_ipv6_only(kind: str) -> None:
    # An IPv6-only server (the host of an IPv6-only network): every finding is measured over
    # IPv6 from the shared port, the dial-back included (it arrives on our IPv6 listener).
    # Before, all but IPv6 and NAT66 said "not measured: no server reported our IPv4 address".
    async with probe_server(kind, host="::1", probe_ports=2) as env:
        report = await run_doctor([env.url])
    port = report.local_port
    assert report.value("nat") is False, report.finding("nat")
    assert report.finding("nat").reason == f"the server saw our own address [::1]:{port}"
    assert report.value("mapping") == "none"
    assert report.value("port_preserved") is True
    assert report.value("allocation") == "preserved"
    assert report.value("filtering") == "open", report.finding("filtering")
    assert f"to [::1]:{port} reached us" in report.finding("filtering").reason
    assert report.value("upgrade") is True
    assert report.value("ipv6") is True and report.value("nat6") is False
    assert report.finding("filtering6") == report.finding("filtering")  # the same dial-back
    server = report.servers[0]
    assert server.tcp6.value is True and server.tcp4.value is None
    assert server.observed == f"[::1]:{port}" and server.probe_ports == tuple(env.probe_ports)
    assert len(report.samples) == 3 and len(report.fresh) == 4
    assert summary(report) == "No NAT and no filter: peers can dial you directly."


async def test_doctor_with_ipv4_and_ipv6_servers_keeps_the_findings_on_ipv4() -> None:
    # The IPv6 server comes first and offers dial-back too; the filtering must still be
    # the one of the family the mapping was measured in (IPv4), through the IPv4 server.
    async with (
        probe_server("native", host="::1") as six,
        probe_server("native") as four,
    ):
        report = await run_doctor([six.url, four.url])
    port = report.local_port
    assert report.finding("nat").reason == f"the server saw our own address 127.0.0.1:{port}"
    assert f"to 127.0.0.1:{port} reached us" in report.finding("filtering").reason
    assert report.servers[0].dial_back.reason == "measured through another server"
    assert report.value("nat6") is False and report.value("allocation") == "preserved"
    # The IPv6 firewall has its own dial-back, to our IPv6 address on the same port.
    assert report.value("filtering6") == "open", report.finding("filtering6")
    assert f"to [::1]:{port} reached us" in report.finding("filtering6").reason
    # An IPv4 server alone: the IPv6 filter is not measured, and says why.
    async with probe_server("native") as four:
        alone = await run_doctor([four.url])
    assert alone.finding("filtering6").reason == "no server was reached over IPv6"


async def test_doctor_against_a_certificate_we_do_not_trust(tmp_path: Path) -> None:
    # TCP works, TLS does not (a self-signed certificate): the summary must say so, and the
    # probes that ride the TLS conn must not call the server "unreachable".
    import ssl

    from rdv_core.server import RdvServer, start_native

    from tests.test_server_tls import make_cert

    cert, key = make_cert(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = RdvServer()
    front = await start_native(server, ssl=context)
    try:
        report = await run_doctor([f"https://127.0.0.1:{front.port}"])
    finally:
        await server.close()
        await front.close()
    said = summary(report)
    assert said.startswith("TCP reached the server but TLS failed ("), said
    # In words, with what to do, not OpenSSL's "[SSL: ...] ... (_ssl.c:1006)".
    assert "its certificate is not trusted here (self-signed certificate" in said, said
    assert "set SSL_CERT_FILE" in said and "_ssl.c" not in said, said
    assert report.servers[0].tls.value is False
    assert not report.answered  # `rdv doctor` exits 1: nothing was measured against it
    for name in ("filtering", "upgrade"):
        assert report.finding(name).reason.startswith("TLS with the server failed"), name


@pytest.mark.parametrize("width", [60, 80])
async def test_the_text_report_wraps_to_a_terminal(width: int) -> None:
    async with probe_server("native") as env:
        report = await run_doctor([env.url])
    whole, wrapped = render_text(report), render_text(report, width)
    lines = wrapped.splitlines()
    assert max(len(line) for line in lines) <= width, wrapped
    assert whole.split() == wrapped.split()  # the same words, only the line breaks moved
    # A finding's reason continues under its own column, never at column 0.
    labels = [line for line in lines if line.startswith("  ") and not line.startswith("   ")]
    assert len([x for x in labels if x[2:13].strip() in LABELS.values()]) == len(LABELS)
    assert all(line.startswith(" " * 4) for line in lines[3:] if line and line not in labels), (
        wrapped
    )


async def test_one_server_named_twice_is_measured_once() -> None:
    # Before, the second conn from P to the same address was refused by the kernel (the same
    # 4-tuple) and the report said that server was unreachable.
    async with probe_server("native") as env:
        report = await run_doctor([env.url, env.url])
    assert [s.url for s in report.servers] == [env.url]
    assert report.servers[0].tcp4.value is True
    with pytest.raises(ValueError, match="at most 8 servers"):
        Doctor([f"http://127.0.0.1:{port}" for port in range(1, 10)])


async def test_doctor_against_a_server_that_answers_nothing() -> None:
    # It takes the conn and never answers (not an rdv server, or a middlebox holding it):
    # the summary says so instead of "the server could not tell us our address".
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    try:
        # A short wait: the user's 3 s were all of this test's time.
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        report = await run_doctor([url], http_timeout_s=0.3)
    finally:
        listener.close()
    said = summary(report)
    assert said.startswith("TCP reached the server but it answered nothing (no answer to GET"), said
    assert "within 0.3 s" in said, said
    assert report.servers[0].tcp4.value is True


async def test_a_url_without_the_servers_prefix_is_said_to_fail() -> None:
    """``rdv serve --prefix /rdv`` and ``rdv doctor http://host:port``: the doctor routes sit
    at the root whatever the prefix (docs/PROTOCOL.md 15.1), so it said "No NAT: direct conns
    work" and exited 0, and ``rdv dial`` with that URL then failed on 404."""
    from rdv_core.doctor._report import ServerCheck
    from rdv_core.server import ProbeService, RdvServer, start_native

    server = RdvServer()
    service = ProbeService(dial_back=False, observe=server.observe)
    front = await start_native(server, "127.0.0.1", 0, prefix="/rdv", probes=service)
    base = f"http://127.0.0.1:{front.port}"
    try:
        wrong = await run_doctor([base])
        right = await run_doctor([f"{base}/rdv"])
    finally:
        await server.close()
        await front.close()
    assert not wrong.answered  # rdv doctor exits 1
    assert summary(wrong) == (
        "The rdv server answers, but nothing serves rdv at this URL's path (404 to GET "
        "/rdv-doctor-path-check, where rdv answers 426): check it (rdv serve --prefix); "
        f"rdv dial with {base} fails, the findings below still hold."
    )
    assert wrong.value("nat") is False  # measured all the same
    assert right.answered and summary(right).startswith("No NAT"), summary(right)
    assert isinstance(right.servers[0], ServerCheck) and right.servers[0].http.value is True
