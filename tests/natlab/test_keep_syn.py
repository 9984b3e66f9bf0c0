"""A far accepter's dial keeps its SYN through an ICMP refusal (rdv_core.client._keep_syn).

A behind a router that ICMP-rejects early SYNs, B 20 ms behind a router that drops them.
B dials A's public address first: A's router rejects it, but B's router keeps B's entry
(and its sequence numbers). B's dial must keep waiting on that very socket, so that A's
SYN later meets it as a simultaneous open with the ISN B's router recorded, and data
flows both ways (docs/LAB-NOTES.md section 11, "Loss, third step").
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from rdv_core.client._budget import SynBudget
from rdv_core.client._candidates import new_candidate
from rdv_core.client._dialer import dial_candidate
from rdv_core.events import CandidateFailed, Clock, DialRetried, Event
from rdv_core.lab import Firewall, HostSpec, Impairment, Lab, LabSpec, NatKind, RouterSpec
from rdv_core.wire import Addr

A_PORT, B_PORT = 40011, 40012

#: The server RTT the accepter is told: far enough that SYNs are kept (20 ms each way).
FAR_RTT = 0.045

SPEC = LabSpec(
    name="icmp-drop-far",
    summary="A behind an ICMP-rejecting router, B 20 ms behind a dropping one",
    routers=(
        RouterSpec("rtrA", NatKind.PORT_PRESERVING, Firewall.REJECT_ICMP),
        RouterSpec("rtrB", NatKind.PORT_PRESERVING, Firewall.DROP),
    ),
    hosts=(
        HostSpec("cliA", "rtrA"),
        HostSpec("cliB", "rtrB", Impairment(delay_ms=20.0)),
    ),
    expect="direct",
    why="B's router keeps B's mapping",
)


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab(SPEC, rdv_command=None) as built:
        yield built


def _plain_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("0.0.0.0", port))
    sock.setblocking(False)
    return sock


def _b_dials_then_a(lab: Lab, rtt_hint: float) -> tuple[socket.socket | None, list[Event]]:
    """B dials A as the race's accepter; A dials B with a plain socket 150 ms later."""
    a_wan = lab.plan.router_wan["rtrA"].v4
    b_wan = lab.plan.router_wan["rtrB"].v4
    a = lab.run_in("cliA", lambda: _plain_socket(A_PORT))
    target = Addr.parse(f"{a_wan}:{A_PORT}")
    events: list[Event] = []

    async def race() -> socket.socket | None:
        dial = asyncio.create_task(
            dial_candidate(
                new_candidate(1, target, "self"),
                target,
                port=B_PORT,
                rtt_hint=rtt_hint,
                budget=SynBudget().for_addr(target),
                clock=Clock(),
                emit=events.append,
                fail=lambda _: None,
                preopen=True,
            )
        )
        # B's SYN reaches A's router 20 ms after it left and is rejected at once; A
        # starts well after that rejection reached B.
        await asyncio.sleep(0.15)
        a.connect_ex((b_wan, B_PORT))
        try:
            return await asyncio.wait_for(dial, 3.0)
        except TimeoutError:
            return None

    b = lab.run_in("cliB", lambda: asyncio.run(race()))
    if b is None:
        a.close()
        return None, events
    a.setblocking(True)
    a.settimeout(2.0)
    b.setblocking(True)
    b.settimeout(2.0)
    try:
        a.sendall(b"from A")
        assert b.recv(100) == b"from A"
        b.sendall(b"x" * 50_000)
        got = 0
        while got < 50_000:
            got += len(a.recv(65536))
    finally:
        a.close()
    return b, events


def test_a_far_accepter_keeps_its_syn_through_an_icmp_refusal(lab: Lab) -> None:
    """No refusal is heard, no redial is sent, the first SYN's socket connects."""
    sock, events = _b_dials_then_a(lab, FAR_RTT)
    assert sock is not None, events
    assert not [e for e in events if isinstance(e, (DialRetried, CandidateFailed))], events
    assert sock.getsockopt(socket.IPPROTO_IP, socket.IP_TTL) != 32, "TTL left lowered"
    sock.close()


def test_a_near_accepter_still_hears_the_icmp_refusal(lab: Lab) -> None:
    """The control: with a LAN-close server (no hint) the refusal ends the dial, which redials."""
    sock, events = _b_dials_then_a(lab, 0.001)
    assert [e for e in events if isinstance(e, DialRetried)], events
    if sock is not None:
        sock.close()
