"""The names rdv/1 puts on the wire: the protocol, the two methods, and tokens.

Shared by the handshake (:mod:`rdv_core.wire._handshake`, sections 2 and 3) and the line layer
after the upgrade (:mod:`rdv_core.wire._lines`, section 6). A token travels percent-encoded as
ONE URL path segment in both places; the decoded token must be UTF-8 (Go keeps raw bytes,
a deliberate deviation on input the reference never sends).
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Final, Literal

from rdv_core.wire._http1.checks import has_bad_escape
from rdv_core.wire._http1.head import ProtocolError

DIAL: Final = "DIAL"
ACCEPT: Final = "ACCEPT"
METHODS: Final = (DIAL, ACCEPT)
UPGRADE_PROTOCOL: Final = "rdv/1"

Method = Literal["DIAL", "ACCEPT"]


def opposite(method: str) -> Method:
    """``ACCEPT`` for ``DIAL`` and vice versa."""
    if method == DIAL:
        return ACCEPT
    if method == ACCEPT:
        return DIAL
    raise ValueError(f"not an rdv method: {method!r}")


#: Go's url.PathEscape keeps these besides the unreserved characters.
PATH_SEGMENT_SAFE: Final = "$&+=:@"


#: What ``escape_token`` leaves as it is: unreserved characters and ``PATH_SEGMENT_SAFE``.
_SAFE_SEGMENT: Final = re.compile(r"[A-Za-z0-9_.~$&+=:@-]*")


def escape_token(token: str) -> str:
    """Percent-encode a token as one URL path segment (``a b/c`` -> ``a%20b%2Fc``)."""
    # Most tokens need no escape: one regex match instead of quote()'s encode, strip and
    # lookups, six times per attempt (docs/notes/issue-10-connect-fifth.md).
    if _SAFE_SEGMENT.fullmatch(token):
        return token
    return urllib.parse.quote(token, safe=PATH_SEGMENT_SAFE)


def unescape_token(text: str) -> str:
    """Decode a percent-encoded token.

    Raises:
        ProtocolError: for a bad escape or bytes that are not UTF-8.
    """
    if "%" not in text and text.isascii():
        return text  # nothing to decode (what unquote_to_bytes would give back)
    if has_bad_escape(text):
        raise ProtocolError(f"invalid escape in token {text!r}")
    try:
        return urllib.parse.unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError("token is not UTF-8") from exc
