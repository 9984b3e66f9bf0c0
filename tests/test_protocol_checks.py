"""rdv/1 requests: the server's checks of docs/PROTOCOL.md section 3, row by row.

Every request is fed whole, one byte at a time and at random split points. The reference
server's answers to raw requests, each row of section 3, the order of the checks, and the
plain responses that carry a rejection.
"""

from __future__ import annotations

import pytest

from rdv_core.wire import (
    Addr,
    Head,
    RdvRequest,
    RequestRejected,
    build_plain_response,
    build_rejection,
    build_request,
    check_request,
    parse_server_url,
)

from tests.feeding import SPLITS, feed_head, split
from tests.go_vectors import (
    CLOSED_ANSWER,
    SERVER_ANSWERS,
    ServerAnswer,
    without_date,
)
from tests.request_support import checked, rejected, request

# ----- the reference server's answers to raw requests


@pytest.mark.parametrize("how", SPLITS)
@pytest.mark.parametrize("vector", SERVER_ANSWERS, ids=lambda v: v.name)
def test_reference_answers(vector: ServerAnswer, how: str) -> None:
    """Our checks accept what Go kept in its lobby and answer the rest with Go's bytes."""
    head, trailing = feed_head("request", split(vector.request, how))
    assert trailing == b""
    if vector.answer is None:
        assert isinstance(check_request(head), RdvRequest)
        return
    with pytest.raises(RequestRejected) as info:
        check_request(head)
    reply = build_rejection(info.value, head)
    assert without_date(reply.data) == without_date(vector.answer)
    assert reply.close == vector.closed


@pytest.mark.parametrize(
    ("name", "method", "token", "addrs"),
    [
        ("9 self addrs", "DIAL", "tok-nine", tuple(f"10.0.0.{i}:1000" for i in range(1, 10))),
        ("no Rdv-Self-Addrs header at all", "DIAL", "tok-noself", ()),
        ("lower/upper-case header values", "ACCEPT", "tok-ci", ()),
        ("absolute-form target", "DIAL", "abs-tok", ("[fe80::1%eth0]:5",)),
        (
            "ipv6 zone in self addr + ipv4-mapped",
            "DIAL",
            "tok-z",
            ("[::ffff:1.2.3.4]:7", "[fe80::1%25eth0]:5"),
        ),
    ],
)
def test_reference_lobby_requests(
    name: str, method: str, token: str, addrs: tuple[str, ...]
) -> None:
    (vector,) = [v for v in SERVER_ANSWERS if v.name == name]
    for how in SPLITS:
        req = checked(vector.request, how)
        assert (req.method, req.token) == (method, token)
        assert req.self_addrs == tuple(Addr.parse(a) for a in addrs)


def test_ipv4_mapped_and_zoned_self_addrs_keep_their_form() -> None:
    (vector,) = [v for v in SERVER_ANSWERS if v.name == "ipv6 zone in self addr + ipv4-mapped"]
    req = checked(vector.request, "whole")
    mapped, zoned = req.self_addrs
    assert str(mapped) == "[::ffff:1.2.3.4]:7"
    assert mapped.unmapped() == Addr.parse("1.2.3.4:7")
    assert str(zoned) == "[fe80::1%25eth0]:5"
    assert zoned.unmapped() == Addr.parse("[fe80::1]:5")


def test_closed_server_answer_is_a_plain_503() -> None:
    assert without_date(build_plain_response(503, "rdv is closed")) == without_date(CLOSED_ANSWER)


# ----- section 3, row by row, and the order of the checks

