"""What bench/transfer.py measures with, besides rdv itself: the result and the wormhole baseline.

:class:`Result` is one variant's measurement (wall and CPU seconds for ``size`` bytes);
:func:`bench_wormhole` runs magic-wormhole's ``send`` / ``receive`` with a local mailbox
server and transit relay on 127.0.0.1 (the comparison the driver's docstring describes).
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

GiB = 1 << 30


@dataclass
class Result:
    name: str
    wall_s: float
    cpu_s: float
    size: int
    note: str = ""

    @property
    def gib_s(self) -> float:
        return self.size / GiB / self.wall_s

    @property
    def cpu_per_gib(self) -> float:
        return self.cpu_s / (self.size / GiB)


# ----- magic-wormhole


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


#: Runs the wormhole CLI with address discovery pinned to 127.0.0.1, so that its direct
#: (p2p) hint is a loopback address and no traffic goes to this machine's other addresses.
WORMHOLE_LOOPBACK = (
    "import sys\n"
    "import wormhole.ipaddrs\n"
    "wormhole.ipaddrs.find_addresses = lambda: ['127.0.0.1']\n"
    "from wormhole.cli.cli import wormhole\n"
    "sys.argv[0] = 'wormhole'\n"
    "sys.exit(wormhole())\n"
)


def bench_wormhole(src: Path, dst: Path, size: int, direct: bool) -> Result:
    bindir = Path(sys.executable).parent
    wormhole, twist = bindir / "wormhole", bindir / "twist"
    if not wormhole.exists() or not twist.exists():
        raise RuntimeError(
            "magic-wormhole is not installed: pip install magic-wormhole "
            "magic-wormhole-mailbox-server magic-wormhole-transit-relay"
        )
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    logs = dst / "wormhole-logs"
    logs.mkdir(exist_ok=True)
    services = [
        subprocess.Popen(
            [str(twist), "wormhole-mailbox", "--port", f"tcp:{ports[0]}:interface=127.0.0.1"],
            stdout=open(logs / "mailbox.log", "w"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            cwd=logs,
        ),
        subprocess.Popen(
            [str(twist), "transitrelay", "--port", f"tcp:{ports[1]}:interface=127.0.0.1"],
            stdout=open(logs / "relay.log", "w"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            cwd=logs,
        ),
    ]
    try:
        for port in ports:
            _wait_port(port)
        env = {
            **os.environ,
            "WORMHOLE_RELAY_URL": f"ws://127.0.0.1:{ports[0]}/v1",
            "WORMHOLE_TRANSIT_HELPER": f"tcp:127.0.0.1:{ports[1]}",
        }
        common = ["--hide-progress"] if direct else ["--no-listen", "--hide-progress"]
        cli = [sys.executable, "-c", WORMHOLE_LOOPBACK]
        code = "7-bench-mark"
        services0 = sum(_proc_cpu(proc.pid) for proc in services)
        cpu0 = _children_cpu()
        start = time.monotonic()
        send = subprocess.Popen(
            [*cli, "send", *common, "--code", code, str(src)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        recv = subprocess.run(
            [*cli, "receive", *common, "--accept-file", "-o", str(dst / src.name), code],
            env=env,
            capture_output=True,
            timeout=3600,
        )
        send_out, _ = send.communicate(timeout=60)
        end = time.monotonic()
        if recv.returncode or send.returncode:
            raise RuntimeError(
                f"wormhole failed: {recv.stdout.decode()[-300:]} {send_out.decode()[-300:]}"
            )
        clients_cpu = _children_cpu() - cpu0
        # Only what the services spent during the transfer (not their start-up).
        services_cpu = sum(_proc_cpu(proc.pid) for proc in services) - services0
    finally:
        for proc in services:
            proc.terminate()
        for proc in services:
            proc.wait(timeout=10)
    received = dst / src.name
    assert received.stat().st_size == size
    received.unlink()
    output = (recv.stdout + recv.stderr).decode(errors="replace")
    # "Receiving (->relay:tcp:...)", "(->tcp:...)" (we dialled) or "(<-ip:port)" (it dialled us).
    direct_marks = ("Receiving (->tcp:", "Receiving (<-")
    path = (
        "relay"
        if "->relay:" in output
        else "direct"
        if any(mark in output for mark in direct_marks)
        else "?"
    )
    if path != ("direct" if direct else "relay"):
        raise RuntimeError(f"wormhole took the {path} path: {output[-300:]}")
    note = (
        f"whole commands (start-up, rendezvous) incl.; path {path}; "
        f"relay+mailbox CPU {services_cpu:.2f} s"
    )
    name = "wormhole p2p" if direct else "wormhole relay"
    return Result(name, end - start, clients_cpu + services_cpu, size, note)


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a running process has used, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_port(port: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"service on port {port} did not start")
