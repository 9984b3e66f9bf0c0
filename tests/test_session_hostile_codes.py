"""Nameplate squatting and code reuse (issue 13, item 4): real server, real clients, loopback."""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path

import pytest

from rdv_core.client._client import Client
from rdv_core.client._conn import Conn
from rdv_core.errors import ServerRejectedError
from rdv_core.session import (
    BurnedCodes,
    CodeError,
    CodeMismatch,
    Session,
    _connect,
    connect_session,
    generate_code,
    parse_code,
)
from rdv_core.session._codes import NAMEPLATE_MAX, NAMEPLATE_MIN, TOKEN_PREFIX

from tests.race_support import LOOP


def _client() -> Client:
    return Client(spaces=LOOP, timeout=15)


async def _close(*sessions: Session) -> None:
    for session in sessions:
        await session.close()
        if session.conn is not None:
            await session.conn.close()


def test_generated_nameplates_come_from_a_space_no_squatter_can_cover() -> None:
    assert NAMEPLATE_MAX - NAMEPLATE_MIN + 1 == 900_000
    for _ in range(200):
        code = parse_code(generate_code())
        assert re.fullmatch(r"[1-9][0-9]{5}", code.nameplate), code
    assert parse_code("7-tulip-orbit").token == "rdv-session-7"  # old codes still work


def codes_in_order(monkeypatch: pytest.MonkeyPatch, *codes: str) -> None:
    """Make the session's code generator return ``codes`` (the squatter must know one)."""
    queue = list(codes)
    monkeypatch.setattr(_connect, "generate_code", lambda words=2: queue.pop(0))


async def test_a_squatted_nameplate_is_swapped_for_a_fresh_code_before_it_is_shown(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    squatted, fresh = "111111-acorn-adobe", "222222-amber-anchor"
    squatter = asyncio.create_task(_client().accept(url, TOKEN_PREFIX + "111111"))
    await asyncio.sleep(0.2)  # the squatter waits in the lobby before the sender comes
    shown: list[str] = []
    notices: list[str] = []
    code_ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_code(code: str) -> None:
        shown.append(code)
        code_ready.set_result(code)

    codes_in_order(monkeypatch, squatted, fresh)
    sending = asyncio.create_task(
        connect_session(
            url, None, "send", client=_client(), on_code=on_code, on_notice=notices.append
        )
    )
    code = await asyncio.wait_for(code_ready, 10)
    receiver = await connect_session(url, code, "receive", client=_client())
    sender = await sending
    try:
        assert shown == [fresh]
        assert len(notices) == 1 and "111111 was taken" in notices[0]
        await sender.send_chat("hello")
    finally:
        await _close(sender, receiver)
        squatter.cancel()
        with contextlib.suppress(BaseException):
            conn: Conn = await squatter
            await conn.close()


async def test_a_receiver_evicted_by_a_raw_accept_tries_again(url: str) -> None:
    code = "333333-cedar-comet"
    notices: list[str] = []
    receiving = asyncio.create_task(
        connect_session(url, code, "receive", client=_client(), on_notice=notices.append)
    )
    await asyncio.sleep(0.2)
    # One raw ACCEPT with the token evicts the waiting receiver (409 replaced) ...
    evictor = asyncio.create_task(_client().accept(url, TOKEN_PREFIX + "333333"))
    # ... which comes back at once and evicts the evictor in turn.
    with pytest.raises(ServerRejectedError, match="409"):
        await asyncio.wait_for(evictor, 10)
    sender = await connect_session(url, code, "send", client=_client())
    receiver = await receiving
    try:
        assert notices and "replaced our lobby conn (409)" in notices[0]
        assert "interference" in notices[0]
    finally:
        await _close(sender, receiver)


async def test_a_code_that_failed_key_confirmation_is_never_used_again(
    url: str, tmp_path: Path
) -> None:
    burned = BurnedCodes(tmp_path / "burned")
    with pytest.raises(CodeMismatch, match="interfering") as caught:
        await asyncio.gather(
            connect_session(url, "444444-otter-quill", "send", client=_client(), burned=burned),
            connect_session(url, "444444-otter-quail", "receive", client=_client()),
        )
    assert "used up" in str(caught.value)
    assert parse_code("444444-otter-quill") in burned
    assert "otter" not in (tmp_path / "burned").read_text()  # digests, not codes
    with pytest.raises(CodeError, match="must not be used again"):
        await connect_session(url, "444444-otter-quill", "send", client=_client(), burned=burned)


async def test_after_a_mismatch_a_sender_with_its_own_code_shows_a_fresh_one(url: str) -> None:
    shown: asyncio.Queue[str] = asyncio.Queue()
    notices: list[str] = []
    sending = asyncio.create_task(
        connect_session(
            url, None, "send", client=_client(), on_code=shown.put_nowait, on_notice=notices.append
        )
    )
    first = parse_code(await asyncio.wait_for(shown.get(), 10))
    wrong = f"{first.nameplate}-not-{first.secret}"
    with pytest.raises(CodeMismatch):
        await connect_session(url, wrong, "receive", client=_client())
    second = await asyncio.wait_for(shown.get(), 10)
    assert parse_code(second).password != first.password
    receiver = await connect_session(url, second, "receive", client=_client())
    sender = await sending
    try:
        assert any("code mismatch" in n and "fresh" in n for n in notices)
    finally:
        await _close(sender, receiver)
