"""The doctor on a host with two uplinks (docs/PROTOCOL.md 15.8), in the lab's two-uplinks.

cliA's default route (wifi, ``eth0``) is a cone NAT that drops and lets out only the server;
its LTE uplink (``eth1``) has a public address. The race goes direct over LTE; the doctor
measured only the wifi and its prediction told the wifi's story. Now the real ``rdv doctor``
reports both uplinks with their own findings, and the prediction names the LTE uplink.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

from rdv_core.client._uplinks import local_uplinks
from rdv_core.doctor import Finding, Report, predict, render_text, run_doctor, uplink_of
from rdv_core.lab import Lab, get_preset
from rdv_core.lab._builder import SERVER4, SERVER_PORT
from rdv_core.lab._doctor import start_doctor_server


def _doctor(lab: Lab, host: str, *extra: str) -> Report:
    # One server URL (with its probe port): the wifi reaches it, so no connect waits 3 s
    # on an address the wifi does not let out.
    argv = lab.rdv_argv("doctor", "--format", "json", *extra, f"http://{SERVER4}:{SERVER_PORT}")
    done = lab.run(host, argv, check=False)
    assert done.returncode == 0, done.stderr[-800:]
    return Report.from_json(json.loads(done.stdout))


def _doctor_live(lab: Lab, host: str, live: dict[str, Finding]) -> Report:
    """The doctor in ``host``'s namespace, in process, its live findings into ``live`` (as
    the app's Doctor screen gets them)."""
    url = f"http://{SERVER4}:{SERVER_PORT}"
    return lab.run_in(
        host,
        lambda: asyncio.run(run_doctor([url], on_finding=live.__setitem__, trust_env=False)),
    )


def test_the_doctor_measures_each_uplink_and_names_the_direct_one(
    rdv_command: list[str],
) -> None:
    with Lab(get_preset("two-uplinks"), rdv_command=rdv_command) as lab:
        start_doctor_server(lab)
        with ThreadPoolExecutor(2) as pool:  # at once: each waits 1.5 s for its dial-back
            live: dict[str, Finding] = {}
            runs = [
                pool.submit(_doctor_live, lab, "cliA", live),
                pool.submit(_doctor, lab, "cliB"),  # the real rdv doctor
            ]
            ours, theirs = (run.result() for run in runs)
        # In a thread that entered cliA's namespace (the lab's run_in, a library user's
        # setns) the uplinks are that namespace's: /proc/net was the process's, so the
        # in-process doctor and race saw no uplink with a default route there.
        in_thread = lab.run_in("cliA", local_uplinks)
    assert sorted(u.device for u in in_thread if u.is_ipv4) == ["eth0", "eth1"], in_thread
    text = render_text(ours)
    # The old doctor told the wifi's story: "the peer is on the internet ...: we simply dial in".
    prediction = predict(ours, theirs)
    assert prediction.expect == "direct"
    assert prediction.reason.startswith("via our uplink eth1 203.0.113.30:"), prediction
    assert [p.uplink for p in ours.paths] == ["eth0 10.0.1.2", "eth1 203.0.113.30"], text
    wifi, lte = ours.paths
    assert (wifi.value("nat"), wifi.value("mapping"), wifi.value("filtering")) == (
        True,
        "endpoint-independent",
        "drop",
    ), text
    assert (lte.value("nat"), lte.value("filtering")) == (False, "open"), text
    assert lte.servers[0].observed is not None
    assert lte.servers[0].observed.startswith("203.0.113.30:"), text
    assert "eth1 203.0.113.30  NAT no" in text
    # Each uplink's findings came live too (old: the first path's only, nat/mapping/...).
    by_uplink = {uplink_of(name) for name in live}
    assert ("filtering", "") in by_uplink and ("filtering", "eth1 203.0.113.30") in by_uplink
    assert live["nat@eth1 203.0.113.30"] == lte.finding("nat"), live
