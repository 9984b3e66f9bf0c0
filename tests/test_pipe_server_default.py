"""``rdv dial TOKEN`` / ``rdv accept TOKEN`` take the server as ``rdv send`` does.

With ``$RDV_SERVER`` set (or ``server =`` in the config file) a user typed ``rdv dial
my-token`` and was told "a TOKEN is needed" of a command line that held one: the token
had been taken for the URL. Real processes against a real server on loopback.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.proc_support import kill_left

RDV = [sys.executable, "-m", "rdv_tui"]


def env_with(extra: Mapping[str, str], config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RDV_SERVER", "RDV_TOKEN")}
    return {**env, "RDV_CONFIG": str(config), **extra}


async def pair(
    dial: tuple[str, ...], accept: tuple[str, ...], env: Mapping[str, str]
) -> tuple[tuple[int, bytes, str], tuple[int, bytes, str]]:
    """Run ``rdv accept`` then ``rdv dial``; each sends one line and reads the other's."""
    procs = []
    try:
        for method, args in (("accept", accept), ("dial", dial)):
            proc = await asyncio.create_subprocess_exec(
                *RDV, method, "--spaces", "loopback", "--timeout", "20", *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=dict(env),
            )  # fmt: skip
            procs.append(proc)
        results = await asyncio.wait_for(
            asyncio.gather(
                *(
                    p.communicate(f"from {m}\n".encode())
                    for p, m in zip(procs, ("a", "d"), strict=True)
                )
            ),
            30,
        )
    finally:
        await kill_left(*procs)
    (a_out, a_err), (d_out, d_err) = results
    assert procs[0].returncode is not None and procs[1].returncode is not None
    return (
        (procs[1].returncode, d_out, d_err.decode()),
        (procs[0].returncode, a_out, a_err.decode()),
    )


async def test_one_argument_is_the_token_with_rdv_server_set(url: str, tmp_path: Path) -> None:
    env = env_with({"RDV_SERVER": url}, tmp_path / "none.toml")
    (d_code, d_out, d_err), (a_code, a_out, a_err) = await pair(("t-env",), ("t-env",), env)
    assert (d_code, a_code) == (0, 0), (d_err, a_err)
    assert d_out == b"from a\n" and a_out == b"from d\n"


async def test_the_config_file_server_and_a_token_file(url: str, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'server = "{url}"\n')
    token = tmp_path / "token"
    token.write_text("t-file\n")
    env = env_with({}, config)
    (d_code, d_out, d_err), (a_code, a_out, a_err) = await pair(
        ("--token-file", str(token)), ("t-file",), env
    )
    assert (d_code, a_code) == (0, 0), (d_err, a_err)
    assert d_out == b"from a\n" and a_out == b"from d\n"


async def test_a_url_alone_takes_the_token_from_the_environment(url: str, tmp_path: Path) -> None:
    env = env_with({"RDV_TOKEN": "t-var"}, tmp_path / "none.toml")
    (d_code, d_out, d_err), (a_code, _, a_err) = await pair((url,), (url, "t-var"), env)
    assert (d_code, a_code) == (0, 0), (d_err, a_err)
    assert d_out == b"from a\n"


async def test_no_server_anywhere_says_how_to_give_one(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        *RDV, "dial", "my-token",
        stdin=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env_with({}, tmp_path / "none.toml"),
    )  # fmt: skip
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        await kill_left(proc)
    assert proc.returncode == 2
    assert "no rdv server: give the URL before the TOKEN, set RDV_SERVER" in err.decode()
