"""rdv/1 request heads around the checks of docs/PROTOCOL.md section 3: forms and bounds.

Every request is fed whole, one byte at a time and at random split points. Tolerant inputs
the checks accept, what Go's net/http answers before any handler, malformed heads and the
bounds on the header block.
"""

from __future__ import annotations

import pytest

from rdv_core.wire import (
    MAX_HEADER_BLOCK,
    MAX_HEADERS,
    HeadParser,
    ProtocolError,
    RequestRejected,
    build_rejection,
    check_request,
)

from tests.feeding import SPLITS, feed_head, split
from tests.request_support import checked, rejected, request

# ----- tolerant inputs


@pytest.mark.parametrize("how", SPLITS)
@pytest.mark.parametrize(
    "headers",
    [
        ("Host: x", "connection: Upgrade", "upgrade:  RDV/1 "),
        ("HOST: x", "CONNECTION: UPGRADE", "UPGRADE: Rdv/1"),
        ("Host:x", "Connection:upgrade", "Upgrade:rdv/1", "Rdv-Self-Addrs:"),
        ("Host: x", "Connection: \tupgrade\t", "Upgrade: \trdv/1", "Rdv-Self-Addrs:   "),
        (
            "Host: x",
            "Connection: upgrade",
            "Upgrade: rdv/1",
            "Authorization: Bearer abc",
            "X-Any: 1",
        ),
    ],
)
def test_tolerant_header_forms(headers: tuple[str, ...], how: str) -> None:
    req = checked(request("/tok", *headers), how)
    assert (req.method, req.token, req.self_addrs) == ("DIAL", "tok", ())


@pytest.mark.parametrize("how", SPLITS)
def test_bare_lf_line_endings(how: str) -> None:
    data = b"ACCEPT /tok HTTP/1.1\nHost: x\nConnection: upgrade\nUpgrade: rdv/1\n\n"
    assert checked(data, how).method == "ACCEPT"


@pytest.mark.parametrize("how", SPLITS)
def test_self_addrs_spacing(how: str) -> None:
    data = request(
        "/t",
        "Host: x",
        "Connection: upgrade",
        "Upgrade: rdv/1",
        "Rdv-Self-Addrs: 1.2.3.4:5,[::1]:6 ,\t10.0.0.1:7",
    )
    assert [str(a) for a in checked(data, how).self_addrs] == ["1.2.3.4:5", "[::1]:6", "10.0.0.1:7"]


@pytest.mark.parametrize("how", SPLITS)
def test_bytes_after_the_head_are_kept(how: str) -> None:
    data = request() + b"early byte\x00\xff"
    head, trailing = feed_head("request", split(data, how))
    assert trailing == b"early byte\x00\xff"
    assert check_request(head).token == "tok"


def test_head_parser_keeps_bytes_fed_after_the_head() -> None:
    parser = HeadParser("request")
    head = parser.feed(request() + b"a")
    assert head is not None
    assert parser.feed(b"bc") is head
    assert parser.trailing == b"abc"


# ----- what net/http answers before any handler


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            request("/tok", "Connection: upgrade", "Upgrade: rdv/1"),
            "400 Bad Request: missing required Host header",
        ),
        (
            request("/tok", "Host: a", "Host: b", "Connection: upgrade", "Upgrade: rdv/1"),
            "400 Bad Request: too many Host headers",
        ),
        (
            request("/tok", "Host: a b", "Connection: upgrade", "Upgrade: rdv/1"),
            "400 Bad Request: malformed Host header",
        ),
        (
            request("/tok", "Host: x", "Connection: upgrade", version="HTTP/2.0"),
            "505 HTTP Version Not Supported: unsupported protocol version",
        ),
        (
            request("/tok", "Host: x", "Connection: upgrade", "X: a\x01b"),
            "400 Bad Request: invalid header value",
        ),
    ],
)
def test_http_level_rejections(data: bytes, message: str) -> None:
    for how in SPLITS:
        try:
            head, _ = feed_head("request", split(data, how))
            check_request(head)
        except RequestRejected as exc:
            error = exc
        else:
            pytest.fail("accepted")
        assert error.http_level and error.message == message
        reply = build_rejection(error)
        assert reply.close
        public = message.encode()
        assert reply.data == (
            b"HTTP/1.1 " + public + b"\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Connection: close\r\n\r\n" + public
        )


def test_http10_without_host_is_fine_for_http_but_not_for_rdv() -> None:
    data = b"DIAL /tok HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: rdv/1\r\n\r\n"
    error, head = rejected(data, "whole")
    assert error.message == "invalid rdv upgrade: bad http version for upgrade HTTP/1.0"
    reply = build_rejection(error, head)
    assert reply.close and reply.data.startswith(b"HTTP/1.0 426 Upgrade Required\r\n")
    assert b"Connection:" not in reply.data


