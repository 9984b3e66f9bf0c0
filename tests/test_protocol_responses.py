"""rdv/1 responses: the 101 (section 4), plain errors (section 3) and post-upgrade errors
(section 5), parsed from the reference's recorded bytes and built byte for byte."""

from __future__ import annotations

import pytest

from rdv_core.wire import (
    MAX_ERROR_BODY,
    MAX_PEER_ADDRS,
    Addr,
    BodyCollector,
    HeadParser,
    LineBuffer,
    ProtocolError,
    build_http_error,
    build_upgrade_error,
    build_upgrade_response,
    check_upgrade_response,
    peer_addrs_for,
    reason_phrase,
)

from tests.feeding import SPLITS, feed_head, split
from tests.go_vectors import (
    SEGMENTED_101_P2P,
    SEGMENTED_101_RELAY,
    SERVER_ANSWERS,
    UPGRADE_ERRORS,
    UPGRADES,
    Upgrade101,
)


def response(*headers: str, status: str = "101 Switching Protocols") -> bytes:
    lines = [f"HTTP/1.1 {status}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def addrs(*texts: str) -> tuple[Addr, ...]:
    return tuple(Addr.parse(t) for t in texts)


# ----- the 101


@pytest.mark.parametrize("how", SPLITS)
@pytest.mark.parametrize("vector", UPGRADES, ids=lambda v: v.name)
def test_reference_101_parses(vector: Upgrade101, how: str) -> None:
    head, trailing = feed_head("response", split(vector.data, how))
    assert (head.status, head.reason, trailing) == (101, "Switching Protocols", b"")
    upgrade = check_upgrade_response(head)
    assert upgrade.observed_addr == (Addr.parse(vector.observed) if vector.observed else None)
    assert upgrade.peer_addrs == addrs(*vector.peers)


@pytest.mark.parametrize("vector", UPGRADES, ids=lambda v: v.name)
def test_build_upgrade_response_equals_reference(vector: Upgrade101) -> None:
    observed = Addr.parse(vector.observed) if vector.observed else None
    assert build_upgrade_response(observed, addrs(*vector.peers)) == vector.data


def test_peer_addrs_from_self_addrs_and_observed_as_the_reference() -> None:
    # The raw pair: A sent two self addrs and was observed at 127.0.0.1:50848.
    peers = peer_addrs_for(
        addrs("[2001:db8::1]:4000", "192.0.2.77:4000"), Addr.parse("127.0.0.1:50848")
    )
    assert build_upgrade_response(Addr.parse("127.0.0.1:50864"), peers) == UPGRADES[2].data
    # Nothing known about the peer: the header is still there, empty.
    assert build_upgrade_response(None, peer_addrs_for((), None)) == (
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nRdv-Peer-Addrs: \r\n"
        b"Upgrade: rdv/1\r\n\r\n"
    )


def test_peer_addrs_sorted_deduplicated_bounded() -> None:
    observed = Addr.parse("203.0.113.5:7000")
    self_addrs = addrs(
        "[::1]:2",
        "10.0.0.1:9",
        "[::ffff:203.0.113.5]:7000",  # the observed addr, IPv4-mapped: one entry
        "10.0.0.1:8",
        "[fe80::1%eth0]:3",
        "[fe80::1]:3",
        "1.2.3.4:5",
        "10.0.0.1:9",
        "[2001:db8::1]:1",
    )
    assert [str(a) for a in peer_addrs_for(self_addrs, observed)] == [
        "1.2.3.4:5",
        "10.0.0.1:8",
        "10.0.0.1:9",
        "203.0.113.5:7000",
        "[::1]:2",
        "[2001:db8::1]:1",
        "[fe80::1]:3",
    ]
    many = tuple(Addr.parse(f"10.0.0.{i}:1") for i in range(1, 10))
    assert len(peer_addrs_for(many, observed)) == MAX_PEER_ADDRS


def test_go_server_segments_one_at_a_time() -> None:
    """The Go server writes its 101 in about 20 TCP segments."""
    parser = HeadParser("response")
    results = [parser.feed(segment) for segment in SEGMENTED_101_P2P]
    assert all(r is None for r in results[:-1])
    head = results[-1]
    assert head is not None and parser.trailing == b""
    upgrade = check_upgrade_response(head)
    assert upgrade.observed_addr == Addr.parse("127.0.0.1:41851")
    assert upgrade.peer_addrs == addrs("127.0.0.1:36481", "192.0.2.2:36481", "[fd00::2]:36481")


@pytest.mark.parametrize("merge", [1, 2, 3, 5])
def test_relayed_session_keeps_every_byte_after_the_101(merge: int) -> None:
    """The accepter's relay conn: 101 segments, then CONTINUE and data; regrouped."""
    segments = [
        b"".join(SEGMENTED_101_RELAY[i : i + merge])
        for i in range(0, len(SEGMENTED_101_RELAY), merge)
    ]
    head, trailing = feed_head("response", segments)
    assert check_upgrade_response(head).peer_addrs == addrs("127.0.0.1:42555")
    # The application takes the stream right after the CONTINUE line.
    buffer = LineBuffer()
    buffer.feed(trailing)
    assert buffer.next_line() == b"CONTINUE"
    assert buffer.rest() == b"hello from the dialer\nsecond line\n"


@pytest.mark.parametrize("how", SPLITS)
def test_bytes_in_the_same_segment_as_the_blank_line_are_kept(how: str) -> None:
    data = UPGRADES[0].data + b"CONTINUE\n\x00binary\xff"
    head, trailing = feed_head("response", split(data, how))
    assert check_upgrade_response(head).observed_addr == Addr.parse("127.0.0.1:50824")
    assert trailing == b"CONTINUE\n\x00binary\xff"


@pytest.mark.parametrize("how", SPLITS)
@pytest.mark.parametrize(
    "headers",
    [
        ("connection: UPGRADE", "upgrade:  RDV/1 ", "rdv-peer-addrs: 1.2.3.4:5"),
        ("Upgrade: rdv/1", "Connection: Upgrade", "Rdv-Peer-Addrs:1.2.3.4:5", "X-Other: y"),
    ],
)
def test_tolerant_101(headers: tuple[str, ...], how: str) -> None:
    head, _ = feed_head("response", split(response(*headers), how))
    upgrade = check_upgrade_response(head)
    assert (upgrade.observed_addr, upgrade.peer_addrs) == (None, addrs("1.2.3.4:5"))


def test_missing_peer_addrs_header_is_an_empty_list() -> None:
    head, _ = feed_head("response", [response("Connection: upgrade", "Upgrade: rdv/1")])
    assert check_upgrade_response(head).peer_addrs == ()


def test_ten_peer_addrs_are_fine() -> None:
    ten = ", ".join(f"10.0.0.{i}:1" for i in range(1, 11))
    head, _ = feed_head(
        "response", [response("Connection: upgrade", "Upgrade: rdv/1", f"Rdv-Peer-Addrs: {ten}")]
    )
    assert len(check_upgrade_response(head).peer_addrs) == 10


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        (("Upgrade: rdv/1",), "invalid rdv upgrade: requires connection upgrade"),
        (
            ("Connection: keep-alive", "Upgrade: rdv/1"),
            "invalid rdv upgrade: requires connection upgrade",
        ),
        (("Connection: upgrade",), "invalid rdv upgrade: missing upgrade header"),
        (
            ("Connection: upgrade", "Upgrade: WebSocket"),
            "invalid rdv upgrade: bad upgrade websocket",
        ),
        (
            ("Connection: upgrade", "Upgrade: rdv/1", "Rdv-Peer-Addrs: 1.2.3.4:5,"),
            "invalid peer addrs [1.2.3.4:5,]",
        ),
        (
            (
                "Connection: upgrade",
                "Upgrade: rdv/1",
                "Rdv-Peer-Addrs: " + ", ".join(["1.1.1.1:1"] * 11),
            ),
            "too many peer addrs [" + ", ".join(["1.1.1.1:1"] * 11) + "]",
        ),
        (
            ("Connection: upgrade", "Upgrade: rdv/1", "Rdv-Observed-Addr: 1.2.3.4"),
            "invalid observed addr [1.2.3.4]",
        ),
    ],
)
def test_bad_101(headers: tuple[str, ...], message: str) -> None:
    for how in SPLITS:
        head, _ = feed_head("response", split(response(*headers), how))
        with pytest.raises(ProtocolError) as info:
            check_upgrade_response(head)
        assert info.value.message == message


