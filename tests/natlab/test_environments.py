"""The networks beyond NAT (docs/LAB-NOTES.md section 13): host firewalls and proxy-only egress.

First the lab's building blocks are checked with plain sockets (the host firewall drops or
resets what the preset says; the proxy-only network lets nothing out but its proxy), then
the real rdv runs through each preset, payload verified.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import json
import shutil
import socket

import pytest

from rdv_core.lab import Lab, get_preset
from rdv_core.lab._builder import SERVER4
from rdv_core.lab._environments import PROXY_PORT
from rdv_core.lab._runner import RunResult, run_preset
from rdv_core.lab._topologies import nat64_address

from tests.natlab.test_presets import _check, _explain

PORT = 7200
#: The daemons each preset runs (Debian packages tinyproxy, tayga, socat; .ci/run installs them).
NEEDS = {"proxy-only": "tinyproxy", "nat64": "tayga", "vpn": "socat"}


@pytest.fixture(autouse=True)
def _daemons_installed(request: pytest.FixtureRequest) -> None:
    """Skip, with the package to install, a test whose preset's daemon is missing here."""
    for preset, binary in NEEDS.items():
        if preset.split("-")[0] in request.node.name and not (
            shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin")
        ):
            pytest.skip(f"{binary} is not installed (apt-get install {binary})")


NAT64_SERVER = nat64_address(SERVER4)


def _try_connect(lab: Lab, role: str, addr: tuple[str, int]) -> str:
    """``ok``, ``refused`` or ``timeout`` for one TCP connect from ``role``."""
    try:
        lab.connect(role, addr, timeout=0.5).close()
    except TimeoutError:
        return "timeout"
    except OSError as exc:
        if exc.errno == errno.ECONNREFUSED:
            return "refused"
        raise
    return "ok"


@pytest.mark.parametrize(
    ("name", "inbound"), [("host-fw-drop", "timeout"), ("host-fw-reject", "refused")]
)
def test_the_host_firewall_stops_unsolicited_syns_only(name: str, inbound: str) -> None:
    with Lab(get_preset(name)) as lab:
        a = lab.plan.host_addrs["cliA"].v4
        with contextlib.closing(lab.listen("cliA", ("0.0.0.0", PORT))):
            # From the internet (the server's box), a SYN to A's open port does not get in...
            assert _try_connect(lab, "srv", (a, PORT)) == inbound
            # ...while A's own conns, and their answers, pass.
            with contextlib.closing(lab.listen("srv", (SERVER4, PORT))) as srv:
                assert _try_connect(lab, "cliA", (SERVER4, PORT)) == "ok"
                srv.accept()[0].close()


def test_the_proxy_only_network_lets_out_nothing_but_its_proxy() -> None:
    with Lab(get_preset("proxy-only")) as lab:
        proxy = lab.plan.host_addrs["proxy"].v4
        with contextlib.closing(lab.listen("srv", (SERVER4, PORT))) as srv:
            assert _try_connect(lab, "cliA", (SERVER4, PORT)) == "timeout"
            assert _try_connect(lab, "cliB", (SERVER4, PORT)) == "ok"
            srv.accept()[0].close()

            # Through the real proxy, with CONNECT, A reaches the server's box.
            def tunnel() -> bytes:
                with socket.create_connection((proxy, PROXY_PORT), timeout=2) as sock:
                    sock.sendall(f"CONNECT {SERVER4}:{PORT} HTTP/1.1\r\n\r\n".encode())
                    return sock.recv(200)

            answer = lab.run_in("cliA", tunnel)
            assert answer.startswith((b"HTTP/1.0 200", b"HTTP/1.1 200")), answer
            srv.accept()[0].close()


@pytest.mark.parametrize("name", ["host-fw-drop", "host-fw-reject"])
def test_rdv_goes_direct_through_a_host_firewall(name: str, rdv_command: list[str]) -> None:
    result = run_preset(get_preset(name), 1, rdv_command=rdv_command)
    _check(result, "direct")


def test_rdv_relays_through_the_proxy_tunnel(rdv_command: list[str]) -> None:
    spec = get_preset("proxy-only")
    result = run_preset(spec, 1, rdv_command=rdv_command)
    for run in result.runs:
        assert run.outcome == "relay", _explain(run)
        assert run.data_ok and run.received_bytes == run.payload_bytes > 0, _explain(run)
        # The dialer's relay is its tunnel: what it connected to is the proxy...
        assert run.chosen == f"203.0.113.20:{PROXY_PORT}", _explain(run)
        connected = [e for e in run.events["dialer"] if e["type"] == "ServerConnected"]
        assert connected[0]["proxy"] == f"http://203.0.113.20:{PROXY_PORT}"
        # ...and every direct dial of the dialer timed out at its own router.
        failed = [e for e in run.events["dialer"] if e["type"] == "CandidateFailed"]
        assert failed, _explain(run)
        # The server relayed the whole payload, and saw the proxy as A's address.
        ended = [e for e in run.events["server"] if e["type"] == "RelayEnded"]
        assert ended and ended[0]["dialer_to_accepter"] == run.payload_bytes, _explain(run)


def _winner(run: RunResult) -> dict[str, object]:
    """The dialer's picked candidate (from its events)."""
    picked = [e for e in run.events["dialer"] if e["type"] == "Picked"]
    assert picked, _explain(run)
    candidate = picked[0]["candidate"]
    assert isinstance(candidate, dict)
    return candidate