ROWS = [
    # (request, status, body message)
    (
        request("/tok", "Host: x", "Upgrade: rdv/1"),
        426,
        "invalid rdv upgrade: requires connection upgrade",
    ),
    (
        request("/tok", "Host: x", "Connection: keep-alive, upgrade", "Upgrade: rdv/1"),
        426,
        "invalid rdv upgrade: requires connection upgrade",
    ),
    (
        request("/tok", "Host: x", "Connection: upgraded", "Upgrade: rdv/1"),
        426,
        "invalid rdv upgrade: requires connection upgrade",
    ),
    (
        request("/tok", "Host: x", "Connection: upgrade"),
        426,
        "invalid rdv upgrade: missing upgrade header",
    ),
    (
        request("/tok", "Host: x", "Connection: upgrade", "Upgrade:"),
        426,
        "invalid rdv upgrade: missing upgrade header",
    ),
    (
        request("/tok", "Host: x", "Connection: upgrade", "Upgrade:   \t "),
        426,
        "invalid rdv upgrade: missing upgrade header",
    ),
    (
        request("/tok", "Host: x", "Connection: upgrade", "Upgrade: WebSocket"),
        426,
        "invalid rdv upgrade: bad upgrade websocket",
    ),
    (
        request("/tok", "Host: x", "Connection: upgrade", "Upgrade: rdv/1, websocket"),
        426,
        "invalid rdv upgrade: bad upgrade rdv/1, websocket",
    ),
    (
        request("/tok", "Host: x", "Connection: upgrade", "Upgrade: rdv/2"),
        426,
        "invalid rdv upgrade: bad upgrade rdv/2",
    ),
    (
        request("/tok", "Connection: upgrade", "Upgrade: rdv/1", version="HTTP/1.0"),
        426,
        "invalid rdv upgrade: bad http version for upgrade HTTP/1.0",
    ),
    (
        request("/tok", "Host: x", "Connection: upgrade", "Upgrade: rdv/1", version="HTTP/1.2"),
        426,
        "invalid rdv upgrade: bad http version for upgrade HTTP/1.2",
    ),
    (request("/"), 400, "missing rdv token"),
    (request("/?x=1"), 400, "missing rdv token"),
    (request("http://host"), 400, "missing rdv token"),
    (request("/tok", method="GET"), 400, "unknown rdv method [GET]"),
    (request("/tok", method="dial"), 400, "unknown rdv method [dial]"),
    (request("/tok", method="Accept"), 400, "unknown rdv method [Accept]"),
    (
        request("/tok", "Host: x", "Connection: upgrade", "Upgrade: rdv/1", "Rdv-Self-Addrs: foo"),
        400,
        "invalid self addrs [foo]",
    ),
    (
        request("/tok", "Host: x", "Connection: upgrade", "Upgrade: rdv/1", "Rdv-Self-Addrs: ,"),
        400,
        "invalid self addrs [,]",
    ),
    (
        request(
            "/tok", "Host: x", "Connection: upgrade", "Upgrade: rdv/1", "Rdv-Self-Addrs: 1.2.3.4"
        ),
        400,
        "invalid self addrs [1.2.3.4]",
    ),
    (
        request(
            "/tok", "Host: x", "Connection: upgrade", "Upgrade: rdv/1", "Rdv-Self-Addrs: ::1:5"
        ),
        400,
        "invalid self addrs [::1:5]",
    ),
    (
        request(
            "/tok",
            "Host: x",
            "Connection: upgrade",
            "Upgrade: rdv/1",
            "Rdv-Self-Addrs: 1.2.3.4:70000",
        ),
        400,
        "invalid self addrs [1.2.3.4:70000]",
    ),
    (
        request(
            "/tok",
            "Host: x",
            "Connection: upgrade",
            "Upgrade: rdv/1",
            "Rdv-Self-Addrs: " + ",".join(f"[2001:db8::{i}]:9" for i in range(1, 11)),
        ),
        400,
        "too many self addrs [" + ",".join(f"[2001:db8::{i}]:9" for i in range(1, 11)) + "]",
    ),
]


@pytest.mark.parametrize("how", SPLITS)
@pytest.mark.parametrize(("data", "status", "message"), ROWS)
def test_section3_rows(data: bytes, status: int, message: str, how: str) -> None:
    error, head = rejected(data, how)
    assert (error.status, error.message, error.http_level) == (status, message, False)
    reply = build_rejection(error, head)
    body = (message + "\n").encode()
    assert reply.data.endswith(b"\r\n\r\n" + body)
    assert f"Content-Length: {len(body)}\r\n".encode() in reply.data
    # Go answers in HTTP/1.1 unless the request was HTTP/1.0.
    version = "HTTP/1.0" if head.version == "HTTP/1.0" else "HTTP/1.1"
    assert reply.data.startswith(f"{version} {status} ".encode())


