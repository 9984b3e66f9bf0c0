"""A real HTTP proxy for the tests: Debian's ``tinyproxy``, run in the foreground on loopback.

:func:`tinyproxy` starts one with a config written to a temporary folder (port chosen
free, listening on 127.0.0.1 only, optional Basic auth and ``ConnectPort`` allow list)
and stops it afterwards; :class:`Proxy` tells its URL and reads its log.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

TINYPROXY = shutil.which("tinyproxy")


@dataclass
class Proxy:
    port: int
    log: Path
    user: str | None = None
    password: str | None = None

    @property
    def url(self) -> str:
        auth = f"{self.user}:{self.password}@" if self.user is not None else ""
        return f"http://{auth}127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert isinstance(port, int)
        return port


@contextlib.contextmanager
def tinyproxy(
    folder: Path,
    *,
    auth: tuple[str, str] | None = None,
    connect_ports: Sequence[int] = (),
    extra: Sequence[str] = (),
) -> Iterator[Proxy]:
    """A running tinyproxy; ``connect_ports`` empty means CONNECT to any port."""
    if TINYPROXY is None:
        pytest.skip("tinyproxy is not installed (apt-get install tinyproxy)")
    port = _free_port()
    log = folder / "tinyproxy.log"
    lines = [
        f"Port {port}",
        "Listen 127.0.0.1",
        "Timeout 30",
        "MaxClients 20",
        f'LogFile "{log}"',
        "LogLevel Connect",
        'ViaProxyName "tinyproxy"',
        "Allow 127.0.0.1",
        *(f"ConnectPort {p}" for p in connect_ports),
        *extra,
    ]
    if auth is not None:
        lines.append(f"BasicAuth {auth[0]} {auth[1]}")
    conf = folder / "tinyproxy.conf"
    conf.write_text("\n".join(lines) + "\n")
    process = subprocess.Popen(
        [TINYPROXY, "-d", "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 5
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                err = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise RuntimeError(f"tinyproxy did not start: {err.strip()}")
            time.sleep(0.02)
        yield Proxy(port, log, *(auth or (None, None)))
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
