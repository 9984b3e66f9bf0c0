"""From raw samples to findings: pure functions, no sockets (docs/PROTOCOL.md section 15.4).

The vocabulary is RFC 4787's, applied to TCP:

- **mapping**: does the public port the NAT gives our one local port depend on where we
  connect to? ``endpoint-independent`` (the same for every destination: the peer can reach
  the port the server saw), ``address-dependent`` (changes with the destination IP only),
  ``port-dependent`` (changes with the destination port only), ``address-and-port-dependent``
  (changes with both: "symmetric"), ``none`` (no NAT: the server saw our own address);
- **allocation** over fresh local ports: ``preserved`` (public port = local port),
  ``sequential`` (each new mapping is the previous one plus a small step), ``random``;
- **filtering**: what an unsolicited SYN from the server's address, from a port we never
  talked to, gets: ``open`` (it reached our listener), ``drop`` (nothing comes back),
  ``rst``, ``icmp``, ``intercepted`` (something answered, but not us).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Final

from rdv_core.doctor._report import Finding, Sample, not_measured
from rdv_core.wire import Addr, AddrError, DialBack

#: The largest step between consecutive mappings still called ``sequential``. Real NATs step
#: by 1 or 2; the lab's nft ``numgen`` NAT steps by 256 (docs/LAB-NOTES.md section 12). Three
#: equal steps among random ports happen about once in 2^32 runs.
MAX_SEQUENTIAL_DELTA: Final = 4096
#: A connect slower than this retransmitted its SYN (Linux's first retransmission is at 1 s).
RETRANSMIT_MS: Final = 900.0


def _parse(text: str | None) -> Addr | None:
    if text is None:
        return None
    try:
        return Addr.parse(text).unmapped()
    except AddrError:
        return None


def _counts(observed: Addr, any_family: bool) -> bool:
    """Does this observed address take part? IPv4 ones (IPv6 has its own finding, NAT66),
    or any, for a run whose servers were all measured over IPv6 (no IPv4 at all)."""
    return any_family or observed.is_ipv4


def _none_seen(any_family: bool) -> Finding:
    return not_measured(
        "no server reported our address" if any_family else "no server reported our IPv4 address"
    )


def classify_nat(samples: Sequence[Sample], *, any_family: bool = False) -> Finding:
    """Is there a NAT between us and the servers (IPv4 samples, or any: see ``_counts``)?"""
    for sample in samples:
        local, observed = _parse(sample.local), _parse(sample.observed)
        if local is None or observed is None or not _counts(observed, any_family):
            continue
        if observed == local:
            return Finding(False, f"the server saw our own address {observed}")
        return Finding(True, f"we are {local}, the server saw {observed}")
    return _none_seen(any_family)


def classify_mapping(samples: Sequence[Sample], *, any_family: bool = False) -> Finding:
    """The mapping behaviour of our one shared port, from its IPv4 samples (or any)."""
    seen: list[tuple[Addr, Addr]] = []  # (server, observed)
    for sample in samples:
        server, observed = _parse(sample.server), _parse(sample.observed)
        if server is not None and observed is not None and _counts(observed, any_family):
            seen.append((server, observed))
    if not seen:
        return _none_seen(any_family)
    local = _parse(samples[0].local)
    if local is not None and all(obs == local for _, obs in seen):
        return Finding("none", "every server saw our own address: no NAT")
    if len({server for server, _ in seen}) < 2:
        return not_measured(
            "one server port only: start the server with --probe-port, or name a second server"
        )
    by_port: bool | None = None  # same server IP, other port: did the mapping change?
    by_addr: bool | None = None  # other server IP, same port
    by_both: bool | None = None  # other IP and other port
    for i, (s1, o1) in enumerate(seen):
        for s2, o2 in seen[i + 1 :]:
            changed = o1 != o2
            if s1.ip == s2.ip and s1.port != s2.port:
                by_port = bool(by_port) or changed
            elif s1.ip != s2.ip and s1.port == s2.port:
                by_addr = bool(by_addr) or changed
            elif s1.ip != s2.ip:
                by_both = bool(by_both) or changed
    # A change between two destinations that differ in both address and port is explained
    # by whichever of the two is known not to matter.
    if by_both:
        if by_port is False and by_addr is None:
            by_addr = True
        elif by_addr is False and by_port is None:
            by_port = True
    ports = sorted({obs.port for _, obs in seen})
    shown = ", ".join(str(p) for p in ports[:4])
    if not by_port and not by_addr and not by_both:
        note = "" if by_addr is not None or by_both is not None else " (one server IP only)"
        return Finding(
            "endpoint-independent",
            f"every destination saw the same public port {seen[0][1].port}{note}",
        )
    if by_port and by_addr:
        return Finding(
            "address-and-port-dependent",
            f"the public port changes with every destination ({shown}): a symmetric NAT",
        )
    if by_port:
        if by_addr is None:
            return Finding(
                "port-dependent",
                f"the public port changes with the destination port ({shown}); "
                "name a second server to see if the address matters too",
            )
        return Finding(
            "port-dependent", f"the public port changes with the destination port ({shown})"
        )
    if by_addr:
        return Finding(
            "address-dependent",
            f"the public port changes with the destination address ({shown})",
        )
    return not_measured(f"the public port changes ({shown}), but the samples cannot say why")


def classify_preserved(samples: Sequence[Sample], *, any_family: bool = False) -> Finding:
    """Did the NAT keep our shared local port as the public port?"""
    for sample in samples:
        local, observed = _parse(sample.local), _parse(sample.observed)
        if local is not None and observed is not None and _counts(observed, any_family):
            if observed.port == local.port:
                return Finding(True, f"local port {local.port} is also the public port")
            return Finding(False, f"local port {local.port} became public port {observed.port}")
    return _none_seen(any_family)


def classify_allocation(
    fresh: Sequence[Sample], *, any_family: bool = False
) -> tuple[Finding, int | None]:
    """The NAT's port allocation over fresh local ports, and the step when sequential."""
    pairs: list[tuple[int, int]] = []
    for sample in fresh:
        local, observed = _parse(sample.local), _parse(sample.observed)
        if local is not None and observed is not None and _counts(observed, any_family):
            pairs.append((local.port, observed.port))
    if len(pairs) < 3:
        return not_measured(f"{len(pairs)} fresh ports measured, 3 needed"), None
    if all(lp == op for lp, op in pairs):
        return Finding("preserved", f"{len(pairs)} fresh local ports all kept their number"), None
    deltas = [b[1] - a[1] for a, b in itertools.pairwise(pairs)]
    shown = ", ".join(str(op) for _, op in pairs)
    if len(set(deltas)) == 1 and 0 < abs(deltas[0]) <= MAX_SEQUENTIAL_DELTA:
        return (
            Finding("sequential", f"public ports {shown}: each new one is {deltas[0]:+d}"),
            deltas[0],
        )
    return Finding("random", f"public ports {shown} follow no pattern"), None


