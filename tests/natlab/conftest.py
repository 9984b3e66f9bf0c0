"""NAT lab tests: real namespaces, real NATs, the real rdv server and peers.

Every test here is marked ``natlab`` and skipped, with the capability probe's reason, on
machines that cannot build labs. After every test, a check proves that nothing the test
started outlives it: no lab namespace of this process, no child process.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator

import pytest

from rdv_core.lab import _netns as netns
from rdv_core.lab._isolate import owner_pid
from rdv_core.lab._probe import probe


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.natlab)


@pytest.fixture
def rdv_command() -> list[str]:
    """How the lab runs rdv in these tests: this checkout's CLI, as ``rdv lab`` does."""
    return [sys.executable, "-m", "rdv_tui"]


def child_pids() -> list[int]:
    """Live (non-zombie) processes whose parent is this process."""
    me = str(os.getpid())
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == me and not fields.get("State", "").strip().startswith(
            "Z"
        ):
            out.append(int(entry))
    return out


def own_namespaces() -> list[str]:
    """Lab namespaces named after this process."""
    mine = owner_pid()
    return [
        n
        for n in netns.list_lab_namespaces()
        if (parsed := netns.parse_lab_ns_name(n)) is not None and parsed[0] == mine
    ]


@pytest.fixture(autouse=True)
def _natlab_capable_and_clean() -> Iterator[None]:
    caps = probe()
    if not caps.ok:
        pytest.skip(f"NAT lab unavailable: {caps.reason}")
    # Children this process had before the test are not the test's: a pytest-xdist worker
    # that ran another file first may keep one for its life (multiprocessing's resource
    # tracker), and every natlab teardown then failed on it.
    before = set(child_pids())
    yield
    # Children are SIGKILLed and reaped at teardown; give /proc a moment to agree.
    deadline = time.monotonic() + 2.0
    while (set(child_pids()) - before or own_namespaces()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert own_namespaces() == [], "a lab namespace outlived its test"
    assert sorted(set(child_pids()) - before) == [], "a process started by the test outlived it"
