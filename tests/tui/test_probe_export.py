"""Saving a race or a screen where nothing can be written, or with nothing to save.

The export folder is the current one unless ``--export-dir`` says otherwise: one that
cannot be written (read-only, full, or a file given by mistake) made ``e``, ``s`` and
``ctrl+s`` crash the whole app with a traceback, taking a live session with it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rdv_tui.app import AppConfig, make_app


@pytest.mark.parametrize(("mode", "key"), [("race", "e"), ("race", "s"), ("server", "ctrl+s")])
async def test_an_unwritable_export_folder_is_a_message(
    tmp_path: Path, race_file: Path, mode: str, key: str
) -> None:
    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("mine\n")
    app = make_app(AppConfig(replay=race_file, export_dir=not_a_folder))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        if mode != "race":
            await pilot.press("f5")
            await pilot.pause()
        await pilot.press(key)
        await pilot.pause(0.3)
        assert app.is_running and app._exception is None
        errors = [n for n in app._notifications if n.severity == "error"]
        assert errors and "cannot save" in errors[-1].message
        assert str(not_a_folder) in errors[-1].message
    assert not_a_folder.read_text() == "mine\n"


async def test_no_race_yet_writes_no_empty_export(tmp_path: Path) -> None:
    """An empty export is a file ``rdv tui --replay`` refuses: write none, say why."""
    exports = tmp_path / "exports"
    app = make_app(AppConfig(embedded_server=False, export_dir=exports))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f3")
        await pilot.pause()
        await pilot.press("e")
        await pilot.pause(0.3)
        assert any("no race to export" in n.message for n in app._notifications)
    assert not exports.exists() or not list(exports.iterdir())
