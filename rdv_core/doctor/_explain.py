"""A report in plain words: the text of ``rdv doctor`` and the TUI's explanations.

Read in five seconds: one summary sentence first (what this network means for rdv), then one
line per finding (``label  value: reason``), then one line per server.
"""

from __future__ import annotations

from typing import Final

from rdv_core.client._probe_http import CLOSED_FIRST
from rdv_core.client._response import NOT_HTTP
from rdv_core.client._server_conn import NOT_TLS, SPEAKS_TLS
from rdv_core.doctor._main_conn import NO_RDV_PATH, NOT_RDV
from rdv_core.doctor._report import Finding, Report
from rdv_core.doctor._text import pack, wrap

LABELS: Final = {
    "nat": "NAT",
    "mapping": "mapping",
    "port_preserved": "port kept",
    "allocation": "allocation",
    "filtering": "filtering",
    "hairpin": "hairpin",
    "upgrade": "Upgrade",
    "ipv6": "IPv6",
    "nat6": "NAT66",
    "filtering6": "IPv6 filter",
    "loss": "loss",
    "proxy": "proxy",
}

#: What each value means for a direct conn, in plain words (the TUI shows these).
MEANINGS: Final[dict[tuple[str, object], str]] = {
    ("nat", True): "a router translates your address: peers see the router's address, not yours",
    ("nat", False): "no NAT: peers can reach your own address",
    ("mapping", "endpoint-independent"): "your router keeps one public port for every "
    "destination, so the peer can aim its SYNs at the port the server saw",
    ("mapping", "port-dependent"): "your router picks a new public port per destination port: "
    "the port the server saw is not the one the peer would need",
    ("mapping", "address-dependent"): "your router picks a new public port per destination "
    "address: the port the server saw is not the one the peer would need",
    ("mapping", "address-and-port-dependent"): "your router picks a new public port for every "
    "destination (a symmetric NAT): a peer cannot know where to send its SYN",
    ("mapping", "none"): "no translation at all",
    ("port_preserved", True): "the public port is your local port",
    ("port_preserved", False): "the router renumbers ports (rdv uses the port the server saw)",
    ("allocation", "preserved"): "new conns keep their local port number",
    ("allocation", "sequential"): "new conns get the next public port: predictable",
    ("allocation", "random"): "new conns get random public ports: unpredictable",
    ("filtering", "open"): "unsolicited SYNs reach you: peers can simply dial in",
    ("filtering", "drop"): "unsolicited SYNs are silently dropped: a simultaneous open still "
    "works, because your own SYN opens the way",
    ("filtering", "rst"): "unsolicited SYNs are answered with a reset, which can erase the "
    "peer's fresh mapping: a simultaneous open becomes a timing lottery",
    ("filtering", "icmp"): "unsolicited SYNs get an ICMP error: like a reset, a timing lottery",
    ("filtering", "intercepted"): "something between you and the internet answers SYNs for you",
    ("hairpin", True): "you can reach your own public address (peers behind the same router "
    "can use it)",
    ("hairpin", False): "you cannot reach your own public address: peers behind the same "
    "router must use LAN addresses",
    ("upgrade", True): "the Upgrade header rdv/1 needs gets through",
    ("upgrade", False): "a proxy strips the Upgrade header: rdv/1 requests will fail",
    ("ipv6", True): "IPv6 works: an IPv6 candidate can win",
    ("ipv6", False): "IPv6 does not reach the server",
    ("nat6", False): "IPv6 without NAT, as it should be",
    ("nat6", True): "IPv6 is translated too",
    ("filtering6", "open"): "unsolicited IPv6 SYNs reach you: peers can dial your IPv6 address",
    ("filtering6", "drop"): "your IPv6 firewall silently drops unsolicited SYNs: an IPv6 "
    "simultaneous open still works, because your own SYN opens the way",
    ("filtering6", "rst"): "your IPv6 firewall answers unsolicited SYNs with a reset: an IPv6 "
    "simultaneous open becomes a timing lottery",
    ("filtering6", "icmp"): "your IPv6 firewall answers unsolicited SYNs with an ICMPv6 error: "
    "an IPv6 simultaneous open becomes a timing lottery",
    ("filtering6", "intercepted"): "something answers IPv6 SYNs for you",
    ("loss", True): "packets get lost: a lost SYN costs a second, and the relay may win",
    ("loss", False): "no sign of loss",
    ("proxy", "none"): "the server is reached directly, as peers are",
    ("proxy", "tunnel"): "the server (and so the relay) is reached through an HTTP proxy's "
    "CONNECT tunnel; direct dials to peers do not use it",
    ("proxy", "failed"): "a proxy is configured but gives no tunnel to the server",
}


def _word(value: object) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if value is None:
        return "not measured"
    return str(value)


