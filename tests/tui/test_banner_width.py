"""The race's result banner never breaks a figure from its unit.

Textual wraps at any space: at 60 columns the banner read ``★ P2P to 203.0.113.99:52000
(public4, observed, #1) in 671`` over ``ms``.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from rdv_core.events import write_jsonl
from rdv_tui.app import AppConfig, make_app
from rdv_tui.scenes import sample_race


@pytest.mark.parametrize("size", [(40, 12), (50, 20), (60, 20), (80, 24)])
async def test_the_banner_keeps_its_figures_whole(tmp_path: Path, size: tuple[int, int]) -> None:
    race = tmp_path / "race.jsonl"
    with race.open("w") as stream:
        write_jsonl(sample_race(), stream)
    app = make_app(AppConfig(replay=race))
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await pilot.pause(0.2)
        assert app.screen._compositor is not None
        lines = [strip.text.strip() for strip in app.screen._compositor.render_strips()]
    at = next(n for n, line in enumerate(lines) if line.startswith("★ P2P to"))
    banner = " ".join(itertools.takewhile(lambda line: not line.startswith("#  "), lines[at:]))
    assert "671 ms" in banner, lines
    for before, after in itertools.pairwise(lines[at : at + 3]):
        assert not (re.search(r"\d$", before) and after.startswith("ms")), (before, after)
