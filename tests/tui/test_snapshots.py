"""Snapshot tests (pytest-textual-snapshot): they pin the look of each screen.

Regenerate after an intended change with ``pytest tests/tui --snapshot-update``
and review the SVGs in ``tests/tui/__snapshots__/``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rdv_tui.app import AppConfig, make_app

SnapCompare = Callable[..., bool]


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_race_dashboard(snap_compare: SnapCompare, race_file: Path, size: tuple[int, int]) -> None:
    app: Any = make_app(AppConfig(replay=race_file))
    assert snap_compare(app, terminal_size=size)
