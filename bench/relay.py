"""Relay benchmark: rdv's server against direct TCP and socat, measured in the same run.

    .venv/bin/python bench/relay.py            # 1 GiB, 10,000 pings, 1,000 idle pairs
    .venv/bin/python bench/relay.py --quick    # a short smoke run

What it measures, for each path (direct TCP, socat, rdv native front, rdv aiohttp front):

- throughput: one conn carries ``--gib`` GiB from this process to a sink process;
- "rdv via HAProxy": the native front behind HAProxy with ``deploy/haproxy.cfg`` (http mode,
  ``balance uri``, PROXY v2 to the backend), both peers through it, as in production; its
  CPU column counts rdv and HAProxy together, its memory columns are HAProxy's own growth
  (rdv's is the native row's), and a line compares it with the direct native front;
- relay CPU: user+system seconds of the relay process (the rdv server, or socat and the
  child it forks per conn) per GiB, from /proc/<pid>/stat;
- RTT: 1-byte ping-pong on the same conn, median of ``--pings``; "added" is the
  difference to direct TCP;
- idle memory per pair: RSS growth of the server process with ``--pairs`` pairs open
  and idle (relaying, after CONTINUE), and per lobby conn; for socat, the PSS of its
  forked children per conn;
- pairs matched per second (rdv: ACCEPT+DIAL, both 101s, OTHER; baselines: TCP conn
  set-ups per second with a 1-byte echo, through socat or direct).

The rdv server and socat run in their own processes so that their CPU and memory can
be read from /proc; the sending and sinking sides use blocking sockets in separate
processes. Loopback only. The CPU is shared with other work: numbers are noisy, so
compare ratios within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _relay_support import (
    CHUNK,
    child_pids,
    conn_setups_per_s,
    cpu_seconds,
    raise_nofile,
    rdv_memory,
    rdv_pairs_per_s,
    rdv_request,
    read_until,
    role_remote,
    role_server,
    socat_memory,
    start_haproxy,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# ----- measurements in the main process


@dataclass
class PathResult:
    name: str
    gib_s: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    rtt_us: list[float] = field(default_factory=list)
    mem_pair_b: float | None = None
    mem_lobby_b: float | None = None
    setups_s: float = 0.0


@dataclass
class Path_:
    """One set-up path: the conn this process sends on, and who relays it."""

    result: PathResult
    sock: socket.socket
    remote: subprocess.Popen[str]
    relay_pid: int | None = None
    cleanup: list[subprocess.Popen[Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def wait_ready(remote: subprocess.Popen[str]) -> None:
    assert remote.stdout is not None
    line = remote.stdout.readline().strip()
    if line != "ready":
        raise RuntimeError(f"remote failed to start: {line!r}")


def spawn_remote(port: int, nbytes: int, rdv_path: str | None = None) -> subprocess.Popen[str]:
    args = ["--role", "remote", "--target", f"127.0.0.1:{port}", "--bytes", str(nbytes)]
    if rdv_path is not None:
        args += ["--rdv-path", rdv_path]
    return spawn(*args)


def transfer(path: Path_, nbytes: int, block: memoryview) -> None:
    """One throughput round: ``nbytes`` to the sink, timed until its ack."""
    sock = path.sock
    pids = [path.relay_pid, *path.extra.get("cpu_pids", [])] if path.relay_pid else []
    cpu_before = sum(cpu_seconds(pid) for pid in pids)
    started = time.perf_counter()
    sock.sendall(b"S")
    sent = 0
    while sent < nbytes:
        piece = block[: min(CHUNK, nbytes - sent)]
        sock.sendall(piece)
        sent += len(piece)
    if sock.recv(1) != b"!":
        raise ConnectionError("sink did not ack")
    path.result.gib_s.append(nbytes / (time.perf_counter() - started) / (1 << 30))
    if pids:
        path.result.cpu_s += sum(cpu_seconds(pid) for pid in pids) - cpu_before


def pings(path: Path_, count: int) -> None:
    sock = path.sock
    for _ in range(count):
        t0 = time.perf_counter_ns()
        sock.sendall(b"p")
        if sock.recv(1) != b"p":
            raise ConnectionError("echo broke")
        path.result.rtt_us.append((time.perf_counter_ns() - t0) / 1000)


@contextmanager
def listening() -> Iterator[socket.socket]:
    listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
    try:
        yield listener
    finally:
        listener.close()


def setup_direct(nbytes: int, listener: socket.socket) -> Path_:
    remote = spawn_remote(listener.getsockname()[1], nbytes)
    sock, _ = listener.accept()
    wait_ready(remote)
    return Path_(PathResult("direct TCP"), sock, remote)


def start_socat(target: socket.socket) -> tuple[subprocess.Popen[bytes], int]:
    """socat forwarding a fresh port to ``target``'s; the start-up probe is drained."""
    target_port = target.getsockname()[1]
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    socat = subprocess.Popen(
        [
            "socat",
            "-b",
            "262144",
            f"TCP4-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr,backlog=4096",
            f"TCP4:127.0.0.1:{target_port},nodelay",
        ]
    )
    for _ in range(500):
        try:
            probe = socket.create_connection(("127.0.0.1", port), timeout=0.1)
            break
        except OSError:
            time.sleep(0.01)
    else:
        raise RuntimeError("socat did not start")
    forwarded, _ = target.accept()
    forwarded.close()
    probe.close()
    time.sleep(0.05)  # let the probe's child exit
    return socat, port


