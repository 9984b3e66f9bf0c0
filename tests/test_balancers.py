"""N ``rdv serve`` behind a real HAProxy and a real nginx, with the configs of ``deploy/``.

One story per balancer, on loopback (README "Deploying"): three backends; 50 pairs with
random tokens, relay and p2p, all matched (never split over two backends), data intact, and
every ``101`` reporting the client's own socket address (from PROXY v2 for HAProxy,
``X-Forwarded-For``/``-Port`` for nginx); then one backend killed: its open pair ends
cleanly, its tokens meet on the survivors, every other token stays where it was
(consistent hashing); then SIGTERM on a survivor: its lobby client gets ``503`` (behind
nginx it moves to the next backend), a new pair of its tokens meets elsewhere, its own
pair in flight relays on until it ends (``--drain``, as in deploy/rdv@.service), and the
other backend's open pair keeps relaying.
"""

from __future__ import annotations

import asyncio
import random
import signal
from pathlib import Path

import pytest

from rdv_core import Addr, ServerRejectedError
from rdv_core.server._pairing import SHUTTING_DOWN
from rdv_core.wire import build_proxy_v2

from tests.balancer_support import (
    BACKEND_ARGS,
    BALANCERS,
    Backend,
    Balancer,
    PairResult,
    backends,
    balancer,
    client,
    closed_within,
    exchange,
    http_get_status,
    landed_since,
    matched_counts,
    missing_binary,
    new_tokens,
    observed_matches_socket,
    open_pair,
    run_pair,
    wait_until,
)
from tests.server_support import RawClient, parse_head, rdv_request

PAIRS = 50


@pytest.mark.parametrize("kind", BALANCERS)
async def test_token_affine_balancing(kind: str, tmp_path: Path) -> None:
    reason = missing_binary(kind)
    if reason is not None:
        pytest.skip(reason)
    async with backends(tmp_path, BACKEND_ARGS[kind]) as pool:
        addrs = [b.addr for b in pool]
        async with balancer(kind, tmp_path, addrs) as lb:
            told = await used_codes_told(lb.url)  # checked while the 50 pairs run
            owner = await fifty_pairs(lb.url, pool)
            await told
            victim, survivors = await kill_one(lb.url, pool, owner)
            await drain_one(lb, survivors, owner)
            assert victim.process.returncode == -signal.SIGKILL


def proxy_v1(config: str) -> str:
    return config.replace("send-proxy-v2 ", "send-proxy ")


async def test_haproxy_proxy_v1(tmp_path: Path) -> None:
    """The text version of the header, as HAProxy's ``send-proxy`` writes it."""
    reason = missing_binary("haproxy")
    if reason is not None:
        pytest.skip(reason)
    async with backends(tmp_path, BACKEND_ARGS["haproxy"], count=1) as pool:
        addrs = [pool[0].addr] * 3
        async with balancer("haproxy", tmp_path, addrs, edit=proxy_v1) as lb:
            config = (tmp_path / "haproxy.cfg").read_text()
            assert "default-server send-proxy check" in config
            tokens = new_tokens(4)
            pairs = await asyncio.gather(
                *(run_pair(lb.url, t, p2p=i % 2 == 0) for i, t in enumerate(tokens))
            )
    for pair in pairs:
        for conn in (pair.dialer, pair.accepter):
            assert observed_matches_socket(conn), (pair.token, conn.meta.observed_addr)
    assert sorted(pool[0].matched_tokens()) == sorted(tokens)


async def used_codes_told(url: str) -> asyncio.Future[list[None]]:
    """docs/PROTOCOL.md section 5, used codes: three session codes meet, then a receiver
    comes back with each and gets ``410`` (within 2 s) through the balancer: the token's
    backend, which remembers its pair, is the one the balancer routes it to. Returns the
    check of the 410s, which runs alongside the next step (it waits 2 s)."""
    tokens = [f"rdv-session-{n}" for n in random.sample(range(100_000, 1_000_000), 3)]
    await asyncio.gather(*(run_pair(url, token, p2p=False) for token in tokens))

    async def again(token: str) -> None:
        with pytest.raises(ServerRejectedError) as caught:
            await client(p2p=False, timeout=15).accept(url, token)
        assert caught.value.status == 410, caught.value
        assert "this code was already used" in str(caught.value), caught.value

    return asyncio.gather(*(again(token) for token in tokens))


