"""Load benchmark for ``rdv serve``: many idle lobby clients, many relayed pairs, slowloris.

    .venv/bin/python bench/load.py              # 10,000 idle + 1,000 pairs x 1 MiB, 2,000 slow
    .venv/bin/python bench/load.py --quick      # 1,000 idle + 100 pairs, 200 slow
    .venv/bin/python bench/load.py --loop asyncio

A real ``rdv serve`` process (its default lobby caps: clients come from many loopback
source addresses, 127.1.0.0/16, at most 50 per address and 200 per /24) and clients in
this process, all on loopback. Phases, with the server's open fds and RSS (from /proc)
printed before, during and after each:

1. idle: ``--idle`` ACCEPT requests with unique tokens wait in the lobby (memory per idle
   lobby client);
2. pairs: ``--pairs`` pairs matched at once (pairs matched per second), relayed
   (CONTINUE), ``--mib`` MiB each way, each direction checked by its BLAKE2 digest
   (memory per relayed pair, while idle and at the peak of the transfer);
3. every pair and idle client closed: fds back to the baseline? RSS back within 20 MB?
4. slowloris: ``--slow`` conns trickle a request head one byte per second while
   ``--slow-pairs`` pairs relay; compared with the same relayed load alone.

Targets (issue 13): all pairs intact; fds back to baseline; RSS after the load within 20
MB of before; under 8 KiB per idle lobby client. The machine is shared: numbers are
noisy, compare within a run (``uptime`` is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import random
import re
import resource
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PAGE = os.sysconf("SC_PAGE_SIZE")
PER_ADDRESS = 50  # clients per loopback source address (rdv serve's cap: 100)
ADDRESSES_PER_NET = 4  # source addresses per /24 (cap: 400 per network)
FDS_WANTED = 65536
SERVE = (sys.executable, "-m", "rdv_tui", "serve", "--listen", "127.0.0.1:0")


def raise_fd_limit() -> None:
    """As many fds as the bench needs (root may raise the hard limit too)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limit in ((FDS_WANTED, FDS_WANTED), (hard, hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, limit)
            return
        except (OSError, ValueError):
            continue


def source(n: int) -> str:
    """The loopback source address of client ``n``: 50 per address, 4 addresses per /24."""
    address = n // PER_ADDRESS
    net, host = divmod(address, ADDRESSES_PER_NET)
    return f"127.{1 + net // 256}.{net % 256}.{host + 1}"


def request(method: str, token: str) -> bytes:
    return (
        f"{method} /{token} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: upgrade\r\n"
        "Rdv-Self-Addrs: \r\nUpgrade: rdv/1\r\n\r\n"
    ).encode()


class Server:
    """``rdv serve`` in its own process, and /proc readings of it."""

    def __init__(self, loop: str) -> None:
        self.loop = loop
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [*SERVE, "--loop", self.loop, "--max-lobby", "40000"],
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            preexec_fn=raise_fd_limit,
        )
        assert self.process.stderr is not None
        line = self.process.stderr.readline().decode()
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if match is None:
            raise SystemExit(f"rdv serve did not start: {line!r}")
        self.port = int(match.group(1))
        # Drain its log (one line per pair) so that it never blocks on a full pipe.
        os.set_blocking(self.process.stderr.fileno(), False)
        asyncio.get_running_loop().add_reader(self.process.stderr.fileno(), self._drain)
        self.log: list[str] = []

    def _drain(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        data = self.process.stderr.read()
        if data:
            self.log += data.decode(errors="replace").splitlines()

    def stop(self) -> None:
        if self.process is not None:
            assert self.process.stderr is not None
            asyncio.get_running_loop().remove_reader(self.process.stderr.fileno())
            self.process.terminate()
            self.process.wait(10)

    def fds(self) -> int:
        assert self.process is not None
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def rss(self) -> int:
        assert self.process is not None
        return int(Path(f"/proc/{self.process.pid}/statm").read_text().split()[1]) * PAGE

    async def metric(self, name: str) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        text = (await reader.read()).decode()
        writer.close()
        match = re.search(rf"^{re.escape(name)} (\d+)$", text, re.M)
        return int(match.group(1)) if match else -1

    async def wait_metric(self, name: str, value: int, within: float = 120.0) -> None:
        deadline = time.monotonic() + within
        while (got := await self.metric(name)) != value:
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} is {got}, expected {value}")
            await asyncio.sleep(0.1)


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def connect(port: int, src: str, data: bytes) -> Conn:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0))
    writer.write(data)
    return reader, writer


async def bounded(n: int, limit: int, make: Callable[[int], Awaitable[Any]]) -> list[Any]:
    sem = asyncio.Semaphore(limit)

    async def one(i: int) -> Any:
        async with sem:
            return await make(i)

    return list(await asyncio.gather(*(one(i) for i in range(n))))


