"""What this host looks like to an attempt: its uplinks and self addresses, briefly memoized.

Every attempt starts by asking the system for its ways out (interfaces, default routes:
:func:`~rdv_core.client._uplinks.plan_paths`) and, per address space, for the local
address it would use (:func:`~rdv_core.wire.self_addrs`, one UDP probe socket each). On
loopback that was about 0.25 ms of each peer's 2-3 ms attempt (bench/connect.py, phase
"prepare"). A program that connects again and again (a service accepting one peer after
another, the benchmark) gets the same answers each time, so they are kept for
:data:`LOCAL_VIEW_TTL`. The first attempt of a process always asks.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Final

from rdv_core.client._uplinks import LocalPaths, plan_paths, uplinks_serve
from rdv_core.wire import Addr, AddrSpace, self_addrs

#: How long an answer is reused. A network change (a new Wi-Fi, a VPN coming up) is seen
#: by the attempts that start this much later; an attempt in between offers the old self
#: addresses, which costs at most those candidates (the observed address, from the
#: server, is always fresh). One second is shorter than any attempt that crosses a NAT.
LOCAL_VIEW_TTL: Final = 1.0

_paths: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[float, LocalPaths]] = {}
_self_ips: dict[AddrSpace, tuple[float, tuple[Addr, ...]]] = {}


def local_paths(
    interfaces: Sequence[str], sources: Sequence[str], spaces: AddrSpace = AddrSpace.ALL
) -> LocalPaths:
    """:func:`~rdv_core.client._uplinks.plan_paths`, reused for :data:`LOCAL_VIEW_TTL`.

    An attempt whose ``spaces`` leave out every space an uplink's address can be in (only
    loopback or link-local enabled, or ``NONE``) gets no extra paths without asking: they
    would add no self address, no dial and no mapping question (docs/LAB-NOTES.md section
    13). The system calls are a fresh process's costliest step before its request, about
    0.6 ms on this machine (LAB-NOTES 10). ``--interface``/``--source`` are always checked.

    Raises:
        ValueError: see :func:`~rdv_core.client._uplinks.plan_paths` (never cached).
    """
    if not interfaces and not sources and not uplinks_serve(spaces):
        return LocalPaths()
    key = (tuple(interfaces), tuple(sources))
    now = time.monotonic()
    hit = _paths.get(key)
    if hit is not None and now - hit[0] < LOCAL_VIEW_TTL:
        return hit[1]
    paths = plan_paths(interfaces, sources)
    if len(_paths) > 16:  # a program trying many --interface values: keep it small
        _paths.clear()
    _paths[key] = (now, paths)
    return paths


def default_self_addrs(spaces: AddrSpace, port: int) -> list[Addr]:
    """:func:`~rdv_core.wire.self_addrs` on ``port``, its probes reused for the TTL."""
    now = time.monotonic()
    hit = _self_ips.get(spaces)
    if hit is None or now - hit[0] >= LOCAL_VIEW_TTL:
        hit = (now, tuple(self_addrs(spaces, 0)))
        _self_ips[spaces] = hit
    # Same port on all: the wire order (by IP, then port) is unchanged.
    return [Addr(a.ip, port) for a in hit[1]]
