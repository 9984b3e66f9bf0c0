"""The PROXY protocol v1/v2 parser (docs/PROTOCOL.md section 14): the specification's
examples, every rejection, round trips split at any byte, and fuzzing (arbitrary bytes and
mutated headers never raise anything but :class:`ProxyHeaderError`)."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rdv_core.wire import (
    MAX_V2_HEADER,
    Addr,
    ProtocolError,
    ProxyHeader,
    ProxyHeaderError,
    ProxyHeaderParser,
    build_proxy_v1,
    build_proxy_v2,
    sniff_proxy_header,
)

from tests.test_protocol_properties import chunked

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def parse_whole(data: bytes) -> tuple[ProxyHeader | None, bytes]:
    parser = ProxyHeaderParser()
    header = parser.feed(data)
    return header, parser.trailing


def parse_bytewise(data: bytes) -> tuple[ProxyHeader | None, bytes]:
    parser = ProxyHeaderParser()
    header = None
    for i in range(len(data)):
        header = parser.feed(data[i : i + 1])
    return header, parser.trailing


def addr(text: str) -> Addr:
    return Addr.parse(text)


# ----- the specification's examples and what real balancers send


V1_CASES = [
    (
        b"PROXY TCP4 192.0.2.7 198.51.100.1 40122 8080\r\n",
        ProxyHeader(1, "proxy", addr("192.0.2.7:40122"), addr("198.51.100.1:8080")),
    ),
    (
        b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n",
        ProxyHeader(1, "proxy", addr("255.255.255.255:65535"), addr("255.255.255.255:65535")),
    ),
    (
        b"PROXY TCP6 2001:db8::7 2001:db8::1 0 443\r\n",
        ProxyHeader(1, "proxy", addr("[2001:db8::7]:0"), addr("[2001:db8::1]:443")),
    ),
    (
        b"PROXY TCP6 ::ffff:192.0.2.7 ::1 5 6\r\n",
        ProxyHeader(1, "proxy", addr("[::ffff:192.0.2.7]:5"), addr("[::1]:6")),
    ),
    (b"PROXY UNKNOWN\r\n", ProxyHeader(1, "proxy", None, None)),
    (b"PROXY UNKNOWN ffff:: 1.2.3.4 what ever\r\n", ProxyHeader(1, "proxy", None, None)),
]


@pytest.mark.parametrize(("raw", "expected"), V1_CASES)
@pytest.mark.parametrize("feed", [parse_whole, parse_bytewise])
def test_v1_parses(raw: bytes, expected: ProxyHeader, feed: object) -> None:
    assert callable(feed)
    header, trailing = feed(raw + b"GET /healthz HTTP/1.1\r\n")
    assert header == expected
    assert trailing == b"GET /healthz HTTP/1.1\r\n"


def test_v1_longest_lines() -> None:
    longest6 = "PROXY TCP6 " + " ".join(["ffff:" * 7 + "ffff"] * 2) + " 65535 65535\r\n"
    assert len(longest6) == 104
    header, _ = parse_whole(longest6.encode())
    assert header is not None and header.source == addr(f"[{'ffff:' * 7}ffff]:65535")
    unknown = b"PROXY UNKNOWN " + b"x" * (107 - 16) + b"\r\n"
    assert len(unknown) == 107
    assert parse_whole(unknown)[0] == ProxyHeader(1, "proxy", None, None)
    with pytest.raises(ProxyHeaderError, match="longer than 107"):
        parse_whole(b"PROXY UNKNOWN " + b"x" * (107 - 15) + b"\r\n")


V1_BAD = [
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "CRLF"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", "control"),
    (b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", "6 fields"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "6 fields"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "6 fields"),
    (b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "TCP4, TCP6 or UNKNOWN"),
    (b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", "TCP4, TCP6 or UNKNOWN"),
    (b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n", "not an IPv4"),
    (b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "not an IPv6"),
    (b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", "not an IPv4"),
    (b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "not an IPv4"),
    (b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "scope"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "bad port"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", "bad port"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", "out of range"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 \xd9\xa1\r\n", "non-ASCII"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 123456\r\n", "bad port"),
    (b"GET / HTTP/1.1\r\n\r\n", "not a PROXY"),
    (b"PROXY\r\n", "not a PROXY"),
]


@pytest.mark.parametrize(("raw", "match"), V1_BAD)
def test_v1_refuses(raw: bytes, match: str) -> None:
    with pytest.raises(ProxyHeaderError, match=match) as info:
        parse_bytewise(raw)
    assert info.value.status == 400
    assert isinstance(info.value, ProtocolError)


def test_v1_waits_for_the_line() -> None:
    parser = ProxyHeaderParser()
    assert parser.feed(b"PRO") is None
    assert parser.feed(b"XY TCP4 1.2.3.4 5.6.7.8 1 2\r") is None
    header = parser.feed(b"\nDIAL")
    assert header is not None and parser.trailing == b"DIAL"
    assert parser.feed(b" /x") is header and parser.trailing == b"DIAL /x"


def v2(ver_cmd: int, fam: int, body: bytes, length: int | None = None) -> bytes:
    return SIG + struct.pack("!BBH", ver_cmd, fam, len(body) if length is None else length) + body


V2_CASES = [
    (
        # HAProxy send-proxy-v2 from 127.0.0.1:40122 to 127.0.0.1:9000, no TLV.
        v2(0x21, 0x11, bytes([127, 0, 0, 1, 127, 0, 0, 1]) + struct.pack("!HH", 40122, 9000)),
        ProxyHeader(2, "proxy", addr("127.0.0.1:40122"), addr("127.0.0.1:9000")),
    ),
    (
        v2(
            0x21,
            0x21,
            ipaddress.IPv6Address("2001:db8::7").packed
            + ipaddress.IPv6Address("::1").packed
            + struct.pack("!HH", 1, 2)
            + b"\x01\x00\x02h2"  # ALPN
            + b"\x04\x00\x00",  # NOOP, empty
        ),
        ProxyHeader(2, "proxy", addr("[2001:db8::7]:1"), addr("[::1]:2"), ((1, b"h2"), (4, b""))),
    ),
    # A health check: LOCAL, whatever the block says.
    (v2(0x20, 0x11, b"\xff" * 5), ProxyHeader(2, "local", None, None)),
    (v2(0x20, 0x00, b""), ProxyHeader(2, "local", None, None)),
    # PROXY with an unspecified family or protocol, or a unix socket: addresses unknown.
    (v2(0x21, 0x00, b""), ProxyHeader(2, "proxy", None, None)),
    (v2(0x21, 0x10, b"\x00" * 12), ProxyHeader(2, "proxy", None, None)),
    (v2(0x21, 0x31, b"/run/lb.sock".ljust(216, b"\x00")), ProxyHeader(2, "proxy", None, None)),
]


@pytest.mark.parametrize(("raw", "expected"), V2_CASES)
@pytest.mark.parametrize("feed", [parse_whole, parse_bytewise])
def test_v2_parses(raw: bytes, expected: ProxyHeader, feed: object) -> None:
    assert callable(feed)
    header, trailing = feed(raw + b"DIAL /t HTTP/1.1\r\n")
    assert header == expected
    assert trailing == b"DIAL /t HTTP/1.1\r\n"


V2_BAD = [
    (v2(0x11, 0x11, b"\x00" * 12), "version 1"),
    (v2(0x31, 0x11, b"\x00" * 12), "version 3"),
    (v2(0x22, 0x11, b"\x00" * 12), "unknown command"),
    (v2(0x21, 0x41, b"\x00" * 12), "family/protocol"),
    (v2(0x21, 0x13, b"\x00" * 12), "family/protocol"),
    (v2(0x21, 0x12, b"\x00" * 12), "datagram"),
    (v2(0x21, 0x11, b"\x00" * 11), "cannot hold a 12-byte"),
    (v2(0x21, 0x21, b"\x00" * 35), "cannot hold a 36-byte"),
    (v2(0x21, 0x11, b"\x00" * 12 + b"\x01\x00"), "truncated TLV"),
    (v2(0x21, 0x11, b"\x00" * 12 + b"\x01\x00\x05abcd"), "overruns"),
    (v2(0x21, 0x11, b"", length=MAX_V2_HEADER), "at most 4096"),
    (SIG[:-1] + b"X" + b"\x21\x11\x00\x0c", "not a PROXY"),
]


@pytest.mark.parametrize(("raw", "match"), V2_BAD)
def test_v2_refuses(raw: bytes, match: str) -> None:
    with pytest.raises(ProxyHeaderError, match=match):
        parse_bytewise(raw)


def test_v2_length_bound_is_checked_before_buffering() -> None:
    # A stranger announcing 64 KiB is refused at the 16th byte, not after it sent them.
    parser = ProxyHeaderParser()
    with pytest.raises(ProxyHeaderError):
        parser.feed(SIG + b"\x21\x11\xff\xff")


def test_optional_header() -> None:
    for raw in (b"GET /healthz HTTP/1.1\r\n\r\n", b"PROXX", b"\r\n\r\nGET"):
        parser = ProxyHeaderParser(required=False)
        for i in range(len(raw)):
            assert parser.feed(raw[i : i + 1]) is None
        assert parser.finished, raw
        assert parser.header is None and parser.trailing == raw
    undecided = ProxyHeaderParser(required=False)
    assert undecided.feed(b"PROX") is None and not undecided.finished
    parser = ProxyHeaderParser(required=False)
    assert parser.feed(b"PROXY UNKNOWN\r") is None and not parser.finished
    assert parser.feed(b"\nGET") == ProxyHeader(1, "proxy", None, None)
    assert parser.finished and parser.trailing == b"GET"
    with pytest.raises(ProxyHeaderError):
        ProxyHeaderParser(required=False).feed(b"PROXY TCP4 1.2.3.4\r\n")


def test_sniff() -> None:
    assert sniff_proxy_header(b"") is None
    assert sniff_proxy_header(b"PROX") is None
    assert sniff_proxy_header(b"\r\n\r\n\x00") is None
    assert sniff_proxy_header(b"PROXY ") == 1
    assert sniff_proxy_header(SIG) == 2
    assert sniff_proxy_header(b"POST") is False
    assert sniff_proxy_header(b"DIAL /x HTTP/1.1\r\n") is False
    assert sniff_proxy_header(b"\r\n\r\nGET") is False


def test_builders_refuse_mixed_families() -> None:
    with pytest.raises(ValueError, match="one family"):
        build_proxy_v1(addr("1.2.3.4:1"), addr("[::1]:2"))
    with pytest.raises(ValueError, match="one family"):
        build_proxy_v2(addr("1.2.3.4:1"), addr("[::1]:2"))
    with pytest.raises(ValueError, match="over 4096"):
        build_proxy_v2(addr("1.2.3.4:1"), addr("5.6.7.8:2"), tlvs=((1, b"x" * 4096),))


# ----- round trips and fuzzing


def same_family_pair(draw: st.DrawFn) -> tuple[Addr, Addr]:
    # Annotated: mypy joins the two branches' strategies to their common base class.
    ips: st.SearchStrategy[ipaddress.IPv4Address | ipaddress.IPv6Address] = (
        st.ip_addresses(v=4) if draw(st.booleans()) else st.ip_addresses(v=6)
    )
    # v1 cannot carry a scope; st.ip_addresses never draws one.
    return (
        Addr(draw(ips), draw(st.integers(0, 65535))),
        Addr(draw(ips), draw(st.integers(0, 65535))),
    )


pairs = st.composite(same_family_pair)()
tlv_lists = st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=40)), max_size=5).map(tuple)


@SETTINGS
@given(pair=pairs, trailing=st.binary(max_size=30), data=st.data())
def test_v1_round_trip(pair: tuple[Addr, Addr], trailing: bytes, data: st.DataObject) -> None:
    parser = ProxyHeaderParser()
    header = None
    for chunk in data.draw(chunked(build_proxy_v1(*pair) + trailing)):
        header = parser.feed(chunk)
    assert header == ProxyHeader(1, "proxy", *pair)
    assert parser.trailing == trailing


@SETTINGS
@given(pair=pairs, tlvs=tlv_lists, trailing=st.binary(max_size=30), data=st.data())
def test_v2_round_trip(
    pair: tuple[Addr, Addr],
    tlvs: tuple[tuple[int, bytes], ...],
    trailing: bytes,
    data: st.DataObject,
) -> None:
    parser = ProxyHeaderParser()
    header = None
    for chunk in data.draw(chunked(build_proxy_v2(*pair, tlvs=tlvs) + trailing)):
        header = parser.feed(chunk)
    assert header == ProxyHeader(2, "proxy", *pair, tlvs)
    assert parser.trailing == trailing


def feed_all(chunks: list[bytes], required: bool = True) -> None:
    parser = ProxyHeaderParser(required=required)
    for chunk in chunks:
        try:
            header = parser.feed(chunk)
        except ProxyHeaderError:
            return
        if header is not None:
            assert isinstance(header, ProxyHeader)


@settings(max_examples=120, deadline=None)
@given(st.binary(max_size=300), st.data())
def test_fuzz_arbitrary_bytes(raw: bytes, data: st.DataObject) -> None:
    feed_all(data.draw(chunked(raw)))
    feed_all(data.draw(chunked(b"PROXY " + raw)))
    feed_all(data.draw(chunked(SIG + raw)))
    feed_all(data.draw(chunked(raw)), required=False)


@settings(max_examples=120, deadline=None)
@given(
    pair=pairs,
    tlvs=tlv_lists,
    version=st.sampled_from([1, 2]),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
    data=st.data(),
)
def test_fuzz_mutated_headers(
    pair: tuple[Addr, Addr],
    tlvs: tuple[tuple[int, bytes], ...],
    version: int,
    flips: list[tuple[int, int]],
    data: st.DataObject,
) -> None:
    raw = bytearray(build_proxy_v1(*pair) if version == 1 else build_proxy_v2(*pair, tlvs=tlvs))
    for position, value in flips:
        raw[position % len(raw)] = value
    feed_all(data.draw(chunked(bytes(raw) + b"GET / HTTP/1.1\r\n\r\n")))
