"""Names that look the same on screen but are different names (NFC and NFD forms).

``café.txt`` can be spelt with one character for ``é`` (NFC, what most systems type)
or with ``e`` and a combining accent (NFD, what macOS file systems hand out). Both
are valid, different names: an offer of both arrives as two files, and the offer bar
and the rows showed two identical names. Where two names of one view share a
normalized form, each is shown with its combining marks as ``\\u`` escapes
(``cafe\\u0301.txt``), so that the two can be told apart.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable


def folded(name: str) -> str:
    """The form two look-alike names share (NFC); ASCII names as they are (cheap)."""
    return name if name.isascii() else unicodedata.normalize("NFC", name)


def look_alikes(names: Iterable[str]) -> list[str]:
    """The names, in order, that share their :func:`folded` form with another name."""
    names = list(names)
    seen: dict[str, set[str]] = {}
    for name in names:
        if not name.isascii():
            seen.setdefault(folded(name), set()).add(name)
    alike = {n for group in seen.values() if len(group) > 1 for n in group}
    return [n for n in dict.fromkeys(names) if n in alike] if alike else []


def shown_apart(name: str) -> str:
    """``name`` with each combining mark written as its ``\\u`` escape (``e\\u0301``)
    and every other character as it is: what tells look-alikes apart."""
    if name.isascii():
        return name
    return "".join(f"\\u{ord(c):04x}" if unicodedata.combining(c) else c for c in name)
