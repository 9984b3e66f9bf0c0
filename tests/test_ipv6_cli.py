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


def test_listen_on_an_ipv4_mapped_address_listens_on_its_ipv4_address() -> None:
    """``--listen [::ffff:127.0.0.1]:0`` is ``127.0.0.1:0``. Old: ``rdv serve: cannot listen
    on [::ffff:127.0.0.1]:0: Invalid argument`` (an IPv6-only socket cannot bind it)."""
    server = subprocess.Popen(
        [sys.executable, "-m", "rdv_tui", "serve", "--listen", "[::ffff:127.0.0.1]:0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        line = server.stderr.readline()
    finally:
        server.kill()
        server.communicate(timeout=10)
    assert line.startswith("rdv serve: listening on http://127.0.0.1:"), line
