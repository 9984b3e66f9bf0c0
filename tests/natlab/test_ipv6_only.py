"""An IPv6-only host: its server URLs, in every form a user writes them.

One network namespace with no IPv4 address but lo's 127.0.0.1 and no IPv4 route: a dummy
interface ``d0`` holds ``2001:db8::1`` and the link-local ``fe80::1``, a real ``rdv serve``
listens on ``[::]``, a real ``rdv dial`` (relay only, a short ``--timeout``: no peer comes)
names the server in each way. "timed out ... waiting for the peer" proves that the server
conn and its request worked; "cannot connect" is the defect. The namespace, its
``/etc/netns`` hosts file (``ip netns exec`` mounts it as ``/etc/hosts``) and every
process go at the end.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from rdv_core.lab import _netns as netns
from rdv_core.lab._isolate import owner_pid

_numbers = itertools.count(970)
_IN = ("ip", "netns", "exec")
_RDV = (sys.executable, "-m", "rdv_tui")
WAITED = "timed out after 0.3s while waiting for the peer"


def _sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=10)


@contextlib.contextmanager
def namespace_with_hosts(role: str, hosts: str) -> Iterator[str]:
    """A fresh namespace with ``hosts`` as its ``/etc/hosts`` (``ip netns exec`` mounts
    ``/etc/netns/NAME/hosts``); both go at the end, with every process in it."""
    name = netns.lab_ns_name(owner_pid(), next(_numbers), role)
    etc = f"/etc/netns/{name}"
    _sh("ip", "netns", "add", name)
    try:
        os.makedirs(etc, exist_ok=True)
        with open(f"{etc}/hosts", "w") as f:
            f.write(hosts)
        yield name
    finally:
        shutil.rmtree(etc, ignore_errors=True)
        netns.kill_and_delete([name])


@contextlib.contextmanager
def rdv_serve_in(name: str, listen: str) -> Iterator[None]:
    """A real ``rdv serve --listen LISTEN`` in namespace ``name``, listening when entered."""
    server = subprocess.Popen(
        [*_IN, name, *_RDV, "serve", "--listen", listen],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        assert "listening on" in server.stderr.readline()
        yield
    finally:
        server.kill()
        server.wait(timeout=5)


@pytest.fixture
def v6_only() -> Iterator[tuple[str, int]]:
    """The namespace and the port its ``rdv serve --listen [::]:PORT`` listens on."""
    # A dual-stack server name: its IPv4 address is one this host cannot reach.
    with namespace_with_hosts("v6only", "192.0.2.1 dual.test\n2001:db8::1 dual.test\n") as name:
        for line in (
            "link set lo up",
            "link add d0 type veth peer name d1",
            "link set d1 up",
            "addr add 2001:db8::1/64 dev d0 nodad",
            "addr add fe80::1/64 dev d0 nodad",
            "link set d0 up",
        ):
            _sh("ip", "-n", name, *line.split())
        # One link with IPv6 (d0): a peer's link-local candidate is dialled on it.
        netns.write_sysctls(name, {"net.ipv6.conf.d1.disable_ipv6": "1"})
        port = 18600 + os.getpid() % 1000
        with rdv_serve_in(name, f"[::]:{port}"):
            yield name, port


def _dial_all(name: str, urls: list[str]) -> list[str]:
    """What ``rdv dial URL`` says on the IPv6-only host (its stderr's last line), for each
    URL, side by side (each rdv start is a few hundred ms)."""
    procs = [
        subprocess.Popen(
            [*_IN, name, *_RDV, "dial", "--spaces", "none", "--timeout", "0.3", url, f"tok{i}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, url in enumerate(urls)
    ]
    said = []
    for proc in procs:
        _, err = proc.communicate(timeout=20)
        said.append(err.strip().splitlines()[-1])
    return said


def test_a_dual_stack_server_name_works_from_an_ipv6_only_host(v6_only: tuple[str, int]) -> None:
    """Old: the A record alone was tried, ``cannot connect to the rdv server
    http://dual.test:PORT: Network is unreachable``; the AAAA one is tried after it now.
    An IPv4 literal says why it cannot work here."""
    name, port = v6_only
    by_name, by_v4 = _dial_all(name, [f"http://dual.test:{port}", f"http://192.0.2.1:{port}"])
    assert WAITED in by_name, by_name
    assert by_v4 == (
        f"rdv dial: cannot connect to the rdv server http://192.0.2.1:{port}: Network is "
        "unreachable (this machine has no IPv4 route: use the server's IPv6 address, or a "
        "name with an IPv6 address)"
    )


def test_a_link_local_server_url_with_its_zone_works(v6_only: tuple[str, int]) -> None:
    """Old: the zone never reached the socket (``Invalid argument``), RFC 6874's ``%25``
    form reached the resolver (``Unknown error -2``), and the error named
    ``http://[fe80::1]:PORT``, not the URL given."""
    name, port = v6_only
    raw, escaped, bare, unknown = _dial_all(
        name,
        [
            f"http://[fe80::1%d0]:{port}",
            f"http://[fe80::1%25d0]:{port}",
            f"http://[fe80::1]:{port}",
            f"http://[fe80::1%nosuch0]:{port}",
        ],
    )
    assert WAITED in raw, raw
    assert WAITED in escaped, escaped
    assert bare == (
        f"rdv dial: cannot connect to the rdv server http://[fe80::1]:{port}: Invalid argument "
        "(an IPv6 link-local server address needs its interface, e.g. [fe80::1%eth0])"
    )
    assert unknown == (
        "rdv dial: the rdv server address fe80::1%nosuch0 names interface 'nosuch0', which "
        "this machine does not have (`ip link` lists its interfaces)"
    )


def test_a_link_local_peer_candidate_is_dialled_on_the_one_link(v6_only: tuple[str, int]) -> None:
    """Both peers reach the server over ``fe80::1%d0`` with ``--spaces link6``: each one's
    candidate is its observed link-local address, zone dropped on the wire. Old: dialled
    without a zone, ``reason=unreachable errno=22 ... Invalid argument``, and the relay won;
    now it is dialled on the machine's one IPv6 link (``via d0``) and goes direct."""
    name, port = v6_only
    url = f"http://[fe80::1%d0]:{port}"
    rdv = [*_IN, name, *_RDV]
    accept = subprocess.Popen(
        [*rdv, "accept", "--spaces", "link6", "--timeout", "10", url, "ll"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        dial = subprocess.run(
            [*rdv, "dial", "-v", "--spaces", "link6", "--timeout", "10", url, "ll"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=20,
        )
    finally:
        accept.kill()
        accept.communicate(timeout=5)
    assert "peer connected: p2p [fe80::1]:" in dial.stderr, dial.stderr
    assert "via d0 (link6, self)" in dial.stderr, dial.stderr


@pytest.fixture
def v4_only() -> Iterator[str]:
    """A namespace with IPv4 only (10.9.0.1 and a default route), IPv6 still on."""
    name = netns.lab_ns_name(owner_pid(), next(_numbers), "v4only")
    _sh("ip", "netns", "add", name)
    try:
        for line in (
            "link set lo up",
            "link add d0 type veth peer name d1",
            "addr add 10.9.0.1/24 dev d0",
            "link set d0 up",
            "link set d1 up",
            "route add default via 10.9.0.2 dev d0 onlink",
        ):
            _sh("ip", "-n", name, *line.split())
        yield name
    finally:
        netns.kill_and_delete([name])


def test_an_ipv6_server_from_an_ipv4_only_host_says_why(v4_only: str) -> None:
    """No IPv6 route, then IPv6 turned off. Old: ``Network is unreachable`` (read as the
    server being down), then ``Cannot assign requested address`` (of what?)."""
    url = "http://[2001:db8::1]:8080"  # never reached: no route, then no IPv6 at all
    (no_route,) = _dial_all(v4_only, [url])
    sysctls = ("all", "default", "lo", "d0", "d1")
    netns.write_sysctls(v4_only, {f"net.ipv6.conf.{i}.disable_ipv6": "1" for i in sysctls})
    (off,) = _dial_all(v4_only, [url])
    start = f"rdv dial: cannot connect to the rdv server {url}: "
    advice = "use the server's IPv4 address, or a name with an IPv4 address)"
    assert no_route == f"{start}Network is unreachable (this machine has no IPv6 route: {advice}"
    assert off == (
        f"{start}Cannot assign requested address (this machine has no IPv6 address: {advice}"
    )
