"""How long ``dial()`` takes to return a connected conn, on loopback, p2p and relay.

A real rdv server (native front) and the accepting peer run either in this process
(default) or in a child process (``--processes 2``, as in real life each peer has its
own CPU; on a shared, loaded machine each hop between processes then also pays the
scheduler's latency). For each attempt ``accept()`` starts first and once the server
shows it in the lobby we time ``dial()`` from the call to the returned conn.
Addresses: 127.0.0.1 and ::1 only. The dialer's events split that time into phases:

- prepare:  the call to ``AttemptStarted`` (URL, proxy settings, local uplinks)
- setup:    listener, self addresses (to the server connect starting)
- server:   TCP connect to the server (``ServerConnected.connect_s``)
- lobby:    request sent to ``101`` received (``ServerResponded.lobby_s``): the
            server's matching, since the peer is already waiting
- race:     ``101`` to the first usable conn (first ``HandshakeOk``; for the relay,
            ``RelayReady``)
- pick:     first usable conn to ``Picked`` (the picker's decision)
- return:   ``Picked`` to ``dial()`` returning (the pick on the wire, the losers'
            cleanup, the winner's stream; since the race's end is synchronous, no event-
            loop turn: rdv_core/client/_exchange.py)

The attempt's clock starts at the call, so the phases add up to the total. In one
process every phase also holds whatever the accepter and the server do meanwhile (their
work shares the CPU and the event loop). Each mode also prints the CPU time this process
spent during ``dial()`` (p50): on a shared machine it varies less than the wall time.

The baseline, measured in the same run against the same server, is one plain HTTP
round trip (TCP connect, ``GET /healthz``, response). The floor is the least work a
p2p connect can do, in plain asyncio streams in this process (:func:`floor`): a one-line
rendezvous, one TCP connect, the header lines, ``CONTINUE``. Targets (issue 10), each
printed with its verdict: p2p p50 below 10 ms; p2p p50 at most 3x the HTTP round trip
(the ratio to the floor is printed beside it); no slower than the Go client if given.

With ``--go-client PATH`` (a built Go reference ``rdv`` binary; skipped when not given:
there is no Go toolchain on the project machine, so this path was only run against a stand-in
script), the same run also alternates, attempt by attempt, ``PATH dial URL TOKEN`` (spaces as
the Go client picks them; only loopback candidates can connect here) with rdv's own dial
(spaces ``loopback4``), against the same server and rdv accepter, and compares each dialer's
own report: the Go CLI's ``peer connected ... dur=1.7ms`` line and rdv's ``Conn.elapsed_s``.

Usage: ``.venv/bin/python bench/connect.py [--attempts N] [--processes 1|2] [--go-client PATH]
[--json]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import time
from dataclasses import dataclass, field

from rdv_core.client import Client
from rdv_core.events import (
    AttemptStarted,
    Event,
    HandshakeOk,
    PeerJoined,
    Picked,
    RelayReady,
    ServerConnected,
    ServerResponded,
)
from rdv_core.server import RdvServer, start_native
from rdv_core.wire import AddrSpace, parse_spaces

TARGET_P2P_P50_MS = 10.0
#: Issue 10's target: p2p p50 at most this many plain HTTP round trips to the same server.
TARGET_RATIO = 3.0
GO_TARGET = "rdv p50 <= the Go client's"
PHASES = ("prepare", "setup", "server", "lobby", "race", "pick", "return", "total")
MODES = {"p2p": "loopback4,loopback6", "relay": "none"}


@dataclass
class Samples:
    """Milliseconds per phase, one value per attempt."""

    phases: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PHASES})
    relayed: int = 0
    #: CPU time of this process during each ``dial()`` (ms): less noisy than the wall time
    #: on a shared machine. With ``--processes 1`` it holds the server's and the accepter's
    #: work of those moments too.
    cpu: list[float] = field(default_factory=list)

    def add(self, events: list[Event], total_ms: float) -> None:
        started = next(e for e in events if isinstance(e, AttemptStarted))
        connected = next(e for e in events if isinstance(e, ServerConnected))
        responded = next(e for e in events if isinstance(e, ServerResponded))
        picked = next(e for e in events if isinstance(e, Picked))
        if picked.is_relay:
            self.relayed += 1
            first = next(e.t for e in events if isinstance(e, RelayReady))
        else:
            first = next(e.t for e in events if isinstance(e, HandshakeOk))
        values = {
            "prepare": started.t,
            "setup": connected.t - connected.connect_s - started.t,
            "server": connected.connect_s,
            "lobby": responded.lobby_s,
            "race": first - responded.t,
            "pick": picked.t - first,
            "return": total_ms / 1000 - picked.t,
        }
        for name, seconds in values.items():
            self.phases[name].append(seconds * 1000)
        self.phases["total"].append(total_ms)


def percentile(values: list[float], q: int) -> float:
    """The q-th percentile (1..99), linear between closest ranks."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


