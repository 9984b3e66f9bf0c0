"""Which uplinks the doctor measures: each way out the race would dial from (PROTOCOL 15.8).

A laptop on wifi and LTE has two default routes; the race offers every uplink's address and
dials public candidates from each, bound to its interface (``rdv_core.client._uplinks``).
Measuring the default route only told the wifi's findings, while the LTE uplink carried the
direct path. So the doctor measures the default route (or, with ``--interface``/``--source``,
the first uplink chosen) as before, and each other uplink the race would use with the same
probes, from a port bound to that uplink, at the same time.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from rdv_core.client._uplinks import (
    Uplink,
    extra_paths,
    local_uplinks,
    select_uplinks,
)
from rdv_core.doctor._report import MAX_UPLINK_REPORTS
from rdv_core.wire import default_sources, parse_server_url

#: Extra uplinks measured beside the first path: each costs one more run's probes (the
#: traffic bound of README "Limits and abuse", docs/PROTOCOL.md 15.8).
MAX_DOCTOR_UPLINKS: Final = MAX_UPLINK_REPORTS - 1


@dataclass(frozen=True, slots=True)
class DoctorPaths:
    """The uplinks of one doctor run.

    Attributes:
        first: The uplink the main findings come from when ``--interface``/``--source``
            chose it (None: the kernel's default route).
        label: How the report names the first path (``eth0 10.0.1.2``; empty: unknown).
        extra: The other uplinks, each measured in its own run.
    """

    first: Uplink | None = None
    label: str = ""
    extra: tuple[Uplink, ...] = ()


def _to_loopback_only(urls: Sequence[str]) -> bool:
    """No uplink leads to a server on loopback (``localhost``, 127.0.0.1, ::1)."""
    for url in urls:
        host = parse_server_url(url).host
        if host.lower() == "localhost":
            continue
        try:
            if ipaddress.ip_address(host).is_loopback:
                continue
        except ValueError:
            pass
        return False
    return True


def plan_doctor_paths(
    urls: Sequence[str],
    interfaces: Sequence[str] = (),
    sources: Sequence[str] = (),
    found: Sequence[Uplink] | None = None,
) -> DoctorPaths:
    """The paths to measure: every uplink the race would use, or only those the options allow.

    Raises:
        ValueError: an interface or source this machine does not have (from
            :func:`~rdv_core.client._uplinks.select_uplinks`, naming what it has).
    """
    uplinks = local_uplinks() if found is None else list(found)
    if interfaces or sources:
        chosen = select_uplinks(uplinks, interfaces, sources)
        if not chosen:
            raise ValueError("--interface/--source leave no uplink to measure from")
        # IPv4 first: the findings that decide a prediction are IPv4's (section 15.4).
        chosen.sort(key=lambda u: not u.is_ipv4)
        return DoctorPaths(chosen[0], str(chosen[0]), tuple(chosen[1 : 1 + MAX_DOCTOR_UPLINKS]))
    if _to_loopback_only(urls):
        return DoctorPaths()
    defaults = default_sources()
    named = [u for u in uplinks if u.ip in defaults]
    named.sort(key=lambda u: not u.is_ipv4)
    extra = [u for u in extra_paths(uplinks, defaults) if u.is_ipv4][:MAX_DOCTOR_UPLINKS]
    return DoctorPaths(None, str(named[0]) if named and extra else "", tuple(extra))
