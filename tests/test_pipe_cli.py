"""``rdv dial`` / ``rdv accept`` as real subprocesses against a real server on loopback.

64 MiB go through each way the conn can go (p2p and relay) and must arrive intact
(sha256); failures must give the documented exit codes and one-line reasons.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import sys
from pathlib import Path

import pytest

from rdv_core.events import HandshakeOk, Picked, read_jsonl
from rdv_core.server._core import RdvServer
from rdv_core.server._native import start_native

from tests.proc_support import kill_left

RDV = [sys.executable, "-m", "rdv_tui"]
PAYLOAD_SIZE = 64 * 1024 * 1024 + 12345  # not a multiple of any buffer size
GREETING = b"hello from accept\n"


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pipe") / "payload.bin"
    block = os.urandom(1024 * 1024)
    with path.open("wb") as f:
        for i in range(PAYLOAD_SIZE // len(block)):
            # Vary every block so that a lost or repeated block changes the digest.
            f.write(i.to_bytes(8, "big") + block[8:])
        f.write(os.urandom(PAYLOAD_SIZE % len(block)))
    return path


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


async def move_file(
    url: str, token: str, spaces: str, payload: Path, out: Path, dial_extra: tuple[str, ...] = ()
) -> tuple[int, bytes, str, int, str]:
    """``rdv dial < payload`` and ``rdv accept > out``; accept also sends a greeting.

    The accepter's stdin stays open until the dialer is done: in relay mode the first
    EOF in either direction ends the pair (docs/PROTOCOL.md section 8).
    """
    with out.open("wb") as out_file, payload.open("rb") as in_file:
        accept = await asyncio.create_subprocess_exec(
            *RDV, "accept", "--spaces", spaces, "--timeout", "20", url, token,
            stdin=asyncio.subprocess.PIPE,
            stdout=out_file,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        dial = await asyncio.create_subprocess_exec(
            *RDV, "dial", "--spaces", spaces, "--timeout", "20", *dial_extra, url, token,
            stdin=in_file,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
    assert accept.stdin is not None and accept.stderr is not None
    try:
        accept.stdin.write(GREETING)
        await accept.stdin.drain()
        (d_out, d_err), a_err = await asyncio.wait_for(
            asyncio.gather(dial.communicate(), accept.stderr.read()), 60
        )
        await asyncio.wait_for(accept.wait(), 10)
    finally:
        await kill_left(dial, accept)
        accept.stdin.close()
    assert dial.returncode is not None and accept.returncode is not None
    return dial.returncode, d_out, d_err.decode(), accept.returncode, a_err.decode()


@pytest.mark.slow
async def test_64_mib_p2p(url: str, payload: Path, tmp_path: Path) -> None:
    events = tmp_path / "dial-events.jsonl"
    d_code, d_out, d_err, a_code, a_err = await move_file(
        url, "pipe-p2p", "loopback4,loopback6", payload, tmp_path / "out.bin",
        dial_extra=("-v", "--events", str(events)),
    )  # fmt: skip
    assert (d_code, a_code) == (0, 0), (d_err, a_err)
    assert sha256(tmp_path / "out.bin") == sha256(payload)
    assert d_out == GREETING
    assert "peer connected: p2p 127.0.0.1:" in d_err or "peer connected: p2p [::1]:" in d_err
    assert "peer connected: p2p " in a_err
    # A server on this machine sees us at a loopback address, as it should: no warning that
    # "p2p across NATs will likely fail" (the event is still there for -v and the library).
    assert "warning: expected observed address" not in d_err + a_err
    assert "ObservedAddrWarning" in d_err
    assert "HandshakeOk" in d_err and "Picked" in d_err
    with events.open() as f:
        recorded = list(read_jsonl(f))
    assert any(isinstance(e, Picked) and not e.is_relay for e in recorded)
    assert any(isinstance(e, HandshakeOk) for e in recorded)


@pytest.mark.slow
async def test_64_mib_relay(url: str, payload: Path, tmp_path: Path) -> None:
    d_code, d_out, d_err, a_code, a_err = await move_file(
        url, "pipe-relay", "none", payload, tmp_path / "out.bin"
    )
    assert (d_code, a_code) == (0, 0), (d_err, a_err)
    assert sha256(tmp_path / "out.bin") == sha256(payload)
    assert d_out == GREETING
    assert "peer connected: relay in " in d_err and "peer connected: relay in " in a_err


async def peer_ends_first(
    url: str, token: str, spaces: str, out: Path, size: int, extra: tuple[str, ...] = ()
) -> tuple[int, str, int, str]:
    """``rdv accept`` sends one line and its stdin ends; ``rdv dial``'s stdin is still
    trickling ``size`` bytes (a slow producer) when the accepter's EOF arrives."""
    with out.open("wb") as out_file:
        accept = await asyncio.create_subprocess_exec(
            *RDV, "accept", "--spaces", spaces, "--timeout", "20", *extra, url, token,
            stdin=asyncio.subprocess.PIPE, stdout=out_file, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        dial = await asyncio.create_subprocess_exec(
            *RDV, "dial", "--spaces", spaces, "--timeout", "20", *extra, url, token,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
    assert accept.stdin and accept.stderr and dial.stdin and dial.stderr

    async def trickle() -> None:
        assert dial.stdin is not None
        chunk = bytes(range(256)) * 256  # 64 KiB
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for _ in range(size // len(chunk)):
                dial.stdin.write(chunk)
                await dial.stdin.drain()
                await asyncio.sleep(0.02)
            dial.stdin.close()

    try:
        accept.stdin.write(GREETING)
        accept.stdin.close()
        _, d_err, a_err = await asyncio.wait_for(
            asyncio.gather(trickle(), dial.stderr.read(), accept.stderr.read()), 60
        )
        await asyncio.wait_for(asyncio.gather(dial.wait(), accept.wait()), 10)
    finally:
        await kill_left(dial, accept)
    assert dial.returncode is not None and accept.returncode is not None
    return dial.returncode, d_err.decode(), accept.returncode, a_err.decode()


async def test_the_rest_of_stdin_still_goes_when_the_peer_ends_first(
    url: str, tmp_path: Path
) -> None:
    """A direct conn half-closes: the dialer keeps sending after the accepter's EOF."""
    size = 2 * 1024 * 1024
    d_code, d_err, a_code, a_err = await peer_ends_first(
        url, "pipe-halfclose", "loopback4", tmp_path / "out.bin", size
    )
    assert (d_code, a_code) == (0, 0), (d_err, a_err)
    assert "peer connected: p2p " in d_err
    assert (tmp_path / "out.bin").stat().st_size == size, (d_err, a_err)


async def test_the_relay_reports_stdin_it_could_not_deliver(url: str, tmp_path: Path) -> None:
    """A classic relay may end the pair at the first EOF (the reference server does): the
    dialer stops sending at the peer's end, says so, exits 1 and resets its conn, so the
    accepter, whose copy is cut, exits 1 too (our server passes the reset on; it exited 0
    when the dialer ended with a FIN). Never a silent truncation (docs/PROTOCOL.md 8)."""
    size = 2 * 1024 * 1024
    d_code, d_err, a_code, a_err = await peer_ends_first(
        url, "pipe-relay-eof", "none", tmp_path / "out.bin", size
    )
    assert "peer connected: relay in " in d_err and "(no direct candidate was dialled)" in d_err
    assert a_code == 1, a_err
    assert d_code == 1, d_err
    assert "were not delivered" in d_err and "--fast-start" in d_err, d_err
    assert (tmp_path / "out.bin").stat().st_size < size


async def test_fast_start_carries_the_half_close_through_the_relay(
    url: str, tmp_path: Path
) -> None:
    """With fast start the EOF is in band (section 16): the relay path half-closes too."""
    size = 2 * 1024 * 1024
    d_code, d_err, a_code, a_err = await peer_ends_first(
        url, "pipe-fs-eof", "none", tmp_path / "out.bin", size, ("--fast-start",)
    )
    assert (d_code, a_code) == (0, 0), (d_err, a_err)
    assert (tmp_path / "out.bin").stat().st_size == size, (d_err, a_err)


@pytest.mark.parametrize("spaces", ["none", "loopback4"])
async def test_fast_start_delivers_a_fast_stdin_whole_after_the_peers_end(
    url: str, tmp_path: Path, spaces: str
) -> None:
    """``rdv accept < /dev/null`` (its side ends at once) and ``rdv dial --fast-start <
    file``: the dialer closed its paths as soon as its last frames were written, with
    the accepter's ACKs unread on its socket, so the close was a reset, and through the
    relay the reset took the tail the accepter had not read yet: 1.6 to 4.9 of 5 MiB
    arrived, the accepter said "connection lost", and the dialer exited 0. A close now
    waits until the peer confirmed every byte (docs/PROTOCOL.md 16.4)."""
    source = tmp_path / "in.bin"
    source.write_bytes(os.urandom(5 * 1024 * 1024))
    out = tmp_path / "out.bin"
    common = ("--fast-start", "--spaces", spaces, "--timeout", "20", url, f"pipe-fs-tail-{spaces}")
    with out.open("wb") as out_file, source.open("rb") as in_file:
        accept = await asyncio.create_subprocess_exec(
            *RDV, "accept", *common,
            stdin=asyncio.subprocess.DEVNULL, stdout=out_file, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        dial = await asyncio.create_subprocess_exec(
            *RDV, "dial", *common,
            stdin=in_file, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
    try:
        (_, d_err), (_, a_err) = await asyncio.wait_for(
            asyncio.gather(dial.communicate(), accept.communicate()), 40
        )
    finally:
        await kill_left(dial, accept)
    assert (dial.returncode, accept.returncode) == (0, 0), (d_err, a_err)
    assert sha256(out) == sha256(source), (out.stat().st_size, d_err, a_err)


async def run_rdv(*args: str, within: float = 20) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *RDV, *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), within)
    finally:
        await kill_left(proc)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_server_rejection_exit_code_and_reason() -> None:
    server = RdvServer(lobby_timeout=0.3)
    front = await start_native(server, host="127.0.0.1", port=0)
    try:
        code, out, err = await run_rdv("accept", "--spaces", "loopback", front.url, "alone")
    finally:
        await server.close()
        await front.close()
    assert code == 1
    assert out == ""
    assert err.strip().splitlines()[-1] == (
        "rdv accept: server rejected: 408 Request Timeout: no matching peer found"
    )


async def test_timeout_exit_code(url: str) -> None:
    code, _, err = await run_rdv("dial", "--spaces", "loopback", "--timeout", "0.3", url, "t")
    assert code == 3
    assert err.strip().splitlines()[-1] == (
        "rdv dial: timed out after 0.3s while waiting for the peer"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--spaces", "bogus"), "unknown address space 'bogus'"),
        (("-H", "no colon here"), "bad header 'no colon here'"),
        (("--wait-p2p", "-1"), "--wait-p2p must be a number of seconds >= 0"),
        # nan was a traceback (exit 1) for --timeout and a picker that never fired for
        # --wait-p2p; inf is no number of seconds (--timeout 0 means no limit).
        (("--timeout", "nan"), "--timeout must be a number of seconds >= 0"),
        (("--wait-p2p", "nan"), "--wait-p2p must be a number of seconds >= 0"),
        (("--timeout", "inf"), "--timeout must be a number of seconds >= 0"),
        (("--wait", "1e400"), "--wait must be a number of seconds >= 0"),
    ],
)
async def test_usage_errors(url: str, args: tuple[str, ...], message: str) -> None:
    code, _, err = await run_rdv("dial", *args, url, "t")
    assert code == 2
    assert message in err


async def test_bad_url_is_a_usage_error() -> None:
    code, _, err = await run_rdv("dial", "ftp://127.0.0.1:1/", "t")
    assert code == 2
    assert "http:// or https://" in err


async def test_unreachable_server_exit_code() -> None:
    with socket.socket() as closed:  # bound, never listening: connects are refused
        closed.bind(("127.0.0.1", 0))
        code, _, err = await run_rdv("dial", f"http://127.0.0.1:{closed.getsockname()[1]}/", "t")
    assert code == 1
    assert "cannot connect to the rdv server" in err
    assert "Connection refused (nothing listens there: is an rdv server running" in err, err
    assert "Connect call failed" not in err, err


async def test_help_lists_every_option() -> None:
    code, out, _ = await run_rdv("dial", "--help")
    assert code == 0
    for option in ("--spaces", "--wait-p2p", "--pick-first", "--wait", "--timeout", "-H", "-v",
                   "--events"):  # fmt: skip
        assert option in out


def test_why_relay_says_what_became_of_the_direct_dials() -> None:
    from rdv_core.events import Candidate, CandidateFailed, DialStarted, ServerConnected
    from rdv_tui.cli.formatting import why_relay

    private = Candidate(2, "10.0.2.2:4000", "private4", "self")
    public = Candidate(3, "203.0.113.12:4000", "public4", "self")
    dials = [DialStarted(0.1, private), DialStarted(0.1, public)]
    failed = [
        CandidateFailed(0.2, private, "unreachable", 101),
        CandidateFailed(1.0, public, "cancelled"),
    ]
    assert why_relay([]) == "no direct candidate was dialled"
    assert why_relay([*dials, *failed]) == "direct: 1 unreachable, 1 no answer"
    proxied = ServerConnected(
        0.0, "203.0.113.20:3128", "10.0.1.2:4000", 0.01, proxy="http://p:3128"
    )
    text = why_relay([proxied, *dials, *failed])
    assert "only through the proxy http://p:3128" in text and "nothing else out" in text
    # A refusal means something answered: no claim that only the proxy gets out.
    refused = CandidateFailed(0.3, public, "refused", 111)
    assert "proxy" not in why_relay([proxied, *dials, refused])


async def test_stdin_is_read_while_the_dialer_waits_for_its_peer(url: str) -> None:
    """With fast start the first chunk is ready when the conn is (PROTOCOL 16.2)."""
    import fcntl
    import termios

    read_end, write_end = os.pipe()
    os.write(write_end, b"x" * 1000)
    proc = await asyncio.create_subprocess_exec(
        *RDV, "dial", "--fast-start", "--spaces", "loopback", "--timeout", "10", url,
        "nobody-comes",
        stdin=read_end,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    os.close(read_end)

    def waiting() -> int:
        buf = bytearray(4)
        fcntl.ioctl(write_end, termios.FIONREAD, buf)
        return int.from_bytes(buf, sys.byteorder)

    try:
        for _ in range(400):  # 8 s at most
            if not waiting() or proc.returncode is not None:
                break
            await asyncio.sleep(0.02)
        assert proc.returncode is None  # still in the lobby: no peer, no conn
        assert waiting() == 0  # yet stdin was read (nothing is sent before a conn)
    finally:
        os.close(write_end)
        proc.kill()
        await proc.wait()


async def test_timeout_0_means_no_limit(url: str) -> None:
    """``--timeout 0`` is "none", as in the app (README: "``--timeout``; 0 means none") and
    as ``rdv serve --lobby-timeout 0``. It used to time out at once (``timed out after
    0s``), a limit no one could want."""
    dial = await asyncio.create_subprocess_exec(
        *RDV, "dial", "--spaces", "loopback", "--timeout", "0", url, "no-limit",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await asyncio.sleep(1.0)  # the dialer waits in the lobby, as long as it takes
        assert dial.returncode is None, (await dial.communicate())[1].decode()
        code, _, err = await run_rdv("accept", "--spaces", "loopback", url, "no-limit")
        _, d_err = await asyncio.wait_for(dial.communicate(), 20)
    finally:
        await kill_left(dial)
    assert dial.returncode == 0, d_err.decode()
    assert code == 0, err
    assert "peer connected: p2p" in d_err.decode()


async def test_an_events_file_on_a_full_disk_costs_one_line(url: str) -> None:
    """``rdv dial --events race.jsonl`` on a full disk (``/dev/full``): every event's write
    raised inside the event callback, so each event logged a traceback, the rest of the
    callback (``-v``, the observed-address warning) was skipped, and closing the file at
    the end raised once more: a traceback and exit 1 after a transfer that worked."""
    accept = await asyncio.create_subprocess_exec(
        *RDV, "accept", "--spaces", "loopback", "--timeout", "20", url, "events-full",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    dial = await asyncio.create_subprocess_exec(
        *RDV, "dial", "--spaces", "loopback", "--timeout", "20", "--events", "/dev/full", "-v",
        url, "events-full",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        (_, d_err), (a_out, _) = await asyncio.wait_for(
            asyncio.gather(dial.communicate(b"hello\n"), accept.communicate()), 30
        )
    finally:
        await kill_left(dial, accept)
    err = d_err.decode()
    assert a_out == b"hello\n"
    assert "Traceback" not in err and "callback failed" not in err, err
    assert dial.returncode == 0, err
    failed = [line for line in err.splitlines() if "cannot write events" in line]
    assert failed == [
        "rdv dial: cannot write events to /dev/full: No space left on device; "
        "no more events are written"
    ], err
    # The rest of the callback ran for every event: -v logged the race to its end.
    assert any(" Picked " in line for line in err.splitlines()), err


async def test_a_stdin_that_fails_is_no_end_of_input(url: str) -> None:
    """stdin is a TCP socket (inetd, systemd socket activation, ``socat``) whose client
    resets it mid-stream: the read fails with ECONNRESET. rdv took that for the end of
    its input: it half-closed, said nothing without ``-v``, and both sides exited 0 with
    the peer holding a cut stream. Now the failure is said, the conn is reset so the
    peer does not take what it got for all of it, and both exit 1."""
    import struct

    with socket.create_server(("127.0.0.1", 0)) as listener:
        source = socket.create_connection(listener.getsockname())
        stdin, _ = listener.accept()
    accept = await asyncio.create_subprocess_exec(
        *RDV, "accept", "--spaces", "loopback", "--timeout", "20", url, "stdin-fails",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    dial = await asyncio.create_subprocess_exec(
        *RDV, "dial", "--spaces", "loopback", "--timeout", "20", url, "stdin-fails",
        stdin=stdin.fileno(), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdin.close()
    assert accept.stdout is not None
    try:
        source.sendall(b"part one\n")
        assert await asyncio.wait_for(accept.stdout.readline(), 20) == b"part one\n"
        source.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        source.close()  # a reset: dial's next read of stdin fails
        (_, d_err), (_, a_err) = await asyncio.wait_for(
            asyncio.gather(dial.communicate(), accept.communicate()), 20
        )
    finally:
        source.close()
        await kill_left(dial, accept)
    assert "rdv dial: reading stdin failed: Connection reset by peer" in d_err.decode(), d_err
    assert dial.returncode == 1, d_err
    assert accept.returncode == 1, a_err
    assert "connection lost" in a_err.decode(), a_err


@pytest.mark.parametrize(
    ("closed", "message"), [(">&-", "stdout is closed"), ("<&-", "stdin is closed")]
)
async def test_a_closed_stdin_or_stdout_is_bad_usage(closed: str, message: str) -> None:
    """``rdv accept URL T >&-`` (a cron job or daemon with fd 1 closed): Python leaves
    ``sys.stdout`` None, and rdv met the peer, then died of an AttributeError traceback,
    dropping it. Now it says so before any traffic: exit 2."""
    with socket.socket() as unused:  # nothing listens: no traffic is the point
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}"
        proc = await asyncio.create_subprocess_exec(
            "sh", "-c", f'exec "$@" {closed}', "sh", *RDV, "accept", url, "t",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert "Traceback" not in err.decode(), err
    assert proc.returncode == 2, err
    assert f"rdv accept: {message}: pipe mode needs it" in err.decode(), err


async def test_two_dialers_of_one_token_are_told_the_other_side_accepts() -> None:
    # Both terminals ran `rdv dial`: the second took the first's lobby slot (409), and the
    # first said only "replaced by another conn".
    joined = asyncio.Event()
    server = RdvServer(lobby_timeout=5, on_event=lambda event: joined.set())
    front = await start_native(server, host="127.0.0.1", port=0)
    try:
        first = asyncio.create_task(run_rdv("dial", "--spaces", "loopback", front.url, "twice"))
        await joined.wait()  # the first dialer's PeerJoined
        second = asyncio.create_task(run_rdv("dial", "--spaces", "loopback", front.url, "twice"))
        code, _, err = await first
        second.cancel()  # kills its process
        with contextlib.suppress(asyncio.CancelledError):
            await second
    finally:
        await server.close()
        await front.close()
    assert code == 1
    assert err.strip().splitlines()[-1] == (
        "rdv dial: server rejected: 409 Conflict: replaced by another conn (another `rdv dial` "
        "with this token reached the server after us and took our place: the other side runs "
        "`rdv accept`)"
    )
