"""IPv6 addresses in the CLI's options, as a user types them (real ``rdv`` processes)."""

from __future__ import annotations

import subprocess
import sys


def test_source_takes_an_ipv6_address_in_brackets() -> None:
    """``--source [::1]`` is ``--source ::1``. Old: ``--source '[::1]' is not an IP
    address``. (``::1`` is no uplink: the run stops there, before any traffic.)"""
    out = subprocess.run(
        [sys.executable, "-m", "rdv_tui", "dial", "--source", "[::1]", "http://[::1]:1", "t"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert out.returncode != 0
    assert "rdv dial: no usable local address ::1 (usable: " in out.stderr, out.stderr
