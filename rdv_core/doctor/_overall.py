"""Findings over every server of a run, from what each one found (pure).

One server's failure outweighs another's success where it would break rdv/1 (an Upgrade
stripped on one path); otherwise the first server that measured it speaks for the run.
"""

from __future__ import annotations

from collections.abc import Sequence

from rdv_core.doctor._report import Finding, not_measured
from rdv_core.doctor._target import Target
from rdv_core.wire import Addr


def upgrade(servers: Sequence[Target]) -> Finding:
    findings = [s.upgrade for s in servers if s.upgrade.measured]
    for finding in findings:
        if finding.value is False:
            return finding
    if findings:
        return findings[0]
    reasons = [s.directory_reason or s.upgrade.reason for s in servers]
    return not_measured(reasons[0] if reasons else "no server")


def proxy(servers: Sequence[Target]) -> Finding:
    findings = [s.proxy for s in servers]
    for word in ("tunnel", "failed"):
        for finding in findings:
            if finding.value == word:
                return finding
    return findings[0]


def ipv6(servers: Sequence[Target]) -> Finding:
    for server in servers:
        if server.tcp6.value is True:
            return Finding(True, f"reached {server.url} over IPv6")
    for server in servers:
        if server.tcp6.value is False:
            return Finding(False, server.tcp6.reason)
    return not_measured("no server has an IPv6 address")


def nat6(servers: Sequence[Target]) -> Finding:
    for server in servers:
        sample = server.observed6
        if sample is not None and sample.observed is not None:
            if Addr.parse(sample.observed).ip == Addr.parse(sample.local).ip:
                return Finding(False, f"the server saw our own IPv6 address {sample.observed}")
            return Finding(True, f"we are {sample.local}, the server saw {sample.observed}")
    return not_measured("no server reported our IPv6 address")
