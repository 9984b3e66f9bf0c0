"""``rdv serve --trust-proxy 0.0.0.0/0`` is refused at start, with why.

Trusting every address made every client a "proxy": its ``X-Forwarded-For`` (or PROXY
header) named any address as its own, so it chose its lobby caps' key and, with
``--dial-back``, the address the server dials (docs/PROTOCOL.md section 15.1: never one the
client names). The server started without a word; now it exits 2 naming the flag.
"""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("network", ["0.0.0.0/0", "::/0", "10.0.0.1/0"])
def test_trusting_every_address_is_refused(network: str) -> None:
    command = [sys.executable, "-m", "rdv_tui", "serve", "--listen", "127.0.0.1:0"]
    command += ["--dial-back", "--trust-proxy", "127.0.0.1/32", network]
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        pytest.fail(f"rdv serve started: {err.decode()}")
    assert process.returncode == 2, err
    lines = err.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("rdv serve: invalid --trust-proxy: "), lines
    assert "trusts every client" in lines[0], lines