def explain(name: str, finding: Finding) -> str:
    """The meaning of a finding in plain words (its reason when not measured)."""
    if finding.value is None:
        return f"not measured: {finding.reason}"
    return MEANINGS.get((name, finding.value), finding.reason)


def summary(report: Report) -> str:
    """What this network means for direct TCP: one sentence per uplink (PROTOCOL 15.8), the
    default route's first, so that the LTE uplink's open path is told beside the wifi's."""
    if not report.uplinks:
        return _summary(report)
    return " ".join(f"{path.uplink or 'Default route'}: {_summary(path)}" for path in report.paths)


def _summary(report: Report) -> str:
    """One sentence: what one path means for direct TCP."""
    nat, mapping, filtering = (
        report.value("nat"),
        report.value("mapping"),
        report.value("filtering"),
    )
    proxied = _proxy_summary(report)
    if proxied is not None:
        return proxied
    if not report.reached:
        return _unreached_summary(report)
    wrong_path = next((x for x in report.servers if NO_RDV_PATH in x.http.reason), None)
    if wrong_path is not None and not report.answered:
        return (
            f"The rdv server answers, but {wrong_path.http.reason}; rdv dial with "
            f"{wrong_path.url} fails, the findings below still hold."
        )
    if report.value("upgrade") is False:
        return (
            "A proxy between you and the server strips the Upgrade header: rdv/1 cannot work "
            "through it."
        )
    if nat is None:
        failed_tls = next((x.tls for x in report.servers if x.tls.value is False), None)
        if failed_tls is not None and not any(x.tls.value is True for x in report.servers):
            if NOT_TLS in failed_tls.reason or SPEAKS_TLS in failed_tls.reason:
                # the URL's scheme is wrong, not a certificate
                return f"TCP reached the server, but {failed_tls.reason}; nothing was measured."
            advice = "; check the server's certificate, or the trusted CAs here (SSL_CERT_FILE)"
            if "SSL_CERT_FILE" in failed_tls.reason:  # a refused certificate says it already
                advice = ""
            return (
                f"TCP reached the server but TLS failed ({failed_tls.reason}): nothing was "
                f"measured{advice}."
            )
        silent = next((x for x in report.servers if x.http.value is False), None)
        if silent is not None and not report.answered:
            # It took the conn and said nothing: not an rdv server, or something between us
            # (a proxy, a middlebox) holding the conn. "Could not tell us our address" read
            # as if it had answered. A TLS server closes a plain-HTTP conn without a byte.
            if NOT_HTTP in silent.http.reason or NOT_RDV in silent.http.reason:
                # another service's banner or web page: the wrong port
                return f"TCP reached the server, but nothing was measured: {silent.http.reason}"
            tls = silent.url.startswith("http:") and CLOSED_FIRST in silent.http.reason
            return (
                f"TCP reached the server but it answered nothing ({silent.http.reason}): is it "
                f"an rdv server{' (over TLS? then use https://)' if tls else ''}, or does "
                "something between us hold the conn?"
            )
        return "The server could not tell us our address: nothing about NAT was measured."
    if nat is False:
        if filtering == "open":
            return "No NAT and no filter: peers can dial you directly."
        # A host on a public address behind its own firewall (the lab's host-fw-*): the
        # summary said the same for a firewall that drops as for one that resets, and the
        # prediction calls the latter a timing lottery.
        if filtering == "drop":
            return (
                "No NAT; a firewall here drops unsolicited SYNs: a TCP simultaneous open still "
                "goes direct, because your own SYN opens the way."
            )
        if filtering in ("rst", "icmp"):
            return (
                "No NAT, but a firewall here rejects unsolicited SYNs: direct is possible, a "
                "timing lottery that rdv's quick redials usually win; a rule that drops them "
                "instead makes it sure."
            )
        return "No NAT: direct conns work with peers that can reach you."
    if mapping in ("port-dependent", "address-dependent", "address-and-port-dependent"):
        if report.value("allocation") == "sequential":
            return (
                "Your router gives every destination a new port, but the next one in line "
                "(sequential): run rdv here with --predict-ports and a peer can aim at it and "
                "go direct."
            )
        return (
            "Your router gives every destination a new port (symmetric mapping): direct TCP works "
            "only with peers that accept unsolicited SYNs; otherwise the relay is the answer."
        )
    if mapping == "endpoint-independent":
        if filtering == "drop":
            return (
                "Your router keeps ports and drops early SYNs: a TCP simultaneous open with a "
                "similar peer should go direct."
            )
        if filtering in ("rst", "icmp"):
            how = "resets" if filtering == "rst" else "rejects (ICMP)"
            return (
                f"Your router keeps ports but {how} early SYNs: direct is possible, a timing "
                "lottery that rdv's quick redials usually win."
            )
        if filtering == "open":
            return "Your router keeps ports and lets SYNs in: peers can reach you directly."
        return (
            "Your router keeps ports; filtering was not measured (the server has no --dial-back)."
        )
    return "Behind a NAT; its mapping was not measured (start the server with --probe-port)."


