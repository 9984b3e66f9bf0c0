"""docs/PROTOCOL.md sections 5 and 8: the lobby, matching, errors after the upgrade, shutdown.

Each test runs through both fronts; section 5 errors are the core's, so their bytes
are the reference's on both.
"""

from __future__ import annotations

import asyncio

import pytest

from rdv_core import events as ev
from rdv_core.server._core import PairHandler, PairStats, PeerInfo, Reject

from tests.server_support import Env, RawClient, rdv_request


def upgrade_error(status: int, reason: str, body: str) -> bytes:
    return (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n\r\n"
        f"{body}"
    ).encode()


IDLE_400 = upgrade_error(400, "Bad Request", "conn must idle while waiting for response header")


async def test_match_writes_101_with_sorted_peer_addrs(env: Env) -> None:
    dialer, accepter, head_d, head_a = await env.pair(
        "raw", dialer_addrs="192.0.2.77:4000, [2001:db8::1]:4000", accepter_addrs="192.0.2.77:5000"
    )
    assert (
        head_d
        == (
            "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
            f"Rdv-Observed-Addr: {dialer.local}\r\n"
            f"Rdv-Peer-Addrs: {accepter.local}, 192.0.2.77:5000\r\nUpgrade: rdv/1\r\n\r\n"
        ).encode()
    )
    assert (
        head_a
        == (
            "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
            f"Rdv-Observed-Addr: {accepter.local}\r\n"
            f"Rdv-Peer-Addrs: {dialer.local}, 192.0.2.77:4000, [2001:db8::1]:4000\r\n"
            "Upgrade: rdv/1\r\n\r\n"
        ).encode()
    )
    types = [e.type for e in env.events]
    assert types[:3] == ["PeerJoined", "PeerJoined", "PairMatched"]
    matched = next(e for e in env.events if isinstance(e, ev.PairMatched))
    assert (matched.dialer, matched.accepter) == (dialer.local, accepter.local)


async def test_dial_first_then_accept(env: Env) -> None:
    dialer = await env.request("DIAL", "df")
    await env.wait_lobby(1)
    assert await dialer.read_for(0.1) == b""
    accepter = await env.request("ACCEPT", "df")
    assert (await accepter.read_head()).startswith(b"HTTP/1.1 101 ")
    assert (await dialer.read_head()).startswith(b"HTTP/1.1 101 ")
    assert env.server.stats().lobby == 0


async def test_one_slot_per_token_and_exact_match(env: Env) -> None:
    a1 = await env.request("ACCEPT", "Tok")
    a2 = await env.request("ACCEPT", "tok")
    await env.wait_lobby(2)
    d = await env.request("DIAL", "tok")
    assert (await a2.read_head()).startswith(b"HTTP/1.1 101 ")
    assert (await d.read_head()).startswith(b"HTTP/1.1 101 ")
    assert await a1.read_for(0.1) == b""
    assert list(env.server._lobby) == ["Tok"]


async def test_same_token_same_method_evicts_the_older_with_409(env: Env) -> None:
    first = await env.request("ACCEPT", "dup")
    await env.wait_lobby(1)
    second = await env.request("ACCEPT", "dup")
    assert await first.read_until_eof() == upgrade_error(
        409, "Conflict", "replaced by another conn"
    )
    assert await second.read_for(0.2) == b""
    dialer = await env.request("DIAL", "dup")
    assert (await second.read_head()).startswith(b"HTTP/1.1 101 ")
    assert (await dialer.read_head()).startswith(b"HTTP/1.1 101 ")
    stats = env.server.stats()
    assert stats.replaced_total == 1
    assert stats.rejects_by_status[409] == 1
    assert any(isinstance(e, ev.Replaced) and e.token == "dup" for e in env.events)


async def test_lobby_client_sending_a_byte_is_kicked_and_slot_freed(env: Env) -> None:
    chatty = await env.request("ACCEPT", "kick")
    await env.wait_lobby(1)
    chatty.send(b"x")
    assert await chatty.read_until_eof() == IDLE_400
    await env.wait_lobby(0)
    accepter = await env.request("ACCEPT", "kick")
    await env.wait_lobby(1)
    dialer = await env.request("DIAL", "kick")
    assert (await dialer.read_head()).startswith(b"HTTP/1.1 101 ")
    assert (await accepter.read_head()).startswith(b"HTTP/1.1 101 ")
    left = [e for e in env.events if isinstance(e, ev.LobbyLeft)]
    assert [e.reason for e in left] == ["sent data"]