def payload(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


async def transfer(pair: tuple[Conn, Conn], seed: int, size: int) -> bool:
    """Both ways at once; True if each side got exactly the other's bytes (by digest)."""
    (rd, wd), (ra, wa) = pair
    to_a, to_d = payload(2 * seed, size), payload(2 * seed + 1, size)

    async def send(writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    async def digest(reader: asyncio.StreamReader) -> bytes:
        h, left = hashlib.blake2b(), size
        while left:
            chunk = await reader.read(min(left, 1 << 18))
            if not chunk:
                break
            h.update(chunk)
            left -= len(chunk)
        return h.digest()

    _, _, got_a, got_d = await asyncio.gather(
        send(wd, to_a), send(wa, to_d), digest(ra), digest(rd)
    )
    return got_a == hashlib.blake2b(to_a).digest() and got_d == hashlib.blake2b(to_d).digest()


async def open_pairs(
    server: Server, count: int, first_client: int, tag: str
) -> tuple[list[tuple[Conn, Conn]], float]:
    """``count`` pairs matched at once and relaying; and how long the matching took."""
    started = time.monotonic()

    async def one(i: int) -> tuple[Conn, Conn]:
        token = f"{tag}-{i}"
        n = first_client + 2 * i
        accepter = await connect(server.port, source(n), request("ACCEPT", token))
        await asyncio.sleep(0.05)  # let the ACCEPT reach the lobby first
        dialer = await connect(server.port, source(n + 1), request("DIAL", token))
        for reader, _ in (dialer, accepter):
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101 "):
                raise SystemExit(f"pair {token}: {head!r} {await reader.read(200)!r}")
        return dialer, accepter

    pairs = await bounded(count, 500, one)
    matched_s = time.monotonic() - started
    for (_, wd), _ in pairs:
        wd.write(b"CONTINUE\n")
    for _, (ra, _) in pairs:
        assert await ra.readexactly(9) == b"CONTINUE\n"
    return pairs, matched_s


async def close_all(conns: list[Conn]) -> None:
    for _, writer in conns:
        writer.close()
    await asyncio.sleep(0)


def mib(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


async def sampled(server: Server, work: Awaitable[Any]) -> tuple[Any, int, int]:
    """Run ``work`` while sampling the server's fds and RSS; return its result and peaks."""
    peak_fds, peak_rss = server.fds(), server.rss()
    task = asyncio.ensure_future(work)
    while not task.done():
        await asyncio.sleep(0.05)
        peak_fds, peak_rss = max(peak_fds, server.fds()), max(peak_rss, server.rss())
    return task.result(), peak_fds, peak_rss


async def slowloris(port: int, count: int, first_client: int, stop: asyncio.Event) -> int:
    """``count`` conns that trickle a request head, one byte per second, until ``stop``."""
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 64
    conns = await bounded(count, 200, lambda i: connect(port, source(first_client + i), b"G"))
    sent = 1
    while not stop.is_set() and sent < len(head):
        for _, writer in conns:
            if not writer.is_closing():
                writer.write(head[sent : sent + 1])
        sent += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
    await close_all(conns)
    return len(conns)


async def relayed_load(
    server: Server, pairs: int, size: int, first_client: int, tag: str
) -> tuple[float, int]:
    started = time.monotonic()
    opened, _ = await open_pairs(server, pairs, first_client, tag)
    intact = await asyncio.gather(*(transfer(p, i, size) for i, p in enumerate(opened)))
    await close_all([c for p in opened for c in p])
    return time.monotonic() - started, sum(intact)


async def run(args: argparse.Namespace) -> int:
    print(f"load: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")  # noqa: ASYNC221
    server = Server(args.loop)
    server.start()
    try:
        return await measure(server, args)
    finally:
        server.stop()
        for line in server.log:
            if "WARNING" in line or "ERROR" in line:
                print("server:", line)


async def measure(server: Server, args: argparse.Namespace) -> int:
    size = args.mib << 20
    failures = []
    # Warm-up: every code path once (imports, caches, the allocator).
    await relayed_load(server, 20, 1 << 16, 0, "warm")
    await asyncio.sleep(0.5)
    fds0, rss0 = server.fds(), server.rss()
    print(f"baseline: {fds0} fds, RSS {mib(rss0)}")

    # 1. idle lobby clients
    started = time.monotonic()
    idle = await bounded(
        args.idle, 300, lambda i: connect(server.port, source(i), request("ACCEPT", f"idle-{i}"))
    )
    await server.wait_metric("rdv_lobby_peers", args.idle)
    fds1, rss1 = server.fds(), server.rss()
    per_idle = (rss1 - rss0) / args.idle
    print(
        f"idle: {args.idle} lobby clients in {time.monotonic() - started:.1f}s: {fds1} fds, "
        f"RSS {mib(rss1)}, {per_idle / 1024:.2f} KiB per idle lobby client"
    )
    if per_idle >= 8 * 1024:
        failures.append("memory per idle lobby client >= 8 KiB")

    # 2. pairs matched at once, relayed, digests checked
    first = args.idle
    pairs, matched_s = await open_pairs(server, args.pairs, first, "pair")
    await asyncio.sleep(0.3)
    fds2, rss2 = server.fds(), server.rss()
    print(
        f"pairs: {args.pairs} matched in {matched_s:.2f}s ({args.pairs / matched_s:.0f} pairs/s); "
        f"relaying, idle: {fds2} fds, RSS {mib(rss2)}, "
        f"{(rss2 - rss1) / args.pairs / 1024:.1f} KiB per relayed pair"
    )
    started = time.monotonic()
    intact, peak_fds, peak_rss = await sampled(
        server, asyncio.gather(*(transfer(p, i, size) for i, p in enumerate(pairs)))
    )
    took = time.monotonic() - started
    print(
        f"transfer: {sum(intact)}/{args.pairs} pairs intact, {args.mib} MiB each way in "
        f"{took:.1f}s ({2 * args.pairs * size / took / 2**20:.0f} MiB/s relayed); peak "
        f"{peak_fds} fds, RSS {mib(peak_rss)} "
        f"({(peak_rss - rss1) / args.pairs / 1024:.1f} KiB per pair)"
    )
    if sum(intact) != args.pairs:
        failures.append("pairs not intact")

    # 3. everything closed
    await close_all([c for p in pairs for c in p] + idle)
    await server.wait_metric("rdv_lobby_peers", 0)
    await server.wait_metric("rdv_pairs_open", 0)
    await asyncio.sleep(5.0)  # rdv serve trims its heap within 2-4 s
    fds3, rss3 = server.fds(), server.rss()
    print(
        f"after: {fds3} fds ({fds3 - fds0:+d} vs baseline), RSS {mib(rss3)} "
        f"({(rss3 - rss0) / 2**20:+.1f} MB vs baseline)"
    )
    await asyncio.sleep(10.0)
    rss3b = server.rss()
    print(f"after +15 s: RSS {mib(rss3b)} ({(rss3b - rss0) / 2**20:+.1f} MB vs baseline)")
    if fds3 != fds0:
        failures.append("fds not back to baseline")
    if rss3 - rss0 > 20 * 2**20:
        failures.append("RSS 5 s after > baseline + 20 MB")

    # 4. slowloris during a relayed load, against the same load alone
    first = args.idle + 2 * args.pairs
    alone_s, alone_ok = await relayed_load(server, args.slow_pairs, size, first, "alone")
    stop = asyncio.Event()
    slow = asyncio.ensure_future(
        slowloris(server.port, args.slow, first + 2 * args.slow_pairs, stop)
    )
    await asyncio.sleep(2.0)  # all slow conns open and trickling
    fds4, rss4 = server.fds(), server.rss()
    (loaded_s, loaded_ok), peak_fds, peak_rss = await sampled(
        server,
        relayed_load(
            server, args.slow_pairs, size, first + 2 * args.slow_pairs + args.slow, "slow"
        ),
    )
    stop.set()
    await slow
    await server.wait_metric("rdv_pairs_open", 0)
    await asyncio.sleep(5.0)  # rdv serve trims its heap within 2-4 s
    fds5, rss5 = server.fds(), server.rss()
    health = await server.metric("rdv_up")
    print(
        f"slowloris: {args.slow} trickling conns ({fds4} fds, RSS {mib(rss4)}); "
        f"{args.slow_pairs} pairs x {args.mib} MiB each way: {loaded_ok}/{args.slow_pairs} intact "
        f"in {loaded_s:.1f}s vs {alone_ok}/{args.slow_pairs} in {alone_s:.1f}s alone "
        f"({loaded_s / alone_s:.2f}x); peak {peak_fds} fds, RSS {mib(peak_rss)}; after: "
        f"{fds5} fds ({fds5 - fds0:+d}), RSS {mib(rss5)} ({(rss5 - rss0) / 2**20:+.1f} MB); "
        f"up={health}"
    )
    if loaded_ok != args.slow_pairs or alone_ok != args.slow_pairs:
        failures.append("slowloris: pairs not intact")
    print("targets:", "all met" if not failures else "MISSED: " + "; ".join(failures))
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the load")
    parser.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto")
    parser.add_argument("--idle", type=int, default=10_000)
    parser.add_argument("--pairs", type=int, default=1_000)
    parser.add_argument("--mib", type=int, default=1)
    parser.add_argument("--slow", type=int, default=2_000)
    parser.add_argument("--slow-pairs", type=int, default=200)
    args = parser.parse_args()
    if args.quick:
        args.idle, args.pairs, args.slow, args.slow_pairs = 1_000, 100, 200, 50
    raise_fd_limit()
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run(args))
    return uvloop.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