def test_nat64_goes_direct_through_the_translator(rdv_command: list[str]) -> None:
    result = run_preset(get_preset("nat64"), 1, rdv_command=rdv_command)
    _check(result, "direct")
    run = result.runs[0]
    # A is IPv6-only: it reached the server at the synthesized address...
    connected = [e for e in run.events["dialer"] if e["type"] == "ServerConnected"]
    assert connected[0]["server_addr"] == f"[{NAT64_SERVER}]:7000", _explain(run)
    # ...and won on B's IPv4 candidate, dialled through the NAT64.
    winner = _winner(run)
    assert winner["space"] == "public4" and winner["via"] == "NAT64", _explain(run)


def test_the_second_uplink_finds_the_direct_path(rdv_command: list[str]) -> None:
    result = run_preset(get_preset("two-uplinks"), 1, rdv_command=rdv_command)
    _check(result, "direct")
    run = result.runs[0]
    winner = _winner(run)
    # Either our dial bound to the LTE interface, or B's dial to the LTE address we offered.
    assert winner["via"] == "eth1 203.0.113.30" or winner["origin"] == "inbound", _explain(run)
    gathered = [e for e in run.events["dialer"] if e["type"] == "SelfAddrsGathered"]
    assert any(a.startswith("203.0.113.30:") for a in gathered[0]["addrs"]), _explain(run)


def test_a_natted_second_uplink_is_asked_for_and_wins(rdv_command: list[str]) -> None:
    """LTE behind a carrier NAT: only the server can say where it maps A's port (PROTOCOL 17.3).

    Without asking, B never aims at that address and refuses A's SYN from it: relay (5/5 in
    the lab before the change, docs/LAB-NOTES.md section 13).
    """
    result = run_preset(get_preset("two-uplinks-nat"), 1, rdv_command=rdv_command)
    _check(result, "direct")
    run = result.runs[0]
    gathered = [e for e in run.events["dialer"] if e["type"] == "SelfAddrsGathered"]
    observed = [e for e in run.events["dialer"] if e["type"] == "ServerResponded"]
    lte_public = [
        a
        for a in gathered[0]["addrs"]
        if a.startswith("203.0.113.") and a != observed[0]["observed_addr"]
    ]
    assert lte_public, _explain(run)  # the carrier NAT's mapping, offered as a self address
    winner = _winner(run)
    assert winner["via"] == "eth1 10.0.3.100" or winner["addr"] in lte_public, _explain(run)


def test_interface_restricts_the_uplinks(rdv_command: list[str]) -> None:
    spec = get_preset("two-uplinks")
    only_wifi = tuple(
        dataclasses.replace(h, rdv_args=("--interface", "eth0")) if h.name == "cliA" else h
        for h in spec.hosts
    )
    result = run_preset(dataclasses.replace(spec, hosts=only_wifi), 1, rdv_command=rdv_command)
    _check(result, "relay")
    dialed = [e for e in result.runs[0].events["dialer"] if e["type"] == "DialStarted"]
    assert dialed and all(e["candidate"]["via"] == "eth0 10.0.1.2" for e in dialed)


def test_vpn_goes_direct_through_the_tunnel(rdv_command: list[str]) -> None:
    result = run_preset(get_preset("vpn"), 1, rdv_command=rdv_command)
    _check(result, "direct")
    run = result.runs[0]
    # The server saw the concentrator, and A offered its tunnel address as a private one.
    responded = [e for e in run.events["accepter"] if e["type"] == "ServerResponded"]
    assert any(a.startswith("10.8.0.2:") for a in responded[0]["peer_addrs"]), _explain(run)
    assert any(a.startswith("203.0.113.20:") for a in responded[0]["peer_addrs"]), _explain(run)


def test_the_doctor_reports_the_proxy_only_network(rdv_command: list[str]) -> None:
    """`rdv doctor --proxy` in A's proxy-only network: the tunnel works, nothing else gets out,
    and the prediction against B's report is the relay (docs/PROTOCOL.md section 15.7)."""
    from rdv_core.doctor import Doctor, Report, predict, summary
    from rdv_core.lab._doctor import doctor_urls, start_doctor_server
    from rdv_core.wire import parse_spaces

    spec = get_preset("proxy-only")
    with Lab(spec, rdv_command=rdv_command) as lab:
        start_doctor_server(lab)
        proxy = f"http://{lab.plan.host_addrs['proxy'].v4}:{PROXY_PORT}"
        urls = doctor_urls(spec)
        done = lab.run("cliA", lab.rdv_argv("doctor", "--format", "json", "--proxy", proxy, *urls))
        ours = Report.from_json(json.loads(done.stdout))
        theirs = lab.run_in("cliB", lambda: asyncio.run(Doctor(urls, proxy="none").run()))
    assert ours.finding("proxy").value == "tunnel", ours.finding("proxy")
    assert "tinyproxy" in ours.finding("proxy").reason  # the agent the proxy named
    assert ours.proxy_only and all(s.tcp4.value is False for s in ours.servers)
    assert "Only the HTTP proxy gets out" in summary(ours)
    assert theirs.value("proxy") == "none" and not theirs.proxy_only
    prediction = predict(ours, theirs, parse_spaces(spec.spaces))
    assert prediction.agrees_with(spec.expect) and prediction.winner == "relay", prediction
