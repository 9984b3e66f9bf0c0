"""``rdv serve`` as users run it: a real process, real sockets, signals."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from rdv_core.server._core import RdvServer

from tests.proc_support import kill_left
from tests.server_support import EOF, Env, RawClient


def serve_command() -> list[str]:
    """``rdv serve`` through the real dispatcher, as the console script runs it."""
    return [sys.executable, "-m", "rdv_tui", "serve"]


class Served:
    def __init__(self, process: asyncio.subprocess.Process, port: int, url: str) -> None:
        self.process = process
        self.port = port
        self.url = url
        self.stderr_lines: list[str] = []

    async def connect(self) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        return RawClient(reader, writer)

    def env(self, prefix: str = "") -> Env:
        # Env drives raw clients; its server object is unused for a separate process.
        return Env("cli", RdvServer(), self.port, prefix)

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        async with asyncio.timeout(10):
            assert self.process.stderr is not None
            rest = await self.process.stderr.read()
            self.stderr_lines += rest.decode().splitlines()
            return await self.process.wait()


@asynccontextmanager
async def rdv_serve(args: Sequence[str]) -> AsyncIterator[Served]:
    process = await asyncio.create_subprocess_exec(
        *serve_command(),
        "--listen",
        "127.0.0.1:0",
        *args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        async with asyncio.timeout(20):
            line = (await process.stderr.readline()).decode()
        match = re.fullmatch(r"rdv serve: listening on (https?://127\.0\.0\.1:(\d+)\S*)\n", line)
        assert match, line
        yield Served(process, int(match.group(2)), match.group(1))
    finally:
        await kill_left(process)


async def test_serve_relays_logs_and_stops_gracefully(tmp_path: Path) -> None:
    events_file = tmp_path / "events.jsonl"
    async with rdv_serve(["--prefix", "/rdv", "--events", str(events_file), "-v"]) as served:
        assert served.url.endswith("/rdv")
        env = served.env("/rdv")
        health = await env.raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await health.read_response())[2] == b"ok\n"
        accepter = await env.request("ACCEPT", "cli")
        await asyncio.sleep(0.1)
        dialer = await env.request("DIAL", "cli")
        await dialer.read_head()
        await accepter.read_head()
        dialer.send(b"CONTINUE\nhello")
        assert await accepter.read_exactly(14) == b"CONTINUE\nhello"
        accepter.send(b"world!")
        assert await dialer.read_exactly(6) == b"world!"
        await dialer.close()
        assert await accepter.read_for(2.0) == EOF.encode()
        await accepter.close()  # the second EOF ends the pair (docs/PROTOCOL.md section 8)
        health.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        metrics = (await health.read_response())[2].decode()
        assert "\nrdv_pairs_relayed_total 1\n" in metrics
        assert "\nrdv_relay_bytes_total 11\n" in metrics
        waiting = await env.request("ACCEPT", "left-waiting")
        await asyncio.sleep(0.1)
        assert await served.stop() == 0
        assert (await waiting.read_until_eof()).endswith(b"rdv server shutting down, try again")
    text = "\n".join(served.stderr_lines)
    assert re.search(r"pair 1 token=cli \S+ -> \S+: relayed, D->A 5 B, A->D 6 B, [\d.]+s", text), (
        text
    )
    assert "shut down with 1 in the lobby and 0 open pairs" in text
    types = [json.loads(line)["type"] for line in events_file.read_text().splitlines()]
    assert types[:5] == ["PeerJoined", "PeerJoined", "PairMatched", "RelayStarted", "RelayEnded"]
    assert types[-1] == "ServerClosed"


async def test_serve_json_logs_and_sigint(tmp_path: Path) -> None:
    async with rdv_serve(["--json-logs", "--idle-timeout", "0.2"]) as served:
        env = served.env()
        accepter = await env.request("ACCEPT", "j")
        await asyncio.sleep(0.1)
        dialer = await env.request("DIAL", "j")
        await dialer.read_head()
        await accepter.read_head()
        dialer.send(b"OTHER 192.0.2.1:7\n")
        assert await accepter.read_for(2.0) == b"" + EOF.encode()
        idle_d = await env.request("DIAL", "idle")
        await asyncio.sleep(0.1)
        idle_a = await env.request("ACCEPT", "idle")
        await idle_d.read_head()
        await idle_a.read_head()
        assert (await idle_d.read_for(3.0)).endswith(EOF.encode())  # idle timeout
        assert await served.stop(signal.SIGINT) == 0
    records = [json.loads(line) for line in served.stderr_lines if line.startswith("{")]
    pairs = [r for r in records if r.get("type") == "RelayEnded"]
    assert [(p["outcome"], p["p2p_addr"]) for p in pairs] == [
        ("p2p", "192.0.2.1:7"),
        ("none", None),
    ]
    assert pairs[1]["reason"] == "idle timeout"
    assert all(r["logger"] == "rdv.server" for r in records)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", "nope"], "invalid --listen"),
        (["--tls-cert", "x.pem"], "--tls-cert and --tls-key go together"),
        (
            ["--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"],
            "cannot read --tls-cert /nonexistent.pem",
        ),
        (["--trust-proxy", "10.0.0.0/33"], "invalid --trust-proxy"),
        (["--lobby-timeout", "-1"], "must be 0 or more seconds (and finite): '-1'"),
        (["--drain", "-1"], "must be 0 or more seconds (and finite): '-1'"),
        (["--idle-timeout", "inf"], "must be positive: 'inf'"),  # 0 says never
    ],
)
def test_serve_rejects_bad_arguments(args: list[str], message: str) -> None:
    result = subprocess.run(
        [*serve_command(), *args], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2
    assert message in result.stderr


def test_serve_never_imports_textual_or_rich() -> None:
    code = (
        "import sys, argparse\n"
        "from rdv_tui.cli.commands import serve\n"
        "p = argparse.ArgumentParser(); serve.add_parser(p.add_subparsers())\n"
        "import rdv_core.server\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')]\n"
        "print(bad)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert out.stdout.strip() == "[]"


async def test_serve_tls(tmp_path: Path) -> None:
    import ssl

    from tests.test_server_tls import make_cert

    cert, key = make_cert(tmp_path)
    async with rdv_serve(["--tls-cert", str(cert), "--tls-key", str(key)]) as served:
        assert served.url.startswith("https://127.0.0.1:")
        context = ssl.create_default_context(cafile=str(cert))
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", served.port, ssl=context, server_hostname="127.0.0.1"
        )
        client = RawClient(reader, writer)
        client.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await client.read_response())[:1] == (200,)
        await client.close()
        assert await served.stop() == 0
