"""Files dragged onto the terminal or pasted from a file manager into the path field are
sent (a real demo peer on loopback receives them).

A terminal types a dropped file the way a shell would read it (``'/home/ana/My Notes.pdf' ``,
``My\\ Notes.pdf``, several at once), a file manager copies files as one ``file://`` URI a
line: each read ``no such file or folder``, and of a paste of several lines only the
first was kept.
"""

from __future__ import annotations

from pathlib import Path

from textual import events
from textual.keys import _character_to_key
from textual.pilot import Pilot
from textual.widgets import Input

from rdv_tui.app import RdvApp, make_app
from rdv_tui.widgets.dropped_paths import PathsTyped, pasted_paths, paths_typed

from tests.tui.test_live import app_dials_a_demo_peer, config, wait_for


def test_what_terminals_and_file_managers_type(tmp_path: Path) -> None:
    spaced = tmp_path / "My Notes.txt"
    plain = tmp_path / "plain.txt"
    for path in (spaced, plain):
        path.write_text("x")
    assert paths_typed(f"{spaced}") == PathsTyped([spaced])  # typed as is
    assert paths_typed(f"'{spaced}' ") == PathsTyped([spaced])  # GNOME Terminal
    assert paths_typed(str(spaced).replace(" ", "\\ ")) == PathsTyped([spaced])  # iTerm
    assert paths_typed(f"'{spaced}' '{plain}' ") == PathsTyped([spaced, plain])
    uri = f"file://{str(spaced).replace(' ', '%20')}"
    assert paths_typed(uri) == PathsTyped([spaced])
    assert paths_typed(f"'{tmp_path}/nope' ").missing == tmp_path / "nope"
    assert paths_typed(f"'{spaced}' {tmp_path}/nope").missing == tmp_path / "nope"
    assert paths_typed("'unbalanced").missing == Path("'unbalanced")
    assert paths_typed(pasted_paths(f"{uri}\n{plain}\n")) == PathsTyped([spaced, plain])


async def typed_at_once(app: RdvApp, pilot: Pilot[int], text: str) -> None:
    """``text`` as a terminal types a drop: every key at once, then one wait.

    ``pilot.press`` waits for the app to go idle twice after each key (20 ms each at
    least, more while a session runs): the 80 keys of a dropped path took 3-6 s.
    """
    assert app._driver is not None
    for char in text:
        key = events.Key(char if char.isalnum() else _character_to_key(char), char)
        key.set_sender(app)
        app._driver.send_message(key)
    await pilot.pause()


async def test_dropped_and_pasted_files_are_sent(tmp_path: Path) -> None:
    outbox = tmp_path / "out box"
    outbox.mkdir()
    files = [outbox / name for name in ("My Notes.txt", "b.txt", "c d.txt")]
    for number, path in enumerate(files):
        path.write_bytes(b"rdv %d\n" % number * 1000)
    app = make_app(config(tmp_path))
    async with (
        app.run_test(size=(100, 30)) as pilot,
        app_dials_a_demo_peer(app, pilot, tmp_path),
    ):
        app.controller.session_switch_delay = 0.0
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.controller.session is not None, limit=30)
        await wait_for(pilot, lambda: app.current_mode == "session")
        await wait_for(pilot, lambda: bool(app.session_screen.query("#send-path")))
        field = app.session_screen.query_one("#send-path", Input)
        field.focus()
        # Dropped onto the terminal: typed, quoted, with a trailing space.
        await typed_at_once(app, pilot, f"'{files[0]}' ")
        assert field.value == f"'{files[0]}' ", field.value
        await pilot.press("enter")
        received = tmp_path / "peer"
        await wait_for(pilot, lambda: (received / files[0].name).exists(), limit=20)
        # Copied in a file manager: one URI a line, pasted.
        uris = "".join(f"file://{str(p).replace(' ', '%20')}\r\n" for p in files[1:])
        field.post_message(events.Paste(uris))
        await wait_for(pilot, lambda: field.value != "")
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: all(
                (received / p.name).exists() and (received / p.name).read_bytes() == p.read_bytes()
                for p in files
            ),
            limit=20,
        )