def test_empty_observed_addr_means_unknown() -> None:
    head, _ = feed_head(
        "response", [response("Connection: upgrade", "Upgrade: rdv/1", "Rdv-Observed-Addr: ")]
    )
    assert check_upgrade_response(head).observed_addr is None


# ----- non-101 responses


@pytest.mark.parametrize("how", SPLITS)
@pytest.mark.parametrize("vector", [v for v in SERVER_ANSWERS if v.answer], ids=lambda v: v.name)
def test_reference_error_responses(vector, how: str) -> None:  # type: ignore[no-untyped-def]
    answer: bytes = vector.answer
    head, trailing = feed_head("response", split(answer, how))
    body_start = answer.index(b"\r\n\r\n") + 4
    status_line = answer[: answer.index(b"\r\n")].decode()
    _, status, reason = status_line.split(" ", 2)
    assert (head.status, head.reason) == (int(status), reason)
    with pytest.raises(ProtocolError) as info:
        check_upgrade_response(head)
    assert info.value.message == f"unexpected http status {status} {reason}"
    collector = BodyCollector(head)
    collector.feed(trailing)
    # With a Content-Length the body completes by itself; without, it ends at close.
    assert collector.done == (head.content_length is not None)
    assert collector.body == answer[body_start:]
    assert collector.text == answer[body_start:].decode()


