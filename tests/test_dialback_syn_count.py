"""The server's dial-back sends at most two SYNs by the kernel's word (docs/PROTOCOL.md 15.1).

Its 1.5 s timer alone allowed a third SYN (Linux resends at 1 s, then 3 s) whenever the
event loop ran late. The kernel's ``TCP_SYNCNT`` of 1 gives up after the first resend, 3 s
after the SYN: a dial-back to a listener whose accept queue is full (its SYNs dropped, a
silent address on loopback) then fails by itself within 3 s, even with our timer far away.
"""

from __future__ import annotations

import socket
import sys
import time

import pytest

from rdv_core.server import _dialback
from rdv_core.wire import Addr

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="TCP_SYNCNT is Linux")


async def test_a_dial_back_to_a_silent_address_gives_up_after_two_syns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_dialback, "SYN_TIMEOUT_S", 10.0)  # our timer out of the way
    full = socket.create_server(("127.0.0.1", 0), backlog=0)
    # Backlog 0 holds one conn: with it queued, the listener's SYNs are dropped.
    with full, socket.create_connection(full.getsockname()[:2]):
        started = time.monotonic()
        result = await _dialback.dial_back(
            Addr.parse(f"127.0.0.1:{full.getsockname()[1]}"), "00" * 8, None
        )
        took = time.monotonic() - started
    # Without TCP_SYNCNT the kernel goes on resending (1, 3, 7, 15 s...) until our timer.
    assert took < 5.0, (took, result)
    assert result.result == "timeout", result
