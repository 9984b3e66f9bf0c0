"""Run inside a fresh network namespace: a library's fast-start ``await conn.aclose()``
whose direct path goes silent (a blackhole: every packet dropped, no RST) while the close
waits for the peer's ACK; prints one JSON object.

Used by ``tests/test_conn_aclose.py`` (docs/PROTOCOL.md 16.4 and 16.10). A real server
(in process) and two library peers on the namespace's loopback; once the relay is retired
on both sides, nftables drops every TCP packet, the dialer writes a line and closes.

Usage: ``python conn_close_silent_driver.py`` with ``lo`` up in the namespace.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repo
from rdv_core import AddrSpace, Client, Event, RdvServer, RelayRetired, serve_native
from rdv_core.client._silence import SILENCE_ENV

#: The last path's silence limit here (``RDV_DIRECT_SILENCE``): 2 s, not 15; above the
#: watch's 1 s tick, so that the tick after the close comes before the limit (at 1 s,
#: the code before the fix still caught it at that tick in 9 runs of 10).
SILENCE_S = 2
#: The code before the fix waited TCP's own timeout (about 15 minutes).
WAIT_S = 10.0


def nft(*args: str) -> None:
    subprocess.run(["nft", *args], check=True, capture_output=True, text=True)


async def main() -> dict[str, Any]:
    retired: list[str] = []

    def client(side: str) -> Client:
        def seen(event: Event) -> None:
            if isinstance(event, RelayRetired):
                retired.append(side)

        return Client(spaces=AddrSpace.LOOPBACK4, fast_start=True, timeout=10, on_event=seen)

    async with serve_native(RdvServer(), host="127.0.0.1", port=0) as front:
        accepting = asyncio.create_task(client("accept").accept(front.url, "silent-close"))
        await asyncio.sleep(0.1)
        dialer = await client("dial").dial(front.url, "silent-close")
        accepter = await accepting
        dialer.writer.write(b"one\n")
        assert await accepter.reader.readline() == b"one\n"
        accepter.writer.write(b"one\n")
        assert await dialer.reader.readline() == b"one\n"
        async with asyncio.timeout(WAIT_S):
            while len(set(retired)) < 2:  # noqa: ASYNC110 (polls the events)
                await asyncio.sleep(0.02)
        nft("add", "table", "inet", "silent")
        nft("add", "chain", "inet", "silent", "out", "{ type filter hook output priority 0; }")
        nft("add", "rule", "inet", "silent", "out", "meta", "l4proto", "tcp", "drop")
        dialer.writer.write(b"two from dial\n")
        started = time.monotonic()
        report: dict[str, Any] = {}
        try:
            async with asyncio.timeout(WAIT_S):
                await dialer.aclose()
            report["error"] = None
        except TimeoutError:
            report["error"] = f"aclose() still waiting after {WAIT_S:.0f} s"
        except OSError as exc:
            report["error"] = f"{type(exc).__name__}: {exc}"
            report["unconfirmed"] = getattr(exc, "unconfirmed", None)
        report["ended_s"] = round(time.monotonic() - started, 2)
        accepter.writer.transport.abort()
        nft("delete", "table", "inet", "silent")
        return report


if __name__ == "__main__":
    os.environ[SILENCE_ENV] = str(SILENCE_S)
    print(json.dumps(asyncio.run(main())))
