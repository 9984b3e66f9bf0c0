"""The doctor's dial-back behind the shipped balancers goes back to the client, nobody else.

docs/PROTOCOL.md sections 14 and 15.1. A client sends ``GET /.rdv/dial-back`` through the
real HAProxy or nginx of ``deploy/`` with forged ``X-Forwarded-For``/``X-Forwarded-Port``
(and ``X-Real-IP``) naming a victim: a counting listener on 127.0.0.2. The backend trusts
127.0.0.1/32, the balancers' address, and here the client connects from 127.0.0.1 too (a
client inside the balancers' network). nginx replaces the headers; HAProxy (``mode http``,
``send-proxy-v2``) passes the client's on and names it in the PROXY header, which is then
the address (section 14): the probe routes consulted the forged headers as well, and the
server dialled the victim.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from rdv_core.server import ProbeService, RdvServer, make_observed_addr, start_native
from rdv_core.server._probes import DIALBACK_PER_IP_BURST

from tests.balancer_support import BACKEND_ARGS, backends, balancer, missing_binary

VICTIM = "127.0.0.2"
NONCE = "0123456789abcdef"
#: Dial-back requests at once, each naming the victim.
DIALBACKS = 20


async def _dial_back(
    port: int, victim_port: int, ok: bool = True, source: str = "127.0.0.1"
) -> dict[str, object]:
    """One dial-back request with forged headers, from ``source``; its JSON answer (with
    ``status``)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    forged = (
        f"X-Forwarded-For: {VICTIM}:{victim_port}\r\nX-Forwarded-Port: {victim_port}\r\n"
        f"X-Real-IP: {VICTIM}\r\nX-Real-Port: {victim_port}\r\n"
    )
    writer.write(
        f"GET /.rdv/dial-back?nonce={NONCE} HTTP/1.1\r\nHost: rdv\r\n{forged}\r\n".encode()
    )
    try:
        async with asyncio.timeout(10):
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            body = await reader.readexactly(length)
    finally:
        writer.close()
    status = int(head.split(b" ", 2)[1])
    assert status == 200 or not ok, head + body
    answer: dict[str, object] = json.loads(body) if status == 200 else {}
    answer["status"] = status
    return answer


@asynccontextmanager
async def _victim() -> AsyncIterator[tuple[int, list[bytes]]]:
    """A counting listener on VICTIM: its port, and what each conn to it sent."""
    got: list[bytes] = []

    async def victim(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.append(await reader.read(200))
        writer.close()

    listener = await asyncio.start_server(victim, VICTIM, 0)
    try:
        yield listener.sockets[0].getsockname()[1], got
    finally:
        listener.close()


@pytest.mark.parametrize("kind", ["haproxy", "nginx"])
async def test_forged_forwarding_headers_never_aim_the_dial_back(kind: str, tmp_path: Path) -> None:
    reason = missing_binary(kind)
    if reason is not None:
        pytest.skip(reason)
    async with (
        _victim() as (victim_port, got),
        backends(tmp_path, (*BACKEND_ARGS[kind], "--dial-back"), count=1) as pool,
        balancer(kind, tmp_path, [pool[0].addr] * 3) as lb,
    ):
        answer = await _dial_back(lb.port, victim_port)
    assert got == [], f"the server dialled {VICTIM}: {got} ({answer})"
    assert str(answer["target"]).startswith("127.0.0.1:"), answer


def _forwardfor(config: str) -> str:
    """The shipped HAProxy config as many run it: no PROXY header, ``option forwardfor``
    (which adds its own ``X-Forwarded-For`` line after the client's) and the client's port."""
    config = config.replace(
        "default-server send-proxy-v2 check check-send-proxy", "default-server check"
    )
    return config.replace(
        "    default_backend rdv",
        "    option forwardfor\n"
        "    http-request set-header X-Forwarded-Port %[src_port]\n"
        "    default_backend rdv",
    )


async def test_haproxy_forwardfor_appends_the_client_after_a_forged_line(tmp_path: Path) -> None:
    """HAProxy in mode http with ``option forwardfor`` keeps the client's own
    ``X-Forwarded-For`` line and adds the real one below it. The server read the first line
    only, the forged one (``127.0.0.2:PORT``), and dialled the victim; every line is one list
    (RFC 9110 section 5.3), whose right-most untrusted hop is the client (127.0.0.3)."""
    reason = missing_binary("haproxy")
    if reason is not None:
        pytest.skip(reason)
    args = ("--trust-proxy", "127.0.0.1/32", "--dial-back")
    async with (
        _victim() as (victim_port, got),
        backends(tmp_path, args, count=1) as pool,
        balancer("haproxy", tmp_path, [pool[0].addr] * 3, edit=_forwardfor) as lb,
    ):
        answer = await _dial_back(lb.port, victim_port, source="127.0.0.3")
    assert got == [], f"the server dialled {VICTIM}: {got} ({answer})"
    assert str(answer["target"]).startswith("127.0.0.3:"), answer


async def test_a_proxy_that_passes_forged_headers_on_aims_a_few_dial_backs_at_most() -> None:
    """The operator's mistake (a trusted proxy that passes the client's X-Forwarded-For on,
    e.g. nginx without ``proxy_set_header X-Forwarded-For``) lets a client name any address;
    the per-address limits still bound what the victim gets (section 15.1): 20 requests
    in a row, DIALBACK_PER_IP_BURST dial-backs (then one per 10 s), one line each."""
    got: list[bytes] = []

    async def victim(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.append(await reader.read(200))
        writer.close()

    listener = await asyncio.start_server(victim, VICTIM, 0)
    victim_port = listener.sockets[0].getsockname()[1]
    trusted = make_observed_addr(["127.0.0.1/32"])  # the "proxy" is every 127.0.0.1 client
    server = RdvServer(observed_addr=trusted)
    service = ProbeService(dial_back=True, observe=server.observe)
    front = await start_native(server, "127.0.0.1", 0, probes=service)
    try:
        answers = [await _dial_back(front.port, victim_port, ok=False) for _ in range(DIALBACKS)]
    finally:
        listener.close()
        await server.close()
        await front.close()
    statuses = sorted(int(str(a["status"])) for a in answers)
    assert statuses.count(200) == len(got) == DIALBACK_PER_IP_BURST, (statuses, got)
    assert statuses.count(429) == DIALBACKS - len(got)
