"""Run inside a fresh network namespace: fast-start pipe mode whose direct path dies after
the switch, before it was proven; prints one JSON object (what both peers said and got).

Used by ``tests/test_faststart_fallback.py`` (docs/PROTOCOL.md section 16.6). Real
processes: ``rdv serve``, ``rdv accept --fast-start``, ``rdv dial --fast-start`` on the
namespace's loopback. nftables holds the direct conns' stream frames (the first payload
byte of a segment is a frame type, DATA to EOF: 1-5), so that the switch happens (ATTACH
passes) but is never proven and the relay is not retired; then ``ss -K`` destroys the
direct conn, on both ends (``both``) or on one (``dialer``, ``accepter``: RSTs dropped,
the other end still looks alive), and the rules go. The next attempt then switches for
good.

Usage: ``python faststart_fallback_driver.py MODE`` with ``lo`` up in the namespace.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RDV = [sys.executable, "-m", "rdv_tui"]
TOKEN = "fallback-tok"
WAIT = 60.0
#: Frame types at the start of a segment's payload: TCP header with timestamps (32 bytes,
#: 256 bits) then the frame's type byte (docs/PROTOCOL.md 16.3).
HOLD_FRAMES = "@th,256,8 { 1, 2, 3, 4, 5, 6, 7 }"


def nft(*args: str) -> None:
    subprocess.run(["nft", *args], check=True, capture_output=True, text=True)


def rules(port: int) -> None:
    """The direct conns (neither end the server's port): their stream frames are held."""
    nft("add", "table", "inet", "fallback")
    nft("add", "chain", "inet", "fallback", "out", "{ type filter hook output priority 0; }")
    # Separate rules: nft 1.0.6 merges "sport != P dport != P" into one 4-byte compare
    # ("not both"), which would hold the relay's frames too.
    nft("add", "rule", "inet", "fallback", "out", "tcp", "sport", str(port), "accept")
    nft("add", "rule", "inet", "fallback", "out", "tcp", "dport", str(port), "accept")
    nft("add", "rule", "inet", "fallback", "out", *HOLD_FRAMES.split(), "drop")


def wait_for(what: str, check: Any) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise TimeoutError(f"waited {WAIT:.0f} s for {what}")


def count(path: Path, text: str) -> int:
    return path.read_text(errors="replace").count(text) if path.exists() else 0


def events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def shared_port(path: Path) -> int:
    """A peer's shared port P (its server conn's local port): its direct conns use it."""
    for ev in events(path):
        if ev["type"] == "ServerConnected":
            return int(ev["local_addr"].rsplit(":", 1)[1])
    raise RuntimeError(f"no ServerConnected in {path}")


def start_server(procs: list[subprocess.Popen[Any]]) -> tuple[str, int]:
    """``rdv serve`` on a free loopback port (added to ``procs``): its URL and port."""
    server = subprocess.Popen(
        [*RDV, "serve", "--listen", "127.0.0.1:0"], stderr=subprocess.PIPE, text=True
    )
    procs.append(server)
    assert server.stderr is not None
    line = server.stderr.readline()
    match = re.search(r"listening on (http://127\.0\.0\.1:(\d+))", line)
    if match is None:
        raise RuntimeError(f"rdv serve said: {line!r}")
    return match.group(1), int(match.group(2))


def start_peers(
    work: Path,
    url: str,
    token: str,
    procs: list[subprocess.Popen[Any]],
    env: dict[str, str] | None = None,
) -> dict[str, subprocess.Popen[bytes]]:
    """``rdv accept`` and ``rdv dial --fast-start`` (stdout, stderr and events to
    ``SIDE.out``, ``.err``, ``.jsonl`` in ``work``), each sent its first line."""
    peers: dict[str, subprocess.Popen[bytes]] = {}
    for side in ("accept", "dial"):
        flags = os.O_WRONLY | os.O_CREAT
        out, err = os.open(work / f"{side}.out", flags), os.open(work / f"{side}.err", flags)
        peers[side] = subprocess.Popen(
            [*RDV, side, "--fast-start", "--events", str(work / f"{side}.jsonl"), url, token],
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=err,
            env=None if env is None else {**os.environ, **env},
        )
        os.close(out)
        os.close(err)
        procs.append(peers[side])
    for side, proc in peers.items():
        assert proc.stdin is not None
        proc.stdin.write(f"one from {side}\n".encode())
        proc.stdin.flush()
    return peers


def main(mode: str) -> None:
    work = Path(tempfile.mkdtemp(prefix="rdv-fallback-"))
    procs: list[subprocess.Popen[Any]] = []
    try:
        url, port = start_server(procs)
        rules(port)
        peers = start_peers(work, url, TOKEN, procs)
        err_of = {side: work / f"{side}.err" for side in peers}
        wait_for("both switches", lambda: all(count(p, "switched to p2p") for p in err_of.values()))
        if mode == "both":
            victim = f"sport != :{port} and dport != :{port}"
        else:
            # One end only, and no RST reaches the other: it still looks alive there.
            nft("add", "rule", "inet", "fallback", "out", "tcp", "flags", "rst", "drop")
            mine = shared_port(work / ("dial.jsonl" if mode == "dialer" else "accept.jsonl"))
            victim = f"sport = :{mine} and dport != :{port}"
        subprocess.run(["ss", "-K", "-t", victim], check=True, capture_output=True)
        wait_for(
            "both back on the relay",
            lambda: all(count(p, "back on the relay") for p in err_of.values()),
        )
        nft("delete", "table", "inet", "fallback")
        wait_for(
            "the relay retired",
            lambda: all(
                any(e["type"] == "RelayRetired" for e in events(work / f"{side}.jsonl"))
                for side in peers
            ),
        )
        for side, proc in peers.items():
            assert proc.stdin is not None
            proc.stdin.write(f"two from {side}\n".encode())
            proc.stdin.close()
        codes = {side: proc.wait(WAIT) for side, proc in peers.items()}
        report = {
            "codes": codes,
            "stderr": {s: (work / f"{s}.err").read_text(errors="replace") for s in peers},
            "stdout": {s: (work / f"{s}.out").read_text(errors="replace") for s in peers},
            "events": {s: events(work / f"{s}.jsonl") for s in peers},
        }
        print(json.dumps(report))
    except Exception as exc:  # say what the peers said, then fail
        said = {p.name: p.read_text(errors="replace") for p in work.glob("*.err")}
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}", "stderr": said}))
        raise SystemExit(1) from exc
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        for entry in work.iterdir():
            os.unlink(entry)
        os.rmdir(work)


if __name__ == "__main__":
    main(sys.argv[1])
