"""Tokens and codes kept out of argv: ``--token-file``, ``$RDV_TOKEN``, ``--code-file``,
``$RDV_CODE`` (issue 13, item 5). Real ``rdv`` processes against a real server on loopback."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from rdv_tui.cli.race_options import UsageError
from rdv_tui.cli.secret_args import resolve_secret

from tests.proc_support import kill_left
from tests.session_support import file_digest, make_file

RDV = [sys.executable, "-m", "rdv_tui"]


async def _run(
    *args: str, env: dict[str, str] | None = None, stdin: bytes = b""
) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *RDV,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "120", **(env or {})},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), 60)
    finally:
        await kill_left(proc)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_pipe_token_from_a_file_and_from_the_environment(url: str, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    common = ("--spaces", "loopback", "--timeout", "20")
    # The accepter keeps its stdin open until the bytes arrived: its EOF would end the pair.
    accept = await asyncio.create_subprocess_exec(
        *RDV, "accept", *common, url,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "RDV_TOKEN": "s3cret-token"},
    )  # fmt: skip
    assert accept.stdin is not None and accept.stdout is not None
    try:
        dial = asyncio.create_task(
            _run("dial", *common, url, "--token-file", str(token_file), stdin=b"from dial")
        )
        received = await asyncio.wait_for(accept.stdout.readexactly(9), 30)
        accept.stdin.close()
        rc_d, _, err_d = await dial
        _, err_a = await asyncio.wait_for(accept.communicate(), 30)
    finally:
        await kill_left(accept)
    assert received == b"from dial"
    assert rc_d == 0 and accept.returncode == 0, (err_d, err_a)
    assert "peer connected" in err_d


def test_secret_sources_and_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty").write_text("\n")
    (tmp_path / "code").write_text("  555555-tulip-orbit \nignored\n")
    monkeypatch.setenv("RDV_CODE", "666666-from-env")
    assert resolve_secret("given", None, "RDV_CODE", "code") == "given"
    assert resolve_secret(None, str(tmp_path / "code"), "RDV_CODE", "code") == "555555-tulip-orbit"
    assert resolve_secret(None, None, "RDV_CODE", "code") == "666666-from-env"
    monkeypatch.setenv("RDV_CODE", " ")
    assert resolve_secret(None, None, "RDV_CODE", "code") is None
    for value, path, message in [
        ("tok", str(tmp_path / "empty"), "not both"),
        (None, str(tmp_path / "empty"), "is empty"),
        (None, str(tmp_path / "missing"), "cannot read the token"),
    ]:
        with pytest.raises(UsageError, match=message):
            resolve_secret(value, path, "RDV_TOKEN", "token")


def test_receive_takes_its_code_from_a_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rdv_tui.cli import build_parser
    from rdv_tui.cli.commands.receive import _prepare

    (tmp_path / "code").write_text("555555-tulip-orbit\n")
    common = ["--server", "http://127.0.0.1:1", "--dir", str(tmp_path / "dl")]
    args = build_parser().parse_args(["receive", "--code-file", str(tmp_path / "code"), *common])
    _prepare(args)
    assert args.code == "555555-tulip-orbit"
    monkeypatch.setenv("RDV_CODE", "777777-amber-anchor")
    args = build_parser().parse_args(["receive", *common])
    _prepare(args)
    assert args.code == "777777-amber-anchor"
    monkeypatch.delenv("RDV_CODE")
    with pytest.raises(UsageError, match="a CODE is needed"):
        _prepare(build_parser().parse_args(["receive", *common]))


async def test_session_code_from_a_file_and_from_the_environment(url: str, tmp_path: Path) -> None:
    digest = make_file(tmp_path / "f.bin", 5000)
    code_file = tmp_path / "code"
    code_file.write_text("555555-tulip-orbit\n")
    common = ("--server", url, "--spaces", "loopback")
    (rc_s, out_s, err_s), (rc_r, _, err_r) = await asyncio.gather(
        _run("send", str(tmp_path / "f.bin"), "--code-file", str(code_file), *common),
        _run("receive", "--dir", str(tmp_path / "dl"), "--yes", *common,
             env={"RDV_CODE": "555555-tulip-orbit"}),
    )  # fmt: skip
    assert rc_s == 0 and rc_r == 0, (err_s, err_r)
    assert "rdv receive 555555-tulip-orbit" in out_s
    assert file_digest(tmp_path / "dl" / "f.bin") == digest


def test_an_unreadable_secret_file_says_why_in_words(tmp_path: Path) -> None:
    """``--token-file /nonexist`` said ``cannot read the token from /nonexist: [Errno 2] No
    such file or directory: '/nonexist'``, the path twice, once as a Python repr."""
    missing = tmp_path / "missing"
    with pytest.raises(UsageError) as raised:
        resolve_secret(None, str(missing), "RDV_TOKEN", "token")
    assert str(raised.value) == f"cannot read the token from {missing}: No such file or directory"
    (tmp_path / "bin").write_bytes(b"\xff\xfe\n")
    with pytest.raises(UsageError, match=r"bin: not UTF-8 text$"):
        resolve_secret(None, str(tmp_path / "bin"), "RDV_CODE", "code")
