"""What bench/transfer.py measures with, besides rdv itself: the result and the wormhole baseline.

:class:`Result` (from ``_transfer_table``) is one variant's measurement;
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

from _transfer_table import GiB, Result

__all__ = ["GiB", "Result"]


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


# ----- many small files: rdv send/receive (the CLI) against tar through rdv dial/accept

#: The rdv command line of this source tree (not an installed console script).
RDV_CLI = "import sys; from rdv_tui.cli import main; sys.exit(main(sys.argv[1:]))"


def make_small_files(root: Path, count: int, seed: int = 14) -> int:
    """``count`` files of 1-4 KiB in folders of 1,000 under ``root``; returns their bytes."""
    import random

    rng = random.Random(seed)
    block = os.urandom(4096)
    total = 0
    for i in range(count):
        folder = root / f"d{i // 1000:03d}"
        if i % 1000 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        size = rng.randint(1024, 4096)
        (folder / f"f{i:06d}.bin").write_bytes(block[:size])
        total += size
    return total


def _tree_stats(root: Path) -> tuple[int, int]:
    files = size = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            files += 1
            size += os.lstat(os.path.join(dirpath, name)).st_size
    return files, size


@dataclass
class SmallFilesRun:
    name: str
    wall_s: float
    cpu_s: float
    files: int
    note: str = ""


def _run_pair(receiver: str, sender: str, env: dict[str, str], limit_s: float) -> float:
    """Start ``receiver`` then ``sender`` (shell lines); both must exit 0; wall seconds.

    The receiver's stdin is a pipe held open until it exits: ``rdv accept`` half-closes
    when its stdin ends, and ``rdv dial`` then stops uploading (pipe mode ends at the
    peer's EOF), which would cut the tar stream short.
    """
    import tempfile

    with tempfile.TemporaryFile() as recv_err, tempfile.TemporaryFile() as send_err:
        start = time.monotonic()
        recv = subprocess.Popen(
            ["sh", "-c", receiver],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=recv_err,
        )
        send = subprocess.Popen(
            ["sh", "-c", sender], env=env, stdout=subprocess.DEVNULL, stderr=send_err
        )
        try:
            send.wait(timeout=limit_s)
            recv.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            for proc in (send, recv):
                proc.kill()
                proc.wait()
            raise RuntimeError(f"did not finish within {limit_s:.0f} s") from None
        finally:
            assert recv.stdin is not None
            recv.stdin.close()
        wall = time.monotonic() - start
        if send.returncode or recv.returncode:
            send_err.seek(0)
            recv_err.seek(0)
            raise RuntimeError(
                f"exit {send.returncode}/{recv.returncode}: "
                f"{send_err.read().decode(errors='replace')[-400:]} "
                f"{recv_err.read().decode(errors='replace')[-400:]}"
            )
    return wall


def bench_small_files(
    url: str, src: Path, dst: Path, tree: Path, run: int, nofile: int = 1024
) -> list[SmallFilesRun]:
    """tar through ``rdv dial``/``rdv accept``, then ``rdv send``/``rdv receive``, same tree.

    Both are whole commands (process start, rendezvous) on loopback through ``url``;
    rdv's under ``ulimit -n nofile``. Checks that every file arrived with its bytes.

    The received trees are deleted only after both ran, and the order alternates from
    round to round: on this machine's ext4, files created after a mass delete cost
    3-5x the kernel time (30,000 creates: 4.4 s of system time on a fresh folder,
    17-19 s right after deleting 30,000 files, and still 40 s later), so deleting
    the first tree before the second variant ran handicapped whichever came second.
    """
    import shlex

    env = {**os.environ, "PYTHONPATH": str(tree)}
    cli = f"{shlex.quote(sys.executable)} -c {shlex.quote(RDV_CLI)}"
    want = _tree_stats(src)
    runs: list[SmallFilesRun] = []
    received: list[Path] = []
    order = ("tar pipe", "rdv send") if run % 2 else ("rdv send", "tar pipe")
    for name in order:
        out = dst / f"{name.split()[0]}-{run}"
        out.mkdir(parents=True)
        token = f"bench-small-{os.getpid()}-{run}-{name.split()[0]}"
        # Loopback only (the default spaces would also dial this machine's other addresses).
        spaces = "--spaces loopback4"
        target = shlex.quote(str(out))
        if name == "tar pipe":
            receiver = f"{cli} accept {url} {token} {spaces} | tar xf - -C {target}"
            source = f"-C {shlex.quote(str(src.parent))} {shlex.quote(src.name)}"
            sender = f"tar cf - {source} | {cli} dial {url} {token} {spaces}"
        else:
            limit = f"ulimit -n {nofile}; "
            code = f"{4000 + run}-small-files"
            receiver = f"{limit}{cli} receive {code} --server {url} {spaces} --yes --dir {target}"
            sender = (
                f"{limit}{cli} send {shlex.quote(str(src))} --code {code} --server {url} {spaces}"
            )
        cpu0 = _children_cpu()
        wall = _run_pair(receiver, sender, env, 1800)
        cpu = _children_cpu() - cpu0
        got = _tree_stats(out / src.name)
        if got != want:
            raise RuntimeError(f"{name}: got {got[0]} files, {got[1]} bytes; sent {want}")
        runs.append(SmallFilesRun(name, wall, cpu, want[0]))
        received.append(out)
    import shutil

    for out in received:
        shutil.rmtree(out)
    return sorted(runs, key=lambda r: r.name != "tar pipe")


# ----- the big file


def make_source(path: Path, size: int) -> None:
    block = os.urandom(8 << 20)
    with open(path, "wb") as f:
        left = size
        while left:
            piece = block[: min(left, len(block))]
            f.write(piece)
            left -= len(piece)


def warm_pages(dst: Path, size: int) -> None:
    """Write and delete ``size`` bytes in ``dst``, so the next row's receiver writes its file
    into pages the guest freed a moment ago, as every row's does and as the floor's
    "file write" step does (it reuses its own warm pages).

    Why: a VM whose balloon reports free pages to the host (the project machine's:
    virtio-balloon free page reporting) gives freed memory back after a few seconds, and
    the next write into it faults every page in again: 1 GiB to /dev/shm costs 0.5-0.65 s
    of system time into just-freed pages, 2.1 s after 10 s idle, 3-3.8 s into pages never
    used (docs/notes/issue-14-receiver.md). Without this, a row's figure depended on the
    row before it (p2p ran after raw tcp, which writes no file; relay reused p2p's pages),
    and relay / p2p measured the page state, not the relay.
    """
    block = bytes(8 << 20)
    path = dst / "warm.bin"
    with open(path, "wb") as f:
        left = size
        while left:
            left -= f.write(block[: min(left, len(block))])
    path.unlink()