# ----- the server and the accepter


class Accepters:
    """A server plus accepting peers that wait in its lobby on request."""

    def __init__(self) -> None:
        self._joined: dict[str, asyncio.Future[None]] = {}
        self._pending: set[asyncio.Task[None]] = set()
        self.server = RdvServer(on_event=self._on_server_event)
        self.url = ""
        self.port = 0

    def _on_server_event(self, event: Event) -> None:
        if isinstance(event, PeerJoined) and event.token in self._joined:
            future = self._joined[event.token]
            if not future.done():
                future.set_result(None)

    async def start(self) -> None:
        self.front = await start_native(self.server, host="127.0.0.1", port=0)
        self.url, self.port = self.front.url, self.front.port

    async def _accept(self, token: str, spaces: AddrSpace) -> None:
        conn = await Client(spaces=spaces, timeout=10).accept(self.url, token)
        await conn.reader.read()  # until the dialer closes
        await conn.close()

    async def accept(self, token: str, spaces: str) -> None:
        """Start ``accept()`` and return once the server has it in the lobby."""
        self._joined[token] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._accept(token, parse_spaces(spaces)))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        try:
            await asyncio.wait_for(self._joined[token], 5)
        finally:
            del self._joined[token]

    async def close(self) -> None:
        for task in self._pending:
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        await self.server.close()
        await self.front.close()


async def accepter_main() -> int:
    """Child process: serve, and accept the tokens named on stdin (``<token> <spaces>``)."""
    loop = asyncio.get_running_loop()
    accepters = Accepters()
    await accepters.start()
    print(f"{accepters.url} {accepters.port}", flush=True)
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    try:
        while line := await stdin.readline():
            token, spaces = line.decode().split()
            await accepters.accept(token, spaces)
            print("ready", flush=True)
    finally:
        await accepters.close()
    return 0


# ----- the parent: dialer and report


async def baseline(port: int, attempts: int) -> list[float]:
    """One HTTP round trip to the server per attempt, in ms."""
    out = []
    for _ in range(attempts):
        start = time.perf_counter()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        await reader.read()
        out.append((time.perf_counter() - start) * 1000)
        writer.close()
        await writer.wait_closed()
    return out


