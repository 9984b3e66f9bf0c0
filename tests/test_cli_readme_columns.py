"""What ``rdv`` prints for people fits an 80-column terminal (the brief of the README's
"80x24 is a layout of its own", held to for the headless commands too)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

RDV = [sys.executable, "-m", "rdv_tui"]
HELPS = [
    [],
    *([name] for name in ("tui", "demo", "serve", "dial", "accept", "send", "receive", "doctor")),
    ["lab"],
    *(["lab", sub] for sub in ("list", "run", "matrix", "doctor", "shell", "probe", "faststart")),
]


def _rdv(*args: str) -> str:
    result = subprocess.run(
        [*RDV, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "80"},
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _too_wide(text: str) -> list[str]:
    return [line for line in text.splitlines() if len(line) > 80]


@pytest.mark.parametrize("command", HELPS, ids=lambda c: " ".join(c) or "rdv")
def test_help_fits_80_columns(command: list[str]) -> None:
    assert not _too_wide(_rdv(*command, "--help"))


def test_lab_list_fits_80_columns() -> None:
    """``rdv lab list`` (the README's first lab command) wrote each preset's summary and
    reason as one line: 35 of its 40 lines ran past column 80."""
    out = _rdv("lab", "list")
    assert not _too_wide(out), _too_wide(out)
    from rdv_core.lab import PRESETS

    starts = [line.split()[0] for line in out.splitlines() if not line.startswith(" ")]
    assert starts == list(PRESETS)  # one entry per preset, its name at column 0


def test_doctor_text_fits_80_columns() -> None:
    """``rdv doctor URL``'s text ("read in five seconds") had its summary, reasons and
    server lines run past column 80. Continuation lines now sit under the value (or under
    their server), and no line is cut inside a server's field."""
    import socket

    with socket.socket() as closed:  # unreachable: the longest summary and server line
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        result = subprocess.run(
            [*RDV, "doctor", url],
            capture_output=True,
            text=True,
            timeout=60,
            env={**_no_proxy_env(), "COLUMNS": "80"},
            stdin=subprocess.DEVNULL,
        )
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert not _too_wide(result.stdout), _too_wide(result.stdout)
    proxy = next(i for i, line in enumerate(lines) if line.startswith("  proxy "))
    assert lines[proxy + 1].startswith(" " * 14 + "ALL_PROXY)"), lines  # under the value
    server = next(i for i, line in enumerate(lines) if line.startswith(f"  {url}  "))
    assert lines[server + 1].startswith("    ") and "dial-back not measured" in lines[server + 1]


def _no_proxy_env() -> dict[str, str]:
    """This environment without proxy settings: the proxy line then reads as pinned."""
    return {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
