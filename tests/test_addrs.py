"""Addresses and address spaces (docs/PROTOCOL.md section 9)."""

from __future__ import annotations

import dataclasses
import ipaddress
import socket

import pytest

from rdv_core.wire import (
    SINGLE_SPACES,
    Addr,
    AddrError,
    AddrSpace,
    format_spaces,
    parse_spaces,
    self_addrs,
    sort_addrs,
    space_of,
)

S = AddrSpace


@pytest.mark.parametrize(
    ("ip", "space"),
    [
        ("8.8.8.8", S.PUBLIC4),
        ("1.1.1.1", S.PUBLIC4),
        ("192.0.2.77", S.PUBLIC4),
        ("100.64.0.1", S.PUBLIC4),  # CGNAT is not "private" for Go's IsPrivate
        ("0.1.2.3", S.PUBLIC4),  # Go's IsGlobalUnicast says yes
        ("172.32.0.1", S.PUBLIC4),
        ("10.0.0.1", S.PRIVATE4),
        ("10.255.255.255", S.PRIVATE4),
        ("172.16.0.1", S.PRIVATE4),
        ("172.31.255.254", S.PRIVATE4),
        ("192.168.1.1", S.PRIVATE4),
        ("169.254.0.1", S.LINK4),
        ("169.254.255.254", S.LINK4),
        ("127.0.0.1", S.LOOPBACK4),
        ("127.255.255.254", S.LOOPBACK4),
        ("0.0.0.0", S.INVALID),
        ("224.0.0.1", S.INVALID),
        ("239.255.255.250", S.INVALID),
        ("255.255.255.255", S.INVALID),
        ("2001:db8::1", S.PUBLIC6),
        ("2400::1", S.PUBLIC6),
        ("2a00:1450::1", S.PUBLIC6),
        ("fec0::1", S.PUBLIC6),  # deprecated site-local: global unicast for Go
        ("fc00::1", S.PRIVATE6),
        ("fd00::2", S.PRIVATE6),
        ("fdff:ffff::1", S.PRIVATE6),
        ("fe80::1", S.LINK6),
        ("fe80::1%eth0", S.LINK6),
        ("febf::1", S.LINK6),
        ("::1", S.LOOPBACK6),
        ("::", S.INVALID),
        ("ff02::1", S.INVALID),
        ("ff0e::1", S.INVALID),
        # IPv4-mapped addresses are unmapped before they are classified.
        ("::ffff:8.8.8.8", S.PUBLIC4),
        ("::ffff:10.0.0.1", S.PRIVATE4),
        ("::ffff:169.254.0.1", S.LINK4),
        ("::ffff:127.0.0.1", S.LOOPBACK4),
        ("::ffff:0.0.0.0", S.INVALID),
        ("::ffff:224.0.0.1", S.INVALID),
    ],
)
def test_classification(ip: str, space: AddrSpace) -> None:
    assert space_of(ipaddress.ip_address(ip)) == space
    assert Addr(ipaddress.ip_address(ip), 1).space == space


def test_space_bit_values() -> None:
    assert [int(s) for s in SINGLE_SPACES] == [1 << i for i in range(1, 9)]
    assert (S.PUBLIC4, S.PUBLIC6, S.PRIVATE4, S.PRIVATE6) == (1 << 1, 1 << 2, 1 << 3, 1 << 4)
    assert (S.LINK4, S.LINK6, S.LOOPBACK4, S.LOOPBACK6) == (1 << 5, 1 << 6, 1 << 7, 1 << 8)
    assert S.NONE == 1 << 31
    assert int(S.INVALID) == 0
    assert S.DEFAULT == S.PUBLIC4 | S.PUBLIC6 | S.PRIVATE4 | S.PRIVATE6
    assert S.PUBLIC == S.PUBLIC4 | S.PUBLIC6
    all_singles = S.INVALID
    for space in SINGLE_SPACES:
        all_singles |= space
    assert all_singles == S.ALL
    assert not S.ALL & S.NONE


