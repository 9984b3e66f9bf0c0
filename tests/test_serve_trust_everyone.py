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


@pytest.mark.parametrize(
    ("network", "words"),
    [
        ("10.0.0.1/8", "for the network write 10.0.0.0/8, for the one address 10.0.0.1/32"),
        ("fe80::1/64", "for the network write fe80::/64, for the one address fe80::1/128"),
    ],
)
def test_a_network_with_host_bits_is_refused_naming_both_readings(network: str, words: str) -> None:
    # 10.0.0.1/8 was taken as 10.0.0.0/8 without a word: a typo for one balancer's address
    # trusted sixteen million. Which reading was meant only the operator knows.
    command = [sys.executable, "-m", "rdv_tui", "serve", "--listen", "127.0.0.1:0"]
    command += ["--trust-proxy", "127.0.0.1/32", network]
    process = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    lines = process.stderr.decode().splitlines()
    assert process.returncode == 2, lines
    assert lines == [f"rdv serve: invalid --trust-proxy: {network} has host bits set: {words}"]


def test_networks_written_as_a_comma_list_are_refused_saying_so() -> None:
    # Before: "'127.0.0.1/32,10.0.0.0/8' does not appear to be an IPv4 or IPv6 network".
    command = [sys.executable, "-m", "rdv_tui", "serve", "--listen", "127.0.0.1:0"]
    command += ["--trust-proxy", "127.0.0.1/32,10.0.0.0/8"]
    process = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    assert process.returncode == 2, process.stderr
    assert process.stderr.decode().splitlines() == [
        "rdv serve: invalid --trust-proxy: '127.0.0.1/32,10.0.0.0/8': give the networks as "
        "separate words, not a list"
    ]
