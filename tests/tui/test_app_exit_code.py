"""``rdv tui`` and ``rdv demo`` exit 1 when the app dies of an exception.

``App.run()`` returns None after a crash (Textual prints the traceback and sets
``return_code``): both commands returned 0, so a script or a service manager took a
crash for a clean quit. A real app on a real pseudo-terminal, made to fail in its
first screen's mount, as the crash of 14 to 18 columns did (fd6263a).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CRASHING_APP = """
import sys
from pathlib import Path

import rdv_tui.app
from rdv_tui.app import AppConfig, RdvApp, run_app

class Crashing(RdvApp):
    CSS_PATH = str(Path(rdv_tui.app.__file__).with_name("rdv.tcss"))

    def on_mount(self) -> None:
        raise RuntimeError("boom in on_mount")

sys.exit(run_app(Crashing(AppConfig(listen=("127.0.0.1", 0)))))
"""

QUITTING_APP = """
import sys
from pathlib import Path

import rdv_tui.app
from rdv_tui.app import AppConfig, RdvApp, run_app

class Quitting(RdvApp):
    CSS_PATH = str(Path(rdv_tui.app.__file__).with_name("rdv.tcss"))

    def on_mount(self) -> None:
        self.call_later(self.exit)

sys.exit(run_app(Quitting(AppConfig(listen=("127.0.0.1", 0)))))
"""


async def _run_in_pty(script: str, home: Path) -> tuple[int, str]:
    path = home / "app_script.py"  # a file: Textual finds an app's CSS beside its class
    path.write_text(script)
    pid, fd = pty.fork()
    if pid == 0:  # the child
        os.execvpe(
            sys.executable,
            [sys.executable, str(path)],
            {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(home), "TERM": "xterm-256color"},
        )
    os.set_blocking(fd, False)
    output = b""
    try:
        async with asyncio.timeout(60):
            while True:
                with contextlib.suppress(BlockingIOError, OSError):
                    output += os.read(fd, 65536)
                done, status = os.waitpid(pid, os.WNOHANG)  # noqa: ASYNC222 (WNOHANG)
                if done:
                    with contextlib.suppress(OSError):
                        output += os.read(fd, 65536)
                    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")
                await asyncio.sleep(0.05)
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)  # noqa: ASYNC222 (killed: it is gone at once)
        os.close(fd)


async def test_a_crash_is_exit_1(tmp_path: Path) -> None:
    code, output = await _run_in_pty(CRASHING_APP, tmp_path)
    assert "boom in on_mount" in output, output[-2000:]
    assert code == 1, output[-2000:]


async def test_a_quit_is_exit_0(tmp_path: Path) -> None:
    code, output = await _run_in_pty(QUITTING_APP, tmp_path)
    assert code == 0, output[-2000:]
