"""Reading the server's answer to DIAL/ACCEPT: its head, and an error's body (section 4, 5).

docs/PROTOCOL.md sections 4 and 5: the head is read line by line so that the bytes after it
(the relayed stream) stay in the reader; an error body is read up to a bound, with a time
limit, chunked or not.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

from rdv_core.errors import MAX_BODY, RdvProtocolError, ServerConnectError
from rdv_core.wire import (
    MAX_HEADER_BLOCK,
    MAX_HEADERS,
    BodyCollector,
    Head,
    HeadParser,
    ProtocolError,
)

#: How long we wait for the rest of an error body once the status line arrived. The
#: server sends it in the same breath; a server that keeps the conn open without a
#: Content-Length should not hold the user's error message hostage.
ERROR_BODY_TIMEOUT: Final = 1.0


async def read_response_head(reader: asyncio.StreamReader, stage: str) -> Head:
    """The response head, line by line, so that bytes after it stay in ``reader``.

    ``stage`` says what the attempt was doing, for the error when the conn is lost.
    """
    parser = HeadParser("response")
    size = 0
    for _ in range(MAX_HEADERS + 2):
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            raise RdvProtocolError(
                "the server closed the connection before answering"
                if size == 0 and not exc.partial
                else "the server closed the connection inside its response"
            ) from None
        except asyncio.LimitOverrunError:
            raise RdvProtocolError("response header line too long") from None
        except OSError as exc:
            raise ServerConnectError(
                f"lost the connection to the rdv server while {stage}: {exc}", exc.errno
            ) from exc
        size += len(line)
        if size > MAX_HEADER_BLOCK:
            raise RdvProtocolError("response header block too large")
        try:
            head = parser.feed(line)
        except ProtocolError as exc:
            raise RdvProtocolError(f"bad response from the server: {exc.message}") from exc
        if head is not None:
            return head
    raise RdvProtocolError("too many response header lines")


async def read_error_body(reader: asyncio.StreamReader, head: Head) -> str:
    """Up to :data:`~rdv_core.errors.MAX_BODY` bytes of an error response's body.

    A chunked body (an HTTP/1.1 proxy such as nginx frames rdv's close-delimited errors
    that way) is decoded; a bad Content-Length is read as no length (up to the bound).
    """
    try:
        collector = BodyCollector(head, MAX_BODY)
    except ProtocolError:
        collector = BodyCollector(Head(head.start_line, head.version, []), MAX_BODY)
    with contextlib.suppress(TimeoutError, OSError):
        async with asyncio.timeout(ERROR_BODY_TIMEOUT):
            while not collector.done:
                chunk = await reader.read(4096)
                if not chunk:
                    break
                collector.feed(chunk)
    return collector.text
