"""The proxy environment and the CONNECT request, sans-IO (docs/PROTOCOL.md section 17.1)."""

from __future__ import annotations

import pytest

from rdv_core.wire import (
    ProtocolError,
    ProxyURL,
    ServerURL,
    build_connect_request,
    bypasses_proxy,
    check_connect_status,
    parse_proxy_url,
    parse_server_url,
    proxy_for,
)

HTTP = parse_server_url("http://rdv.example.com:8080")
HTTPS = parse_server_url("https://rdv.example.com")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://proxy:3128", ProxyURL("proxy", 3128)),
        ("proxy:3128", ProxyURL("proxy", 3128)),
        ("http://proxy", ProxyURL("proxy", 1080)),
        ("http://u:p%40ss@proxy:3128", ProxyURL("proxy", 3128, "u", "p@ss")),
        ("http://[::1]:3128", ProxyURL("::1", 3128)),
    ],
)
def test_parse_proxy_url(text: str, expected: ProxyURL) -> None:
    assert parse_proxy_url(text) == expected


def test_a_proxy_prints_without_its_password() -> None:
    proxy = parse_proxy_url("http://alice:s3cret@proxy:3128")
    assert str(proxy) == "http://alice:***@proxy:3128"
    assert "s3cret" not in repr(proxy)
    assert proxy.authorization == "Basic YWxpY2U6czNjcmV0"


@pytest.mark.parametrize(
    ("environ", "server", "expected"),
    [
        ({}, HTTP, None),
        ({"HTTP_PROXY": "p:1"}, HTTP, "p"),
        ({"HTTP_PROXY": "p:1"}, HTTPS, None),
        ({"HTTPS_PROXY": "s:1"}, HTTPS, "s"),
        ({"https_proxy": "lower:1", "HTTPS_PROXY": "upper:1"}, HTTPS, "lower"),
        ({"ALL_PROXY": "all:1"}, HTTPS, "all"),
        ({"HTTPS_PROXY": "s:1", "ALL_PROXY": "all:1"}, HTTPS, "s"),
        # httpoxy: under CGI a request header could have set HTTP_PROXY.
        ({"HTTP_PROXY": "evil:1", "REQUEST_METHOD": "GET"}, HTTP, None),
        ({"http_proxy": "p:1", "REQUEST_METHOD": "GET"}, HTTP, "p"),
        ({"HTTP_PROXY": "p:1", "NO_PROXY": "example.com"}, HTTP, None),
        ({"HTTP_PROXY": "p:1", "no_proxy": "*"}, HTTP, None),
        ({"HTTP_PROXY": "p:1", "NO_PROXY": "other.com"}, HTTP, "p"),
    ],
)
def test_proxy_for(environ: dict[str, str], server: ServerURL, expected: str | None) -> None:
    found = proxy_for(server, environ)
    assert (found.host if found else None) == expected


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "bypass"),
    [
        ("a.example.com", 80, "example.com", True),
        ("a.example.com", 80, ".example.com", True),
        ("example.com", 80, ".example.com", True),
        ("badexample.com", 80, "example.com", False),
        ("example.com.", 80, "EXAMPLE.com", True),
        ("10.1.2.3", 80, "10.0.0.0/8", True),
        ("11.1.2.3", 80, "10.0.0.0/8", False),
        ("::1", 80, "::1", True),
        ("[::1]", 80, "::1/128", True),
        ("example.com", 8080, "example.com:8080", True),
        ("example.com", 80, "example.com:8080", False),
        ("::1", 8080, "[::1]:8080", True),
        ("host", 80, " , host ", True),
        ("host", 80, "", False),
    ],
)
def test_bypasses_proxy(host: str, port: int, no_proxy: str, bypass: bool) -> None:
    assert bypasses_proxy(host, port, no_proxy) is bypass


def test_connect_request_carries_the_authority_and_the_credentials() -> None:
    request = build_connect_request(
        parse_server_url("https://[2001:db8::1]:8443/rdv"), parse_proxy_url("http://u:p@proxy")
    )
    assert request == (
        b"CONNECT [2001:db8::1]:8443 HTTP/1.1\r\nHost: [2001:db8::1]:8443\r\n"
        b"Proxy-Authorization: Basic dTpw\r\n\r\n"
    )
    assert b"Proxy-Authorization" not in build_connect_request(HTTP, parse_proxy_url("proxy"))


@pytest.mark.parametrize(
    ("status", "words"),
    [(407, "wants credentials"), (403, "does not allow CONNECT"), (502, "could not reach")],
)
def test_connect_refusals_explain_themselves(status: int, words: str) -> None:
    check_connect_status(200, "Connection established", parse_proxy_url("p"), HTTP)
    with pytest.raises(ProtocolError, match=words):
        check_connect_status(status, "No", parse_proxy_url("p"), HTTP)
