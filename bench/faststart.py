"""Fast start against classic rdv/1: time to first byte, time to direct, and a big
transfer across the switch (docs/PROTOCOL.md section 16).

Everything on loopback, in this process: a real rdv server (native front) and two real
peers. Per attempt the accepter waits in the lobby first; we time from ``dial()`` to
the accepter reading the dialer's first byte. Two paths:

- ``direct``: both peers may use loopback, so a direct conn opens at once;
- ``relay-only``: the accepter offers no address and listens nowhere; the dialer's
  one candidate (the accepter's server-observed port) refuses, as a path through
  symmetric NATs would stay silent. Classic waits the picker's second, fast start does
  not wait at all.

Then ``--size`` bytes (default 256 MiB) go both ways at once on a fast-start conn while
it moves from the relay to the direct path; both digests must match. The baseline, in
the same run: the same transfer on a classic direct conn.

Target: on the relay-only path, fast start's first byte at least 10x sooner than classic.

The issue's other figure, "the first byte within one relay round trip of the 101": per
fast-start attempt, the accepter's first byte after the dialer's ``101`` (both on the host's
monotonic clock) against the relay RTT the dialer measured in the same attempt (least of 3
PINGs), printed as medians and as "within one RTT in n/N attempts". On loopback in one
process the RTT is a fraction of a millisecond, less than the event-loop work between the
101 and the first byte (both peers and the server share one loop here). ``--lab
PRESET`` measures the same on a path with delay, in the NAT lab (real processes in network
namespaces, ``rdv lab faststart``; needs root): e.g. ``--lab delay25`` (25 ms per router).

Usage: ``.venv/bin/python bench/faststart.py [--attempts N] [--size 256M] [--json]
[--lab PRESET]``
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

from rdv_core.client import Client, Conn
from rdv_core.events import (
    Event,
    FastStartNegotiated,
    FirstByteReceived,
    PeerJoined,
    RelayRetired,
    ServerResponded,
    UpgradeAttempt,
    Upgraded,
)
from rdv_core.server import RdvServer, start_native
from rdv_core.wire import AddrSpace

LOOP = AddrSpace.LOOPBACK4 | AddrSpace.LOOPBACK6
TARGET_RATIO = 10.0
CHUNK = 1 << 20


class Bench:
    def __init__(self) -> None:
        self._joined: dict[str, asyncio.Future[None]] = {}
        self.server = RdvServer(on_event=self._on_event)
        self.url = ""
        self._n = 0

    def _on_event(self, event: Event) -> None:
        if isinstance(event, PeerJoined) and event.token in self._joined:
            future = self._joined[event.token]
            if not future.done():
                future.set_result(None)

    async def start(self) -> None:
        self.front = await start_native(self.server, host="127.0.0.1", port=0)
        self.url = self.front.url

    async def close(self) -> None:
        await self.server.close()
        await self.front.close()

    async def pair(
        self,
        fast: bool,
        path: str,
        d_events: list[Event] | None = None,
        a_events: list[Event] | None = None,
    ) -> tuple[Conn, Conn, float]:
        """A conn pair, and the ms from ``dial()`` to the accepter's first byte."""
        self._n += 1
        token = f"fast-bench-{self._n}"
        a_spaces = LOOP if path == "direct" else AddrSpace.NONE
        a_on_event = a_events.append if a_events is not None else None
        accepter = Client(spaces=a_spaces, timeout=10, fast_start=fast, on_event=a_on_event)
        self._joined[token] = asyncio.get_running_loop().create_future()
        accepting = asyncio.ensure_future(accepter.accept(self.url, token))
        try:
            await asyncio.wait_for(self._joined[token], 5)
        finally:
            del self._joined[token]
        on_event = d_events.append if d_events is not None else None
        dialer = Client(spaces=LOOP, timeout=10, fast_start=fast, on_event=on_event)
        started = time.perf_counter()
        d = await dialer.dial(self.url, token)
        d.writer.write(b"!")
        a = await accepting
        await a.reader.readexactly(1)
        return d, a, (time.perf_counter() - started) * 1000


