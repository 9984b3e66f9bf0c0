"""What bench/relay.py runs besides its driver: /proc readings, the child roles, load tests.

The driver (bench/relay.py) starts its child processes as ``relay.py --role server`` or
``--role remote``; both roles live here, with the /proc readings of a relay's CPU and
memory and the asyncio load tests (set-ups per second, idle memory per pair). rdv_core is
imported lazily, by the server role, after the driver has put the repository on the path.
"""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

CHUNK = 1 << 20
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ----- /proc readings


def cpu_seconds(pid: int, children: bool = False) -> float:
    """utime+stime (plus reaped children's when asked) of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICK


def rss_bytes(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


def pss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def child_pids(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out += [int(p) for p in text]
    return out


def start_haproxy(backend_port: int) -> tuple[subprocess.Popen[bytes], int]:
    """HAProxy with the shipped deploy/haproxy.cfg, its three backends all ``backend_port``.

    Returns the process and the port it listens on, once a GET /healthz through it answers.
    """
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    backend = f"127.0.0.1:{backend_port}"
    env = dict(os.environ, RDV_LB_LISTEN=f"127.0.0.1:{port}")
    env.update({f"RDV_BACKEND_{i}": backend for i in (1, 2, 3)})
    config = Path(__file__).resolve().parent.parent / "deploy" / "haproxy.cfg"
    haproxy = subprocess.Popen(
        ["haproxy", "-f", str(config), "-db"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(500):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
                if read_until(sock, b"\r\n").startswith(b"HTTP/1.1 200 "):
                    return haproxy, port
        except OSError:
            pass
        if haproxy.poll() is not None:
            break
        time.sleep(0.02)
    haproxy.kill()
    raise RuntimeError("haproxy did not start")


# ----- roles run in child processes


def role_server(front: str) -> None:
    """Run an rdv server on 127.0.0.1:0; print its port; stop when stdin closes.

    ``front`` is ``native``, ``aiohttp``, ``native-uvloop`` (the native front on uvloop) or
    ``native-proxy`` (the native front reading PROXY headers from 127.0.0.1, behind HAProxy).
    """
    raise_nofile()

    async def main() -> None:
        from rdv_core.server import LobbyLimits, RdvServer

        # The memory test puts 1,000 requests from 127.0.0.1 in the lobby: no caps.
        server = RdvServer(lobby_limits=LobbyLimits.unlimited())
        loop = asyncio.get_running_loop()
        stdin_closed = loop.create_future()
        if front in ("native", "native-proxy"):
            from rdv_core.server import start_native

            trusted = ["127.0.0.1/32"] if front == "native-proxy" else []
            native = await start_native(server, "127.0.0.1", 0, proxy_protocol=trusted)
            port = native.port
        else:
            from aiohttp import web

            from rdv_core.server import mount

            app = web.Application()
            mount(app, server, "/rdv")
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
            await site.start()
            port = runner.addresses[0][1]
        print(port, flush=True)

        def on_stdin() -> None:
            if not stdin_closed.done():
                stdin_closed.set_result(None)

        loop.add_reader(sys.stdin.fileno(), on_stdin)
        await stdin_closed

    if front.endswith("-uvloop"):
        import uvloop

        front = front.removesuffix("-uvloop")
        uvloop.run(main())
    else:
        asyncio.run(main())


def rdv_request(method: str, path: str) -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: bench\r\nConnection: upgrade\r\n"
        "Rdv-Self-Addrs: \r\nUpgrade: rdv/1\r\n\r\n"
    ).encode()


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"EOF before {marker!r}: {data[:200]!r}")
        data += chunk
    return data


def role_remote(target: str, nbytes: int, rdv_path: str | None) -> None:
    """Connect to ``target`` (as rdv ACCEPT when ``rdv_path`` is given), then obey:
    ``S`` sink ``nbytes`` and ack with ``!``; ``E`` echo every byte until EOF."""
    host, port = target.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if rdv_path is not None:
        sock.sendall(rdv_request("ACCEPT", rdv_path))
        head = read_until(sock, b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 "), head
        rest = head.split(b"\r\n\r\n", 1)[1]
        while len(rest) < 9:
            rest += sock.recv(9 - len(rest))
        assert rest == b"CONTINUE\n", rest
    print("ready", flush=True)
    view = memoryview(bytearray(CHUNK))
    while True:
        command = sock.recv(1)
        if command == b"S":
            got = 0
            while got < nbytes:
                n = sock.recv_into(view[: min(CHUNK, nbytes - got)])
                if not n:
                    raise ConnectionError(f"EOF after {got} bytes")
                got += n
            sock.sendall(b"!")
        elif command == b"E":
            while data := sock.recv(64):
                sock.sendall(data)
            break
        else:
            break
    sock.close()


# ----- memory and set-up rates, measured under load


def socat_memory(listener: socket.socket, port: int, count: int, socat_pid: int) -> float:
    clients = []
    accepted = []
    for _ in range(count):
        clients.append(socket.create_connection(("127.0.0.1", port)))
        accepted.append(listener.accept()[0])
    time.sleep(0.3)
    kids = child_pids(socat_pid)
    pss = sum(pss_bytes(k) for k in kids)
    for s in clients + accepted:
        s.close()
    return pss / max(1, len(kids))


async def conn_setups_per_s(
    port: int | None, count: int, echo: socket.socket | None = None
) -> float:
    """TCP conns set up per second with a 1-byte echo (direct, or through socat)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read(1)
        writer.write(data)
        await writer.drain()
        writer.close()

    if echo is not None:
        server = await asyncio.start_server(handle, sock=echo.dup())
    else:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
        port = server.sockets[0].getsockname()[1]
    assert port is not None
    sem = asyncio.Semaphore(64)

    async def one() -> None:
        async with sem:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"x")
            assert await reader.read(1) == b"x"
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    elapsed = time.perf_counter() - started
    server.close()
    return count / elapsed


