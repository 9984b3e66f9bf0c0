"""``rdv serve`` as an operator runs it: ``--listen [::]:PORT``, the hangup signal, an
ignored SIGINT.

Real processes, real sockets on 127.0.0.1 and ::1, a real pseudo-terminal that closes.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.server_support import rdv_request

RDV = [sys.executable, "-m", "rdv_tui"]


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def _port_free_on_both() -> int:
    """A port free on IPv4 and IPv6 (a dual-stack socket held it a moment ago)."""
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", 0))
        return int(sock.getsockname()[1])


def _get(host: str, port: int, path: str = "/healthz") -> bytes:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect((host, port))
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
        return out


def _waiting(port: int, token: str) -> socket.socket:
    """An ACCEPT waiting in the lobby of the server on 127.0.0.1:``port``."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    sock.sendall(rdv_request("ACCEPT", f"/{token}"))
    return sock


def _read_all(sock: socket.socket) -> bytes:
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def _wait_for(what: Callable[[], bool], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@contextmanager
def _serve(args: list[str], **popen: object) -> Iterator[tuple[subprocess.Popen[str], str]]:
    server = subprocess.Popen(
        [*RDV, "serve", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        **popen,  # type: ignore[call-overload]
    )
    try:
        assert server.stderr is not None
        yield server, server.stderr.readline()
    finally:
        if server.poll() is None:
            server.kill()
        server.communicate(timeout=30)


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
def test_listen_on_ipv6_any_serves_ipv4_clients_too() -> None:
    """``rdv serve --listen [::]:PORT`` listened on IPv6 only (asyncio's binding sets
    IPV6_V6ONLY): an IPv4 client's connect was refused, where the Go reference's
    ``[::]:PORT`` (and rdv's own ``:PORT``) serves both. Now both families are served."""
    for attempt in range(3):
        port = _port_free_on_both()
        with _serve(["--listen", f"[::]:{port}"]) as (server, first):
            if "cannot listen" in first and attempt < 2:
                continue  # another test took the port in between
            # Before: 'listening on http://[::]:PORT', a URL no client can use.
            every = f"rdv serve: listening on port {port} of every IPv4 and IPv6 address"
            assert first.startswith(every), first
            assert first.endswith(f"; here: http://127.0.0.1:{port}\n"), first
            assert _get("::1", port).endswith(b"\r\n\r\nok\n")
            assert _get("127.0.0.1", port).endswith(b"\r\n\r\nok\n")
            server.send_signal(signal.SIGTERM)
            assert server.wait(timeout=30) == 0
            return


def test_0_0_0_0_stays_ipv4_only() -> None:
    """The other spelling keeps its meaning: ``0.0.0.0`` is every IPv4 interface."""
    with _serve(["--listen", "0.0.0.0:0"]) as (server, first):
        # Before: 'listening on http://0.0.0.0:PORT'. The last word is a URL that works here.
        assert first.startswith("rdv serve: listening on port "), first
        assert " of every IPv4 address (other machines: http://" in first, first
        port = int(first.rsplit(":", 1)[1])
        assert first.endswith(f"; here: http://127.0.0.1:{port}\n"), first
        assert _get("127.0.0.1", port).endswith(b"ok\n")
        if _ipv6_loopback():
            with pytest.raises(ConnectionRefusedError):
                _get("::1", port)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0


def test_sighup_drains_like_sigterm() -> None:
    """``kill -HUP`` (a closed terminal, an ssh session that dropped) killed ``rdv serve``
    at once: no log line, lobby clients reset instead of told to try again, exit -1
    (killed by the signal). Now it is the graceful shutdown SIGTERM gets, and says why."""
    with _serve(["--listen", "127.0.0.1:0"]) as (server, first):
        port = int(first.rsplit(":", 1)[1])
        lobby = _waiting(port, "hup")
        _wait_for(lambda: b"rdv_lobby_peers 1\n" in _get("127.0.0.1", port, "/metrics"))
        server.send_signal(signal.SIGHUP)
        assert _read_all(lobby).endswith(b"rdv server shutting down, try again")
        lobby.close()
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    # An operator who sent it for a reload (as to many daemons) learns what reloads.
    assert (
        "SIGHUP: shutting down (nothing to reload: SIGUSR1 reloads the TLS certificate)\n"
    ) in err, err
    assert "shut down with 1 in the lobby and 0 open pairs" in err, err


def test_an_inherited_ignored_sigint_stays_ignored() -> None:
    """POSIX: a program started with SIGINT ignored (``rdv serve &`` in a script, whose
    shell ignores it for background jobs; a parent's ``SIG_IGN``) keeps ignoring it. The
    stop handler took it over, and the shell's Ctrl-C to the foreground job stopped the
    server in the background too."""
    with _serve(
        ["--listen", "127.0.0.1:0"],
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    ) as (server, first):
        port = int(first.rsplit(":", 1)[1])
        server.send_signal(signal.SIGINT)
        assert _get("127.0.0.1", port).endswith(b"ok\n")
        assert server.poll() is None
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "SIGINT" not in err and "SIGTERM: shutting down" in err, err


def test_nohup_keeps_ignoring_the_hangup() -> None:
    """``nohup rdv serve`` asked to outlive the terminal: the handler that drains on SIGHUP
    must not take that away."""
    with _serve(
        ["--listen", "127.0.0.1:0"],
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
    ) as (server, first):
        port = int(first.rsplit(":", 1)[1])
        server.send_signal(signal.SIGHUP)
        # Still serving after the hangup (a request after it, answered): then SIGTERM.
        assert _get("127.0.0.1", port).endswith(b"ok\n")
        assert server.poll() is None
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "SIGTERM: shutting down" in err, err


def test_closing_the_terminal_drains_the_lobby(tmp_path: Path) -> None:
    """The real hangup: ``rdv serve`` runs in a terminal (its controlling tty, stderr on
    it), the terminal closes, the kernel sends SIGHUP. The lobby is told ``503`` and the
    server exits 0, although it can no longer write to the terminal."""
    master, slave = os.openpty()

    def own_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    server = subprocess.Popen(
        [*RDV, "serve", "--listen", "127.0.0.1:0", "--events", str(tmp_path / "ev.jsonl")],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        preexec_fn=own_terminal,
    )
    os.close(slave)
    try:
        seen = b""
        while b"listening on http://" not in seen or not seen.endswith(b"\n"):
            seen += os.read(master, 4096)
        port = int(seen.split(b"listening on http://127.0.0.1:")[1].split()[0])
        lobby = _waiting(port, "tty")
        _wait_for(lambda: b"rdv_lobby_peers 1\n" in _get("127.0.0.1", port, "/metrics"))
        os.close(master)  # the terminal window closes
        master = -1
        assert _read_all(lobby).endswith(b"rdv server shutting down, try again")
        lobby.close()
        assert server.wait(timeout=30) == 0
    finally:
        if master >= 0:
            os.close(master)
        if server.poll() is None:
            server.kill()
            server.wait()
    assert '"type":"ServerClosed"' in (tmp_path / "ev.jsonl").read_text()
