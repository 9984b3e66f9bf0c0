"""The daemons some labs need, started in their namespaces once the lab is built.

docs/LAB-NOTES.md section 13: a real HTTP proxy (tinyproxy), a real NAT64 (tayga, on a
TUN device) and a user-space VPN tunnel (two socat processes joining TUN devices over
UDP). Each runs as a process of the lab (:meth:`Lab.spawn`), so teardown kills it with the
rest, and each is waited for until it works: a lab is ready when :meth:`Lab.build` returns.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from rdv_core.lab import _netns as netns
from rdv_core.lab._environments import LAB_NETWORKS, PROXY_PORT, tinyproxy_config
from rdv_core.lab._netns import LabError
from rdv_core.lab._spec import HostSpec, NatKind
from rdv_core.lab._topologies import (
    NAT64_POOL,
    NAT64_PREFIX,
    NAT64_TAYGA4,
    NAT64_TAYGA6,
    VPN_CLIENT_TUN,
    VPN_MTU,
    VPN_PORT,
    VPN_SERVER_TUN,
)

if TYPE_CHECKING:
    from rdv_core.lab._lab import Lab


def start_services(lab: Lab) -> None:
    """Start every daemon the lab's spec asks for, in dependency order.

    Raises:
        LabError: a daemon is missing (with the Debian package to install) or did not start.
    """
    for router in lab.spec.routers:
        if router.nat == NatKind.NAT64:
            _start_tayga(lab, router.name)
    for host in lab.spec.hosts:
        if host.runs_proxy:
            _start_tinyproxy(lab, host.name)
    for host in lab.spec.hosts:
        if host.vpn is not None:
            _start_vpn(lab, host)


def _binary(lab: Lab, name: str, package: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        raise LabError(f"lab {lab.spec.name} needs {name} (apt-get install {package})")
    return found


def _spawn(lab: Lab, role: str, tag: str, argv: list[str]) -> subprocess.Popen[bytes]:
    return lab.spawn(
        role,
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=lab.log_file(f"{role}-{tag}.stderr"),
    )


def _wait(
    lab: Lab, role: str, tag: str, proc: subprocess.Popen[bytes], ready: Callable[[], bool]
) -> None:
    """Poll ``ready`` until it is true; fail with the daemon's stderr if it exits or hangs."""
    from rdv_core.lab._lab import tail

    deadline = time.monotonic() + 5.0
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            stderr = tail(os.path.join(lab.workdir, f"{role}-{tag}.stderr"))
            raise LabError(f"{tag} in {role} did not start: {stderr or 'no output'}")
        time.sleep(0.02)


def _start_tinyproxy(lab: Lab, role: str) -> None:
    binary = _binary(lab, "tinyproxy", "tinyproxy")
    addr = lab.plan.host_addrs[role].v4
    conf = os.path.join(lab.workdir, f"{role}-tinyproxy.conf")
    log_path = os.path.join(lab.workdir, f"{role}-tinyproxy.log")
    with open(conf, "w") as f:
        f.write(tinyproxy_config(addr, log_path, LAB_NETWORKS))
    proc = _spawn(lab, role, "tinyproxy", [binary, "-d", "-c", conf])

    def ready() -> bool:
        try:
            lab.connect(role, (addr, PROXY_PORT), timeout=0.5).close()
        except OSError:
            return False
        return True

    _wait(lab, role, "tinyproxy", proc, ready)


def _start_tayga(lab: Lab, role: str) -> None:
    """tayga on a persistent TUN ``nat64``: the router's IPv6 LAN reaches IPv4 via 64:ff9b::/96."""
    binary = _binary(lab, "tayga", "tayga")
    ns = lab.plan.ns(role)
    data = os.path.join(lab.workdir, f"{role}-tayga")
    os.makedirs(data, exist_ok=True)
    conf = os.path.join(lab.workdir, f"{role}-tayga.conf")
    with open(conf, "w") as f:
        f.write(
            "tun-device nat64\n"
            f"ipv4-addr {NAT64_TAYGA4}\n"
            f"ipv6-addr {NAT64_TAYGA6}\n"
            f"prefix {NAT64_PREFIX}\n"
            f"dynamic-pool {NAT64_POOL}\n"
            f"data-dir {data}\n"
        )
    netns.run([binary, "--config", conf, "--mktun"], ns=ns)
    netns.run(["ip", "link", "set", "nat64", "up"], ns=ns)
    proc = _spawn(lab, role, "tayga", [binary, "--config", conf, "--nodetach"])

    def ready() -> bool:
        links = netns.run(["ip", "-o", "link", "show", "nat64"], ns=ns, check=False).stdout
        return "LOWER_UP" in links

    _wait(lab, role, "tayga", proc, ready)
    # Routes only once tayga holds the TUN: IPv6 drops what was configured on a device
    # while it had no carrier, when the carrier comes.
    netns.run(
        ["ip", "-batch", "-"],
        ns=ns,
        input_text=f"route add {NAT64_POOL} dev nat64\nroute add {NAT64_PREFIX} dev nat64\n",
    )


def _start_vpn(lab: Lab, host: HostSpec) -> None:
    """Join the host's ``tun0`` to its concentrator's over UDP, then route through it."""
    binary = _binary(lab, "socat", "socat")
    assert host.vpn is not None and host.router is not None
    server = lab.plan.host_addrs[host.vpn].v4
    tun = "tun0"
    tun_opts = f"tun-name={tun},tun-type=tun,iff-no-pi,iff-up"
    server_proc = _spawn(
        lab,
        host.vpn,
        "vpn",
        [
            binary,
            # TUN first: socat opens its addresses in order, and UDP-LISTEN blocks until
            # the client's first datagram.
            f"TUN:{VPN_SERVER_TUN}/24,{tun_opts}",
            f"UDP-LISTEN:{VPN_PORT},bind={server}",
        ],
    )
    _wait(lab, host.vpn, "vpn", server_proc, lambda: _link_up(lab, host.vpn or "", tun))
    client_proc = _spawn(
        lab,
        host.name,
        "vpn",
        [binary, f"UDP:{server}:{VPN_PORT}", f"TUN:{VPN_CLIENT_TUN}/24,{tun_opts}"],
    )
    _wait(lab, host.name, "vpn", client_proc, lambda: _link_up(lab, host.name, tun))
    gw = lab.plan.router_lan[host.router].v4
    for role in (host.vpn, host.name):
        netns.run(["ip", "link", "set", tun, "mtu", str(VPN_MTU)], ns=lab.plan.ns(role))
    # The tunnel's own UDP keeps the LAN route; everything else goes through the tunnel,
    # with the LAN's default kept as a fallback of a higher metric.
    netns.run(
        ["ip", "-batch", "-"],
        ns=lab.plan.ns(host.name),
        input_text=(
            f"route add {server}/32 via {gw}\n"
            "route del default\n"
            f"route add default via {VPN_SERVER_TUN} dev {tun}\n"
            f"route add default via {gw} metric 500\n"
        ),
    )


def _link_up(lab: Lab, role: str, dev: str) -> bool:
    links = netns.run(["ip", "-o", "link", "show", dev], ns=lab.plan.ns(role), check=False)
    return links.returncode == 0 and ",UP" in links.stdout
