"""Uplinks, NAT64 and the dials they make, without a network (docs/LAB-NOTES.md section 13).

The real thing runs in tests/natlab/test_environments.py; these pin the rules.
"""

from __future__ import annotations

import ipaddress

import pytest

from rdv_core.client import _localview
from rdv_core.client._candidates import dial_routes, inbound_addr
from rdv_core.client._uplinks import (
    LocalPaths,
    Uplink,
    extra_paths,
    local_uplinks,
    select_uplinks,
    uplinks_serve,
)
from rdv_core.wire import Addr, AddrSpace, nat64_embedded, nat64_prefix, nat64_synthesize

WIFI = Uplink("wlan0", ipaddress.ip_address("10.0.1.2"))
LTE = Uplink("wwan0", ipaddress.ip_address("100.64.7.9"))
WIFI6 = Uplink("wlan0", ipaddress.ip_address("2001:db8:1::2"))
PREFIX = ipaddress.IPv6Network("64:ff9b::/96")


def test_the_default_uplink_is_not_an_extra_path() -> None:
    extra = extra_paths([WIFI, LTE, WIFI6], [WIFI.ip, WIFI6.ip])
    assert extra == [LTE]
    assert extra_paths([WIFI], [WIFI.ip]) == []


def test_select_uplinks_by_interface_or_address_and_say_what_exists() -> None:
    assert select_uplinks([WIFI, LTE], ["wwan0"], []) == [LTE]
    assert select_uplinks([WIFI, LTE], [], ["10.0.1.2"]) == [WIFI]
    with pytest.raises(
        ValueError, match=r"no usable interface 'eth9' here \(usable: wlan0, wwan0\)"
    ):
        select_uplinks([WIFI, LTE], ["eth9"], [])
    with pytest.raises(ValueError, match=r"no usable local address 192\.0\.2\.1"):
        select_uplinks([WIFI, LTE], [], ["192.0.2.1"])
    with pytest.raises(ValueError, match="not an IP address"):
        select_uplinks([WIFI], [], ["wlan0"])


def test_this_machine_lists_no_loopback_or_link_local_uplink() -> None:
    for uplink in local_uplinks():
        assert not uplink.ip.is_loopback and not uplink.ip.is_link_local


def test_public_candidates_are_dialled_from_every_uplink() -> None:
    public = Addr.parse("203.0.113.20:4000")
    routes = dial_routes(public, [LTE], bound_only=False, nat64=None)
    assert [(r.target, r.uplink, r.via) for r in routes] == [
        (public, None, None),
        (public, LTE, "wwan0 100.64.7.9"),
    ]
    # A private address is on a LAN the kernel already routes to.
    private = Addr.parse("10.0.2.2:4000")
    assert [r.uplink for r in dial_routes(private, [LTE], bound_only=False, nat64=None)] == [None]
    # Restricted: only the allowed uplinks, of the right family.
    routes = dial_routes(public, [WIFI, WIFI6], bound_only=True, nat64=None)
    assert [r.uplink for r in routes] == [WIFI]
    # No allowed uplink of the family: no dial (the race says so with CandidateSkipped).
    assert dial_routes(Addr.parse("[2001:db8::9]:4000"), [WIFI], bound_only=True, nat64=None) == []


def test_behind_nat64_ipv4_candidates_are_dialled_at_their_synthesized_address() -> None:
    peer = Addr.parse("203.0.113.20:4000")
    (route,) = dial_routes(peer, [], bound_only=False, nat64=PREFIX)
    assert route.target == Addr.parse("[64:ff9b::cb00:7114]:4000")
    assert route.via == "NAT64"
    # The peer's SYN comes from the translator's side as that same IPv6 address.
    assert inbound_addr(route.target, PREFIX) == peer
    assert inbound_addr(route.target, None) == route.target
    v6 = Addr.parse("[2001:db8::7]:4000")
    assert dial_routes(v6, [], bound_only=False, nat64=PREFIX)[0].target == v6


