"""The native front's own answers (``/healthz``, ``/metrics``, section 3 refusals).

Plain responses keep HTTP/1.1 conns alive, as the reference does; HTTP/1.0,
``Connection: close`` and requests carrying a body are answered and closed.
"""

from __future__ import annotations

import asyncio

from rdv_core import wire
from rdv_core.wire import Head, ProtocolError

__all__ = ["respond"]


def respond(
    transport: asyncio.Transport,
    head: Head,
    status: int,
    body: str,
    content_type: str = "text/plain; charset=utf-8",
) -> bool:
    """Answer ``head`` on ``transport``; True if the conn stays open for the next request."""
    try:
        has_body = bool(head.content_length) or head.has("Transfer-Encoding")
    except ProtocolError:
        has_body = True
    keep_alive = (
        head.version == "HTTP/1.1"
        and (head.get("Connection") or "").strip().lower() != "close"
        and not has_body
    )
    response = wire.build_plain_response(
        status,
        body,
        version="HTTP/1.0" if head.version == "HTTP/1.0" else "HTTP/1.1",
        content_type=content_type,
        add_newline=False,
    )
    if head.method == "HEAD":
        response = response[: response.index(b"\r\n\r\n") + 4]
    transport.write(response)
    if not keep_alive:
        transport.close()
    return keep_alive
