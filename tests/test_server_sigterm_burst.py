"""A burst of SIGTERM on a real ``rdv serve`` (a supervisor repeating itself, ``kill``
in a loop): idle, and with a relayed pair in flight under ``--drain``.

Before, the first signal shut the server down and asyncio's ``remove_signal_handler``
gave SIGTERM back its default action once it had stopped: the next one killed it, exit
-15 after "stopped in 0.00s" instead of the documented 0 (23 runs in 25). Now the
signals stay taken (rdv_tui/cli/commands/serve_signals.py): exit 0, no traceback, and
the second signal of the burst still cuts the drain short (README).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import pytest

from tests.server_support import rdv_request
from tests.test_server_cli_signals import _get, _serve, _wait_for, _waiting


def _burst_until_exit(server: subprocess.Popen[str], gap: float) -> str:
    """SIGTERM every ``gap`` s (0: as fast as we can) until ``server`` ends; its stderr.

    Through a pidfd: it names this process only, even once it is reaped (no other
    process that took its number gets one)."""
    pidfd = os.pidfd_open(server.pid)
    deadline = time.monotonic() + 3
    try:
        while server.poll() is None and time.monotonic() < deadline:
            try:
                signal.pidfd_send_signal(pidfd, signal.SIGTERM)
            except ProcessLookupError:  # it ended
                break
            if gap:
                time.sleep(gap)
    finally:
        os.close(pidfd)
    _, err = server.communicate(timeout=20)
    return err


@pytest.mark.parametrize("gap", [0.0, 0.002])
def test_a_sigterm_burst_shuts_serve_down_with_exit_0(gap: float) -> None:
    with _serve(["--listen", "127.0.0.1:0"]) as (server, first):
        assert first.startswith("rdv serve: listening on"), first
        err = _burst_until_exit(server, gap)
    assert server.returncode == 0, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert "SIGTERM: shutting down" in err and "stopped in" in err, err


def test_a_sigterm_burst_cuts_the_drain_of_a_pair_in_flight() -> None:
    with _serve(["--listen", "127.0.0.1:0", "--drain", "20"]) as (server, first):
        port = int(first.rsplit(":", 1)[1])
        accept = _waiting(port, "burst")
        dialer = socket.create_connection(("127.0.0.1", port), timeout=20)
        dialer.sendall(rdv_request("DIAL", "/burst"))
        _wait_for(lambda: b"rdv_pairs_open 1\n" in _get("127.0.0.1", port, "/metrics"))
        err = _burst_until_exit(server, 0.0)
        accept.close()
        dialer.close()
    assert server.returncode == 0, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert "second signal: resetting the open pairs now" in err, err