def setup_socat(nbytes: int, listener: socket.socket) -> Path_:
    socat, port = start_socat(listener)
    remote = spawn_remote(port, nbytes)
    sock, _ = listener.accept()
    wait_ready(remote)
    kids = child_pids(socat.pid)
    # socat forks one child per conn: that child does the relaying.
    return Path_(
        PathResult("socat -b 256K"), sock, remote, kids[0] if kids else None, [socat],
        {"socat_pid": socat.pid, "port": port},
    )  # fmt: skip


def setup_rdv(front: str, nbytes: int) -> Path_:
    behind_haproxy = front == "haproxy"
    server = spawn("--role", "server", "--front", "native-proxy" if behind_haproxy else front)
    assert server.stdout is not None
    port = int(server.stdout.readline())
    cleanup: list[subprocess.Popen[Any]] = [server]
    cpu_pids: list[int] = []
    if behind_haproxy:
        haproxy, port = start_haproxy(port)
        cleanup.insert(0, haproxy)
        cpu_pids.append(haproxy.pid)
    prefix = "/rdv" if front == "aiohttp" else ""
    path = f"{prefix}/bulk"
    remote = spawn_remote(port, nbytes, path)
    for _ in range(500):  # wait until the ACCEPT sits in the lobby
        with socket.create_connection(("127.0.0.1", port)) as probe:
            probe.sendall(b"GET /metrics HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
            text = b""
            while chunk := probe.recv(65536):
                text += chunk
        if front == "aiohttp" or b"\nrdv_lobby_peers 1\n" in text:
            break
        time.sleep(0.01)
    if front == "aiohttp":
        time.sleep(0.3)  # the aiohttp app has no /metrics route
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(rdv_request("DIAL", path))
    head = read_until(sock, b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), head
    sock.sendall(b"CONTINUE\n")
    wait_ready(remote)
    name = "rdv via HAProxy" if behind_haproxy else f"rdv {front}"
    return Path_(
        PathResult(name), sock, remote, server.pid, cleanup,
        {"port": port, "prefix": prefix, "cpu_pids": cpu_pids},
    )  # fmt: skip


def close_path(path: Path_) -> None:
    path.sock.close()
    path.remote.wait(30)
    for process in path.cleanup:
        if process.stdin is not None:
            process.stdin.close()  # an rdv server stops when its stdin closes
        else:
            process.terminate()
        process.wait(30)


def fmt(value: float | None, spec: str) -> str:
    if value is None:
        width = "".join(c for c in spec.split(".")[0] if c.isdigit())
        return "-".rjust(int(width or 0))
    return format(value, spec)


def report(results: list[PathResult], args: argparse.Namespace, total_gib: float) -> None:
    direct = results[0]
    socat = next((r for r in results if r.name.startswith("socat")), None)
    print()
    print(
        f"relay benchmark: {args.rounds} x {args.gib:g} GiB one way per path (interleaved), "
        f"median of {args.pings} 1-byte pings, {args.pairs} idle rdv pairs, "
        f"{args.socat_pairs} idle socat conns; {os.cpu_count()} CPUs shared with other work: noisy"
    )
    header = (
        f"{'path':<18} {'GiB/s':>6} {'(min-max)':>11} {'x socat':>7} {'CPU s/GiB':>9} "
        f"{'RTT us':>7} {'+us':>6} {'B/pair':>7} {'B/lobby':>7} {'setups/s':>8}"
    )
    print(header)
    print("-" * len(header))
    medians = {r.name: statistics.median(r.gib_s) for r in results}
    rtts = {r.name: statistics.median(r.rtt_us) for r in results}
    for r in results:
        gib = medians[r.name]
        ratio = gib / medians[socat.name] if socat else None
        added = rtts[r.name] - rtts[direct.name] if r is not direct else None
        cpu = r.cpu_s / total_gib if r is not direct else None
        spread = f"{min(r.gib_s):.2f}-{max(r.gib_s):.2f}"
        print(
            f"{r.name:<18} {gib:>6.2f} {spread:>11} {fmt(ratio, '>7.2f')} {fmt(cpu, '>9.2f')} "
            f"{rtts[r.name]:>7.1f} {fmt(added, '>6.1f')} {fmt(r.mem_pair_b, '>7.0f')} "
            f"{fmt(r.mem_lobby_b, '>7.0f')} {r.setups_s:>8.0f}"
        )
    print(
        "setups/s: rdv = pairs matched per second (ACCEPT + DIAL, two 101s, OTHER); "
        "direct/socat = TCP conn set-ups with a 1-byte echo.\n"
        "B/pair: RSS growth of the server per idle relaying pair (socat: PSS per forked child)."
    )
    balanced = next((r for r in results if r.name == "rdv via HAProxy"), None)
    native = next((r for r in results if r.name == "rdv native"), None)
    if balanced is not None and native is not None:
        print(
            f"through HAProxy vs the rdv native front directly: "
            f"{medians[balanced.name] / medians[native.name]:.2f}x throughput, "
            f"{rtts[balanced.name] - rtts[native.name]:+.1f} us RTT "
            f"(its CPU column: rdv + HAProxy; its B/pair and B/lobby: HAProxy's own RSS growth)"
        )
    if socat is None:
        return
    print()
    socat_added = rtts[socat.name] - rtts[direct.name]
    for r in results:
        if not r.name.startswith("rdv") or r is balanced:
            continue
        added = rtts[r.name] - rtts[direct.name]
        ratio = medians[r.name] / medians[socat.name]
        checks = [
            f"throughput >= socat: {'yes' if ratio >= 1 else 'NO'} ({ratio:.2f}x)",
            f"added RTT <= socat's + 10 us: {'yes' if added <= socat_added + 10 else 'NO'} "
            f"({added:+.1f} vs {socat_added:+.1f} us)",
            f"idle memory <= 8 KiB/pair: "
            f"{'yes' if r.mem_pair_b is not None and r.mem_pair_b <= 8192 else 'NO'} "
            f"({fmt(r.mem_pair_b, '.0f')} B)",
        ]
        print(f"{r.name}: " + "; ".join(checks))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="short run: 2 x 128 MiB, 2,000 pings, 200 pairs"
    )
    parser.add_argument("--gib", type=float, default=1.0, help="GiB per round (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds (default 3)")
    parser.add_argument("--pings", type=int, default=10_000, help="round trips (default 10,000)")
    parser.add_argument("--pairs", type=int, default=1000, help="idle rdv pairs (default 1,000)")
    parser.add_argument("--socat-pairs", type=int, default=200, help="idle socat conns (200)")
    parser.add_argument("--setups", type=int, default=2000, help="pairs/conns for setups/s")
    parser.add_argument("--no-aiohttp", action="store_true", help="skip the aiohttp front")
    parser.add_argument(
        "--no-uvloop", action="store_true", help="skip the native front on uvloop (if installed)"
    )
    parser.add_argument("--no-haproxy", action="store_true", help="skip the HAProxy row")
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--front", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--bytes", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rdv-path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "server":
        role_server(args.front)
        return 0
    if args.role == "remote":
        role_remote(args.target, args.bytes, args.rdv_path)
        return 0
    if args.quick:
        args.gib, args.rounds, args.pings, args.pairs = 0.125, 2, 2000, 200
        args.socat_pairs, args.setups = 50, 500
    raise_nofile()
    nbytes = int(args.gib * (1 << 30))
    have_socat = shutil.which("socat") is not None
    if not have_socat:
        print("socat not found (apt install socat): no socat baseline", file=sys.stderr)
    fronts = ["native"] if args.no_aiohttp else ["native", "aiohttp"]
    if not args.no_uvloop and importlib.util.find_spec("uvloop") is not None:
        fronts.append("native-uvloop")
    if not args.no_haproxy and shutil.which("haproxy") is not None:
        fronts.append("haproxy")
    elif not args.no_haproxy:
        print("haproxy not found (apt install haproxy): no HAProxy row", file=sys.stderr)
    with listening() as direct_listener, listening() as socat_listener:
        paths: list[Path_] = []
        try:
            paths.append(setup_direct(nbytes, direct_listener))
            if have_socat:
                paths.append(setup_socat(nbytes, socat_listener))
            for front in fronts:
                paths.append(setup_rdv(front, nbytes))
            block = memoryview(os.urandom(CHUNK))
            for round_no in range(args.rounds):
                for path in paths:
                    transfer(path, nbytes, block)
                print(f"throughput round {round_no + 1}/{args.rounds} done", file=sys.stderr)
            for path in paths:
                path.sock.sendall(b"E")
            blocks = 10
            for path in paths:  # warm-up, not counted
                pings(path, max(10, args.pings // 20))
                path.result.rtt_us.clear()
            for _ in range(blocks):
                for path in paths:
                    pings(path, max(1, args.pings // blocks))
            print("pings done", file=sys.stderr)
            for path in paths:
                measure_setups_and_memory(path, args, socat_listener)
                print(f"{path.result.name}: memory and set-ups done", file=sys.stderr)
        finally:
            for path in paths:
                close_path(path)
    report([p.result for p in paths], args, args.gib * args.rounds)
    return 0


def measure_setups_and_memory(
    path: Path_, args: argparse.Namespace, socat_listener: socket.socket
) -> None:
    result = path.result
    if result.name.startswith("direct"):
        result.setups_s = asyncio.run(conn_setups_per_s(None, args.setups))
    elif result.name.startswith("socat"):
        port, pid = path.extra["port"], path.extra["socat_pid"]
        result.mem_pair_b = socat_memory(socat_listener, port, args.socat_pairs, pid)
        time.sleep(0.2)
        result.setups_s = asyncio.run(
            conn_setups_per_s(port, args.setups // 4, echo=socat_listener)
        )
    elif result.name == "rdv via HAProxy":
        # B/pair and B/lobby here are HAProxy's own growth (rdv's is the native row's).
        port, haproxy_pid = path.extra["port"], path.extra["cpu_pids"][0]
        result.mem_pair_b, result.mem_lobby_b = asyncio.run(
            rdv_memory(port, "", args.pairs, haproxy_pid)
        )
        result.setups_s = asyncio.run(rdv_pairs_per_s(port, "", args.setups))
    else:
        port, prefix = path.extra["port"], path.extra["prefix"]
        assert path.relay_pid is not None
        result.mem_pair_b, result.mem_lobby_b = asyncio.run(
            rdv_memory(port, prefix, args.pairs, path.relay_pid)
        )
        result.setups_s = asyncio.run(rdv_pairs_per_s(port, prefix, args.setups))


if __name__ == "__main__":
    sys.exit(main())
