"""Extension offers: which rdv extensions a peer speaks (docs/PROTOCOL.md section 16.1).

rdv/1 has no negotiation. An rdv client that speaks an extension says so in its request
(``Rdv-Extensions: fast-start/1``); an rdv server passes the *other* peer's offer on in
the ``101`` (``Rdv-Peer-Extensions: fast-start/1``). A server that does not know the
header (the Go reference) passes nothing, and the peers then speak plain rdv/1. The
offer only says what the peer may do: each extension confirms itself end to end.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Final

#: Request header: the extensions this client offers.
EXTENSIONS_HEADER: Final = "Rdv-Extensions"
#: ``101`` header: the extensions the other peer offered (written by rdv servers only).
PEER_EXTENSIONS_HEADER: Final = "Rdv-Peer-Extensions"
#: The fast-start extension (docs/PROTOCOL.md section 16).
FAST_START: Final = "fast-start/1"

#: Bounds on an offer: a server copies at most this much from one peer to the other.
MAX_EXTENSIONS: Final = 8
MAX_EXTENSIONS_VALUE: Final = 256
_NAME = re.compile(r"[a-z0-9][a-z0-9._/-]{0,31}")


def parse_extensions(value: str | None) -> tuple[str, ...]:
    """The well-formed extension names of a header value, in order, without repeats.

    Tolerant on purpose: an unknown or malformed name is dropped, not refused, since
    the header is advisory and a rdv/1 peer never sends it. A value over
    :data:`MAX_EXTENSIONS_VALUE` characters is ignored whole.
    """
    if not value or len(value) > MAX_EXTENSIONS_VALUE:
        return ()
    names: list[str] = []
    for item in value.split(","):
        name = item.strip(" \t").lower()
        if _NAME.fullmatch(name) and name not in names:
            names.append(name)
    return tuple(names[:MAX_EXTENSIONS])


def format_extensions(names: Iterable[str]) -> str:
    """A header value for ``names`` (``fast-start/1, x/2``).

    Raises:
        ValueError: for a name that :func:`parse_extensions` would drop, or too many.
    """
    out = list(names)
    for name in out:
        if not _NAME.fullmatch(name):
            raise ValueError(f"invalid extension name {name!r}")
    if len(out) > MAX_EXTENSIONS:
        raise ValueError(f"at most {MAX_EXTENSIONS} extensions, got {len(out)}")
    return ", ".join(out)


def offered_extensions(headers: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    """The offer in a request's headers (the first ``Rdv-Extensions`` header counts)."""
    for name, value in headers:
        if name.lower() == EXTENSIONS_HEADER.lower():
            return parse_extensions(value)
    return ()
