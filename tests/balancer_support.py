"""Real load balancers in front of real ``rdv serve`` processes, all on loopback.

:func:`backends` starts three ``rdv serve`` processes (each with its own ``--events``
file, so a test can tell which backend a token landed on); :func:`balancer` runs HAProxy
or nginx as the test's own process with the *shipped* config from ``deploy/`` (addresses
from ``RDV_LB_LISTEN`` and ``RDV_BACKEND_1..3``, rendered by ``deploy/nginx/render.sh``
for nginx), in a temporary folder, never as a system service. :func:`run_pair` meets a
dialer and an accepter through the balancer with the real client and checks the bytes.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from rdv_core import AddrSpace, Client, Conn, PickFirst, ServerConnected, WaitForP2P

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
BALANCERS = ("haproxy", "nginx")
#: What each balancer needs from its backends: HAProxy sends PROXY v2, nginx forwarding
#: headers; both connect from 127.0.0.1.
BACKEND_ARGS = {
    # --drain as in deploy/rdv@.service (longer: the test ends the pair in flight itself).
    "haproxy": ("--proxy-protocol", "--trust-proxy", "127.0.0.1/32", "--drain", "600"),
    "nginx": ("--trust-proxy", "127.0.0.1/32", "--drain", "600"),
}
PAYLOAD = 48 * 1024


def binary(name: str) -> str | None:
    """The path of a balancer's binary (also in /usr/sbin, off a user's PATH), or None."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")


def missing_binary(name: str) -> str | None:
    """Why a balancer test cannot run here (its binary is not installed), or None."""
    if binary(name) is None:
        return f"{name} is not installed (apt-get install {name}; CI installs it)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Backend:
    """One ``rdv serve`` process."""

    name: str
    process: asyncio.subprocess.Process
    port: int
    events_path: Path
    stderr_path: Path

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def events(self) -> list[dict[str, object]]:
        try:
            text = self.events_path.read_text()
        except FileNotFoundError:
            return []
        # The backend is still appending: a line without its newline is still being written.
        whole = text[: text.rfind("\n") + 1]
        return [json.loads(line) for line in whole.splitlines() if line.strip()]

    def matched_tokens(self) -> list[str]:
        """Tokens of every pair this backend matched, in order."""
        return [str(e["token"]) for e in self.events() if e.get("type") == "PairMatched"]

    def joined(self) -> list[dict[str, object]]:
        return [e for e in self.events() if e.get("type") == "PeerJoined"]

    @property
    def alive(self) -> bool:
        return self.process.returncode is None


async def _start_backend(name: str, folder: Path, args: Sequence[str]) -> Backend:
    events_path, stderr_path = folder / f"{name}.events.jsonl", folder / f"{name}.stderr"
    with stderr_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "rdv_tui",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--lobby-timeout",
            "20",
            "--loop",
            "asyncio",
            "--events",
            str(events_path),
            *args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        async with asyncio.timeout(30):
            while True:
                match = re.search(
                    r"listening on http://127\.0\.0\.1:(\d+)", stderr_path.read_text()
                )
                if match:
                    return Backend(name, process, int(match.group(1)), events_path, stderr_path)
                if process.returncode is not None:
                    raise RuntimeError(f"{name} exited: {stderr_path.read_text()}")
                await asyncio.sleep(0.05)
    except BaseException:
        process.kill()
        await process.wait()
        raise


@asynccontextmanager
async def backends(
    folder: Path, args: Sequence[str], count: int = 3
) -> AsyncIterator[list[Backend]]:
    """``count`` ``rdv serve`` processes on 127.0.0.1; killed on exit if still running."""
    started = await asyncio.gather(
        *(_start_backend(f"rdv{i + 1}", folder, args) for i in range(count)),
        return_exceptions=True,
    )
    ok = [b for b in started if isinstance(b, Backend)]
    try:
        for result in started:
            if isinstance(result, BaseException):
                raise result
        yield ok
    finally:
        for backend in ok:
            if backend.alive:
                backend.process.kill()
            await backend.process.wait()


@dataclass
class Balancer:
    kind: str
    port: int
    process: asyncio.subprocess.Process
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def balancer_env(port: int, backend_addrs: Sequence[str]) -> dict[str, str]:
    env = dict(os.environ, RDV_LB_LISTEN=f"127.0.0.1:{port}")
    for i, addr in enumerate(backend_addrs, 1):
        env[f"RDV_BACKEND_{i}"] = addr
    return env


def balancer_command(
    kind: str, folder: Path, env: dict[str, str], edit: Callable[[str], str] | None = None
) -> list[str]:
    """The command that runs ``kind`` in the foreground with the shipped config (or with
    ``edit`` applied to it, for a variant)."""
    if kind == "haproxy":
        config = DEPLOY / "haproxy.cfg"
        if edit is not None:
            config = folder / "haproxy.cfg"
            config.write_text(edit((DEPLOY / "haproxy.cfg").read_text()))
        return [binary("haproxy") or "haproxy", "-f", str(config), "-db"]
    conf = subprocess.run(
        [str(DEPLOY / "nginx" / "render.sh")], env=env, check=True, capture_output=True
    ).stdout
    (folder / "nginx").mkdir(exist_ok=True)
    text = conf.decode()
    (folder / "nginx" / "rdv.conf").write_text(edit(text) if edit is not None else text)
    prefix = str(folder / "nginx")
    nginx = binary("nginx") or "nginx"
    return [nginx, "-p", prefix, "-c", "rdv.conf", "-e", "stderr", "-g", "daemon off;"]


