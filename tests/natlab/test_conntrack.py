"""The lab reads its routers' conntrack tables and finds the ports a NAT could not keep.

A port clash is provoked on purpose (docs/LAB-NOTES.md section 11): an established conn
A:pA -> R_B:X in B's router takes the reply tuple that B's conn from port X to A:pA would
need, so B's port-preserving NAT must give that conn another port.
"""

from __future__ import annotations

import contextlib
import functools
import socket
from collections.abc import Iterator

import pytest

from rdv_core.lab import Lab, matrix_cells
from rdv_core.lab._conntrack import (
    ConntrackEntry,
    PortRemap,
    Tuple,
    lab_remaps,
    parse_table,
    read_table,
)
from rdv_core.lab._runner import RunResult
from rdv_core.lab._spec import LabSpec, Outcome

from tests.natlab.test_presets import explained_relays

#: Captured from this kernel (6.18) in a lab router after the clash below: B's remapped SYN,
#: the established conn whose reply tuple it could not take, and a UDP line to skip.
REAL_LINES = """\
ipv4     2 tcp      6 119 SYN_SENT src=10.0.2.2 dst=203.0.113.11 sport=40123 dport=40111 \
[UNREPLIED] src=203.0.113.11 dst=203.0.113.12 sport=40111 dport=49294 mark=0 zone=0 use=2
ipv4     2 tcp      6 431999 ESTABLISHED src=203.0.113.11 dst=203.0.113.12 sport=40111 \
dport=40123 src=203.0.113.12 dst=203.0.113.11 sport=40123 dport=40111 [ASSURED] mark=0 \
zone=0 use=2
ipv4     2 udp      17 29 src=10.0.2.2 dst=203.0.113.10 sport=5353 dport=53 [UNREPLIED] \
src=203.0.113.10 dst=203.0.113.12 sport=53 dport=5353 mark=0 zone=0 use=2
"""

PORT_A = 40111
PORT_X = 40123
PORT_PLAIN = 40124


def test_parser_reads_real_lines() -> None:
    entries = parse_table(REAL_LINES)
    assert entries == [
        ConntrackEntry(
            "SYN_SENT",
            Tuple("10.0.2.2", "203.0.113.11", 40123, 40111),
            Tuple("203.0.113.11", "203.0.113.12", 40111, 49294),
        ),
        ConntrackEntry(
            "ESTABLISHED",
            Tuple("203.0.113.11", "203.0.113.12", 40111, 40123),
            Tuple("203.0.113.12", "203.0.113.11", 40123, 40111),
        ),
    ]


def _spec() -> LabSpec:
    # A's router rejects with ICMP, so B's remapped SYN keeps its entry (an RST would kill it).
    (cell,) = matrix_cells(pattern="a-icmp/b-rst 0/0")
    return cell.spec


def _dial_from(port: int, to: tuple[str, int]) -> socket.socket:
    """A SYN from ``port`` to ``to`` that is left pending (non-blocking connect)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", port))
    sock.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        sock.connect(to)
    return sock


@contextlib.contextmanager
def _clash(lab: Lab) -> Iterator[None]:
    """Establish A:pA -> R_B:X, then let B dial A:pA from X (and, plainly, from another port)."""
    wan_a = lab.plan.router_wan["rtrA"].v4
    wan_b = lab.plan.router_wan["rtrB"].v4
    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(contextlib.closing(lab.listen("rtrB", (wan_b, PORT_X))))

        def conn_a() -> socket.socket:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("0.0.0.0", PORT_A))
            sock.connect((wan_b, PORT_X))
            return sock

        stack.enter_context(contextlib.closing(lab.run_in("cliA", conn_a)))
        stack.enter_context(contextlib.closing(listener.accept()[0]))
        for port in (PORT_X, PORT_PLAIN):
            sock = lab.run_in("cliB", functools.partial(_dial_from, port, (wan_a, PORT_A)))
            stack.enter_context(contextlib.closing(sock))
        yield


def test_the_reader_reports_exactly_the_clash() -> None:
    with Lab(_spec()) as lab, _clash(lab):
        wan_a = lab.plan.router_wan["rtrA"].v4
        wan_b = lab.plan.router_wan["rtrB"].v4
        host_b = lab.plan.host_addrs["cliB"].v4
        remaps = lab_remaps(lab, ("cliA", "cliB"), (PORT_X, PORT_A))
        assert len(remaps) == 1, remaps
        (remap,) = remaps
        assert remap.mapped_port != PORT_X
        assert remap == PortRemap(
            "rtrB", host_b, PORT_X, f"{wan_a}:{PORT_A}", wan_b, remap.mapped_port, "SYN_SENT"
        )
        assert remap.describe() == (
            f"rtrB mapped {host_b}:{PORT_X} to {wan_b}:{remap.mapped_port} for "
            f"{wan_a}:{PORT_A} (SYN_SENT): the NAT could not keep the port: a port clash, "
            "docs/LAB-NOTES.md section 11"
        )


def test_the_reader_reports_nothing_for_a_kept_port() -> None:
    with Lab(_spec()) as lab, _clash(lab):
        host_b = lab.plan.host_addrs["cliB"].v4
        # The plain conn is in the table, its port kept...
        plain = [
            e
            for e in read_table(lab, "rtrB")
            if e.orig == Tuple(host_b, lab.plan.router_wan["rtrA"].v4, PORT_PLAIN, PORT_A)
        ]
        assert [e.reply.dport for e in plain] == [PORT_PLAIN]
        # ...so it is no remap; nor is A's established conn in A's router.
        assert lab_remaps(lab, ("cliA", "cliB"), (PORT_PLAIN, PORT_A)) == []


def _run(outcome: Outcome, remaps: list[str]) -> RunResult:
    return RunResult(
        outcome, None, None, {"dialer": [], "accepter": [], "server": []}, port_remaps=remaps
    )


def test_the_policy_accepts_one_relay_a_port_clash_explains() -> None:
    clash = ["rtrB mapped 10.0.2.2:40123 to 203.0.113.12:49294 for 203.0.113.11:40111"]
    direct = _run("direct", [])
    explained = _run("relay", clash)
    assert explained_relays([direct, explained]) == [explained]
    assert explained_relays([direct, direct]) == []
    for bad in (
        [direct, _run("relay", [])],
        [explained, _run("relay", clash)],
        [_run("failed", clash)],
    ):
        with pytest.raises(AssertionError):
            explained_relays(bad)
