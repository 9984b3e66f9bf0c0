"""Text from the network made safe to show on a terminal or in the app.

Everything a peer or a server controls (status reasons, error bodies, echoed headers,
chat, file names, close reasons) may carry terminal escape sequences (``ESC[2J`` clears
the screen, OSC sets the window title or writes the clipboard), lone carriage returns
and newlines that forge lines, or Unicode bidi overrides (U+202E shows ``gpj.exe`` as
``exe.jpg``). :func:`printable` replaces each such character by a visible escape
(``\\x1b``, ``\\u202e``) so that what is shown is what was sent, and nothing more.
:func:`unsafe_char` finds the first one, for checks that refuse rather than escape
(offered file names, docs/PROTOCOL.md section 12.8).
"""

from __future__ import annotations

import re
from typing import Final

#: C0 controls, DEL, C1 controls (``\x9b`` is a one-byte CSI on some terminals), the
#: bidi embeddings, overrides and isolates, the bidi marks, the Unicode line and
#: paragraph separators and the byte-order mark.
UNSAFE_CHARS: Final = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]"
)
_UNSAFE_BUT_NEWLINE: Final = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]"
)


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control or bidi character replaced by a visible escape.

    Args:
        text: Anything that came from the network.
        keep_newlines: Keep ``\\n`` (multi-line chat in the app); every other control,
            ``\\r`` and ``\\t`` included, is still escaped.
    """
    pattern = _UNSAFE_BUT_NEWLINE if keep_newlines else UNSAFE_CHARS
    return pattern.sub(_visible, text)


def unsafe_char(text: str) -> str | None:
    """The first control or bidi character of ``text``, or None if it has none."""
    match = UNSAFE_CHARS.search(text)
    return match.group() if match else None
