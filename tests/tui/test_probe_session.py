"""The Session screen's bottom line says where received files go, whole, at 80 columns."""

from __future__ import annotations

from pathlib import Path

from rdv_tui.app import AppConfig, make_app

from tests.tui.test_probe_files import screen_lines


async def test_a_long_download_folder_is_shown_whole(tmp_path: Path) -> None:
    """The line was one row high: a path too long for it wrapped into a row that was
    cut off, and the screen read 'received files:' with no folder at all."""
    inbox = tmp_path / "a-rather-long-folder-name" / "for-received-files" / "from-friends"
    app = make_app(AppConfig(embedded_server=False, download_dir=inbox))
    async with app.run_test(size=(80, 24)) as pilot:
        await app.switch_mode("session")
        await pilot.pause()
        shown = "".join(line.strip(" │") for line in screen_lines(app))
        assert str(inbox) in shown.replace(" ", "")


async def test_the_palettes_accept_offer_without_an_offer_says_so(tmp_path: Path) -> None:
    """'Accept offer' from the command palette with no offer waiting did nothing at all."""
    app = make_app(AppConfig(embedded_server=False, download_dir=tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await app.switch_mode("session")
        await pilot.pause()
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"accept offer")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert any("no offer is waiting" in n.message for n in app._notifications)