@pytest.mark.parametrize(
    ("connection", "close"),
    [("Connection: close", True), ("Connection: keep-alive, Close", True), ("X: y", False)],
)
def test_rejection_keeps_http11_conn_alive_unless_asked(connection: str, close: bool) -> None:
    error, head = rejected(request("/tok", "Host: x", connection), "whole")
    reply = build_rejection(error, head)
    assert reply.close is close
    if close:
        # Go writes it among its own headers: after the handler's, before Date.
        assert b"X-Content-Type-Options: nosniff\r\nConnection: close\r\nDate: " in reply.data
    else:
        assert b"Connection:" not in reply.data


# ----- malformed heads and bounds


@pytest.mark.parametrize(
    "data",
    [
        b"DIAL /tok\r\nHost: x\r\n\r\n",
        b"DIAL  /tok HTTP/1.1\r\nHost: x\r\n\r\n",
        b"DIAL /tok HTTP/1.1 extra\r\nHost: x\r\n\r\n",
        b"DI(AL /tok HTTP/1.1\r\nHost: x\r\n\r\n",
        b"DIAL /tok HTTP/1.1x\r\nHost: x\r\n\r\n",
        b"DIAL /tok HTTP/11\r\nHost: x\r\n\r\n",
        b"DIAL /tok http/1.1\r\nHost: x\r\n\r\n",
        b"DIAL /t\tok HTTP/1.1\r\nHost: x\r\n\r\n",
        b"DIAL /t\x7fok HTTP/1.1\r\nHost: x\r\n\r\n",
        b"DIAL /\xff HTTP/1.1\r\nHost: x\r\n\r\n",
        b"DIAL /tok HTTP/1.1\r\nHost x\r\n\r\n",
        b"DIAL /tok HTTP/1.1\r\nBad Name: x\r\n\r\n",
        b"DIAL /tok HTTP/1.1\r\nHost : x\r\n\r\n",
        b"DIAL /tok HTTP/1.1\r\n: x\r\n\r\n",
        b"DIAL /tok HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
        b"DIAL /tok HTTP/1.1\r\nHost: x\x00y\r\n\r\n",
        b"DIAL /tok HTTP/1.1\r\nHost: x\ry\r\n\r\n",
        b"\r\n\r\n",
    ],
)
def test_malformed_heads(data: bytes) -> None:
    for how in SPLITS:
        with pytest.raises(ProtocolError) as info:
            feed_head("request", split(data, how))
        assert info.value.status == 400
    reply = build_rejection(info.value)
    assert reply.close
    assert reply.data.startswith(b"HTTP/1.1 400 Bad Request")


@pytest.mark.parametrize("how", ["whole", "bytewise", "random-1"])
def test_header_block_bound(how: str) -> None:
    filler = "X-Fill: " + "a" * 1000
    count = MAX_HEADER_BLOCK // 1000 + 1
    data = request("/tok", "Host: x", *([filler] * count))
    with pytest.raises(ProtocolError) as info:
        feed_head("request", split(data, how))
    assert info.value.status == 431
    reply = build_rejection(info.value)
    assert reply.data == (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; "
        b"charset=utf-8\r\nConnection: close\r\n\r\n431 Request Header Fields Too Large"
    )


def test_header_block_bound_without_blank_line() -> None:
    """A peer that never ends its head is cut off once it passes the bound."""
    parser = HeadParser("request", max_size=100)
    assert parser.feed(b"DIAL /tok HTTP/1.1\r\n" + b"X: " + b"a" * 70) is None
    with pytest.raises(ProtocolError) as info:
        parser.feed(b"a" * 20)
    assert info.value.status == 431


def test_header_block_exactly_at_the_bound_is_accepted() -> None:
    data = request()
    head, _ = feed_head("request", [data], max_size=len(data))
    assert check_request(head).token == "tok"
    with pytest.raises(ProtocolError):
        feed_head("request", [data], max_size=len(data) - 1)


def test_header_count_bound() -> None:
    ok = request(
        "/tok", "Host: x", "Connection: upgrade", "Upgrade: rdv/1", *(["X: y"] * (MAX_HEADERS - 3))
    )
    assert checked(ok, "whole").token == "tok"
    too_many = request("/tok", "Host: x", *(["X: y"] * MAX_HEADERS))
    for how in ("whole", "random-2"):
        with pytest.raises(ProtocolError) as info:
            feed_head("request", split(too_many, how))
        assert info.value.status == 431
