"""The lab is the doctor's oracle: on every preset, the doctor reports what the routers were
built with (mapping, filtering, hairpinning, allocation), on both peers' hosts.

The doctor runs in-process inside each host's namespace (the same code as ``rdv doctor``,
without a process start per host); one test runs the real ``rdv doctor`` command.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from rdv_core.doctor import Doctor, Report, predict, predicted_addrs, render_text
from rdv_core.lab import SEQUENTIAL_A, Lab, get_preset
from rdv_core.lab._doctor import (
    host_doctor_urls,
    mismatches,
    run_doctor_command,
    same_public_address,
    start_doctor_server,
)
from rdv_core.wire import parse_spaces

#: Presets whose routers differ in what the doctor sees (CI budget); the others repeat these
#: routers (symmetric-both, same-lan-public; cone-reject resets like cone-rst) or add delay
#: and loss to cone-fw's (delay25, loss20, dualstack-v4slow): ``rdv lab doctor`` runs them all.
PRESETS = (
    "cone-fw",
    "cone-rst",
    "symmetric-a",
    "public-b",
    "same-lan",
    "ipv6",
    # A on an IPv6-only LAN: the doctor reaches the IPv4 server through NAT64, so every
    # probe goes over IPv6 (docs/PROTOCOL.md 15.2); before, it measured nothing there.
    "nat64",
    # A host firewall, not a router, answers the dial-back (rst); the oracle said "open".
    "host-fw-reject",
    # Only the proxy gets out: nothing direct is measurable, the tunnel is the finding.
    "proxy-only",
)
#: The daemons a preset of :data:`PRESETS` needs (Debian packages; .ci/run installs them).
NEEDS = {"nat64": "tayga", "proxy-only": "tinyproxy"}


def _doctor_in(lab: Lab, host: str) -> Report:
    if lab.spec.name == "symmetric-a" and host == "cliA":
        # One host per run goes through the real command line, JSON and all.
        return Report.from_json(run_doctor_command(lab, host))
    urls = host_doctor_urls(lab, host)
    proxy_args = lab.proxy_args(host)  # ["--proxy", URL] or []
    proxy = proxy_args[1] if proxy_args else "none"
    return lab.run_in(host, lambda: asyncio.run(Doctor(urls, proxy=proxy).run()))


@pytest.mark.parametrize("name", PRESETS)
def test_doctor_reports_how_the_preset_was_built(name: str, rdv_command: list[str]) -> None:
    binary = NEEDS.get(name)
    if binary is not None and shutil.which(binary) is None:
        pytest.skip(f"{binary} is not installed (apt-get install {binary})")
    spec = get_preset(name)
    hosts = [spec.dialer, spec.accepter]
    with Lab(spec, rdv_command=rdv_command) as lab:
        start_doctor_server(lab)
        if same_public_address(spec, hosts):
            reports = [_doctor_in(lab, h) for h in hosts]
        else:
            with ThreadPoolExecutor(2) as pool:
                reports = list(pool.map(lambda h: _doctor_in(lab, h), hosts))
    problems = []
    for host, report in zip(hosts, reports, strict=True):
        problems += mismatches(spec, host, report.to_json())
    texts = "\n\n".join(render_text(r) for r in reports)
    assert not problems, "\n".join(problems) + "\n\n" + texts
    if spec.ipv6:
        for report in reports:
            assert report.value("ipv6") is True and report.value("nat6") is False, texts
    prediction = predict(reports[0], reports[1], parse_spaces(spec.spaces))
    assert prediction.agrees_with(spec.expect), (prediction, texts)


def _race(lab: Lab, token: str, predict: bool) -> bool:
    """One rdv accept (cliB) / rdv dial (cliA) race; True if the dialer picked a direct conn."""
    url = lab.plan.server_url
    events = os.path.join(lab.workdir, f"{token}.jsonl")
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.DEVNULL}
    accepter = lab.spawn("cliB", lab.rdv_argv("accept", url, token), **pipes)
    time.sleep(0.8)  # in the lobby first, as the lab runner does
    extra = ["--predict-ports"] if predict else []
    dialer = lab.spawn(
        "cliA", lab.rdv_argv("dial", url, token, "--events", events, *extra), **pipes
    )
    assert dialer.stdin is not None and accepter.stdin is not None and accepter.stdout is not None
    dialer.stdin.write(b"hi\n")
    dialer.stdin.close()
    assert accepter.stdout.readline() == b"hi\n"
    accepter.stdin.close()
    dialer.wait(timeout=20)
    accepter.wait(timeout=20)
    with open(events) as f:
        picked = [json.loads(line) for line in f if '"Picked"' in line]
    return bool(picked) and not picked[0]["is_relay"]


def test_port_prediction_goes_direct_through_a_sequential_nat(rdv_command: list[str]) -> None:
    spec = SEQUENTIAL_A
    with Lab(spec, rdv_command=rdv_command) as lab:
        start_doctor_server(lab)
        report = _doctor_in(lab, "cliA")
        assert not mismatches(spec, "cliA", report.to_json()), render_text(report)
        assert report.allocation_delta and predicted_addrs(report)
        assert not _race(lab, "plain", predict=False)  # what every other tool gets: the relay
        assert _race(lab, "predicted", predict=True)


def test_icmp_rejects_are_told_from_resets(rdv_command: list[str]) -> None:
    """A router that rejects early SYNs with ICMP port-unreachable: the socket sees
    ECONNREFUSED, as for an RST; the dial-back reads the ICMP error queue to tell them apart."""
    spec = get_preset("cone-fw")
    with Lab(spec, rdv_command=rdv_command) as lab:
        start_doctor_server(lab)
        rule = 'iifname "wan" meta l4proto tcp ct state new reject with icmpx type port-unreachable'
        lab.run("rtrA", ["nft", f"insert rule inet rdvlab wan_to_router {rule}"])
        report = _doctor_in(lab, "cliA")
    assert report.value("filtering") == "icmp", render_text(report)
