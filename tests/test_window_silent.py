"""A blackhole after the peer kept its window closed for a while (a paused reader) is
seen in bounded time (``tests/silent_window_driver.py``: real sockets in a network
namespace; docs/PROTOCOL.md section 16.11).

What a user saw: ``rdv receive | less`` paused for minutes, then the path blackholed: the
sender's kernel probed the closed window every 2 minutes by then (TCP's backoff, 120 s at
most), so the silence was seen after two unanswered probes, up to about 4 minutes (158 s
measured after a 60 s pause; 40.9 s after this test's 14 s). The watch caps the
backoff (``TCP_RTO_MAX_MS``, a third of the limit): a few seconds past the limit. While the
window was closed and the peer alive, nothing was ever unanswered.
"""

from __future__ import annotations

import sys

import pytest

from rdv_core.client._silence import SILENCE_ENV

from tests.test_faststart_fallback import run_driver

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="Linux's TCP_RTO_MAX_MS")

LIMIT_S = 4


def test_a_blackhole_after_a_long_closed_window_is_seen_soon(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SILENCE_ENV, str(LIMIT_S))
    report = run_driver("-", "silent_window_driver.py")
    assert report["limit"] == LIMIT_S
    assert report["paused_max"] < 1.0, report  # the live, paused peer answered every probe
    # Capped at LIMIT_S / 3 s, two unanswered probes come within a few limits; before, the
    # next probe alone was up to 12.8 s away and the second 25.6 s after it.
    assert report["noticed_s"] is not None and report["noticed_s"] < 15, report