@pytest.mark.parametrize(
    ("text", "spaces"),
    [
        ("default", S.DEFAULT),
        ("all", S.ALL),
        ("public", S.PUBLIC4 | S.PUBLIC6),
        ("none", S.NONE),
        ("loopback", S.LOOPBACK4 | S.LOOPBACK6),
        ("loopback4,loopback6", S.LOOPBACK4 | S.LOOPBACK6),
        (" Public4 , LINK6 ", S.PUBLIC4 | S.LINK6),
        ("private4", S.PRIVATE4),
        ("default,link4", S.DEFAULT | S.LINK4),
        ("public4,public4", S.PUBLIC4),
        ("none,public4", S.NONE),  # none wins: it exists to force the relay
        ("all,none", S.NONE),
    ],
)
def test_parse_spaces(text: str, spaces: AddrSpace) -> None:
    assert parse_spaces(text) == spaces


@pytest.mark.parametrize("text", ["", " ", " , ", "foo", "public4,", "public7", "loopback 4", "4"])
def test_parse_spaces_errors(text: str) -> None:
    with pytest.raises(AddrError):
        parse_spaces(text)


def test_parse_spaces_error_names_the_choices() -> None:
    with pytest.raises(AddrError, match=r"unknown address space 'publik4' \(known: public4, "):
        parse_spaces("publik4")


def test_format_spaces_round_trip() -> None:
    assert format_spaces(S.NONE) == "none"
    assert format_spaces(S.INVALID) == "none"
    assert format_spaces(S.PUBLIC4) == "public4"
    assert format_spaces(S.DEFAULT) == "public4,public6,private4,private6"
    assert S.LOOPBACK6.label == "loopback6"
    for mask in range(1, 1 << 8):
        spaces = S.INVALID
        for i, space in enumerate(SINGLE_SPACES):
            if mask & (1 << i):
                spaces |= space
        assert parse_spaces(format_spaces(spaces)) == spaces


def test_includes() -> None:
    assert S.DEFAULT.includes(S.PRIVATE4)
    assert not S.DEFAULT.includes(S.LOOPBACK4)
    assert not S.DEFAULT.includes(S.INVALID)
    assert not S.NONE.includes(S.PUBLIC4)
    assert S.ALL.includes_ip(ipaddress.ip_address("::1"))
    assert not S.ALL.includes_ip(ipaddress.ip_address("224.0.0.1"))
    assert S.LOOPBACK4.includes_ip(ipaddress.ip_address("::ffff:127.0.0.1"))


# ----- Addr


@pytest.mark.parametrize(
    ("text", "formatted"),
    [
        ("1.2.3.4:5", "1.2.3.4:5"),
        ("0.0.0.0:0", "0.0.0.0:0"),
        ("255.255.255.255:65535", "255.255.255.255:65535"),
        ("[::1]:80", "[::1]:80"),
        ("[2001:db8:0:0:0:0:0:1]:1", "[2001:db8::1]:1"),
        ("[2001:DB8::A]:1", "[2001:db8::a]:1"),
        ("[2001:db8:0:1:0:0:0:1]:1", "[2001:db8:0:1::1]:1"),
        ("[2001:db8:0:1:1:1:1:1]:1", "[2001:db8:0:1:1:1:1:1]:1"),
        ("[::ffff:1.2.3.4]:7", "[::ffff:1.2.3.4]:7"),  # as Go's netip writes it
        ("[::ffff:102:304]:7", "[::ffff:1.2.3.4]:7"),
        ("[fe80::1%eth0]:5", "[fe80::1%eth0]:5"),
        ("[fe80::1%25eth0]:5", "[fe80::1%25eth0]:5"),
        ("1.2.3.4:0080", "1.2.3.4:80"),  # Go's ParseUint takes leading zeros
    ],
)
def test_addr_parse_and_format(text: str, formatted: str) -> None:
    addr = Addr.parse(text)
    assert str(addr) == formatted
    assert Addr.parse(str(addr)) == addr


