"""``rdv doctor`` inside the lab: the server it needs, how to run it, what each preset must show.

The lab is the doctor's oracle (docs/LAB-NOTES.md section 12): every router was built with a
known NAT and firewall, so the doctor's mapping, filtering and hairpin findings can be checked
against the spec. The lab's server gets what the doctor needs: a probe port, dial-back and a
second address (``203.0.113.9``) so that address-dependent mapping shows.

This module only runs the rdv command it is given (``rdv doctor --format json``) and reads its
JSON as plain data: the lab layer knows nothing of :mod:`rdv_core.doctor`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from rdv_core.lab._builder import SERVER4, SERVER6, SERVER_PORT
from rdv_core.lab._lab import Lab
from rdv_core.lab._netns import LabError
from rdv_core.lab._spec import Firewall, HostSpec, LabSpec, NatKind, RouterSpec
from rdv_core.lab._topologies import behind_nat64, nat64_address

#: The server's second IPv4 address inside the lab.
DOCTOR_ALT4: Final = "203.0.113.9"
#: The server's probe port (``rdv serve --probe-port``).
DOCTOR_PROBE_PORT: Final = SERVER_PORT + 1

_MAPPING: Final = {
    NatKind.PORT_PRESERVING: "endpoint-independent",
    NatKind.RANDOM_PORT: "address-and-port-dependent",
    NatKind.SEQUENTIAL: "address-and-port-dependent",
    NatKind.NONE: "none",
    # tayga, then a port-keeping masquerade of its pool (docs/LAB-NOTES.md section 13).
    NatKind.NAT64: "endpoint-independent",
}
#: By the firewall's value, so that kinds added later (``reject-icmp``) need no import here.
_FILTERING: Final = {
    Firewall.DROP.value: "drop",
    Firewall.REJECT.value: "rst",
    # No rule: the router's own stack answers a SYN for a port nobody listens on with RST.
    Firewall.NONE.value: "rst",
    "reject-icmp": "icmp",
}
_ALLOCATION: Final = {
    NatKind.PORT_PRESERVING: "preserved",
    NatKind.RANDOM_PORT: "random",
    NatKind.SEQUENTIAL: "sequential",
    NatKind.NONE: "preserved",
    NatKind.NAT64: "preserved",
}


#: Not a preset (the matrix keeps its twelve): A's router allocates ports sequentially, B's
#: keeps them and drops. Every other tool relays here; port prediction goes direct.
SEQUENTIAL_A: Final = LabSpec(
    name="sequential-a",
    summary="A's router gives each new conn the next port, B port-preserving + drop firewall",
    routers=(
        RouterSpec("rtrA", NatKind.SEQUENTIAL, Firewall.DROP),
        RouterSpec("rtrB", NatKind.PORT_PRESERVING, Firewall.DROP),
    ),
    hosts=(HostSpec("cliA", "rtrA"), HostSpec("cliB", "rtrB")),
    expect="relay",
    why="A's mapping changes with every destination, like symmetric-a, but predictably: "
    "B can aim at the ports A's next conns will get",
)


def start_doctor_server(lab: Lab) -> None:
    """Give ``srv`` its second address and start the server with probe port and dial-back.

    Call it before anything else starts the lab's server (the races then use this one).
    """
    lab.run("srv", ["ip", "address", "add", f"{DOCTOR_ALT4}/24", "dev", "eth0"])
    lab.start_server(
        listen=f":{SERVER_PORT}",
        extra_args=("--probe-port", str(DOCTOR_PROBE_PORT), "--dial-back"),
    )


def doctor_urls(spec: LabSpec, *, nat64: bool = False) -> list[str]:
    """The URLs the doctor is given: both IPv4 addresses, and IPv6 when the lab has it.

    ``nat64``: for a host on an IPv6-only LAN, the IPv4 addresses as DNS64 would give them
    (inside the NAT64 prefix), as the race's URL is (``LabPlan.server_url_for``).
    """
    if nat64:
        return [f"http://[{nat64_address(ip)}]:{SERVER_PORT}" for ip in (SERVER4, DOCTOR_ALT4)]
    urls = [f"http://{SERVER4}:{SERVER_PORT}", f"http://{DOCTOR_ALT4}:{SERVER_PORT}"]
    if spec.ipv6:
        urls.append(f"http://[{SERVER6}]:{SERVER_PORT}")
    return urls


def host_doctor_urls(lab: Lab, role: str) -> list[str]:
    """:func:`doctor_urls` as host ``role`` reaches the server."""
    return doctor_urls(lab.spec, nat64=behind_nat64(lab.plan, lab.spec.host(role)))


def run_doctor_command(lab: Lab, role: str, timeout: float = 30.0) -> dict[str, Any]:
    """Run ``rdv doctor --format json`` in ``role``'s namespace; its report as a dict.

    Raises:
        LabError: the command failed or printed no JSON.
    """
    # The host's proxy too, as its race gets it (proxy-only: the only way out).
    urls = host_doctor_urls(lab, role)
    argv = lab.rdv_argv("doctor", "--format", "json", *lab.proxy_args(role), *urls)
    done = lab.run(role, argv, check=False)
    try:
        report = json.loads(done.stdout)
    except ValueError:
        raise LabError(f"rdv doctor in {role} printed no JSON: {done.stderr[-500:]}") from None
    if not isinstance(report, dict):
        raise LabError(f"rdv doctor in {role} printed no report")
    return report


def built_with(spec: LabSpec, host: str) -> dict[str, object]:
    """What the doctor must report on ``host``: the values the preset was built with.

    ``None`` means "not measured" (hairpinning needs a NAT). Linux NAT does no hairpinning
    (docs/LAB-NOTES.md section 4).
    """
    machine = spec.host(host)
    router_name = machine.router
    # A host's own firewall answers the dial-back before any router could (host-fw-*).
    own = None if machine.firewall == Firewall.NONE else _FILTERING.get(machine.firewall.value)
    if router_name is None:
        return {
            "nat": False,
            "mapping": "none",
            "filtering": own or "open",
            "hairpin": None,
            "allocation": "preserved",
            "filtering6": (own or "open") if spec.ipv6 else None,
        }
    router = spec.router(router_name)
    if machine.proxy is not None and router.allow_out is not None:
        # Only the proxy gets out: no direct conn reaches the server, so nothing of the
        # router can be measured; the proxy's tunnel is the finding (section 15.7).
        return {name: None for name in _DIRECT_FINDINGS} | {"proxy": "tunnel"}
    nat = router.nat != NatKind.NONE
    return {
        "nat": nat,
        "mapping": _MAPPING[router.nat],
        "filtering": own or _FILTERING.get(router.firewall.value),
        "hairpin": False if nat else None,
        "allocation": _ALLOCATION[router.nat],
        "filtering6": (own or _FILTERING6[router.firewall.value]) if spec.ipv6 else None,
    }


#: The IPv6 side of a router's firewall (its rules sit in a ``table inet``: both families).
#: No rule is ``open`` there: IPv6 is routed, not translated, so the SYN reaches the host.
_FILTERING6: Final = {**_FILTERING, Firewall.NONE.value: "open"}


#: The findings :func:`built_with` checks that need a direct conn to the server.
_DIRECT_FINDINGS: Final = ("nat", "mapping", "filtering", "hairpin", "allocation", "filtering6")


def mismatches(spec: LabSpec, host: str, report: dict[str, Any]) -> list[str]:
    """Where ``report`` (a doctor report as JSON) disagrees with :func:`built_with`."""
    out = []
    for name, want in built_with(spec, host).items():
        finding = report.get(name)
        got = finding.get("value") if isinstance(finding, dict) else "missing"
        if got != want:
            reason = finding.get("reason") if isinstance(finding, dict) else ""
            out.append(f"{host} {name}: built with {want}, doctor says {got} ({reason})")
    return out


def same_public_address(spec: LabSpec, hosts: Sequence[str]) -> bool:
    """True when the hosts share a router (one public address: the server rate-limits
    dial-backs per address, so their doctors run one after the other)."""
    routers = [spec.host(h).router for h in hosts]
    return len(set(routers)) < len(routers) and None not in routers
