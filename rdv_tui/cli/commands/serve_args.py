"""``rdv serve``'s argument types and defaults: what each flag accepts, and why.

Standard library only (``rdv serve`` never imports textual or rich).
"""

from __future__ import annotations

import argparse
import math
import re

__all__ = [
    "CAP_FLAGS",
    "DEFAULT_LOBBY_TIMEOUT_S",
    "cap",
    "non_negative_float",
    "port",
    "positive_float",
    "prefix",
]


#: What a ``--prefix`` may hold: what rdv's client sends as it is in a request path
#: (``wire.ServerURL.request_path``) and ``%XX`` escapes. The prefix is compared with the
#: request's path as sent, so a raw space, ``!`` or ``?`` in it could never match: the
#: client escapes them (and ``?`` starts the query), and every request would get ``404``.
_PREFIX = re.compile(r"(?:[A-Za-z0-9\-._~/$&+=:@;,]|%[0-9A-Fa-f]{2})*")


def prefix(text: str) -> str:
    if not _PREFIX.fullmatch(text.strip()):
        raise argparse.ArgumentTypeError(
            f"{text!r} cannot match a request path: use letters, digits, -._~/$&+=:@;, "
            "and %XX escapes (%20 for a space)"
        )
    return text


def port(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 0 < int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a port (1-65535): {text!r}")
    return int(text)


#: A human passes a code or a token on in minutes; a squatter's request expires.
DEFAULT_LOBBY_TIMEOUT_S = 600.0
#: The lobby caps (rdv_core.server.LobbyLimits): flag, default, help.
CAP_FLAGS = (
    (
        "--max-lobby",
        10_000,
        "at most N (and 3/4 of the open-file limit) wait in the lobby, "
        "shared fairly among networks",
    ),
    ("--max-lobby-per-address", 100, "answer 429 beyond N waiting from one IPv4 address/IPv6 /64"),
    ("--max-lobby-per-network", 400, "answer 429 beyond N waiting from one IPv4 /24 or IPv6 /56"),
    (
        "--max-pairs-per-address",
        100,
        "answer 429 to requests from an IPv4 address/IPv6 /64 with a peer in N open pairs",
    ),
    (
        "--max-pairs-per-network",
        400,
        "answer 429 to requests from an IPv4 /24 or IPv6 /56 with a peer in N open pairs",
    ),
    (
        "--max-heads-per-address",
        64,
        "answer 429 to a conn from an IPv4 address/IPv6 /64 that has N conns whose request "
        "is not whole yet (slowloris)",
    ),
    (
        "--max-heads-per-network",
        256,
        "the same for an IPv4 /24 or IPv6 /56",
    ),
)


def cap(text: str) -> int | None:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a count: {text!r}")
    return int(text) or None


def non_negative_float(text: str) -> float | None:
    """A number of seconds: positive, or None for any spelling of zero (``0``, ``0.0``)."""
    try:
        value = float(text)
    except ValueError:
        return positive_float(text)  # says what is wrong
    if value == 0:
        return None
    if not 0 < value < math.inf:  # "must be positive" for a flag that takes 0 misled
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds (and finite): {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
    if not 0 < value < math.inf:  # inf: 0 is the way to say "never"
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value
