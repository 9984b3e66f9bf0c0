"""Helpers shared by the natlab tests."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

import pytest

from rdv_core.lab import _netns as netns
from rdv_core.lab._probe import probe

if TYPE_CHECKING:
    from rdv_core.lab import Lab


def require_impairment() -> None:
    """Skip unless delay/loss can be applied here (netem or the NFQUEUE delayer)."""
    caps = probe()
    if not caps.can_impair:
        pytest.skip(f"no delay/loss on this machine: {'; '.join(caps.notes)}")


def _ancestry(pid: int) -> set[int]:
    """``pid`` and its parents up to init (empty for a process that is gone)."""
    seen: set[int] = set()
    while pid > 1 and pid not in seen:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            break
        if fields[0] == "Z":
            break
        seen.add(pid)
        pid = int(fields[1])
    return seen


def visible_lab_namespaces() -> set[str]:
    """The lab namespaces in ``/run/netns`` less those of another live runner on the machine.

    A lab namespace is named after the pid that owns it (rdv_core/lab/_netns.py): one whose
    owner is alive and neither this process nor one of its children belongs to someone else
    (the other pytest-xdist worker, another ``rdv lab`` on the machine), which comes and goes
    while a test compares the namespaces before and after its own runner. A dead owner's is
    kept: that is a leak, whoever left it.
    """
    me = os.getpid()
    out = set()
    for name in netns.list_lab_namespaces():
        parsed = netns.parse_lab_ns_name(name)
        owner = parsed[0] if parsed is not None else 0
        family = _ancestry(owner)
        if not family or me in family:
            out.add(name)
    return out


def nft_packets(lab: Lab, node: str, table: str, counter: str) -> int:
    """The packets an nftables named counter of ``table`` (family inet) on ``node`` saw."""
    out = lab.run(node, ["nft", "list", "counter", "inet", table, counter]).stdout
    match = re.search(r"packets (\d+)", out)
    assert match, out
    return int(match.group(1))
