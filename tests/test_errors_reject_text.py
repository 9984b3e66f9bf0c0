"""A server's refusal that repeats its status line as the body is said once.

Go's ``net/http`` answers a request it refuses before any handler with the status line's
text as the body too (``HTTP/1.1 400 Bad Request: missing required Host header``, the same
words after the blank line; rdv's server does the same: docs/PROTOCOL.md section 3). The
client printed ``server rejected: 400 Bad Request: missing required Host header: 400 Bad
Request: missing required Host header``.
"""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading

from rdv_core.errors import ServerRejectedError
from rdv_core.wire import build_http_error


def test_a_body_that_repeats_the_status_line_is_said_once() -> None:
    head, body = build_http_error(400, "missing required Host header").split(b"\r\n\r\n")
    _version, status, reason = head.split(b"\r\n")[0].decode().split(" ", 2)
    error = ServerRejectedError(int(status), reason, body.decode())
    assert str(error) == "server rejected: 400 Bad Request: missing required Host header"


def test_a_body_with_its_own_words_is_kept() -> None:
    error = ServerRejectedError(408, "Request Timeout", "no matching peer found\n")
    assert str(error) == "server rejected: 408 Request Timeout: no matching peer found"


def test_an_html_error_page_is_said_in_its_words() -> None:
    page = (
        "<!DOCTYPE HTML>\n<html lang='en'>\n<head><title>Error response</title>"
        "<style>p { color: red }</style></head>\n<body><h1>502 Bad Gateway</h1>\n"
        "<p>The server returned an invalid &amp; incomplete response.</p></body></html>"
    )
    error = ServerRejectedError(502, "Bad Gateway", page)
    assert str(error) == (
        "server rejected: 502 Bad Gateway: 502 Bad Gateway The server returned an invalid & "
        "incomplete response. (an HTML page: a web server or a proxy answered, not rdv)"
    )
    assert error.body == page  # the page itself is kept for whoever wants it
    long = ServerRejectedError(404, "Not Found", "<html><body>" + "word " * 100 + "</body></html>")
    assert len(str(long)) < 260 and "word word…" in str(long)


def test_rdv_dial_to_a_plain_web_server_says_its_page_in_one_line() -> None:
    """``rdv dial`` to ``python -m http.server`` printed its whole HTML page."""
    with http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), http.server.BaseHTTPRequestHandler
    ) as web:
        threading.Thread(target=web.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{web.server_port}"
            done = subprocess.run(
                [sys.executable, "-m", "rdv_tui", "dial", url, "tok"],
                capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        finally:
            web.shutdown()
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "<" not in done.stderr and "Unsupported method ('DIAL')" in done.stderr, done.stderr
    assert done.stderr.rstrip().endswith(
        "(an HTML page: a web server or a proxy answered, not rdv)"
    )