async def _open(port: int, data: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    return reader, writer


async def rdv_memory(port: int, prefix: str, count: int, pid: int) -> tuple[float, float]:
    """RSS growth per idle relaying pair and per lobby conn."""
    # Warm up every code path (and the allocator) with a few pairs first.
    await rdv_pairs_per_s(port, prefix, 200, relay=True)
    await asyncio.sleep(0.3)
    base = rss_bytes(pid)
    accepters = [await _open(port, rdv_request("ACCEPT", f"{prefix}/m{i}")) for i in range(count)]
    await asyncio.sleep(0.5)
    lobby = rss_bytes(pid)
    dialers = [await _open(port, rdv_request("DIAL", f"{prefix}/m{i}")) for i in range(count)]
    for (ra, _), (rd, wd) in zip(accepters, dialers, strict=True):
        await rd.readuntil(b"\r\n\r\n")
        await ra.readuntil(b"\r\n\r\n")
        wd.write(b"CONTINUE\n")
    for ra, _ in accepters:
        assert await ra.readexactly(9) == b"CONTINUE\n"
    await asyncio.sleep(0.5)
    pairs = rss_bytes(pid)
    for _, w in accepters + dialers:
        w.close()
    await asyncio.sleep(0.5)
    return (pairs - base) / count, (lobby - base) / count


async def rdv_pairs_per_s(port: int, prefix: str, count: int, relay: bool = False) -> float:
    """Pairs matched per second: ACCEPT + DIAL, both 101s, then OTHER (or CONTINUE)."""
    sem = asyncio.Semaphore(32)

    async def one(i: int) -> None:
        async with sem:
            path = f"{prefix}/p{i}"
            ra, wa = await _open(port, rdv_request("ACCEPT", path))
            rd, wd = await _open(port, rdv_request("DIAL", path))
            await rd.readuntil(b"\r\n\r\n")
            await ra.readuntil(b"\r\n\r\n")
            wd.write(b"CONTINUE\n" if relay else b"OTHER 127.0.0.1:9\n")
            if relay:
                await ra.readexactly(9)
            wd.close()
            await ra.read()
            wa.close()

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return count / (time.perf_counter() - started)
