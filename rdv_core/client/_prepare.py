"""What an attempt settles before it reaches the server: its listeners, URL and proxy
(and what a client is given, checked when it is built).

Kept apart from client/_attempt.py, which runs the attempt. The URL and the proxy choice
are memoized by their inputs: a program that connects again and again (a service
accepting one peer after another, bench/connect.py) asks the same questions each time,
and their parsing was about a tenth of a loopback attempt's preparation.
"""

from __future__ import annotations

import functools
import inspect
import os
import socket
from collections.abc import Callable
from typing import Final

from rdv_core.client._sockets import LISTEN_BACKLOG, bound_socket, bound_socket_dual, local_port
from rdv_core.wire import ProxyURL, ServerURL, choose_proxy, parse_server_url


def open_listeners(port: int = 0) -> list[socket.socket]:
    """Listening sockets on one port for IPv4 and IPv6 inbound candidates.

    A dual-stack IPv6 socket covers both families; where the system forces
    IPv6-only (or has no IPv6), an IPv4 listener is added on the same port.
    """
    return listen_on(port)[0]


def listen_on(port: int = 0) -> tuple[list[socket.socket], int]:
    """:func:`open_listeners`, and the port they listen on (``port``, or the one the
    system chose for 0), read from the kernel once: the attempt needs it at once, and
    each ``getsockname`` is a system call (issue 10)."""
    listeners: list[socket.socket] = []
    try:
        try:
            six, dual = bound_socket_dual(socket.AF_INET6, port)
        except OSError:
            six, dual = None, False
        if six is not None:
            listeners.append(six)
            port = port or local_port(six)
            if not dual and six.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY):
                listeners.append(bound_socket(socket.AF_INET, port))
        else:
            four = bound_socket(socket.AF_INET, port)
            listeners.append(four)
            port = port or local_port(four)
        for sock in listeners:
            sock.listen(LISTEN_BACKLOG)
    except OSError:
        for sock in listeners:
            sock.close()
        raise
    return listeners, port


#: Server URLs parsed (immutable answers; errors raise each time).
server_url = functools.lru_cache(maxsize=64)(parse_server_url)

#: The environment variables :func:`~rdv_core.wire.choose_proxy` reads (both cases, and
#: ``REQUEST_METHOD`` for its CGI rule; docs/PROTOCOL.md section 17.1).
_PROXY_VARS: Final = (
    *(
        f(base)
        for base in ("NO_PROXY", "HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY")
        for f in (str.lower, str)
    ),
    "REQUEST_METHOD",
)

#: ``choose_proxy``'s answers by their inputs (its parsing was ~10 % of a loopback attempt's
#: preparation, the same every time). Errors are not kept: they raise each time.
_PROXIES: dict[object, ProxyURL | None] = {}
_MISS: Final = object()


def _proxy_env() -> tuple[tuple[str, str], ...]:
    """The proxy variables that are set now: the environment is read on every attempt.

    ``os.environ.get`` of an unset name raises and catches two ``KeyError`` inside
    ``os`` (about 1.3 us each here, 9 names, twice per loopback attempt: 2 % of its
    instructions, docs/notes/issue-10-connect-fifth.md). CPython's mapping keeps the
    live environment in ``_data`` under ``encodekey``'s keys: asking that dict whether a
    name is set raises nothing; the value is still read through ``os.environ``.
    """
    env = os.environ
    data, encode = getattr(env, "_data", None), getattr(env, "encodekey", None)
    if not isinstance(data, dict) or encode is None:  # not CPython's os._Environ
        get = env.get
        return tuple((name, value) for name in _PROXY_VARS if (value := get(name)) is not None)
    # The names' keys once (encoding nine names was half of this function's bytecodes).
    keys = _proxy_keys(encode)
    return tuple((name, env[name]) for name, key in keys if key in data)


@functools.lru_cache(maxsize=4)
def _proxy_keys(encode: Callable[[str], object]) -> tuple[tuple[str, object], ...]:
    """Each proxy variable with its key in ``os.environ._data`` (``encode``: its
    ``encodekey``)."""
    return tuple((name, encode(name)) for name in _PROXY_VARS)


def choose_proxy_memo(given: str | None, server: ServerURL, trust_env: bool) -> ProxyURL | None:
    """:func:`~rdv_core.wire.choose_proxy` with the environment read now, memoized.

    Raises:
        ValueError: the proxy URL (given or from the environment) is not valid.
    """
    env = _proxy_env() if trust_env else None
    key = (given, server, env)
    hit = _PROXIES.get(key, _MISS)
    if hit is not _MISS:
        return hit  # type: ignore[return-value]
    proxy = choose_proxy(given, server, dict(env) if env is not None else None)
    if len(_PROXIES) >= 64:  # many servers or proxies in one program: keep it small
        _PROXIES.clear()
    _PROXIES[key] = proxy
    return proxy


def check_sync_callable(name: str, value: object) -> None:
    """A plain function or None, now: an ``async def`` would never run (its coroutines are
    dropped, "never awaited"), and a non-callable would fail at every event, only logged.

    Raises:
        TypeError: ``value`` is not callable, or is a coroutine function.
    """
    if value is None:
        return
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {type(value).__name__}")
    # An object whose ``__call__`` is ``async def`` (a class-based observer) counts too.
    if inspect.iscoroutinefunction(value) or inspect.iscoroutinefunction(type(value).__call__):
        raise TypeError(
            f"{name} is called synchronously and must not be an async function: {value!r}"
        )
