"""``rdv doctor``'s quick uses from the README, as a new user meets them: real processes,
a real port on loopback.

README: "Without a URL it uses ``$RDV_SERVER`` or the config file ... Exit codes: 0
measured, 1 no server reachable, 2 bad usage."
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

RDV = [sys.executable, "-m", "rdv_tui"]


def _doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RDV, "doctor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def test_without_a_server_it_names_the_way_doctor_takes_one(tmp_path: Path) -> None:
    """The message used to say "pass --server URL", an option rdv doctor does not have
    (the user who tried it got "unrecognized arguments: --server")."""
    config = tmp_path / "config.toml"
    config.write_text("")
    env = {k: v for k, v in os.environ.items() if k != "RDV_SERVER"}
    env["RDV_CONFIG"] = str(config)
    result = _doctor(env=env)
    assert result.returncode == 2, result.stderr
    assert "--server" not in result.stderr, result.stderr
    assert "rdv doctor URL" in result.stderr, result.stderr
    assert "RDV_SERVER" in result.stderr and str(config) in result.stderr, result.stderr
    # What it says to do works: a URL argument is taken (and this one is refused as
    # unreachable, exit 1, not as bad usage).
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        assert _doctor(url, env=env).returncode == 1


def test_an_unreachable_server_is_named_as_such() -> None:
    """The headline said "The server could not tell us our address": true, but it hid
    that nothing answered at all (connection refused), the one thing to fix first."""
    with socket.socket() as closed:  # bound, never listening: connects are refused
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        result = _doctor(url)
    assert result.returncode == 1, result.stdout + result.stderr
    headline = result.stdout.splitlines()[1]
    assert headline.startswith("No rdv server could be reached"), result.stdout
    assert "connection refused" in headline, result.stdout


def test_a_reader_that_leaves_ends_every_quietly() -> None:
    """``rdv doctor URL --format json-line --every 60 | head -1`` (the README's "one line a
    minute, for a log", tried first with ``head``): when the reader has gone, the next
    line's write must end rdv quietly, as ``yes | head -1`` ends ``yes``. It ended with a
    BrokenPipeError traceback."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        proc = subprocess.Popen(
            [*RDV, "doctor", url, "--format", "json-line", "--every", "1"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        try:
            first = proc.stdout.readline()
            assert first.startswith('{"version":1'), first
            proc.stdout.close()  # `head -1` has its line and exits
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.returncode is None:
                proc.kill()
                proc.communicate()
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert proc.returncode == 141, (proc.returncode, err)  # 128 + SIGPIPE, as a shell says


def test_a_full_disk_under_stdout_is_one_line() -> None:
    """``rdv doctor URL --format json > report.json`` on a full disk ended in an OSError
    traceback; ``rdv accept > file`` already says ``writing stdout failed: ...``."""
    with socket.socket() as closed, open("/dev/full", "w") as full:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        result = subprocess.run(
            [*RDV, "doctor", url, "--format", "json"],
            stdin=subprocess.DEVNULL,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines() == [
        "rdv doctor: writing stdout failed: No space left on device"
    ], result.stderr
    assert result.returncode == 1


def test_verbose_logs_each_probe_on_stderr() -> None:
    """README: "Logs go to stderr (``-v`` for each probe)"; ``--help``: "log each probe on
    stderr". ``-v`` logged only failed probes, so a run that worked printed nothing more."""
    import json
    import signal

    server = subprocess.Popen(
        [*RDV, "serve", "--listen", "127.0.0.1:0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stderr is not None
    try:
        url = server.stderr.readline().split()[-1]  # rdv serve: listening on URL
        result = _doctor("-v", url, "--format", "json")
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # stdout stays one JSON document
    probes = [line for line in result.stderr.splitlines() if line.startswith("rdv doctor: probe ")]
    # One line per conn behind the findings (the report's samples and fresh ports).
    assert len(probes) == len(report["samples"]) + len(report["fresh"]) >= 2, result.stderr
    assert "the server saw 127.0.0.1:" in probes[0], probes


def test_ctrl_c_before_any_report_is_not_measured() -> None:
    """Ctrl-C while the first run still waits (a server that accepts and never answers)
    exited 0, "measured", with nothing printed: ``rdv doctor URL && deploy`` went on.
    It exits 130; with ``--every``, a Ctrl-C after a report still gives that report's code."""
    import signal

    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        proc = subprocess.Popen(
            [*RDV, "doctor", url],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # In the first run, waiting for the server's answer: its GET is here (a fixed
        # 1.5 s was most of this test's time).
        silent.settimeout(20)
        conn, _ = silent.accept()
        with conn:
            conn.settimeout(20)
            assert conn.recv(4096).startswith(b"GET "), "no GET from rdv doctor"
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=20)
    assert out == "", out
    assert proc.returncode == 130, (proc.returncode, err)
