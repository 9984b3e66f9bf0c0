"""Lines for a terminal of a given width: the doctor's report and the verdict wrap each
piece under its own column (a terminal that folds a long line puts the rest at column 0,
under the labels).
"""

from __future__ import annotations

import textwrap


def wrap(text: str, width: int | None, first: str, rest: str) -> list[str]:
    """``text`` after ``first``, wrapped to ``width`` with ``rest`` before each further line;
    one line when ``width`` is None."""
    if width is None:
        return [first + text]
    return textwrap.wrap(
        text,
        max(width, len(rest) + 20),
        initial_indent=first,
        subsequent_indent=rest,
        break_on_hyphens=False,
        break_long_words=False,  # an address or a URL stays whole
    ) or [first.rstrip()]


def pack(fields: list[str], sep: str, width: int | None, first: str, rest: str) -> list[str]:
    """``fields`` joined by ``sep``, a field never split: a new line where the next would
    not fit in ``width``."""
    if width is None:
        return [first + sep.join(fields)]
    lines, line = [], first + fields[0]
    for item in fields[1:]:
        if len(line) + len(sep) + len(item) > width:
            lines.append((line + sep).rstrip())  # a "; " keeps its ";"
            line = rest + item
        else:
            line += sep + item
    return [*lines, line]
