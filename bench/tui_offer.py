"""How soon a big send's first offer shows in the app's files pane once its listing ended.

    .venv/bin/python bench/tui_offer.py [--files 20000]

The real app (its embedded server on loopback) sends a folder of N empty files (made in
a temporary folder) to a real dialing Session that leaves the offer unanswered. Prints
the listing's time, then the time from the listing's end to the first offer at the peer
and in the pane (its aggregate line). Stop 37 measured about 1.8 s in the pane for
20,000 files, when each offered file was an event of its own for the app.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from textual.widgets import Checkbox, Input, Static

from rdv_core.client._client import Client
from rdv_core.session import IncomingOffer, Session, generate_code, parse_code
from rdv_core.wire import SINGLE_SPACES, AddrSpace, format_spaces
from rdv_tui.app import AppConfig, make_app
from rdv_tui.widgets.files import FilesPane

LOOPBACK = AddrSpace.LOOPBACK4 | AddrSpace.LOOPBACK6


def tree(root: Path, files: int) -> Path:
    """``files`` empty files, 10 a folder."""
    for i in range(files):
        folder = root / f"d{i // 10:05d}"
        if i % 10 == 0:
            folder.mkdir(parents=True)
        os.close(os.open(folder / f"f{i % 10}", os.O_CREAT | os.O_WRONLY, 0o644))
    return root


async def until(check: object, limit: float = 60.0) -> None:
    async with asyncio.timeout(limit):
        while not check():  # type: ignore[operator]  # noqa: ASYNC110 (polling app state)
            await asyncio.sleep(0.001)


async def measure(work: Path, files: int) -> None:
    root = tree(work / "many", files)
    offered: list[float] = []
    answer = asyncio.Event()

    async def hold(offer: IncomingOffer) -> bool:
        offered.append(time.monotonic())
        await answer.wait()
        return False

    app = make_app(AppConfig(export_dir=work / "exports", download_dir=work / "inbox"))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(lambda: app.controller.embedded is not None)
        assert app.controller.embedded is not None
        app.controller.session_switch_delay = 0.0
        await pilot.press("f2")
        code = generate_code()
        form = app.connect_screen
        form.query_one("#code", Input).value = code
        for space in SINGLE_SPACES:
            box = form.query_one(f"#space-{format_spaces(space)}", Checkbox)
            box.value = bool(space & LOOPBACK)
        form.query_one("#role-accept").value = True  # type: ignore[attr-defined]
        await pilot.pause()
        client = Client(spaces=LOOPBACK, timeout=20)
        dial = asyncio.get_running_loop().create_task(
            client.dial(app.controller.embedded.url, parse_code(code).token)
        )
        await pilot.press("ctrl+r")
        conn = await dial
        session = Session(
            conn.reader, conn.writer, parse_code(code), is_dialer=True, on_offer=hold,
            download_dir=work / "peer",
        )  # fmt: skip
        await session.start()
        try:
            screen = app.session_screen
            await until(lambda: bool(screen.query("#send-path")))
            pane = screen.query_one(FilesPane)
            await until(lambda: pane.open)
            line = screen.query_one("#aggregate-out", Static)
            field = screen.query_one("#send-path", Input)
            field.value = str(root)
            started = time.monotonic()
            await field.action_submit()
            await until(lambda: pane.listing is not None)
            await until(lambda: pane.listing is None)
            listed = time.monotonic()
            await until(lambda: line.has_class("-shown"))
            shown = time.monotonic()
            await until(lambda: bool(offered))
            print(
                f"{files:,} files: listing {listed - started:.3f} s; after it, the first offer "
                f"at the peer {offered[0] - listed:.3f} s, in the pane {shown - listed:.3f} s"
            )
        finally:
            answer.set()
            await session.close()
            await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--files", type=int, nargs="+", default=[20_000])
    args = parser.parse_args()
    for files in args.files:
        with tempfile.TemporaryDirectory(prefix="rdv-bench-offer-") as tmp:
            asyncio.run(measure(Path(tmp), files))


if __name__ == "__main__":
    main()
