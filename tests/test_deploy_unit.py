"""``deploy/rdv@.service`` as systemd would run it: its ``ExecStart`` starts a real ``rdv serve``
that says what it was told, stops on its ``KillSignal`` with exit 0 within its stop timeout,
and a flag in ``RDV_ARGS`` that ``rdv serve`` refuses is exit 2, which the unit does not
restart (before: ``Restart=on-failure`` started it five times in a row, then systemd gave
up with "start request repeated too quickly", the one useful line further up the journal).

No systemd here: the command line is expanded as systemd does (``%i``, an unbraced
``$RDV_ARGS`` split into words) and the rdv at ``/opt/rdv/.venv/bin/rdv`` is this checkout's.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.balancer_support import DEPLOY, free_port

UNIT = DEPLOY / "rdv@.service"


def _settings(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#") and key.strip() not in out:
            out[key.strip()] = value.strip()
    return out


def _exec_start(instance: int, rdv_args: str) -> list[str]:
    words = shlex.split(_settings(UNIT)["ExecStart"].replace("%i", str(instance)))
    assert words[:2] == ["/opt/rdv/.venv/bin/rdv", "serve"], words
    expanded = [w for word in words for w in (rdv_args.split() if word == "$RDV_ARGS" else [word])]
    return [sys.executable, "-m", "rdv_tui", *expanded[1:]]


def test_the_unit_starts_says_what_it_runs_and_stops_on_its_signal() -> None:
    settings = _settings(UNIT)
    port = free_port()
    process = subprocess.Popen(
        _exec_start(port, ""),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        assert first == f"rdv serve: listening on http://127.0.0.1:{port}\n", first
        limits, front = process.stderr.readline(), process.stderr.readline()
        assert "lobby timeout 300s" in limits, limits
        assert "trusted proxies 127.0.0.1/32" in front and "PROXY protocol read from" in front
        assert "drain 10s on a stop signal" in front, front
        started = time.monotonic()
        process.send_signal(getattr(signal, settings["KillSignal"]))
        assert process.wait(timeout=int(settings["TimeoutStopSec"])) == 0
        assert time.monotonic() - started < 5  # nothing open: no drain to wait out
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def test_a_usage_error_in_rdv_args_is_exit_2_and_not_restarted(tmp_path: Path) -> None:
    settings = _settings(UNIT)
    assert settings["Restart"] == "on-failure"
    assert settings["RestartPreventExitStatus"] == "2", settings
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    result = subprocess.run(
        _exec_start(free_port(), f"--tls-cert {cert} --tls-key {key}"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        "rdv serve: --proxy-protocol with --tls-cert: terminate TLS at the balancer\n"
    )
