"""Which losses of a lobby conn are rejoined, and how often (docs/PROTOCOL.md section 18).

A table over the client's own errors, as the attempt raises them: the server's answers
given on purpose (4xx, the lobby-full 503, a long Retry-After) keep their error at once;
a server going away (502/503/504, a reset, a silent close after a wait, a refused
connect once rejoining) is rejoined, paced 0.5 s doubling to 5 s, at most ``rejoins``
times in a streak. The processes and the real server are in test_lobby_rejoin.py.
"""

from __future__ import annotations

import errno
import ssl

import pytest

from rdv_core.client import Client, RejoinPolicy
from rdv_core.client._rejoin import CONNECTING, WAITING, Rejoiner
from rdv_core.client._response import CLOSED_SILENTLY
from rdv_core.errors import RdvProtocolError, ServerConnectError, ServerRejectedError
from rdv_core.events import Clock, Event, LobbyRejoined, PeerJoined, ServerLost

SHUTTING = ServerRejectedError(503, "Service Unavailable", "rdv server shutting down, try again")
REFUSED = ServerConnectError("cannot connect to the rdv server: refused", errno.ECONNREFUSED)
RESET = ServerConnectError("lost the connection while waiting", errno.ECONNRESET)
RESET.__cause__ = ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
SILENT = RdvProtocolError(CLOSED_SILENTLY + " (if it serves TLS, use https://)")


def _rejoiner(events: list[Event]) -> tuple[Rejoiner, Clock]:
    clock = Clock()
    return Rejoiner(RejoinPolicy(), clock, events.append), clock


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, "invalid rdv token: token is not UTF-8"),
        (404, "404 page not found"),
        (408, "no matching peer found"),  # the operator's bound on the wait
        (409, "replaced by another conn"),  # a rejoin would evict the newer one, and back
        (429, "too many requests waiting from your address, try again later"),
        (500, "internal server error"),
        (503, "rdv lobby is full, try again later"),  # shed on purpose
        (503, "rdv lobby is full and your network holds the most waiting requests, try again"),
    ],
)
def test_an_answer_given_on_purpose_stands(status: int, body: str) -> None:
    events: list[Event] = []
    rejoiner, clock = _rejoiner(events)
    exc = ServerRejectedError(status, "Whatever", body)
    assert rejoiner.pause_after(exc, WAITING, clock() - 5) is None
    rejoiner.count = 2  # not while rejoining either
    assert rejoiner.pause_after(exc, WAITING, clock() - 5) is None
    assert events == []


@pytest.mark.parametrize(
    ("exc", "why"),
    [
        (SHUTTING, "503 rdv server shutting down, try again"),
        (ServerRejectedError(503, "Service Unavailable", "rdv is closed"), "503 rdv is closed"),
        (
            ServerRejectedError(502, "Bad Gateway", "rdv backend went away"),
            "502 rdv backend went away",
        ),
        (ServerRejectedError(504, "Gateway Timeout", ""), "504 Gateway Timeout"),
        (RESET, "connection reset"),
        (SILENT, "closed without answering"),
    ],
)
def test_a_server_going_away_while_we_wait_is_rejoined(exc: Exception, why: str) -> None:
    events: list[Event] = []
    rejoiner, clock = _rejoiner(events)
    assert rejoiner.pause_after(exc, WAITING, clock() - 1.0) == 0.5
    assert [(e.why, e.rejoin, e.rejoins) for e in events if isinstance(e, ServerLost)] == [
        (why, 1, 6)
    ]


def test_first_failures_that_joined_nothing_stand() -> None:
    """A refused first connect is a wrong URL more likely than a restart; a close right
    after our request is a TLS server's answer to plain HTTP (its hint must come now)."""
    rejoiner, clock = _rejoiner([])
    assert rejoiner.pause_after(REFUSED, CONNECTING, None) is None
    assert rejoiner.pause_after(SILENT, WAITING, clock()) is None
    assert rejoiner.pause_after(SHUTTING, "racing for a connection", clock() - 5) is None
    bad = RdvProtocolError("bad response from the server: invalid peer addrs [x]")
    assert rejoiner.pause_after(bad, WAITING, clock() - 5) is None


def test_the_streak_is_paced_bounded_and_starts_afresh_after_a_long_wait() -> None:
    events: list[Event] = []
    rejoiner, clock = _rejoiner(events)
    pauses = [rejoiner.pause_after(SHUTTING, WAITING, clock() - 1)]
    for _ in range(5):  # the server is not back: each connect is refused
        rejoiner.joined()  # (not: a refused connect sent nothing)
        pauses.append(rejoiner.pause_after(REFUSED, CONNECTING, None))
    assert pauses == [0.5, 1, 2, 4, 5, 5]
    with pytest.raises(ServerConnectError, match=r"did not come back: 6 rejoins over") as info:
        rejoiner.pause_after(REFUSED, CONNECTING, None)
    assert info.value.__cause__ is REFUSED and info.value.errno == errno.ECONNREFUSED
    # A rejoined conn that then waited a minute: the next loss is a new streak.
    rejoiner.count = 3
    assert rejoiner.pause_after(RESET, WAITING, clock() - 61) == 0.5
    assert rejoiner.count == 1