async def test_bytes_pipelined_after_the_request_are_a_violation(env: Env) -> None:
    client = await env.connect()
    client.send(rdv_request("ACCEPT", env.path("pipe"), headers=env.extra_headers) + b"hello")
    assert await client.read_until_eof() == IDLE_400
    assert env.server.stats().lobby == 0


async def test_lobby_client_half_close_is_kicked(env: Env) -> None:
    client = await env.request("DIAL", "hc")
    await env.wait_lobby(1)
    client.half_close()
    assert await client.read_until_eof() == IDLE_400
    await env.wait_lobby(0)
    # A client that gives up is counted apart from the server's refusals.
    stats = env.server.stats()
    assert (stats.lobby_abandoned_total, stats.rejects_by_status.get(400)) == (1, None)


async def test_lobby_client_vanishing_frees_its_slot(env: Env) -> None:
    client = await env.request("DIAL", "gone")
    await env.wait_lobby(1)
    await client.close()
    await env.wait_lobby(0)
    await env.wait_for(lambda: env.server.open_conns == 0)
    left = [e for e in env.events if isinstance(e, ev.LobbyLeft)]
    assert len(left) == 1 and left[0].token == "gone"


async def test_lobby_timeout_408(env: Env) -> None:
    env.server.lobby_timeout = 0.3
    loop = asyncio.get_running_loop()
    started = loop.time()
    client = await env.request("ACCEPT", "lonely")
    assert await client.read_until_eof() == upgrade_error(
        408, "Request Timeout", "no matching peer found"
    )
    assert 0.25 < loop.time() - started < 2.0
    assert env.server.stats().lobby_timeouts_total == 1
    assert any(isinstance(e, ev.LobbyTimedOut) for e in env.events)


async def test_shutdown_answers_503_to_lobby_and_resets_pairs(env: Env) -> None:
    waiting = await env.request("ACCEPT", "wait")
    dialer, accepter = await env.relayed_pair("busy")
    dialer.send(b"in flight")
    assert await accepter.read_exactly(9) == b"in flight"
    await env.wait_lobby(1)
    await env.server.close()
    assert await waiting.read_until_eof() == upgrade_error(
        503, "Service Unavailable", "rdv server shutting down, try again"
    )
    for peer in (dialer, accepter):  # reset, not closed: an EOF would read as the peer's end
        with pytest.raises(ConnectionResetError):
            await peer.read_until_eof()
    assert env.server.open_conns == 0
    closed = [e for e in env.events if isinstance(e, ev.ServerClosed)]
    assert [(e.lobby, e.pairs) for e in closed] == [(1, 1)]
    ended = [e for e in env.events if isinstance(e, ev.RelayEnded)]
    assert [(e.reason, e.dialer_to_accepter) for e in ended] == [("shutdown", 9)]


class _Guard(PairHandler):
    """Per-pair auth: both peers must present the same X-Pair-Key; tokens 'deny*' refused."""

    def __init__(self) -> None:
        self.ended: list[str] = []

    def on_join(self, peer: PeerInfo) -> None:
        if peer.token.startswith("deny"):
            raise Reject(403, "token not allowed")

    def on_match(self, pair_id: int, dialer: PeerInfo, accepter: PeerInfo) -> None:
        if dialer.header("X-Pair-Key") != accepter.header("X-Pair-Key"):
            raise Reject(429, "slow down")

    def on_end(self, stats: PairStats, reason: str) -> None:
        self.ended.append(reason)


async def test_handler_rejects_request_and_pair(env: Env) -> None:
    guard = _Guard()
    env.server.handler = guard
    denied = await env.request("DIAL", "deny-me")
    assert await denied.read_until_eof() == upgrade_error(403, "Forbidden", "token not allowed")
    accepter = await env.request("ACCEPT", "pk", headers=[("X-Pair-Key", "1")])
    await env.wait_lobby(1)
    dialer = await env.request("DIAL", "pk", headers=[("X-Pair-Key", "2")])
    expected = upgrade_error(429, "Too Many Requests", "slow down")
    assert await dialer.read_until_eof() == expected
    assert await accepter.read_until_eof() == expected
    assert guard.ended == ["rejected 429"]
    rejected = [e.status for e in env.events if isinstance(e, ev.Rejected)]
    assert rejected == [403, 429, 429]


