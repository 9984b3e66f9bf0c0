"""Run inside a fresh network namespace: a conn whose peer kept its window closed (a paused
reader) for :data:`PAUSE` s, then a blackhole; prints one JSON object.

Used by ``tests/test_window_silent.py`` (docs/PROTOCOL.md section 16.11). Real loopback
sockets; the sender is set up by the silence watch's own
:func:`~rdv_core.client._silence.keep_alive` (``RDV_DIRECT_SILENCE`` as the test sets it).
While the window is closed the sender's kernel probes it, backing off; once nftables drops
the conn's packets both ways, ``tcp_unanswered`` must reach the limit.

Usage: ``python silent_window_driver.py`` with ``lo`` up in the namespace.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repo
from rdv_core.client._silence import keep_alive, silence_limit
from rdv_core.tcpinfo import tcp_unanswered

from tests.faststart_fallback_driver import nft

#: Long enough for the kernel's zero-window probe backoff to pass 12 s (0.2 s doubling:
#: at 14 s the next probe is 11 s away and the second 25.6 s after it, without the cap).
PAUSE = 14.0
#: Generous: without the cap the blackhole is seen a minute and more later.
WAIT = 240.0


def main(_mode: str = "-") -> None:
    limit = silence_limit()
    with socket.create_server(("127.0.0.1", 0)) as server:
        sender = socket.socket()
        sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        keep_alive(sender)
        sender.connect(server.getsockname())
        receiver, _ = server.accept()
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sender.setblocking(False)
    paused_max = 0.0
    end = time.monotonic() + PAUSE
    while time.monotonic() < end:  # the receiver never reads: its window closes
        try:
            sender.send(b"x" * 65536)
        except BlockingIOError:
            time.sleep(0.05)
        paused_max = max(paused_max, tcp_unanswered(sender) or 0.0)
    port = sender.getsockname()[1]
    nft("add", "table", "inet", "silence")
    nft("add", "chain", "inet", "silence", "out", "{ type filter hook output priority 0; }")
    for way in ("sport", "dport"):
        nft("add", "rule", "inet", "silence", "out", "tcp", way, str(port), "drop")
    start, noticed = time.monotonic(), None
    while time.monotonic() < start + WAIT:
        waited = tcp_unanswered(sender)
        if waited is not None and waited >= limit:
            noticed = round(time.monotonic() - start, 1)
            break
        time.sleep(0.1)
    print(json.dumps({"limit": limit, "paused_max": paused_max, "noticed_s": noticed}))
    sender.close()
    receiver.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