async def first_bytes(bench: Bench, attempts: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for path in ("direct", "relay-only"):
        for fast in (False, True):
            firsts: list[float] = []
            to_direct: list[float] = []
            after_101: list[float] = []
            rtts: list[float] = []
            within = 0
            for _ in range(attempts):
                events: list[Event] = []
                a_events: list[Event] = []
                d, a, ms = await bench.pair(fast, path, events, a_events)
                firsts.append(ms)
                if fast:
                    await asyncio.sleep(0.05)  # the PINGs
                    after_101.append(first_byte_after_101(events, a_events))
                    rtt = next((e for e in events if isinstance(e, UpgradeAttempt)), None)
                    if rtt is not None and rtt.relay_rtt_s is not None:
                        rtts.append(rtt.relay_rtt_s * 1000)
                        within += after_101[-1] <= rtts[-1]
                if fast and path == "direct" and d.upgrader is not None:
                    await asyncio.wait_for(d.upgrader.direct.wait(), 10)
                    up = next(e for e in events if isinstance(e, Upgraded))
                    to_direct.append(up.after_s * 1000)
                await d.close()
                await a.close()
            name = f"{path} {'fast start' if fast else 'classic'}"
            out[name] = {"first_byte_p50_ms": statistics.median(firsts)}
            if to_direct:
                out[name]["to_direct_p50_ms"] = statistics.median(to_direct)
            if after_101:
                out[name]["first_byte_after_dialer_101_p50_ms"] = statistics.median(after_101)
            if rtts:
                out[name]["relay_rtt_p50_ms"] = statistics.median(rtts)
                out[name]["first_byte_within_one_rtt"] = within
                out[name]["attempts_with_rtt"] = len(rtts)
    return out


def first_byte_after_101(d_events: list[Event], a_events: list[Event]) -> float:
    """ms from the dialer's ``101`` (the sender's) to the accepter's first byte, on the
    host's monotonic clock (each side's confirmed ``FastStartNegotiated`` names its
    clock's origin; the lab measures the same: rdv_core/lab/_faststart.py)."""

    def origin(events: list[Event]) -> float:
        return next(
            e.origin for e in events if isinstance(e, FastStartNegotiated) and e.origin is not None
        )

    d101 = next(e.t for e in d_events if isinstance(e, ServerResponded)) + origin(d_events)
    first = next(e.t for e in a_events if isinstance(e, FirstByteReceived)) + origin(a_events)
    return (first - d101) * 1000


def first_byte_line(after_101: list[float], rtts: list[float], within: int, n: int) -> str:
    """The issue's figure: first byte after the 101 against the relay RTT of the same run."""
    if not after_101 or not rtts:
        return "first byte after the 101: not measured"
    first, rtt = statistics.median(after_101), statistics.median(rtts)
    return (
        f"first byte {first:.1f} ms after the 101, relay RTT {rtt:.1f} ms "
        f"({first / rtt:.1f} RTTs); within one relay RTT in {within}/{n}"
    )


def lab_first_bytes(preset: str, runs: int) -> str:
    """``--lab``: the same figure from ``rdv lab faststart PRESET`` runs (needs root)."""
    from rdv_core.lab import get_preset
    from rdv_core.lab._faststart import run_faststart

    result = run_faststart(get_preset(preset), runs, rdv_command=[sys.executable, "-m", "rdv_tui"])
    pairs = [
        (r.first_byte_ms, r.relay_rtt_ms)
        for r in result.runs
        if r.first_byte_ms is not None and r.relay_rtt_ms is not None
    ]
    within = sum(first <= rtt for first, rtt in pairs)
    line = first_byte_line([p[0] for p in pairs], [p[1] for p in pairs], within, len(pairs))
    return f"lab {preset}, {len(result.runs)} runs: {line}"


async def both_ways(d: Conn, a: Conn, size: int) -> tuple[float, bool]:
    """``size`` bytes each way at once; seconds and whether both digests matched."""

    async def send(conn: Conn, seed: int) -> str:
        digest = hashlib.blake2b()
        block = bytearray(os.urandom(CHUNK))
        left = size
        while left:
            block[:8] = (seed * 1_000_003 + left).to_bytes(8, "big")  # no two blocks alike
            piece = bytes(block[: min(CHUNK, left)])
            digest.update(piece)
            conn.writer.write(piece)
            await conn.writer.drain()
            left -= len(piece)
        conn.writer.write_eof()
        return digest.hexdigest()

    async def receive(conn: Conn) -> str:
        digest = hashlib.blake2b()
        got = 0
        while chunk := await conn.reader.read(CHUNK):
            digest.update(chunk)
            got += len(chunk)
        return digest.hexdigest() if got == size else f"short: {got}"

    started = time.perf_counter()
    sent_d, sent_a, got_a, got_d = await asyncio.gather(
        send(d, 1), send(a, 2), receive(a), receive(d)
    )
    return time.perf_counter() - started, sent_d == got_a and sent_a == got_d


async def transfers(bench: Bench, size: int) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for name, fast in (("classic direct", False), ("fast start across the switch", True)):
        events: list[Event] = []
        d, a, _ = await bench.pair(fast, "direct", events)
        try:
            seconds, ok = await both_ways(d, a, size)
            during = any(isinstance(e, Upgraded) for e in events)
            # A short transfer can end on the relay before the upgrade attaches (its
            # PINGs queue behind the data); closing then would cancel the upgrade and
            # hide it. Wait a little, and say when the switch came.
            for _ in range(40):
                if not fast or any(isinstance(e, RelayRetired) for e in events):
                    break
                await asyncio.sleep(0.05)
        finally:
            await d.close()
            await a.close()
        upgraded = any(isinstance(e, Upgraded) for e in events)
        retired = any(isinstance(e, RelayRetired) for e in events)
        switched: bool | str = upgraded
        if fast and upgraded and not during:
            switched = "after the transfer (it ended on the relay first: try a bigger --size)"
        out[name] = {
            "seconds": round(seconds, 2),
            "MiB/s each way": round(size / seconds / (1 << 20), 1),
            "digests equal": ok,
            "switched": switched,
            "relay retired": retired,
        }
    return out


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper()
    return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


async def run(step: Callable[[Bench], Awaitable[dict[str, object]]]) -> dict[str, object]:
    bench = Bench()
    await bench.start()
    try:
        return await step(bench)
    finally:
        await bench.close()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=10, help="attempts per case (>= 1)")
    parser.add_argument("--size", type=parse_size, default=256 << 20, help="bytes each way")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    parser.add_argument("--lab", metavar="PRESET", help="also measure in the NAT lab (root)")
    args = parser.parse_args()
    print(f"rdv fast-start bench on loopback, load {os.getloadavg()[0]:.2f}", flush=True)
    firsts = await run(lambda b: first_bytes(b, max(1, args.attempts)))  # type: ignore[arg-type,return-value]
    for name, values in firsts.items():
        figures = ", ".join(f"{k} {v:.1f}" for k, v in values.items())  # type: ignore[union-attr]
        print(f"  {name:<24} {figures}", flush=True)
    classic = firsts["relay-only classic"]["first_byte_p50_ms"]  # type: ignore[index]
    fast = firsts["relay-only fast start"]["first_byte_p50_ms"]  # type: ignore[index]
    ratio = classic / fast if fast else float("inf")
    verdict = "meets" if ratio >= TARGET_RATIO else "misses"
    print(
        f"  relay-only first byte: fast start {ratio:.0f}x sooner ({verdict} >= {TARGET_RATIO:g}x)"
    )
    for name, values in firsts.items():
        if "attempts_with_rtt" in values:  # type: ignore[operator]
            fig: dict[str, float] = values  # type: ignore[assignment]
            line = first_byte_line(
                [fig["first_byte_after_dialer_101_p50_ms"]],
                [fig["relay_rtt_p50_ms"]],
                int(fig["first_byte_within_one_rtt"]),
                int(fig["attempts_with_rtt"]),
            )
            print(f"  loopback {name}: {line}", flush=True)
    if args.lab:
        print(f"  {lab_first_bytes(args.lab, max(1, args.attempts))}", flush=True)
    moved = await run(lambda b: transfers(b, args.size))  # type: ignore[arg-type,return-value]
    for name, values in moved.items():
        figures = ", ".join(f"{k} {v}" for k, v in values.items())  # type: ignore[union-attr]
        print(f"  {args.size >> 20} MiB both ways, {name}: {figures}", flush=True)
    if args.json:
        print(json.dumps({"first_byte": firsts, "transfer": moved, "ratio": ratio}))
    ok = ratio >= TARGET_RATIO and all(v["digests equal"] for v in moved.values())  # type: ignore[index]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
