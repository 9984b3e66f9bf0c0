"""The doctor on an IPv6-only host, given a server name with both an A and an AAAA record.

The namespace of ``tests/natlab/test_ipv6_only.py`` (no IPv4 route, ``dual.test`` in its
hosts file: ``192.0.2.1`` and ``2001:db8::1``, a real ``rdv serve`` on ``[::]``), its fixture
reused; a real ``rdv doctor --format json`` run in it. Everything goes at the end (the fixture's).
"""

from __future__ import annotations

import json
import subprocess

from tests.natlab.test_ipv6_only import _IN, _RDV, v6_only

__all__ = ["v6_only"]  # the fixture, used by name below


def test_a_dual_stack_name_is_measured_over_ipv6_from_an_ipv6_only_host(
    v6_only: tuple[str, int],
) -> None:
    """Old: the main conn went to the A record's 192.0.2.1 (``network is unreachable``), so
    ``nat`` said "The server could not tell us our address" while ``http://[2001:db8::1]``
    measured everything; now the name takes the IPv6-only server's path and says why."""
    name, port = v6_only
    out = subprocess.run(
        [*_IN, name, *_RDV, "doctor", "--format", "json", f"http://dual.test:{port}"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=20,
    )
    report = json.loads(out.stdout)
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
