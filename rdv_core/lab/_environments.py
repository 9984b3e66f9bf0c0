"""The networks beyond NAT: host firewalls, proxy-only egress, and the proxy itself.

docs/LAB-NOTES.md section 13. Each feature is an extra nft table (so it never changes the
router's NAT and firewall table of :func:`rdv_core.lab._builder.nft_ruleset`) or a real
daemon started in its namespace once the lab is built (tinyproxy).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from rdv_core.lab._spec import Firewall, HostSpec, RouterSpec

#: The port every lab proxy listens on (squid's and tinyproxy's customary 3128).
PROXY_PORT: Final = 3128
#: Who may use a lab proxy: the lab's LANs and its internet, nothing else.
LAB_NETWORKS: Final = ("10.0.0.0/8", "203.0.113.0/24", "fd00::/8", "2001:db8::/32")


def host_ruleset(host: HostSpec) -> str:
    """The nft table of a host's own firewall for inbound TCP, or ``""`` for none.

    Stateful like a laptop's: what belongs to a connection the host started passes (the
    peer's SYN of a simultaneous open included: conntrack sees it in the reply direction of
    the host's own SYN), every other SYN is dropped or reset.
    """
    if host.firewall == Firewall.NONE:
        return ""
    verdict = "reject with tcp reset" if host.firewall == Firewall.REJECT else "drop"
    return "\n".join(
        [
            "table inet rdvhost {",
            "\tchain inbound {",
            "\t\ttype filter hook input priority filter; policy accept;",
            '\t\tiifname "lo" accept',
            "\t\tct state established,related accept",
            "\t\tmeta l4proto ipv6-icmp accept",
            f"\t\tmeta l4proto tcp {verdict}",
            "\t}",
            "}",
            "",
        ]
    )


def egress_ruleset(router: RouterSpec, allowed: list[str]) -> str:
    """The nft table that lets the router's LAN reach only ``allowed`` IPs, or ``""``.

    ``allowed`` holds the addresses of the boxes named in ``router.allow_out``.
    """
    if router.allow_out is None:
        return ""
    v4 = [a for a in allowed if ":" not in a]
    v6 = [a for a in allowed if ":" in a]
    lines = [
        "table inet rdvegress {",
        "\tchain lan_out {",
        # Before the NAT/firewall table's forward chain; replies (from wan) are not ours.
        "\t\ttype filter hook forward priority filter - 10; policy accept;",
        '\t\tiifname != "lan" accept',
    ]
    if v4:
        lines.append(f"\t\tip daddr {{ {', '.join(v4)} }} accept")
    if v6:
        lines.append(f"\t\tip6 daddr {{ {', '.join(v6)} }} accept")
    lines += ["\t\tdrop", "\t}", "}", ""]
    return "\n".join(lines)


def tinyproxy_config(listen: str, log_path: str, allow: Sequence[str]) -> str:
    """A tinyproxy config: CONNECT to any port, from the lab's networks only."""
    lines = [
        f"Port {PROXY_PORT}",
        f"Listen {listen}",
        "Timeout 120",
        "MaxClients 50",
        f'LogFile "{log_path}"',
        "LogLevel Connect",
        'ViaProxyName "labproxy"',
        *(f"Allow {net}" for net in allow),
    ]
    return "\n".join(lines) + "\n"
