"""A peer's link-local candidate: dialled on the one link it can be on, or skipped with why.

(The dial itself, over a real link, is tests/natlab/test_ipv6_only.py.)
"""

from __future__ import annotations

import ipaddress
import itertools

from rdv_core.client._candidates import plan_dials
from rdv_core.client._uplinks import Uplink
from rdv_core.wire import Addr, AddrSpace

PEER = Addr.parse("[fe80::3]:4000")


def _plan(uplinks: list[Uplink]) -> list[tuple[str | None, str | None, str]]:
    ids = itertools.count(2)
    plan = plan_dials(
        [PEER], AddrSpace.LINK6, lambda: next(ids), uplinks=uplinks, bound_only=True, nat64=None
    )
    return [(c.via, None if route is None else str(route.target), why) for c, route, why in plan]


def test_the_interface_named_is_the_link() -> None:
    """``--interface lo`` (an interface every machine has): the candidate is dialled there."""
    lo = Uplink("lo", ipaddress.ip_address("fe80::1"))
    assert _plan([lo]) == [("lo", "[fe80::3%lo]:4000", "")]


def test_several_links_skip_the_candidate_and_say_why() -> None:
    """Old: dialled with no zone at all, ``unreachable errno=22 ... Invalid argument``."""
    ups = [Uplink(d, ipaddress.ip_address("2001:db8::2")) for d in ("wlan0", "eth0")]
    assert _plan(ups) == [
        (
            None,
            None,
            "a link-local address names no interface, and this machine has several "
            "(eth0, wlan0): name the peer's link with --interface",
        )
    ]
