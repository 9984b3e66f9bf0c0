"""Capability probe: can this machine build labs, and how will it impair links?

Rather than failing deep inside a build with an obscure ``RTNETLINK answers: Operation not
permitted``, the probe tries each needed piece once, in a throwaway namespace, and says in
plain words what is missing. Tests turn :attr:`Capabilities.reason` into their skip reason.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

from rdv_core.lab import _netns as netns
from rdv_core.lab._builder import QUEUE_NUM, queue_rules
from rdv_core.lab._nfqueue import open_queue


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the probe found.

    Attributes:
        problems: Human-readable reasons why labs cannot be built here (empty when they can).
        root: Running as root.
        userns: Unprivileged user namespaces work (the rootless route, via ``rdv lab``).
        netem: The kernel has ``sch_netem``.
        nfqueue: iptables' NFQUEUE target and an NFQUEUE netlink bind work.
        notes: Non-fatal remarks (what impairment method will be used, ...).
    """

    problems: tuple[str, ...]
    root: bool
    userns: bool
    netem: bool
    nfqueue: bool
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when labs can be built in this process."""
        return not self.problems

    @property
    def can_impair(self) -> bool:
        """True when delay/loss presets can run (netem or the NFQUEUE delayer)."""
        return self.netem or self.nfqueue

    @property
    def reason(self) -> str:
        """All problems in one sentence (empty when none)."""
        return "; ".join(self.problems)

    def describe(self) -> str:
        """A short multi-line report for humans."""
        lines = ["lab capability probe:"]
        if self.ok:
            lines.append("  OK: network namespaces, veth, bridge, nftables NAT and firewall")
        lines += [f"  missing: {p}" for p in self.problems]
        impair = "netem" if self.netem else "NFQUEUE delayer" if self.nfqueue else "none"
        lines.append(f"  impairment (delay/loss): {impair}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _userns_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    try:
        proc = subprocess.run(
            ["unshare", "--user", "--map-root-user", "--net", "--mount", "true"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


@functools.cache
def probe() -> Capabilities:
    """Probe once per process (cached)."""
    if sys.platform != "linux":
        return Capabilities(
            (f"network namespaces need Linux (this is {sys.platform})",), False, False, False, False
        )
    problems: list[str] = []
    notes: list[str] = []
    missing = [tool for tool in ("ip", "nft") if shutil.which(tool) is None]
    if missing:
        problems.append(
            f"{' and '.join(missing)} not found: install iproute2 and nftables "
            "(Debian: apt-get install iproute2 nftables iptables)"
        )
    root = os.geteuid() == 0
    userns = False
    if not root:
        userns = _userns_works()
        if userns:
            problems.append(
                "not root: run `rdv lab ...` (it re-executes itself in a user namespace); "
                "the natlab tests need root"
            )
        else:
            problems.append(
                "not root, and unprivileged user namespaces are disabled "
                "(sysctl kernel.unprivileged_userns_clone / user.max_user_namespaces)"
            )
    if problems:
        return Capabilities(tuple(problems), root, userns, False, False, tuple(notes))
    return _probe_kernel(root, userns)


def _probe_kernel(root: bool, userns: bool) -> Capabilities:
    problems: list[str] = []
    notes: list[str] = []
    name = netns.lab_ns_name(os.getpid(), 0, "probe")
    netem = nfqueue = False
    try:
        netns.run(["ip", "netns", "add", name])
    except netns.LabError as exc:
        return Capabilities(
            (f"cannot create a network namespace: {exc}",), root, userns, False, False
        )
    try:
        try:
            netns.run(
                ["ip", "-n", name, "-batch", "-"],
                input_text="link add name b0 type bridge\n"
                "link add name v0 type veth peer name v1\nlink set v0 master b0\n",
            )
        except netns.LabError as exc:
            problems.append(f"veth/bridge links do not work: {exc}")
        try:
            netns.run(
                ["nft", "-f", "-"],
                ns=name,
                input_text="table inet probe {\n"
                "\tchain post {\n"
                "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
                '\t\toifname "v0" masquerade random,fully-random\n'
                "\t}\n"
                "\tchain filt {\n"
                "\t\ttype filter hook input priority filter; policy accept;\n"
                "\t\tct state established,related accept\n"
                "\t\tmeta l4proto tcp reject with tcp reset\n"
                "\t}\n"
                "}\n",
            )
        except netns.LabError as exc:
            problems.append(f"nftables NAT/conntrack/reject is not usable: {exc}")
        if shutil.which("tc") is not None:
            with contextlib.suppress(netns.LabError):
                netns.run(
                    ["tc", "qdisc", "add", "dev", "v0", "root", "netem", "delay", "1ms"], ns=name
                )
                netem = True
        if shutil.which("iptables-restore") is None:
            notes.append(
                "iptables-restore not found: no NFQUEUE delayer (apt-get install iptables)"
            )
        else:
            try:
                for command, script in queue_rules(frozenset({4})).items():
                    netns.run([command], ns=name, input_text=script)
                open_queue(name, QUEUE_NUM).close()
                nfqueue = True
            except netns.LabError as exc:
                notes.append(f"NFQUEUE delayer unavailable: {exc}")
        if not (netem or nfqueue):
            notes.append("delay/loss presets (delay25, loss20, dualstack-v4slow) cannot run")
        elif not netem:
            notes.append("sch_netem missing: delay/loss use the user-space NFQUEUE delayer")
    finally:
        with contextlib.suppress(netns.LabError):
            netns.run(["ip", "netns", "del", name])
    return Capabilities(tuple(problems), root, userns, netem, nfqueue, tuple(notes))
