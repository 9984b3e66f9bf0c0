"""The lab's NATs behave as docs/LAB-NOTES.md sections 4 and 5 record, checked with plain
sockets (no rdv).

Also: nothing is created in the root namespace and nothing in the lab has a route out.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import subprocess
import threading
import time

import pytest

from rdv_core.lab import Lab, get_preset
from rdv_core.lab._builder import SERVER4, SERVER6

from tests.natlab.natlab_support import require_impairment

PORT = 7100


def _root_links() -> str:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout


def _observed_ports(lab: Lab, role: str, count: int) -> list[tuple[int, int]]:
    """(local port, port the server saw) for ``count`` connections from ``role``."""
    out = []
    with contextlib.closing(lab.listen("srv", (SERVER4, PORT))) as srv:
        for _ in range(count):
            with contextlib.closing(lab.connect(role, (SERVER4, PORT))) as conn:
                peer, seen = srv.accept()
                peer.close()
                out.append((conn.getsockname()[1], seen[1]))
    return out


def test_nothing_in_the_root_namespace_and_no_route_out() -> None:
    before = _root_links()
    with Lab(get_preset("public-b")) as lab:
        assert _root_links() == before
        for role in ("cliA", "cliB", "srv", "rtrA"):
            with pytest.raises(OSError) as caught:
                lab.connect(role, ("1.1.1.1", 80), timeout=0.3).close()
            assert isinstance(caught.value, TimeoutError) or caught.value.errno in (
                errno.ENETUNREACH,
                errno.EHOSTUNREACH,
            )
        for ns in lab.namespaces:
            links = lab.run(ns.rsplit("-", 1)[1], ["ip", "-o", "link"]).stdout
            # Every interface is lo, a bridge or a veth end inside the lab.
            names = [line.split(":")[1].strip().split("@")[0] for line in links.splitlines()]
            assert all(
                n in ("lo", "br0", "lan", "wan", "eth0") or n.startswith(("p-", "h-"))
                for n in names
            ), names
    assert _root_links() == before


def test_port_preserving_nat_keeps_the_port() -> None:
    with Lab(get_preset("cone-fw")) as lab:
        for local, seen in _observed_ports(lab, "cliA", 3):
            assert local == seen


def test_random_port_nat_changes_the_port() -> None:
    with Lab(get_preset("symmetric-a")) as lab:
        pairs = _observed_ports(lab, "cliA", 3)
        assert any(local != seen for local, seen in pairs), pairs
        for local, seen in _observed_ports(lab, "cliB", 2):
            assert local == seen


def _simultaneous_open(
    lab: Lab, targets: dict[str, tuple[str, int]], ports: dict[str, int]
) -> dict[str, str]:
    """Both hosts dial each other from fixed ports at once; 'ok' or the errno name each."""
    result: dict[str, str] = {}

    def dial(role: str) -> None:
        family = socket.AF_INET6 if ":" in targets[role][0] else socket.AF_INET

        def make() -> socket.socket:
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", ports[role]))
            return s

        sock = lab.run_in(role, make)
        sock.settimeout(2.0)
        try:
            sock.connect(targets[role])
            result[role] = "ok"
        except OSError as exc:
            result[role] = errno.errorcode.get(exc.errno or 0, str(exc))
        finally:
            sock.close()

    threads = [threading.Thread(target=dial, args=(r,)) for r in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return result


def test_cone_fw_simultaneous_open_and_symmetric_failure() -> None:
    for name, expect in (("cone-fw", "ok"), ("symmetric-both", "timeout")):
        with Lab(get_preset(name)) as lab:
            ports = {"cliA": 41001, "cliB": 41002}
            targets = {
                "cliA": (lab.plan.router_wan["rtrB"].v4, ports["cliB"]),
                "cliB": (lab.plan.router_wan["rtrA"].v4, ports["cliA"]),
            }
            # Open the NAT mappings towards the server first, like an rdv client does.
            with contextlib.closing(lab.listen("srv", (SERVER4, PORT))) as srv:
                for role in ports:

                    def make(port: int = ports[role]) -> socket.socket:
                        s = socket.socket()
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                        s.bind(("0.0.0.0", port))
                        s.connect((SERVER4, PORT))
                        return s

                    lab.run_in(role, make).close()
                    srv.accept()[0].close()
            got = _simultaneous_open(lab, targets, ports)
            if expect == "ok":
                assert got == {"cliA": "ok", "cliB": "ok"}, got
            else:
                assert "ok" not in got.values(), got


def _connect_ms(lab: Lab, role: str, addr: tuple[str, int]) -> float:
    with contextlib.closing(lab.listen("srv", addr)) as srv:
        started = time.monotonic()
        conn = lab.connect(role, addr)
        elapsed = (time.monotonic() - started) * 1000
        conn.close()
        srv.accept()[0].close()
    return elapsed


def test_delay_is_applied_per_router_crossing() -> None:
    require_impairment()
    with Lab(get_preset("delay25")) as lab:
        assert lab.impairment_method in ("nfqueue", "netem")
        # cliA -> srv crosses rtrA once each way: SYN + SYN-ACK = 2 x 25 ms.
        ms = _connect_ms(lab, "cliA", (SERVER4, PORT))
        assert 45.0 <= ms < 150.0, ms
        if lab.impairment_method == "nfqueue":
            queued = sum(q for q, _d in lab.delayer_stats().values())
            assert queued >= 2


def test_dualstack_v4slow_delays_only_ipv4() -> None:
    require_impairment()
    with Lab(get_preset("dualstack-v4slow")) as lab:
        v4 = _connect_ms(lab, "cliA", (SERVER4, PORT))
        v6 = _connect_ms(lab, "cliA", (SERVER6, PORT))
        assert v4 >= 45.0, v4
        assert v6 < 25.0, v6


def test_loss_drops_packets() -> None:
    require_impairment()
    with Lab(get_preset("loss20"), seed=1) as lab:
        with contextlib.closing(lab.listen("srv", (SERVER4, PORT))) as srv:
            srv.settimeout(0.01)
            for _ in range(20):
                with contextlib.suppress(OSError):
                    lab.connect("cliA", (SERVER4, PORT), timeout=0.3).close()
                with contextlib.suppress(OSError):
                    srv.accept()[0].close()
        stats = lab.delayer_stats()
        queued = sum(q for q, _d in stats.values())
        dropped = sum(d for _q, d in stats.values())
        assert queued >= 20 and 0 < dropped < queued, stats
