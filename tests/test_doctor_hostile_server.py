"""What a hostile server's answers can make ``rdv doctor`` send, and to whom (PROTOCOL.md 15).

The server names our observed address, its probe ports and a dial-back target; the doctor
connects where those answers point. On loopback: a lying server on 127.0.0.1 (16 probe
ports, a dial-back it never made) names a counting listener on 127.0.0.2 as our public
address. The bound (README "rdv doctor", "what a hostile server can make it send"): to any
address but the server's own, one conn (the hairpin probe: at most two SYNs in its 1.5 s)
carrying one 29-byte line; to the server's own address, a bounded set of conns (the main
one, the path check, the fresh ports, at most 16 probe ports).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter

from rdv_core.doctor import run_doctor
from rdv_core.doctor._inbox import HAIRPIN_GREETING
from rdv_core.doctor._measure import FRESH_PORTS
from rdv_core.wire._probe import MAX_PROBE_PORTS

VICTIM = "127.0.0.2"


class Liar:
    """Listeners that count conns and bytes per port; the server's speak the doctor routes
    with lies (a third party's address as ours, 16 probe ports, a dial-back never made)."""

    def __init__(self) -> None:
        self.conns: Counter[int] = Counter()
        self.bytes: Counter[int] = Counter()
        self.servers: list[asyncio.Server] = []
        self.probe_ports: list[int] = []
        self.observed = ""

    async def listen(self, host: str, *, speaks: bool) -> int:
        handle = self._serve if speaks else self._swallow
        server = await asyncio.start_server(handle, host, 0)
        self.servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    def close(self) -> None:
        for server in self.servers:
            server.close()

    async def _swallow(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        port = writer.get_extra_info("sockname")[1]
        self.conns[port] += 1
        with contextlib.suppress(OSError):
            while data := await reader.read(4096):
                self.bytes[port] += len(data)
        writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        port = writer.get_extra_info("sockname")[1]
        self.conns[port] += 1
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                path = (await reader.readuntil(b"\r\n\r\n")).split(b" ", 2)[1].decode()
                body: dict[str, object] = {"v": 1}
                if path.startswith("/.rdv/probes"):
                    body |= {"probe_ports": self.probe_ports, "dial_back": True}
                elif path.startswith("/.rdv/observed"):
                    body |= {"observed": self.observed, "port": port, "upgrade": None}
                elif path.startswith("/.rdv/dial-back"):
                    body |= {"target": self.observed, "result": "timeout", "errno": None}
                    body |= {"elapsed_ms": 1.0, "from_port": 1}
                else:  # the path check: rdv is served there
                    writer.write(b"HTTP/1.1 426 x\r\nContent-Length: 0\r\n\r\n")
                    continue
                raw = json.dumps(body).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(raw), raw))
        writer.close()


async def test_a_hostile_servers_answers_send_one_hairpin_line_to_a_third_party() -> None:
    liar = Liar()
    try:
        victim = await liar.listen(VICTIM, speaks=False)
        liar.observed = f"{VICTIM}:{victim}"
        main = await liar.listen("127.0.0.1", speaks=True)
        for _ in range(MAX_PROBE_PORTS):
            liar.probe_ports.append(await liar.listen("127.0.0.1", speaks=True))
        report = await run_doctor([f"http://127.0.0.1:{main}"], trust_env=False)
        await asyncio.sleep(0.05)  # the last bytes reach the listeners
    finally:
        liar.close()
    conns = liar.conns
    print(dict(conns), report.value("hairpin"))
    # The third party: the hairpin probe, once, with its one line.
    assert conns[victim] == 1
    assert liar.bytes[victim] == len(HAIRPIN_GREETING) + 16 + 1
    # The server's own address: main conn + path check + fresh ports, one per probe port.
    assert conns[main] == 2 + FRESH_PORTS
    assert all(conns[p] == 1 for p in liar.probe_ports)
    assert sum(conns.values()) == 1 + 2 + FRESH_PORTS + MAX_PROBE_PORTS


async def test_a_servers_redirects_are_never_followed() -> None:
    liar = Liar()

    async def redirect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        liar.conns[writer.get_extra_info("sockname")[1]] += 1
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 302 Found\r\nLocation: %s\r\n" % location.encode())
                writer.write(b"Content-Length: 0\r\n\r\n")
        writer.close()

    try:
        victim = await liar.listen(VICTIM, speaks=False)
        location = f"http://{VICTIM}:{victim}/.rdv/probes"
        server = await asyncio.start_server(redirect, "127.0.0.1", 0)
        liar.servers.append(server)
        main = int(server.sockets[0].getsockname()[1])
        report = await run_doctor([f"http://127.0.0.1:{main}"], trust_env=False)
    finally:
        liar.close()
    assert liar.conns[victim] == 0, dict(liar.conns)
    assert liar.conns[main] >= 1 and "302" in str(report.servers[0].http.reason)
