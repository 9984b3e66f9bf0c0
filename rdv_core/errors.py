"""The one error tree of rdv: :class:`RdvError` is the root of everything rdv raises.

Callers can catch :class:`RdvError` for everything, or the builtin they already handle:
every error also subclasses the builtin it means (the aiohttp ``client_exceptions``
style), so a connection failure is a :class:`ConnectionError` (also an :class:`OSError`),
the overall timeout a :class:`TimeoutError`, bad input a :class:`ValueError`.

This module is the root and the client's errors; each layer defines its own branch beside
its code, all importable from :mod:`rdv_core`::

    RdvError
    ├── ServerRejectedError, RdvProtocolError, ServerConnectError,
    │   NoConnectionError (ConnectionError)                     client: the attempt
    ├── RdvTimeoutError (TimeoutError)                          client: --timeout expired
    ├── ProtocolError ── RequestRejected, Misdial               wire: input breaks rdv/1
    ├── AddrError (ValueError)                                  wire: an address or space
    ├── UnconfirmedDataError (ConnectionResetError)             faststart: close unconfirmed
    ├── Reject                                                  server: a hook says no
    ├── SessionError ── CodeMismatch, ConnectionLost, ...       session
    ├── CodeError, UnsafeName (ValueError)                      session: a code, a name
    ├── ConfigError (ValueError)                                config: the settings file
    └── LabError (RuntimeError), LabSpecError (ValueError)      lab
"""

from __future__ import annotations

from typing import Any, Final

__all__ = [
    "MAX_BODY",
    "NoConnectionError",
    "RdvError",
    "RdvProtocolError",
    "RdvTimeoutError",
    "ServerConnectError",
    "ServerRejectedError",
]

#: How much of a server's error body we keep for the user (docs/PROTOCOL.md section 4).
MAX_BODY: Final = 1024


class RdvError(Exception):
    """The root of every error rdv raises.

    Every error of the tree pickles and copies whole (a worker process's error reaches
    its pool, ``multiprocessing`` and ``copy.copy`` keep its fields): Exception's own
    way calls the class with ``args``, the message alone, which broke every error whose
    ``__init__`` takes other arguments (``Reject(status, reason)``, ``TransferFailed``).
    """

    def __reduce__(self) -> tuple[Any, ...]:
        # OSError's fields are slots, not in __dict__ (ServerConnectError sets errno).
        slots = {
            name: value
            for name in _OS_SLOTS
            if isinstance(self, OSError) and (value := getattr(self, name)) is not None
        }
        return _rebuild, (type(self), self.args, self.__dict__, slots)


#: The OSError fields an error of the tree may carry; unset ones must stay unset (a None
#: ``filename`` set again would print as ``[Errno None] ... None``).
_OS_SLOTS: Final = ("errno", "strerror", "filename", "filename2")


def _rebuild(
    cls: type[RdvError], args: tuple[Any, ...], state: dict[str, Any], slots: dict[str, Any]
) -> RdvError:
    """An error as it was, without calling its ``__init__`` (whose arguments are not kept)."""
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    for name, value in slots.items():
        setattr(error, name, value)
    return error


class ServerRejectedError(RdvError, ConnectionError):
    """The server answered with an error status instead of ``101 Switching Protocols``.

    Attributes:
        status: The HTTP status code (``409``, ``408``, ``503``, ...).
        reason: The reason phrase of the status line.
        body: Up to the first KiB of the body, decoded leniently (the server's message).
        hint: What the client concluded from the answer, e.g. that a proxy on the way
            answered instead of the server (docs/PROTOCOL.md section 17.1), or None.
        retry_after: The answer's ``Retry-After`` in seconds, or None (absent, or a date).
    """

    def __init__(
        self,
        status: int,
        reason: str,
        body: str,
        hint: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.retry_after = retry_after
        self.reason = reason
        self.body = body[:MAX_BODY]
        self.hint = hint
        detail = _page_text(self.body.strip())
        line = f"{status} {reason}".rstrip()
        text = f"server rejected: {line}"
        # Go's pre-handler errors (and rdv's, docs/PROTOCOL.md section 3) repeat the status
        # line as the body: said once.
        text = f"{text}: {detail}" if detail and detail != line else text
        super().__init__(f"{text}; {hint}" if hint else text)


#: How much of an HTML error page's text an error message keeps.
PAGE_TEXT: Final = 160


def _page_text(body: str) -> str:
    """An HTML error page (a web server or a balancer that is not rdv) as its words.

    ``rdv dial`` to a plain web server printed its whole page, ``<!DOCTYPE HTML> <html
    lang="en"> <head> <meta charset="utf-8"> ...``: the text of the page, less its head,
    at most :data:`PAGE_TEXT` characters. Any other body is kept as it is.
    """
    if not body.startswith("<") or "<html" not in body[:512].lower():
        return body
    import html
    import re

    text = re.sub(r"(?is)<head\b.*?</head>|<(script|style)\b.*?</\1>", " ", body)
    text = " ".join(html.unescape(re.sub(r"<[^>]*>", " ", text)).split())
    text = text if len(text) <= PAGE_TEXT else text[: PAGE_TEXT - 1] + "…"
    return (
        f"{text} (an HTML page: a web server or a proxy answered, not rdv)"
        if text
        else "an HTML page"
    )


class RdvProtocolError(RdvError, ConnectionError):
    """The server or the peer broke the rdv/1 protocol (bad response, bad line, ...)."""


class ServerConnectError(RdvError, ConnectionError):
    """The rdv server could not be reached (DNS, TCP or TLS failed).

    Attributes:
        errno: The OS error number when there was one.
    """

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class NoConnectionError(RdvError, ConnectionError):
    """The race ended without a usable connection (no direct conn, no relay).

    Attributes:
        causes: One short line per candidate that failed, for the user.
    """

    def __init__(self, message: str, causes: tuple[str, ...] = ()) -> None:
        self.causes = causes
        full = message if not causes else f"{message} ({'; '.join(causes)})"
        super().__init__(full)


class RdvTimeoutError(RdvError, TimeoutError):
    """The client's overall timeout expired.

    Attributes:
        stage: What the attempt was doing (``connecting to the server``,
            ``waiting for the peer``, ``racing for a connection``).
    """

    def __init__(self, message: str, stage: str = "") -> None:
        super().__init__(message)
        self.stage = stage
