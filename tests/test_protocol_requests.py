"""rdv/1 requests: parsing, the server's checks of PROTOCOL.md section 3, building.

Every request is fed whole, one byte at a time and at random split points.
"""

from __future__ import annotations

import pytest

from rdv_core.wire import (
    MAX_HEADER_BLOCK,
    MAX_HEADERS,
    Addr,
    Head,
    HeadParser,
    ProtocolError,
    RdvRequest,
    RequestRejected,
    build_header_line,
    build_plain_response,
    build_rejection,
    build_request,
    canonical_header_name,
    check_http_request,
    check_request,
    escape_token,
    parse_server_url,
    request_path,
    token_from_target,
)

from tests.feeding import SPLITS, feed_head, split
from tests.go_vectors import (
    CLOSED_ANSWER,
    SERVER_ANSWERS,
    SESSION_REQUESTS,
    UNUSUAL_TOKENS,
    ServerAnswer,
    without_date,
)

GO_UA = "Go-http-client/1.1"


def request(
    target: str = "/tok", *headers: str, method: str = "DIAL", version: str = "HTTP/1.1"
) -> bytes:
    """A request head; ``headers`` default to a valid rdv request's."""
    if not headers:
        headers = ("Host: x", "Connection: upgrade", "Upgrade: rdv/1", "Rdv-Self-Addrs: ")
    lines = [f"{method} {target} {version}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def checked(data: bytes, how: str, prefix: str = "") -> RdvRequest:
    head, trailing = feed_head("request", split(data, how))
    assert trailing == b""
    return check_request(head, prefix)


def rejected(data: bytes, how: str, prefix: str = "") -> tuple[RequestRejected, Head]:
    head, _ = feed_head("request", split(data, how))
    with pytest.raises(RequestRejected) as info:
        check_request(head, prefix)
    return info.value, head


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


# ----- tokens in the path


@pytest.mark.parametrize("how", SPLITS)
@pytest.mark.parametrize(
    ("target", "token"),
    [
        ("/x%2Fy%20z", "x/y z"),
        ("/x/y%20z", "x/y z"),
        ("/a+b", "a+b"),
        ("/%E2%9C%93", "\u2713"),
        ("/\u00fcmlaut", "\u00fcmlaut"),
        ("/%C3%BCmlaut+plus;semi", "\u00fcmlaut+plus;semi"),
        ("/tok?q=%zz&x", "tok"),
        ("/a#b", "a#b"),
        ("//tok", "/tok"),
        ("/../x", "../x"),
        ("http://127.0.0.1:18080/abs-tok", "abs-tok"),
        ("https://h/abs%20tok?x", "abs tok"),
        ("http:/x", "x"),
        ("*", "*"),
    ],
)
def test_token_decoding(target: str, token: str, how: str) -> None:
    assert checked(request(target), how).token == token


@pytest.mark.parametrize(
    "target", ["/a%zz", "/a%", "/a%2", "/%%41", "tok", "a/b:c", ":x", "http://h/%g0"]
)
def test_unparsable_target_is_answered_like_go_net_http(target: str) -> None:
    """Go's ParseRequestURI fails: net/http answers 400 before any handler and closes."""
    data = request(target, "Connection: close")  # even without any upgrade header
    for how in SPLITS:
        error, head = rejected(data, how)
        assert (error.status, error.http_level, error.message) == (400, True, "400 Bad Request")
        reply = build_rejection(error, head)
        assert reply.close
        assert reply.data == (
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Connection: close\r\n\r\n400 Bad Request"
        )
        with pytest.raises(RequestRejected):
            check_http_request(head)
    # Routing code gets a best-effort path, never an exception.
    assert isinstance(request_path(target), str)


def test_token_that_is_not_utf8_is_rejected() -> None:
    """Deliberate deviation: Go keeps raw bytes; our tokens are text."""
    error, _ = rejected(request("/%ff"), "whole")
    assert (error.status, error.http_level) == (400, False)
    assert error.message.startswith("invalid rdv token")


# ----- mounting under a prefix


@pytest.mark.parametrize("prefix", ["/rdv", "/rdv/"])
@pytest.mark.parametrize(
    ("target", "token"),
    [
        ("/rdv/tok", "tok"),
        ("/rdv//tok", "tok"),
        ("/rdv/a%2Fb", "a/b"),
        ("/rdv/a/b", "a/b"),
        ("http://h/rdv/tok?x=y", "tok"),
    ],
)
def test_prefix_mounting(prefix: str, target: str, token: str) -> None:
    for how in SPLITS:
        assert checked(request(target), how, prefix).token == token
    assert token_from_target(target, prefix) == token


@pytest.mark.parametrize("target", ["/other/tok", "/rdv", "/rdvtok", "/rdv%2Ftok", "/RDV/tok"])
def test_outside_the_prefix_is_404(target: str) -> None:
    # As http.StripPrefix: before any rdv check (no upgrade headers here).
    error, head = rejected(request(target, "Host: x"), "whole", "/rdv")
    assert (error.status, error.message) == (404, "404 page not found")
    reply = build_rejection(error, head)
    assert reply.data.endswith(b"\r\n\r\n404 page not found\n")
    assert b"HTTP/1.1 404 Not Found\r\n" in reply.data


def test_empty_token_under_prefix() -> None:
    assert rejected(request("/rdv/"), "whole", "/rdv")[0].message == "missing rdv token"


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


# ----- building requests (section 2)


@pytest.mark.parametrize(("method", "token", "data", "addrs"), SESSION_REQUESTS)
def test_build_request_equals_reference_bytes(
    method: str, token: str, data: bytes, addrs: tuple[str, ...]
) -> None:
    url = parse_server_url("http://127.0.0.1:18080")
    built = build_request(method, url, token, [Addr.parse(a) for a in addrs], user_agent=GO_UA)
    assert built == data
    for how in SPLITS:  # and our server reads the reference client's request
        req = checked(data, how)
        assert (req.method, req.token, req.self_addrs) == (
            method,
            token,
            tuple(Addr.parse(a) for a in addrs),
        )


@pytest.mark.parametrize("vector", UNUSUAL_TOKENS, ids=lambda v: v.token)
def test_unusual_tokens(vector) -> None:  # type: ignore[no-untyped-def]
    url = parse_server_url("http://127.0.0.1:18090")
    addrs = [Addr.parse(a) for a in vector.self_addrs]
    built = build_request("DIAL", url, vector.token, addrs, user_agent=GO_UA)
    # Our request differs from the reference only in the path: the token is ONE segment.
    ref_target = vector.request.split(b" ", 2)[1]
    ours = ("/" + escape_token(vector.token)).encode()
    assert built == vector.request.replace(b" " + ref_target + b" ", b" " + ours + b" ", 1)
    # ... which our server decodes back to the token, whatever it holds.
    req = checked(built, "bytewise")
    assert (req.token, req.self_addrs) == (vector.token, tuple(addrs))
    # The reference's path decodes to what the reference server saw.
    assert checked(vector.request, "whole").token == vector.server_token
    # Header lines are the reference's, byte for byte.
    assert build_header_line("DIAL", vector.token) == vector.header_line


def test_escape_token_is_go_path_escape() -> None:
    assert escape_token("a b/c%2Fd?e#f") == "a%20b%2Fc%252Fd%3Fe%23f"
    # Go's url.PathEscape keeps $&+=:@ besides the unreserved set; it escapes ;,/? and the rest.
    assert escape_token("AZaz09-._~$&+=:@") == "AZaz09-._~$&+=:@"
    assert escape_token(";,/?#[]!'()* \"<>\\^`{|}%") == (
        "%3B%2C%2F%3F%23%5B%5D%21%27%28%29%2A%20%22%3C%3E%5C%5E%60%7B%7C%7D%25"
    )
    assert escape_token("\u00fc\u2713") == "%C3%BC%E2%9C%93"


def test_build_request_sorts_application_headers_like_go() -> None:
    url = parse_server_url("https://example.com/rdv/")
    built = build_request(
        "ACCEPT",
        url,
        "t",
        [Addr.parse("1.2.3.4:5")],
        headers=[("x-api-key", "k"), ("Authorization", "Bearer abc"), ("Rdv-Extra", " v ")],
        user_agent=GO_UA,
    )
    assert built == (
        b"ACCEPT /rdv/t HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Go-http-client/1.1\r\n"
        b"Authorization: Bearer abc\r\nConnection: upgrade\r\nRdv-Extra: v\r\n"
        b"Rdv-Self-Addrs: 1.2.3.4:5\r\nUpgrade: rdv/1\r\nX-Api-Key: k\r\n\r\n"
    )


def test_build_request_user_agent_header_replaces_default() -> None:
    url = parse_server_url("http://h:8080")
    built = build_request("DIAL", url, "t", [], headers=[("user-agent", "mine/2")])
    assert b"\r\nUser-Agent: mine/2\r\n" in built
    assert built.count(b"User-Agent") == 1
    assert built.startswith(b"DIAL /t HTTP/1.1\r\nHost: h:8080\r\n")


@pytest.mark.parametrize(
    ("url", "start"),
    [
        ("http://127.0.0.1:18080", b"DIAL /t HTTP/1.1\r\nHost: 127.0.0.1:18080\r\n"),
        ("http://h/", b"DIAL /t HTTP/1.1\r\nHost: h\r\n"),
        ("https://h:443/a/b", b"DIAL /a/b/t HTTP/1.1\r\nHost: h\r\n"),
        ("https://h:8443/a%20b", b"DIAL /a%20b/t HTTP/1.1\r\nHost: h:8443\r\n"),
        ("http://h/my rdv", b"DIAL /my%20rdv/t HTTP/1.1\r\nHost: h\r\n"),
        ("http://[::1]:8080/rdv", b"DIAL /rdv/t HTTP/1.1\r\nHost: [::1]:8080\r\n"),
    ],
)
def test_build_request_url_forms(url: str, start: bytes) -> None:
    built = build_request("DIAL", parse_server_url(url), "t", [])
    assert built.startswith(start)
    head, _ = feed_head("request", [built])
    prefix = parse_server_url(url).path_prefix
    assert check_request(head, prefix.replace(" ", "%20")).token == "t"


def test_server_url_properties() -> None:
    url = parse_server_url("https://Example.com:8443/rdv/")
    assert (url.scheme, url.host, url.port, url.path_prefix, url.tls) == (
        "https",
        "example.com",
        8443,
        "/rdv",
        True,
    )
    assert str(url) == "https://example.com:8443/rdv"
    assert parse_server_url("http://h").port == 80


@pytest.mark.parametrize(
    "url", ["ftp://h", "h:80", "http://", "http://h:99999", "http://h:x", "rdv://h"]
)
def test_parse_server_url_errors(url: str) -> None:
    with pytest.raises(ValueError):
        parse_server_url(url)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "GET"}, "method"),
        ({"token": ""}, "token"),
        ({"addrs": [Addr.parse("1.2.3.4:5")] * 10}, "self addrs"),
        ({"headers": [("Bad Name", "v")]}, "header name"),
        ({"headers": [("Host", "v")]}, "header name"),
        ({"headers": [("connection", "close")]}, "header name"),
        ({"headers": [("Content-Length", "1")]}, "header name"),
        ({"headers": [("X\n", "v")]}, "header name"),
        ({"headers": [("\u00fc", "v")]}, "header name"),
        ({"headers": [("X", "a\r\nInjected: 1")]}, "header value"),
        ({"user_agent": "a\nb"}, "User-Agent"),
    ],
)
def test_build_request_errors(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {
        "method": "DIAL",
        "token": "t",
        "addrs": [],
        "headers": (),
        "user_agent": GO_UA,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        build_request(
            args["method"],  # type: ignore[arg-type]
            parse_server_url("http://h"),
            args["token"],  # type: ignore[arg-type]
            args["addrs"],  # type: ignore[arg-type]
            args["headers"],  # type: ignore[arg-type]
            args["user_agent"],  # type: ignore[arg-type]
        )


def test_canonical_header_name() -> None:
    assert canonical_header_name("rdv-self-addrs") == "Rdv-Self-Addrs"
    assert canonical_header_name("X-API-KEY") == "X-Api-Key"
    assert canonical_header_name("bad name") == "bad name"


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