@pytest.mark.parametrize(
    "text",
    [
        "",
        ":5",
        "1.2.3.4",
        "1.2.3.4:",
        "1.2.3.4:65536",
        "1.2.3.4:-1",
        "1.2.3.4:+1",
        "1.2.3.4:5x",
        "1.2.3.4: 5",
        "1.2.3.4:\u0661",
        "1.2.3.4:" + "9" * 5000,
        "01.2.3.4:5",
        "1.2.3:5",
        "1.2.3.4.5:6",
        "[1.2.3.4]:5",
        "::1:5",
        "[::1:5",
        "::1]:5",
        "[::1]5",
        "[]:5",
        "[fe80::1%]:5",
        "host:80",
        "[::g]:1",
        " 1.2.3.4:5",
    ],
)
def test_addr_parse_errors(text: str) -> None:
    with pytest.raises(AddrError):
        Addr.parse(text)


def test_addr_error_is_a_value_error() -> None:
    assert issubclass(AddrError, ValueError)
    with pytest.raises(AddrError):
        Addr(ipaddress.ip_address("1.2.3.4"), 70000)


def test_wire_order() -> None:
    texts = [
        "[::1]:1",
        "10.0.0.1:2",
        "[2001:db8::1]:1",
        "9.9.9.9:1",
        "10.0.0.1:1",
        "255.0.0.0:0",
        "[::]:0",
        "[fe80::1]:1",
        "1.2.3.4:65535",
    ]
    ordered = sorted(Addr.parse(t) for t in texts)
    assert [str(a) for a in ordered] == [
        "1.2.3.4:65535",
        "9.9.9.9:1",
        "10.0.0.1:1",
        "10.0.0.1:2",
        "255.0.0.0:0",
        "[::]:0",
        "[::1]:1",
        "[2001:db8::1]:1",
        "[fe80::1]:1",
    ]
    assert Addr.parse("255.255.255.255:9") < Addr.parse("[::]:0")  # every IPv4 first
    assert Addr.parse("[::]:0") > Addr.parse("1.1.1.1:1")
    assert Addr.parse("1.1.1.1:1") <= Addr.parse("1.1.1.1:1") >= Addr.parse("1.1.1.1:1")


def test_sort_addrs_unmaps_drops_zones_and_deduplicates() -> None:
    got = sort_addrs(
        [
            Addr.parse("[fe80::1%eth0]:5"),
            Addr.parse("[::ffff:1.2.3.4]:7"),
            Addr.parse("1.2.3.4:7"),
            Addr.parse("[fe80::1]:5"),
            Addr.parse("1.2.3.4:6"),
        ]
    )
    assert [str(a) for a in got] == ["1.2.3.4:6", "1.2.3.4:7", "[fe80::1]:5"]
    no_addrs: tuple[Addr, ...] = ()
    assert sort_addrs(a for a in no_addrs) == []


def test_addr_properties() -> None:
    mapped = Addr.parse("[::ffff:10.0.0.1]:9")
    assert mapped.is_ipv4 and mapped.space == S.PRIVATE4
    assert mapped.unmapped() == Addr.parse("10.0.0.1:9")
    plain = Addr.parse("10.0.0.1:9")
    assert plain.unmapped() is plain
    assert not Addr.parse("[::1]:1").is_ipv4
    assert Addr.parse("1.2.3.4:5").sockaddr() == ("1.2.3.4", 5)
    assert Addr.parse("[::1]:5").sockaddr() == ("::1", 5, 0, 0)
    # The zone is the scope id too: the socket module ignores it in the text.
    lo = socket.if_nametoindex("lo")
    assert Addr.parse("[fe80::1%lo]:5").sockaddr() == ("fe80::1%lo", 5, 0, lo)