@asynccontextmanager
async def balancer(
    kind: str,
    folder: Path,
    backend_addrs: Sequence[str],
    edit: Callable[[str], str] | None = None,
    preamble: bytes = b"",
) -> AsyncIterator[Balancer]:
    """``kind`` (haproxy or nginx) on a free loopback port in front of ``backend_addrs``.

    ``preamble``: what a client must send first (a PROXY header, for ``accept-proxy``).
    """
    port = free_port()
    env = balancer_env(port, backend_addrs)
    command = balancer_command(kind, folder, env, edit)
    log_path = folder / f"{kind}.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    running = Balancer(kind, port, process, log_path)
    try:
        await _wait_healthy(running, preamble)
        yield running
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(5):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


async def _wait_healthy(lb: Balancer, preamble: bytes, within: float = 15.0) -> None:
    """Until ``GET /healthz`` through the balancer answers 200."""
    async with asyncio.timeout(within):
        while True:
            if lb.process.returncode is not None:
                raise RuntimeError(f"{lb.kind} exited: {lb.log_path.read_text()}")
            if await http_get_status(lb.port, "/healthz", preamble) == 200:
                return
            await asyncio.sleep(0.1)


async def http_get_status(port: int, path: str, preamble: bytes = b"") -> int | None:
    """The status of ``GET path`` on 127.0.0.1:port, or None if the conn fails."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return None
    try:
        request = f"GET {path} HTTP/1.1\r\nHost: rdv\r\nConnection: close\r\n\r\n"
        writer.write(preamble + request.encode())
        line = await asyncio.wait_for(reader.readline(), 5)
        parts = line.split()
        return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None
    except (OSError, TimeoutError):
        return None
    finally:
        writer.close()


def new_tokens(count: int) -> list[str]:
    return [f"t{secrets.token_hex(8)}" for _ in range(count)]


def client(p2p: bool, timeout: float = 25.0) -> Client:
    if p2p:
        return Client(spaces=AddrSpace.LOOPBACK, picker=WaitForP2P(3.0), timeout=timeout)
    return Client(spaces=AddrSpace.NONE, picker=PickFirst(), timeout=timeout)


def observed_matches_socket(conn: Conn) -> bool:
    """The address the server reported in its 101 is our socket toward the balancer."""
    connected = [e for e in conn.events if isinstance(e, ServerConnected)]
    return bool(connected) and str(conn.meta.observed_addr) == connected[0].local_addr


async def exchange(a: Conn, b: Conn, size: int = PAYLOAD) -> None:
    """Both sides write ``size`` random bytes at once; each must read the other's intact."""
    data_a, data_b = os.urandom(size), os.urandom(size)
    a.writer.write(data_a)
    b.writer.write(data_b)
    async with asyncio.timeout(15):
        got_b, got_a = await asyncio.gather(a.reader.readexactly(size), b.reader.readexactly(size))
    assert got_a == data_a and got_b == data_b


@dataclass
class PairResult:
    token: str
    dialer: Conn
    accepter: Conn


async def open_pair(url: str, token: str, p2p: bool) -> PairResult:
    """Dialer and accepter meet through ``url``; the bytes are checked both ways."""
    dialer, accepter = await asyncio.gather(
        client(p2p).dial(url, token), client(p2p).accept(url, token)
    )
    try:
        assert dialer.is_relay is (not p2p), (token, dialer.is_relay)
        assert accepter.is_relay is (not p2p), (token, accepter.is_relay)
        await exchange(dialer, accepter)
    except BaseException:
        await asyncio.gather(dialer.close(), accepter.close(), return_exceptions=True)
        raise
    return PairResult(token, dialer, accepter)


async def run_pair(url: str, token: str, p2p: bool) -> PairResult:
    """:func:`open_pair`, then both conns closed."""
    pair = await open_pair(url, token, p2p)
    await asyncio.gather(pair.dialer.close(), pair.accepter.close(), return_exceptions=True)
    return pair


async def closed_within(conn: Conn, seconds: float) -> bool:
    """True if ``conn`` ends (EOF or reset) within ``seconds`` once we stop writing."""
    try:
        async with asyncio.timeout(seconds):
            while await conn.reader.read(65536):
                pass
    except TimeoutError:
        return False
    except OSError:
        return True
    return True


async def wait_until(predicate: object, within: float, step: float = 0.05) -> None:
    assert callable(predicate)
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 (polls files another process writes)
            await asyncio.sleep(step)


def matched_counts(pool: Sequence[Backend]) -> dict[str, int]:
    """How many pairs each backend has matched so far (a mark for :func:`landed_since`)."""
    return {b.name: len(b.matched_tokens()) for b in pool}


def landed_since(pool: Sequence[Backend], mark: dict[str, int]) -> dict[str, list[str]]:
    """Token -> names of the backends that matched a pair of it since ``mark``."""
    out: dict[str, list[str]] = {}
    for backend in pool:
        for token in backend.matched_tokens()[mark.get(backend.name, 0) :]:
            out.setdefault(token, []).append(backend.name)
    return out
