"""``rdv serve`` whose stderr stops taking lines goes on serving (and still exits).

Logging wrote stderr on the event loop's thread: a terminal paused with Ctrl-S, ``| less``
left unscrolled or a stalled log shipper filled the pipe (64 KiB: 463 rejected requests at
``-v``), and then no conn was served at all, not even ``/healthz``; SIGTERM did not end it.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys

REQUESTS = 6000  # far more lines than the pipe (64 KiB) and the queue (4096) hold


def _ask(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        return sock.recv(100)  # raises TimeoutError if the server does not answer


def test_a_stuck_stderr_neither_stops_the_server_nor_its_exit() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "rdv_tui", "serve", "--listen", "127.0.0.1:0", "-v"],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        first = process.stderr.readline().decode()
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", first)
        assert match, first
        port = int(match.group(1))
        # From here on nobody reads stderr until the server has stopped.
        for n in range(REQUESTS):
            # A request refused (and logged at -v) with a long, hostile-looking target.
            answer = _ask(port, b"DIAL /x" + str(n).encode() * 40 + b"\x7f HTTP/1.1\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 400"), (n, answer)
        assert _ask(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 200")
        process.send_signal(signal.SIGTERM)
        rest = process.stderr.read().decode()  # what was queued, then EOF at the exit
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert re.search(r"WARNING rdv\.server: \d+ log lines dropped: stderr did not keep up", rest)
    assert "SIGTERM: shutting down" in rest, rest[-2000:]