async def fifty_pairs(url: str, pool: list[Backend]) -> dict[str, str]:
    """50 pairs at once, half relayed and half p2p; returns token -> backend name."""
    tokens = new_tokens(PAIRS)
    results = await asyncio.gather(
        *(run_pair(url, token, p2p=i % 2 == 1) for i, token in enumerate(tokens))
    )
    for pair in results:
        for conn in (pair.dialer, pair.accepter):
            assert observed_matches_socket(conn), (pair.token, conn.meta.observed_addr)
    landed = {t: names for t, names in landed_since(pool, {}).items() if t in tokens}
    assert sorted(landed) == sorted(tokens), "every pair matched, on some backend"
    assert all(len(names) == 1 for names in landed.values()), landed
    owner = {token: names[0] for token, names in landed.items()}
    # Three backends share the 50 tokens (each gets at least a few; uniform would be ~17).
    assert {b.name for b in pool} == set(owner.values()), owner
    # Each backend saw the clients' real source ports, never the balancer's.
    for backend in pool:
        for join in backend.joined():
            assert join["observed_addr"] is not None, join
    return owner


async def kill_one(
    url: str, pool: list[Backend], owner: dict[str, str]
) -> tuple[Backend, list[Backend]]:
    """SIGKILL the backend with most tokens while it and another relay a pair each."""
    counts = {b.name: list(owner.values()).count(b.name) for b in pool}
    victim = max(pool, key=lambda b: counts[b.name])
    survivors = [b for b in pool if b is not victim]
    victim_tokens = [t for t, name in owner.items() if name == victim.name]
    other_tokens = [t for t, name in owner.items() if name != victim.name]
    doomed = await open_pair(url, victim_tokens[0], p2p=False)
    spared = await open_pair(url, other_tokens[0], p2p=False)
    victim.process.kill()
    await victim.process.wait()
    # Its pair ends cleanly (EOF or reset through the balancer) on both sides, promptly.
    assert await closed_within(doomed.dialer, 10), "dialer of the killed backend's pair"
    assert await closed_within(doomed.accepter, 10), "accepter of the killed backend's pair"
    await close_pair(doomed)
    # The other backend's pair does not notice.
    await exchange(spared.dialer, spared.accepter)
    await close_pair(spared)
    # New pairs: the victim's tokens meet on the survivors, the others stay put.
    mark = matched_counts(pool)
    moved = victim_tokens[:8]
    stayed = random.sample(other_tokens, min(8, len(other_tokens)))
    await asyncio.gather(*(run_pair(url, t, p2p=i % 2 == 0) for i, t in enumerate(moved + stayed)))
    landed = landed_since(pool, mark)
    for token in moved:
        assert len(landed.get(token, [])) == 1, (token, landed)
        assert landed[token][0] != victim.name
    for token in stayed:
        assert landed.get(token) == [owner[token]], (token, landed.get(token), owner[token])
    return victim, survivors