def test_the_nat64_prefix_is_proven_by_the_server() -> None:
    local = Addr.parse("[fd00:1::2]:5000")
    server = Addr.parse("[2001:db8:64::cb00:710a]:7000")
    translated = Addr.parse("203.0.113.11:5000")
    assert nat64_prefix(local, server, translated) == ipaddress.IPv6Network("2001:db8:64::/96")
    # Native IPv6 (observed IPv6), IPv4 conns, or no observed address: no NAT64.
    assert nat64_prefix(local, server, Addr.parse("[2001:db8::9]:5000")) is None
    assert (
        nat64_prefix(Addr.parse("10.0.0.2:5000"), Addr.parse("10.0.0.1:7000"), translated) is None
    )
    assert nat64_prefix(local, server, None) is None
    # An IPv4-mapped observed address is IPv4 too.
    assert nat64_prefix(local, server, Addr.parse("[::ffff:203.0.113.11]:5000")) is not None
    assert nat64_synthesize(PREFIX, Addr.parse("[::ffff:1.2.3.4]:9")) == Addr.parse(
        "[64:ff9b::102:304]:9"
    )
    assert nat64_embedded(PREFIX, Addr.parse("[64:ff9b::102:304]:9")) == Addr.parse("1.2.3.4:9")
    assert nat64_embedded(PREFIX, Addr.parse("[2001:db8::1]:9")) is None


def test_local_paths_offer_every_uplink_address_once() -> None:
    default = [Addr.parse("10.0.1.2:5000")]
    paths = LocalPaths((LTE,))
    assert paths.self_addrs(AddrSpace.DEFAULT, default, 5000) == [
        Addr.parse("10.0.1.2:5000"),
        Addr.parse("100.64.7.9:5000"),
    ]
    bound = LocalPaths((WIFI,), bound_only=True)
    both = [*default, Addr.parse("100.64.7.9:5000")]
    assert bound.self_addrs(AddrSpace.DEFAULT, both, 5000) == [Addr.parse("10.0.1.2:5000")]
    assert bound.server_uplink(ipv4=True) == WIFI
    with pytest.raises(ValueError, match="IPv6"):
        bound.server_uplink(ipv4=False)
    assert LocalPaths().server_uplink(ipv4=True) is None


def test_an_attempt_that_can_use_no_uplink_does_not_look_for_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Loopback or link-local spaces, or NONE: no uplink address could be offered or
    dialled from, so the interfaces are not listed (a fresh process's 0.6 ms)."""
    asked: list[tuple[object, ...]] = []

    def plan(*args: object) -> LocalPaths:
        asked.append(args)
        return LocalPaths((LTE,))

    monkeypatch.setattr(_localview, "plan_paths", plan)
    monkeypatch.setattr(_localview, "_paths", {})
    for spaces in (AddrSpace.LOOPBACK4, AddrSpace.LOOPBACK | AddrSpace.LINK6, AddrSpace.NONE):
        assert not uplinks_serve(spaces)
        assert _localview.local_paths((), (), spaces) == LocalPaths()
    assert asked == []
    for spaces in (AddrSpace.DEFAULT, AddrSpace.PRIVATE4 | AddrSpace.LOOPBACK4):
        assert uplinks_serve(spaces)
        monkeypatch.setattr(_localview, "_paths", {})
        assert _localview.local_paths((), (), spaces) == LocalPaths((LTE,))
    # --interface/--source are still checked (and obeyed) with loopback spaces.
    assert _localview.local_paths(("wwan0",), (), AddrSpace.LOOPBACK4) == LocalPaths((LTE,))
    assert len(asked) == 3


def test_a_loopback_attempt_still_rejects_an_interface_this_machine_lacks() -> None:
    with pytest.raises(ValueError, match="no usable interface 'rdv-no-such0'"):
        _localview.local_paths(("rdv-no-such0",), (), AddrSpace.LOOPBACK4)