ORDER = [
    # Several checks fail: the first in section 3's order wins.
    (
        request("/", "Upgrade: h2c", method="GET", version="HTTP/1.0"),
        "invalid rdv upgrade: requires connection upgrade",
    ),
    (
        request("/", "Connection: upgrade", "Upgrade: h2c", method="GET", version="HTTP/1.0"),
        "invalid rdv upgrade: bad upgrade h2c",
    ),
    (
        request("/", "Connection: upgrade", "Upgrade: rdv/1", method="GET", version="HTTP/1.0"),
        "invalid rdv upgrade: bad http version for upgrade HTTP/1.0",
    ),
    (
        request(
            "/",
            "Host: x",
            "Connection: upgrade",
            "Upgrade: rdv/1",
            "Rdv-Self-Addrs: foo",
            method="GET",
        ),
        "missing rdv token",
    ),
    (
        request(
            "/t",
            "Host: x",
            "Connection: upgrade",
            "Upgrade: rdv/1",
            "Rdv-Self-Addrs: foo",
            method="GET",
        ),
        "unknown rdv method [GET]",
    ),
    (
        request(
            "/t",
            "Host: x",
            "Connection: upgrade",
            "Upgrade: rdv/1",
            "Rdv-Self-Addrs: " + ", ".join(["1.1.1.1:1"] * 10 + ["bad"]),
        ),
        "invalid self addrs [" + ", ".join(["1.1.1.1:1"] * 10 + ["bad"]) + "]",
    ),
]


@pytest.mark.parametrize(("data", "message"), ORDER)
def test_order_of_checks(data: bytes, message: str) -> None:
    for how in SPLITS:
        error, _ = rejected(data, how)
        assert error.message == message


def test_first_of_repeated_headers_counts() -> None:
    data = request("/t", "Host: x", "Connection: upgrade", "Connection: close", "Upgrade: rdv/1")
    assert checked(data, "whole").token == "t"
    data = request("/t", "Host: x", "Connection: close", "Connection: upgrade", "Upgrade: rdv/1")
    assert rejected(data, "whole")[0].status == 426


# ----- plain responses


def test_plain_response_framing_like_go_http_error() -> None:
    data = build_plain_response(426, "invalid rdv upgrade: requires connection upgrade")
    assert without_date(data) == without_date(SERVER_ANSWERS[0].answer or b"")


def test_plain_response_unknown_status_reason() -> None:
    assert build_plain_response(499, "x").startswith(b"HTTP/1.1 499 status code 499\r\n")
    with pytest.raises(ValueError):
        build_plain_response(99, "x")


def test_head_request_rejection_has_no_body() -> None:
    error, head = rejected(request("/tok", method="HEAD"), "whole")
    assert error.message == "unknown rdv method [HEAD]"
    reply = build_rejection(error, head)
    assert reply.data.endswith(b"\r\nContent-Length: 26\r\n\r\n")
    assert not reply.close


def test_connect_needs_no_host() -> None:
    data = request("h:443", "Connection: upgrade", "Upgrade: rdv/1", method="CONNECT")
    assert rejected(data, "whole")[0].message == "missing rdv token"


def test_host_header_leaves_the_ipv6_zone_out() -> None:
    url = parse_server_url("http://[fe80::1%25eth0]:8080/rdv")
    assert url.host_header == "[fe80::1]:8080"
    assert build_request("DIAL", url, "t", []).startswith(
        b"DIAL /rdv/t HTTP/1.1\r\nHost: [fe80::1]:8080\r\n"
    )


def test_hand_built_heads() -> None:
    """Fronts on other HTTP stacks (aiohttp) build the Head themselves."""
    head = Head(
        "ACCEPT /rdv/t%20u HTTP/1.1",
        "HTTP/1.1",
        [("host", "x"), ("connection", "Upgrade"), ("upgrade", "rdv/1"), ("rdv-self-addrs", "")],
        method="ACCEPT",
        target="/rdv/t%20u",
    )
    assert head.has("Rdv-Self-Addrs") and not head.has("Authorization")
    assert check_request(head, "/rdv").token == "t u"
    odd = Head("DIAL /t HTTP/x", "HTTP/x", head.headers, method="DIAL", target="/t")
    with pytest.raises(RequestRejected) as info:
        check_request(odd)
    assert info.value.http_level and info.value.status == 400
