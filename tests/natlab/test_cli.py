"""``rdv lab`` end to end, as a user runs it (a real ``python -m rdv_tui`` process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from rdv_core.lab import _netns as netns

from tests.natlab.natlab_support import visible_lab_namespaces

RDV = [sys.executable, "-m", "rdv_tui"]


def test_lab_run_json_shape_and_isolation() -> None:
    before = visible_lab_namespaces()
    proc = subprocess.run(
        [*RDV, "lab", "run", "cone-fw", "--runs", "2", "--json"],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc) == {"preset", "runs", "summary"}
    assert doc["preset"] == "cone-fw"
    assert len(doc["runs"]) == 2
    for run in doc["runs"]:
        assert set(run) == {"outcome", "connect_ms", "chosen", "events"}
        assert run["outcome"] == "direct"
        assert run["chosen"].startswith("203.0.113.12:")
        assert set(run["events"]) == {"dialer", "accepter", "server"}
        assert all(run["events"][role] for role in ("dialer", "accepter", "server"))
        assert any(e["type"] == "Picked" for e in run["events"]["dialer"])
    summary = doc["summary"]
    assert (summary["direct"], summary["relay"], summary["failed"]) == (2, 0, 0)
    assert summary["p50_ms"] is not None and summary["p90_ms"] >= summary["p50_ms"]
    assert summary["chosen"] == {"direct public4": 2}
    assert summary["data_verified"] == 2
    # The runner isolated itself: its namespaces never appeared here, and none remain.
    assert visible_lab_namespaces() == before


def test_lab_run_text_and_unknown_preset() -> None:
    proc = subprocess.run(
        [*RDV, "lab", "run", "same-lan-public", "--delay", "2"],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert proc.returncode == 0, proc.stderr
    # Each line fits the terminal: the preset's reason and a relay's story of the direct
    # dials (200 characters) wrap under their own column, not back at column 0.
    lines = proc.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, proc.stdout
    assert all(line.startswith(("lab ", "  ", "run ", "summary: ")) for line in lines), lines
    assert "run   1: relay" in proc.stdout
    assert any(line.startswith(" " * 10 + "direct: ") for line in lines), proc.stdout
    assert "summary: 0 direct, 1 relay, 0 failed" in proc.stdout
    assert "impairment: nfqueue" in proc.stdout or "impairment: netem" in proc.stdout
    bad = subprocess.run(
        [*RDV, "lab", "run", "cone"], capture_output=True, text=True, timeout=30, check=False
    )
    assert bad.returncode == 2
    assert "unknown preset 'cone'" in bad.stderr and "cone-fw" in bad.stderr


def test_lab_shell_keeps_the_lab_up_until_enter() -> None:
    proc = subprocess.Popen(
        [*RDV, "lab", "shell", "same-lan"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "press Enter" in line:
                break
        text = "".join(lines)
        assert "ip netns exec" in text, text + (proc.stderr.read() if proc.stderr else "")
        cli_a = next(w for w in text.split() if w.startswith("rdvlab-") and w.endswith("-cliA"))
        # The printed namespaces work from here (root: no private mount namespace).
        addrs = subprocess.run(
            ["ip", "-n", cli_a, "-br", "addr"], capture_output=True, text=True, check=True
        ).stdout
        assert "10.0.1.2/24" in addrs
        # The printed doctor command measures the lab's routers: its server has the probe
        # port and dial-back (before, every NAT finding was "not measured" there).
        doctor = next(line for line in lines if " doctor http://" in line).split()
        found = subprocess.run(
            [*doctor, "--format", "json"], capture_output=True, text=True, timeout=60
        )
        report = json.loads(found.stdout)
        assert report["mapping"]["value"] == "endpoint-independent", found.stdout
        assert report["filtering"]["value"] == "drop", found.stdout
        assert any(" send FILE " in line and "--explain" in line for line in lines)
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(timeout=30) == 0
        assert cli_a not in netns.list_lab_namespaces()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        netns.remove_stale(0)