async def drain_one(lb: Balancer, survivors: list[Backend], owner: dict[str, str]) -> None:
    """SIGTERM one survivor: 503 to its lobby client (nginx retries that 503 on the other
    survivor, where the client then meets its peer); a new pair of its tokens meets on the
    other survivor during the drain; its own pair in flight goes on through the balancer
    until it ends (``--drain``), then it exits; the other survivor keeps relaying."""
    kind, url = lb.kind, lb.url
    draining, other = survivors
    mark = matched_counts(survivors)
    mine = [t for t, name in owner.items() if name == draining.name]
    lobby_token, inflight_token, fresh_token = mine[:3]
    other_token = next(t for t, name in owner.items() if name == other.name)
    kept = await open_pair(url, other_token, p2p=False)
    inflight = await open_pair(url, inflight_token, p2p=False)
    joins = len(draining.joined())  # the token may have joined before: wait for this join
    lobby = asyncio.create_task(client(p2p=False).dial(url, lobby_token))
    await wait_until(lambda: lobby_token in [j["token"] for j in draining.joined()[joins:]], 10)
    draining.process.send_signal(signal.SIGTERM)
    # Its own /healthz says it drains: the signal was taken (so no peer meets there now).
    await wait_healthz(draining, 503)
    if kind == "nginx":
        # proxy_next_upstream http_503: the waiting client moved to the next backend of
        # the ring, the one its peer now reaches too.
        peer = await client(p2p=False).accept(url, lobby_token)
        await close_pair(PairResult(lobby_token, await lobby, peer))
    else:
        with pytest.raises(ServerRejectedError) as info:
            async with asyncio.timeout(10):
                await lobby
        assert info.value.status == 503, info.value
        assert info.value.body == SHUTTING_DOWN  # decoded, whatever framing HAProxy chose
        # Its health checks take the draining backend out (nginx has none: the 503 does).
        down = f"Server rdv/{draining.name} is DOWN"
        await wait_until(lambda: down in lb.log_path.read_text(), 15)
    # A rolling restart refuses no new pair: the draining backend's tokens meet elsewhere
    # (before: behind nginx, 503 for every one of them until the drain ended).
    await run_pair(url, fresh_token, p2p=False)
    # A rolling restart cut this pair (and the balancer passed the cut on as an end of
    # stream): the drain lets it go on after the signal, and the backend waits for it.
    await exchange(inflight.dialer, inflight.accepter)
    assert draining.alive
    await close_pair(inflight)
    async with asyncio.timeout(10):
        assert await draining.process.wait() == 0
    await exchange(kept.dialer, kept.accepter)
    await close_pair(kept)
    expected = {
        other_token: [other.name],
        inflight_token: [draining.name],
        fresh_token: [other.name],
    }
    if kind == "nginx":
        expected[lobby_token] = [other.name]
    assert landed_since(survivors, mark) == expected


async def wait_healthz(backend: Backend, status: int) -> None:
    async with asyncio.timeout(10):
        while await http_get_status(backend.port, "/healthz") != status:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def close_pair(pair: PairResult) -> None:
    await asyncio.gather(pair.dialer.close(), pair.accepter.close(), return_exceptions=True)


def behind_an_l4_balancer(config: str) -> str:
    """The README's variant for an NLB in front: HAProxy reads the NLB's PROXY header."""
    bind = '    bind "${RDV_LB_LISTEN}"\n'
    assert bind in config
    return config.replace(bind, '    bind "${RDV_LB_LISTEN}" accept-proxy\n')


async def test_haproxy_behind_an_l4_balancer(tmp_path: Path) -> None:
    """An L4 balancer (here: our raw client, as an NLB writes it) sends PROXY v2 to HAProxy
    (``accept-proxy``), HAProxy sends its own to the backend: the client's address survives
    both hops."""
    reason = missing_binary("haproxy")
    if reason is not None:
        pytest.skip(reason)
    clients = {"DIAL": Addr.parse("203.0.113.7:40122"), "ACCEPT": Addr.parse("[2001:db8::9]:5")}
    nlb = {"DIAL": Addr.parse("192.0.2.1:443"), "ACCEPT": Addr.parse("[2001:db8::1]:443")}
    async with backends(tmp_path, BACKEND_ARGS["haproxy"], count=1) as pool:
        addrs = [pool[0].addr] * 3
        health_check = build_proxy_v2(None, None, command="local")
        l4 = balancer("haproxy", tmp_path, addrs, behind_an_l4_balancer, health_check)
        async with l4 as lb:
            conns = {}
            for method in ("ACCEPT", "DIAL"):
                reader, writer = await asyncio.open_connection("127.0.0.1", lb.port)
                writer.write(build_proxy_v2(clients[method], nlb[method]))
                writer.write(rdv_request(method, "/l4-token"))
                conns[method] = RawClient(reader, writer)
            heads = {m: parse_head(await c.read_head(10))[1] for m, c in conns.items()}
            for method, client_addr in clients.items():
                assert heads[method]["rdv-observed-addr"] == str(client_addr), heads
            for conn in conns.values():
                await conn.close()