@pytest.mark.parametrize(("status", "message", "data"), UPGRADE_ERRORS)
def test_reference_upgrade_errors_parse(status: int, message: str, data: bytes) -> None:
    for how in SPLITS:
        head, trailing = feed_head("response", split(data, how))
        assert (head.status, head.reason) == (status, reason_phrase(status))
        collector = BodyCollector(head)
        for chunk in split(trailing, how):
            assert not collector.feed(chunk)  # no length: ends only at EOF
        assert collector.text == message


def test_body_collector_keeps_at_most_the_bound() -> None:
    head, _ = feed_head("response", [response(status="500 Internal Server Error")])
    collector = BodyCollector(head)
    assert not collector.feed(b"x" * (MAX_ERROR_BODY - 1))
    assert collector.feed(b"yz")
    assert collector.body == b"x" * (MAX_ERROR_BODY - 1) + b"y"
    head, _ = feed_head("response", [response("Content-Length: 3", status="404 Not Found")])
    collector = BodyCollector(head)
    assert collector.feed(b"abcdef")
    assert collector.body == b"abc"
    head, _ = feed_head("response", [response("Content-Length: 0", status="404 Not Found")])
    assert BodyCollector(head).done
    head, _ = feed_head("response", [response("Content-Length: 9", status="404 Not Found")])
    collector = BodyCollector(head, limit=4)
    assert not collector.feed(b"abc") and collector.feed(b"de")
    assert collector.text == "abcd"


# What nginx (HTTP/1.1 to the client) makes of rdv's close-delimited 503 and 408 bodies.
NGINX_CHUNKED = (
    b"HTTP/1.1 408 Request Timeout\r\nServer: nginx/1.22.1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nTransfer-Encoding: chunked\r\n"
    b"Connection: keep-alive\r\n\r\n16\r\nno matching peer found\r\n0\r\n\r\n"
)


@pytest.mark.parametrize("how", SPLITS)
def test_body_collector_decodes_chunked_bodies(how: str) -> None:
    head, trailing = feed_head("response", split(NGINX_CHUNKED, how))
    collector = BodyCollector(head)
    done = [collector.feed(chunk) for chunk in split(trailing, how)]
    assert done[-1] and not any(done[:-1])  # done exactly at the last chunk, not before
    assert collector.text == "no matching peer found"


