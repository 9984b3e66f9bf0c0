"""Port prediction: where a sequential NAT will put our next conns (docs/PROTOCOL.md 14.6).

A NAT that gives every destination a new port defeats the race (the peer aims at the port
the server saw, which our conn to the peer never uses) unless the new ports are predictable.
When the doctor saw a ``sequential`` allocation with step d, and the last fresh conn got
public port p, the next conns get p+d, p+2d, ...: the first of them is the attempt's conn to
the server, the following ones our dials to the peer. So the peer should also dial
``p+2d .. p+(1+count)d``; they travel as extra self addrs, bounded by the rdv/1 limit of 9 self
addrs and, on the peer's side, by its SYN budget like any candidate.
"""

from __future__ import annotations

from typing import Final

from rdv_core.doctor._report import Report
from rdv_core.wire import Addr, AddrError

#: Predicted ports sent: our dials to the peer take about one new mapping per public
#: candidate of the peer, and other conns of the machine may slip in between.
PREDICTED_PORTS: Final = 4


def predicted_addrs(report: Report, count: int = PREDICTED_PORTS) -> list[Addr]:
    """The public addresses our next conns will most likely get; empty unless predictable."""
    varies = report.value("mapping") in (
        "port-dependent",
        "address-dependent",
        "address-and-port-dependent",
    )
    delta = report.allocation_delta
    if not varies or report.value("allocation") != "sequential" or not delta or not report.fresh:
        return []
    last = report.fresh[-1].observed
    if last is None:
        return []
    try:
        observed = Addr.parse(last)
    except AddrError:
        return []
    out = []
    for step in range(2, 2 + count):
        port = observed.port + delta * step
        if 0 < port <= 65535:
            out.append(Addr(observed.ip, port))
    return out
