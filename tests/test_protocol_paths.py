"""rdv/1 tokens in the request path (docs/PROTOCOL.md section 3) and under a prefix.

The token is one path segment: decoded by the server's checks, escaped like Go's
url.PathEscape when a request is built, and found under the prefix a server is mounted on.
"""

from __future__ import annotations

import pytest

from rdv_core.wire import (
    Addr,
    RequestRejected,
    build_header_line,
    build_rejection,
    build_request,
    check_http_request,
    escape_token,
    parse_server_url,
    request_path,
    token_from_target,
)

from tests.feeding import SPLITS
from tests.go_vectors import UNUSUAL_TOKENS
from tests.request_support import GO_UA, checked, rejected, request

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


# ----- tokens in built requests (section 2)


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
