"""The README's first try of ``rdv send`` / ``rdv receive``: both on one machine, with a
server on it too, as real processes against a real server on loopback.

Both sides printed ``warning: expected observed address 127.0.0.1:P to be public IPv4:
p2p across NATs will likely fail`` (a server on this machine sees us at loopback, as it
should; pipe mode stopped saying it in e6d6acd). And the offer's table had its title
wrapped to the table's width: one short name made it ``The sender`` over ``offers``,
both centered, at any terminal width.
"""

from __future__ import annotations

import argparse
import asyncio
import io
from pathlib import Path

import pytest
from rich.console import Console

from rdv_core.events import ObservedAddrWarning
from rdv_tui.transfer_ui import EventSink, TransferView

from tests.test_session_cli import rdv

WARNING = "expected observed address"


async def _pair(url: str, tmp_path: Path, code: str, columns: int) -> tuple[str, str]:
    """Send one short-named file at ``columns`` columns; both stderrs."""
    (tmp_path / "a.txt").write_bytes(b"hi\n")
    common = ("--server", url)  # the default spaces: loopback for a server on this machine
    env = {"COLUMNS": str(columns)}
    (rc_s, _, err_s), (rc_r, _, err_r) = await asyncio.gather(
        rdv("send", str(tmp_path / "a.txt"), "--code", code, *common, env=env),
        rdv("receive", code, "--dir", str(tmp_path / "dl"), "--yes", *common, env=env),
    )
    assert rc_s == 0 and rc_r == 0, (err_s, err_r)
    return err_s, err_r


async def test_a_server_on_this_machine_brings_no_observed_address_warning(
    url: str, tmp_path: Path
) -> None:
    err_s, err_r = await _pair(url, tmp_path, "4301-fox-opal", 80)
    assert WARNING not in err_s and WARNING not in err_r, (err_s, err_r)
    assert "verified a.txt" in err_r, err_r


@pytest.mark.parametrize("columns", [60, 80, 200])
async def test_the_offer_heading_is_one_line(url: str, tmp_path: Path, columns: int) -> None:
    code = f"{4310 + columns}-fox-opal"
    _, err_r = await _pair(url, tmp_path, code, columns)
    lines = err_r.splitlines()
    assert "The sender offers:" in lines, err_r
    table = lines[lines.index("The sender offers:") + 1 :]
    assert table[0].split() == ["file", "┃", "size"], err_r
    assert table[2].split() == ["a.txt", "│", "3", "B"], err_r


@pytest.mark.parametrize(
    ("server", "shown"),
    [("http://rdv.example.com:8080", True), ("http://0.0.0.0:8080", False)],
)
def test_the_warning_is_kept_for_a_server_elsewhere(server: str, shown: bool) -> None:
    """Only a server on this machine is spared it (the same rule as pipe mode's)."""
    out = io.StringIO()
    console = Console(file=out, width=200)
    view = TransferView(console, "out")
    sink = EventSink(argparse.Namespace(verbose=False), console, view, None, server)
    sink(ObservedAddrWarning(0.1, "10.0.0.7:40001", f"{WARNING} 10.0.0.7:40001 ..."))
    assert (WARNING in out.getvalue()) is shown, out.getvalue()
