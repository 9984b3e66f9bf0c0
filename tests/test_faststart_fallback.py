"""Fast start whose direct path dies after the switch, before it was proven: real
processes in a network namespace (``tests/faststart_fallback_driver.py``).

The stream goes back to the relay and a later attempt switches again. What the user
saw: "switched to p2p" twice, nothing in between (the fallback's ``UpgradeFailed`` did
not say that the stream had been direct, and the printers ignored it). When only one end
of the direct conn died (its RST lost), the other side never learned that the peer went
back to the relay: it said nothing, its conn claimed p2p, and an accepter's dialer never
made its next attempt (docs/PROTOCOL.md section 16.6).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.test_readme_examples import REPO, _netns_prefix

DRIVER = Path(__file__).with_name("faststart_fallback_driver.py")


def run_driver(mode: str, driver: str = DRIVER.name) -> dict[str, Any]:
    for tool in ("nft", "ss"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")
    script = 'ip link set lo up && exec "$@"'
    result = subprocess.run(
        [
            *_netns_prefix(),
            "sh",
            "-c",
            script,
            "sh",
            sys.executable,
            str(DRIVER.with_name(driver)),
            mode,
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=REPO,
    )
    lines = result.stdout.strip().splitlines()
    assert lines, result.stderr
    report: dict[str, Any] = json.loads(lines[-1])
    assert result.returncode == 0, json.dumps(report, indent=1) + result.stderr
    return report


@pytest.mark.parametrize("mode", ["both", "dialer", "accepter"])
def test_a_direct_path_that_dies_before_it_is_proven_is_said_and_followed(mode: str) -> None:
    report = run_driver(mode)
    stderr = report["stderr"]
    assert isinstance(stderr, dict)
    for side, verb in (("dial", "rdv dial"), ("accept", "rdv accept")):
        said = [
            line.split(": ", 1)[1].split(" ")[0:3]
            for line in stderr[side].splitlines()
            if line.startswith(f"{verb}: ")
        ]
        # switched, back, switched: each switch after the first follows a way back.
        assert said == [
            ["switched", "to", "p2p"],
            ["back", "on", "the"],
            ["switched", "to", "p2p"],
        ], stderr[side]
    assert report["codes"] == {"accept": 0, "dial": 0}, stderr
    assert report["stdout"] == {
        "accept": "one from dial\ntwo from dial\n",
        "dial": "one from accept\ntwo from accept\n",
    }, stderr
    events = report["events"]
    assert isinstance(events, dict)
    for side in ("dial", "accept"):
        back = [e for e in events[side] if e["type"] == "UpgradeFailed" and e["back_on_relay"]]
        assert [e["attempt"] for e in back] == [1], events[side]
