"""The doctor on an IPv6-only host, given a server name with both an A and an AAAA record.

The namespace of ``tests/natlab/test_ipv6_only.py`` (no IPv4 route, ``dual.test`` in its
hosts file: ``192.0.2.1`` and ``2001:db8::1``, a real ``rdv serve`` on ``[::]``), its fixture
reused; a real ``rdv doctor --format json`` run in it; and one where that name's IPv4 address
refuses (a server on ``[::1]`` only). Everything goes at the end (the fixtures').
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.natlab.test_ipv6_only import (
    _IN,
    _RDV,
    _sh,
    namespace_with_hosts,
    rdv_serve_in,
    v6_only,
)

__all__ = ["v6_only"]  # the fixture, used by name below


def _doctor_json(name: str, url: str) -> Any:
    out = subprocess.run(
        [*_IN, name, *_RDV, "doctor", "--format", "json", url],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert out.stdout, out.stderr
    return json.loads(out.stdout)


def test_a_dual_stack_name_is_measured_over_ipv6_from_an_ipv6_only_host(
    v6_only: tuple[str, int],
) -> None:
    """Old: the main conn went to the A record's 192.0.2.1 (``network is unreachable``), so
    ``nat`` said "The server could not tell us our address" while ``http://[2001:db8::1]``
    measured everything; now the name takes the IPv6-only server's path and says why."""
    name, port = v6_only
    report = _doctor_json(name, f"http://dual.test:{port}")
    assert report["nat"]["value"] is False, report["nat"]  # we are 2001:db8::1, seen as that
    assert "2001:db8::1" in report["nat"]["reason"], report["nat"]
    assert report["upgrade"]["value"] is True, report["upgrade"]
    server = report["servers"][0]
    assert server["tcp6"]["value"] is True, server["tcp6"]
    assert server["tcp4"] == {
        "value": None,
        "reason": "this machine has no IPv4 route to 192.0.2.1 (network is unreachable): "
        "measured over IPv6",
    }


@pytest.fixture
def v6_listener() -> Iterator[tuple[str, int]]:
    """A namespace with lo only, ``dual.test`` in its hosts file as ``127.0.0.1`` and
    ``::1``, and a real ``rdv serve --listen [::1]:PORT`` (IPv6 only): a dual-stack name
    whose IPv4 address refuses."""
    with namespace_with_hosts("v6listen", "127.0.0.1 dual.test\n::1 dual.test\n") as name:
        _sh("ip", "-n", name, "link", "set", "lo", "up")
        port = 18700 + os.getpid() % 1000
        with rdv_serve_in(name, f"[::1]:{port}"):
            yield name, port


def test_a_dual_stack_name_whose_ipv4_refuses_is_measured_over_ipv6(
    v6_listener: tuple[str, int],
) -> None:
    """The race's server conn falls back to IPv6 when IPv4 fails; the doctor did not: "no
    server reported our IPv4 address" for every NAT finding. Now its main conn does too."""
    name, port = v6_listener
    report = _doctor_json(name, f"http://dual.test:{port}")
    assert report["nat"]["value"] is False, report["nat"]
    server = report["servers"][0]
    assert server["tcp4"] == {
        "value": False,
        "reason": f"TCP to 127.0.0.1:{port}: connection refused",
    }
    assert server["tcp6"]["value"] is True and server["observed"].startswith("[::1]:"), server