class _SlowAuth(PairHandler):
    async def on_match(self, pair_id: int, dialer: PeerInfo, accepter: PeerInfo) -> None:
        await asyncio.sleep(0.05)
        if dialer.header("X-Pair-Key") is None:
            raise Reject(401, "who are you")


async def _pair_with(
    env: Env, token: str, headers: list[tuple[str, str]]
) -> tuple[RawClient, RawClient]:
    accepter = await env.request("ACCEPT", token, headers=headers)
    await env.wait_for(lambda: token in env.server._lobby)
    dialer = await env.request("DIAL", token, headers=headers)
    return dialer, accepter


async def test_async_handler_allows_and_rejects(env: Env) -> None:
    env.server.handler = _SlowAuth()
    dialer, accepter = await _pair_with(env, "ok", [("X-Pair-Key", "k")])
    assert (await dialer.read_head()).startswith(b"HTTP/1.1 101 ")
    assert (await accepter.read_head()).startswith(b"HTTP/1.1 101 ")
    dialer, accepter = await _pair_with(env, "nope", [])
    assert (await dialer.read_until_eof()).startswith(b"HTTP/1.1 401 Unauthorized\r\n")
    assert (await accepter.read_until_eof()).endswith(b"\r\n\r\nwho are you")


async def test_observed_addr_omitted_when_unknown(env: Env) -> None:
    env.server._observed = lambda remote, get: None
    _dialer, accepter, head_d, _head_a = await env.pair("noobs")
    assert head_d == (
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
        b"Rdv-Peer-Addrs: \r\nUpgrade: rdv/1\r\n\r\n"
    )
    assert await accepter.read_for(0.05) == b""


class _Gate(PairHandler):
    """An async on_match that waits until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()

    async def on_match(self, pair_id: int, dialer: PeerInfo, accepter: PeerInfo) -> None:
        await self.gate.wait()


async def test_violation_while_handler_decides_returns_partner_to_lobby(env: Env) -> None:
    gate = _Gate()
    env.server.handler = gate
    accepter = await env.request("ACCEPT", "gate")
    await env.wait_lobby(1)
    dialer = await env.request("DIAL", "gate")
    await env.wait_for(lambda: bool(env.server._pending_matches))
    dialer.send(b"too early")
    assert await dialer.read_until_eof() == IDLE_400
    # The accepter did nothing wrong: it waits in the lobby again, and gets a new peer.
    await env.wait_lobby(1)
    assert await accepter.read_for(0.1) == b""
    gate.gate.set()
    dialer = await env.request("DIAL", "gate")
    assert (await dialer.read_head()).startswith(b"HTTP/1.1 101 ")
    assert (await accepter.read_head()).startswith(b"HTTP/1.1 101 ")
    assert env.server.stats().pairs_total == 1


class _Broken(PairHandler):
    def on_join(self, peer: PeerInfo) -> None:
        if peer.token == "boom":
            raise RuntimeError("bug in the application's hook")

    def on_match(self, pair_id: int, dialer: PeerInfo, accepter: PeerInfo) -> None:
        raise KeyError("another bug")


async def test_buggy_handler_gives_500_not_a_crash(env: Env) -> None:
    env.server.handler = _Broken()
    client = await env.request("DIAL", "boom")
    assert await client.read_until_eof() == upgrade_error(
        500, "Internal Server Error", "internal server error"
    )
    accepter = await env.request("ACCEPT", "m")
    await env.wait_lobby(1)
    dialer = await env.request("DIAL", "m")
    assert (await dialer.read_until_eof()).endswith(b"internal server error")
    assert (await accepter.read_until_eof()).endswith(b"internal server error")
    env.server.handler = None
    _dialer, _accepter, head_d, _head_a = await env.pair("still-fine")
    assert head_d.startswith(b"HTTP/1.1 101 ")