def _unreached_summary(report: Report) -> str:
    """The sentence when no server answered: say so, with the first failure's reason.

    Without it the summary blamed the server ("could not tell us our address") for a URL
    that nothing listens on, or a server that is down.
    """
    failures = [
        finding.reason
        for server in report.servers
        for finding in (server.tcp4, server.tcp6, server.tls)
        if finding.value is False
    ]
    # A name that does not resolve leaves no failure, only "not measured" with the resolver's
    # error in its reason: that is then the most useful thing to show.
    reasons = failures or [s.tcp4.reason for s in report.servers if s.tcp4.reason]
    why = f" ({reasons[0]})" if reasons else ""
    return (
        f"No rdv server could be reached{why}: nothing was measured; check the URL and that the "
        "server is running."
    )


def _proxy_summary(report: Report) -> str | None:
    """The sentence for a network where the proxy decides (section 15.7), else None."""
    proxy = report.value("proxy")
    direct = report.reached and not report.proxy_only
    if proxy == "failed":
        if direct:
            return (
                "The configured proxy gives no tunnel to the server, but direct TCP works: "
                "run with --proxy none."
            )
        return "The configured proxy gives no tunnel to the server, and direct TCP fails too."
    if report.proxy_only:
        return (
            "Only the HTTP proxy gets out: direct TCP to the server fails, so direct dials to "
            "peers are blocked too; rdv works over the relay, through the proxy's tunnel."
        )
    return None


def render_text(report: Report, width: int | None = None) -> str:
    """The whole report as text for a terminal (no colours).

    ``width``: wrap to that many columns, each finding's reason under its own column and a
    server's fields whole (``rdv doctor`` passes the terminal's, 80 into a pipe); None: one
    line each.
    """
    count = len(report.servers)
    head = [
        f"{count} server" + ("" if count == 1 else "s"),
        f"port {report.local_port}",
        # A run against a near server takes tens of ms: "0.0 s" read as if nothing ran.
        f"{report.duration_ms:.0f} ms"
        if report.duration_ms < 1000
        else f"{report.duration_ms / 1000:.1f} s",
    ]
    lines = [
        *pack(head, ", ", width, "rdv doctor: ", " " * 12),
        *wrap(summary(report), width, "", ""),
        "",
    ]
    for name, label in LABELS.items():
        finding = report.finding(name)
        value = _word(finding.value)
        if name == "allocation" and report.allocation_delta is not None:
            value += f" ({report.allocation_delta:+d})"
        lines += wrap(f"{value}: {finding.reason}", width, f"  {label:<11} ", " " * 14)
    lines.append("")
    for server in report.servers:
        rtt = f"{server.rtt_ms:.1f} ms" if server.rtt_ms is not None else "-"
        probes = ",".join(str(p) for p in server.probe_ports) or "-"
        fields = [
            f"v4 {_word(server.tcp4.value)}",
            f"v6 {_word(server.tcp6.value)}",
            f"tls {_word(server.tls.value)}",
            f"rtt {rtt}",
            f"observed {server.observed or '-'}",
            f"probe ports {probes}",
            f"dial-back {_word(server.dial_back.value)}",
        ]
        if server.proxy.value != "none":
            fields.append(f"proxy {_word(server.proxy.value)}")
        lines += pack([server.url, *fields], "  ", width, "  ", " " * 4)
    spaces = [f"{space} {' '.join(addrs)}" for space, addrs in report.local_addrs.items()]
    if spaces:
        lines += pack(spaces, "; ", width, "  local: ", " " * 9)
    lines += uplink_lines(report, width)
    return "\n".join(lines)


def uplink_lines(report: Report, width: int | None = None) -> list[str]:
    """Each uplink's findings side by side (docs/PROTOCOL.md 15.8); none for one path."""
    if not report.uplinks:
        return []
    lines = ["", "  uplinks (the race dials from each):"]
    for path in report.paths:
        reached = sum(1 for s in path.servers if s.tcp4.value is True or s.tcp6.value is True)
        observed = next((s.observed for s in path.servers if s.observed), None)
        fields = [
            f"NAT {_word(path.value('nat'))}",
            f"mapping {_word(path.value('mapping'))}",
            f"filtering {_word(path.value('filtering'))}",
            f"hairpin {_word(path.value('hairpin'))}",
            f"observed {observed or '-'}",
            f"servers reached {reached}/{len(path.servers)}",
        ]
        name = path.uplink or "default route"
        lines += pack([name, *fields], "  ", width, "    ", " " * 6)
    return lines