@pytest.mark.parametrize(
    ("sockaddr", "text"),
    [
        (("127.0.0.1", 9), "127.0.0.1:9"),
        (("::1", 9, 0, 0), "[::1]:9"),
        (("::ffff:1.2.3.4", 5, 0, 0), "1.2.3.4:5"),
        (("fe80::1%lo", 5, 0, 1), "[fe80::1]:5"),
    ],
)
def test_from_sockaddr(sockaddr: tuple[object, ...], text: str) -> None:
    assert Addr.from_sockaddr(sockaddr) == Addr.parse(text)


@pytest.mark.parametrize(
    "sockaddr", [("/tmp/sock",), ("host", 5), ("1.2.3.4", "5"), ("1.2.3.4", 70000)]
)
def test_from_sockaddr_errors(sockaddr: tuple[object, ...]) -> None:
    with pytest.raises(AddrError):
        Addr.from_sockaddr(sockaddr)


# ----- self addresses (section 9): only their spaces are asserted, never this machine's IPs


def test_self_addrs_loopback_only() -> None:
    found = self_addrs(S.LOOPBACK4 | S.LOOPBACK6, 4242)
    assert found, "loopback4 always exists"
    assert Addr.parse("127.0.0.1:4242") in found
    assert all(a.space in (S.LOOPBACK4, S.LOOPBACK6) for a in found)
    assert all(a.port == 4242 for a in found)
    assert found == sort_addrs(found)


def test_self_addrs_respect_the_enabled_spaces() -> None:
    assert self_addrs(S.LOOPBACK4, 1) == [Addr.parse("127.0.0.1:1")]
    assert self_addrs(S.NONE, 1) == []
    assert self_addrs(S.INVALID, 1) == []
    for spaces in (S.DEFAULT, S.ALL, S.PRIVATE4 | S.LINK6):
        found = self_addrs(spaces, 7)
        assert all(spaces.includes(a.space) for a in found)
        assert all(a.port == 7 and not a.ip.is_unspecified for a in found)
        assert all(not (isinstance(a.ip, ipaddress.IPv6Address) and a.ip.scope_id) for a in found)
        assert found == sort_addrs(found)


def test_addr_does_not_order_against_other_types() -> None:
    addr = Addr.parse("1.2.3.4:5")
    for op in ("__lt__", "__le__", "__gt__", "__ge__"):
        assert getattr(addr, op)("1.2.3.4:5") is NotImplemented
    with pytest.raises(TypeError):
        assert addr < 5


@pytest.mark.parametrize("text", ["127.0.0.1:4000", "[::1]:4000", "[fe80::1%eth0]:7"])
def test_cached_text_and_hash_are_not_part_of_the_value(text: str) -> None:
    used = Addr.parse(text)
    assert str(used) == text  # formats once, then keeps the text
    hash(used)
    assert used.space == space_of(used.ip)  # classified once, then kept
    fresh = Addr.parse(text)
    assert used == fresh and hash(used) == hash(fresh)
    assert fresh in {used} and used in {fresh}
    assert str(used) == str(fresh) == text
    assert repr(used) == repr(fresh)
    moved = dataclasses.replace(used, port=9)
    assert str(moved).endswith(":9") and moved != used


@pytest.mark.parametrize(
    ("sockaddr", "text"),
    [
        (("127.0.0.1", 4000), "127.0.0.1:4000"),
        (("::ffff:10.0.0.1", 7, 0, 0), "10.0.0.1:7"),
        (("fe80::1%lo", 7, 0, 1), "[fe80::1]:7"),
    ],
)
def test_from_sockaddr_is_memoized(sockaddr: tuple[object, ...], text: str) -> None:
    # Every conn of an attempt names the same few socket addresses: one shared instance
    # keeps its text, hash and space worked out (docs/notes/issue-10-connect-fifth.md).
    first = Addr.from_sockaddr(sockaddr)
    assert str(first) == text
    assert Addr.from_sockaddr(sockaddr) is first
    assert Addr.from_sockaddr(list(sockaddr)) == first  # type: ignore[arg-type]
    for bad in (("127.0.0.1",), ("127.0.0.1", "80"), ("nope", 1), ([1], 2)):
        with pytest.raises(AddrError):
            Addr.from_sockaddr(bad)