def test_retry_after_is_honoured_up_to_a_bound() -> None:
    rejoiner, clock = _rejoiner([])
    soon = ServerRejectedError(503, "Service Unavailable", "rdv is closed", retry_after=3)
    assert rejoiner.pause_after(soon, WAITING, clock()) == 3
    late = ServerRejectedError(503, "Service Unavailable", "rdv is closed", retry_after=3600)
    assert rejoiner.pause_after(late, WAITING, clock()) is None


def test_a_tls_servers_refusal_of_plain_http_stands() -> None:
    """Its ``400`` becomes a ServerConnectError naming ``https://`` (no cause): an answer."""
    rejoiner, clock = _rejoiner([])
    plain = ServerConnectError("the rdv server http://x:1 speaks TLS (...): use https://x:1")
    assert rejoiner.pause_after(plain, WAITING, clock() - 5) is None


def test_failed_connects_while_rejoining_are_said_in_a_few_words() -> None:
    events: list[Event] = []
    rejoiner, _ = _rejoiner(events)
    rejoiner.count = 1
    unreachable = ServerConnectError(
        "cannot connect to the rdv server http://x:1: Network is unreachable", errno.ENETUNREACH
    )
    assert rejoiner.pause_after(unreachable, CONNECTING, None) == 1
    assert rejoiner.pause_after(REFUSED, CONNECTING, None) == 2
    said = [e.why for e in events if isinstance(e, ServerLost)]
    assert said == ["network is unreachable", "connection refused"]


def test_a_certificate_refused_on_a_rejoin_stands() -> None:
    rejoiner, _ = _rejoiner([])
    rejoiner.count = 1
    cert = ServerConnectError("TLS with the rdv server failed: certificate verify failed")
    cert.__cause__ = ssl.SSLCertVerificationError("certificate verify failed")
    assert rejoiner.pause_after(cert, CONNECTING, None) is None


def test_rejoined_reports_the_time_away_and_only_on_a_rejoin() -> None:
    events: list[Event] = []
    rejoiner, clock = _rejoiner(events)
    rejoiner.joined()
    assert events == []
    rejoiner.pause_after(RESET, WAITING, clock() - 1)
    rejoiner.joined()
    (rejoined,) = [e for e in events if isinstance(e, LobbyRejoined)]
    assert rejoined.rejoin == 1 and 0 <= rejoined.away_s < 1


def test_off_by_default_for_library_clients() -> None:
    """``Client()`` keeps one lobby conn per attempt (the CLI's waiting commands ask for
    rejoins); no policy and ``rejoins=0`` never rejoin."""
    assert Client().rejoin is None
    assert Rejoiner(None, Clock(), lambda e: None).pause_after(SHUTTING, WAITING, 0) is None
    zero = Rejoiner(RejoinPolicy(rejoins=0), Clock(), lambda e: None)
    assert zero.pause_after(SHUTTING, WAITING, 0) is None
    with pytest.raises(ValueError):
        RejoinPolicy(first_s=0)


async def test_a_rejoin_leaks_nothing_and_meets_the_peer() -> None:
    """In process, with the real native front closed (503 to the lobby) and opened again
    on its port: the lost conn's port, listeners and socket are closed before the rejoin
    (each one runs the attempt afresh), and the fds and tasks come back down."""
    import asyncio

    from rdv_core import AddrSpace, PickFirst
    from rdv_core.server._core import RdvServer
    from rdv_core.server._native import serve_native

    from tests.test_client_leaks import fd_count, settled

    fds, tasks = await settled(fd_count(), len(asyncio.all_tasks()))
    events: list[Event] = []
    policy = RejoinPolicy(first_s=0.05, max_s=0.2)
    waiting = Client(spaces=AddrSpace.LOOPBACK, rejoin=policy, timeout=10, on_event=events.append)
    joined = asyncio.Event()
    first = RdvServer(on_event=lambda e: joined.set() if isinstance(e, PeerJoined) else None)
    async with serve_native(first, host="127.0.0.1", port=0) as front:
        url = front.url.rstrip("/")
        accept = asyncio.create_task(waiting.accept(url, "leak-free"))
        await asyncio.wait_for(joined.wait(), 5)  # our request is in the lobby
    async with serve_native(RdvServer(), host="127.0.0.1", port=int(url.rsplit(":", 1)[1])):
        dialer = await Client(spaces=AddrSpace.LOOPBACK, picker=PickFirst()).dial(url, "leak-free")
        accepter = await accept
        dialer.writer.write(b"hi")
        assert await accepter.reader.readexactly(2) == b"hi"
        await dialer.close()
        await accepter.close()
    names = [type(e).__name__ for e in events]
    assert names[:5] == [
        "AttemptStarted", "ServerConnected", "SelfAddrsGathered", "ServerRejected", "ServerLost"
    ], names  # fmt: skip
    assert "LobbyRejoined" in names and "Picked" in names, names
    now_fds, now_tasks = await settled(fds, tasks)
    assert now_fds <= fds and now_tasks <= tasks, (fds, tasks, now_fds, now_tasks)
