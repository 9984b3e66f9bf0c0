"""What Go's net/http checks on a request before any handler runs, and request targets.

A request that fails here never reaches the reference's rdv handler: Go answers it with
its bare pre-handler error and closes the conn (:class:`RequestRejected` with
``http_level=True``). See :mod:`rdv_core.wire._http1` for the design.
"""

from __future__ import annotations

import re
from typing import Final

from rdv_core.wire._http1.head import Head, RequestRejected, http_version

_SCHEME_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_BAD_ESCAPE_RE: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")


def has_bad_escape(text: str) -> bool:
    """True if a ``%`` in ``text`` is not followed by two hex digits."""
    return _BAD_ESCAPE_RE.search(text) is not None


def _bad_target() -> RequestRejected:
    # Go's url.ParseRequestURI failed: net/http answers before any handler runs.
    return RequestRejected("400 Bad Request", 400, http_level=True)


def request_path(target: str) -> str:
    """The raw (still escaped) path of a request target, as Go's ``ParseRequestURI`` sees it.

    Origin form (``/tok?q``) gives ``/tok``; absolute form (``http://host/tok``) gives
    ``/tok``; an opaque or authority-only absolute URL gives ``""``; ``*`` gives ``*``.
    The query is cut off; like Go for a request, a ``#`` stays in the path. Never raises:
    a target Go cannot parse comes back without its query (routing then finds nothing,
    and :func:`check_http_request` rejects it).
    """
    try:
        return strict_request_path(target)
    except RequestRejected:
        return target.split("?", 1)[0]


def strict_request_path(target: str) -> str:
    """:func:`request_path`, strict.

    Raises:
        RequestRejected: http-level ``400 Bad Request`` for a target Go cannot parse
            (neither origin nor absolute form, or a bad percent escape in the path).
    """
    if target == "*":
        return target
    absolute = not target.startswith("/")
    rest = target
    if absolute:
        scheme = _SCHEME_RE.match(target)
        if scheme is None:
            raise _bad_target()
        rest = target[scheme.end() :]
    rest = rest.split("?", 1)[0]
    if absolute and not rest.startswith("/"):
        return ""  # opaque URL (``http:tok``): no path at all
    if absolute and rest.startswith("//"):
        # Skip the authority: Go ignores it for routing (the Host header names the host).
        slash = rest.find("/", 2)
        rest = "" if slash < 0 else rest[slash:]
    if has_bad_escape(rest):
        raise _bad_target()
    return rest


#: Go's ``httpguts.ValidHostHeader`` byte set.
_HOST_CHARS: Final = frozenset(
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!$%&()*+,-.:;=[]'_~"
)


def check_http_request(head: Head) -> None:
    """The checks Go's net/http makes before any handler runs, in its order.

    A server calls this first, then answers ``503 rdv is closed`` when it is shut down,
    then calls :func:`rdv_core.wire._handshake.check_request` (which calls this again; it is cheap).

    Raises:
        RequestRejected: with ``http_level=True`` (render with
            :func:`~rdv_core.wire._http1.responses.build_rejection`).
    """
    strict_request_path(head.target)
    major, minor = http_version(head)
    if major != 1:
        raise RequestRejected(
            "505 HTTP Version Not Supported: unsupported protocol version", 505, http_level=True
        )
    hosts = [value for name, value in head.headers if name.lower() == "host"]
    if minor >= 1 and not hosts and head.method != "CONNECT":
        raise RequestRejected("400 Bad Request: missing required Host header", 400, http_level=True)
    if len(hosts) > 1:
        raise RequestRejected("400 Bad Request: too many Host headers", 400, http_level=True)
    if hosts and not set(hosts[0]) <= _HOST_CHARS:
        raise RequestRejected("400 Bad Request: malformed Host header", 400, http_level=True)