async def floor(attempts: int) -> list[float]:
    """The least work a p2p connect can do, in plain asyncio streams, per attempt in ms.

    The same steps as rdv's dial, nothing else: the accepter waits at a one-line
    rendezvous server (in this process, like rdv's default) with a listener open; the
    timed dialer connects to that server, sends ``DIAL <token>``, reads the accepter's
    port, connects to it, writes its header line, reads the accepter's, writes
    ``CONTINUE``. No HTTP, no relay, no shared port, no events, one candidate.
    """
    waiting: dict[bytes, asyncio.StreamWriter] = {}

    async def rendezvous(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        method, token = (await reader.readline()).split()
        if method == b"ACCEPT":
            writer.write(b"ok\n")
            waiting[token] = writer
            return
        accepter = waiting.pop(token)
        accepter.write(b"101\n")
        accepter.close()
        writer.write(b"101 " + port_of[token] + b"\n")
        writer.close()

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()  # rdv/1 DIAL <token>
        writer.write(b"rdv/1 ACCEPT tok\n")
        await reader.readline()  # CONTINUE
        writer.close()

    port_of: dict[bytes, bytes] = {}
    server = await asyncio.start_server(rendezvous, "127.0.0.1", 0)
    listener = await asyncio.start_server(peer, "127.0.0.1", 0)
    server_port = server.sockets[0].getsockname()[1]
    peer_port = str(listener.sockets[0].getsockname()[1]).encode()
    out = []
    try:
        for i in range(attempts):
            token = f"floor-{i}".encode()
            port_of[token] = peer_port
            a_reader, a_writer = await asyncio.open_connection("127.0.0.1", server_port)
            a_writer.write(b"ACCEPT " + token + b"\n")
            await a_reader.readline()  # in the lobby
            start = time.perf_counter()
            reader, writer = await asyncio.open_connection("127.0.0.1", server_port)
            writer.write(b"DIAL " + token + b"\n")
            port = int((await reader.readline()).split()[1])
            d_reader, d_writer = await asyncio.open_connection("127.0.0.1", port)
            d_writer.write(b"rdv/1 DIAL tok\n")
            await d_reader.readline()
            d_writer.write(b"CONTINUE\n")
            out.append((time.perf_counter() - start) * 1000)
            for w in (writer, d_writer, a_writer):
                w.close()
            await a_reader.read()
    finally:
        server.close()
        listener.close()
    return out


class Child:
    """The accepter process."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        assert proc.stdin is not None and proc.stdout is not None
        self.stdin = proc.stdin
        self.stdout = proc.stdout

    async def accept(self, token: str, spaces: str) -> None:
        self.stdin.write(f"{token} {spaces}\n".encode())
        await self.stdin.drain()
        line = await asyncio.wait_for(self.stdout.readline(), 10)
        if line.strip() != b"ready":
            raise RuntimeError(f"accepter process: {line!r}")

    async def close(self) -> None:
        self.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


async def attempts(child: Child | Accepters, url: str, mode: str, count: int) -> Samples:
    samples = Samples()
    spaces = parse_spaces(MODES[mode])
    for i in range(count):
        token = f"{mode}-{i}"
        await child.accept(token, MODES[mode])
        events: list[Event] = []
        dialer = Client(spaces=spaces, timeout=10, on_event=events.append)
        cpu = time.process_time()
        start = time.perf_counter()
        conn = await dialer.dial(url, token)
        total_ms = (time.perf_counter() - start) * 1000
        samples.cpu.append((time.process_time() - cpu) * 1000)
        await conn.close()
        samples.add(events, total_ms)
    return samples


#: The Go CLI's report: ``INFO client: peer connected is_relay=false addr=... dur=45ms``.
GO_DURATION = re.compile(r"peer connected.*?is_relay=(\w+).*?dur=([0-9.]+)(ns|us|µs|ms|s)\b")
GO_UNITS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1000.0}


async def go_dial(path: str, url: str, token: str) -> tuple[float, bool]:
    """One ``PATH dial URL TOKEN``: its own reported duration (ms) and whether it relayed."""
    proc = await asyncio.create_subprocess_exec(
        path, "dial", url, token,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        stderr = await asyncio.wait_for(proc.stderr.read(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
    match = GO_DURATION.search(stderr.decode("utf-8", "replace"))
    if match is None:
        raise RuntimeError(f"{path} dial: no 'peer connected ... dur=' line in {stderr[-300:]!r}")
    return float(match.group(2)) * GO_UNITS[match.group(3)], match.group(1) == "true"


async def versus_go(
    child: Child | Accepters, url: str, path: str, count: int
) -> dict[str, list[float]]:
    """Alternate Go and rdv dials to the same server and accepter; each dialer's own time."""
    out: dict[str, list[float]] = {"go": [], "rdv": []}
    relayed = 0
    for i in range(count):
        token = f"go-{i}"
        await child.accept(token, "loopback4")
        ms, relay = await go_dial(path, url, token)
        relayed += relay
        out["go"].append(ms)
        token = f"go-rdv-{i}"
        await child.accept(token, "loopback4")
        conn = await Client(spaces=parse_spaces("loopback4"), timeout=10).dial(url, token)
        out["rdv"].append(conn.elapsed_s * 1000)
        await conn.close()
    if relayed:
        print(f"  note: the Go client relayed {relayed} of {count} times")
    return out


def report(name: str, samples: Samples, base_p50: float) -> dict[str, object]:
    rows = {
        p: {"p50": percentile(v, 50), "p90": percentile(v, 90)} for p, v in samples.phases.items()
    }
    count = len(samples.phases["total"])
    print(f"\n{name}: {count} attempts, {samples.relayed} relayed")
    print(f"  {'phase':<8} {'p50 ms':>8} {'p90 ms':>8}")
    for phase, row in rows.items():
        print(f"  {phase:<8} {row['p50']:8.2f} {row['p90']:8.2f}")
    ratio = rows["total"]["p50"] / base_p50
    cpu = percentile(samples.cpu, 50)
    print(f"  total p50 = {ratio:.1f}x the baseline HTTP round trip; CPU of this process "
          f"during dial() p50 {cpu:.2f} ms")  # fmt: skip
    return {
        "attempts": count,
        "relayed": samples.relayed,
        "phases": rows,
        "ratio": ratio,
        "cpu_ms_p50": cpu,
    }


def time_wait() -> tuple[int | None, int | None]:
    """Linux: TCP conns in TIME_WAIT, and the size of the ephemeral port range (else None)."""
    try:
        with open("/proc/net/sockstat") as stats:
            fields = next(line for line in stats if line.startswith("TCP:")).split()
        waiting = int(fields[fields.index("tw") + 1])
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
            low, high = (int(x) for x in ports.read().split())
    except (OSError, StopIteration, ValueError):
        return None, None
    return waiting, high - low + 1


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=60, help="attempts per mode (>= 1)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    parser.add_argument(
        "--processes",
        type=int,
        choices=(1, 2),
        default=1,
        help="1: server and accepter in this process; 2: in a child process",
    )
    parser.add_argument(
        "--go-client",
        metavar="PATH",
        default=None,
        help="a Go reference rdv binary: also compare its dials with ours (skipped if not given)",
    )
    parser.add_argument("--accepter", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.accepter:
        return await accepter_main()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs; {args.processes} process(es)")  # fmt: skip
    waiting, ports = time_wait()
    if waiting is not None and ports and waiting > ports // 2:
        # Each run leaves ~1,200 conns in TIME_WAIT (60 s on Linux). With most of the
        # ephemeral range taken, the listener's bind(port 0) searches for a free port and
        # the "setup" phase grew from 0.04 to 2 ms (docs/notes/issue-10-connect-seventh.md).
        print(f"  warning: {waiting} TCP conns in TIME_WAIT for {ports} ephemeral ports: "
              f"'setup' will be slow and the numbers not comparable; wait a minute")  # fmt: skip

    if args.processes == 1:
        peer: Child | Accepters = Accepters()
        await peer.start()
        url, port = peer.url, peer.port
    else:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--accepter",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        peer = Child(proc)
        url, port_text = (await asyncio.wait_for(peer.stdout.readline(), 30)).decode().split()
        port = int(port_text)
    try:
        await attempts(peer, url, "p2p", 3)  # warm up
        base = await baseline(port, args.attempts)
        least = await floor(args.attempts)
        p2p = await attempts(peer, url, "p2p", args.attempts)
        relay = await attempts(peer, url, "relay", args.attempts)
        go = await versus_go(peer, url, args.go_client, args.attempts) if args.go_client else None
    finally:
        await peer.close()

    base_p50 = percentile(base, 50)
    print(f"baseline: HTTP round trip to the server p50 {base_p50:.2f} ms, "
          f"p90 {percentile(base, 90):.2f} ms")  # fmt: skip
    floor_p50 = percentile(least, 50)
    print(f"floor: the least p2p work in plain asyncio (one-line rendezvous, one TCP connect, "
          f"header lines, CONTINUE) p50 {floor_p50:.2f} ms, p90 {percentile(least, 90):.2f} ms "
          f"= {floor_p50 / base_p50:.1f}x the HTTP round trip")  # fmt: skip
    results = {
        "baseline_ms": {"p50": base_p50, "p90": percentile(base, 90)},
        "floor_ms": {"p50": floor_p50, "p90": percentile(least, 90)},
        "p2p": report("p2p (spaces loopback4,loopback6, wait-for-p2p 1s)", p2p, base_p50),
        "relay": report("relay (spaces none)", relay, base_p50),
    }
    p2p_p50 = percentile(p2p.phases["total"], 50)
    ratio = p2p_p50 / base_p50
    # One line per target of issue 10, each with its verdict.
    verdicts = {
        f"p2p p50 < {TARGET_P2P_P50_MS:g} ms, never relayed": (
            p2p_p50 < TARGET_P2P_P50_MS and p2p.relayed == 0,
            f"{p2p_p50:.2f} ms, {p2p.relayed} relayed",
        ),
        f"p2p p50 <= {TARGET_RATIO:g}x the HTTP round trip": (
            ratio <= TARGET_RATIO,
            f"{ratio:.1f}x ({p2p_p50:.2f} / {base_p50:.2f} ms); "
            f"{p2p_p50 / floor_p50:.1f}x the plain-asyncio floor",
        ),
    }
    results["ratio_http"] = ratio
    results["ratio_floor"] = p2p_p50 / floor_p50
    if go is not None:
        go_p50, ours_p50 = percentile(go["go"], 50), percentile(go["rdv"], 50)
        print(f"\nvs Go client ({args.go_client}), {args.attempts} alternating dials each, "
              f"dialer's own report: Go p50 {go_p50:.2f} ms, rdv p50 {ours_p50:.2f} ms "
              f"({ours_p50 / go_p50:.2f}x)")  # fmt: skip
        results["go"] = {"go_p50": go_p50, "rdv_p50": ours_p50, "ratio": ours_p50 / go_p50}
        verdicts[GO_TARGET] = (
            ours_p50 <= go_p50,
            f"{ours_p50:.2f} vs {go_p50:.2f} ms ({ours_p50 / go_p50:.2f}x)",
        )
    print("\ntargets:")
    for name, (passed, detail) in verdicts.items():
        print(f"  {name:<40} {'PASS' if passed else 'FAIL'}  {detail}")
    if go is None:
        print(f"  {GO_TARGET:<40} skipped (no --go-client PATH)")
    ok = all(passed for passed, _ in verdicts.values())
    if args.json:
        print(json.dumps(results, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
