"""Connect time of two whole stacks on loopback: a Go rdv stack against rdv's, fresh processes.

``bench/connect.py --go-client PATH`` compares clients at the same server and needs a Go CLI
that speaks v0.0.6's rdv/1. A Go build of another dialect (``betamos/rdv`` before v0.0.6:
token in an ``Rdv-Token`` header, ``HELLO``/``CONFIRM`` lines) cannot meet our server or
peers, so this compares stack with stack instead: each stack has its own server (the Go CLI's
``serve``, ``rdv serve``), and every attempt starts a fresh accepter process and then a fresh
dialer process of that stack. The time is each dialer's own report, from its dial call to the
connected conn: the Go CLI's ``peer connected ... dur=`` line, rdv's ``Picked.elapsed_s``
(``rdv dial --events``). Attempts alternate between the stacks.

The Go CLI's default address spaces leave loopback out (it would relay every time here): build
it with ``spaces = rdv.SpaceLoopback`` in ``cmd/main.go`` (README "Pipe mode"). A Go
peer dials only the candidates rdv or Go peers report here, all of them loopback; rdv's peers
use ``--spaces loopback4``. Every address is 127.0.0.1 or ::1.

    .venv/bin/python bench/stacks.py --go PATH [--attempts 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import socket
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

RDV = [sys.executable, "-m", "rdv_tui"]
#: The Go CLI's report: ``INFO client: peer connected is_relay=false addr=... dur=1.57613ms``.
GO_CONNECTED = re.compile(r"peer connected is_relay=(\w+).*?dur=([0-9.]+)(ns|us|µs|ms|s)\b")
GO_UNITS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1000.0}
#: How long a fresh rdv accepter gets to start Python and reach the lobby before the dialer
#: starts (a fresh Go accepter needs a few ms); the dialer's clock starts at its own call.
RDV_ACCEPTER_START_S = 0.6
GO_ACCEPTER_START_S = 0.05
QUIET = asyncio.subprocess.DEVNULL


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def listening(port: int) -> None:
    for _ in range(500):
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.01)
    raise SystemExit(f"nothing listened on 127.0.0.1:{port} within 5 s")


@contextlib.asynccontextmanager
async def server(command: list[str], port: int) -> AsyncIterator[str]:
    proc = await asyncio.create_subprocess_exec(*command, stdout=QUIET, stderr=QUIET)
    try:
        await listening(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()


async def go_attempt(go: str, url: str, token: str) -> tuple[float, bool]:
    """One fresh Go accepter and dialer: the dialer's ms, and whether it relayed."""
    accepter = await asyncio.create_subprocess_exec(
        go, "accept", url, token, stdin=QUIET, stdout=QUIET, stderr=QUIET
    )
    try:
        await asyncio.sleep(GO_ACCEPTER_START_S)
        dialer = await asyncio.create_subprocess_exec(
            go, "dial", url, token, stdin=QUIET, stdout=QUIET, stderr=asyncio.subprocess.PIPE
        )
        _, stderr = await asyncio.wait_for(dialer.communicate(), 20)
        await asyncio.wait_for(accepter.wait(), 20)
    finally:
        if accepter.returncode is None:
            accepter.kill()
        await accepter.wait()
    match = GO_CONNECTED.search(stderr.decode("utf-8", "replace"))
    if match is None:
        raise SystemExit(f"{go} dial: no 'peer connected ... dur=' line in {stderr[-300:]!r}")
    return float(match.group(2)) * GO_UNITS[match.group(3)], match.group(1) == "true"


async def rdv_attempt(url: str, token: str, events: Path) -> tuple[float, bool]:
    """One fresh ``rdv accept`` and ``rdv dial``: the dialer's ms, and whether it relayed."""
    accepter = await asyncio.create_subprocess_exec(
        *RDV, "accept", "--spaces", "loopback4", url, token, stdin=QUIET, stdout=QUIET, stderr=QUIET
    )
    try:
        await asyncio.sleep(RDV_ACCEPTER_START_S)
        dialer = await asyncio.create_subprocess_exec(
            *RDV, "dial", "--spaces", "loopback4", "--events", str(events), url, token,
            stdin=QUIET, stdout=QUIET, stderr=QUIET,
        )  # fmt: skip
        await asyncio.wait_for(dialer.wait(), 20)
        await asyncio.wait_for(accepter.wait(), 20)
    finally:
        if accepter.returncode is None:
            accepter.kill()
        await accepter.wait()
    return picked(events)


def picked(events: Path) -> tuple[float, bool]:
    """The ``Picked`` event of an ``rdv dial --events`` file: ms, and whether it relayed."""
    for line in events.read_text().splitlines():
        event = json.loads(line)
        if event.get("type") == "Picked":
            return float(event["elapsed_s"]) * 1000, bool(event["is_relay"])
    raise SystemExit(f"rdv dial wrote no Picked event to {events}")


def describe(name: str, values: list[float], relayed: int) -> str:
    ordered = sorted(values)
    tenth = len(ordered) // 10
    p50 = statistics.median(ordered)
    return (
        f"{name:<4} {len(ordered)} attempts, {relayed} relayed: p50 {p50:.2f} ms,"
        f" p10 {ordered[tenth]:.2f}, p90 {ordered[-1 - tenth]:.2f}, min {ordered[0]:.2f}"
    )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--go", required=True, help="a Go rdv CLI with the loopback space")
    parser.add_argument("--attempts", type=int, default=30)
    args = parser.parse_args()
    go_port, rdv_port = free_port(), free_port()
    times: dict[str, list[float]] = {"go": [], "rdv": []}
    relayed = {"go": 0, "rdv": 0}
    async with (
        server([args.go, "-l", f"127.0.0.1:{go_port}", "serve"], go_port) as go_url,
        server([*RDV, "serve", "--listen", f"127.0.0.1:{rdv_port}"], rdv_port) as rdv_url,
    ):
        with tempfile.TemporaryDirectory() as scratch:
            for i in range(args.attempts):
                ms, relay = await go_attempt(args.go, go_url, f"go-{i}")
                times["go"].append(ms)
                relayed["go"] += relay
                ms, relay = await rdv_attempt(rdv_url, f"rdv-{i}", Path(scratch, f"{i}.jsonl"))
                times["rdv"].append(ms)
                relayed["rdv"] += relay
    for name in ("go", "rdv"):
        print(describe(name, times[name], relayed[name]))
    ratio = statistics.median(times["rdv"]) / statistics.median(times["go"])
    print(f"rdv p50 / Go p50 = {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
