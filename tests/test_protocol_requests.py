"""rdv/1 requests as the client builds them, read back by docs/PROTOCOL.md section 3's checks.

Building follows docs/PROTOCOL.md section 2: the bytes equal the reference client's, and the
server URL forms, application headers and errors are Go's.
"""

from __future__ import annotations

import pytest

from rdv_core.wire import (
    Addr,
    build_request,
    canonical_header_name,
    check_request,
    parse_server_url,
)

from tests.feeding import SPLITS, feed_head
from tests.go_vectors import SESSION_REQUESTS
from tests.request_support import GO_UA, checked

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


@pytest.mark.parametrize("url", ["", "   "])
def test_an_empty_server_url_says_none_was_given(url: str) -> None:
    # The app's empty server field said "must be http:// or https://, got ''".
    with pytest.raises(ValueError, match="no rdv server URL given"):
        parse_server_url(url)