@pytest.mark.parametrize(
    ("framed", "body", "done"),
    [
        (b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n", b"abcde", True),
        (b"3\nabc\n0\n\n", b"abc", True),  # bare LF lines
        (b"A\r\n0123456789\r\n", b"0123456789", False),  # more may come
        (b"3\r\nabcX", b"abc", True),  # no CRLF after the data: the body ends there
        (b"zz\r\nabc", b"", True),  # not a size
        (b"0x3\r\nabc", b"", True),
        (b"1" * 17 + b"\r\n", b"", True),
        (b"3" * 5000, b"", True),  # a size line past 4096 bytes
    ],
)
def test_body_collector_chunked_framing(framed: bytes, body: bytes, done: bool) -> None:
    head, _ = feed_head(
        "response",
        [response("Transfer-Encoding: gzip, chunked", "Content-Length: 1", status="404 Not Found")],
    )
    collector = BodyCollector(head)
    assert collector.feed(framed) is done
    assert collector.body == body


def test_body_collector_bounds_chunked_bodies() -> None:
    head, _ = feed_head(
        "response", [response("Transfer-Encoding: chunked", status="502 Bad Gateway")]
    )
    collector = BodyCollector(head, limit=4)
    assert collector.feed(b"8\r\nabcdefgh\r\n")
    assert collector.body == b"abcd"


@pytest.mark.parametrize("value", ["-1", "abc", "1e3", "\u00b2", "9" * 30, "+5"])
def test_bad_content_length(value: str) -> None:
    head, _ = feed_head(
        "response", [response(f"Content-Length: {value}", status="400 Bad Request")]
    )
    with pytest.raises(ProtocolError):
        BodyCollector(head)


@pytest.mark.parametrize(
    ("status_line", "status", "reason"),
    [
        (b"HTTP/1.1 101", 101, ""),
        (b"HTTP/1.1 101 ", 101, ""),
        (b"HTTP/1.1  404 Not Found", 404, "Not Found"),
        (b"HTTP/1.0 503 Service Unavailable", 503, "Service Unavailable"),
        (
            b"HTTP/1.1 400 Bad Request: missing required Host header",
            400,
            "Bad Request: missing required Host header",
        ),
        (b"HTTP/1.1 200 \xc4\xe4 \ttab", 200, "\u00c4\u00e4 \ttab"),
    ],
)
def test_status_lines(status_line: bytes, status: int, reason: str) -> None:
    head, _ = feed_head("response", [status_line + b"\r\n\r\n"])
    assert (head.status, head.reason) == (status, reason)


@pytest.mark.parametrize(
    "status_line",
    [
        b"HTTP/1.1 1x1 OK",
        b"HTTP/1.1 1013 Too long",
        b"HTTP/1.1 10 Short",
        b"HTTP/2 101 Switching Protocols",
        b"ICY 200 OK",
        b"HTTP/1.1",
        b"HTTP/1.1 \xb200 superscript",
        b"HTTP/1.1 101 A\x00B",
        b"http/1.1 101 Switching Protocols",
    ],
)
def test_malformed_status_lines(status_line: bytes) -> None:
    for how in SPLITS:
        with pytest.raises(ProtocolError):
            feed_head("response", split(status_line + b"\r\nConnection: upgrade\r\n\r\n", how))


# ----- building error responses


@pytest.mark.parametrize(("status", "message", "data"), UPGRADE_ERRORS)
def test_build_upgrade_error_equals_reference(status: int, message: str, data: bytes) -> None:
    assert build_upgrade_error(status, message) == data


def test_build_upgrade_error_edge_cases() -> None:
    # Go's Response.Write sends an empty body as Content-Length: 0, without Connection: close.
    assert build_upgrade_error(403, "") == (
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nContent-Type: text/plain; "
        b"charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n\r\n"
    )
    assert build_upgrade_error(429, "slow down \u2713").endswith(b"\r\n\r\nslow down \xe2\x9c\x93")
    assert build_upgrade_error(499, "x").startswith(b"HTTP/1.1 499 status code 499\r\n")
    with pytest.raises(ValueError):
        build_upgrade_error(1000, "x")


def test_build_http_error_equals_reference_missing_host() -> None:
    (vector,) = [v for v in SERVER_ANSWERS if v.name == "missing Host header"]
    assert build_http_error(400, "missing required Host header") == vector.answer
    assert build_http_error(431) == (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; "
        b"charset=utf-8\r\nConnection: close\r\n\r\n431 Request Header Fields Too Large"
    )


def test_reason_phrases_are_go_status_text() -> None:
    assert reason_phrase(426) == "Upgrade Required"
    assert reason_phrase(414) == "Request URI Too Long"
    assert reason_phrase(418) == "I'm a teapot"
    assert reason_phrase(505) == "HTTP Version Not Supported"
    assert reason_phrase(299) == "status code 299"
