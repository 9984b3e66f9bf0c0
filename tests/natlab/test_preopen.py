"""The pre-opening dial, on plain sockets between two routers that reset early SYNs.

``cone-rst`` at zero delay: a SYN from A reaches B's router before B's own SYN did, so B's
router resets it, and the reset erases A's fresh mapping on its way back: B's SYN that
follows is reset by A's router too. A pre-opening SYN (rdv_core.client._preopen) dies at
B's router without a reset, so A's mapping stays open, the socket stays in ``SYN_SENT``,
and B's plain SYN later meets it as a simultaneous open that carries data both ways (the
sequence numbers the routers saw are the socket's own).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from collections.abc import Iterator

import pytest

from rdv_core.client._budget import SynBudget
from rdv_core.client._candidates import new_candidate
from rdv_core.client._dialer import dial_candidate
from rdv_core.client._preopen import preopen_dial
from rdv_core.events import Clock, Event
from rdv_core.lab import Firewall, Lab, LabSpec, NatKind, RouterSpec
from rdv_core.lab._presets import get_preset
from rdv_core.tcpinfo import syn_unanswered
from rdv_core.wire import Addr

A_PORT, B_PORT = 40001, 40002


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab(get_preset("cone-rst"), rdv_command=None) as built:
        yield built


def _socket(port: int, *, listen: bool = False) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("0.0.0.0", port))
    sock.setblocking(False)
    if listen:
        sock.listen(8)
    return sock


def _wan(lab: Lab, router: str) -> str:
    return lab.plan.router_wan[router].v4


def _wait_connected(sock: socket.socket, to: tuple[str, int], timeout: float = 2.0) -> int:
    """Poll a dialling socket with ``connect()`` (which sends nothing more) until it ends."""
    deadline = time.monotonic() + timeout
    code = errno.EALREADY
    while time.monotonic() < deadline:
        code = sock.connect_ex(to)
        if code not in (errno.EALREADY, errno.EINPROGRESS):
            return code
        time.sleep(0.005)
    return code


def _dial(lab: Lab, role: str, port: int, to: tuple[str, int]) -> socket.socket:
    sock = lab.run_in(role, lambda: _socket(port))
    sock.connect_ex(to)
    return sock


def test_a_plain_refused_syn_leaves_nothing_open(lab: Lab) -> None:
    """The control: after A's reset SYN, B's SYN is reset by A's router (no mapping)."""
    a_wan, b_wan = _wan(lab, "rtrA"), _wan(lab, "rtrB")
    a = _dial(lab, "cliA", A_PORT, (b_wan, B_PORT))
    assert _wait_connected(a, (b_wan, B_PORT)) == errno.ECONNREFUSED
    b = _dial(lab, "cliB", B_PORT, (a_wan, A_PORT))
    assert _wait_connected(b, (a_wan, A_PORT)) == errno.ECONNREFUSED
    a.close()
    b.close()


def test_the_preopening_dial_keeps_the_mapping_and_finishes_the_handshake(lab: Lab) -> None:
    a_wan, b_wan = _wan(lab, "rtrA"), _wan(lab, "rtrB")
    listener = lab.run_in("cliA", lambda: _socket(A_PORT, listen=True))
    a = lab.run_in("cliA", lambda: _socket(A_PORT))
    assert preopen_dial(a, (b_wan, B_PORT)) == errno.EINPROGRESS
    assert syn_unanswered(a), "the ICMP answer must leave the socket waiting"
    assert a.getsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, 40) == b""
    time.sleep(0.05)  # B starts later: A's mapping must still be open
    b = _dial(lab, "cliB", B_PORT, (a_wan, A_PORT))
    assert _wait_connected(b, (a_wan, A_PORT)) in (0, errno.EISCONN)
    assert _wait_connected(a, (b_wan, B_PORT)) in (0, errno.EISCONN)
    for sock in (a, b):
        sock.setblocking(True)
        sock.settimeout(2.0)
    a.sendall(b"x" * 100_000)
    got = 0
    while got < 100_000:
        got += len(b.recv(65536))
    b.sendall(b"from B")
    assert a.recv(100) == b"from B"
    for sock in (a, b, listener):
        sock.close()


def _accepter_dial_then_dialer(lab: Lab) -> tuple[socket.socket | None, list[Event]]:
    """B dials A's public address as the race's accepter would; A dials B 50 ms later."""
    a_wan, b_wan = _wan(lab, "rtrA"), _wan(lab, "rtrB")
    a = lab.run_in("cliA", lambda: _socket(A_PORT))
    target = Addr.parse(f"{a_wan}:{A_PORT}")
    events: list[Event] = []

    async def race() -> socket.socket | None:
        dial = asyncio.create_task(
            dial_candidate(
                new_candidate(1, target, "self"),
                target,
                port=B_PORT,
                rtt_hint=None,
                budget=SynBudget().for_addr(target),
                clock=Clock(),
                emit=events.append,
                fail=lambda _: None,
                preopen=True,
            )
        )
        await asyncio.sleep(0.05)
        a.connect_ex((b_wan, B_PORT))
        return await asyncio.wait_for(dial, 3.0)

    try:
        return lab.run_in("cliB", lambda: asyncio.run(race())), events
    finally:
        a.close()


def test_the_accepter_dial_connects_behind_two_resetting_routers(lab: Lab) -> None:
    """Without the pre-opening dial, B's redials are reset until A dials, A's dial is reset
    by B's router, and nothing connects (the budget runs out)."""
    sock, events = _accepter_dial_then_dialer(lab)
    assert sock is not None, events
    sock.close()


def test_an_icmp_refusal_inside_connect_leaves_the_dial_waiting() -> None:
    """A's router answers B's early SYN with an ICMP port unreachable, which Linux records as
    a soft error when it arrives inside ``connect()``: B's socket still waits and B's
    router's mapping was never erased. No pre-opening dial then (on that socket it failed
    with EALREADY and the candidate was lost: a-icmp/b-drop 5/0 relay 5/5)."""
    spec = LabSpec(
        name="icmp-drop",
        summary="A behind an ICMP-rejecting router, B behind a dropping one",
        routers=(
            RouterSpec("rtrA", NatKind.PORT_PRESERVING, Firewall.REJECT_ICMP),
            RouterSpec("rtrB", NatKind.PORT_PRESERVING, Firewall.DROP),
        ),
        hosts=get_preset("cone-rst").hosts,
        expect="direct",
        why="B's router keeps B's mapping",
    )
    with Lab(spec, rdv_command=None) as built:
        sock, events = _accepter_dial_then_dialer(built)
    assert sock is not None, events
    sock.close()
