"""Shared helpers for the rdv/1 request tests: request heads, fed and checked.

:func:`checked` and :func:`rejected` feed a head to the parser split as ``how`` says
(tests/feeding.py), then run the server's checks of docs/PROTOCOL.md section 3 on it.
"""

from __future__ import annotations

import pytest

from rdv_core.wire import Head, RdvRequest, RequestRejected, check_request

from tests.feeding import feed_head, split

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
