"""How long ``dial()`` takes to return a connected conn, on loopback, p2p and relay.

Runs a real rdv server (native front) and both peers in this process, on 127.0.0.1 and
::1 only. Each attempt starts ``dial()`` and ``accept()`` at the same moment and times
``dial()`` from the call to the returned conn; the dialer's events split that time into
phases:

- setup:    listener, self addresses (attempt start to the server connect starting)
- server:   TCP connect to the server (``ServerConnected.connect_s``)
- lobby:    request sent to ``101`` received (``ServerResponded.lobby_s``): the wait
            for the peer plus the server's matching
- race:     ``101`` to the first usable conn (first ``HandshakeOk``; for the relay,
            ``RelayReady``)
- pick:     first usable conn to ``Picked`` (the picker's decision)

The baseline, measured in the same run, is one plain HTTP round trip to the same
server (TCP connect, ``GET /healthz``, response): the floor for anything that talks
to a server. Target: p2p p50 below 10 ms.

Usage: ``.venv/bin/python bench/connect.py [--attempts N] [--json]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from dataclasses import dataclass, field

from rdv_core.addrs import AddrSpace
from rdv_core.client import Client
from rdv_core.events import (
    Event,
    HandshakeOk,
    Picked,
    RelayReady,
    ServerConnected,
    ServerResponded,
)
from rdv_core.front_native import start_native
from rdv_core.server import RdvServer

TARGET_P2P_P50_MS = 10.0
PHASES = ("setup", "server", "lobby", "race", "pick", "total")


@dataclass
class Samples:
    """Milliseconds per phase, one value per attempt."""

    phases: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PHASES})
    relayed: int = 0

    def add(self, events: list[Event], total_ms: float) -> None:
        connected = next(e for e in events if isinstance(e, ServerConnected))
        responded = next(e for e in events if isinstance(e, ServerResponded))
        picked = next(e for e in events if isinstance(e, Picked))
        if picked.is_relay:
            self.relayed += 1
            first = next(e.t for e in events if isinstance(e, RelayReady))
        else:
            first = next(e.t for e in events if isinstance(e, HandshakeOk))
        setup = connected.t - connected.connect_s
        values = {
            "setup": setup,
            "server": connected.connect_s,
            "lobby": responded.lobby_s,
            "race": first - responded.t,
            "pick": picked.t - first,
        }
        for name, seconds in values.items():
            self.phases[name].append(seconds * 1000)
        self.phases["total"].append(total_ms)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def baseline(host: str, port: int, attempts: int) -> list[float]:
    """One HTTP round trip to the server per attempt, in ms."""
    out = []
    for _ in range(attempts):
        start = time.perf_counter()
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        await reader.read()
        out.append((time.perf_counter() - start) * 1000)
        writer.close()
        await writer.wait_closed()
    return out


async def attempts(url: str, spaces: AddrSpace, count: int, prefix: str) -> Samples:
    samples = Samples()
    for i in range(count):
        events: list[Event] = []
        dialer = Client(spaces=spaces, timeout=10, on_event=events.append)
        accepter = Client(spaces=spaces, timeout=10)
        token = f"{prefix}-{i}"
        accept = asyncio.create_task(accepter.accept(url, token))
        start = time.perf_counter()
        conn = await dialer.dial(url, token)
        total_ms = (time.perf_counter() - start) * 1000
        await conn.close()
        await (await accept).close()
        samples.add(events, total_ms)
    return samples


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
    print(f"  total p50 = {ratio:.1f}x the baseline HTTP round trip")
    return {"attempts": count, "relayed": samples.relayed, "phases": rows, "ratio": ratio}


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=60, help="attempts per mode (>= 1)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args()

    server = RdvServer()
    front = await start_native(server, host="127.0.0.1", port=0)
    try:
        # Warm up: imports, the resolver, the server's first allocations.
        await attempts(front.url, AddrSpace.LOOPBACK, 3, "warm")
        base = await baseline("127.0.0.1", front.port, args.attempts)
        p2p = await attempts(front.url, AddrSpace.LOOPBACK, args.attempts, "p2p")
        relay = await attempts(front.url, AddrSpace.NONE, args.attempts, "relay")
    finally:
        await server.close()
        await front.close()

    base_p50 = percentile(base, 50)
    print(f"baseline: HTTP round trip to the server p50 {base_p50:.2f} ms, "
          f"p90 {percentile(base, 90):.2f} ms")  # fmt: skip
    results = {
        "baseline_ms": {"p50": base_p50, "p90": percentile(base, 90)},
        "p2p": report("p2p (spaces loopback4,loopback6, wait-for-p2p 1s)", p2p, base_p50),
        "relay": report("relay (spaces none)", relay, base_p50),
    }
    p2p_p50 = percentile(p2p.phases["total"], 50)
    ok = p2p_p50 < TARGET_P2P_P50_MS and p2p.relayed == 0
    verdict = "PASS" if ok else "FAIL"
    print(f"\ntarget p2p p50 < {TARGET_P2P_P50_MS:g} ms: {p2p_p50:.2f} ms -> {verdict}")
    if args.json:
        print(json.dumps(results, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
