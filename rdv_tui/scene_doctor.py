# ruff: noqa: E501 - the report is kept as the lab printed it
"""The Doctor screen's fixed scene: a real report, measured by ``rdv doctor`` on cliA of the
``cone-fw`` lab (``rdv lab doctor cone-fw --runs 1 --json``), so the screenshot and the snapshot
show what the lab really reports.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Final

from rdv_core.doctor import Report, predict, verdict

if TYPE_CHECKING:
    from rdv_tui.app import RdvApp

#: The JSON report of cliA in the cone-fw lab.
CONE_FW_REPORT: Final = json.loads(
    r"""
{
 "version": 1,
 "local_port": 40977,
 "duration_ms": 1610.1,
 "nat": {
  "value": true,
  "reason": "we are 10.0.1.2:40977, the server saw 203.0.113.11:40977"
 },
 "mapping": {
  "value": "endpoint-independent",
  "reason": "every destination saw the same public port 40977"
 },
 "port_preserved": {
  "value": true,
  "reason": "local port 40977 is also the public port"
 },
 "allocation": {
  "value": "preserved",
  "reason": "4 fresh local ports all kept their number"
 },
 "filtering": {
  "value": "drop",
  "reason": "an unsolicited SYN from the server's port 50767 to 203.0.113.11:40977 got no answer in 1504 ms"
 },
 "hairpin": {
  "value": false,
  "reason": "a conn to our own public address 203.0.113.11:40977: connection refused"
 },
 "upgrade": {
  "value": true,
  "reason": "our Upgrade header arrived"
 },
 "ipv6": {
  "value": null,
  "reason": "no server has an IPv6 address"
 },
 "nat6": {
  "value": null,
  "reason": "no server reported our IPv6 address"
 },
 "filtering6": {
  "value": null,
  "reason": "no server was reached over IPv6"
 },
 "loss": {
  "value": false,
  "reason": "8 connects, none needed a retransmission"
 },
 "proxy": {
  "value": "none",
  "reason": "no proxy configured (--proxy, HTTPS_PROXY, HTTP_PROXY, ALL_PROXY)"
 },
 "allocation_delta": null,
 "servers": [
  {
   "url": "http://203.0.113.10:7000",
   "tcp4": {
    "value": true,
    "reason": "connected in 1.6 ms"
   },
   "tcp6": {
    "value": null,
    "reason": "the server has no IPv6 address"
   },
   "tls": {
    "value": null,
    "reason": "not an https:// URL"
   },
   "rtt_ms": 0.549,
   "observed": "203.0.113.11:40977",
   "probe_ports": [
    7001
   ],
   "upgrade": {
    "value": true,
    "reason": "our Upgrade header arrived"
   },
   "dial_back": {
    "value": "drop",
    "reason": "an unsolicited SYN from the server's port 50767 to 203.0.113.11:40977 got no answer in 1504 ms"
   }
  },
  {
   "url": "http://203.0.113.9:7000",
   "tcp4": {
    "value": true,
    "reason": "connected in 0.8 ms"
   },
   "tcp6": {
    "value": null,
    "reason": "the server has no IPv6 address"
   },
   "tls": {
    "value": null,
    "reason": "not an https:// URL"
   },
   "rtt_ms": 0.785,
   "observed": "203.0.113.11:40977",
   "probe_ports": [
    7001
   ],
   "upgrade": {
    "value": true,
    "reason": "our Upgrade header arrived"
   },
   "dial_back": {
    "value": null,
    "reason": "measured through an earlier server"
   }
  }
 ],
 "samples": [
  {
   "local": "10.0.1.2:40977",
   "server": "203.0.113.10:7000",
   "observed": "203.0.113.11:40977",
   "connect_ms": 1.605
  },
  {
   "local": "10.0.1.2:40977",
   "server": "203.0.113.9:7000",
   "observed": "203.0.113.11:40977",
   "connect_ms": 0.785
  },
  {
   "local": "10.0.1.2:40977",
   "server": "203.0.113.10:7001",
   "observed": "203.0.113.11:40977",
   "connect_ms": 0.549
  },
  {
   "local": "10.0.1.2:40977",
   "server": "203.0.113.9:7001",
   "observed": "203.0.113.11:40977",
   "connect_ms": 0.854
  }
 ],
 "fresh": [
  {
   "local": "10.0.1.2:45345",
   "server": "203.0.113.10:7000",
   "observed": "203.0.113.11:45345",
   "connect_ms": 10.721
  },
  {
   "local": "10.0.1.2:39403",
   "server": "203.0.113.10:7000",
   "observed": "203.0.113.11:39403",
   "connect_ms": 0.534
  },
  {
   "local": "10.0.1.2:39623",
   "server": "203.0.113.10:7000",
   "observed": "203.0.113.11:39623",
   "connect_ms": 0.441
  },
  {
   "local": "10.0.1.2:35551",
   "server": "203.0.113.10:7000",
   "observed": "203.0.113.11:35551",
   "connect_ms": 0.718
  }
 ],
 "local_addrs": {
  "private4": [
   "10.0.1.2"
  ],
  "loopback4": [
   "127.0.0.1"
  ],
  "loopback6": [
   "::1"
  ]
 }
}
"""
)


def doctor_scene_report() -> Report:
    """The cone-fw report as a :class:`Report`."""
    return Report.from_json(CONE_FW_REPORT)


async def stage_doctor(app: RdvApp) -> None:
    """Open the Doctor screen on the fixed report (no network)."""
    screen = app.doctor_screen
    screen.urls = [s.url for s in doctor_scene_report().servers]
    screen.report = doctor_scene_report()
    await app.switch_mode("doctor")
    screen.show_report(screen.report)


async def stage_verdict(app: RdvApp) -> None:
    """The Race screen of the sample race with a verdict under it (the peer's side: the same
    lab's cliB, whose report differs only in its addresses)."""
    from rdv_tui.scenes import sample_race

    ours = doctor_scene_report()
    prediction = predict(ours, _peer_report())
    result = verdict(prediction, sample_race(), None)
    app.race_screen.show_verdict(result)


def _peer_report() -> Report:
    data = json.loads(json.dumps(CONE_FW_REPORT).replace("203.0.113.11", "203.0.113.12"))
    return Report.from_json(data)
