"""``rdv serve`` cannot listen: the operator is told why, and what to do about it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys

import pytest

RDV = [sys.executable, "-m", "rdv_tui"]


def _serve(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, *RDV, "serve", *args],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_a_port_in_use_says_so_and_how_to_find_who() -> None:
    """Before: ``[Errno 98] Address already in use`` and nothing else."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _serve("--listen", f"127.0.0.1:{port}")
    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        f"rdv serve: cannot listen on 127.0.0.1:{port}: Address already in use: another "
        f"process listens there (ss -ltnp 'sport = :{port}' names it)\n"
    )


def test_a_host_that_does_not_resolve_is_named() -> None:
    """Before: ``[Errno -2] Name or service not known`` (which name?)."""
    result = _serve("--listen", "no-such-host.invalid:9000")
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(
        "rdv serve: cannot listen on no-such-host.invalid:9000: cannot resolve "
        "'no-such-host.invalid': "
    ), result.stderr


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root to drop to nobody"
)
def test_a_low_port_without_privilege_names_the_capability() -> None:
    """A real unprivileged process (``nobody``) on port 80. Before: ``[Errno 13]
    Permission denied``, which reads like a file's permission."""
    nobody = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
    result = _serve("--listen", "127.0.0.1:80", prefix=nobody)
    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        "rdv serve: cannot listen on 127.0.0.1:80: Permission denied: ports below 1024 need "
        "root or the CAP_NET_BIND_SERVICE capability "
        "(systemd: AmbientCapabilities=CAP_NET_BIND_SERVICE)\n"
    ), result.stderr


def test_a_probe_port_in_use_is_named_with_how_to_find_who() -> None:
    """Before: ``cannot listen on a probe port: [Errno 98] port N: Address already in use``,
    the errno and no hint, unlike the same mistake on ``--listen``."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _serve("--listen", "127.0.0.1:0", "--probe-port", str(port))
    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        f"rdv serve: cannot listen on --probe-port {port}: Address already in use: another "
        f"process listens there (ss -ltnp 'sport = :{port}' names it)\n"
    )


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 here")
def test_a_link_local_address_without_its_interface_says_so() -> None:
    """Before: ``Invalid argument``, and nothing else (the kernel needs the link's name)."""
    result = _serve("--listen", "[fe80::1]:0")
    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        "rdv serve: cannot listen on [fe80::1]:0: Invalid argument: an IPv6 link-local "
        "address needs its interface, e.g. [fe80::1%eth0]\n"
    )
