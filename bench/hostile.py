"""Two attacks of issue 13 on a real ``rdv serve``, with the figures the issue quotes.

    .venv/bin/python bench/hostile.py pipeline [MIB] [CONNS]   # pipelined GET /metrics, never read
    .venv/bin/python bench/hostile.py squat [COUNT] [SOURCES]  # lobby squatters, 1,024 fds

``pipeline``: CONNS conns each write MIB MiB of pipelined ``GET /metrics`` as fast as the
server takes them and never read; prints the server's RSS before and at its peak, and the
slowest ``/healthz`` answered meanwhile on another conn.

``squat``: a server limited to 1,024 fds (soft and hard); COUNT conns from SOURCES loopback
addresses send complete requests with unique tokens and wait; then a health check and a
legitimate pair from another network. Prints how many squatters wait and how the others
were answered (status and body: refused by a cap, or evicted to share a full lobby).
Loopback only; the server runs with its defaults otherwise.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import re
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _limit_fds() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


def start_server(fd_limit: bool) -> tuple[subprocess.Popen[bytes], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "rdv_tui", "serve", "--listen", "127.0.0.1:0"],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=_limit_fds if fd_limit else None,
    )
    assert process.stderr is not None
    line = process.stderr.readline().decode()
    match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
    if match is None:
        raise SystemExit(f"rdv serve did not start: {line!r}")
    return process, int(match.group(1))


def rss_mb(pid: int) -> float:
    return (
        int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    )


async def ask(port: int, data: bytes, src: str = "127.0.0.1", within: float = 10.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0))
    try:
        writer.write(data)
        async with asyncio.timeout(within):
            return await reader.readuntil(b"\r\n\r\n")
    finally:
        writer.close()


HEALTH = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


async def pipeline(mib: int, conns: int) -> None:
    process, port = start_server(fd_limit=False)
    try:
        await asyncio.sleep(0.5)
        base = peak = rss_mb(process.pid)
        data = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * (mib * 2**20 // 35)
        socks = []
        for _ in range(conns):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            socks.append([sock, memoryview(data)])
        worst, deadline = 0.0, time.monotonic() + 15
        while time.monotonic() < deadline:
            for entry in socks:
                if len(entry[1]):
                    with contextlib.suppress(BlockingIOError):
                        entry[1] = entry[1][entry[0].send(entry[1][:65536]) :]
            started = time.monotonic()
            try:
                await ask(port, HEALTH, within=10.0)
                worst = max(worst, time.monotonic() - started)
            except TimeoutError:
                worst = float("inf")
            peak = max(peak, rss_mb(process.pid))
            if all(not len(v) for _, v in socks) and time.monotonic() > deadline - 12:
                break
            await asyncio.sleep(0.02)
        sent = sum(len(data) - len(v) for _, v in socks) / 2**20
        print(
            f"pipeline: {conns} conn(s) x {mib} MiB of GET /metrics, {sent:.1f} MiB taken: "
            f"server RSS {base:.0f} MB -> peak {peak:.0f} MB; slowest /healthz meanwhile "
            f"{worst * 1000:.0f} ms"
        )
        for sock, _ in socks:
            sock.close()
    finally:
        process.terminate()
        process.wait(10)


async def squat(count: int, sources: int) -> None:
    process, port = start_server(fd_limit=True)
    holders = []
    answers: collections.Counter[str] = collections.Counter()
    try:
        for i in range(count):
            src = f"127.9.{i % sources // 250}.{i % sources % 250 + 1}"
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", port, local_addr=(src, 0)
                )
            except OSError as exc:
                answers[f"connect failed: {exc.strerror}"] += 1
                continue
            writer.write(
                f"ACCEPT /squat-{i} HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n"
                "Upgrade: rdv/1\r\n\r\n".encode()
            )
            holders.append((reader, writer))
        await asyncio.sleep(1.0)
        for reader, _ in holders:
            try:
                async with asyncio.timeout(0.01):
                    head = await reader.readuntil(b"\r\n\r\n")
                async with asyncio.timeout(1.0):
                    body = (await reader.read(200)).decode(errors="replace").strip()
                status = head.split(b"\r\n", 1)[0].split(b" ", 1)[1].decode()
                answers[f"{status}: {body}"] += 1
            except TimeoutError:
                answers["waiting in the lobby"] += 1
            except (asyncio.IncompleteReadError, ConnectionError):
                answers["closed without an answer"] += 1
        print(f"squat: {count} squatters from {sources} address(es), server limited to 1,024 fds:")
        for what, n in answers.most_common():
            print(f"  {n:5d} {what}")
        try:
            health = (await ask(port, HEALTH, within=5.0)).split(b"\r\n", 1)[0].decode()
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ConnectionError) as exc:
            health = f"failed: {exc!r}"
        print(f"  /healthz: {health}")
        request = "{} /legit HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: rdv/1\r\n\r\n"
        accepter = None
        try:
            accepter = asyncio.ensure_future(
                ask(port, request.format("ACCEPT").encode(), "127.8.0.1")
            )
            await asyncio.sleep(0.2)
            dialer = await ask(port, request.format("DIAL").encode(), "127.8.0.2")
            statuses = [head.split(b" ", 2)[1].decode() for head in (dialer, await accepter)]
            legit = " / ".join(statuses)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ConnectionError) as exc:
            legit = f"failed: {exc!r}"
            if accepter is not None:
                accepter.cancel()
        print(f"  a legitimate pair from another network (dialer / accepter status): {legit}")
    finally:
        for _, writer in holders:
            writer.close()
        process.terminate()
        process.wait(10)


def main() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    what, *rest = sys.argv[1:] or ["pipeline"]
    numbers = [int(x) for x in rest]
    if what == "pipeline":
        asyncio.run(pipeline(*(numbers or [1, 1])))
    elif what == "squat":
        asyncio.run(squat(*(numbers or [1010, 1])))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
