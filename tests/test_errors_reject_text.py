"""A server's refusal that repeats its status line as the body is said once.

Go's ``net/http`` answers a request it refuses before any handler with the status line's
text as the body too (``HTTP/1.1 400 Bad Request: missing required Host header``, the same
words after the blank line; rdv's server does the same: docs/PROTOCOL.md section 3). The
client printed ``server rejected: 400 Bad Request: missing required Host header: 400 Bad
Request: missing required Host header``.
"""

from __future__ import annotations

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
