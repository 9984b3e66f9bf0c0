"""``rdv send`` / ``rdv receive`` as real processes against our server on loopback."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.proc_support import kill_left
from tests.session_support import file_digest, make_file


async def rdv(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rdv_tui",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "120", **(env or {})},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await kill_left(proc)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize(
    ("spaces", "path", "fast"),
    [
        ("loopback4,loopback6", "p2p", "--no-fast-start"),
        ("none", "relay", "--no-fast-start"),
        ("loopback4,loopback6", "relay, fast start", "--fast-start"),  # the default
    ],
)
async def test_send_receive(url: str, tmp_path: Path, spaces: str, path: str, fast: str) -> None:
    digests = {
        "big.bin": make_file(tmp_path / "src" / "big.bin", 2_500_000, 1),
        "docs/a.txt": make_file(tmp_path / "src" / "docs" / "a.txt", 1000, 2),
    }
    dl = tmp_path / "dl"
    code = "314-fox-opal"
    events = tmp_path / "send.jsonl"
    sending = asyncio.create_task(
        rdv(
            "send",
            str(tmp_path / "src" / "big.bin"),
            str(tmp_path / "src" / "docs"),
            "--server",
            url,
            "--code",
            code,
            "--spaces",
            spaces,
            fast,
            "--events",
            str(events),
        )
    )
    receiving = asyncio.create_task(
        rdv(
            "receive",
            code,
            "--dir",
            str(dl),
            "--yes",
            "--spaces",
            spaces,
            fast,
            env={"RDV_SERVER": url},
        )
    )
    (rc_s, out_s, err_s), (rc_r, _out_r, err_r) = await asyncio.gather(sending, receiving)
    assert rc_s == 0, err_s
    assert rc_r == 0, err_r
    assert f"rdv receive {code} --server {url}" in out_s
    assert f"connected, encrypted: {path}" in err_s and f"connected, encrypted: {path}" in err_r
    if path == "relay":
        assert "direct connections are disabled" in err_s
    assert "the receiver verified all 2 files" in err_s
    assert "2 files verified" in err_r
    for name, digest in digests.items():
        assert file_digest(dl / name) == digest
    lines = events.read_text().splitlines()
    assert any('"type":"Picked"' in line for line in lines)
    assert any('"type":"FileCompleted"' in line for line in lines)
    assert not any("fox-opal" in line for line in lines)
    if fast == "--fast-start":
        assert any('"type":"UpgradeStarted"' in line for line in lines)


async def test_receiver_without_terminal_refuses_before_the_code_is_used(
    url: str, tmp_path: Path
) -> None:
    """Without --yes and a terminal to ask on, ``rdv receive`` stops before it connects:
    it used to connect, decline the offer and burn the code ("the receiver declined");
    now the waiting sender keeps its code, and a receive with --yes takes it."""
    digest = make_file(tmp_path / "f.bin", 10)
    code = "9-owl-fig"
    common = ("--server", url, "--spaces", "loopback4")
    sending = asyncio.create_task(rdv("send", str(tmp_path / "f.bin"), "--code", code, *common))
    rc_r, _, err_r = await rdv("receive", code, "--dir", str(tmp_path / "dl"), *common)
    assert rc_r == 2 and "pass --yes" in err_r and "the code is still good" in err_r, err_r
    assert not sending.done()
    rc_r, _, err_r = await rdv("receive", code, "--dir", str(tmp_path / "dl"), "--yes", *common)
    rc_s, _, err_s = await sending
    assert (rc_s, rc_r) == (0, 0), (err_s, err_r)
    assert file_digest(tmp_path / "dl" / "f.bin") == digest


async def test_wrong_code_and_usage_errors(url: str, tmp_path: Path) -> None:
    make_file(tmp_path / "f.bin", 10)
    common = ("--server", url, "--spaces", "loopback4")
    (rc_s, _, err_s), (rc_r, _, err_r) = await asyncio.gather(
        rdv("send", str(tmp_path / "f.bin"), "--code", "8-owl-fig", *common),
        rdv("receive", "8-owl-fog", "--dir", str(tmp_path / "dl"), "--yes", *common),
    )
    # Both sides' stderr in the message: this failed twice under load, cause not yet known.
    assert rc_s == 1 and "code mismatch" in err_s, (rc_s, err_s, err_r)
    assert rc_r == 1 and "code mismatch" in err_r, (rc_r, err_r, err_s)
    rc, _, err = await rdv("send", str(tmp_path / "missing"), *common)
    assert rc == 2 and "no such file" in err, (rc, err)
    rc, _, err = await rdv("receive", "nodash", *common)
    assert rc == 2 and "a code looks like" in err, (rc, err)
    rc, _, err = await rdv(
        "receive", "1-amber-anchor", "--spaces", "bogus", "--server", url, "--timeout", "1"
    )
    assert rc == 2 and "--spaces" in err, (rc, err)


async def test_an_interface_this_machine_lacks_is_refused_before_anything_is_said(
    url: str, tmp_path: Path
) -> None:
    # It was found out by the attempt: 'Sending 1 file, 10 B.' on stdout and, with
    # --explain, a whole doctor run before 'no usable interface'.
    make_file(tmp_path / "f.bin", 10)
    for option in (("--interface", "nosuch0"), ("--source", "192.0.2.254")):
        rc, out, err = await rdv(
            "send", str(tmp_path / "f.bin"), "--server", url, "--explain", *option
        )
        assert (rc, out) == (2, ""), (rc, out, err)
        assert "no usable" in err and "rdv doctor" not in err, err