def classify_filtering(dial_back: DialBack | None, nonce_seen: bool, why_not: str) -> Finding:
    """What the server's unsolicited SYN got, from its report and what our listener saw."""
    if dial_back is None:
        return not_measured(why_not)
    where = f"from the server's port {dial_back.from_port} to {dial_back.target}"
    if dial_back.result == "syn-ack":
        if nonce_seen:
            return Finding("open", f"an unsolicited SYN {where} reached us")
        return Finding("intercepted", f"a SYN {where} was answered, but not by us")
    if dial_back.result == "rst":
        return Finding("rst", f"an unsolicited SYN {where} was answered with a reset")
    if dial_back.result == "icmp":
        return Finding(
            "icmp", f"an unsolicited SYN {where} got an ICMP error (errno {dial_back.errno})"
        )
    if dial_back.result == "timeout":
        return Finding(
            "drop", f"an unsolicited SYN {where} got no answer in {dial_back.elapsed_ms:.0f} ms"
        )
    return not_measured(f"the server could not dial back (errno {dial_back.errno})")


def classify_loss(samples: Sequence[Sample]) -> Finding:
    """Did any connect need a SYN retransmission (a sign of loss on the path)?"""
    times = [s.connect_ms for s in samples if s.connect_ms is not None]
    if not times:
        return not_measured("no conn was made")
    slow = [t for t in times if t >= RETRANSMIT_MS]
    if slow:
        return Finding(True, f"{len(slow)} of {len(times)} connects needed a SYN retransmission")
    if len(times) == 1:  # a server that is no rdv server gives one ("1 connects, none")
        return Finding(False, "1 connect, it needed no retransmission")
    return Finding(False, f"{len(times)} connects, none needed a retransmission")
