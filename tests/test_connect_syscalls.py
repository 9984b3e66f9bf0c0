"""The system calls inside one loopback p2p ``dial()``: none that repeats what is known.

Issue 10's connect time (bench/connect.py: p2p p50 at most 3x an HTTP round trip): with the
bytecodes already near that, what was left was C and kernel work, 123 system calls inside a
loopback ``dial()`` (dialer, accepter and server in one process) against 39 for the HTTP
round trip. Each redundant one cost 1-3 us here. A real attempt (tests/
connect_syscalls_driver.py) runs under ``strace``; inside the dial, no socket may get
``TCP_NODELAY`` twice, no ``getpeername`` may repeat what the transport or ``accept()``
said or ask an IPv4 conn we dialled who its peer is, no socket of the attempt may be asked
its own address twice (a listener's port included), nor the dual-stack option read back
after it was set, no race listener may be asked for a conn that is not there (``EAGAIN``),
no dial goes to the 4-tuple of a conn accepted already (``EADDRNOTAVAIL``: the accepter
dialled the dialer that had connected to it, client/_race_dials.py), no client conn
reads with a buffer glibc maps for each read (the ``101``s), nor the server the
request's head (server/_http_conn.py ``HEAD_READ_SIZE``), no socket
leaves epoll inside the dial only to be added back after it (the winner's), and the
silence watch's keepalive is set up after ``dial()`` returned (docs/PROTOCOL.md 16.11).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

DRIVER = Path(__file__).with_name("connect_syscalls_driver.py")
STRACE = shutil.which("strace")

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="Linux system calls"),
    pytest.mark.skipif(STRACE is None, reason="needs strace (apt-get install strace)"),
]

#: ``PID name(args) = result``; strace -f prefixes each line with the pid.
LINE = re.compile(r"^(?:\[pid\s+)?\d+\]?\s+(\w+)\((.*)\)\s+=\s+(-?\d+|\?)(.*)$")


Calls = list[tuple[str, str, str, str]]


def trace(tmp_path: Path) -> tuple[int, Calls, dict[int, int], Calls]:
    """The server's port, the calls inside the traced ``dial()``, each listening socket's
    bound port (by fd, as it was during the dial), and the calls after the dial."""
    out = tmp_path / "strace.txt"
    assert STRACE is not None
    done = subprocess.run(
        [STRACE, "-f", "-o", str(out), sys.executable, str(DRIVER)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    server_port = int(done.stdout.split()[1])
    inside: Calls = []
    after: Calls = []
    bound: dict[int, int] = {}
    marks = 0
    for line in out.read_text().splitlines():
        match = LINE.match(line)
        if match is None:
            continue
        name, args, result, rest = match.groups()
        if name == "getppid":
            marks += 1
            continue
        if marks == 1:
            inside.append((name, args, result, rest))
        elif marks == 2:
            after.append((name, args, result, rest))
        elif marks == 0:
            note_port(bound, name, args, result)
    assert marks == 2, "the driver's dial() was not framed by its two getppid() calls"
    return server_port, inside, bound, after


def fd_of(args: str) -> int:
    return int(args.split(",", 1)[0])


def note_port(bound: dict[int, int], name: str, args: str, result: str) -> None:
    """Keep the port a ``bind`` or ``getsockname`` names (port 0: the system picks)."""
    if name not in ("bind", "getsockname") or result != "0":
        return
    port = re.search(r"htons\((\d+)\)", args)
    if port is not None and int(port.group(1)):
        bound[fd_of(args)] = int(port.group(1))


#: glibc serves allocations from this size up with ``mmap`` (its default threshold).
MMAP_THRESHOLD = 128 * 1024


#: asyncio's C helpers (``get_running_loop``, ``current_task``) compare ``getpid()`` on
#: each call. The attempt's deadline and the picker's wait were ``asyncio.timeout``s (5
#: more: 19-20); they are timer handles now (client/_deadline.py, _pickers.py): 14 in 6
#: of 6 traces, plus one for a call that lands in the window or not. CPython 3.11.
MAX_GETPIDS = 15

#: The dialer's request as the server reads it: ``fd, "DIAL /token HTTP/1.1..."``.
REQUEST_HEAD = re.compile(r'^\d+, "(?:DIAL|ACCEPT) /')


def big_read(args: str) -> bool:
    """A ``recvfrom`` whose buffer is mapped for it: asyncio's transports read 256 KiB at a
    time, and each such read of a few bytes costs an ``mmap``, a page fault, an ``mremap``
    and a ``munmap`` (client/_link.py ``small_reads``)."""
    # ``fd, "bytes"..., size, flags, addr, addrlen``: the text may hold commas, the rest not.
    return int(args.rsplit(",", 4)[1]) >= MMAP_THRESHOLD


def test_no_system_call_in_dial_repeats_what_is_known(tmp_path: Path) -> None:
    server_port, inside, bound, after = trace(tmp_path)
    assert len(inside) > 30, "the trace caught no dial()"
    nodelay: Counter[int] = Counter()
    peername: Counter[int] = Counter()
    sockname: Counter[int] = Counter()
    listening: set[int] = set()
    dialled: set[int] = set()
    problems: set[str] = set()
    for name, args, result, rest in inside:
        if name in ("socket", "accept4") and result.isdigit():
            fd = int(result)  # a new socket on a reused fd number: start its counts again
            nodelay[fd] = peername[fd] = sockname[fd] = 0
            listening.discard(fd)
            dialled.discard(fd)
            bound.pop(fd, None)
        note_port(bound, name, args, result)
        if name == "listen":
            listening.add(fd_of(args))
        elif name == "connect" and result == "0" and "AF_INET," in args:
            dialled.add(fd_of(args))
        elif name == "getpeername" and fd_of(args) in dialled:
            problems.add("getpeername() asked of an IPv4 conn we dialled (its peer is known)")
        elif name == "setsockopt" and "TCP_NODELAY" in args:
            nodelay[fd_of(args)] += 1
        elif name == "getpeername":
            peername[fd_of(args)] += 1
        elif name == "getsockname":
            sockname[fd_of(args)] += 1
        if name == "getsockopt" and "IPV6_V6ONLY" in args:
            problems.add("the listener's dual-stack option was read back after it was set")
        if name == "setsockopt" and "KEEP" in args:
            problems.add("the silence watch's keepalive was set up inside dial()")
        if name == "accept4" and "EAGAIN" in rest and bound.get(fd_of(args)) != server_port:
            problems.add("a race listener was asked for one more conn than was there (EAGAIN)")
        if name == "connect" and "EADDRNOTAVAIL" in rest:
            problems.add("a dial to a 4-tuple whose conn was accepted already (EADDRNOTAVAIL)")
        if name == "recvfrom" and bound.get(fd_of(args)) != server_port and big_read(args):
            problems.add("a client conn read with a buffer glibc maps and unmaps (mmap)")
        if name == "recvfrom" and REQUEST_HEAD.search(args) and big_read(args):
            problems.add("the server read a request head with a buffer glibc maps (mmap)")
    if any(n > 1 for n in nodelay.values()):
        problems.add("TCP_NODELAY set more than once on one socket")
    if any(n > 1 for n in peername.values()):
        problems.add("getpeername() asked again (the transport or accept() said it)")
    if any(sockname[fd] > 1 for fd in listening):
        problems.add("a listener's port read more than once")
    # The server's conns (local port: the server's) are the server's business.
    if any(n > 1 for fd, n in sockname.items() if bound.get(fd) != server_port):
        problems.add("getsockname() asked twice on one socket of the race")
    getpids = sum(name == "getpid" for name, *_ in inside)
    if getpids > MAX_GETPIDS:
        problems.add(f"getpid() {getpids} times inside dial(), at most {MAX_GETPIDS}")
    if readded(inside, after):
        problems.add("a socket left epoll inside dial() only to be added back after it")
    assert not problems, sorted(problems)


def readded(inside: Calls, after: Calls) -> bool:
    """A descriptor taken out of epoll inside the dial and put back, as the same socket,
    after it: the winner's, whose transport registers it again (client/_direct.py
    ``hold_reader``)."""
    removed: set[int] = set()
    for name, args, result, _ in inside:
        if name in ("socket", "accept4") and result.isdigit():
            removed.discard(int(result))
        elif name == "epoll_ctl" and "EPOLL_CTL_DEL" in args:
            removed.add(int(args.split(",")[2]))
    for name, args, result, _ in after:
        if name in ("socket", "accept4") and result.isdigit():
            removed.discard(int(result))
        elif name == "close":
            removed.discard(fd_of(args))
        elif name == "epoll_ctl" and "EPOLL_CTL_ADD" in args and int(args.split(",")[2]) in removed:
            return True
    return False
