"""The table of ``rdv lab matrix --presets``: one line per preset, within the terminal.

It was 87 columns before its paths (``preset expect direct relay failed as expected p50 ms
p90 ms chosen path``), over 100 with them, and an 80-column terminal folded every row to
column 0. The direct/relay/failed counts said again what the chosen paths say (``relay
x6, direct public4 x4``, ``failed x1``): they went; the paths wrap under their column.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

#: The widest preset name (``dualstack-v4slow``).
NAME_WIDTH: Final = 16


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _line(name: str, expect: str, hits: str, p50: str, p90: str) -> str:
    return f"{name:<{NAME_WIDTH}}  {expect:<6}  {hits:>8} {p50:>6} {p90:>6}  "


#: Where the paths start: after the fixed columns.
PATHS_AT: Final = len(_line("", "", "", "", ""))


def preset_header() -> list[str]:
    """The header line and the rule under it."""
    head = (_line("preset", "expect", "expected", "p50 ms", "p90 ms") + "chosen paths").rstrip()
    return [head, "-" * len(head)]


def preset_row(name: str, expect: str, summary: Mapping[str, Any], room: int = 80) -> str:
    """One preset's line; its paths wrap, whole, under their column past ``room``."""
    hits = f"{summary[expect]}/{summary['runs']}"
    head = _line(name, expect, hits, _ms(summary["p50_ms"]), _ms(summary["p90_ms"]))
    paths = [f"{path} x{n}" for path, n in summary["chosen"].items()] or ["-"]
    lines, line = [], head + paths[0]
    for path in paths[1:]:
        if len(line) + 2 + len(path) > room:
            lines.append(line + ",")
            line = " " * PATHS_AT + path
        else:
            line += ", " + path
    return "\n".join([*lines, line])
