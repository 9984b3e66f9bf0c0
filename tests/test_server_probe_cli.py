"""``rdv serve`` probed as an operator meets it: files that cannot be opened or written,
TLS material that does not load, prefixes no client can reach. A real process each time."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

import pytest

from tests.server_support import EOF
from tests.test_server_cli import rdv_serve, serve_command
from tests.test_server_tls import make_cert


def _serve(args: list[str]) -> subprocess.CompletedProcess[str]:
    """``rdv serve`` that is expected to refuse its arguments at once."""
    return subprocess.run(
        [*serve_command(), "--listen", "127.0.0.1:0", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("where", ["missing-dir/events.jsonl", "."])
def test_events_file_that_cannot_be_opened_is_refused_plainly(tmp_path: Path, where: str) -> None:
    # Before: a Python traceback (FileNotFoundError / IsADirectoryError) and exit 1.
    target = tmp_path / where
    result = _serve(["--events", str(target)])
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert f"rdv serve: cannot open --events {target}: " in result.stderr, result.stderr


async def test_an_events_file_that_fails_keeps_the_pair_lines_and_says_so_once() -> None:
    # /dev/full answers every write with ENOSPC: a disk that filled up. Before: every event
    # logged an ERROR with a traceback, and the pair lines (written after the event) were lost.
    async with rdv_serve(["--events", "/dev/full"]) as served:
        env = served.env()
        for token in ("full-1", "full-2"):
            accepter = await env.request("ACCEPT", token)
            await asyncio.sleep(0.1)
            dialer = await env.request("DIAL", token)
            await dialer.read_head()
            await accepter.read_head()
            dialer.send(b"CONTINUE\nhi")
            assert await accepter.read_exactly(11) == b"CONTINUE\nhi"
            await dialer.close()
            assert await accepter.read_for(2.0) == EOF.encode()
        assert await served.stop() == 0
    text = "\n".join(served.stderr_lines)
    assert "Traceback" not in text, text
    for n, token in ((1, "full-1"), (2, "full-2")):
        assert re.search(rf"pair {n} token={token} \S+ -> \S+: relayed, D->A 2 B", text), text
    complaints = [line for line in served.stderr_lines if "--events" in line]
    assert len(complaints) == 1, text
    assert "cannot write --events /dev/full" in complaints[0], text
    assert "No space left on device" in complaints[0], text


def _tls_files(tmp_path: Path, case: str) -> tuple[Path, Path, str]:
    """The (cert, key) pair of one misconfiguration, and what ``rdv serve`` must say."""
    from cryptography.hazmat.primitives import serialization

    cert, key = make_cert(tmp_path)
    if case == "missing key":
        key = tmp_path / "nope.key"
        return cert, key, f"rdv serve: cannot read --tls-key {key}: No such file or directory"
    if case == "missing cert":
        cert = tmp_path / "nope.pem"
        return cert, key, f"rdv serve: cannot read --tls-cert {cert}: No such file or directory"
    if case == "swapped":
        return key, cert, f"rdv serve: --tls-cert {key} holds no PEM certificate"
    if case == "garbage key":
        bad = tmp_path / "bad.key"
        bad.write_text("not a key\n")
        return cert, bad, f"rdv serve: --tls-key {bad} holds no PEM private key"
    if case == "mismatch":
        other = tmp_path / "other"
        other.mkdir()
        _, other_key = make_cert(other)
        return cert, other_key, f"rdv serve: --tls-key {other_key} is not the key of the"
    assert case == "encrypted"
    private = serialization.load_pem_private_key(key.read_bytes(), None)
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"s3cret"),
        )
    )
    return cert, key, f"rdv serve: --tls-key {key} is encrypted and there is no terminal"


@pytest.mark.parametrize(
    "case", ["missing key", "missing cert", "swapped", "garbage key", "mismatch", "encrypted"]
)
def test_tls_files_that_do_not_load_are_named_with_the_reason(tmp_path: Path, case: str) -> None:
    # Before: "cannot load TLS certificate/key: [SSL] PEM lib (_ssl.c:3905)" or "[Errno 2]
    # No such file or directory" naming neither flag nor file; for an encrypted key with no
    # terminal, OpenSSL's "Enter PEM pass phrase:" then "[Errno 22] Invalid argument".
    cert, key, message = _tls_files(tmp_path, case)
    result = _serve(["--tls-cert", str(cert), "--tls-key", str(key)])
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(message), result.stderr
    assert "pass phrase:" not in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr


@pytest.mark.parametrize("prefix", ["/my app", "/rdv?x", "/rdv#x", "/rdv!", "/%zz"])
def test_a_prefix_no_request_path_can_match_is_refused(prefix: str) -> None:
    # Before: 'listening on http://127.0.0.1:PORT/my app', and every request of rdv's own
    # client to that URL got 404 (it sends /my%20app/<token>; the prefix is compared raw).
    result = _serve(["--prefix", prefix])
    assert result.returncode == 2, result.stderr
    assert f"argument --prefix: {prefix!r} cannot match a request path" in result.stderr


async def test_an_escaped_prefix_is_reached_by_rdvs_own_client() -> None:
    import sys

    async with rdv_serve(["--prefix", "/my%20app"]) as served:
        assert served.url.endswith("/my%20app")
        rdv = [sys.executable, "-m", "rdv_tui"]
        accepter = await asyncio.create_subprocess_exec(
            *rdv, "accept", "--spaces", "none", served.url, "esc",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        # The accepter's stdin stays open (its EOF would end the pair) until the line came.
        dialer = await asyncio.create_subprocess_exec(
            *rdv, "dial", "--spaces", "none", served.url, "esc",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        async with asyncio.timeout(20):
            _, dial_err = await dialer.communicate(b"through the prefix\n")
            assert accepter.stdout is not None
            received = await accepter.stdout.readline()
            await accepter.communicate(b"")
        assert dialer.returncode == 0, dial_err
        assert received == b"through the prefix\n"
        assert await served.stop() == 0


@pytest.mark.parametrize("zero", ["0", "0.0", "00"])
async def test_every_spelling_of_zero_lobby_timeout_waits_forever(zero: str) -> None:
    # The help says '0: wait forever'; before, '0.0' and '00' were refused as not positive.
    async with rdv_serve(["--lobby-timeout", zero]) as served:
        assert await served.stop() == 0
    assert any("lobby timeout none" in line for line in served.stderr_lines)


async def test_sigterm_right_after_the_listening_line_is_a_graceful_stop() -> None:
    # A supervisor may stop the server as soon as it printed its URL (or /healthz answered).
    # Before: the signal handlers were installed only after the startup log lines, and a
    # SIGTERM in between killed the process (exit -15) about one time in three here.
    for _ in range(10):
        async with rdv_serve([]) as served:
            assert await served.stop() == 0, served.stderr_lines
        assert any("stopped in" in line for line in served.stderr_lines)


@pytest.mark.parametrize(
    ("ports", "message"),
    [
        (["18731", "18731"], "rdv serve: --probe-port 18731 given twice"),
        (["18730"], "rdv serve: --probe-port 18730 is the --listen port"),
    ],
)
def test_probe_ports_that_collide_with_our_own_are_named(ports: list[str], message: str) -> None:
    # Before: "cannot listen on a probe port: [Errno 98] error while attempting to bind on
    # address ('127.0.0.1', 18731): address already in use", after binding the main port.
    args = [arg for port in ports for arg in ("--probe-port", port)]
    result = subprocess.run(
        [*serve_command(), "--listen", "127.0.0.1:18730", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(message), result.stderr


@pytest.mark.parametrize(
    ("listen", "want"),
    [
        ("127.0.0.1:70000", "port 70000 is out of range (0-65535)"),
        ("70000", "port 70000 is out of range (0-65535)"),
        ("127.0.0.1:-1", "port -1 is out of range (0-65535)"),
        ("nope", "expected HOST:PORT"),
        # Before: listened on [::1]:8080, a guess ('::1:8080' is an IPv6 address too).
        ("::1:8080", "an IPv6 address takes brackets, e.g. [::1]:8080"),
    ],
)
def test_a_listen_port_out_of_range_is_called_that(listen: str, want: str) -> None:
    # Before: "invalid --listen '127.0.0.1:-1': expected HOST:PORT", which it is.
    result = subprocess.run(
        [*serve_command(), "--listen", listen],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"rdv serve: invalid --listen {listen!r}: {want}\n"


def test_the_listening_line_ends_with_a_url_that_works_here() -> None:
    """``--listen :8080`` printed ``http://0.0.0.0:8080``; the last word (what scripts take)
    is now a loopback URL, and the prefix stays; TLS names the machine (the certificate)."""
    import socket

    from rdv_tui.cli.commands.serve_summary import listening_line

    both = ["0.0.0.0:8080", "[::]:8080"]
    line = listening_line("http://0.0.0.0:8080/rdv", both)
    assert line.split()[-1] == "http://127.0.0.1:8080/rdv", line
    assert f"(other machines: http://{socket.gethostname()}:8080/rdv," in line, line
    assert listening_line("http://[::]:8080", ["[::]:8080"]).endswith("here: http://[::1]:8080")
    tls = listening_line("https://0.0.0.0:8443", both)
    assert tls.endswith(f"e.g. https://{socket.gethostname()}:8443"), tls
    assert listening_line("http://127.0.0.1:9/", ["127.0.0.1:9"]) == (
        "rdv serve: listening on http://127.0.0.1:9/"
    )
